package tfgo

import (
	"sort"

	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// StepMemory is the memory one traced run took, as TensorFlow's allocators
// recorded it in the RunMetadata step stats. All figures are in bytes.
//
// The peaks replay the step's allocation records (each kernel's
// allocations and, negative, their deallocations) in time order, as
// TensorFlow's profiler builds its memory timeline: they count what the
// step's kernels allocated, not the tensors fed to it, variables or
// constants allocated before it, nor the allocators' own overhead.
type StepMemory struct {
	// PeakBytes is the most the step's kernels held at once, over all
	// devices together (at one instant, so not the sum of the device peaks).
	PeakBytes int64
	// AllocatedBytes is what the step allocated in all, freed or not.
	AllocatedBytes int64
	// PersistentBytes is what kernels keep from step to step (a Const's
	// value, a kernel's cached state), from their memory_stats.
	PersistentBytes int64
	// Devices are the figures per device, sorted by device name.
	Devices []DeviceMemory
}

// DeviceMemory is StepMemory on one device ("/job:localhost/replica:0/task:0/device:CPU:0").
type DeviceMemory struct {
	Device          string
	PeakBytes       int64
	AllocatedBytes  int64
	PersistentBytes int64
	// Allocators are the device's allocators ("mklcpu", "GPU_0_bfc"), sorted by name.
	Allocators []AllocatorMemory
}

// AllocatorMemory is one allocator's share of a device's step memory.
type AllocatorMemory struct {
	Name           string
	PeakBytes      int64
	AllocatedBytes int64
	// MaxBytesInUse is the largest bytes-in-use the allocator reported at
	// the end of a kernel (allocator_bytes_in_use), 0 when it keeps no
	// statistics. It counts everything the allocator holds, within and
	// outside the step (fed tensors, variables, other sessions' tensors):
	// an upper figure next to PeakBytes, taken at kernel ends only.
	MaxBytesInUse int64
}

// memoryTraceLevel is the cheapest trace with allocation records: on the
// CPU runtime SOFTWARE_TRACE fills the same memory fields as FULL_TRACE,
// which adds the device tracer (GPU stream timings) and no memory figures.
const memoryTraceLevel = cpb.RunOptions_SOFTWARE_TRACE

// RunWithMemory is Run with a software trace, returning the run's memory
// as TensorFlow's allocators saw it (see StepMemory). Tracing makes the
// run slower (it records every kernel's time and allocations); run the
// steps that need no figures with Run.
func (s *Session) RunWithMemory(feeds map[Output]any, fetches []Output, targets ...*Operation) ([]*Tensor, StepMemory, error) {
	outs, md, err := s.run(&cpb.RunOptions{TraceLevel: memoryTraceLevel}, feeds, fetches, targets)
	if err != nil {
		return nil, StepMemory{}, err
	}
	return outs, MemoryFromMetadata(md), nil
}

// allocEvent is one allocation record: a positive size allocates, a
// negative one frees.
type allocEvent struct {
	micros, bytes int64
}

// replayPeak is the largest running total of events in time order.
// Records of the same microsecond are netted first, as TensorFlow's
// profiler does: their order within it is not recorded, and summing them
// keeps the peak independent of the order the step stats list them in.
func replayPeak(events []allocEvent) int64 {
	sort.Slice(events, func(i, j int) bool { return events[i].micros < events[j].micros })
	var cur, peak int64
	for i := 0; i < len(events); {
		j := i
		for ; j < len(events) && events[j].micros == events[i].micros; j++ {
			cur += events[j].bytes
		}
		i = j
		peak = max(peak, cur)
	}
	return peak
}

// MemoryFromMetadata computes a run's memory from the step stats of a
// traced run (RunWithOptions with trace_level SOFTWARE_TRACE or
// FULL_TRACE). Metadata without step stats (nil, or an untraced run)
// gives zeros.
func MemoryFromMetadata(md *cpb.RunMetadata) StepMemory {
	var all []allocEvent
	var res StepMemory
	type allocKey struct{ device, allocator string }
	events := map[allocKey][]allocEvent{}
	allocs := map[allocKey]*AllocatorMemory{}
	devs := map[string]*DeviceMemory{}
	for _, ds := range md.GetStepStats().GetDevStats() {
		name := ds.GetDevice()
		d := devs[name]
		if d == nil {
			d = &DeviceMemory{Device: name}
			devs[name] = d
		}
		for _, n := range ds.GetNodeStats() {
			p := n.GetMemoryStats().GetPersistentMemorySize()
			d.PersistentBytes += p
			res.PersistentBytes += p
			for _, mem := range n.GetMemory() {
				k := allocKey{name, mem.GetAllocatorName()}
				a := allocs[k]
				if a == nil {
					a = &AllocatorMemory{Name: k.allocator}
					allocs[k] = a
				}
				a.MaxBytesInUse = max(a.MaxBytesInUse, mem.GetAllocatorBytesInUse())
				for _, r := range mem.GetAllocationRecords() {
					e := allocEvent{r.GetAllocMicros(), r.GetAllocBytes()}
					events[k] = append(events[k], e)
					all = append(all, e)
					if e.bytes > 0 {
						a.AllocatedBytes += e.bytes
					}
				}
			}
		}
	}
	for k, a := range allocs {
		a.PeakBytes = replayPeak(events[k])
		d := devs[k.device]
		d.Allocators = append(d.Allocators, *a)
		d.AllocatedBytes += a.AllocatedBytes
	}
	for _, d := range devs {
		var evs []allocEvent
		for _, a := range d.Allocators {
			evs = append(evs, events[allocKey{d.Device, a.Name}]...)
		}
		d.PeakBytes = replayPeak(evs)
		sort.Slice(d.Allocators, func(i, j int) bool { return d.Allocators[i].Name < d.Allocators[j].Name })
		res.AllocatedBytes += d.AllocatedBytes
		res.Devices = append(res.Devices, *d)
	}
	sort.Slice(res.Devices, func(i, j int) bool { return res.Devices[i].Device < res.Devices[j].Device })
	res.PeakBytes = replayPeak(all)
	return res
}

// Device is the figures of the named device, or zeros with that name if
// the step did not run on it.
func (m StepMemory) Device(name string) DeviceMemory {
	for _, d := range m.Devices {
		if d.Device == name {
			return d
		}
	}
	return DeviceMemory{Device: name}
}
