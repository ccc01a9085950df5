// Command transformer trains a GPT-style decoder-only language model on
// TensorFlow's runtime from Go: byte tokens of Go's own source tree, learned
// token and position embeddings, post-LN transformer blocks (causal
// multi-head attention + residual + LayerNormalization, GELU feed-forward +
// residual + LayerNormalization), Adam with warm-up and cosine decay, one
// session run per step. It prints the TensorFlow version and devices, shows
// a progress bar, logs TensorBoard events under DIR/logs, writes a
// TensorFlow checkpoint per epoch under DIR/checkpoints (and resumes from the
// latest one when run again), exports the trained model for TensorFlow
// Serving to DIR/saved_model/<step>/ and as a Keras 3 file DIR/model.keras,
// and samples text from it. It is what `make run` runs.
//
//	go run ./examples/transformer -steps 300 -out out/transformer        # the default: ~2 minutes on 2 cores
//	go run ./examples/transformer -layers 8 -dmodel 512 -heads 8 -batch 32 -steps 5000   # large
//	go run ./examples/transformer -layers 2 -dmodel 64 -heads 2 -seq 64 -steps 50        # a quick look
//	go run ./examples/transformer -policy mixed_bfloat16 -remat -memory                  # the memory levers, measured
//	go run ./examples/transformer -replicas 2                                            # data parallel (GPUs, else logical CPUs)
//	go run ./examples/transformer -model-parallel 2                                      # blocks split over 2 devices
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"time"

	"github.com/gotf/gotf/distribute"
	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/mixedprecision"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
)

type config struct {
	layers, dModel, heads, seq, batch int
	steps, epochs                     int
	lr                                float64
	corpusBytes                       int
	sample                            int
	temperature                       float64
	out                               string
	seed                              int64
	threads                           int
	memory                            bool
	policy                            string
	remat                             bool
	replicas, modelParallel           int
}

