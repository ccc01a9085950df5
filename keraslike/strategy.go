package keraslike

import (
	"errors"
	"fmt"

	"github.com/gotf/gotf/distribute"
	"github.com/gotf/gotf/tfgo"
)

// mirrored is what Compile adds for a distribute.MirroredStrategy (see
// CompileOptions.Strategy).
//
// Mirrored variables: replica 0's copy of every weight is the model's own
// Weight (unplaced, so on the default device, which is device 0 when the
// strategy lists it first), so checkpoints, SaveKeras, weight files and
// Export see exactly what a single-device model has. Every other replica k
// has a hidden copy of each trainable weight, "replica_<k>/<path>" on its
// device, in no Weights list and in no saved file (only BackupAndRestore's
// backups, which take every variable of the graph, hold them). Replica k
// also has its own optimizer, a copy of the compiled one with its own
// counter and slots; replica 0's are the compiled optimizer's Variables(),
// which checkpoints save.
//
// The copies stay equal because every replica applies the same update to
// equal values: the gradients are averaged by one all-reduce whose result
// every replica receives, and the optimizers compute the same ops from
// equal states. Whatever sets replica 0's values outside a training step
// (the session's initializers, SetWeights, LoadCheckpoint, the .h5 and
// .keras loaders, BackupAndRestore's restore) is followed by a sync, one
// run assigning replica 0's weights and optimizer variables to every
// other replica's, before the next step: Fit runs it before its first step
// and after each epoch's callbacks, and Compile after initializing the
// variables it added. Only Fit reads the other replicas, so syncing there
// rather than in each loader needs no hook in the loaders; a callback
// that changes the weights in the middle of an epoch reaches the other
// replicas at the epoch's end.
type mirrored struct {
	strategy *distribute.MirroredStrategy
	// copies[k][i] is replica k's copy of the i-th trainable weight;
	// copies[0] are the model's own weights.
	copies [][]*Weight
	// sync assigns replica 0's weights and optimizer variables to every
	// other replica's.
	sync *tfgo.Operation
}

// checkStrategy refuses, before anything is built, what a mirrored
// training step does not implement, and a fixed batch the replicas cannot
// share equally.
func (m *Model) checkStrategy(o CompileOptions) error {
	st := o.Strategy
	if st.NumReplicas() == 0 {
		return fmt.Errorf("compile %q: a zero MirroredStrategy (make one with distribute.NewMirroredStrategy)", m.name)
	}
	if o.AccumulationSteps > 1 {
		return fmt.Errorf("compile %q: gradient accumulation under a MirroredStrategy is not implemented", m.name)
	}
	if _, ok := o.Optimizer.(*LossScaleOptimizer); ok {
		return fmt.Errorf("compile %q: a LossScaleOptimizer under a MirroredStrategy is not implemented", m.name)
	}
	if _, err := replicaOptimizer(o.Optimizer); err != nil {
		return fmt.Errorf("compile %q: %w", m.name, err)
	}
	if o.BatchSize > 0 && o.BatchSize%st.NumReplicas() != 0 {
		return fmt.Errorf("compile %q: %w", m.name, splitError(o.BatchSize, st.NumReplicas()))
	}
	return nil
}

// splitError is the error for a global batch the replicas cannot share.
func splitError(batch, replicas int) error {
	return fmt.Errorf("the global batch of %d examples does not split into %d equal parts, one per replica of the MirroredStrategy: use a multiple of %d", batch, replicas, replicas)
}

// strategySession opens the model's session, if it is not open, with the
// devices the strategy needs (a DeviceCount the model's session options
// set is kept: that is how a test gets a session with fewer devices), and
// checks that each of the strategy's devices exists in it. It runs nothing,
// so that a missing device is reported by name, not by the placer when the
// initializers first run.
func (m *Model) strategySession(st *distribute.MirroredStrategy) error {
	if m.sess == nil {
		o := m.sessOpts
		counts := map[string]int32{}
		for k, v := range st.SessionOptions().DeviceCount {
			counts[k] = v
		}
		for k, v := range o.DeviceCount {
			counts[k] = v
		}
		if len(counts) > 0 {
			o.DeviceCount = counts
		}
		m.sessOpts = o
		sess, err := tfgo.NewSession(m.Scope(), o)
		if err != nil {
			return fmt.Errorf("compile %q: %w", m.name, err)
		}
		m.sess = sess
	}
	devs, err := m.sess.ListDevices()
	if err != nil {
		return fmt.Errorf("compile %q: %w", m.name, err)
	}
	if err := st.CheckDevices(devs); err != nil {
		return fmt.Errorf("compile %q: %w", m.name, err)
	}
	return nil
}

