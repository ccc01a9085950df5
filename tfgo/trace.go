package tfgo

import (
	"sort"

	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// OpStat is what one op cost in a traced run (from RunMetadata step stats).
type OpStat struct {
	Name        string // node name, e.g. "block_0/attention/MatMul"
	Device      string
	Micros      int64 // wall time from start to end of the kernel
	OutputBytes int64 // bytes of the outputs it allocated
}

// Trace is the profile of one run.
type Trace struct {
	Ops      []OpStat // slowest first
	Metadata *cpb.RunMetadata
}

// RunTraced is Run with a full trace: the step stats (time and memory per
// op) and the partition graphs as the runtime executed them (after
// Grappler and, with XLA, clustering).
func (s *Session) RunTraced(feeds map[Output]any, fetches []Output, targets ...*Operation) ([]*Tensor, *Trace, error) {
	opts := &cpb.RunOptions{TraceLevel: cpb.RunOptions_FULL_TRACE, OutputPartitionGraphs: true}
	outs, md, err := s.run(opts, feeds, fetches, targets)
	if err != nil {
		return nil, nil, err
	}
	tr := &Trace{Metadata: md}
	for _, dev := range md.GetStepStats().GetDevStats() {
		for _, n := range dev.GetNodeStats() {
			st := OpStat{Name: n.GetNodeName(), Device: dev.GetDevice(), Micros: n.GetAllEndRelMicros()}
			for _, o := range n.GetOutput() {
				st.OutputBytes += o.GetTensorDescription().GetAllocationDescription().GetRequestedBytes()
			}
			tr.Ops = append(tr.Ops, st)
		}
	}
	sort.SliceStable(tr.Ops, func(i, j int) bool { return tr.Ops[i].Micros > tr.Ops[j].Micros })
	return outs, tr, nil
}

// ExecutedOpTypes lists the op types of the partition graphs that ran,
// e.g. to see whether XLA clustered ops (_XlaCompile/_XlaRun) or Grappler
// fused them (_FusedMatMul).
func (t *Trace) ExecutedOpTypes() map[string]int {
	types := map[string]int{}
	for _, g := range t.Metadata.GetPartitionGraphs() {
		for _, n := range g.GetNode() {
			types[n.GetOp()]++
		}
	}
	return types
}
