package main

import (
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/internal/modelstats"
	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/tfgo"
	"github.com/spf13/cobra"
)

type quantizeFlags struct {
	mode        string
	weightOnly  bool
	evalText    string
	evalWindows int
	iters       int
	batches     string
}

func newQuantizeCmd() *cobra.Command {
	var f quantizeFlags
	cmd := &cobra.Command{
		Use:   "quantize SRC DST",
		Short: "Quantize a Keras model to int8 (Keras' model.quantize) and report size, accuracy and latency",
		Long: `Loads the Keras model SRC (.keras or legacy .h5), quantizes it as Keras 3's
model.quantize(mode) does (int8 kernels with per-channel scales for Dense,
Embedding and the attention projections; inputs quantized per row at run
time), and writes it to DST:
  DST ending in .keras, .h5 or .hdf5   the quantized Keras file (Keras 3 loads it
                                       as a quantized model); refused for models
                                       whose custom layers hold quantized
                                       sublayers (the GPT's TransformerBlock),
                                       which a Keras file cannot rebuild
  any other DST                        a SavedModel directory for TF Serving, its
                                       variables stored in int8

It then prints a report of the float32 model against the quantized one:
size on disk (the same format written for both), inference latency at each
--batch_sizes (medians of --iters runs, on random inputs), the MatMul kernels
TensorFlow ran, and, given --eval_text, the next-token loss and perplexity of
a token model (int32 [batch, seq] in, logits [batch, seq, vocab] out, such as
the main job's GPT) on windows of the file's bytes.

--weight_only keeps the int8 storage but computes in floating point (Keras'
Int8QuantizationConfig(activation_quantizer=None)), for devices without int8
kernels. Modes other than int8 (int4, float8, gptq, awq) are refused.`,
		Example: `  gotf quantize out/transformer/model.keras model_int8.keras --eval_text corpus.txt
  gotf quantize model.keras export/int8/1 --weight_only
  gotf quantize model.h5 model_int8.h5 --batch_sizes 1,8,32 --iters 50`,
		Args: exactArgs(2, "a Keras model SRC and a destination DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return quantize(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], args[1], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.mode, "mode", "int8", "the quantization mode (Keras' model.quantize(mode)); int8 is implemented")
	fl.BoolVar(&f.weightOnly, "weight_only", false, "int8 storage, floating-point compute")
	fl.StringVar(&f.evalText, "eval_text", "", "a file whose bytes are held-out tokens for the next-token loss")
	fl.IntVar(&f.evalWindows, "eval_windows", 64, "at most this many windows of --eval_text")
	fl.IntVar(&f.iters, "iters", 20, "timed runs per latency figure")
	fl.StringVar(&f.batches, "batch_sizes", "1,32", "batch sizes to time, comma-separated")
	return cmd
}

// variantStats are one model's figures in the report.
type variantStats struct {
	name    string
	size    int64
	latency []time.Duration // per batch size
	loss    float64         // NaN when not measured
	kernels map[string]int
}

func quantize(w, stderr io.Writer, src, dst string, f quantizeFlags) error {
	batches, err := parseBatches(f.batches)
	if err != nil {
		return err
	}
	if f.iters < 1 || f.evalWindows < 1 {
		return usagef("--iters and --eval_windows must be positive")
	}
	if _, err := os.Stat(src); err != nil {
		return err
	}
	var eval []byte
	if f.evalText != "" {
		if eval, err = os.ReadFile(f.evalText); err != nil {
			return err
		}
	}
	steps := 4 + 2*len(batches)
	if eval != nil {
		steps += 2
	}
	pr := newProgress(stderr, "gotf quantize", steps)
	defer pr.done()
	pr.step("loading %s", src)
	float, err := keraslike.LoadKerasModel(src, keraslike.LoadOptions{})
	if err != nil {
		return err
	}
	defer float.Close()
	q, err := keraslike.LoadKerasModel(src, keraslike.LoadOptions{})
	if err != nil {
		return err
	}
	defer q.Close()
	pr.step("quantizing to %s", f.mode)
	if err := q.QuantizeWithOptions(f.mode, keraslike.QuantizeOptions{WeightOnly: f.weightOnly}); err != nil {
		return err
	}
	keras := false
	switch strings.ToLower(filepath.Ext(dst)) {
	case ".keras", ".h5", ".hdf5":
		keras = true
	}
	save := func(m *keraslike.Model, path string) error {
		if keras {
			return m.SaveKeras(path)
		}
		return m.Export(path, keraslike.ExportOptions{})
	}
	pr.step("writing %s", dst)
	if err := save(q, dst); err != nil {
		return err
	}
	if keras {
		// A custom layer's quantized sublayers (the GPT's TransformerBlock)
		// are not in its config, so its Keras file cannot rebuild them (a
		// Keras file of such a layer quantized by Keras fails the same way):
		// no file that does not load back is left behind.
		m, err := keraslike.LoadKerasModel(dst, keraslike.LoadOptions{})
		if err != nil {
			os.Remove(dst)
			return fmt.Errorf("the quantized model's Keras file does not load back, so it was not kept (%v); write a SavedModel instead (a DST directory)", err)
		}
		m.Close()
	}
	// The float model written the same way, for the size beside DST's.
	tmp, err := os.MkdirTemp("", "gotf-quantize")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	floatPath := filepath.Join(tmp, "float32"+filepath.Ext(dst))
	pr.step("writing the float32 model to compare sizes")
	if err := save(float, floatPath); err != nil {
		return err
	}
	sized := func(path string) (int64, error) {
		if !keras {
			path = filepath.Join(path, "variables")
		}
		return modelstats.Size(path)
	}

	label := f.mode
	if f.weightOnly {
		label = "weight-only " + f.mode
	}
	vs := []*variantStats{{name: "float32"}, {name: label}}
	r := rand.New(rand.NewSource(1))
	for i, m := range []*keraslike.Model{float, q} {
		v := vs[i]
		if v.size, err = sized([]string{floatPath, dst}[i]); err != nil {
			return err
		}
		v.loss = math.NaN()
		for _, b := range batches {
			pr.step("timing %s at batch %d", vs[i].name, b)
			x, err := randomInput(r, m.Input(), b)
			if err != nil {
				return err
			}
			d, err := modelstats.Latency(m, x, f.iters)
			if err == nil && v.kernels == nil {
				v.kernels, err = modelstats.Kernels(m, x)
			}
			x.Close()
			if err != nil {
				return err
			}
			v.latency = append(v.latency, d)
		}
		if eval != nil {
			pr.step("next-token loss of %s", vs[i].name)
			if v.loss, err = evalLoss(m, eval, f.evalWindows); err != nil {
				return fmt.Errorf("--eval_text %s: %w", f.evalText, err)
			}
		}
	}
	pr.done()
	return report(w, src, dst, batches, vs)
}

func parseBatches(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return nil, usagef("--batch_sizes %q: want positive integers like 1,32", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// maxTimingElements bounds the random inputs quantize times with (1 GiB
// of float32).
const maxTimingElements = 1 << 28

// randomInput is a batch for in: normal floats, or ids 0..1 for integer
// inputs (valid for any embedding); unknown dimensions other than the
// batch are refused, since no size can be guessed for them.
func randomInput(r *rand.Rand, in tfgo.Output, batch int) (*tfgo.Tensor, error) {
	sh, err := in.Shape()
	if err != nil || sh.UnknownRank || len(sh.Dims) == 0 {
		return nil, fmt.Errorf("the model's input has no known shape to time it with")
	}
	dims := append([]int64{int64(batch)}, sh.Dims[1:]...)
	for _, d := range dims {
		if d < 0 {
			return nil, fmt.Errorf("the model's input shape %v has an unknown dimension besides the batch: no size to time it with", sh.Dims)
		}
	}
	// The shape comes from the model file: bounded before allocating.
	n, err := dtypes.NumElements(dims)
	if err != nil || n > maxTimingElements {
		return nil, fmt.Errorf("a batch of %d of the model's input shape %v is over %d elements: time it with smaller --batch_sizes", batch, sh.Dims, maxTimingElements)
	}
	switch in.DataType() {
	case tfgo.Float:
		vals := make([]byte, 0, 4*n)
		for range n {
			vals = appendFloat32(vals, float32(r.NormFloat64()))
		}
		return tfgo.NewTensorFromBytes(tfgo.Float, dims, vals)
	case tfgo.Int32:
		vals := make([]byte, 4*n)
		for i := range n {
			vals[4*i] = byte(r.Intn(2))
		}
		return tfgo.NewTensorFromBytes(tfgo.Int32, dims, vals)
	}
	return nil, fmt.Errorf("timing a model whose input is %v is not implemented (float32 and int32 are)", in.DataType())
}

func appendFloat32(b []byte, v float32) []byte {
	u := math.Float32bits(v)
	return append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
}

// evalLoss is m's mean next-token cross-entropy on up to n windows of
// text's bytes, each the model's sequence length plus one.
func evalLoss(m *keraslike.Model, text []byte, n int) (float64, error) {
	sh, err := m.Input().Shape()
	if err != nil || len(sh.Dims) != 2 || sh.Dims[1] < 1 || m.Input().DataType() != tfgo.Int32 {
		return 0, fmt.Errorf("the next-token loss needs a model of int32 [batch, seq] token ids with a known seq")
	}
	seq := int(sh.Dims[1])
	n = min(n, len(text)/(seq+1))
	if n == 0 {
		return 0, fmt.Errorf("%d bytes make no window of %d tokens", len(text), seq+1)
	}
	xs, ys := make([][]int32, n), make([][]int32, n)
	for i := range n {
		win := text[i*(seq+1):][:seq+1]
		xs[i], ys[i] = make([]int32, seq), make([]int32, seq)
		for j := range seq {
			xs[i][j], ys[i][j] = int32(win[j]), int32(win[j+1])
		}
	}
	x, err := tfgo.NewTensor(xs)
	if err != nil {
		return 0, err
	}
	defer x.Close()
	sess, err := m.Session()
	if err != nil {
		return 0, err
	}
	out, err := sess.Run(map[tfgo.Output]any{m.Input(): x}, []tfgo.Output{m.Output()})
	if err != nil {
		return 0, err
	}
	defer out[0].Close()
	if s := out[0].Shape(); len(s) != 3 || s[2] < 256 {
		return 0, fmt.Errorf("the model's output %v is not [batch, seq, vocab >= 256] logits over bytes", s)
	}
	return modelstats.NextTokenLoss(out[0], ys)
}

func report(w io.Writer, src, dst string, batches []int, vs []*variantStats) error {
	f, q := vs[0], vs[1]
	fmt.Fprintf(w, "Quantized %s -> %s\n\n", src, dst)
	fmt.Fprintf(w, "%-22s %14s %14s %10s\n", "", f.name, q.name, "ratio")
	fmt.Fprintf(w, "%-22s %14s %14s %9.1f%%\n", "size on disk", mib(f.size), mib(q.size), 100*float64(q.size)/float64(max(f.size, 1)))
	for i, b := range batches {
		fmt.Fprintf(w, "%-22s %14s %14s %9.2fx\n", fmt.Sprintf("latency, batch %d", b),
			ms(f.latency[i]), ms(q.latency[i]), float64(f.latency[i])/float64(max(q.latency[i], 1)))
	}
	if !math.IsNaN(f.loss) {
		fmt.Fprintf(w, "%-22s %14.4f %14.4f %+10.4f\n", "next-token loss", f.loss, q.loss, q.loss-f.loss)
		fmt.Fprintf(w, "%-22s %14.2f %14.2f %+9.2f%%\n", "perplexity", math.Exp(f.loss), math.Exp(q.loss), 100*(math.Exp(q.loss-f.loss)-1))
	} else {
		fmt.Fprintf(w, "%-22s %14s\n", "accuracy", "not measured (--eval_text for a token model)")
	}
	for _, v := range vs {
		fmt.Fprintf(w, "MatMul kernels, %s: %s\n", v.name, kernelList(v.kernels))
	}
	return nil
}

func kernelList(ks map[string]int) string {
	var names []string
	for k := range ks {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s x%d", k, ks[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func mib(n int64) string        { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