func main() {
	var c config
	flag.IntVar(&c.layers, "layers", 4, "transformer blocks")
	flag.IntVar(&c.dModel, "dmodel", 256, "model width (d_model)")
	flag.IntVar(&c.heads, "heads", 4, "attention heads")
	flag.IntVar(&c.seq, "seq", 128, "sequence length (tokens)")
	flag.IntVar(&c.batch, "batch", 16, "batch size")
	flag.IntVar(&c.steps, "steps", 300, "training steps in all")
	flag.IntVar(&c.epochs, "epochs", 3, "epochs the steps are split into (a checkpoint per epoch)")
	flag.Float64Var(&c.lr, "lr", 2e-3, "peak learning rate (Adam, warm-up + cosine decay)")
	flag.IntVar(&c.corpusBytes, "corpus", 4<<20, "bytes of Go source to train on")
	flag.IntVar(&c.sample, "sample", 300, "bytes of text to sample after training")
	flag.Float64Var(&c.temperature, "temperature", 0.7, "sampling temperature")
	flag.StringVar(&c.out, "out", "out/transformer", "output directory (logs/, checkpoints/)")
	flag.Int64Var(&c.seed, "seed", 1, "seed of data order, initial weights and sampling")
	flag.IntVar(&c.threads, "threads", 0, "intra-op threads (0: TensorFlow's choice)")
	flag.BoolVar(&c.memory, "memory", false, "trace every step and print per epoch the peak step memory (TensorFlow allocator) and the process RSS")
	flag.StringVar(&c.policy, "policy", "float32", "Keras dtype policy: float32, mixed_bfloat16 (CPUs, TPUs) or mixed_float16 (GPUs; with loss scaling)")
	flag.BoolVar(&c.remat, "remat", false, "recompute each block's activations in the backward pass (gradient checkpointing): less memory, more compute")
	flag.IntVar(&c.replicas, "replicas", 1, "data parallelism: mirror the model over N devices (GPUs when there are N, else N logical CPUs), each step's batch split between them")
	flag.IntVar(&c.modelParallel, "model-parallel", 1, "model parallelism: split the blocks over K devices (GPUs when there are K, else K logical CPUs)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, c config, w io.Writer) error {
	fmt.Fprintf(w, "TensorFlow %s (Go %s, %d CPUs)\n", tfgo.Version(), runtime.Version(), runtime.NumCPU())
	corpus, err := goSourceCorpus(runtime.GOROOT(), c.corpusBytes)
	if err != nil {
		return err
	}
	tok := keraslike.ByteTokenizer{}
	ids := tok.Encode(corpus)
	split := len(ids) * 95 / 100
	train, err := keraslike.NextTokenDataset(ids[:split], c.seq, c.batch, c.seed)
	if err != nil {
		return err
	}
	val, err := keraslike.NextTokenDataset(ids[split:], c.seq, c.batch, c.seed)
	if err != nil {
		return err
	}
	val.Shuffle = false
	fmt.Fprintf(w, "corpus: %d bytes of Go source from %s (%d training windows of %d tokens)\n", len(corpus), runtime.GOROOT(), len(train.X), c.seq)

	keraslike.ResetNames()
	policy := mixedprecision.Float32
	if c.policy != "" {
		if policy, err = mixedprecision.NewPolicy(c.policy); err != nil {
			return err
		}
	}
	mixedprecision.SetGlobalPolicy(policy)
	defer mixedprecision.SetGlobalPolicy(mixedprecision.Float32)
	devices, sessOpts, err := placement(c)
	if err != nil {
		return err
	}
	gc := keraslike.GPTConfig{SeqLen: c.seq, DModel: c.dModel, Heads: c.heads, Layers: c.layers,
		Remat: c.remat, Float32Logits: policy.IsMixed()}
	var strategy *distribute.MirroredStrategy
	if c.replicas > 1 {
		if strategy, err = distribute.NewMirroredStrategy(devices...); err != nil {
			return err
		}
	} else if c.modelParallel > 1 {
		gc.Devices = devices
	}
	m, err := keraslike.NewGPT("gpt", gc)
	if err != nil {
		return err
	}
	defer m.Close()
	sessOpts.IntraOpThreads = c.threads
	m.SetSessionOptions(sessOpts)
	warmup := max(c.steps/20, 1)
	opt := keraslike.NewAdam(keraslike.AdamOptions{OptimizerOptions: keraslike.OptimizerOptions{
		Schedule: keraslike.WarmupCosine{Peak: c.lr, WarmupSteps: warmup, DecaySteps: c.steps - warmup, Alpha: 0.1}, GlobalClipNorm: 1}})
	if err := m.Compile(keraslike.CompileOptions{Optimizer: opt, Loss: keraslike.SparseCategoricalCrossentropy{FromLogits: true},
		Metrics: []string{"accuracy"}, BatchSize: c.batch, Strategy: strategy}); err != nil {
		return err
	}
	sess, err := m.Session()
	if err != nil {
		return err
	}
	devs, err := sess.ListDevices()
	if err != nil {
		return err
	}
	for _, d := range devs {
		fmt.Fprintf(w, "device: %s (%s)\n", d.Name, d.Type)
	}
	fmt.Fprint(w, m.Summary())

	ckptDir := filepath.Join(c.out, "checkpoints")
	stepsPerEpoch := max(c.steps/c.epochs, 1)
	initialEpoch := 0
	if latest, err := savedmodel.LatestCheckpoint(ckptDir); err == nil {
		if err := m.LoadCheckpoint(latest); err != nil {
			return fmt.Errorf("resuming from %s: %w", latest, err)
		}
		done, err := iterations(m)
		if err != nil {
			return err
		}
		initialEpoch = int(done) / stepsPerEpoch
		fmt.Fprintf(w, "resumed from %s (step %d, epoch %d)\n", latest, done, initialEpoch)
		if initialEpoch >= c.epochs {
			fmt.Fprintf(w, "already trained %d epochs; remove %s or raise -epochs to train more\n", initialEpoch, ckptDir)
		}
	}

	before, err := m.Evaluate(firstBatches(val, 4))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "validation loss before training: %.4f (ln 256 = %.4f)\n", before["loss"], math.Log(256))

	tb := &keraslike.TensorBoard{LogDir: filepath.Join(c.out, "logs"), UpdateFreq: 10}
	ck := &keraslike.ModelCheckpoint{Path: filepath.Join(ckptDir, "model_shard_{epoch}"), MaxToKeep: 3}
	callbacks := []keraslike.Callback{&keraslike.ProgressBar{W: w}, tb, ck}
	if c.memory {
		// After the progress bar, so that its line follows the epoch's.
		callbacks = append(callbacks, &keraslike.MemoryMonitor{W: w})
	}
	start := time.Now()
	hist, err := m.Fit(ctx, train, keraslike.FitOptions{
		Epochs: c.epochs, InitialEpoch: initialEpoch, StepsPerEpoch: stepsPerEpoch, Validation: firstBatches(val, 8),
		Callbacks: callbacks,
	})
	if err != nil {
		return err
	}
	if len(hist.Epochs) > 0 {
		if err := report(w, c, m, hist, stepsPerEpoch, time.Since(start), tb, ck); err != nil {
			return err
		}
	}
	text, err := sample(m, c, []byte("func (s *Scope) "))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "--- sampled from the trained model (temperature %.1f) ---\n%s\n---\n", c.temperature, text)
	return nil
}

