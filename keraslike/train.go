package keraslike

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/gotf/gotf/distribute"
	"github.com/gotf/gotf/tfgo"
)

// CompileOptions are model.compile's arguments.
type CompileOptions struct {
	Optimizer Optimizer
	Loss      Loss
	// Metrics by Keras name: "accuracy", "perplexity" (the loss is always reported).
	Metrics []string
	// TargetDType is the dtype of the targets (default: int32 for sparse
	// categorical cross-entropy, float32 otherwise).
	TargetDType tfgo.DataType
	// TargetShape is the target's shape without the batch dimension
	// (default: the output's, without its class axis for sparse targets).
	TargetShape []int64
	// BatchSize > 0 fixes the batch dimension of the training graph: every
	// shape is then static, which lets the gradients and Grappler drop the
	// run-time shape arithmetic (a leaner step); each training batch must
	// have exactly this size (drop the remainder).
	BatchSize int
	// AccumulationSteps > 1 averages the gradients of that many
	// micro-batches before one optimizer update (gradient accumulation).
	AccumulationSteps int
	// NoAutoScaleLoss keeps Compile from wrapping the optimizer in a
	// LossScaleOptimizer when the model's dtype policy is mixed_float16
	// (Keras' compile(auto_scale_loss=False)).
	NoAutoScaleLoss bool
	// Strategy, when set, trains with synchronous data parallelism on its
	// devices (tf.distribute.MirroredStrategy): each global batch given to
	// Fit is split along axis 0 into one equal part per replica (its size
	// must be a multiple of the number of replicas), every replica computes
	// its part's gradients on its device, the gradients are averaged across
	// replicas (CollectiveReduceV2), and every replica's copy of the
	// weights gets the same update, all in one session run per step. The
	// reported loss and metrics are the replicas' means. The model's own
	// weights are replica 0's: what checkpoints and Keras files hold, the
	// same files as without a strategy. Predict and Evaluate run the
	// inference graph on replica 0's weights, with any batch size. Python
	// makes the model and compiles it in strategy.scope(); here Compile
	// with the strategy is the whole of it, on a model whose session has
	// not opened yet (Compile opens it with the strategy's SessionOptions;
	// a DeviceCount set with Model.SetSessionOptions is kept) or whose
	// session has the devices. A device the session lacks is an error
	// naming it. Not implemented with it: AccumulationSteps, a
	// LossScaleOptimizer (mixed_float16), optimizers other than SGD, Adam
	// and AdamW. See strategy.go for how the replicas' copies stay equal.
	// A strategy made with distribute.MirroredOptions{ShardOptimizerState:
	// true} partitions the optimizer's slots over the replicas (ZeRO stage
	// 1; SGD, Adam and AdamW, with or without GlobalClipNorm): the weights
	// end as without the option, replica k holds 1/R of each slot, and
	// SaveCheckpoint refuses to save the optimizer's state (WeightsOnly
	// saves work; LoadCheckpoint of a checkpoint with a whole optimizer
	// state fails on the slots' shapes, before anything changes).
	//
	// A strategy from distribute.NewMultiWorkerMirroredStrategy spans
	// processes: Compile opens the session on the task's server, every
	// worker is fed the same global batches and trains on its part of each
	// (the batch must split over every worker's replicas), the loss and
	// metrics are the global batch's on every worker, and the workers start
	// from the chief's state (a collective broadcast at Fit's start and
	// after each epoch). Only the chief runs ModelCheckpoint, TensorBoard,
	// CSVLogger and Profile and BackupAndRestore's saves; every worker
	// resumes from the chief's backup. A peer that dies fails the step
	// within a few health checks (MultiWorkerOptions.HealthCheckInterval)
	// with an error naming it; the process should then exit.
	Strategy *distribute.MirroredStrategy
}

