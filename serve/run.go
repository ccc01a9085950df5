package serve

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// runSignature runs a signature of a held version on decoded inputs as TF
// Serving's predictor does: the request's input names must be the
// signature's (with its message), and the tensors go to the session as they
// are. runner.Model.Run would also refuse a shape that differs from the
// SignatureDef's static one; TF Serving leaves shapes to the runtime, and
// its own documentation relies on that ({"instances": [1.0, 2.0, 5.0]} for
// half_plus_three, whose x is [?, 1] in the signature), so this runs the
// session directly. What the graph cannot take, the runtime refuses with
// its own message (InvalidArgument, 400). The bound on the inputs' bytes
// (LoadOptions.MaxInputBytes) is kept. outputs, when not empty, are the
// signature outputs to fetch (gRPC's output_filter); otherwise all are.
func (s *Server) runSignature(ctx context.Context, h *handle, name string, sig runner.SignatureInfo, inputs requestTensors, outputs []string) (map[string]*tfgo.Tensor, error) {
	if err := checkInputNames(sig, inputs); err != nil {
		return nil, err
	}
	// A sparse or composite TensorInfo has no tensor name.
	for kind, m := range map[string]map[string]runner.TensorInfo{"input": sig.Inputs, "output": sig.Outputs} {
		for k, ti := range m {
			if ti.Name == "" {
				return nil, statusf(Unimplemented, "signature %q: %s %q is not a dense tensor; only dense tensors are served", name, kind, k)
			}
		}
	}
	// What runner.Model.Run refuses whatever the inputs (two inputs on
	// one tensor, tf.py_function's op) is refused here too, before the
	// session runs.
	if err := h.model.Unsupported(name); err != nil {
		return nil, statusf(Unimplemented, "%v", err)
	}
	limit := inputLimit(s.cfg)
	var total int64
	g := h.model.Session().Graph()
	feeds := make(map[tfgo.Output]any, len(inputs))
	feedOuts := make(map[string]tfgo.Output, len(inputs))
	for _, k := range sortedNames(inputs) {
		t := inputs[k]
		if total += int64(len(t.Data())); limit > 0 && total > limit {
			return nil, statusf(ResourceExhausted, "signature %q: inputs of more than %d bytes (the server's bound)", name, limit)
		}
		o, err := g.OutputByName(sig.Inputs[k].Name)
		if err != nil {
			return nil, statusf(Internal, "signature %q: input %q: %v", name, k, err)
		}
		feeds[o] = t
		feedOuts[k] = o
	}
	keys := sig.OutputNames()
	if len(outputs) > 0 {
		keys = outputs
	}
	fetches := make([]tfgo.Output, len(keys))
	for i, k := range keys {
		ti, ok := sig.Outputs[k]
		if !ok {
			return nil, statusf(InvalidArgument, "output tensor alias not found in signature: %s Outputs expected to be in the set {%s}.", k, strings.Join(sig.OutputNames(), ","))
		}
		o, err := g.OutputByName(ti.Name)
		if err != nil {
			return nil, statusf(Internal, "signature %q: output %q: %v", name, k, err)
		}
		fetches[i] = o
	}
	if err := ctx.Err(); err != nil {
		return nil, statusOf(err)
	}
	var opts *cpb.RunOptions
	if dl, ok := ctx.Deadline(); ok {
		ms := time.Until(dl).Milliseconds()
		if ms <= 0 {
			return nil, statusf(DeadlineExceeded, "signature %q: deadline exceeded before the run", name)
		}
		opts = &cpb.RunOptions{TimeoutInMs: ms}
	}
	// An output that is one of the fed tensors (a TF1 signature may
	// return its input) cannot be fetched: TensorFlow refuses to feed and
	// fetch one tensor. Its answer is a copy of the input; the session
	// fetches the others.
	alias := make([]string, len(keys))
	var runKeys []string
	var runFetches []tfgo.Output
	for i, o := range fetches {
		for k, f := range feedOuts {
			if f.Index == o.Index && f.Op.Name() == o.Op.Name() {
				alias[i] = k
			}
		}
		if alias[i] == "" {
			runKeys = append(runKeys, keys[i])
			runFetches = append(runFetches, o)
		}
	}
	start := time.Now()
	var outs []*tfgo.Tensor
	var err error
	if len(runFetches) > 0 {
		batched := false
		if len(runFetches) == len(fetches) { // a batch splits fetched outputs only
			outs, batched, err = s.runBatched(ctx, h, name, inputs, feedOuts, runKeys, runFetches)
		}
		if !batched {
			outs, _, err = h.model.Session().RunWithOptions(opts, feeds, runFetches)
			if err != nil {
				err = runError(err)
			}
		}
	}
	s.observeRun(ctx, h.name, start, err)
	if err != nil {
		return nil, err
	}
	res := make(map[string]*tfgo.Tensor, len(keys))
	for i, t := range outs {
		res[runKeys[i]] = t
	}
	for i, k := range keys {
		if alias[i] == "" {
			continue
		}
		c, err := tfgo.CloneTensor(inputs[alias[i]])
		if err != nil {
			for _, t := range res {
				t.Close()
			}
			return nil, statusf(Internal, "signature %q: output %q (input %q): %v", name, k, alias[i], err)
		}
		res[k] = c
	}
	return res, nil
}

