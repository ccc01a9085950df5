// Package runner loads SavedModels into the TensorFlow runtime and runs
// their signatures, and exports graphs built in Go as SavedModels that
// Python TensorFlow, saved_model_cli and TensorFlow Serving load.
//
// Loading goes through TensorFlow's own C++ loader (the C API's
// TF_LoadSessionFromSavedModel, what TensorFlow Serving uses): it works for
// TF1-style exports (tf.compat.v1 SavedModelBuilder, and this package's
// Export) and for TF2 exports (tf.saved_model.save, Keras' model.export),
// whose signatures are graph tensors as well. Where a TF2 export's
// restore op misses variables its signatures capture (tf.saved_model.save
// of a Keras 3 model; SaveOptions(experimental_skip_saver=True)), Load
// restores them from the object graph, as Python's loader does. A
// signature output that is one of its inputs is answered with a copy of
// the input (TensorFlow cannot feed and fetch one tensor); two inputs on
// one tensor are refused (ErrUnsupported). A TF1 export that lists an
// asset twice, which the C++ loader cannot feed, loads through a copy of
// its graph without the repeat (as Python's loader takes it). Before the
// runtime sees a directory, package savedmodel checks it in Go, so that a
// missing or corrupted saved_model.pb or a missing variables/ bundle is an
// error naming the file rather than a message from deep inside the
// runtime.
//
//	m, err := runner.Load("models/gpt/3") // tag "serve"
//	defer m.Close()
//	for _, s := range m.Signatures() { fmt.Println(s) }
//	out, err := m.Run(ctx, "serving_default", map[string]any{"ids": [][]int32{...}})
//
// Run checks the inputs against the SignatureDef before running: an unknown
// signature, a missing or unexpected input, a wrong dtype or a shape that
// does not fit is an error naming the signature and the input (errors.Is
// finds ErrUnknownSignature, ErrMissingInput, ErrUnexpectedInput,
// ErrDType, ErrShape).
//
// Speed: the default session is TensorFlow's default configuration, the
// one Python's tf.saved_model.load runs a signature with, and both run the
// same kernels (the optimized graphs hold the same ops). cmd/benchinfer
// times Run against Python's signature call, interleaved, with CPU time
// per run and the ops that ran. Measured on a shared 2-core EPYC (AVX-512,
// load average 3-10), 4-block GPT, Go's and Keras' exports, Python time /
// Go time:
//
//	default session                 batch 1: 0.96-1.07x  batch 32: 0.96-1.08x
//	Session.IntraOpThreads 1        batch 1: 1.18-1.27x  batch 32: 0.54-1.04x
//	SingleThreadedExecutor          batch 1: 1.04-1.15x  batch 32: 0.84-1.09x
//	Session.XLA                     batch 1: 0.93-1.25x  batch 32: 0.68-0.77x
//	oneDNN bfloat16 rewrite (below) batch 1: 1.05-1.08x  batch 32: 1.26-1.34x
//
// The single-threaded executor never lost at batch 1 and its CPU time per
// run at batch 32 was the default's (within 3%), but its batch-32 wall
// time went both ways, and it cannot run every graph: an option, not the
// default.
//
// One intra-op thread spares small kernels the threads' synchronisation
// (the 16 transposes of Go's export at batch 1: 4 ms with two threads,
// 0.5-0.9 ms with one) but leaves a core idle in the batch-32 matmuls,
// which an idle machine would show even more. The bfloat16 rewrite
// (Session.Config graph_options.rewrite_options
// auto_mixed_precision_onednn_bfloat16: ON, on CPUs with AVX-512 BF16)
// halves the matmuls' time at batch 32 but moves the logits by up to 0.05,
// so it is not a default.
//
// Export writes a TF1-style SavedModel (see Export): the graph pruned to
// what the signatures need, a SaverDef with its save and restore ops, the
// variables' values read from the session, assets and fingerprint.pb.
// ExportVersion publishes it as BASE/<version>/ for TensorFlow Serving,
// atomically.
package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	tspb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// Errors of Run, found with errors.Is; the messages name the signature
// and the input.
var (
	ErrUnknownSignature = errors.New("unknown signature")
	ErrMissingInput     = errors.New("missing input")
	ErrUnexpectedInput  = errors.New("unexpected input")
	ErrDType            = errors.New("wrong dtype")
	ErrShape            = errors.New("wrong shape")
	// ErrNilInput: a nil or closed *tfgo.Tensor given as an input.
	ErrNilInput = errors.New("nil or closed tensor")
	// ErrInputTooLarge: a Run's inputs hold more bytes than
	// LoadOptions.MaxInputBytes allows.
	ErrInputTooLarge = errors.New("inputs too large")
	// ErrUnsupported: a signature input or output that is not a dense
	// tensor (a sparse or composite TensorInfo encoding), two inputs of a
	// signature on one tensor, or a signature whose graph calls Python
	// (tf.py_function, tf.numpy_function).
	ErrUnsupported = errors.New("unsupported")
)