// trainGraph is what Compile adds: the training forward pass, loss,
// metrics, gradients and update; and the evaluation loss on the inference graph.
type trainGraph struct {
	opts        CompileOptions
	x, yTrue    tfgo.Output // training inputs
	loss        tfgo.Output
	metrics     map[string]tfgo.Output
	step        *tfgo.Operation // forward + backward + update
	accumulate  *tfgo.Operation // with AccumulationSteps: add this micro-batch's gradients
	mirror      *mirrored       // with a Strategy: the replicas (strategy.go)
	evalY       tfgo.Output
	evalLoss    tfgo.Output
	evalMetrics map[string]tfgo.Output
	metricNames []string
}

// Compile adds the training step to the graph (model.compile). Unknown
// metric names and bad options are errors before any graph runs.
func (m *Model) Compile(o CompileOptions) error {
	if err := m.usable(); err != nil {
		return err
	}
	if o.Optimizer == nil {
		return fmt.Errorf("compile %q: no optimizer", m.name)
	}
	if o.Loss == nil {
		return fmt.Errorf("compile %q: no loss", m.name)
	}
	for _, name := range o.Metrics {
		if name != "accuracy" && name != "perplexity" {
			return fmt.Errorf("compile %q: unknown metric %q (known: accuracy, perplexity)", m.name, name)
		}
	}
	if o.AccumulationSteps > 1 {
		if _, ok := o.Optimizer.(*LossScaleOptimizer); ok {
			// The sums would add gradients scaled by different loss scales.
			return fmt.Errorf("compile %q: gradient accumulation with a LossScaleOptimizer is not implemented", m.name)
		}
	}
	if o.Strategy != nil {
		if err := m.checkStrategy(o); err != nil {
			return err
		}
	}
	if err := m.Build(); err != nil {
		return err
	}
	if _, wrapped := o.Optimizer.(*LossScaleOptimizer); !wrapped && !o.NoAutoScaleLoss && m.policy.NeedsLossScaling() && m.policy.IsMixed() {
		// Keras' compile(auto_scale_loss=True) under mixed_float16: float16
		// gradients underflow without it.
		lso, err := NewLossScaleOptimizer(o.Optimizer, LossScaleOptions{})
		if err != nil {
			return fmt.Errorf("compile %q: %w", m.name, err)
		}
		if o.AccumulationSteps > 1 {
			return fmt.Errorf("compile %q: gradient accumulation under mixed_float16 needs loss scaling, which it does not implement; set NoAutoScaleLoss", m.name)
		}
		o.Optimizer = lso
	}
	if o.Strategy != nil {
		if _, ok := o.Optimizer.(*LossScaleOptimizer); ok {
			return fmt.Errorf("compile %q: the %s policy needs loss scaling, which a MirroredStrategy does not implement; set NoAutoScaleLoss", m.name, m.policy.Name())
		}
		// Before the graph grows: a missing device is named here, not by
		// the placer on the first run.
		if err := m.strategySession(o.Strategy); err != nil {
			return err
		}
	}
	s := m.Scope()
	before := len(tfgo.Variables(s))
	sparse := strings.HasPrefix(o.Loss.Name(), "sparse")
	if o.TargetDType == 0 {
		o.TargetDType = tfgo.Float
		if sparse {
			o.TargetDType = tfgo.Int32
		}
	}
	if o.TargetShape == nil {
		out := staticShape(m.y)
		if len(out) == 0 {
			return fmt.Errorf("compile %q: the output's rank is unknown; set CompileOptions.TargetShape", m.name)
		}
		o.TargetShape = append([]int64{}, out[1:]...)
		if sparse { // class ids: the output without its class axis
			o.TargetShape = o.TargetShape[:len(o.TargetShape)-1]
		}
	}
	tg := &trainGraph{opts: o, metrics: map[string]tfgo.Output{}, evalMetrics: map[string]tfgo.Output{}}
	ts := s.SubScope("train")
	batch := int64(-1)
	if o.BatchSize > 0 {
		batch = int64(o.BatchSize)
	}
	tg.x = m.placeholder(ts, "input", batch)
	tg.yTrue = tfgo.Placeholder(ts.SubScope("target"), o.TargetDType, append([]int64{batch}, o.TargetShape...)...)
	if o.Strategy != nil {
		if err := m.buildMirrored(tg, s, ts); err != nil {
			return err
		}
	} else if err := m.buildTrainStep(tg, s, ts); err != nil {
		return err
	}

	es := s.SubScope("evaluate")
	tg.evalY = tfgo.Placeholder(es.SubScope("target"), o.TargetDType, append([]int64{-1}, o.TargetShape...)...)
	var err error
	tg.evalLoss, err = o.Loss.Compute(es, tg.evalY, m.y)
	if err != nil {
		return err
	}
	addMetrics(es, tg.evalMetrics, o.Metrics, tg.evalY, m.y, tg.evalLoss)
	if err := s.Err(); err != nil {
		return fmt.Errorf("compile %q: %w", m.name, err)
	}
	m.train = tg
	if !m.initialized || m.sess == nil {
		return nil // the session's first use initializes every variable
	}
	// The weights may hold values loaded or trained since the session
	// started, which Keras' compile keeps: initialize only the variables
	// Compile made (the optimizer's, the accumulators).
	var inits []*tfgo.Operation
	for _, v := range tfgo.Variables(s)[before:] {
		inits = append(inits, v.Initializer())
	}
	if len(inits) > 0 {
		if _, err := m.sess.Run(nil, nil, inits...); err != nil {
			m.initialized = false
			return fmt.Errorf("compile %q: initializing the optimizer's variables: %w", m.name, err)
		}
	}
	// The replicas' copies start as zeros: they take the weights' values.
	return m.syncReplicas(m.sess)
}

