// Command benchtrain times the train step of the GPT configurations that
// scripts/bench_train.py compares with Keras 3 on the same runtime: Adam
// 1e-3, sparse categorical cross-entropy from logits, post-LN blocks, one
// session run per step through keraslike's Fit. It prints one JSON line.
//
//	go run ./cmd/benchtrain -config small -steps 50
//	go run ./cmd/benchtrain -config small -replicas 2      # mirrored over 2 logical CPUs
//	go run ./cmd/benchtrain -config small -workers 2       # 2 worker processes on loopback
//	go run ./cmd/benchtrain -config large -profile /tmp/p   # step stats and graphs of one step
//
// The Go side's own work per step (feeds, fetches, callbacks) shows in
// `perf record -g` of this program (`perf report --sort dso`): with Go's
// runtime/pprof CPU profiler on, this program aborted every time we
// tried, in glibc ("corrupted size vs. prev_size"), so it has no flag.
//
// ms_per_step is the median of the timed steps' durations (each step ends
// with its loss on the host, so steps do not overlap); mean_ms_per_step is
// their mean. On a shared machine the median ignores the steps another
// process's burst slowed.
//
// With -workers N it starts N copies of itself as the workers of a
// multi-worker strategy on 127.0.0.1 ports (TF_CONFIG set for each), the
// global batch split between them, and prints one line: the slowest
// worker's step time and the loopback bytes sent per step during the
// timed steps (every worker's, read from /proc/net/dev), beside the bytes
// a ring all-reduce of the gradients moves.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/gotf/gotf/distribute"
	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/tfgo"
)

// Configs are the two GPT configurations.
var configs = map[string]struct {
	gpt   keraslike.GPTConfig
	batch int
}{
	"small": {keraslike.GPTConfig{SeqLen: 64, DModel: 64, Heads: 2, Layers: 2}, 16},
	"large": {keraslike.GPTConfig{SeqLen: 128, DModel: 256, Heads: 4, Layers: 4}, 32},
}

type result struct {
	Config    string  `json:"config"`
	XLA       bool    `json:"xla"`
	Replicas  int     `json:"replicas"`
	Devices   int     `json:"logical_cpus"`
	MsPerStep float64 `json:"ms_per_step"`
	MeanMs    float64 `json:"mean_ms_per_step"`
	// StepMs is every timed step's duration, in order, for a caller that
	// pools several runs before taking the median.
	StepMs []float64 `json:"step_ms"`
	// CPUMs is the process's CPU time (user + system, every thread) per
	// timed step: the work a step costs, which a busy machine inflates
	// less than the wall time (spinning threads still count).
	CPUMs float64 `json:"cpu_ms_per_step"`
	// IntraOp and InterOp are the thread pools' sizes asked for (0:
	// keraslike's default).
	IntraOp int   `json:"intra_op_threads"`
	InterOp int   `json:"inter_op_threads"`
	Params  int64 `json:"params"`
	Tokens  int   `json:"tokens_per_step"`
	Workers int   `json:"workers,omitempty"`
	// LoopbackBytes: bytes sent on the loopback interface per timed step.
	LoopbackBytes float64 `json:"loopback_bytes_per_step,omitempty"`
	// RingBytes: what a ring all-reduce of the gradients sends per step,
	// all workers together: 2 (N-1) times the gradients' bytes.
	RingBytes int64 `json:"ring_allreduce_bytes_per_step,omitempty"`
	// KernelMs and MatMulMs (with -profile): the traced step's kernel
	// time summed over threads, all kernels and the MatMuls.
	KernelMs float64 `json:"kernel_ms,omitempty"`
	MatMulMs float64 `json:"matmul_kernel_ms,omitempty"`
}

