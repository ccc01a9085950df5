package keraslike

import (
	"fmt"
	"io"

	"github.com/gotf/gotf/internal/procstat"
	"github.com/gotf/gotf/tfgo"
)

// MemoryStats is one train step's memory, in bytes.
type MemoryStats struct {
	// StepPeakBytes is the most the step's kernels held at once, as
	// TensorFlow's allocators recorded it (Step.PeakBytes): activations,
	// gradients and temporaries, not the weights and optimizer slots that
	// live between steps, nor the fed batch.
	StepPeakBytes int64
	// Step has the allocator figures per device and allocator.
	Step tfgo.StepMemory
	// RSSBytes is the process' resident set after the step (VmRSS): all of
	// it, Go heap and TensorFlow's C memory alike. 0 where /proc is absent.
	RSSBytes int64
	// PeakRSSBytes is the process' largest resident set so far (VmHWM).
	PeakRSSBytes int64
}

// MemoryCallback is a Callback that wants the memory of train steps.
// Fit runs the batches it asks for with a software trace (the allocation
// records TensorFlow keeps for each kernel) and calls OnStepMemory before
// that batch's OnBatchEnd; other batches run untraced, at full speed.
//
// The figures are not put in the batch logs: Keras' logs are metrics
// averaged over the epoch, present at every batch, and printed by
// ProgressBar and CSVLogger, while these are instant readings of some
// batches only.
type MemoryCallback interface {
	Callback
	// MemoryEvery asks for every n-th batch of an epoch, counted from its
	// first (batch%n == 0); 0 or less asks for none.
	MemoryEvery() int
	OnStepMemory(m *Model, epoch, batch int, s MemoryStats)
}

// runFitStep is Fit's session run of one batch, traced when a
// MemoryCallback or a TraceCallback asks for it.
func (m *Model) runFitStep(sess *tfgo.Session, cbs []Callback, epoch, batch int, feeds map[tfgo.Output]any, fetches []tfgo.Output, target *tfgo.Operation) ([]*tfgo.Tensor, error) {
	var want []MemoryCallback
	var traces []TraceCallback
	for _, c := range cbs {
		if mc, ok := c.(MemoryCallback); ok {
			if n := mc.MemoryEvery(); n > 0 && batch%n == 0 {
				want = append(want, mc)
			}
		}
		if tc, ok := c.(TraceCallback); ok && tc.TraceStep(epoch, batch) {
			traces = append(traces, tc)
		}
	}
	if len(want) == 0 && len(traces) == 0 {
		return sess.Run(feeds, fetches, target)
	}
	var outs []*tfgo.Tensor
	var step tfgo.StepMemory
	var err error
	if len(traces) > 0 {
		// A full trace holds the allocation records too.
		var tr *tfgo.Trace
		if outs, tr, err = sess.RunTraced(feeds, fetches, target); err != nil {
			return nil, err
		}
		step = tfgo.MemoryFromMetadata(tr.Metadata)
		for _, tc := range traces {
			tc.OnStepTrace(m, epoch, batch, tr.Metadata)
		}
	} else if outs, step, err = sess.RunWithMemory(feeds, fetches, target); err != nil {
		return nil, err
	}
	rss, hwm := processRSS()
	s := MemoryStats{StepPeakBytes: step.PeakBytes, Step: step, RSSBytes: rss, PeakRSSBytes: hwm}
	for _, mc := range want {
		mc.OnStepMemory(m, epoch, batch, s)
	}
	return outs, nil
}

// processRSS is the resident set and its high-water mark; zeros where
// /proc is absent.
func processRSS() (rss, peak int64) {
	v := procstat.Status("VmRSS", "VmHWM")
	return v[0], v[1]
}

// MemoryMonitor records the memory of train steps: the largest step peak
// (TensorFlow allocator) and resident set of each epoch and of the whole
// Fit, and prints a line per epoch to W:
//
//	epoch 1: step peak 123.4 MiB (TensorFlow allocator), RSS 456.7 MiB, peak RSS 470.1 MiB
type MemoryMonitor struct {
	NopCallback
	// W receives the epoch lines; nil prints nothing.
	W io.Writer
	// Every traces every Every-th batch of an epoch (0: every batch).
	// Tracing costs a few microseconds per kernel of the step.
	Every int

	// Epochs are the maxima of each epoch Fit ran (each field on its own;
	// Step is the step with the largest peak), Max those of the whole Fit.
	// Fit's start resets them.
	Epochs []MemoryStats
	Max    MemoryStats

	epoch  MemoryStats
	traced bool
}

// MemoryEvery implements MemoryCallback.
func (mm *MemoryMonitor) MemoryEvery() int {
	if mm == nil {
		return 0
	}
	return max(mm.Every, 1)
}

// OnTrainBegin implements Callback.
func (mm *MemoryMonitor) OnTrainBegin(*Model, FitInfo) {
	if mm == nil {
		return
	}
	mm.Epochs, mm.Max = nil, MemoryStats{}
}

// OnEpochBegin implements Callback.
func (mm *MemoryMonitor) OnEpochBegin(*Model, int) {
	if mm == nil {
		return
	}
	mm.epoch, mm.traced = MemoryStats{}, false
}

// OnStepMemory implements MemoryCallback.
func (mm *MemoryMonitor) OnStepMemory(_ *Model, _, _ int, s MemoryStats) {
	if mm == nil {
		return
	}
	mm.traced = true
	mm.epoch = maxMemory(mm.epoch, s)
	mm.Max = maxMemory(mm.Max, s)
}

func maxMemory(a, b MemoryStats) MemoryStats {
	if b.StepPeakBytes > a.StepPeakBytes {
		a.StepPeakBytes, a.Step = b.StepPeakBytes, b.Step
	}
	a.RSSBytes = max(a.RSSBytes, b.RSSBytes)
	a.PeakRSSBytes = max(a.PeakRSSBytes, b.PeakRSSBytes)
	return a
}

// OnEpochEnd implements Callback.
func (mm *MemoryMonitor) OnEpochEnd(_ *Model, epoch int, _ Logs) error {
	if mm == nil {
		return nilCallback("MemoryMonitor")
	}
	mm.Epochs = append(mm.Epochs, mm.epoch)
	if mm.W == nil {
		return nil
	}
	// A report that cannot be written is no reason to stop training.
	if !mm.traced {
		fmt.Fprintf(mm.W, "epoch %d: no step traced\n", epoch+1)
		return nil
	}
	s := mm.epoch
	fmt.Fprintf(mm.W, "epoch %d: step peak %s (TensorFlow allocator), RSS %s, peak RSS %s\n",
		epoch+1, mib(s.StepPeakBytes), mib(s.RSSBytes), mib(s.PeakRSSBytes))
	return nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