// buildTrainStep adds the single-device training step to tg: the forward
// pass on tg.x, the loss and metrics, the gradients and the update.
func (m *Model) buildTrainStep(tg *trainGraph, s, ts *tfgo.Scope) error {
	o := tg.opts
	ts = m.opsScope(ts)
	ctx := NewContext(ts.SubScope(m.name), true)
	ctx.Weights = s.SubScope(m.name) // the weights exist already: Build created them
	ctx.Path = m.path
	pred := m.apply(ctx, tg.x)
	if err := s.Err(); err != nil {
		return fmt.Errorf("building the training graph of %q: %w", m.name, err)
	}
	loss, err := o.Loss.Compute(ts, tg.yTrue, pred)
	if err != nil {
		return fmt.Errorf("compile %q: %w", m.name, err)
	}
	tg.loss = loss
	tg.metricNames = append([]string{"loss"}, o.Metrics...)
	addMetrics(ts, tg.metrics, o.Metrics, tg.yTrue, pred, loss)

	ws := m.TrainableWeights()
	handles := make([]tfgo.Output, len(ws))
	for i, w := range ws {
		handles[i] = w.Handle()
	}
	// The gradients are those of the scaled loss under loss scaling; the
	// metrics keep the loss itself.
	target := loss
	if lso, ok := o.Optimizer.(*LossScaleOptimizer); ok {
		target = lso.ScaleLoss(s, loss) // its variables at the root, as Keras names them
	}
	grads := tfgo.Gradients(ts, []tfgo.Output{target}, handles, nil)
	if o.AccumulationSteps > 1 {
		tg.accumulate, grads = accumulate(ts, ws, grads, o.AccumulationSteps)
	}
	// The optimizer's variables live at the graph's root, as Keras names them
	// ("adam/..."). Its updates wait for the loss, so every weight the
	// forward pass reads is read before any is written.
	tg.step = o.Optimizer.Apply(s.WithControlDependencies(target.Op), ws, grads)
	return nil
}

