package serve

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/tfgo"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// batcher merges the predict runs of concurrent requests as TF Serving's
// batching session does (batching_session.cc on a SharedBatchScheduler):
// one queue per model version, signature, set of inputs (with their dtypes,
// ranks and, without padding, their shapes past dimension 0) and set of
// outputs; each queue a list of batches of which the last is open; a batch
// thread (NumBatchThreads over all queues) takes the first batch when it is
// closed, full, or open for BatchTimeout, concatenates the requests' inputs
// along dimension 0 (padded to an allowed batch size, and in their other
// dimensions when PadVariableLengthInputs), runs the session once and
// splits the outputs back.
type batcher struct {
	cfg      BatchingConfig // checked by New, with defaults
	maxBytes int64          // bound on a merged run's input bytes, padding included (negative: none)
	log      *slog.Logger
	m        *serverMetrics
	threads  chan struct{} // a token per batch thread

	mu     sync.Mutex
	queues map[string]*batchQueue

	// runs counts merged session runs and tasks the requests they served.
	runs, tasks atomic.Int64
}

// batchSpec is what every task of a queue shares: the session, its feeds
// (in the order of names) and its fetches.
type batchSpec struct {
	sig     string
	session *tfgo.Session
	names   []string
	feeds   []tfgo.Output
	fetches []tfgo.Output
}

type batchTask struct {
	ctx      context.Context
	inputs   []*tfgo.Tensor // in spec.names' order
	size     int            // dimension 0, the rows it adds to a batch
	enqueued time.Time
	taken    bool             // a batch thread has it (under batcher.mu)
	done     chan batchResult // buffered: the thread never waits
}

type batchResult struct {
	outs []*tfgo.Tensor
	err  error
}

type openBatch struct {
	tasks []*batchTask
	size  int
	start time.Time // when its first task came
}

type batchQueue struct {
	key     string
	spec    *batchSpec
	batches []*openBatch // the last one is open
	wake    chan struct{}
}

// newBatcher makes the batcher of a configuration New has checked;
// maxBytes bounds a merged run's inputs as LoadOptions.MaxInputBytes bounds
// one request's, since padding can make a batch larger than its requests.
func newBatcher(cfg BatchingConfig, maxBytes int64, m *serverMetrics, log *slog.Logger) *batcher {
	b := &batcher{cfg: cfg.withDefaults(), maxBytes: maxBytes, log: log, m: m, queues: map[string]*batchQueue{}}
	b.threads = make(chan struct{}, max(b.cfg.NumBatchThreads, 1))
	return b
}

// batchKey is the queue of a run: requests merge only with runs of the
// same session, signature, inputs and outputs, and (without padding) the
// same shapes past dimension 0, so that a request never fails because of
// another's shape.
func (b *batcher) batchKey(spec *batchSpec, fetchKeys []string, inputs []*tfgo.Tensor) string {
	var k strings.Builder
	fmt.Fprintf(&k, "%p|%s|%s|", spec.session, spec.sig, strings.Join(fetchKeys, ","))
	for i, t := range inputs {
		sh := t.Shape()
		fmt.Fprintf(&k, "%s:%d:%d", spec.names[i], t.DataType(), len(sh))
		if !b.cfg.PadVariableLengthInputs {
			fmt.Fprintf(&k, ":%v", sh[1:])
		}
		k.WriteByte(';')
	}
	return k.String()
}

