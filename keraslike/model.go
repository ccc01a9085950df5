package keraslike

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/mixedprecision"
	"github.com/gotf/gotf/tfgo"
)

// InputSpec describes a model's input, without the batch dimension
// (keras.Input(shape, dtype)); -1 is an unknown dimension.
type InputSpec struct {
	Shape []int64
	DType tfgo.DataType // default float32
	Name  string
}

// Model is a Keras model on one TensorFlow graph and session: the
// inference forward pass and, once compiled, the training step (forward,
// loss, gradients, optimizer update) as one graph run per batch.
type Model struct {
	name   string
	input  InputSpec
	layers []Layer
	apply  func(ctx *Context, x tfgo.Output) tfgo.Output
	shapes map[string][]int64 // output shape of each layer, for Summary
	// path prefixes weight paths: a Sequential builds its layers under its
	// name ("sequential/dense/kernel"); a functional model's layers are
	// built where they are called, without it ("dense/kernel").
	path string
	// graph is the connectivity of a model from NewFunctional (or read
	// from a functional config): what SaveKeras writes; nil for a
	// Sequential and for a model from NewModel.
	graph *functional
	// policy is the global dtype policy when the model was made: what a
	// Sequential's config records, and what Compile decides loss scaling by.
	policy mixedprecision.Policy

	scope *tfgo.Scope
	x, y  tfgo.Output // inference graph
	built bool

	train       *trainGraph
	sess        *tfgo.Session
	sessOpts    tfgo.SessionOptions
	xla         bool
	assigners   map[*tfgo.Variable]assigner
	restorers   map[string]*tfgo.StreamingSaver // by key list, see restore
	initialized bool
	stop        bool
	// checkedOps is how many ops the graph had when its layers' devices
	// and its kernels were last checked against the session (session):
	// the checks run again when Compile adds more.
	checkedOps int
}

// NewSequential returns keras.Sequential([keras.Input(...), layers...]).
func NewSequential(name string, input InputSpec, layers ...Layer) *Model {
	m := &Model{name: name, input: input, layers: layers, shapes: map[string][]int64{}, path: name, policy: mixedprecision.GlobalPolicy()}
	m.apply = func(ctx *Context, x tfgo.Output) tfgo.Output {
		for _, l := range layers {
			x = callLayer(ctx, l, x)
			if x.Op != nil {
				m.shapes[l.Name()] = staticShape(x)
			}
		}
		return x
	}
	return m
}

// NewModel returns a functional model: forward says how the layers connect
// (the Go counterpart of keras.Model(inputs, outputs)); layers lists them
// in the order Keras would track them.
func NewModel(name string, input InputSpec, layers []Layer, forward func(ctx *Context, x tfgo.Output) tfgo.Output) *Model {
	return &Model{name: name, input: input, layers: layers, apply: forward, shapes: map[string][]int64{}, policy: mixedprecision.GlobalPolicy()}
}

// Name is the model's name.
func (m *Model) Name() string { return m.name }

// Layers lists the model's layers.
func (m *Model) Layers() []Layer { return m.layers }

// SetSessionOptions sets the options of the session the model creates
// (threads, devices, XLA); call it before the first Fit, Predict or Build.
func (m *Model) SetSessionOptions(o tfgo.SessionOptions) { m.sessOpts = o }

// SetXLA makes XLA compile the model's forward and backward passes
// (jit_compile=True in Keras); call it before Build or Compile.
func (m *Model) SetXLA(on bool) { m.xla = on }

// opsScope is where a pass's ops go: marked for XLA when asked.
func (m *Model) opsScope(s *tfgo.Scope) *tfgo.Scope {
	if m.xla {
		return s.WithXLA()
	}
	return s
}

// Scope is the model's graph scope (built on first use).
func (m *Model) Scope() *tfgo.Scope {
	if m.scope == nil {
		m.scope = tfgo.NewScope()
	}
	return m.scope
}

func (m *Model) inputPlaceholder(s *tfgo.Scope, name string) tfgo.Output {
	return m.placeholder(s, name, -1)
}

// placeholder is the model's input with a batch dimension (-1: any).
func (m *Model) placeholder(s *tfgo.Scope, name string, batch int64) tfgo.Output {
	dt := m.input.DType
	if dt == 0 {
		dt = tfgo.Float
	}
	return tfgo.Placeholder(s.SubScope(name), dt, append([]int64{batch}, m.input.Shape...)...)
}