// addMetrics adds Keras metrics computed on one batch.
func addMetrics(s *tfgo.Scope, out map[string]tfgo.Output, names []string, yTrue, yPred, loss tfgo.Output) {
	out["loss"] = loss
	for _, name := range names {
		ms := s.SubScope(name)
		switch name {
		case "accuracy":
			if yTrue.DataType() == tfgo.Int32 || yTrue.DataType() == tfgo.Int64 {
				hit := tfgo.Equal(ms, tfgo.ArgMax(ms, yPred, tfgo.Const(ms, int32(-1)), tfgo.ArgMaxOutputType(yTrue.DataType())), yTrue)
				out[name] = meanAll(ms, tfgo.Cast(ms, hit, tfgo.Float))
			} else {
				hit := tfgo.Equal(ms, tfgo.ArgMax(ms, yPred, tfgo.Const(ms, int32(-1))), tfgo.ArgMax(ms, yTrue, tfgo.Const(ms, int32(-1))))
				out[name] = meanAll(ms, tfgo.Cast(ms, hit, tfgo.Float))
			}
		case "perplexity":
			out[name] = tfgo.Exp(ms, loss)
		}
	}
}

// accumulate keeps a running sum of gradients over micro-batches: it returns
// the op adding this micro-batch's gradients, and the averaged gradients
// the optimizer applies (which also reset the sums).
func accumulate(s *tfgo.Scope, ws []*Weight, grads []tfgo.Output, k int) (*tfgo.Operation, []tfgo.Output) {
	as := s.SubScope("gradient_accumulation")
	var adds []*tfgo.Operation
	avg := make([]tfgo.Output, len(grads))
	for i, w := range ws {
		if grads[i].Op == nil {
			continue
		}
		acc := tfgo.NewVariable(as, strings.ReplaceAll(w.Path, "/", "_"), w.DType(), w.Shape(), tfgo.Zeros(), tfgo.Trainable(false))
		adds = append(adds, acc.AssignAdd(as, grads[i]))
		// The final micro-batch: (sum + its gradient) / k, then zero the sum.
		total := tfgo.Add(as, acc.Read(as), grads[i])
		a := tfgo.RealDiv(as, total, tfgo.Const(as, float32(k)))
		reset := acc.Assign(as.WithControlDependencies(a.Op), tfgo.ZerosLike(as, total))
		avg[i] = tfgo.Identity(as.WithControlDependencies(reset), a)
	}
	return as.WithControlDependencies(adds...).AddOperation(tfgo.OpSpec{Type: "NoOp", Name: "accumulate"}), avg
}

// Logs are a step's or epoch's metric values by Keras name ("loss", "val_loss").
type Logs map[string]float64

// History is what Fit returns: every epoch's logs (keras History.history).
type History struct {
	Epochs []Logs
}

// Batch is one batch of inputs and targets (Go values or *tfgo.Tensor).
type Batch struct {
	X, Y any
}

// Dataset yields the batches of an epoch (keras' x/y arrays or tf.data).
type Dataset interface {
	// Batches calls fn for each batch of the given epoch in order; it stops
	// early when fn returns false.
	Batches(epoch int, fn func(Batch) bool) error
	// Len is the number of batches per epoch, or -1 if unknown.
	Len() int
}

// FitOptions are model.fit's arguments.
type FitOptions struct {
	Epochs     int
	Validation Dataset
	Callbacks  []Callback
	// InitialEpoch resumes training at this epoch (Keras initial_epoch).
	InitialEpoch int
	// StepsPerEpoch limits the batches of an epoch (0: the whole dataset).
	StepsPerEpoch int
}

