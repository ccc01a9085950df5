// Package job is the project's main job, a GPT-style decoder-only language
// model trained on TensorFlow's runtime from Go: byte tokens of Go's own
// source tree, learned token and position embeddings, post-LN transformer
// blocks, Adam with warm-up and cosine decay, one session run per step. It
// prints the TensorFlow version and devices, shows a progress bar, logs
// TensorBoard events and the hardware monitor's figures under Out/logs,
// writes a TensorFlow checkpoint per epoch under Out/checkpoints (and
// resumes from the latest one when run again), exports the trained model
// for TensorFlow Serving to Out/saved_model/<step>/ and as a Keras 3 file
// Out/model.keras, and samples text from it. examples/transformer (make
// run) and `gotf train` run it with the same flags.
package job

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"path/filepath"
	"runtime"
	"time"

	"github.com/gotf/gotf/distribute"
	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/mixedprecision"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
)

// Config is the job's settings; RegisterFlags gives each its flag and
// default.
type Config struct {
	Layers, DModel, Heads, Seq, Batch int
	Steps, Epochs                     int
	LR                                float64
	CorpusBytes                       int
	Sample                            int
	Temperature                       float64
	Out                               string
	Seed                              int64
	Threads                           int
	Memory                            bool
	Policy                            string
	Remat                             bool
	Replicas, ModelParallel           int
}

// RegisterFlags defines the job's flags on fs, writing into c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Layers, "layers", 4, "transformer blocks")
	fs.IntVar(&c.DModel, "dmodel", 256, "model width (d_model)")
	fs.IntVar(&c.Heads, "heads", 4, "attention heads")
	fs.IntVar(&c.Seq, "seq", 128, "sequence length (tokens)")
	fs.IntVar(&c.Batch, "batch", 16, "batch size")
	fs.IntVar(&c.Steps, "steps", 300, "training steps in all")
	fs.IntVar(&c.Epochs, "epochs", 3, "epochs the steps are split into (a checkpoint per epoch)")
	fs.Float64Var(&c.LR, "lr", 2e-3, "peak learning rate (Adam, warm-up + cosine decay)")
	fs.IntVar(&c.CorpusBytes, "corpus", 4<<20, "bytes of Go source to train on")
	fs.IntVar(&c.Sample, "sample", 300, "bytes of text to sample after training")
	fs.Float64Var(&c.Temperature, "temperature", 0.7, "sampling temperature")
	fs.StringVar(&c.Out, "out", "out/transformer", "output directory (logs/, checkpoints/)")
	fs.Int64Var(&c.Seed, "seed", 1, "seed of data order, initial weights and sampling")
	fs.IntVar(&c.Threads, "threads", 0, "intra-op threads (0: TensorFlow's choice)")
	fs.BoolVar(&c.Memory, "memory", false, "trace every step and print per epoch the peak step memory (TensorFlow allocator) and the process RSS")
	fs.StringVar(&c.Policy, "policy", "float32", "Keras dtype policy: float32, mixed_bfloat16 (CPUs, TPUs) or mixed_float16 (GPUs; with loss scaling)")
	fs.BoolVar(&c.Remat, "remat", false, "recompute each block's activations in the backward pass (gradient checkpointing): less memory, more compute")
	fs.IntVar(&c.Replicas, "replicas", 1, "data parallelism: mirror the model over N devices (GPUs when there are N, else N logical CPUs), each step's batch split between them")
	fs.IntVar(&c.ModelParallel, "model-parallel", 1, "model parallelism: split the blocks over K devices (GPUs when there are K, else K logical CPUs)")
}