// taskSize is the rows a run adds to a batch, and ok whether its inputs
// can be merged at all (dtypes of fixed size, or strings); others run
// alone. A run that can be merged but is not a batch (no dimension 0,
// different sizes of it, or more rows than MaxBatchSize) gets the error
// TF Serving's batching session gives.
func (b *batcher) taskSize(inputs []*tfgo.Tensor) (size int, ok bool, err error) {
	if len(inputs) == 0 {
		return 0, false, nil
	}
	for _, t := range inputs {
		if dt := t.DataType(); dt != tfgo.String && dt.Size() == 0 {
			return 0, false, nil
		}
	}
	for i, t := range inputs {
		sh := t.Shape()
		if len(sh) == 0 {
			return 0, true, statusf(InvalidArgument, "Batching Run() input tensors must have at least one dimension")
		}
		if i == 0 {
			size = int(sh[0])
		} else if int(sh[0]) != size {
			return 0, true, statusf(InvalidArgument, "Batching Run() input tensors must have equal 0th-dimension size")
		}
	}
	if size > b.cfg.MaxBatchSize {
		return 0, true, statusf(InvalidArgument, "Task size %d is larger than maximum input batch size %d", size, b.cfg.MaxBatchSize)
	}
	return size, true, nil
}

// run queues a run and waits for its outputs (in spec.fetches' order). A
// request whose context ends while it waits in the queue leaves it with
// its context's error; once a batch thread has taken it, it waits for the
// batch, whose run is bounded by the smallest deadline in the batch.
func (b *batcher) run(ctx context.Context, spec *batchSpec, fetchKeys []string, inputs []*tfgo.Tensor, size int) ([]*tfgo.Tensor, error) {
	// Once per input tensor, as TF Serving's ComputeInputSize records it.
	for range inputs {
		b.m.inputBatchSize.Observe(float64(size))
	}
	t := &batchTask{ctx: ctx, inputs: inputs, size: size, enqueued: time.Now(), done: make(chan batchResult, 1)}
	key := b.batchKey(spec, fetchKeys, inputs)
	b.mu.Lock()
	q := b.queues[key]
	start := q == nil
	if start {
		q = &batchQueue{key: key, spec: spec, wake: make(chan struct{}, 1)}
		b.queues[key] = q
	}
	if len(q.batches) == 0 {
		q.batches = append(q.batches, &openBatch{})
	}
	open := q.batches[len(q.batches)-1]
	if open.size+size > b.cfg.MaxBatchSize {
		if len(q.batches) >= b.cfg.MaxEnqueuedBatches {
			b.mu.Unlock()
			return nil, statusf(ResourceExhausted, "The batch scheduling queue to which this task was submitted is full")
		}
		open = &openBatch{}
		q.batches = append(q.batches, open)
	}
	if len(open.tasks) == 0 {
		open.start = t.enqueued
	}
	open.tasks = append(open.tasks, t)
	open.size += size
	b.mu.Unlock()
	if start {
		go b.pump(q)
	} else {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	select {
	case r := <-t.done:
		return r.outs, r.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	if !t.taken {
		b.removeLocked(q, t)
		b.mu.Unlock()
		st := statusOf(ctx.Err())
		return nil, &Status{Code: st.Code, Message: "Run() timeout exceeded while waiting in batching queue: " + ctx.Err().Error()}
	}
	b.mu.Unlock()
	r := <-t.done
	return r.outs, r.err
}

// removeLocked takes a task that gave up out of its batch.
func (b *batcher) removeLocked(q *batchQueue, t *batchTask) {
	for i, ob := range q.batches {
		if j := slices.Index(ob.tasks, t); j >= 0 {
			ob.tasks = slices.Delete(ob.tasks, j, j+1)
			ob.size -= t.size
			if len(ob.tasks) == 0 && i < len(q.batches)-1 {
				q.batches = slices.Delete(q.batches, i, i+1)
			}
			return
		}
	}
}

// nextLocked is the batch a free thread should run now, or nil and how
// long until the open batch times out (negative: the queue is empty).
func (b *batcher) nextLocked(q *batchQueue, now time.Time) (*openBatch, time.Duration) {
	for len(q.batches) > 1 && len(q.batches[0].tasks) == 0 {
		q.batches = q.batches[1:]
	}
	if len(q.batches) == 0 || len(q.batches) == 1 && len(q.batches[0].tasks) == 0 {
		return nil, -1
	}
	first := q.batches[0]
	if len(q.batches) > 1 || first.size >= b.cfg.MaxBatchSize || now.Sub(first.start) >= b.cfg.BatchTimeout {
		q.batches = q.batches[1:]
		for _, t := range first.tasks {
			t.taken = true
		}
		return first, 0
	}
	return nil, b.cfg.BatchTimeout - now.Sub(first.start)
}

// pump hands a queue's batches to batch threads until the queue is empty,
// then drops it (so that it holds no session of an unloaded version).
func (b *batcher) pump(q *batchQueue) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		b.threads <- struct{}{}
		b.mu.Lock()
		batch, wait := b.nextLocked(q, time.Now())
		if batch == nil && wait < 0 {
			delete(b.queues, q.key)
			b.mu.Unlock()
			<-b.threads
			return
		}
		b.mu.Unlock()
		if batch != nil {
			go func() {
				defer func() { <-b.threads }()
				b.process(q.spec, batch.tasks)
			}()
			continue
		}
		<-b.threads
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		// With Go 1.23's timers, Stop and Reset leave no stale tick to
		// drain.
		select {
		case <-q.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// process runs one batch and answers its tasks.
func (b *batcher) process(spec *batchSpec, tasks []*batchTask) {
	now := time.Now()
	live := tasks[:0:0]
	for _, t := range tasks {
		b.m.queuingLatency.WithLabelValues(b.cfg.ThreadPoolName).Observe(micros(now.Sub(t.enqueued)))
		if err := t.ctx.Err(); err != nil {
			st := statusOf(err)
			t.done <- batchResult{err: &Status{Code: st.Code, Message: "Run() timeout exceeded while waiting in batching queue: " + err.Error()}}
			continue
		}
		live = append(live, t)
	}
	if len(live) == 0 {
		return
	}
	outs, err := b.runBatch(spec, live)
	for i, t := range live {
		if err != nil {
			t.done <- batchResult{err: err}
		} else {
			t.done <- batchResult{outs: outs[i]}
		}
	}
}

// roundToAllowed is TF Serving's RoundToLowestAllowedBatchSize.
func (b *batcher) roundToAllowed(n int) int {
	for _, a := range b.cfg.AllowedBatchSizes {
		if a >= n {
			return a
		}
	}
	return n
}

// runBatch merges the tasks' inputs, runs the session once with the
// smallest deadline of the batch, and splits the outputs per task.
func (b *batcher) runBatch(spec *batchSpec, tasks []*batchTask) ([][]*tfgo.Tensor, error) {
	total := 0
	var deadline time.Time
	for _, t := range tasks {
		total += t.size
		if dl, ok := t.ctx.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
			deadline = dl
		}
	}
	exec := b.roundToAllowed(total)
	padding := exec - total
	inputs := make([][]hostTensor, len(spec.names))
	dims := make([][]int64, len(spec.names))
	var bytes int64
	for i := range spec.names {
		parts := make([]hostTensor, len(tasks))
		for j, t := range tasks {
			h, err := hostOf(t.inputs[i])
			if err != nil {
				return nil, err
			}
			parts[j] = h
		}
		inputs[i], dims[i] = parts, slices.Clone(parts[0].shape)
		if b.cfg.PadVariableLengthInputs {
			for _, p := range parts[1:] {
				for d := 1; d < len(dims[i]); d++ {
					dims[i][d] = max(dims[i][d], p.shape[d])
				}
			}
		}
		bytes += min(mergedBytes(parts, int64(exec), dims[i]), math.MaxInt64-bytes)
	}
	// Checked before anything is allocated: padding rows and dimensions
	// can make a batch far larger than the requests in it.
	if b.maxBytes >= 0 && bytes > b.maxBytes {
		return nil, statusf(ResourceExhausted, "signature %q: a batch of %d requests would feed more than %d bytes (the server's bound) once padded", spec.sig, len(tasks), b.maxBytes)
	}
	feeds := make(map[tfgo.Output]any, len(spec.names))
	var merged []*tfgo.Tensor
	defer func() {
		for _, t := range merged {
			t.Close()
		}
	}()
	for i := range spec.names {
		parts, maxDims := inputs[i], dims[i]
		if b.cfg.PadVariableLengthInputs {
			for j := range parts {
				p, err := parts[j].padTo(maxDims)
				if err != nil {
					return nil, err
				}
				parts[j] = p
			}
		}
		if padding > 0 {
			row := parts[len(parts)-1].rows(0, 1)
			for range padding {
				parts = append(parts, row)
			}
		}
		t, err := concatRows(parts).tensor()
		if err != nil {
			return nil, statusf(Internal, "Tensor concat operation failed: %v", err)
		}
		merged = append(merged, t)
		feeds[spec.feeds[i]] = t
	}
	var opts *cpb.RunOptions
	if !deadline.IsZero() {
		ms := time.Until(deadline).Milliseconds()
		if ms <= 0 {
			return nil, statusf(DeadlineExceeded, "signature %q: deadline exceeded before the batched run", spec.sig)
		}
		opts = &cpb.RunOptions{TimeoutInMs: ms}
	}
	outs, _, err := spec.session.RunWithOptions(opts, feeds, spec.fetches)
	b.runs.Add(1)
	b.tasks.Add(int64(len(tasks)))
	b.m.wrappedRunCount.Inc()
	b.m.processedBatchSize.Observe(float64(exec))
	b.m.paddingSize.WithLabelValues(strconv.Itoa(exec)).Observe(float64(padding))
	if err != nil {
		return nil, runError(err)
	}
	defer func() {
		for _, t := range outs {
			t.Close()
		}
	}()
	res := make([][]*tfgo.Tensor, len(tasks))
	fail := func(err error) ([][]*tfgo.Tensor, error) {
		for _, r := range res {
			for _, t := range r {
				t.Close()
			}
		}
		return nil, err
	}
	for _, o := range outs {
		sh := o.Shape()
		if len(sh) == 0 {
			return fail(statusf(FailedPrecondition, "Batched output tensor has 0 dimensions"))
		}
		if sh[0] != int64(exec) {
			return fail(statusf(FailedPrecondition, "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension sizes of the input tensors"))
		}
		h, err := hostOf(o)
		if err != nil {
			return fail(err)
		}
		row := int64(0)
		for j, t := range tasks {
			part, err := h.rows(row, row+int64(t.size)).tensor()
			if err != nil {
				return fail(statusf(Internal, "Tensor split operation failed: %v", err))
			}
			res[j] = append(res[j], part)
			row += int64(t.size)
		}
	}
	if b.log.Enabled(context.Background(), slog.LevelDebug) {
		b.log.Debug("batched run", "signature", spec.sig, "requests", len(tasks), "rows", total, "padding", padding)
	}
	return res, nil
}

// mergedBytes bounds the bytes of one input merged from parts into rows
// rows of shape dims past dimension 0 (a string element counted as its
// header plus the longest string, which padding may repeat); MaxInt64
// when the count overflows.
func mergedBytes(parts []hostTensor, rows int64, dims []int64) int64 {
	elem := int64(parts[0].esz)
	if parts[0].dt == tfgo.String {
		longest := 0
		for _, p := range parts {
			for _, s := range p.strs {
				longest = max(longest, len(s))
			}
		}
		elem = 8 + int64(longest)
	}
	n, err := dtypes.NumElements(append([]int64{rows, elem}, dims[1:]...))
	if err != nil {
		return math.MaxInt64
	}
	return n
}

// hostTensor is a tensor's elements in Go memory, to concatenate, pad and
// split: the bytes of a fixed-size dtype, or the strings of a string one.
type hostTensor struct {
	dt    tfgo.DataType
	shape []int64
	esz   int      // bytes per element (fixed-size dtypes)
	data  []byte   // fixed-size dtypes
	strs  [][]byte // tfgo.String
}

func hostOf(t *tfgo.Tensor) (hostTensor, error) {
	h := hostTensor{dt: t.DataType(), shape: t.Shape()}
	if h.dt == tfgo.String {
		s, err := t.Strings()
		if err != nil {
			return h, statusf(Internal, "reading a string tensor: %v", err)
		}
		h.strs = s
		return h, nil
	}
	h.esz = h.dt.Size()
	if h.esz == 0 {
		return h, statusf(Internal, "dtype %s cannot be batched", dtName(h.dt))
	}
	h.data = t.Data()
	return h, nil
}

func (h hostTensor) numElements() int64 {
	n := int64(1)
	for _, d := range h.shape {
		n *= d
	}
	return n
}

// rowElems is the number of elements in one row (dimension 0 index).
func (h hostTensor) rowElems() int64 {
	n := int64(1)
	for _, d := range h.shape[1:] {
		n *= d
	}
	return n
}

// rows is rows [from, to) of h (sharing its memory).
func (h hostTensor) rows(from, to int64) hostTensor {
	out := h
	out.shape = append([]int64{to - from}, h.shape[1:]...)
	re := h.rowElems()
	if h.dt == tfgo.String {
		out.strs = h.strs[from*re : to*re]
	} else {
		out.data = h.data[from*re*int64(h.esz) : to*re*int64(h.esz)]
	}
	return out
}

// concatRows joins tensors of equal dtype and inner shape along
// dimension 0.
func concatRows(parts []hostTensor) hostTensor {
	out := hostTensor{dt: parts[0].dt, esz: parts[0].esz, shape: slices.Clone(parts[0].shape)}
	out.shape[0] = 0
	for _, p := range parts {
		out.shape[0] += p.shape[0]
		if out.dt == tfgo.String {
			out.strs = append(out.strs, p.strs...)
		} else {
			out.data = append(out.data, p.data...)
		}
	}
	return out
}

func (h hostTensor) tensor() (*tfgo.Tensor, error) {
	if h.dt == tfgo.String {
		return tfgo.NewStringTensor(h.shape, h.strs)
	}
	return tfgo.NewTensorFromBytes(h.dt, h.shape, h.data)
}

// padTo pads h at the end of every dimension but the first up to dims,
// with h's first element, as TF Serving's AddPadding (batching_util.cc).
func (h hostTensor) padTo(dims []int64) (hostTensor, error) {
	if len(h.shape) > 6 {
		return h, statusf(InvalidArgument, "Only tensors with rank from 1 to 6 can be padded.")
	}
	want := append([]int64{h.shape[0]}, dims[1:]...)
	if slices.Equal(want, h.shape) {
		return h, nil
	}
	out := hostTensor{dt: h.dt, esz: h.esz, shape: want}
	n := out.numElements()
	if n == h.numElements() {
		return h, nil
	}
	if h.numElements() < 1 {
		return h, statusf(InvalidArgument, "Got empty tensor in batch of non-empty tensors.")
	}
	if h.dt == tfgo.String {
		out.strs = make([][]byte, n)
	} else {
		out.data = make([]byte, n*int64(h.esz))
	}
	// Walk the output's multi-index; an index inside h's shape copies the
	// element, one past it in any dimension is the pad value.
	idx := make([]int64, len(want))
	for i := int64(0); i < n; i++ {
		src, inside := int64(0), true
		for d := range want {
			if idx[d] >= h.shape[d] {
				inside = false
				break
			}
			src = src*h.shape[d] + idx[d]
		}
		if !inside {
			src = 0
		}
		if h.dt == tfgo.String {
			out.strs[i] = h.strs[src]
		} else {
			copy(out.data[i*int64(h.esz):], h.data[src*int64(h.esz):(src+1)*int64(h.esz)])
		}
		for d := len(want) - 1; d >= 0; d-- {
			if idx[d]++; idx[d] < want[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out, nil
}