// TensorInfo describes a signature's input or output.
type TensorInfo struct {
	// Name is the tensor in the graph, "op:index".
	Name  string
	DType tfgo.DataType
	// Shape is the static shape; -1 is a dimension of any size (usually
	// the batch), and UnknownRank admits any shape.
	Shape tfgo.Shape
}

// SignatureInfo describes a signature of a loaded model.
type SignatureInfo struct {
	Name string
	// MethodName is e.g. "tensorflow/serving/predict".
	MethodName      string
	Inputs, Outputs map[string]TensorInfo
}

// InputNames lists the input keys in order.
func (s SignatureInfo) InputNames() []string { return sortedKeys(s.Inputs) }

// OutputNames lists the output keys in order.
func (s SignatureInfo) OutputNames() []string { return sortedKeys(s.Outputs) }

// String formats the signature as one line per tensor, e.g.
//
//	serving_default (tensorflow/serving/predict)
//	  input  x: float32 (None, 3) x:0
//	  output y: float32 (None, 2) y:0
func (s SignatureInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s)", s.Name, s.MethodName)
	for _, k := range s.InputNames() {
		i := s.Inputs[k]
		fmt.Fprintf(&b, "\n  input  %s: %s %s %s", k, i.DType, i.Shape, i.Name)
	}
	for _, k := range s.OutputNames() {
		o := s.Outputs[k]
		fmt.Fprintf(&b, "\n  output %s: %s %s %s", k, o.DType, o.Shape, o.Name)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// signature is a SignatureDef resolved against the loaded graph.
type signature struct {
	info       SignatureInfo
	inputs     map[string]tfgo.Output
	outputKeys []string
	outputs    []tfgo.Output
	// fetches are the outputs the session fetches: those that are not
	// an input's tensor; fetchAt[i] is output i's place among them, or
	// -1 when output i is the tensor of input aliasOf[i] (TensorFlow
	// refuses to feed and fetch one tensor, so Run answers with a copy
	// of the input).
	fetches     []tfgo.Output
	fetchAt     []int
	aliasOf     []string
	unsupported error // a non-dense TensorInfo, two inputs on one tensor, a Python-only op: Run refuses the signature
}

// Model is a SavedModel loaded into a session. Run may be called from
// several goroutines at once; Close waits for running calls.
type Model struct {
	dir  string
	tags []string
	sess *tfgo.Session
	meta *cpb.MetaGraphDef
	sigs map[string]*signature
	// maxInput bounds the bytes of one Run's inputs (< 0: no bound).
	maxInput int64
	// runOpts is what every Run hands the session (nil: none).
	runOpts *cpb.RunOptions

	closeOnce sync.Once
	closeErr  error
}

// LoadOptions configure LoadWithOptions.
type LoadOptions struct {
	// Tags select the meta graph (its tag set must equal them); default
	// {"serve"}.
	Tags []string
	// Session configures the session (threads, devices, XLA); the zero
	// value is TensorFlow's default, the configuration Python's
	// tf.saved_model.load runs a signature with, and measured the fastest
	// at batch 32 (cmd/benchinfer; see the package doc).
	//
	// Session.XLA compiles the signatures with XLA auto-clustering. It is
	// refused (ErrUnsupported) in a process where TensorFlow would ignore
	// it: on the CPU, the process must start with
	// TF_XLA_FLAGS=--tf_xla_cpu_global_jit or make its first session with
	// XLA.
	Session tfgo.SessionOptions
	// SingleThreadedExecutor runs each step's kernels one after another on
	// the calling thread (TensorFlow's SINGLE_THREADED_EXECUTOR), each
	// kernel still using the intra-op pool, instead of scheduling
	// independent ops on the inter-op pool. It is refused
	// (ErrUnsupported) for graphs with control flow, reference variables
	// or non-CPU devices, with Session.XLA, a target or a device count,
	// and in a process with a GPU. The run's step stats are empty.
	SingleThreadedExecutor bool
	// MaxInputBytes bounds the bytes of one Run's input tensors together
	// (their buffers; a string element counts its header), checked before
	// the graph runs: a request
	// from outside cannot make the model allocate activations for a batch
	// of any size. 0 means DefaultMaxInputBytes; negative, no bound.
	MaxInputBytes int64
	// RunOptions, when set, are the RunOptions every Run hands the session
	// (a copy is kept); a deadline of Run's context sets their timeout.
	RunOptions *cpb.RunOptions
}

// DefaultMaxInputBytes is the bound on a Run's inputs when
// LoadOptions.MaxInputBytes is 0: 1 GiB.
const DefaultMaxInputBytes = 1 << 30

// Load loads the meta graph tagged tags (default "serve") of the
// SavedModel in dir, as TensorFlow Serving does, with a default session.
func Load(dir string, tags ...string) (*Model, error) {
	return LoadWithOptions(dir, LoadOptions{Tags: tags})
}

// LoadWithOptions is Load with a session configuration.
func LoadWithOptions(dir string, opts LoadOptions) (*Model, error) {
	tags := opts.Tags
	if len(tags) == 0 {
		tags = []string{savedmodel.TagServe}
	}
	if err := checkXLA(opts.Session); err != nil {
		return nil, fmt.Errorf("loading SavedModel %s: %w", dir, err)
	}
	// Check the files in Go first: clear errors naming the file.
	mg, err := savedmodel.ReadMetaGraph(dir, tags...)
	if err != nil {
		return nil, fmt.Errorf("loading SavedModel %s: %w", dir, err)
	}
	sopts, err := withExecutor(opts.Session, opts.SingleThreadedExecutor, mg)
	if err != nil {
		return nil, fmt.Errorf("loading SavedModel %s: %w", dir, err)
	}
	loadDir := dir
	if savedmodel.DuplicateAssets(mg) {
		shadow, err := dedupedDir(dir)
		if err != nil {
			return nil, fmt.Errorf("loading SavedModel %s: %w", dir, err)
		}
		defer os.RemoveAll(shadow) // links and a copy of the graph only
		loadDir = shadow
	}
	sess, meta, err := tfgo.LoadSavedModel(loadDir, tags, sopts)
	if err != nil {
		return nil, fmt.Errorf("loading SavedModel %s (tags %s): %w", dir, strings.Join(tags, ","), err)
	}
	m := &Model{dir: dir, tags: tags, sess: sess, meta: meta, sigs: map[string]*signature{}, maxInput: opts.MaxInputBytes}
	if opts.RunOptions != nil {
		m.runOpts = proto.Clone(opts.RunOptions).(*cpb.RunOptions)
	}
	if m.maxInput == 0 {
		m.maxInput = DefaultMaxInputBytes
	}
	if err := m.restoreCapturedVariables(); err != nil {
		m.Close()
		return nil, fmt.Errorf("loading SavedModel %s: %w", dir, err)
	}
	ix := newGraphIndex(meta.GetGraphDef())
	for name, def := range meta.GetSignatureDef() {
		if name == savedmodel.InitOpSignatureKey {
			continue
		}
		s, err := m.resolve(name, def)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("loading SavedModel %s: %w", dir, err)
		}
		if s.unsupported == nil {
			var outs []string
			for _, k := range s.outputKeys {
				outs = append(outs, s.info.Outputs[k].Name)
			}
			if op, where := pythonOnlyOp(ix, outs); op != "" {
				s.unsupported = fmt.Errorf("signature %q calls %s (op %s, %s), whose Python code runs only in the Python process that saved the model: %w", name, pythonOnlyOps[op], op, where, ErrUnsupported)
			}
		}
		m.sigs[name] = s
	}
	return m, nil
}

