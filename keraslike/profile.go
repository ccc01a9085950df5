package keraslike

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/gotf/gotf/internal/atomicfile"
	"github.com/gotf/gotf/tfgo/timeline"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// TraceCallback is a Callback that wants the full trace of some training
// steps: Fit runs the steps it asks for with RunOptions FULL_TRACE (every
// kernel's timing and allocations, as Python's profiler collects them)
// and calls OnStepTrace before that batch's OnBatchEnd; the other steps run
// untraced, at full speed.
type TraceCallback interface {
	Callback
	// TraceStep reports whether to trace the coming step, the batch-th
	// of epoch.
	TraceStep(epoch, batch int) bool
	OnStepTrace(m *Model, epoch, batch int, md *cpb.RunMetadata)
}

// Profile writes the op timeline of chosen training steps as Chrome
// trace-event JSON, the document Python's
// timeline.Timeline(step_stats).generate_chrome_trace_format() makes
// (see package tfgo/timeline), which chrome://tracing and Perfetto open:
// what Keras' TensorBoard(profile_batch=...) is for, on this runtime.
// Step n is written to Dir/step-<n>.trace.json.
type Profile struct {
	NopCallback
	// Dir receives the traces.
	Dir string
	// Steps are the training steps to trace, numbered from 1 over the
	// whole Fit, as Keras numbers profile_batch (the first step includes
	// one-time graph optimization: trace a later one for steady state).
	Steps []int
	// Options are the trace's (memory, data flow, op times).
	Options timeline.Options
	// Written lists the files written, in order.
	Written []string

	done int   // steps finished in this Fit
	err  error // the first failed write, reported at the epoch's end
}

func (p *Profile) OnTrainBegin(*Model, FitInfo) { p.done, p.err = 0, nil }

func (p *Profile) OnBatchEnd(*Model, int, Logs) { p.done++ }

func (p *Profile) TraceStep(int, int) bool { return slices.Contains(p.Steps, p.done+1) }

func (p *Profile) OnStepTrace(_ *Model, _, _ int, md *cpb.RunMetadata) {
	if p.err != nil {
		return
	}
	if p.Dir == "" {
		p.err = errors.New("Profile: empty Dir")
		return
	}
	trace, err := timeline.ChromeTrace(md.GetStepStats(), p.Options)
	if err != nil {
		p.err = fmt.Errorf("Profile: step %d: %w", p.done+1, err)
		return
	}
	path := filepath.Join(p.Dir, fmt.Sprintf("step-%d.trace.json", p.done+1))
	if err := atomicfile.WriteFile(path, func(tmp string) error { return os.WriteFile(tmp, trace, 0o644) }); err != nil {
		p.err = fmt.Errorf("Profile: %w", err)
		return
	}
	p.Written = append(p.Written, path)
}

func (p *Profile) OnEpochEnd(*Model, int, Logs) error {
	if p == nil {
		return nilCallback("Profile")
	}
	return p.err
}