// Fit trains the model (model.fit): one session run per batch, callbacks
// at batch and epoch ends. It stops early when ctx is done or a callback
// asks (EarlyStopping).
//
// A callback that is a Resumer (BackupAndRestore) may move the start to
// where an interrupted run stopped: a later epoch and, within it, after
// the batches already done, which are skipped without running them (see
// SkippingDataset). The logs of that first, partial epoch average only the
// batches this Fit runs (Keras restarts the epoch instead, with its
// metrics reset); batch indices passed to OnBatchEnd keep counting from
// the epoch's start.
func (m *Model) Fit(ctx context.Context, data Dataset, o FitOptions) (*History, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	if m.train == nil {
		return nil, fmt.Errorf("model %q must be compiled before fit", m.name)
	}
	if ctx == nil || data == nil {
		return nil, fmt.Errorf("fit %q: nil context or Dataset", m.name)
	}
	if err := checkCallbacks(o.Callbacks); err != nil {
		return nil, fmt.Errorf("fit %q: %w", m.name, err)
	}
	sess, err := m.session()
	if err != nil {
		return nil, err
	}
	tg := m.train
	if o.Epochs == 0 {
		o.Epochs = 1
	}
	steps := data.Len()
	if o.StepsPerEpoch > 0 && (steps < 0 || o.StepsPerEpoch < steps) {
		steps = o.StepsPerEpoch
	}
	cbs := m.workerCallbacks(o.Callbacks)
	// Across workers: a lost peer ends the step that waits for it.
	watch := m.Strategy().WatchPeers()
	defer watch.Stop()
	start := FitPosition{Epoch: o.InitialEpoch}
	for _, c := range o.Callbacks {
		r, ok := c.(Resumer)
		if !ok {
			continue
		}
		p, err := r.Resume(m)
		if err != nil {
			return nil, fmt.Errorf("fit %q: resuming: %w", m.name, err)
		}
		if p != nil {
			start = *p
		}
	}
	// Whatever set the weights since the last step (the initializers,
	// SetWeights, a loader, the restore above) reaches the replicas.
	if err := m.syncReplicas(sess); err != nil {
		return nil, err
	}
	if start.Batch > 0 && steps >= 0 && start.Batch >= steps {
		// Saved after the epoch's last batch: nothing of it is left.
		start = FitPosition{Epoch: start.Epoch + 1}
	}
	cbs.onTrainBegin(m, FitInfo{Epochs: o.Epochs, Steps: steps, Start: start})
	hist := &History{}
	m.stop = false
	fetches := make([]tfgo.Output, 0, len(tg.metricNames))
	for _, n := range tg.metricNames {
		fetches = append(fetches, tg.metrics[n])
	}
	for epoch := start.Epoch; epoch < o.Epochs && !m.stop; epoch++ {
		cbs.onEpochBegin(m, epoch)
		sums := make([]float64, len(fetches))
		// n numbers the epoch's batches from its start (the accumulation
		// phase and StepsPerEpoch count them); run counts those this Fit ran.
		n, run, skip := 0, 0, 0
		if epoch == start.Epoch {
			n, skip = start.Batch, start.Batch
		}
		batches := data.Batches
		if sd, ok := data.(SkippingDataset); ok && skip > 0 {
			first := skip
			batches = func(e int, fn func(Batch) bool) error { return sd.BatchesFrom(e, first, fn) }
			skip = 0
		}
		var runErr error
		err := batches(epoch, func(b Batch) bool {
			if skip > 0 {
				skip--
				return true
			}
			if ctx.Err() != nil || (o.StepsPerEpoch > 0 && n >= o.StepsPerEpoch) {
				return false
			}
			xt, releaseX, err := m.batchTensor("x", b.X, tg.x)
			if err != nil {
				runErr = err
				return false
			}
			defer releaseX()
			if err := m.checkSplit(xt); err != nil {
				runErr = fmt.Errorf("train step %d of epoch %d: %w", n, epoch+1, err)
				return false
			}
			yt, releaseY, err := m.batchTensor("y", b.Y, tg.yTrue)
			if err != nil {
				runErr = err
				return false
			}
			defer releaseY()
			target := tg.step
			if tg.accumulate != nil && (n+1)%tg.opts.AccumulationSteps != 0 {
				target = tg.accumulate
			}
			outs, err := runWatched(watch, func() ([]*tfgo.Tensor, error) {
				return m.runFitStep(sess, o.Callbacks, epoch, n, map[tfgo.Output]any{tg.x: xt, tg.yTrue: yt}, fetches, target)
			})
			if err != nil {
				runErr = fmt.Errorf("train step %d of epoch %d: %w", n, epoch+1, m.explainStepError(err))
				return false
			}
			logs := Logs{}
			for i, t := range outs {
				v := scalarValue(t)
				t.Close()
				sums[i] += v
				logs[tg.metricNames[i]] = sums[i] / float64(run+1)
			}
			n++
			run++
			cbs.onBatchEnd(m, n-1, logs)
			return !m.stop
		})
		if runErr != nil {
			return hist, runErr
		}
		if err != nil {
			return hist, err
		}
		if ctx.Err() != nil {
			return hist, ctx.Err()
		}
		logs := Logs{}
		for i, name := range tg.metricNames {
			logs[name] = sums[i] / math.Max(float64(run), 1)
		}
		if o.Validation != nil {
			val, err := m.Evaluate(o.Validation)
			if err != nil {
				return hist, err
			}
			for k, v := range val {
				logs["val_"+k] = v
			}
		}
		hist.Epochs = append(hist.Epochs, logs)
		if err := cbs.onEpochEnd(m, epoch, logs); err != nil {
			return hist, err
		}
		// A callback may have set the weights (restored the best ones).
		if err := m.syncReplicas(sess); err != nil {
			return hist, err
		}
	}
	cbs.onTrainEnd(m)
	return hist, nil
}