// buildMirrored adds the mirrored training step to tg: the global batch
// tg.x, tg.yTrue split along axis 0 into one part per replica, each
// replica's forward pass, loss and gradients on its device, the gradients
// averaged across replicas (CollectiveReduceV2), and the same update on
// every replica's copy; the loss and metrics are the replicas' means. One
// session run of tg.step does all of it.
func (m *Model) buildMirrored(tg *trainGraph, s, ts *tfgo.Scope) error {
	o := tg.opts
	st := o.Strategy
	n := st.NumReplicas()
	devs := st.Devices()
	ws := m.TrainableWeights()
	mr := &mirrored{strategy: st, copies: make([][]*Weight, n)}
	mr.copies[0] = ws
	roots := make([]*tfgo.Scope, n) // replica k's scope for its variables and update
	for k := 1; k < n; k++ {
		roots[k] = s.SubScope(fmt.Sprintf("replica_%d", k)).WithDevice(devs[k])
		mr.copies[k] = make([]*Weight, len(ws))
		for i, w := range ws {
			// Zeros until the sync: an initializer reading replica 0's value
			// would race with replica 0's own initializer in the one run
			// that initializes every variable.
			v := tfgo.NewVariable(roots[k], w.Path, w.DType(), w.Shape(), tfgo.Zeros(), tfgo.Trainable(false))
			mr.copies[k][i] = &Weight{Variable: v, Path: w.Path}
		}
	}
	axis := tfgo.Const(ts, int32(0))
	xs := tfgo.Split(ts, axis, tg.x, int64(n))
	ys := tfgo.Split(ts, axis, tg.yTrue, int64(n))
	if err := s.Err(); err != nil {
		return fmt.Errorf("building the mirrored training graph of %q: %w", m.name, err)
	}
	losses := make([]tfgo.Output, n)
	lossOps := make([]*tfgo.Operation, n)
	perReplica := make([]map[string]tfgo.Output, n)
	// grads[i][k]: replica k's gradient of weight i, the layout the
	// all-reduce takes.
	grads := make([][]tfgo.Output, len(ws))
	for i := range grads {
		grads[i] = make([]tfgo.Output, n)
	}
	for k := 0; k < n; k++ {
		rs := m.opsScope(ts.WithDevice(devs[k]).SubScope(fmt.Sprintf("replica_%d", k)))
		pred := m.replicaForward(rs, ws, mr.copies[k], xs[k])
		if err := s.Err(); err != nil {
			return fmt.Errorf("building replica %d (%s) of the training graph of %q: %w", k, devs[k], m.name, err)
		}
		loss, err := o.Loss.Compute(rs, ys[k], pred)
		if err != nil {
			return fmt.Errorf("compile %q: %w", m.name, err)
		}
		losses[k], lossOps[k] = loss, loss.Op
		perReplica[k] = map[string]tfgo.Output{}
		addMetrics(rs, perReplica[k], o.Metrics, ys[k], pred, loss)
		handles := make([]tfgo.Output, len(ws))
		for i, w := range mr.copies[k] {
			handles[i] = w.Handle()
		}
		g := tfgo.Gradients(rs, []tfgo.Output{loss}, handles, nil)
		if len(g) != len(ws) {
			if err := s.Err(); err != nil {
				return fmt.Errorf("compile %q: gradients of replica %d: %w", m.name, k, err)
			}
			return fmt.Errorf("compile %q: gradients of replica %d: %d for %d weights", m.name, k, len(g), len(ws))
		}
		for i := range ws {
			grads[i][k] = g[i]
		}
	}
	// The backward pass makes the last layer's gradients first: reducing
	// in that order lets the chained collectives start before it ends.
	rev := make([][]tfgo.Output, len(grads))
	for i := range grads {
		rev[len(grads)-1-i] = grads[i]
	}
	red := st.BatchAllReduceMean(ts.SubScope("all_reduce"), rev)
	if err := s.Err(); err != nil {
		return fmt.Errorf("compile %q: %w", m.name, err)
	}
	// The replicas' mean loss is the global batch's mean loss when the
	// parts are equal, which is why the averaged gradients are the global
	// batch's gradients.
	ms := ts.SubScope("replica_mean")
	mean := func(vals []tfgo.Output) tfgo.Output {
		sum := vals[0]
		if n > 1 {
			sum = tfgo.AddN(ms, vals)
		}
		return tfgo.RealDiv(ms, sum, castTo(ms, tfgo.Const(ms, float32(n)), sum.DataType()))
	}
	tg.loss = mean(losses)
	tg.metricNames = append([]string{"loss"}, o.Metrics...)
	tg.metrics["loss"] = tg.loss
	for _, name := range o.Metrics {
		if name == "perplexity" { // exp of the mean, not the mean of exps
			tg.metrics[name] = tfgo.Exp(ms, tg.loss)
			continue
		}
		vals := make([]tfgo.Output, n)
		for k := range vals {
			vals[k] = perReplica[k][name]
		}
		tg.metrics[name] = mean(vals)
	}

	// Each replica's update waits for every replica's loss (and, inside
	// Apply, for the reduced gradients, hence every replica's backward
	// pass): no weight is written before all its reads. Clipping by the
	// global norm, inside Apply, sees the reduced gradients: every replica
	// clips by the same norm, the global batch's.
	var applies []*tfgo.Operation
	var pairs [][2]*tfgo.Variable // (replica 0's, replica k's) for the sync
	for k := 0; k < n; k++ {
		gk := make([]tfgo.Output, len(ws))
		for i := range ws {
			gk[i] = red[len(ws)-1-i][k]
		}
		if k == 0 {
			// At the root, as without a strategy: the optimizer's variables
			// keep Keras' names ("adam/...").
			applies = append(applies, o.Optimizer.Apply(s.WithControlDependencies(lossOps...), ws, gk))
			continue
		}
		opt, err := replicaOptimizer(o.Optimizer)
		if err != nil {
			return fmt.Errorf("compile %q: %w", m.name, err)
		}
		applies = append(applies, opt.Apply(roots[k].WithControlDependencies(lossOps...), mr.copies[k], gk))
		for i, w := range ws {
			pairs = append(pairs, [2]*tfgo.Variable{w.Variable, mr.copies[k][i].Variable})
		}
		pairs = append(pairs, optimizerPairs(o.Optimizer, opt, ws, mr.copies[k])...)
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("compile %q: %w", m.name, err)
	}
	tg.step = s.WithControlDependencies(applies...).AddOperation(tfgo.OpSpec{Type: "NoOp", Name: "mirrored_step"})
	var assigns []*tfgo.Operation
	ss := s.SubScope("sync_replicas")
	for _, p := range pairs {
		// The read stays with replica 0's variable and the assignment with
		// the copy (the placer colocates each with its resource): the value
		// crosses devices once per copy.
		assigns = append(assigns, p[1].Assign(ss, p[0].Read(ss)))
	}
	mr.sync = ss.WithControlDependencies(assigns...).AddOperation(tfgo.OpSpec{Type: "NoOp", Name: "sync"})
	if err := s.Err(); err != nil {
		return fmt.Errorf("compile %q: %w", m.name, err)
	}
	tg.mirror = mr
	return nil
}

