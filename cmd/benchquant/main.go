// Command benchquant measures Keras 3-style int8 quantization
// (keraslike.Model.Quantize) on the main job's GPT (examples/transformer's
// defaults: 4 post-LN blocks of width 256, 4 heads, 128 byte tokens). It
// trains the GPT for -steps steps on the module's own Go source, holds out
// the last tenth of that text, and compares
//
//   - float32: the trained model;
//   - int8: Quantize("int8") — int8 kernels with per-channel scales, inputs
//     quantized per row at run time, int8 x int8 -> int32 products on
//     oneDNN's int8 kernel;
//   - weight-only int8: QuantizeWithOptions("int8", {WeightOnly: true}) —
//     int8 storage, float32 MatMul on the kernel cast to float;
//
// reporting for each the median latency of one inference run (one session
// run of the serving graph, ids fed as a tensor) at batch 1 and batch 32
// over -iters runs after 3 warm-up runs, the validation loss (mean
// next-token cross-entropy) and perplexity on -val held-out windows, the
// size of its SavedModel (Model.Export; the float16 and bfloat16
// weight-only exports too), and, from one fully traced run, the
// MatMul-family kernels that ran with their input dtype.
//
// It prints the machine and one markdown report, and writes it to
// bench/<date>-quant-<cpu>.md. Run it with
//
//	make bench-quant                 # ARGS="-steps 50" to change flags
//	go run ./cmd/benchquant -steps 200 -iters 50
//
// (after `eval "$(make -s env)"` for plain go run). The machine may be
// shared: latencies are medians, and the report says how many cores Go saw.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/gotf/gotf/internal/cpuinfo"
	"github.com/gotf/gotf/internal/modelstats"
	"github.com/gotf/gotf/internal/setup"
	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/tfgo"
)

type options struct {
	steps, iters, val, corpus int
	out                       string
}

func main() {
	var o options
	flag.IntVar(&o.steps, "steps", 100, "training steps (batch 16) before quantizing")
	flag.IntVar(&o.iters, "iters", 30, "timed inference runs per model and batch size")
	flag.IntVar(&o.val, "val", 32, "held-out windows of 128 tokens for the validation loss")
	flag.IntVar(&o.corpus, "corpus", 4<<20, "bytes of the module's Go source to train on")
	flag.StringVar(&o.out, "out", "bench", "directory of the report (\"\" prints only)")
	flag.Parse()
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

var gptConfig = keraslike.GPTConfig{SeqLen: 128, DModel: 256, Heads: 4, Layers: 4}

// variant is one way of storing and computing the trained model.
type variant struct {
	name      string
	m         *keraslike.Model
	latency   map[int]time.Duration // by batch size
	loss      float64
	kernels   map[string]int
	savedSize int64 // SavedModel variables, bytes
}

func run(o options) error {
	root, err := setup.ModuleRoot()
	if err != nil {
		return err
	}
	toks, err := corpus(root, o.corpus)
	if err != nil {
		return err
	}
	split := len(toks) * 9 / 10
	seq := gptConfig.SeqLen
	if (len(toks)-split)/(seq+1) < o.val {
		return fmt.Errorf("%d held-out tokens make fewer than %d windows", len(toks)-split, o.val)
	}
	var xv, yv [][]int32
	for i := 0; i < o.val; i++ {
		w := toks[split+i*(seq+1):][:seq+1]
		xv, yv = append(xv, w[:seq]), append(yv, w[1:])
	}

	log.Printf("training the GPT for %d steps on %d tokens", o.steps, split)
	keraslike.ResetNames()
	trained, err := keraslike.NewGPT("gpt", gptConfig)
	if err != nil {
		return err
	}
	defer trained.Close()
	if err := trained.Compile(keraslike.CompileOptions{
		Optimizer: keraslike.NewAdam(keraslike.AdamOptions{OptimizerOptions: keraslike.OptimizerOptions{LearningRate: 2e-3}}),
		Loss:      keraslike.SparseCategoricalCrossentropy{FromLogits: true}}); err != nil {
		return err
	}
	ds, err := keraslike.NextTokenDataset(toks[:split], seq, 16, 1)
	if err != nil {
		return err
	}
	start := time.Now()
	if _, err := trained.Fit(context.Background(), ds, keraslike.FitOptions{Epochs: 1, StepsPerEpoch: o.steps}); err != nil {
		return err
	}
	trainTime := time.Since(start)
	weights, err := trained.GetWeights()
	if err != nil {
		return err
	}

	tmp, err := os.MkdirTemp("", "benchquant")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	halfSizes := map[string]int64{}
	for name, dt := range map[string]tfgo.DataType{"float16": tfgo.Half, "bfloat16": tfgo.BFloat16} {
		d := filepath.Join(tmp, name)
		if err := trained.Export(d, keraslike.ExportOptions{WeightDType: dt}); err != nil {
			return err
		}
		if halfSizes[name], err = modelstats.Size(filepath.Join(d, "variables")); err != nil {
			return err
		}
	}

	vs := []*variant{{name: "float32", m: trained}}
	for _, q := range []struct {
		name string
		o    keraslike.QuantizeOptions
	}{{"int8", keraslike.QuantizeOptions{}}, {"weight-only int8", keraslike.QuantizeOptions{WeightOnly: true}}} {
		keraslike.ResetNames()
		m, err := keraslike.NewGPT("gpt", gptConfig)
		if err != nil {
			return err
		}
		defer m.Close()
		if err := m.SetWeights(weights); err != nil {
			return err
		}
		if err := m.QuantizeWithOptions("int8", q.o); err != nil {
			return err
		}
		vs = append(vs, &variant{name: q.name, m: m})
	}

	r := rand.New(rand.NewSource(1))
	for _, v := range vs {
		log.Printf("measuring %s", v.name)
		logits, err := v.m.Predict(xv)
		if err != nil {
			return err
		}
		v.loss, err = modelstats.NextTokenLoss(logits, yv)
		if err != nil {
			return err
		}
		d := filepath.Join(tmp, strings.ReplaceAll(v.name, " ", "_"))
		if err := v.m.Export(d, keraslike.ExportOptions{}); err != nil {
			return err
		}
		if v.savedSize, err = modelstats.Size(filepath.Join(d, "variables")); err != nil {
			return err
		}
		v.latency = map[int]time.Duration{}
		for _, b := range []int{1, 32} {
			x, err := randomIDs(r, b, seq)
			if err != nil {
				return err
			}
			if v.latency[b], err = modelstats.Latency(v.m, x, o.iters); err != nil {
				return err
			}
			if b == 32 {
				if v.kernels, err = modelstats.Kernels(v.m, x); err != nil {
					return err
				}
			}
			x.Close()
		}
	}

	report := format(o, vs, halfSizes, trainTime)
	fmt.Print(report)
	if o.out != "" {
		model := cpuinfo.Read().Model
		path := filepath.Join(root, o.out, fmt.Sprintf("%s-quant-%s.md", time.Now().UTC().Format("2006-01-02"), cpuinfo.FileName(model)))
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
			return err
		}
		log.Printf("wrote %s", path)
	}
	return nil
}