// Optimizer is the optimizer given to Compile (nil before).
func (m *Model) Optimizer() Optimizer {
	if m.train == nil {
		return nil
	}
	return m.train.opts.Optimizer
}

// StopTraining asks Fit to stop after the current batch (model.stop_training).
func (m *Model) StopTraining() { m.stop = true }

// Evaluate computes the loss and metrics over a dataset on the inference
// graph (model.evaluate), averaged over batches.
func (m *Model) Evaluate(data Dataset) (Logs, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	if m.train == nil {
		return nil, fmt.Errorf("model %q must be compiled before evaluate", m.name)
	}
	if data == nil {
		return nil, fmt.Errorf("evaluate %q: nil Dataset", m.name)
	}
	sess, err := m.session()
	if err != nil {
		return nil, err
	}
	tg := m.train
	fetches := make([]tfgo.Output, len(tg.metricNames))
	for i, n := range tg.metricNames {
		fetches[i] = tg.evalMetrics[n]
	}
	sums := make([]float64, len(fetches))
	n := 0
	var runErr error
	err = data.Batches(0, func(b Batch) bool {
		xt, releaseX, err := m.batchTensor("x", b.X, m.x)
		if err != nil {
			runErr = err
			return false
		}
		defer releaseX()
		outs, err := sess.Run(map[tfgo.Output]any{m.x: xt, tg.evalY: b.Y}, fetches)
		if err != nil {
			runErr = err
			return false
		}
		for i, t := range outs {
			sums[i] += scalarValue(t)
			t.Close()
		}
		n++
		return true
	})
	if runErr != nil {
		return nil, runErr
	}
	if err != nil {
		return nil, err
	}
	logs := Logs{}
	for i, name := range tg.metricNames {
		logs[name] = sums[i] / math.Max(float64(n), 1)
	}
	return logs, nil
}

// scalarValue reads a float32/float64 scalar tensor.
func scalarValue(t *tfgo.Tensor) float64 {
	v, err := tfgo.Value(t)
	if err != nil {
		return math.NaN()
	}
	switch x := v.(type) {
	case float32:
		return float64(x)
	case float64:
		return x
	}
	return math.NaN()
}