// report prints what training did and exports the trained model: a
// SavedModel for TensorFlow Serving (version = training step) and a Keras 3 file.
func report(w io.Writer, c config, m *keraslike.Model, hist *keraslike.History, stepsPerEpoch int, elapsed time.Duration,
	tb *keraslike.TensorBoard, ck *keraslike.ModelCheckpoint) error {
	if tb.Err != nil {
		fmt.Fprintf(w, "warning: TensorBoard logs: %v\n", tb.Err)
	}
	last := hist.Epochs[len(hist.Epochs)-1]
	steps := len(hist.Epochs) * stepsPerEpoch
	tokens := float64(steps * c.batch * c.seq)
	fmt.Fprintf(w, "trained %d steps in %s (%.0f tokens/s, %.1f GFLOP/s of model math)\n", steps, elapsed.Round(time.Second),
		tokens/elapsed.Seconds(), 6*float64(m.CountParams())*tokens/elapsed.Seconds()/1e9)
	fmt.Fprintf(w, "loss: %.4f (ln 256) -> train %.4f, validation %.4f (perplexity %.2f)\n", math.Log(256), last["loss"], last["val_loss"], math.Exp(last["val_loss"]))
	fmt.Fprintf(w, "TensorBoard: tensorboard --logdir %s\n", tb.LogDir)
	if len(ck.Saved) > 0 {
		fmt.Fprintf(w, "checkpoint: %s (tf.train.load_checkpoint reads it)\n", ck.Saved[len(ck.Saved)-1])
	}
	version, err := iterations(m)
	if err != nil {
		return err
	}
	exported, err := m.ExportVersion(filepath.Join(c.out, "saved_model"), version, keraslike.ExportOptions{InputName: "token_ids", OutputName: "logits"})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "SavedModel: %s (serving_default: token_ids int32 [batch, %d] -> logits float32 [batch, %d, 256])\n", exported, c.seq, c.seq)
	kerasFile := filepath.Join(c.out, "model.keras")
	if err := m.SaveKeras(kerasFile); err != nil {
		return err
	}
	fmt.Fprintf(w, "Keras 3 file: %s (keras.models.load_model after import gotf.keraslike; pip install ./python)\n", kerasFile)
	return nil
}