// usable is the first check of Build, which every use of the model's graph
// or session goes through, and of the methods that touch the model before
// building it: a nil Model, one declared without a constructor, or one
// NewModel was given no forward function, has no graph to build.
func (m *Model) usable() error {
	if m == nil {
		return errors.New("keraslike: nil Model (make one with NewSequential, NewFunctional, NewModel or LoadKerasModel)")
	}
	if m.apply == nil {
		return fmt.Errorf("keraslike: Model %q has no forward pass (make one with NewSequential, NewFunctional, NewModel and a forward function, or LoadKerasModel)", m.name)
	}
	return nil
}

// Build adds the inference graph (creating the weights) if not done yet;
// errors name the failing layer.
func (m *Model) Build() error {
	if err := m.usable(); err != nil {
		return err
	}
	if m.built {
		return m.Scope().Err()
	}
	s := m.Scope()
	m.x = m.inputPlaceholder(s, "input")
	ctx := NewContext(s.SubScope(m.name), false)
	ctx.Scope = m.opsScope(ctx.Scope)
	ctx.Path = m.path
	m.y = m.apply(ctx, m.x)
	m.built = true
	if err := s.Err(); err != nil {
		return fmt.Errorf("building model %q: %w", m.name, err)
	}
	return nil
}

// Weights lists every weight of the model, layer by layer, in Keras order.
func (m *Model) Weights() []*Weight {
	var ws []*Weight
	for _, l := range m.layers {
		ws = append(ws, l.Weights()...)
	}
	return ws
}

// TrainableWeights lists the weights training updates, layer by layer:
// those created trainable, of layers that are not frozen (Keras' model.
// trainable_weights; Base.SetTrainable, a config's trainable: false).
func (m *Model) TrainableWeights() []*Weight {
	var ws []*Weight
	for _, l := range m.layers {
		ws = append(ws, trainableWeights(l)...)
	}
	return ws
}

// CountParams is the number of scalars in the model's weights.
func (m *Model) CountParams() int64 {
	var n int64
	for _, w := range m.Weights() {
		n += weightSize(w)
	}
	return n
}

// weightSize is the number of scalars in w. A variable's shape is known
// and not negative (tfgo.NewVariable checks it); one whose count would
// overflow int64 cannot have been allocated and counts 0.
func weightSize(w *Weight) int64 {
	n, err := dtypes.NumElements(w.Shape())
	if err != nil {
		return 0
	}
	return n
}

// session opens the model's session and initializes the weights once.
func (m *Model) session() (*tfgo.Session, error) {
	if err := m.Build(); err != nil {
		return nil, err
	}
	if m.sess == nil {
		sess, err := tfgo.NewSession(m.Scope(), m.sessOpts)
		if err != nil {
			return nil, err
		}
		m.sess = sess
	}
	if n := m.Scope().Graph().NumOperations(); n != m.checkedOps {
		devs, err := m.sess.ListDevices()
		if err != nil {
			return nil, err
		}
		if err := m.checkDevices(devs); err != nil {
			return nil, err
		}
		if err := m.checkKernels(devs); err != nil {
			return nil, err
		}
		m.checkedOps = n
	}
	if !m.initialized {
		init := tfgo.GlobalVariablesInitializer(m.Scope())
		if err := m.Scope().Err(); err != nil {
			return nil, err
		}
		if _, err := m.sess.Run(nil, nil, init); err != nil {
			return nil, fmt.Errorf("initializing the weights of %q: %w", m.name, err)
		}
		m.initialized = true
	}
	return m.sess, nil
}

// checkDevices refuses, before the graph first runs, a layer placed on a
// device the session does not have (Base.SetDevice): the runtime's error
// would name an op, not the layer, and only at the first run.
func (m *Model) checkDevices(devs []tfgo.Device) error {
	for _, p := range m.placedLayers() {
		want, err := parseDevice(p.device)
		if err != nil {
			return fmt.Errorf("model %q: layer %q: %w", m.name, p.layer, err)
		}
		found := false
		for _, d := range devs {
			have, err := parseDevice(d.Name)
			found = err == nil && want.matches(have)
			if found {
				break
			}
		}
		if !found {
			names := make([]string, len(devs))
			for i, d := range devs {
				names[i] = d.Name
			}
			return fmt.Errorf("model %q: layer %q is placed on device %q, which the session does not have (its devices: %s)", m.name, p.layer, p.device, strings.Join(names, ", "))
		}
	}
	return nil
}

