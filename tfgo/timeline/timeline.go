// Package timeline turns the step stats of a traced run (RunMetadata with
// RunOptions.TraceLevel FULL_TRACE, e.g. tfgo.Session.RunTraced) into a
// Chrome trace-event JSON document, the one TensorFlow's Python
// tensorflow.python.client.timeline.Timeline(step_stats)
// .generate_chrome_trace_format() writes for the same step stats: a
// "Compute" and a "Tensors" process per device, one event per op on lanes
// that do not overlap, data-flow arrows between lanes, and with ShowMemory
// tensor lifetimes and allocator counters. chrome://tracing and Perfetto
// open it.
//
//	outs, tr, err := sess.RunTraced(feeds, fetches)
//	trace, err := timeline.ChromeTrace(tr.Metadata.GetStepStats(), timeline.Options{})
//	os.WriteFile("step.json", trace, 0o644)
//
// The document is byte for byte Python's (the same events in the same
// order, the same pretty-printed JSON), so that tools comparing traces see
// no difference between a Go and a Python run. It is pure Go: it needs
// only the step stats proto, not the runtime.
package timeline

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	sspb "github.com/wamuir/graft/tensorflow/core/framework/step_stats_go_proto"
	"google.golang.org/protobuf/proto"
)

// Options are generate_chrome_trace_format's arguments; the zero value is
// Python's defaults (show_dataflow=True, show_memory=False,
// op_time="schedule").
type Options struct {
	// NoDataflow leaves out the arrows from the op that produced a tensor
	// to the ops on other lanes or devices that consumed it.
	NoDataflow bool
	// ShowMemory adds tensor objects (creation, a snapshot, deletion) and
	// a memory counter per allocator.
	ShowMemory bool
	// OpTime is "schedule" (or ""): an op spans its scheduling on the
	// host; "gpu": an op spans its GPU kernels (from the /stream:all
	// device); "all": from its scheduling to the end of its last kernel.
	OpTime string
}

// ChromeTrace returns the trace of stats in Chrome's trace-event format.
// stats is not modified.
func ChromeTrace(stats *sspb.StepStats, opts Options) ([]byte, error) {
	if stats == nil {
		return nil, errors.New("timeline: no step stats (run with RunOptions.TraceLevel FULL_TRACE)")
	}
	switch opts.OpTime {
	case "", "schedule", "gpu", "all":
	default:
		return nil, fmt.Errorf("timeline: OpTime %q: want schedule, gpu or all", opts.OpTime)
	}
	t := &builder{
		stats:      proto.Clone(stats).(*sspb.StepStats),
		devicePids: map[string]int64{},
		tensorPids: map[string]int64{},
		tensors:    map[string]*tensor{},
		flowStarts: map[string]flowStart{},
	}
	t.preprocessOpTime(opts.OpTime)
	t.allocatePids()
	t.assignLanes()
	t.analyzeTensors(opts.ShowMemory)
	t.showCompute(!opts.NoDataflow)
	if opts.ShowMemory {
		t.showMemoryCounters()
	}
	events := make([]any, 0, len(t.metadata)+len(t.events))
	for _, e := range t.metadata {
		events = append(events, e)
	}
	for _, e := range t.events {
		events = append(events, e)
	}
	var b strings.Builder
	writePyJSON(&b, object{{"traceEvents", events}}, 0)
	return []byte(b.String()), nil
}

type tensor struct {
	name       string
	objectID   int64
	createTime int64
	pid        int64
	allocator  string
	numBytes   int64
	unrefs     []int64
}

func (t *tensor) lastUnref() int64 {
	m := t.unrefs[0]
	for _, u := range t.unrefs[1:] {
		m = max(m, u)
	}
	return m
}

type flowStart struct{ time, pid, tid int64 }

// builder is Python's Timeline: the same passes in the same order, since
// the order of the events is part of what is compared.
type builder struct {
	stats                  *sspb.StepStats
	nextPid, nextFlow      int64
	allocatorsPid          int64
	devicePids, tensorPids map[string]int64
	// tensors is a Python dict: tensorOrder keeps its insertion order.
	tensors     map[string]*tensor
	tensorOrder []string
	flowStarts  map[string]flowStart
	metadata    []object
	events      []object
}

// object is a JSON object whose keys keep their order, as a Python dict's.
type object []field

type field struct {
	key   string
	value any // string, int64, object, []any
}

func (t *builder) emitPid(name string, pid int64) {
	t.metadata = append(t.metadata, object{{"name", "process_name"}, {"ph", "M"}, {"pid", pid}, {"args", object{{"name", name}}}})
}

