package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/gotf/gotf/keraslike"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/encoding/prototext"
)

// stepProfile traces one timed step and writes what ran in it: per op
// type the kernels' count and time (prefix.ops.txt), and the partition
// graphs after Grappler and XLA clustering (prefix.graphs.pbtxt).
type stepProfile struct {
	keraslike.NopCallback
	prefix string
	batch  int
	err    error
	// kernelMs and matmulMs are the traced step's kernel time summed over
	// threads, all kernels and those of MatMul op types.
	kernelMs, matmulMs float64
}

func (p *stepProfile) TraceStep(_, batch int) bool { return batch == p.batch }

func (p *stepProfile) OnStepTrace(_ *keraslike.Model, _, _ int, md *cpb.RunMetadata) {
	opType := map[string]string{}
	nodes := 0
	for _, g := range md.GetPartitionGraphs() {
		for _, n := range g.GetNode() {
			opType[n.GetName()] = n.GetOp()
			nodes++
		}
	}
	type agg struct {
		count  int
		micros int64
	}
	by := map[string]*agg{}
	type node struct {
		name, op string
		micros   int64
	}
	var slow []node
	scopes := map[string]*agg{}
	var total, first, last int64
	first = -1
	for _, dev := range md.GetStepStats().GetDevStats() {
		for _, n := range dev.GetNodeStats() {
			t := opType[n.GetNodeName()]
			if t == "" { // a node the graphs do not list: "name = Type(...)"
				_, rest, _ := strings.Cut(n.GetTimelineLabel(), " = ")
				t, _, _ = strings.Cut(rest, "(")
			}
			if t == "" {
				t = "?" + n.GetNodeName()
			}
			a := by[t]
			if a == nil {
				a = &agg{}
				by[t] = a
			}
			a.count++
			us := n.GetOpEndRelMicros()
			a.micros += us
			slow = append(slow, node{n.GetNodeName(), t, us})
			sc := scopes[scopeOf(n.GetNodeName())]
			if sc == nil {
				sc = &agg{}
				scopes[scopeOf(n.GetNodeName())] = sc
			}
			sc.count++
			sc.micros += us
			total += us
			if strings.Contains(t, "MatMul") {
				p.matmulMs += float64(us) / 1e3
			}
			if first < 0 || n.GetAllStartMicros() < first {
				first = n.GetAllStartMicros()
			}
			last = max(last, n.GetAllStartMicros()+n.GetAllEndRelMicros())
		}
	}
	p.kernelMs = float64(total) / 1e3
	types := make([]string, 0, len(by))
	for t := range by {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return by[types[i]].micros > by[types[j]].micros })
	var b strings.Builder
	fmt.Fprintf(&b, "traced step %d: %d partition-graph nodes, kernel time %d us summed over threads, wall %d us (first start to last end)\n", p.batch, nodes, total, last-first)
	fmt.Fprintf(&b, "%-32s %6s %10s %6s\n", "op type", "count", "us", "share")
	for _, t := range types {
		a := by[t]
		fmt.Fprintf(&b, "%-32s %6d %10d %5.1f%%\n", t, a.count, a.micros, 100*float64(a.micros)/float64(max(total, 1)))
	}
	names := make([]string, 0, len(scopes))
	for n := range scopes {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return scopes[names[i]].micros > scopes[names[j]].micros })
	fmt.Fprintf(&b, "\n%-32s %6s %10s %6s\n", "scope (forward, gradients, optimizer...)", "count", "us", "share")
	for _, n := range names {
		a := scopes[n]
		fmt.Fprintf(&b, "%-32s %6d %10d %5.1f%%\n", n, a.count, a.micros, 100*float64(a.micros)/float64(max(total, 1)))
	}
	sort.Slice(slow, func(i, j int) bool { return slow[i].micros > slow[j].micros })
	fmt.Fprintf(&b, "\nslowest kernels\n")
	for _, n := range slow[:min(len(slow), 40)] {
		fmt.Fprintf(&b, "%8d us  %-24s %s\n", n.micros, n.op, n.name)
	}
	if err := os.WriteFile(p.prefix+".ops.txt", []byte(b.String()), 0o644); err != nil {
		p.err = err
		return
	}
	var g strings.Builder
	for _, pg := range md.GetPartitionGraphs() {
		g.WriteString(prototext.Format(pg))
		g.WriteString("\n")
	}
	if err := os.WriteFile(p.prefix+".graphs.pbtxt", []byte(g.String()), 0o644); err != nil {
		p.err = err
	}
}

// scopeOf is the first two components of a node name ("train/gradients",
// "train/gpt", the optimizer's scope): where in the step a kernel ran.
func scopeOf(name string) string {
	parts := strings.Split(name, "/")
	return strings.Join(parts[:min(max(len(parts)-1, 1), 2)], "/")
}