// checkInputNames refuses a request whose inputs are not the signature's,
// with TF Serving's message (predict_util.cc, VerifyRequestInputsSize).
func checkInputNames[V any](sig runner.SignatureInfo, inputs map[string]V) error {
	same := len(inputs) == len(sig.Inputs)
	for k := range inputs {
		if _, ok := sig.Inputs[k]; !ok {
			same = false
		}
	}
	if same {
		return nil
	}
	var extra, missing []string
	for k := range inputs {
		if _, ok := sig.Inputs[k]; !ok {
			extra = append(extra, k)
		}
	}
	for k := range sig.Inputs {
		if _, ok := inputs[k]; !ok {
			missing = append(missing, k)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	return statusf(InvalidArgument, "input size does not match signature: %d!=%d len({%s}) != len({%s}). Sent extra: {%s}. Missing but required: {%s}.",
		len(inputs), len(sig.Inputs), strings.Join(sortedNames(inputs), ","), strings.Join(sig.InputNames(), ","), strings.Join(extra, ","), strings.Join(missing, ","))
}

// inputLimit is the bound on one run's input bytes
// (LoadOptions.MaxInputBytes; negative: none).
func inputLimit(cfg Config) int64 {
	if cfg.Load.MaxInputBytes != 0 {
		return cfg.Load.MaxInputBytes
	}
	return runner.DefaultMaxInputBytes
}

// runBatched runs a predict through the server's batcher
// (Config.Batching), when there is one and the run may be batched (predict
// runs of inputs whose dtypes can be concatenated); batched is false when
// the caller should run it alone.
func (s *Server) runBatched(ctx context.Context, h *handle, name string, inputs requestTensors, feedOuts map[string]tfgo.Output, keys []string, fetches []tfgo.Output) (outs []*tfgo.Tensor, batched bool, err error) {
	b := s.ext().batcher
	if b == nil || !requestInfoOf(ctx).batch {
		return nil, false, nil
	}
	names := sortedNames(inputs)
	spec := &batchSpec{sig: name, session: h.model.Session(), names: names, feeds: make([]tfgo.Output, len(names)), fetches: fetches}
	ts := make([]*tfgo.Tensor, len(names))
	for i, k := range names {
		spec.feeds[i], ts[i] = feedOuts[k], inputs[k]
	}
	size, ok, err := b.taskSize(ts)
	if !ok {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	// The caller holds h until this returns, and this returns only after
	// the batch that took the run has run: no batch runs a closed session.
	outs, err = b.run(ctx, spec, keys, ts, size)
	return outs, true, err
}