// replicaForward builds one replica's forward pass on x with the layers'
// weights read from copies (replica 0's are ws themselves).
//
// The layers' calls are not told which replica they build: for the
// duration of the call, each trainable Weight points at the replica's
// variable, so every way a layer reaches a weight reads the copy —
// Context.Read, a Handle() taken directly (Embedding's ResourceGather), a
// custom layer's own w.Read. The alternatives were a substitution inside
// Context.Read, which a direct Handle() escapes, and rebuilding the model
// from its config per replica, which a model from NewModel or with
// custom layers cannot do. Graph building is single-threaded per model;
// the weights point back at replica 0's variables before this returns,
// even on a panic. Non-trainable variables (Dropout's seed state) are
// shared: each replica's dropout draws its own mask from the shared
// state, so a dropout model trains with other masks than on one device,
// as in Python.
func (m *Model) replicaForward(rs *tfgo.Scope, ws, copies []*Weight, x tfgo.Output) tfgo.Output {
	if len(copies) > 0 && copies[0] != ws[0] {
		saved := make([]*tfgo.Variable, len(ws))
		for i, w := range ws {
			saved[i] = w.Variable
			w.Variable = copies[i].Variable
		}
		defer func() {
			for i, w := range ws {
				w.Variable = saved[i]
			}
		}()
	}
	ctx := NewContext(rs.SubScope(m.name), true)
	ctx.Weights = m.Scope().SubScope(m.name) // the weights exist already: Build created them
	ctx.Path = m.path
	return m.apply(ctx, x)
}