func event(ph, cat, name string, pid, tid, ts int64) object {
	return object{{"ph", ph}, {"cat", cat}, {"name", name}, {"pid", pid}, {"tid", tid}, {"ts", ts}}
}

var reOpLabel = regexp.MustCompile(`^(.*) = (.*)\((.*)\)`)

// parseOpLabel splits a timeline label "name = Op(in1, in2)".
func parseOpLabel(label string) (name, op string, inputs []string) {
	m := reOpLabel.FindStringSubmatch(label)
	if m == nil {
		return "unknown", "unknown", nil
	}
	if m[3] != "" {
		inputs = strings.Split(m[3], ", ")
	}
	return m[1], m[2], inputs
}

// parseKernelLabel reads a GPU kernel's "...@@node:Op#..." label.
func parseKernelLabel(label, nodeName string) (name, op string) {
	start := strings.Index(label, "@@")
	end := strings.Index(label, "#")
	if start >= 0 && end >= 0 && start+2 < end {
		nodeName = label[start+2 : end]
	}
	fields := append(strings.Split(nodeName, ":"), "unknown")
	return fields[0], fields[1]
}

func isGPUTraceDevice(device string) bool {
	return strings.Contains(device, "/stream:") || strings.Contains(device, "/memcpy")
}

func (t *builder) preprocessOpTime(opTime string) {
	if opTime == "" || opTime == "schedule" {
		return
	}
	var streamAll, jobs []*sspb.DeviceStepStats
	for _, s := range t.stats.GetDevStats() {
		if strings.Contains(s.GetDevice(), "/stream:all") {
			streamAll = append(streamAll, s)
		} else if strings.Contains(s.GetDevice(), "/job") {
			jobs = append(jobs, s)
		}
	}
	gpuStart, gpuEnd := map[string]int64{}, map[string]int64{}
	for _, s := range streamAll {
		for _, k := range s.GetNodeStats() {
			name, _ := parseKernelLabel(k.GetTimelineLabel(), k.GetNodeName())
			start, end := k.GetAllStartMicros(), k.GetAllStartMicros()+k.GetAllEndRelMicros()
			if _, ok := gpuStart[name]; ok {
				gpuStart[name] = min(gpuStart[name], start)
				gpuEnd[name] = max(gpuEnd[name], end)
			} else {
				gpuStart[name], gpuEnd[name] = start, end
			}
		}
	}
	for _, s := range jobs {
		for _, op := range s.GetNodeStats() {
			start, ok := gpuStart[op.GetNodeName()]
			if !ok {
				continue
			}
			end := max(gpuEnd[op.GetNodeName()], op.GetAllStartMicros()+op.GetAllEndRelMicros())
			if opTime == "gpu" {
				op.AllStartMicros = start
			}
			op.AllEndRelMicros = end - op.GetAllStartMicros()
		}
	}
}

func (t *builder) allocPid() int64 {
	p := t.nextPid
	t.nextPid++
	return p
}

func (t *builder) allocatePids() {
	t.allocatorsPid = t.allocPid()
	t.emitPid("Allocators", t.allocatorsPid)
	for _, d := range t.stats.GetDevStats() {
		dp := t.allocPid()
		t.devicePids[d.GetDevice()] = dp
		tp := t.allocPid()
		t.tensorPids[d.GetDevice()] = tp
		t.emitPid(d.GetDevice()+" Compute", dp)
		t.emitPid(d.GetDevice()+" Tensors", tp)
	}
}

// assignLanes gives each op the first lane whose last op ended strictly
// before it started, so that a lane's ops never overlap.
func (t *builder) assignLanes() {
	for _, d := range t.stats.GetDevStats() {
		lanes := []int64{0}
		for _, ns := range d.GetNodeStats() {
			l := -1
			for i, end := range lanes {
				if ns.GetAllStartMicros() > end {
					l = i
					lanes[l] = ns.GetAllStartMicros() + ns.GetAllEndRelMicros()
					break
				}
			}
			if l < 0 {
				l = len(lanes)
				lanes = append(lanes, ns.GetAllStartMicros()+ns.GetAllEndRelMicros())
			}
			ns.ThreadId = uint32(l)
		}
	}
}

