// Command benchtrain times the train step of the GPT configurations that
// scripts/bench_train.py compares with Keras 3 on the same runtime: Adam
// 1e-3, sparse categorical cross-entropy from logits, post-LN blocks, one
// session run per step through keraslike's Fit. It prints one JSON line.
//
//	go run ./cmd/benchtrain -config small -steps 50
//	go run ./cmd/benchtrain -config small -replicas 2      # mirrored over 2 logical CPUs
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"os"
	"time"

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
	Params    int64   `json:"params"`
	Tokens    int     `json:"tokens_per_step"`
}

func main() {
	name := flag.String("config", "small", "small or large")
	steps := flag.Int("steps", 50, "timed steps")
	warmup := flag.Int("warmup", 5, "untimed steps first")
	xla := flag.Bool("xla", false, "compile the step with XLA")
	threads := flag.Int("threads", 0, "intra-op threads (0: TensorFlow's choice)")
	replicas := flag.Int("replicas", 1, "mirror the model over this many logical CPUs (distribute.MirroredStrategy), the batch split between them")
	cpus := flag.Int("logical-cpus", 1, "logical CPU devices in the session (at least -replicas)")
	flag.Parse()
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
	so := tfgo.SessionOptions{IntraOpThreads: *threads}
	if *cpus > 1 {
		so.DeviceCount = map[string]int32{"CPU": int32(*cpus)}
	}
	m.SetSessionOptions(so)
	var strategy *distribute.MirroredStrategy
	if *replicas > 1 {
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
	start := time.Now()
	if _, err := m.Fit(ctx, data, keraslike.FitOptions{StepsPerEpoch: *steps}); err != nil {
		log.Fatal(err)
	}
	ms := float64(time.Since(start).Microseconds()) / 1e3 / float64(*steps)
	out, _ := json.Marshal(result{Config: *name, XLA: *xla, Replicas: *replicas, Devices: *cpus, MsPerStep: ms, Params: m.CountParams(), Tokens: c.batch * c.gpt.SeqLen})
	fmt.Fprintln(os.Stdout, string(out))
}
