// Command benchinfer times runner.Load + Model.Run of a SavedModel's
// serving_default (int32 token ids [batch, seq]) under a given session
// configuration, for cmd/benchinfer/compare.py, which interleaves its rounds
// with Python's tf.saved_model.load signature on the same model.
//
// It reads commands on stdin, one per line, and answers each with one JSON
// line, so that one loaded model serves every round of a comparison:
//
//	run BATCH N      time N runs at BATCH (after the first call's warm-up)
//	trace BATCH [N]  N FULL_TRACE runs (default 1): the time per op type
//	                 (mean per run), its sums over all kernels and over the
//	                 MatMuls, and op counts of the partition graphs
//
//	go run ./cmd/benchinfer -dir /tmp/job/saved_model/1 -config 'intra_op_parallelism_threads: 2'
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/encoding/prototext"
)

func main() {
	dir := flag.String("dir", "", "SavedModel directory")
	config := flag.String("config", "", "session ConfigProto in text format (amends runner's defaults)")
	xla := flag.Bool("xla", false, "SessionOptions.XLA (TF_EnableXLACompilation)")
	single := flag.Bool("single", false, "LoadOptions.SingleThreadedExecutor")
	runopts := flag.String("runopts", "", "RunOptions in text format handed to every run")
	tensor := flag.Bool("tensor", false, "feed a prepared *tfgo.Tensor instead of [][]int32")
	flag.Parse()
	opts := runner.LoadOptions{Session: tfgo.SessionOptions{XLA: *xla}, SingleThreadedExecutor: *single}
	if *config != "" {
		c := &cpb.ConfigProto{}
		if err := prototext.Unmarshal([]byte(*config), c); err != nil {
			log.Fatalf("-config: %v", err)
		}
		opts.Session.Config = c
	}
	if *runopts != "" {
		r := &cpb.RunOptions{}
		if err := prototext.Unmarshal([]byte(*runopts), r); err != nil {
			log.Fatalf("-runopts: %v", err)
		}
		opts.RunOptions = r
	}
	start := time.Now()
	m, err := runner.LoadWithOptions(*dir, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	loadS := time.Since(start).Seconds()
	sig, ok := m.Signature("serving_default")
	if !ok || len(sig.Inputs) != 1 {
		log.Fatalf("%s: want a serving_default signature with one input, have %v", *dir, m.Signatures())
	}
	key := sig.InputNames()[0]
	seq := sig.Inputs[key].Shape.Dims[1]
	out := json.NewEncoder(os.Stdout)
	must(out.Encode(map[string]any{"load_s": loadS}))
	warm := map[int]bool{}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		batch, err := strconv.Atoi(f[1])
		if err != nil {
			log.Fatal(err)
		}
		ids := tokenIDs(batch, int(seq))
		var in any = ids
		if *tensor {
			t, err := tfgo.NewTensor(ids)
			if err != nil {
				log.Fatal(err)
			}
			defer t.Close()
			in = t
		}
		feeds := map[string]any{key: in}
		if !warm[batch] {
			// Grappler and the executor are built on a shape's first runs.
			for i := 0; i < 3; i++ {
				runOnce(m, feeds)
			}
			warm[batch] = true
		}
		switch f[0] {
		case "run":
			n, err := strconv.Atoi(f[2])
			if err != nil {
				log.Fatal(err)
			}
			ms := make([]float64, n)
			cpu0 := cpuMs()
			for i := range ms {
				ms[i] = runOnce(m, feeds)
			}
			// The process's CPU time per run: what the run cost the
			// machine, threads spinning included, which the wall time
			// on a shared machine hides.
			must(out.Encode(map[string]any{"ms": ms, "cpu_ms": (cpuMs() - cpu0) / float64(n)}))
		case "trace":
			n := 1
			if len(f) > 2 {
				if n, err = strconv.Atoi(f[2]); err != nil {
					log.Fatal(err)
				}
			}
			must(out.Encode(trace(m, key, ids, n)))
		default:
			log.Fatalf("unknown command %q", f[0])
		}
	}
}

func cpuMs() float64 {
	var ru syscall.Rusage
	must(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func tokenIDs(batch, seq int) [][]int32 {
	r := rand.New(rand.NewSource(1))
	ids := make([][]int32, batch)
	for i := range ids {
		ids[i] = make([]int32, seq)
		for j := range ids[i] {
			ids[i][j] = int32(r.Intn(256))
		}
	}
	return ids
}

func runOnce(m *runner.Model, feeds map[string]any) float64 {
	start := time.Now()
	out, err := m.Run(context.Background(), "serving_default", feeds)
	if err != nil {
		log.Fatal(err)
	}
	d := time.Since(start)
	for _, t := range out {
		t.Close()
	}
	return float64(d) / 1e6
}

// trace runs the signature runs times with a full trace (tfgo's RunTraced)
// on the model's session and sums the step stats per op type: what the
// session spent its time on, to compare with the op set of Python's
// function.
func trace(m *runner.Model, key string, ids [][]int32, runs int) map[string]any {
	sig, _ := m.Signature("serving_default")
	g := m.Session().Graph()
	in, err := g.OutputByName(sig.Inputs[key].Name)
	if err != nil {
		log.Fatal(err)
	}
	var fetches []tfgo.Output
	for _, k := range sig.OutputNames() {
		o, err := g.OutputByName(sig.Outputs[k].Name)
		if err != nil {
			log.Fatal(err)
		}
		fetches = append(fetches, o)
	}
	perOp := map[string]float64{}
	count := map[string]int{}
	var graphOps map[string]int
	for r := 0; r < runs; r++ {
		outs, tr, err := m.Session().RunTraced(map[tfgo.Output]any{in: ids}, fetches)
		if err != nil {
			log.Fatal(err)
		}
		for _, t := range outs {
			t.Close()
		}
		opOf := map[string]string{}
		for _, pg := range tr.Metadata.GetPartitionGraphs() {
			for _, n := range pg.GetNode() {
				opOf[n.GetName()] = n.GetOp()
			}
		}
		for _, st := range tr.Ops {
			op := opOf[st.Name]
			if op == "" {
				op = "(" + st.Name + ")"
			}
			perOp[op] += float64(st.Micros) / 1e3 / float64(runs)
			if r == 0 {
				count[op]++
			}
		}
		graphOps = tr.ExecutedOpTypes()
	}
	ops := make([]string, 0, len(perOp))
	for k := range perOp {
		ops = append(ops, k)
	}
	sort.Slice(ops, func(i, j int) bool { return perOp[ops[i]] > perOp[ops[j]] })
	var lines []string
	var kernelMs, matmulMs float64
	for _, op := range ops {
		lines = append(lines, fmt.Sprintf("%8.3f ms %4d  %s", perOp[op], count[op], op))
		kernelMs += perOp[op]
		if strings.Contains(op, "MatMul") {
			matmulMs += perOp[op]
		}
	}
	return map[string]any{"op_ms": lines, "graph_ops": graphOps, "kernel_ms": kernelMs, "matmul_kernel_ms": matmulMs}
}