// corpus is up to n bytes of the module's Go source (sorted paths), as
// byte tokens: the kind of text the main job trains on.
func corpus(root string, n int) ([]int32, error) {
	var toks []int32
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || len(toks) >= n {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, c := range b[:min(len(b), n-len(toks))] {
			toks = append(toks, int32(c))
		}
		return nil
	})
	return toks, err
}

func randomIDs(r *rand.Rand, batch, seq int) (*tfgo.Tensor, error) {
	ids := make([][]int32, batch)
	for i := range ids {
		ids[i] = make([]int32, seq)
		for j := range ids[i] {
			ids[i][j] = int32(r.Intn(256))
		}
	}
	return tfgo.NewTensor(ids)
}

func format(o options, vs []*variant, half map[string]int64, train time.Duration) string {
	var b strings.Builder
	cpu := cpuinfo.Read()
	model, flags := cpu.Model, cpu.Flags("avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
	fmt.Fprintf(&b, "# int8 quantization of the main job's GPT\n\n`go run ./cmd/benchquant -steps %d -iters %d` (make bench-quant)\n\n", o.steps, o.iters)
	fmt.Fprintf(&b, "CPU: %s (%s); %d cores seen by Go, shared with other work; TensorFlow %s; Go %s\n", model, flags, runtime.NumCPU(), tfgo.Version(), runtime.Version())
	fmt.Fprintf(&b, "GPT: %d post-LN blocks, d_model %d, %d heads, seq %d, vocab 256; trained %d steps of batch 16 (Adam 2e-3) on the module's Go source in %s; validation: %d held-out windows of %d tokens\n\n",
		gptConfig.Layers, gptConfig.DModel, gptConfig.Heads, gptConfig.SeqLen, o.steps, train.Round(time.Second), o.val, gptConfig.SeqLen)
	base := vs[0]
	b.WriteString("| model | latency batch 1 ms | x | latency batch 32 ms | x | SavedModel variables MiB | % of float32 | validation loss | change | perplexity |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, v := range vs {
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.1f | %.2f | %.2f | %.1f | %.4f | %+.4f | %.3f |\n", v.name,
			ms(v.latency[1]), float64(v.latency[1])/float64(base.latency[1]),
			ms(v.latency[32]), float64(v.latency[32])/float64(base.latency[32]),
			mib(v.savedSize), 100*float64(v.savedSize)/float64(base.savedSize), v.loss, v.loss-base.loss, math.Exp(v.loss))
	}
	for _, n := range []string{"float16", "bfloat16"} {
		fmt.Fprintf(&b, "| %s weight-only export | | | | | %.2f | %.1f | | | |\n", n, mib(half[n]), 100*float64(half[n])/float64(base.savedSize))
	}
	b.WriteString("\nMatMul-family kernels of one traced batch-32 run (partition graphs after Grappler and the oneDNN rewrite; op[input dtype] x count):\n\n")
	for _, v := range vs {
		var ks []string
		for k, n := range v.kernels {
			ks = append(ks, fmt.Sprintf("%s x%d", k, n))
		}
		sort.Strings(ks)
		fmt.Fprintf(&b, "- %s: %s\n", v.name, strings.Join(ks, ", "))
	}
	b.WriteString(`
Latency: median wall time of one session run of the serving graph (ids fed as a tensor, logits fetched) after 3 warm-up runs.
int8: inputs quantized per row at run time (abs-max, round, clip), int8 x int8 -> int32 on oneDNN's int8 kernel (QuantizedMatMulWithBias with shifted unsigned inputs, the same integers as Keras' BatchMatMulV3), rescaled (Keras 3's _int8_call); weight-only int8: the int8 kernel cast to float32 and a float MatMul, rescaled.
The validation loss and the float16/bfloat16 exports' sizes are of the same trained weights; the float16/bfloat16 exports compute in float32 on the rounded weights.
`)
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func mib(n int64) float64 { return float64(n) / (1 << 20) }
