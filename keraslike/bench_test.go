package keraslike

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
)

// BenchmarkFitStep is one Fit step of a model so small that the kernels
// cost next to nothing: what it measures is keraslike's own per-step work
// (batch assembly, feeds, the session run's fixed cost, callbacks, logs).
func BenchmarkFitStep(b *testing.B) {
	ResetNames()
	m := NewSequential("tiny", InputSpec{Shape: []int64{8}}, NewDense(16, DenseOptions{Activation: "relu"}), NewDense(4, DenseOptions{}))
	defer m.Close()
	if err := m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}}); err != nil {
		b.Fatal(err)
	}
	const batch = 32
	data := func(steps int) Dataset {
		x, y := mlpData(rand.New(rand.NewSource(1)), steps*batch)
		return &ArrayDataset[[]float32, int32]{X: x, Y: y, BatchSize: batch}
	}
	// The first Fit builds the training graph and lets Grappler run: kept
	// out of the timing, which is the steady state a long training sees.
	if _, err := m.Fit(context.Background(), data(2), FitOptions{Epochs: 1}); err != nil {
		b.Fatal(err)
	}
	d := data(b.N)
	b.ResetTimer()
	if _, err := m.Fit(context.Background(), d, FitOptions{Epochs: 1}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSavedModel times runner.Load and serving_default runs at batch 1
// and 32 of the SavedModel in $GOTF_BENCH_SAVEDMODEL (scripts/bench.py
// points it at the main job's export and compares with Python), else of a
// small GPT exported here. Besides the mean ns/op it reports the median,
// which load on a shared machine disturbs less.
func BenchmarkSavedModel(b *testing.B) {
	dir := os.Getenv("GOTF_BENCH_SAVEDMODEL")
	if dir == "" {
		dir = b.TempDir() + "/gpt"
		ResetNames()
		m, err := NewGPT("gpt", GPTConfig{SeqLen: 32, DModel: 32, Heads: 2, Layers: 1})
		if err != nil {
			b.Fatal(err)
		}
		err = m.Export(dir, ExportOptions{})
		m.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Run("load", func(b *testing.B) {
		var ts []time.Duration
		for i := 0; i < b.N; i++ {
			start := time.Now()
			m, err := runner.Load(dir)
			if err != nil {
				b.Fatal(err)
			}
			ts = append(ts, time.Since(start))
			m.Close()
		}
		reportMedian(b, ts)
	})
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			m, err := runner.Load(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			sig, ok := m.Signature("serving_default")
			if !ok || len(sig.Inputs) != 1 {
				b.Fatalf("%s: want a serving_default signature with one input, have %v", dir, m.Signatures())
			}
			key := sig.InputNames()[0]
			in := sig.Inputs[key]
			if in.DType != tfgo.Int32 || len(in.Shape.Dims) != 2 || in.Shape.Dims[1] < 1 {
				b.Fatalf("%s: input %q is %s %s, want int32 [batch, seq] token ids", dir, key, in.DType, in.Shape)
			}
			r := rand.New(rand.NewSource(1))
			ids := make([][]int32, batch)
			for i := range ids {
				ids[i] = make([]int32, in.Shape.Dims[1])
				for j := range ids[i] {
					ids[i][j] = int32(r.Intn(256))
				}
			}
			run := func() time.Duration {
				start := time.Now()
				out, err := m.Run(context.Background(), "serving_default", map[string]any{key: ids})
				if err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				for _, t := range out {
					t.Close()
				}
				return d
			}
			// The first runs let Grappler optimize and allocators settle,
			// as a server's do before its traffic counts.
			for i := 0; i < 3; i++ {
				run()
			}
			b.ResetTimer()
			var ts []time.Duration
			for i := 0; i < b.N; i++ {
				ts = append(ts, run())
			}
			reportMedian(b, ts)
		})
	}
}

func reportMedian(b *testing.B, ts []time.Duration) {
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	b.ReportMetric(float64(ts[len(ts)/2])/1e6, "median-ms")
}