// dedupedDir returns a new directory that is dir with the repeated
// assets of its SavedModel proto removed (savedmodel.DuplicateAssets): a
// saved_model.pb of its own and symbolic links to everything else, so
// that TensorFlow's C++ loader, which fails on a repeated asset, reads
// the graph there and feeds the assets' paths through the links. The
// session keeps nothing of it once loaded (the assets' paths are fed to
// the init op only, which fills the tables), so the caller removes it.
func dedupedDir(dir string) (string, error) {
	sm, err := savedmodel.ReadSavedModel(dir)
	if err != nil {
		return "", err
	}
	savedmodel.DedupAssets(sm)
	b, err := proto.Marshal(sm)
	if err != nil {
		return "", fmt.Errorf("the SavedModel without its repeated assets: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "gotf-savedmodel-")
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if e.Name() == savedmodel.SavedModelFilename || e.Name() == savedmodel.SavedModelFilenameText {
			continue
		}
		if err := os.Symlink(filepath.Join(abs, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, savedmodel.SavedModelFilename), b, 0o600); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	return tmp, nil
}

func (m *Model) resolve(name string, def *cpb.SignatureDef) (*signature, error) {
	s := &signature{
		info: SignatureInfo{Name: name, MethodName: def.GetMethodName(),
			Inputs: map[string]TensorInfo{}, Outputs: map[string]TensorInfo{}},
		inputs: map[string]tfgo.Output{},
	}
	g := m.sess.Graph()
	do := func(kind, key string, ti *cpb.TensorInfo) (TensorInfo, tfgo.Output, error) {
		info := TensorInfo{Name: ti.GetName(), DType: tfgo.DataType(ti.GetDtype()), Shape: shapeFromProto(ti.GetTensorShape())}
		if _, dense := ti.GetEncoding().(*cpb.TensorInfo_Name); !dense {
			if s.unsupported == nil {
				enc := "composite"
				if ti.GetCooSparse() != nil {
					enc = "COO sparse"
				}
				s.unsupported = fmt.Errorf("signature %q: %s %q is a %s tensor: %w (only dense tensors are)", name, kind, key, enc, ErrUnsupported)
			}
			return info, tfgo.Output{}, nil
		}
		o, err := g.OutputByName(ti.GetName())
		if err != nil {
			return info, o, fmt.Errorf("signature %q: %s %q names tensor %q: %w", name, kind, key, ti.GetName(), err)
		}
		return info, o, nil
	}
	for key, ti := range def.GetInputs() {
		info, o, err := do("input", key, ti)
		if err != nil {
			return nil, err
		}
		s.info.Inputs[key] = info
		s.inputs[key] = o
	}
	inputOf := map[string]string{} // "op:index" of an input -> its key
	for _, key := range sortedKeys(s.inputs) {
		o := s.inputs[key]
		if o.Op == nil {
			continue
		}
		tk := tensorKey(o.Op.Name(), o.Index)
		if first, dup := inputOf[tk]; dup && s.unsupported == nil {
			// TensorFlow cannot feed one tensor twice (Python's
			// loader refuses such a signature too).
			s.unsupported = fmt.Errorf("signature %q: inputs %q and %q are the same tensor %s: %w (a tensor is fed once)", name, first, key, tk, ErrUnsupported)
		}
		if _, dup := inputOf[tk]; !dup {
			inputOf[tk] = key
		}
	}
	for _, key := range sortedKeys(def.GetOutputs()) {
		info, o, err := do("output", key, def.GetOutputs()[key])
		if err != nil {
			return nil, err
		}
		s.info.Outputs[key] = info
		s.outputKeys = append(s.outputKeys, key)
		s.outputs = append(s.outputs, o)
		in := ""
		if o.Op != nil {
			in = inputOf[tensorKey(o.Op.Name(), o.Index)]
		}
		s.aliasOf = append(s.aliasOf, in)
		if in != "" {
			s.fetchAt = append(s.fetchAt, -1)
			continue
		}
		s.fetchAt = append(s.fetchAt, len(s.fetches))
		s.fetches = append(s.fetches, o)
	}
	return s, nil
}

func shapeFromProto(sp *tspb.TensorShapeProto) tfgo.Shape {
	if sp == nil || sp.GetUnknownRank() {
		return tfgo.UnknownShape()
	}
	dims := make([]int64, len(sp.GetDim()))
	for i, d := range sp.GetDim() {
		dims[i] = d.GetSize()
	}
	if len(dims) == 0 {
		dims = nil
	}
	return tfgo.MakeShape(dims...)
}

// Unsupported returns the error Run gives for a signature it refuses
// whatever the inputs (ErrUnsupported: a sparse or composite input or
// output, two inputs on one tensor, a Python-only op such as
// tf.py_function's), or nil; ErrUnknownSignature for a signature the
// model does not have. Callers that run the session themselves (package
// serve) check it first.
func (m *Model) Unsupported(sig string) error {
	if m == nil {
		return errors.New("runner: nil Model (load one with runner.Load)")
	}
	s, ok := m.sigs[sig]
	if !ok {
		return fmt.Errorf("signature %q: %w; the model has %s", sig, ErrUnknownSignature, quoteList(sortedKeys(m.sigs)))
	}
	return s.unsupported
}

// Dir is the directory the model was loaded from.
func (m *Model) Dir() string { return m.dir }

// Tags are the tags of the loaded meta graph.
func (m *Model) Tags() []string { return append([]string(nil), m.tags...) }

// MetaGraph is the loaded MetaGraphDef.
func (m *Model) MetaGraph() *cpb.MetaGraphDef { return m.meta }

// Session is the session the model runs in (its Graph is the loaded graph).
func (m *Model) Session() *tfgo.Session { return m.sess }

// Signatures lists the model's signatures in name order (without the
// internal "__saved_model_init_op").
func (m *Model) Signatures() []SignatureInfo {
	out := make([]SignatureInfo, 0, len(m.sigs))
	for _, k := range sortedKeys(m.sigs) {
		out = append(out, m.sigs[k].info)
	}
	return out
}

// Signature describes one signature.
func (m *Model) Signature(name string) (SignatureInfo, bool) {
	s, ok := m.sigs[name]
	if !ok {
		return SignatureInfo{}, false
	}
	return s.info, true
}

// Run runs a signature: inputs maps each of its input keys to a Go value
// (as tfgo.NewTensor takes: a scalar or nested slices) or a *tfgo.Tensor.
// Every input is checked against the SignatureDef before anything runs
// (see the package doc for the errors). It returns a tensor per output
// key; they belong to the caller.
//
// A deadline of ctx becomes the run's timeout; a run under way is not
// interrupted by cancelling ctx (the C API cannot), but a cancelled ctx
// stops Run before it starts.
func (m *Model) Run(ctx context.Context, sig string, inputs map[string]any) (map[string]*tfgo.Tensor, error) {
	if m == nil {
		return nil, errors.New("runner: nil Model (load one with runner.Load)")
	}
	if ctx == nil {
		return nil, fmt.Errorf("signature %q: nil context", sig)
	}
	s, ok := m.sigs[sig]
	if !ok {
		return nil, fmt.Errorf("signature %q: %w; the model has %s", sig, ErrUnknownSignature, quoteList(sortedKeys(m.sigs)))
	}
	if s.unsupported != nil {
		return nil, s.unsupported
	}
	for _, k := range sortedKeys(inputs) {
		if _, ok := s.inputs[k]; !ok {
			return nil, fmt.Errorf("signature %q: input %q: %w; its inputs are %s", sig, k, ErrUnexpectedInput, quoteList(s.info.InputNames()))
		}
	}
	feeds := make(map[tfgo.Output]any, len(s.inputs))
	var total int64 // the inputs' bytes, against m.maxInput
	var owned []*tfgo.Tensor
	defer func() {
		for _, t := range owned {
			t.Close()
		}
	}()
	for _, k := range s.info.InputNames() {
		v, ok := inputs[k]
		if !ok {
			return nil, fmt.Errorf("signature %q: input %q: %w (%s %s)", sig, k, ErrMissingInput, s.info.Inputs[k].DType, s.info.Inputs[k].Shape)
		}
		if tv, isTensor := v.(*tfgo.Tensor); isTensor && tv.Closed() {
			return nil, fmt.Errorf("signature %q: input %q: %w", sig, k, ErrNilInput)
		}
		t, err := tfgo.NewTensor(v)
		if err != nil {
			return nil, fmt.Errorf("signature %q: input %q: %w", sig, k, err)
		}
		if t != v {
			owned = append(owned, t)
		}
		if total += int64(len(t.Data())); m.maxInput >= 0 && total > m.maxInput {
			return nil, fmt.Errorf("signature %q: input %q: %w: %d bytes so far, the bound is %d (LoadOptions.MaxInputBytes)", sig, k, ErrInputTooLarge, total, m.maxInput)
		}
		if err := checkInput(t, s.info.Inputs[k]); err != nil {
			return nil, fmt.Errorf("signature %q: input %q: %w", sig, k, err)
		}
		feeds[s.inputs[k]] = t
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("signature %q: %w", sig, err)
	}
	opts := m.runOpts
	if dl, ok := ctx.Deadline(); ok {
		ms := time.Until(dl).Milliseconds()
		if ms <= 0 {
			return nil, fmt.Errorf("signature %q: %w", sig, context.DeadlineExceeded)
		}
		if opts == nil {
			opts = &cpb.RunOptions{}
		} else {
			opts = proto.Clone(opts).(*cpb.RunOptions)
		}
		opts.TimeoutInMs = ms
	}
	var outs []*tfgo.Tensor
	if len(s.fetches) > 0 { // else every output is an input: nothing to run
		var err error
		outs, _, err = m.sess.RunWithOptions(opts, feeds, s.fetches)
		if err != nil {
			return nil, fmt.Errorf("running signature %q of %s: %w", sig, m.dir, err)
		}
	}
	res := make(map[string]*tfgo.Tensor, len(s.outputKeys))
	for i, key := range s.outputKeys {
		if j := s.fetchAt[i]; j >= 0 {
			res[key] = outs[j]
			continue
		}
		// An output that is an input's tensor: a copy of what was fed.
		c, err := tfgo.CloneTensor(feeds[s.inputs[s.aliasOf[i]]].(*tfgo.Tensor))
		if err != nil {
			for _, t := range res {
				t.Close()
			}
			for _, t := range outs {
				t.Close()
			}
			return nil, fmt.Errorf("signature %q: output %q (input %q): %w", sig, key, s.aliasOf[i], err)
		}
		res[key] = c
	}
	return res, nil
}

// checkInput checks a tensor against a signature's TensorInfo.
func checkInput(t *tfgo.Tensor, want TensorInfo) error {
	if t.DataType() != want.DType {
		return fmt.Errorf("%w: got %s, the signature takes %s", ErrDType, t.DataType(), want.DType)
	}
	if want.Shape.UnknownRank {
		return nil
	}
	got := t.Shape()
	ok := len(got) == len(want.Shape.Dims)
	for i := 0; ok && i < len(got); i++ {
		ok = want.Shape.Dims[i] < 0 || want.Shape.Dims[i] == got[i]
	}
	if !ok {
		return fmt.Errorf("%w: got %s, the signature takes %s", ErrShape, tfgo.MakeShape(got...), want.Shape)
	}
	return nil
}

func quoteList(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// Close closes the session (after running calls return) and frees the
// graph; later Runs fail. It is safe to call more than once.
func (m *Model) Close() error {
	if m == nil {
		return nil
	}
	m.closeOnce.Do(func() {
		m.closeErr = m.sess.Close()
	})
	return m.closeErr
}