// placement is a layer given a device, by its path in the model
// ("block_1", "block_1/multi_head_attention").
type placement struct{ layer, device string }

// placedLayers lists the model's layers and sublayers that have a device
// of their own, in the model's order.
func (m *Model) placedLayers() []placement {
	var ps []placement
	var walk func(l Layer, path string)
	walk = func(l Layer, path string) {
		if d := deviceOf(l); d != "" {
			ps = append(ps, placement{path, d})
		}
		if b, ok := l.(interface{ base() *Base }); ok {
			for _, sub := range b.base().sublayers {
				walk(sub, path+"/"+sub.Name())
			}
		}
	}
	for _, l := range m.layers {
		walk(l, l.Name())
	}
	return ps
}

// deviceSpec is a parsed device name; "" fields match any value, as in
// TensorFlow's DeviceNameUtils (a "/device:GPU:1" placement runs on the
// local job's GPU 1).
type deviceSpec struct{ job, replica, task, typ, id string }

// parseDevice parses what TensorFlow accepts as a device:
// "/job:worker/replica:0/task:1/device:GPU:0", "/device:CPU:1", the
// legacy "/cpu:0" and "/GPU:1", any part left out.
func parseDevice(name string) (deviceSpec, error) {
	var d deviceSpec
	bad := func() (deviceSpec, error) {
		return deviceSpec{}, fmt.Errorf("device %q is not a TensorFlow device name (like /device:CPU:0 or /job:worker/task:1/device:GPU:0)", name)
	}
	parts := strings.Split(strings.TrimPrefix(name, "/"), "/")
	if name == "" {
		return bad()
	}
	for _, p := range parts {
		f := strings.Split(p, ":")
		isNum := func(s string) bool {
			_, err := strconv.ParseUint(s, 10, 31)
			return err == nil || s == "*"
		}
		switch {
		case len(f) == 2 && f[0] == "job" && f[1] != "":
			d.job = f[1]
		case len(f) == 2 && f[0] == "replica" && isNum(f[1]):
			d.replica = f[1]
		case len(f) == 2 && f[0] == "task" && isNum(f[1]):
			d.task = f[1]
		case f[0] == "device" && (len(f) == 2 || len(f) == 3 && isNum(f[2])) && f[1] != "":
			d.typ = strings.ToUpper(f[1])
			if len(f) == 3 {
				d.id = f[2]
			}
		case len(f) == 2 && deviceType.MatchString(f[0]) && isNum(f[1]):
			d.typ, d.id = strings.ToUpper(f[0]), f[1]
		default:
			return bad()
		}
	}
	for _, f := range []*string{&d.replica, &d.task, &d.typ, &d.id} {
		if *f == "*" {
			*f = ""
		}
	}
	return d, nil
}

// deviceType is how TensorFlow spells a device type ("CPU", "XLA_CPU").
var deviceType = regexp.MustCompile(`^[A-Za-z][_A-Za-z0-9]*$`)

// matches reports whether the full device name have satisfies d.
func (d deviceSpec) matches(have deviceSpec) bool {
	eq := func(want, got string) bool { return want == "" || want == got }
	return eq(d.job, have.job) && eq(d.replica, have.replica) && eq(d.task, have.task) && eq(d.typ, have.typ) && eq(d.id, have.id)
}

// checkKernels refuses, before the graph first runs, an op that no kernel
// of the session's devices can run with its dtypes (a float16 policy on a
// layer whose op has no float16 CPU kernel): the runtime would fail every
// run of the graph with a message listing every kernel of the op. XLA
// compiles its clusters without TensorFlow's kernels, so it is not checked.
func (m *Model) checkKernels(devs []tfgo.Device) error {
	if m.xla || m.sessOpts.XLA {
		return nil
	}
	var types []string
	for _, d := range devs {
		if !slices.Contains(types, d.Type) {
			types = append(types, d.Type)
		}
	}
	if err := tfgo.CheckKernels(m.Scope().Graph(), types...); err != nil {
		return fmt.Errorf("model %q (dtype policy %s): %w", m.name, m.policy.Name(), err)
	}
	return nil
}

// Session is the model's session (opened and initialized on first use).
func (m *Model) Session() (*tfgo.Session, error) { return m.session() }