func (t *builder) analyzeTensors(showMemory bool) {
	for _, d := range t.stats.GetDevStats() {
		devicePid, tensorsPid := t.devicePids[d.GetDevice()], t.tensorPids[d.GetDevice()]
		for _, ns := range d.GetNodeStats() {
			tid := int64(ns.GetThreadId())
			start := ns.GetAllStartMicros()
			end := start + ns.GetAllEndRelMicros()
			for i, out := range ns.GetOutput() {
				name := ns.GetNodeName()
				if i > 0 {
					name = fmt.Sprintf("%s:%d", name, i)
				}
				alloc := out.GetTensorDescription().GetAllocationDescription()
				if _, seen := t.tensors[name]; !seen {
					t.tensorOrder = append(t.tensorOrder, name)
				}
				tn := &tensor{name: name, objectID: int64(len(t.tensors)), createTime: start, pid: tensorsPid,
					allocator: alloc.GetAllocatorName(), numBytes: alloc.GetRequestedBytes()}
				t.tensors[name] = tn
				tn.unrefs = append(tn.unrefs, end)
				t.flowStarts[name] = flowStart{end, devicePid, tid}
				if showMemory {
					t.events = append(t.events,
						append(event("N", "Tensor", name, tensorsPid, tid, start), field{"id", tn.objectID}),
						append(event("O", "Tensor", name, tensorsPid, tid, end-1), field{"id", tn.objectID},
							field{"args", object{{"snapshot", object{{"tensor_description", strings.ReplaceAll(pyTextFormat(out.GetTensorDescription()), `"`, "")}}}}}))
				}
			}
		}
	}
}

func (t *builder) emitOp(ns *sspb.NodeExecStats, pid int64, gpuTrace bool) {
	name := ns.GetNodeName()
	var op string
	var inputs []string
	switch {
	case gpuTrace:
		name, op = parseKernelLabel(ns.GetTimelineLabel(), name)
	case name == "RecvTensor":
		op = "RecvTensor"
	default:
		_, op, inputs = parseOpLabel(ns.GetTimelineLabel())
	}
	args := object{{"name", name}, {"op", op}}
	for i, in := range inputs {
		args = append(args, field{fmt.Sprintf("input%d", i), in})
	}
	t.events = append(t.events, append(event("X", "Op", op, pid, int64(ns.GetThreadId()), ns.GetAllStartMicros()),
		field{"dur", ns.GetAllEndRelMicros()}, field{"args", args}))
}

func (t *builder) showCompute(dataflow bool) {
	for _, d := range t.stats.GetDevStats() {
		pid := t.devicePids[d.GetDevice()]
		gpuTrace := isGPUTraceDevice(d.GetDevice())
		for _, ns := range d.GetNodeStats() {
			tid := int64(ns.GetThreadId())
			start := ns.GetAllStartMicros()
			end := start + ns.GetAllEndRelMicros()
			t.emitOp(ns, pid, gpuTrace)
			if gpuTrace || ns.GetNodeName() == "RecvTensor" {
				continue
			}
			_, _, inputs := parseOpLabel(ns.GetTimelineLabel())
			for _, in := range inputs {
				if _, ok := t.tensors[in]; !ok {
					// A tensor sent between devices is received as
					// "name/_N": its producer has the name before.
					if i := strings.LastIndex(in, "/_"); i > 0 {
						in = in[:i]
					}
				}
				tn, ok := t.tensors[in]
				if !ok {
					continue // removed by CSE, as Python logs
				}
				tn.unrefs = append(tn.unrefs, end-1)
				if !dataflow {
					continue
				}
				fs := t.flowStarts[in]
				if fs.pid != pid || fs.tid != tid {
					id := t.nextFlow
					t.nextFlow++
					t.events = append(t.events,
						append(event("s", "DataFlow", in, fs.pid, fs.tid, fs.time), field{"id", id}),
						append(event("t", "DataFlow", in, pid, tid, start), field{"id", id}))
				}
			}
		}
	}
}

type allocation struct {
	time, bytes int64
	name        string
}

func (t *builder) showMemoryCounters() {
	allocs := map[string][]allocation{}
	var allocators []string
	for _, name := range t.tensorOrder {
		tn := t.tensors[name]
		t.events = append(t.events, append(event("D", "Tensor", name, tn.pid, 0, tn.lastUnref()), field{"id", tn.objectID}))
		if _, ok := allocs[tn.allocator]; !ok {
			allocators = append(allocators, tn.allocator)
		}
		allocs[tn.allocator] = append(allocs[tn.allocator],
			allocation{tn.createTime, tn.numBytes, name}, allocation{tn.lastUnref(), -tn.numBytes, name})
	}
	for _, a := range allocators {
		list := allocs[a]
		// Python sorts the tuples (time, bytes, name), then stably by time.
		sort.Slice(list, func(i, j int) bool {
			x, y := list[i], list[j]
			if x.time != y.time {
				return x.time < y.time
			}
			if x.bytes != y.bytes {
				return x.bytes < y.bytes
			}
			return x.name < y.name
		})
		var total int64
		for _, e := range list {
			total += e.bytes
			t.events = append(t.events, append(event("C", "Memory", a, t.allocatorsPid, 0, e.time), field{"args", object{{a, total}}}))
		}
	}
}
