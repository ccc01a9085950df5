package keraslike

import (
	"errors"
	"fmt"
	"time"

	"github.com/gotf/gotf/distribute"
	"github.com/gotf/gotf/dtypes"
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
//
// With distribute.MirroredOptions.ShardOptimizerState, the replicas'
// optimizers hold the slots of their parts of the weights only, which no
// sync can copy: see buildShardedUpdate.
type mirrored struct {
	strategy *distribute.MirroredStrategy
	// copies[k][i] is replica k's copy of the i-th trainable weight;
	// copies[0] are the model's own weights.
	copies [][]*Weight
	// sync assigns replica 0's weights and optimizer variables to every
	// other replica's.
	sync *tfgo.Operation
	// sharded: each replica holds its part of the optimizer's slots
	// (distribute.MirroredOptions.ShardOptimizerState), which the sync
	// leaves alone.
	sharded bool
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
	if st.Options().ShardOptimizerState {
		if err := checkShardable(o.Optimizer); err != nil {
			return fmt.Errorf("compile %q: %w", m.name, err)
		}
	}
	if _, err := replicaOptimizer(o.Optimizer); err != nil {
		return fmt.Errorf("compile %q: %w", m.name, err)
	}
	if st.NumWorkers() > 1 && st.Options().ShardOptimizerState {
		return fmt.Errorf("compile %q: sharding the optimizer state across workers is not implemented", m.name)
	}
	if o.BatchSize > 0 && o.BatchSize%st.NumReplicasInSync() != 0 {
		return fmt.Errorf("compile %q: %w", m.name, splitError(o.BatchSize, st.NumReplicasInSync()))
	}
	return nil
}

// checkShardable refuses optimizers MirroredOptions.ShardOptimizerState
// does not implement: those whose update is not elementwise (a part of a
// weight could not be updated alone) or that the strategy cannot copy.
func checkShardable(o Optimizer) error {
	switch o.(type) {
	case *SGD, *Adam:
	default:
		return fmt.Errorf("sharding the optimizer state (distribute.MirroredOptions.ShardOptimizerState) is implemented for SGD, Adam and AdamW, whose updates are elementwise, not for %T", o)
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
// initializers first run. Across workers the session runs on this task's
// server, with the strategy's config.
func (m *Model) strategySession(st *distribute.MirroredStrategy) error {
	so := st.SessionOptions()
	if m.sess != nil && so.Target != "" && m.sessOpts.Target != so.Target {
		return fmt.Errorf("compile %q: the model's session was opened (by a run before Compile) in the process, not on the multi-worker strategy's server %s: compile before running the model", m.name, so.Target)
	}
	if m.sess == nil {
		o := m.sessOpts
		if so.Target != "" {
			o.Target = so.Target
			o.Config = so.Config
		}
		counts := map[string]int32{}
		for k, v := range so.DeviceCount {
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
	// Across workers every worker is fed the whole global batch and trains
	// on its part, replicas rank*n .. rank*n+n-1 of its parts.
	axis := tfgo.Const(ts, int32(0))
	first := st.WorkerIndex() * n
	xs := tfgo.Split(ts, axis, tg.x, int64(st.NumReplicasInSync()))[first:]
	ys := tfgo.Split(ts, axis, tg.yTrue, int64(st.NumReplicasInSync()))[first:]
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
	sharded := st.Options().ShardOptimizerState && n > 1
	multi := st.NumWorkers() > 1
	var red, global [][]tfgo.Output
	if !sharded {
		batch := rev
		if multi {
			// Across workers the loss and metrics are all-reduced too, after
			// the gradients, so that every worker logs the global batch's.
			batch = append(append([][]tfgo.Output(nil), rev...), losses)
			for _, name := range o.Metrics {
				if name != "perplexity" {
					vals := make([]tfgo.Output, n)
					for k := range vals {
						vals[k] = perReplica[k][name]
					}
					batch = append(batch, vals)
				}
			}
		}
		red = st.BatchAllReduceMean(ts.SubScope("all_reduce"), batch)
		if multi && red != nil {
			red, global = red[:len(rev)], red[len(rev):]
		}
	}
	// Every replica's part of the loss and metrics all-reduce must run,
	// though Fit fetches replica 0's: the step waits for them.
	var reducedLogs []*tfgo.Operation
	for _, row := range global {
		for _, v := range row {
			reducedLogs = append(reducedLogs, v.Op)
		}
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("compile %q: %w", m.name, err)
	}
	// The replicas' mean loss is the global batch's mean loss when the
	// parts are equal, which is why the averaged gradients are the global
	// batch's gradients.
	ms := ts.SubScope("replica_mean")
	mean := func(vals []tfgo.Output) tfgo.Output {
		if multi { // all-reduced above, in this order
			r := global[0][0]
			global = global[1:]
			return r
		}
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
	var pairs [][2]*tfgo.Variable           // (replica 0's, replica k's) for the sync
	syncVars := make([][]*tfgo.Variable, n) // across workers: what the sync broadcasts, per replica
	if sharded {
		var err error
		if applies, pairs, err = m.buildShardedUpdate(o, s, ts, roots, mr, rev, lossOps); err != nil {
			return err
		}
	}
	for k := 0; k < n && !sharded; k++ {
		gk := make([]tfgo.Output, len(ws))
		for i := range ws {
			gk[i] = red[len(ws)-1-i][k]
		}
		if k == 0 {
			// At the root, as without a strategy: the optimizer's variables
			// keep Keras' names ("adam/...").
			applies = append(applies, o.Optimizer.Apply(s.WithControlDependencies(lossOps...), ws, gk))
			syncVars[0] = append(weightVariables(ws), optimizerVars(o.Optimizer, ws)...)
			continue
		}
		opt, err := replicaOptimizer(o.Optimizer)
		if err != nil {
			return fmt.Errorf("compile %q: %w", m.name, err)
		}
		applies = append(applies, opt.Apply(roots[k].WithControlDependencies(lossOps...), mr.copies[k], gk))
		syncVars[k] = append(weightVariables(mr.copies[k]), optimizerVars(opt, mr.copies[k])...)
		for i, v := range syncVars[k] {
			pairs = append(pairs, [2]*tfgo.Variable{syncVars[0][i], v})
		}
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("compile %q: %w", m.name, err)
	}
	tg.step = s.WithControlDependencies(append(applies, reducedLogs...)...).AddOperation(tfgo.OpSpec{Type: "NoOp", Name: "mirrored_step"})
	var assigns []*tfgo.Operation
	ss := s.SubScope("sync_replicas")
	if multi {
		assigns = broadcastAssigns(ss, st, syncVars)
		pairs = nil
	}
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
	mr.sharded = sharded
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

// optimizerVars are o's variables for ws in the order the sync pairs them
// across replicas: the counter, then each weight's slots.
func optimizerVars(o Optimizer, ws []*Weight) []*tfgo.Variable {
	var vs []*tfgo.Variable
	add := func(v *tfgo.Variable) {
		if v != nil {
			vs = append(vs, v)
		}
	}
	add(o.Iterations())
	switch o := o.(type) {
	case *SGD:
		for _, w := range ws {
			add(o.slots[w])
		}
	case *Adam:
		for _, w := range ws {
			add(o.m[w])
			add(o.v[w])
		}
	}
	return vs
}

// weightVariables are ws' variables.
func weightVariables(ws []*Weight) []*tfgo.Variable {
	vs := make([]*tfgo.Variable, len(ws))
	for i, w := range ws {
		vs[i] = w.Variable
	}
	return vs
}

// broadcastAssigns assigns to every replica's variables (vars[k][j]:
// replica k's j-th) the chief's replica 0's values, through the
// strategy's collectives: how the workers of a multi-worker strategy start
// from the chief's state, whoever loaded or initialized what.
func broadcastAssigns(ss *tfgo.Scope, st *distribute.MirroredStrategy, vars [][]*tfgo.Variable) []*tfgo.Operation {
	devs := st.Devices()
	per := make([][]tfgo.Output, len(vars[0]))
	for j := range per {
		per[j] = make([]tfgo.Output, len(vars))
		for k := range vars {
			per[j][k] = vars[k][j].Read(ss.WithDevice(devs[k]))
		}
	}
	got := st.BatchBroadcast(ss, per)
	var assigns []*tfgo.Operation
	for j := range got {
		for k := range vars {
			assigns = append(assigns, vars[k][j].Assign(ss.WithDevice(devs[k]), got[j][k]))
		}
	}
	return assigns
}

// syncReplicas assigns replica 0's weights and optimizer state to the
// other replicas' copies (nothing without a strategy or with one replica).
func (m *Model) syncReplicas(sess *tfgo.Session) error {
	if m.train == nil || m.train.mirror == nil || m.train.mirror.strategy.NumReplicasInSync() < 2 {
		return nil
	}
	if _, err := sess.Run(nil, nil, m.train.mirror.sync); err != nil {
		return fmt.Errorf("model %q: syncing the replicas of the MirroredStrategy: %w", m.name, err)
	}
	return nil
}

// explainStepError adds to a failed training step of a multi-worker
// strategy which peers no longer answer: a collective whose peer died
// fails with the RPC's error or its timeout, which need not name the task.
func (m *Model) explainStepError(err error) error {
	st := m.Strategy()
	if st.NumWorkers() < 2 || errors.Is(err, errPeerLost) {
		return err
	}
	if perr := st.CheckPeers(2 * time.Second); perr != nil {
		return fmt.Errorf("%w; %v", err, perr)
	}
	return err
}

// errPeerLost marks a step abandoned because a peer was lost.
var errPeerLost = errors.New("the step was abandoned")

// runWatched runs a training step, returning early with the watch's error
// when it fires first (see distribute.PeerWatch): the step goes on in
// TensorFlow until its collectives time out.
func runWatched(w *distribute.PeerWatch, run func() ([]*tfgo.Tensor, error)) ([]*tfgo.Tensor, error) {
	if w == nil {
		return run()
	}
	type result struct {
		outs []*tfgo.Tensor
		err  error
	}
	done := make(chan result, 1)
	go func() {
		outs, err := run()
		done <- result{outs, err}
	}()
	select {
	case r := <-done:
		return r.outs, r.err
	case <-w.Lost():
		return nil, fmt.Errorf("%v: %w, left running in TensorFlow until its collectives time out; end the process (its session cannot close before)", w.Err(), errPeerLost)
	}
}

// checkSplit refuses a global batch the replicas cannot share equally,
// before it runs.
func (m *Model) checkSplit(x *tfgo.Tensor) error {
	if m.train == nil || m.train.mirror == nil || x == nil {
		return nil
	}
	n := m.train.mirror.strategy.NumReplicasInSync()
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

// buildShardedUpdate adds the update of a strategy with
// ShardOptimizerState (ZeRO stage 1) and returns the ops that run it and
// the (replica 0's, replica k's) pairs the sync assigns: the weights and
// the iteration counters, not the slots, which differ per replica.
// rev[j][k] is replica k's gradient of weight len(ws)-1-j.
//
// Replica k updates part k of every weight (its flattened value, padded
// to R parts of ceil(size/R)): a part variable "zero_shard/<path>" on its
// device takes the part of its copy, the replica's optimizer applies the
// part of the mean gradient to it with slots of the part's size, and the
// updated parts, gathered on every device, are assigned to each replica's
// copy. Applying the optimizer's own update to a part rather than
// re-deriving its arithmetic on tensors keeps every element's update the
// ops of the unsharded step, element for element; the price is one extra
// 1/R copy of the weights per device. Replica 0's part variables and slots
// are placed on its device explicitly, so that the placement is what the
// option promises even when the default device differs.
func (m *Model) buildShardedUpdate(o CompileOptions, s, ts *tfgo.Scope, roots []*tfgo.Scope, mr *mirrored, rev [][]tfgo.Output, lossOps []*tfgo.Operation) ([]*tfgo.Operation, [][2]*tfgo.Variable, error) {
	st := o.Strategy
	n := st.NumReplicas()
	devs := st.Devices()
	ws := mr.copies[0]
	roots = append([]*tfgo.Scope(nil), roots...)
	roots[0] = s.WithDevice(devs[0])
	sizes := make([]int64, len(ws))
	flat := make([][]tfgo.Output, len(rev)) // rev's order, flattened and padded
	for j, gs := range rev {
		i := len(ws) - 1 - j
		size, err := dtypes.NumElements(ws[i].Shape())
		if err != nil {
			return nil, nil, fmt.Errorf("compile %q: weight %s: %w", m.name, ws[i].Path, err)
		}
		sizes[i] = size
		flat[j] = make([]tfgo.Output, n)
		for k, g := range gs {
			if g.Op != nil {
				ds := ts.WithDevice(devs[k]).SubScope(fmt.Sprintf("zero_shard_%d", k))
				flat[j][k] = padFlat(ds, g, size, st.ShardLength(size)*int64(n))
			}
		}
	}
	parts := st.BatchReduceScatterMean(ts.SubScope("reduce_scatter"), flat)
	clip := clipNorm(o.Optimizer)
	if clip != nil && *clip > 0 {
		parts = clipShardParts(st, ts, parts, *clip)
	}
	if err := s.Err(); err != nil {
		return nil, nil, fmt.Errorf("compile %q: %w", m.name, err)
	}
	var applies []*tfgo.Operation
	var pairs [][2]*tfgo.Variable
	newParts := make([][]tfgo.Output, len(rev)) // rev's order
	for j := range newParts {
		newParts[j] = make([]tfgo.Output, n)
	}
	for k := 0; k < n; k++ {
		opt := o.Optimizer
		if k > 0 {
			var err error
			if opt, err = replicaOptimizer(o.Optimizer); err != nil {
				return nil, nil, fmt.Errorf("compile %q: %w", m.name, err)
			}
		}
		ps := roots[k].SubScope("zero_shard")
		pws := make([]*Weight, len(ws))
		gk := make([]tfgo.Output, len(ws))
		var loads []*tfgo.Operation
		for i, w := range ws {
			c := st.ShardLength(sizes[i])
			pv := tfgo.NewVariable(ps, w.Path, w.DType(), []int64{c}, tfgo.Zeros(), tfgo.Trainable(false))
			pws[i] = &Weight{Variable: pv, Path: w.Path}
			gk[i] = parts[len(ws)-1-i][k]
			if gk[i].Op == nil {
				continue
			}
			full := padFlat(ps, mr.copies[k][i].Read(ps), sizes[i], c*int64(n))
			part := tfgo.Slice(ps, full, tfgo.Const(ps, []int64{int64(k) * c}), tfgo.Const(ps, []int64{c}))
			loads = append(loads, pv.Assign(ps, part))
		}
		// The parts are clipped already, by the whole gradient's norm; the
		// optimizer would clip them again by their own. Apply reads the
		// option only while it builds, so it is off for that time only and
		// the compiled optimizer keeps it.
		var saved float64
		if c := clipNorm(opt); c != nil {
			saved, *c = *c, 0
		}
		apply := opt.Apply(roots[k].WithControlDependencies(append(append([]*tfgo.Operation(nil), lossOps...), loads...)...), pws, gk)
		if c := clipNorm(opt); c != nil {
			*c = saved
		}
		if err := s.Err(); err != nil {
			return nil, nil, fmt.Errorf("compile %q: %w", m.name, err)
		}
		applies = append(applies, apply)
		after := ps.WithControlDependencies(apply)
		for i, pw := range pws {
			if gk[i].Op != nil {
				newParts[len(ws)-1-i][k] = pw.Read(after)
			}
		}
		if k > 0 {
			for i, w := range ws {
				pairs = append(pairs, [2]*tfgo.Variable{w.Variable, mr.copies[k][i].Variable})
			}
			pairs = append(pairs, [2]*tfgo.Variable{o.Optimizer.Iterations(), opt.Iterations()})
		}
	}
	gathered := st.BatchAllGather(ts.SubScope("all_gather"), newParts)
	if err := s.Err(); err != nil {
		return nil, nil, fmt.Errorf("compile %q: %w", m.name, err)
	}
	for k := 0; k < n; k++ {
		ds := roots[k].SubScope("zero_shard_update").WithControlDependencies(lossOps...)
		for i, w := range mr.copies[k] {
			g := gathered[len(ws)-1-i][k]
			if g.Op == nil {
				continue
			}
			v := tfgo.Slice(ds, g, tfgo.Const(ds, []int64{0}), tfgo.Const(ds, []int64{sizes[i]}))
			applies = append(applies, w.Assign(ds, tfgo.Reshape(ds, v, tfgo.Const(ds, w.Shape()))))
		}
	}
	if err := s.Err(); err != nil {
		return nil, nil, fmt.Errorf("compile %q: %w", m.name, err)
	}
	return applies, pairs, nil
}

// clipNorm points at o's GlobalClipNorm (nil for an optimizer without one).
func clipNorm(o Optimizer) *float64 {
	switch o := o.(type) {
	case *SGD:
		return &o.opts.GlobalClipNorm
	case *Adam:
		return &o.opts.GlobalClipNorm
	}
	return nil
}

// clipShardParts is clipByGlobalNorm on the replicas' parts of the mean
// gradients (parts[j][k]: replica k's part of gradient j). Each replica's
// squared sums of its parts, added across replicas by one more all-reduce
// (the padding adds zeros), are the squared norm of the whole mean
// gradient, so every replica scales by the factor the unsharded step
// computes, in Keras' arithmetic, up to the order of the additions.
func clipShardParts(st *distribute.MirroredStrategy, ts *tfgo.Scope, parts [][]tfgo.Output, c float64) [][]tfgo.Output {
	n := st.NumReplicas()
	devs := st.Devices()
	scopes := make([]*tfgo.Scope, n)
	sq := make([]tfgo.Output, n)
	for k := range n {
		cs := ts.WithDevice(devs[k]).SubScope(fmt.Sprintf("clip_by_global_norm_%d", k))
		scopes[k] = cs
		var sums []tfgo.Output
		for _, p := range parts {
			if p[k].Op != nil {
				sums = append(sums, castTo(cs, tfgo.Sum(cs, tfgo.Square(cs, p[k]), tfgo.Const(cs, int32(0))), tfgo.Float))
			}
		}
		if len(sums) == 0 {
			return parts
		}
		sq[k] = tfgo.Sum(cs, tfgo.Pack(cs, sums), tfgo.Const(cs, int32(0)))
	}
	total := st.AllReduceSum(ts.SubScope("global_norm"), sq)
	if total == nil {
		return parts
	}
	out := make([][]tfgo.Output, len(parts))
	for j := range parts {
		out[j] = make([]tfgo.Output, n)
	}
	for k, cs := range scopes {
		norm := tfgo.Sqrt(cs, total[k])
		clip := tfgo.Const(cs, float32(c))
		one := tfgo.Const(cs, float32(1))
		scale := tfgo.Mul(cs, clip, tfgo.Minimum(cs, tfgo.RealDiv(cs, one, norm), tfgo.RealDiv(cs, one, clip)))
		scale = tfgo.Add(cs, scale, tfgo.Sub(cs, norm, norm)) // NaN for a norm that is not finite, as Keras'
		for j, p := range parts {
			if p[k].Op != nil {
				out[j][k] = tfgo.Mul(cs, p[k], castTo(cs, scale, p[k].DataType()))
			}
		}
	}
	return out
}

// padFlat flattens x (of size elements) and pads it with zeros to length.
func padFlat(s *tfgo.Scope, x tfgo.Output, size, length int64) tfgo.Output {
	f := tfgo.Reshape(s, x, tfgo.Const(s, []int64{size}))
	if length == size {
		return f
	}
	return tfgo.Pad(s, f, tfgo.Const(s, [][]int64{{0, length - size}}))
}

// checkShardedSave refuses to save the optimizer's state of a model whose
// state is sharded: replica 0's slots (the optimizer's Variables()) hold
// its part only, so the checkpoint would have the keys of a
// single-device model's and other shapes and values. Gathering the parts
// into full-shaped variables at save time would need those variables, as
// large as the state the sharding saves, on one device.
func (m *Model) checkShardedSave() error {
	if m == nil || m.train == nil || m.train.mirror == nil || !m.train.mirror.sharded {
		return nil
	}
	return fmt.Errorf("saving %q: the optimizer's state is sharded over the %d replicas (distribute.MirroredOptions.ShardOptimizerState), and saving it is not implemented; save the weights with CheckpointOptions{WeightsOnly: true}",
		m.name, m.train.mirror.strategy.NumReplicas())
}