// Run trains, reports, exports and samples as the package doc says,
// writing its report to w; ctx cancels training.
func Run(ctx context.Context, c Config, w io.Writer) error {
	// Settings checked before anything is printed or read.
	if c.Policy != "" {
		if _, err := mixedprecision.NewPolicy(c.Policy); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "TensorFlow %s (Go %s, %d CPUs)\n", tfgo.Version(), runtime.Version(), runtime.NumCPU())
	corpus, err := goSourceCorpus(runtime.GOROOT(), c.CorpusBytes)
	if err != nil {
		return err
	}
	tok := keraslike.ByteTokenizer{}
	ids := tok.Encode(corpus)
	split := len(ids) * 95 / 100
	train, err := keraslike.NextTokenDataset(ids[:split], c.Seq, c.Batch, c.Seed)
	if err != nil {
		return err
	}
	val, err := keraslike.NextTokenDataset(ids[split:], c.Seq, c.Batch, c.Seed)
	if err != nil {
		return err
	}
	val.Shuffle = false
	fmt.Fprintf(w, "corpus: %d bytes of Go source from %s (%d training windows of %d tokens)\n", len(corpus), runtime.GOROOT(), len(train.X), c.Seq)

	keraslike.ResetNames()
	policy := mixedprecision.Float32
	if c.Policy != "" {
		if policy, err = mixedprecision.NewPolicy(c.Policy); err != nil {
			return err
		}
	}
	mixedprecision.SetGlobalPolicy(policy)
	defer mixedprecision.SetGlobalPolicy(mixedprecision.Float32)
	devices, sessOpts, err := placement(c)
	if err != nil {
		return err
	}
	gc := keraslike.GPTConfig{SeqLen: c.Seq, DModel: c.DModel, Heads: c.Heads, Layers: c.Layers,
		Remat: c.Remat, Float32Logits: policy.IsMixed()}
	var strategy *distribute.MirroredStrategy
	if c.Replicas > 1 {
		if strategy, err = distribute.NewMirroredStrategy(devices...); err != nil {
			return err
		}
	} else if c.ModelParallel > 1 {
		gc.Devices = devices
	}
	m, err := keraslike.NewGPT("gpt", gc)
	if err != nil {
		return err
	}
	defer m.Close()
	sessOpts.IntraOpThreads = c.Threads
	m.SetSessionOptions(sessOpts)
	warmup := max(c.Steps/20, 1)
	opt := keraslike.NewAdam(keraslike.AdamOptions{OptimizerOptions: keraslike.OptimizerOptions{
		Schedule: keraslike.WarmupCosine{Peak: c.LR, WarmupSteps: warmup, DecaySteps: c.Steps - warmup, Alpha: 0.1}, GlobalClipNorm: 1}})
	if err := m.Compile(keraslike.CompileOptions{Optimizer: opt, Loss: keraslike.SparseCategoricalCrossentropy{FromLogits: true},
		Metrics: []string{"accuracy"}, BatchSize: c.Batch, Strategy: strategy}); err != nil {
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

	ckptDir := filepath.Join(c.Out, "checkpoints")
	stepsPerEpoch := max(c.Steps/c.Epochs, 1)
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
		if initialEpoch >= c.Epochs {
			fmt.Fprintf(w, "already trained %d epochs; remove %s or raise -epochs to train more\n", initialEpoch, ckptDir)
		}
	}

	before, err := m.Evaluate(firstBatches(val, 4))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "validation loss before training: %.4f (ln 256 = %.4f)\n", before["loss"], math.Log(256))

	tb := &keraslike.TensorBoard{LogDir: filepath.Join(c.Out, "logs"), UpdateFreq: 10}
	ck := &keraslike.ModelCheckpoint{Path: filepath.Join(ckptDir, "model_shard_{epoch}"), MaxToKeep: 3}
	// The hardware monitor first, so that the progress bar prints its
	// figures (step time, tokens/s, memory) with each epoch's.
	mon := &keraslike.Monitor{LogDir: filepath.Join(c.Out, "logs", "monitor"), CSVPath: filepath.Join(c.Out, "logs", "monitor.csv"),
		Every: 25, BatchSize: c.Batch, TokensPerExample: c.Seq}
	callbacks := []keraslike.Callback{mon, &keraslike.ProgressBar{W: w}, tb, ck}
	if c.Memory {
		// After the progress bar, so that its line follows the epoch's.
		callbacks = append(callbacks, &keraslike.MemoryMonitor{W: w})
	}
	start := time.Now()
	hist, err := m.Fit(ctx, train, keraslike.FitOptions{
		Epochs: c.Epochs, InitialEpoch: initialEpoch, StepsPerEpoch: stepsPerEpoch, Validation: firstBatches(val, 8),
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
	fmt.Fprintf(w, "--- sampled from the trained model (temperature %.1f) ---\n%s\n---\n", c.Temperature, text)
	return nil
}

// report prints what training did and exports the trained model: a
// SavedModel for TensorFlow Serving (version = training step) and a Keras 3 file.
func report(w io.Writer, c Config, m *keraslike.Model, hist *keraslike.History, stepsPerEpoch int, elapsed time.Duration,
	tb *keraslike.TensorBoard, ck *keraslike.ModelCheckpoint) error {
	if tb.Err != nil {
		fmt.Fprintf(w, "warning: TensorBoard logs: %v\n", tb.Err)
	}
	last := hist.Epochs[len(hist.Epochs)-1]
	steps := len(hist.Epochs) * stepsPerEpoch
	tokens := float64(steps * c.Batch * c.Seq)
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
	exported, err := m.ExportVersion(filepath.Join(c.Out, "saved_model"), version, keraslike.ExportOptions{InputName: "token_ids", OutputName: "logits"})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "SavedModel: %s (serving_default: token_ids int32 [batch, %d] -> logits float32 [batch, %d, 256])\n", exported, c.Seq, c.Seq)
	kerasFile := filepath.Join(c.Out, "model.keras")
	if err := m.SaveKeras(kerasFile); err != nil {
		return err
	}
	fmt.Fprintf(w, "Keras 3 file: %s (keras.models.load_model after import gotf.keraslike; pip install ./python)\n", kerasFile)
	return nil
}