func main() {
	name := flag.String("config", "small", "small or large")
	steps := flag.Int("steps", 50, "timed steps")
	warmup := flag.Int("warmup", 5, "untimed steps first")
	xla := flag.Bool("xla", false, "compile the step with XLA")
	threads := flag.Int("threads", 0, "intra-op threads (0: keraslike's default)")
	inter := flag.Int("inter", 0, "inter-op threads (0: keraslike's default)")
	profile := flag.String("profile", "", "write to files with this prefix: the step stats of one timed step by op type and its partition graphs")
	replicas := flag.Int("replicas", 1, "mirror the model over this many logical CPUs (distribute.MirroredStrategy), the batch split between them")
	cpus := flag.Int("logical-cpus", 1, "logical CPU devices in the session (at least -replicas)")
	workers := flag.Int("workers", 1, "train on this many worker processes on loopback (distribute.NewMultiWorkerMirroredStrategy), the batch split between them")
	flag.Parse()
	if *workers > 1 && os.Getenv("TF_CONFIG") == "" {
		launch(*workers)
		return
	}
	*cpus = max(*cpus, *replicas)
	c, ok := configs[*name]
	if !ok {
		log.Fatalf("unknown config %q (small, large)", *name)
	}
	c.gpt.Epsilon = 1e-6
	keraslike.ResetNames()
	m, err := keraslike.NewGPT("gpt", c.gpt)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	m.SetXLA(*xla)
	so := tfgo.SessionOptions{IntraOpThreads: *threads, InterOpThreads: *inter}
	if *cpus > 1 {
		so.DeviceCount = map[string]int32{"CPU": int32(*cpus)}
	}
	m.SetSessionOptions(so)
	var strategy *distribute.MirroredStrategy
	if *workers > 1 {
		devs := make([]string, *replicas)
		for i := range devs {
			devs[i] = fmt.Sprintf("/device:CPU:%d", i)
		}
		if strategy, err = distribute.NewMultiWorkerMirroredStrategy(distribute.MultiWorkerOptions{Devices: devs}); err != nil {
			log.Fatal(err)
		}
		m.SetSessionOptions(tfgo.SessionOptions{IntraOpThreads: *threads, InterOpThreads: *inter})
	} else if *replicas > 1 {
		devs := make([]string, *replicas)
		for i := range devs {
			devs[i] = fmt.Sprintf("/device:CPU:%d", i)
		}
		if strategy, err = distribute.NewMirroredStrategy(devs...); err != nil {
			log.Fatal(err)
		}
	}
	opt := keraslike.NewAdam(keraslike.AdamOptions{OptimizerOptions: keraslike.OptimizerOptions{LearningRate: 1e-3}})
	if err := m.Compile(keraslike.CompileOptions{Optimizer: opt, Loss: keraslike.SparseCategoricalCrossentropy{FromLogits: true}, BatchSize: c.batch, Strategy: strategy}); err != nil {
		log.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	n := c.batch * max(*steps, *warmup)
	x, y := make([][]int32, n), make([][]int32, n)
	for i := range x {
		x[i], y[i] = make([]int32, c.gpt.SeqLen), make([]int32, c.gpt.SeqLen)
		for j := range x[i] {
			x[i][j], y[i][j] = int32(r.Intn(256)), int32(r.Intn(256))
		}
	}
	data := &keraslike.ArrayDataset[[]int32, []int32]{X: x, Y: y, BatchSize: c.batch, DropRemainder: true}
	ctx := context.Background()
	if _, err := m.Fit(ctx, data, keraslike.FitOptions{StepsPerEpoch: *warmup}); err != nil {
		log.Fatal(err)
	}
	timer := &stepTimer{}
	cbs := []keraslike.Callback{timer}
	var stats *stepProfile
	if *profile != "" {
		// The traced step is not timed: tracing slows it.
		stats = &stepProfile{prefix: *profile, batch: *steps / 2}
		cbs = append(cbs, stats)
	}
	lo := loopbackSent()
	cpu0 := cpuTime()
	if _, err := m.Fit(ctx, data, keraslike.FitOptions{StepsPerEpoch: *steps, Callbacks: cbs}); err != nil {
		log.Fatal(err)
	}
	cpuMs := float64(cpuTime()-cpu0) / 1e6 / float64(*steps)
	if stats != nil {
		timer.drop(stats.batch)
		if stats.err != nil {
			log.Fatal(stats.err)
		}
	}
	med, mean := timer.summary()
	res := result{Config: *name, XLA: *xla, Replicas: *replicas, Devices: *cpus, MsPerStep: med, MeanMs: mean, StepMs: timer.list(), CPUMs: cpuMs,
		IntraOp: *threads, InterOp: *inter, Params: m.CountParams(), Tokens: c.batch * c.gpt.SeqLen}
	if stats != nil {
		res.KernelMs, res.MatMulMs = stats.kernelMs, stats.matmulMs
	}
	if *workers > 1 {
		res.Workers = *workers
		res.LoopbackBytes = float64(loopbackSent()-lo) / float64(*steps)
		res.RingBytes = 2 * int64(*workers-1) * 4 * m.CountParams() // float32 gradients
	}
	out, _ := json.Marshal(res)
	fmt.Fprintln(os.Stdout, string(out))
}

// launch runs the benchmark on n worker processes (this program again,
// with TF_CONFIG) and prints the slowest worker's result.
func launch(n int) {
	var addrs []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls { // freed for the workers' servers
		l.Close()
	}
	cmds := make([]*exec.Cmd, n)
	outs := make([]*strings.Builder, n)
	for i := range cmds {
		cfg, _ := json.Marshal(map[string]any{"cluster": map[string]any{"worker": addrs}, "task": map[string]any{"type": "worker", "index": i}})
		cmds[i] = exec.Command(os.Args[0], os.Args[1:]...)
		cmds[i].Env = append(os.Environ(), "TF_CONFIG="+string(cfg))
		outs[i] = &strings.Builder{}
		cmds[i].Stdout, cmds[i].Stderr = outs[i], os.Stderr
		if err := cmds[i].Start(); err != nil {
			log.Fatal(err)
		}
		defer cmds[i].Process.Kill()
	}
	var worst result
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			log.Fatalf("worker %d: %v\n%s", i, err, outs[i])
		}
		var r result
		if err := json.Unmarshal([]byte(strings.TrimSpace(outs[i].String())), &r); err != nil {
			log.Fatalf("worker %d printed %q: %v", i, outs[i], err)
		}
		if r.MsPerStep > worst.MsPerStep {
			worst = r
		}
	}
	out, _ := json.Marshal(worst)
	fmt.Println(string(out))
}

// cpuTime is the process's user and system time so far, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// loopbackSent is the bytes sent on the loopback interface so far
// (/proc/net/dev), 0 where it cannot be read.
func loopbackSent() int64 {
	b, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || name != "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			return 0
		}
		n, _ := strconv.ParseInt(f[8], 10, 64) // transmit bytes
		return n
	}
	return 0
}