// Close frees the model's session. The model stays usable: its next
// session starts again from the initializers (the weights' values are
// those of a fresh model).
func (m *Model) Close() error {
	if m == nil {
		return nil
	}
	m.initialized = false
	if m.sess != nil {
		err := m.sess.Close()
		m.sess = nil
		return err
	}
	return nil
}

// GetWeights returns the current values of every weight (Keras order).
func (m *Model) GetWeights() ([]*tfgo.Tensor, error) {
	sess, err := m.session()
	if err != nil {
		return nil, err
	}
	ws := m.Weights()
	if len(ws) == 0 { // a model of ops only (a run needs a fetch)
		return nil, nil
	}
	outs := make([]tfgo.Output, len(ws))
	for i, w := range ws {
		outs[i] = w.Value()
	}
	return sess.Run(nil, outs)
}

// SetWeights assigns values (Keras order, as GetWeights returns them); a
// value of the wrong shape or dtype is an error naming the weight, and no
// weight changes.
func (m *Model) SetWeights(values []*tfgo.Tensor) error {
	sess, err := m.session()
	if err != nil {
		return err
	}
	ws := m.Weights()
	if len(values) != len(ws) {
		return fmt.Errorf("model %q has %d weights, got %d values", m.name, len(ws), len(values))
	}
	for i, w := range ws {
		if values[i].DataType() != w.DType() || !sameDims(values[i].Shape(), w.Shape()) {
			return fmt.Errorf("weight %s is %s%v, got %s%v", w.Path, w.DType(), w.Shape(), values[i].DataType(), values[i].Shape())
		}
	}
	return m.assign(sess, ws, values)
}

// assigner feeds a new value to one variable.
type assigner struct {
	value tfgo.Output
	op    *tfgo.Operation
}

// assign sets weights through placeholders: one graph addition per
// variable, made on first use and reused by later calls.
func (m *Model) assign(sess *tfgo.Session, ws []*Weight, values []*tfgo.Tensor) error {
	if len(ws) == 0 { // a model of ops only: nothing to run (a run needs a target)
		return nil
	}
	if m.assigners == nil {
		m.assigners = map[*tfgo.Variable]assigner{}
	}
	s := m.Scope().SubScope("set_weights")
	feeds := map[tfgo.Output]any{}
	var ops []*tfgo.Operation
	for i, w := range ws {
		a, ok := m.assigners[w.Variable]
		if !ok {
			a.value = tfgo.Placeholder(s, w.DType(), w.Shape()...)
			a.op = w.Assign(s, a.value)
			if a.op != nil {
				m.assigners[w.Variable] = a
			}
		}
		ops = append(ops, a.op)
		feeds[a.value] = values[i]
	}
	if err := m.Scope().Err(); err != nil {
		return err
	}
	_, err := sess.Run(feeds, nil, ops...)
	return err
}

func sameDims(a, b []int64) bool { return slices.Equal(a, b) }