// placement is the devices -replicas or -model-parallel asks for: the
// first N GPUs when the runtime has N, else N logical CPU devices (the same
// code runs on both), and the session options that make them.
func placement(c Config) ([]string, tfgo.SessionOptions, error) {
	if c.Replicas == 0 {
		c.Replicas = 1 // a config made in Go without the flag
	}
	if c.ModelParallel == 0 {
		c.ModelParallel = 1
	}
	n := max(c.Replicas, c.ModelParallel)
	if c.Replicas > 1 && c.ModelParallel > 1 {
		return nil, tfgo.SessionOptions{}, fmt.Errorf("-replicas %d with -model-parallel %d: combining data and model parallelism is not implemented", c.Replicas, c.ModelParallel)
	}
	if c.Replicas < 1 || c.ModelParallel < 1 {
		return nil, tfgo.SessionOptions{}, fmt.Errorf("-replicas and -model-parallel must be >= 1, got %d and %d", c.Replicas, c.ModelParallel)
	}
	if c.Replicas > 1 && c.Batch%c.Replicas != 0 {
		return nil, tfgo.SessionOptions{}, fmt.Errorf("-batch %d does not split into -replicas %d equal parts", c.Batch, c.Replicas)
	}
	if c.ModelParallel > c.Layers {
		return nil, tfgo.SessionOptions{}, fmt.Errorf("-model-parallel %d is more than the %d blocks (-layers)", c.ModelParallel, c.Layers)
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

// sample continues prompt by c.Sample bytes, one model run per byte,
// drawing each from the softmax of the last position's logits / temperature.
func sample(m *keraslike.Model, c Config, prompt []byte) (string, error) {
	r := rand.New(rand.NewSource(c.Seed))
	ids := keraslike.ByteTokenizer{}.Encode(prompt)
	for len(ids) < len(prompt)+c.Sample {
		window := make([]int32, c.Seq)
		ctxIDs := ids[max(0, len(ids)-c.Seq):]
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
		ids = append(ids, draw(r, row, c.Temperature))
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