// placement is the devices -replicas or -model-parallel asks for: the
// first N GPUs when the runtime has N, else N logical CPU devices (the same
// code runs on both), and the session options that make them.
func placement(c config) ([]string, tfgo.SessionOptions, error) {
	if c.replicas == 0 {
		c.replicas = 1 // a config made in Go without the flag
	}
	if c.modelParallel == 0 {
		c.modelParallel = 1
	}
	n := max(c.replicas, c.modelParallel)
	if c.replicas > 1 && c.modelParallel > 1 {
		return nil, tfgo.SessionOptions{}, fmt.Errorf("-replicas %d with -model-parallel %d: combining data and model parallelism is not implemented", c.replicas, c.modelParallel)
	}
	if c.replicas < 1 || c.modelParallel < 1 {
		return nil, tfgo.SessionOptions{}, fmt.Errorf("-replicas and -model-parallel must be >= 1, got %d and %d", c.replicas, c.modelParallel)
	}
	if c.replicas > 1 && c.batch%c.replicas != 0 {
		return nil, tfgo.SessionOptions{}, fmt.Errorf("-batch %d does not split into -replicas %d equal parts", c.batch, c.replicas)
	}
	if c.modelParallel > c.layers {
		return nil, tfgo.SessionOptions{}, fmt.Errorf("-model-parallel %d is more than the %d blocks (-layers)", c.modelParallel, c.layers)
	}
	if n == 1 {
		return nil, tfgo.SessionOptions{}, nil
	}
	gpus, err := countGPUs()
	if err != nil {
		return nil, tfgo.SessionOptions{}, err
	}
	kind, opts := "GPU", tfgo.SessionOptions{}
	if gpus < n {
		kind, opts = "CPU", tfgo.SessionOptions{DeviceCount: map[string]int32{"CPU": int32(n)}}
	}
	devices := make([]string, n)
	for i := range devices {
		devices[i] = fmt.Sprintf("/device:%s:%d", kind, i)
	}
	return devices, opts, nil
}

// countGPUs is the number of GPUs the runtime sees.
func countGPUs() (int, error) {
	sess, err := tfgo.NewSession(tfgo.NewScope(), tfgo.SessionOptions{})
	if err != nil {
		return 0, err
	}
	defer sess.Close()
	devs, err := sess.ListDevices()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range devs {
		if d.Type == "GPU" {
			n++
		}
	}
	return n, nil
}

// iterations reads the optimizer's step counter.
func iterations(m *keraslike.Model) (int64, error) {
	sess, err := m.Session()
	if err != nil {
		return 0, err
	}
	out, err := sess.Run(nil, []tfgo.Output{m.Optimizer().Iterations().Value()})
	if err != nil {
		return 0, err
	}
	defer out[0].Close()
	v, err := tfgo.Int64s(out[0])
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// firstBatches is the first n batches of a dataset, in order.
func firstBatches(d *keraslike.ArrayDataset[[]int32, []int32], n int) *keraslike.ArrayDataset[[]int32, []int32] {
	k := min(n*d.BatchSize, len(d.X))
	return &keraslike.ArrayDataset[[]int32, []int32]{X: d.X[:k], Y: d.Y[:k], BatchSize: d.BatchSize, DropRemainder: true}
}

// sample continues prompt by c.sample bytes, one model run per byte,
// drawing each from the softmax of the last position's logits / temperature.
func sample(m *keraslike.Model, c config, prompt []byte) (string, error) {
	r := rand.New(rand.NewSource(c.seed))
	ids := keraslike.ByteTokenizer{}.Encode(prompt)
	for len(ids) < len(prompt)+c.sample {
		window := make([]int32, c.seq)
		ctxIDs := ids[max(0, len(ids)-c.seq):]
		copy(window, ctxIDs) // left-aligned; positions after the context are ignored (causal)
		out, err := m.Predict([][]int32{window})
		if err != nil {
			return "", err
		}
		logits, err := tfgo.Float32s(out)
		out.Close()
		if err != nil {
			return "", err
		}
		pos := len(ctxIDs) - 1
		row := logits[pos*256 : (pos+1)*256]
		ids = append(ids, draw(r, row, c.temperature))
	}
	return keraslike.ByteTokenizer{}.Decode(ids), nil
}

func draw(r *rand.Rand, logits []float32, temperature float64) int32 {
	maxL := math.Inf(-1)
	for _, l := range logits {
		maxL = math.Max(maxL, float64(l))
	}
	p := make([]float64, len(logits))
	sum := 0.0
	for i, l := range logits {
		p[i] = math.Exp((float64(l) - maxL) / temperature)
		sum += p[i]
	}
	u := r.Float64() * sum
	for i, pi := range p {
		if u -= pi; u <= 0 {
			return int32(i)
		}
	}
	return int32(len(p) - 1)
}