// Predict runs the inference graph on a batch.
func (m *Model) Predict(x any) (*tfgo.Tensor, error) {
	sess, err := m.session()
	if err != nil {
		return nil, err
	}
	xt, release, err := m.batchTensor("x", x, m.x)
	if err != nil {
		return nil, err
	}
	defer release()
	out, err := sess.Run(map[tfgo.Output]any{m.x: xt}, []tfgo.Output{m.y})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// batchTensor converts a batch to a tensor (the one conversion before it
// is fed) and checks it against a placeholder before any run. release
// frees it unless the caller passed a tensor of its own.
func (m *Model) batchTensor(what string, v any, p tfgo.Output) (t *tfgo.Tensor, release func(), err error) {
	t, err = tfgo.NewTensor(v)
	if err != nil {
		return nil, nil, fmt.Errorf("model %q: %s: %w", m.name, what, err)
	}
	release = func() {}
	if _, given := v.(*tfgo.Tensor); !given {
		release = func() { t.Close() }
	}
	want, _ := p.Shape()
	bad := t.DataType() != p.DataType()
	if bad {
		release()
		return nil, nil, fmt.Errorf("model %q: %s is %s, the input wants %s", m.name, what, t.DataType(), p.DataType())
	}
	got := t.Shape()
	if want.Rank() >= 0 {
		ok := len(got) == want.Rank()
		for i := 0; ok && i < len(got); i++ {
			ok = want.Dims[i] < 0 || got[i] == want.Dims[i]
		}
		if !ok {
			release()
			return nil, nil, fmt.Errorf("model %q: %s has shape %v, the input wants %v", m.name, what, got, want)
		}
	}
	return t, release, nil
}

// Summary is Keras' model.summary() table: layers, output shapes, parameter counts.
func (m *Model) Summary() string {
	if err := m.Build(); err != nil {
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Model: %q\n", m.name)
	// The Device column is there only when the model is placed
	// (Base.SetDevice), so that other summaries keep Keras' columns.
	devices := map[string]string{}
	width := 0
	for _, l := range m.layers {
		if d := layerDevices(l); d != "" {
			devices[l.Name()] = d
			width = max(width, len(d))
		}
	}
	devCol := func(string) string { return "" }
	header := ""
	if width > 0 {
		width = max(width, len("Device"))
		devCol = func(d string) string { return fmt.Sprintf("  %-*s", width, d) }
		header = devCol("Device")
	}
	line := strings.Repeat("─", 72+len(header))
	fmt.Fprintf(&b, "%s\n%s\n%s\n", line, strings.TrimRight(fmt.Sprintf("%-36s%-22s%14s%s", "Layer (type)", "Output Shape", "Param #", header), " "), line)
	var total, trainable int64
	for _, l := range m.layers {
		var n int64
		for _, w := range l.Weights() {
			n += weightSize(w)
		}
		for _, w := range trainableWeights(l) {
			trainable += weightSize(w)
		}
		total += n
		shape := ""
		if dims, ok := m.shapes[l.Name()]; ok {
			shape = tfgo.Shape{Dims: dims}.String()
		}
		row := fmt.Sprintf("%-36s%-22s%14d%s", fmt.Sprintf("%s (%s)", l.Name(), l.ClassName()), shape, n, devCol(devices[l.Name()]))
		fmt.Fprintf(&b, "%s\n", strings.TrimRight(row, " "))
	}
	fmt.Fprintf(&b, "%s\n", line)
	fmt.Fprintf(&b, " Total params: %d\n Trainable params: %d\n Non-trainable params: %d\n", total, trainable, total-trainable)
	b.WriteString(m.policySummary())
	return b.String()
}

// layerDevices is the Summary's Device entry of a layer: its own device;
// else the devices of its sublayers that have one, "(a, b)"; else "".
func layerDevices(l Layer) string {
	if d := deviceOf(l); d != "" {
		return d
	}
	var ds []string
	var walk func(l Layer)
	walk = func(l Layer) {
		b, ok := l.(interface{ base() *Base })
		if !ok {
			return
		}
		for _, sub := range b.base().sublayers {
			if d := deviceOf(sub); d != "" {
				if !slices.Contains(ds, d) {
					ds = append(ds, d)
				}
			} else {
				walk(sub)
			}
		}
	}
	walk(l)
	if len(ds) == 0 {
		return ""
	}
	return "(" + strings.Join(ds, ", ") + ")"
}

// policySummary is the summary's line on dtype policies: the model's, and
// the layers that differ from it (a float32 softmax on a mixed model); it
// is empty for an all-float32 model.
func (m *Model) policySummary() string {
	byPolicy := map[string][]string{}
	mixed := m.policy.Name() != "float32"
	for _, l := range m.layers {
		p, ok := l.(interface{ DTypePolicy() mixedprecision.Policy })
		if !ok {
			continue
		}
		if n := p.DTypePolicy().Name(); n != m.policy.Name() {
			byPolicy[n] = append(byPolicy[n], l.Name())
			mixed = mixed || n != "float32"
		}
	}
	if !mixed {
		return ""
	}
	line := " Dtype policy: " + m.policy.Name()
	var others []string
	for n, ls := range byPolicy {
		others = append(others, fmt.Sprintf("%s: %s", n, strings.Join(ls, ", ")))
	}
	if len(others) > 0 {
		slices.Sort(others)
		line += " (" + strings.Join(others, "; ") + ")"
	}
	return line + "\n"
}

// DTypePolicy is the global dtype policy when the model was made (Keras'
// model.dtype_policy); each layer has its own (Base.DTypePolicy).
func (m *Model) DTypePolicy() mixedprecision.Policy {
	if m == nil {
		return mixedprecision.Policy{}
	}
	return m.policy
}