// replicaOptimizer is a fresh optimizer with o's class, name and options
// and no state: replica k's, whose counter and slots Apply creates under
// the replica's scope. Only the built-in optimizers can be copied.
func replicaOptimizer(o Optimizer) (Optimizer, error) {
	switch o := o.(type) {
	case *SGD:
		if o == nil {
			break
		}
		return &SGD{optimizerBase: optimizerBase{name: o.name, opts: o.opts}, momentum: o.momentum, nesterov: o.nesterov,
			slots: map[*Weight]*tfgo.Variable{}}, nil
	case *Adam:
		if o == nil {
			break
		}
		return &Adam{optimizerBase: optimizerBase{name: o.name, opts: o.opts}, beta1: o.beta1, beta2: o.beta2, eps: o.eps,
			decay: o.decay, m: map[*Weight]*tfgo.Variable{}, v: map[*Weight]*tfgo.Variable{}}, nil
	default:
		return nil, fmt.Errorf("a MirroredStrategy gives each replica a copy of the optimizer, which it can make of SGD, Adam and AdamW, not of %T", o)
	}
	return nil, errors.New("nil optimizer")
}

// optimizerPairs pairs replica 0's optimizer variables with replica k's
// (the counter, then each weight's slots), for the sync.
func optimizerPairs(o0, ok Optimizer, w0, wk []*Weight) [][2]*tfgo.Variable {
	var pairs [][2]*tfgo.Variable
	add := func(a, b *tfgo.Variable) {
		if a != nil && b != nil {
			pairs = append(pairs, [2]*tfgo.Variable{a, b})
		}
	}
	add(o0.Iterations(), ok.Iterations())
	switch a := o0.(type) {
	case *SGD:
		b := ok.(*SGD)
		for i := range w0 {
			add(a.slots[w0[i]], b.slots[wk[i]])
		}
	case *Adam:
		b := ok.(*Adam)
		for i := range w0 {
			add(a.m[w0[i]], b.m[wk[i]])
			add(a.v[w0[i]], b.v[wk[i]])
		}
	}
	return pairs
}

// syncReplicas assigns replica 0's weights and optimizer state to the
// other replicas' copies (nothing without a strategy or with one replica).
func (m *Model) syncReplicas(sess *tfgo.Session) error {
	if m.train == nil || m.train.mirror == nil || m.train.mirror.strategy.NumReplicas() < 2 {
		return nil
	}
	if _, err := sess.Run(nil, nil, m.train.mirror.sync); err != nil {
		return fmt.Errorf("model %q: syncing the replicas of the MirroredStrategy: %w", m.name, err)
	}
	return nil
}

// checkSplit refuses a global batch the replicas cannot share equally,
// before it runs.
func (m *Model) checkSplit(x *tfgo.Tensor) error {
	if m.train == nil || m.train.mirror == nil || x == nil {
		return nil
	}
	n := m.train.mirror.strategy.NumReplicas()
	if sh := x.Shape(); len(sh) > 0 && sh[0]%int64(n) != 0 {
		return fmt.Errorf("fit %q: %w", m.name, splitError(int(sh[0]), n))
	}
	return nil
}

// Strategy is the MirroredStrategy the model was compiled with (nil
// without one, or before Compile).
func (m *Model) Strategy() *distribute.MirroredStrategy {
	if m == nil || m.train == nil || m.train.mirror == nil {
		return nil
	}
	return m.train.mirror.strategy
}

// ReplicaWeights are replica k's copies of the trainable weights, in the
// order of TrainableWeights (replica 0's are the model's own): what tests
// and debugging compare. Nil without a strategy or for a k out of range.
func (m *Model) ReplicaWeights(k int) []*Weight {
	if m == nil || m.train == nil || m.train.mirror == nil || k < 0 || k >= len(m.train.mirror.copies) {
		return nil
	}
	return append([]*Weight(nil), m.train.mirror.copies[k]...)
}
