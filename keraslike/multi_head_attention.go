package keraslike

import (
	"fmt"
	"math"
	"strings"

	"github.com/gotf/gotf/tfgo"
)

// MultiHeadAttentionOptions are keras.layers.MultiHeadAttention's arguments
// beyond num_heads and key_dim.
type MultiHeadAttentionOptions struct {
	Name string
	// ValueDim is the size of each value head; 0 means key_dim (Keras' default).
	ValueDim int
	// Dropout is the dropout rate on the attention probabilities, applied
	// in training only.
	Dropout float64
	// NoBias drops the projections' biases (use_bias=False).
	NoBias bool
	// OutputShape is the output's last dimension (Keras' output_shape as a
	// single int); 0 projects back to the query's last dimension.
	OutputShape int
	// KernelInitializer initializes the four projection kernels (Keras
	// gives each projection a copy of the same initializer); default
	// glorot_uniform with a seed derived from the layer's name and the
	// projection's, so the four differ.
	KernelInitializer tfgo.Initializer
	BiasInitializer   tfgo.Initializer // default zeros
	// Seed seeds the attention dropout (Keras' seed); nil derives one from
	// the layer's name.
	Seed *int64
}

// MultiHeadAttention is keras.layers.MultiHeadAttention(num_heads, key_dim)
// (Vaswani et al., 2017, "Attention Is All You Need") over sequences:
// query [B, T, dq], value [B, S, dv] and key [B, S, dk] (key defaults to
// value) are projected to heads,
//
//	Q = query·Wq + bq   [B, T, heads, key_dim]
//	K = key·Wk + bk     [B, S, heads, key_dim]
//	V = value·Wv + bv   [B, S, heads, value_dim]
//
// then per head A = softmax(Q·Kᵀ/sqrt(key_dim), masked) [B, heads, T, S],
// O = A·V, and the heads are projected back: out = O·Wo + bo [B, T, dq]
// (or [B, T, output_shape]).
//
// Weights, in Keras' order and with Keras' paths and shapes (Keras builds
// the projections as EinsumDense sublayers named query, key, value and
// attention_output): "<name>/query/kernel" [dq, heads, key_dim],
// "<name>/query/bias" [heads, key_dim], the same for key (dk) and value
// (dv, value_dim), "<name>/attention_output/kernel" [heads, value_dim,
// out] and "<name>/attention_output/bias" [out]. The einsums are computed
// as reshapes, MatMul and BatchMatMulV2, which have gradients in tfgo.
//
// Masking follows Keras 3.15 exactly, including its two code paths. A mask
// (bool, or numeric meaning non-zero) of shape [B, T, S], [T, S] or
// [B, heads, T, S] (broadcastable) says which keys each query may attend
// to; causal adds Keras' lower-triangular mask (key position <= query
// position). With dropout 0, Keras calls ops.dot_product_attention: the
// logits Q·Kᵀ are scaled, masked logits are replaced by -0.7·(the dtype's
// max) and a query whose keys are all masked attends uniformly to all of
// them. With dropout > 0 Keras scales Q before the product and uses its
// Softmax layer (tfgo.MaskedSoftmax): masked logits become -1e9 and a
// fully masked query gets all-zero probabilities; the probabilities then
// go through a Dropout sublayer in training. Wherever some key is visible
// both paths agree. float16/bfloat16 logits are normalized in float32 on
// the first path, as Keras does.
//
// Only rank-3 inputs (attention_axes None over [B, T, features]) are
// supported; use_gate, sliding_window and return_attention_scores are not.
type MultiHeadAttention struct {
	Base
	NumHeads, KeyDim, ValueDim int
	opts                       MultiHeadAttentionOptions

	// seedPrefix names the default initializer and dropout seeds; a
	// TransformerBlock sets it to its own path so that blocks differ.
	seedPrefix string

	// The sublayers, as Keras names its attributes (made on the first call).
	query, key, value, output *einsumDense
	dropout                   *Dropout
	softmax                   *softmaxLayer
}

// NewMultiHeadAttention returns keras.layers.MultiHeadAttention(num_heads, key_dim, ...).
func NewMultiHeadAttention(numHeads, keyDim int, opts MultiHeadAttentionOptions) *MultiHeadAttention {
	m := &MultiHeadAttention{Base: NewBase("MultiHeadAttention", opts.Name), NumHeads: numHeads, KeyDim: keyDim, ValueDim: opts.ValueDim, opts: opts}
	if m.ValueDim == 0 {
		m.ValueDim = keyDim
	}
	m.seedPrefix = m.name
	return m
}

// Call is attention without a mask: Call(ctx, x) is self-attention
// (query = value = key = x), Call(ctx, query, value) uses value as the key
// too, Call(ctx, query, value, key) takes all three.
func (m *MultiHeadAttention) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	switch len(inputs) {
	case 1:
		return m.CallWithMask(ctx, inputs[0], inputs[0], inputs[0], tfgo.Output{}, false)
	case 2:
		return m.CallWithMask(ctx, inputs[0], inputs[1], inputs[1], tfgo.Output{}, false)
	case 3:
		return m.CallWithMask(ctx, inputs[0], inputs[1], inputs[2], tfgo.Output{}, false)
	}
	ctx.Fail(m, "takes 1 to 3 inputs (query, value, key), got %d", len(inputs))
	return tfgo.Output{}
}

// CallWithMask is Keras' call(query, value, key=key,
// attention_mask=mask, use_causal_mask=causal). A zero key is value; a
// zero mask is no mask.
func (m *MultiHeadAttention) CallWithMask(ctx *Context, query, value, key, mask tfgo.Output, causal bool) tfgo.Output {
	if key.Op == nil {
		key = value
	}
	if !ctx.usable() || query.Op == nil || value.Op == nil {
		return tfgo.Output{}
	}
	if m.NumHeads <= 0 || m.KeyDim <= 0 || m.ValueDim <= 0 || m.opts.OutputShape < 0 {
		ctx.Fail(m, "num_heads, key_dim, value_dim and output_shape must be positive, got %d, %d, %d and %d", m.NumHeads, m.KeyDim, m.ValueDim, m.opts.OutputShape)
		return tfgo.Output{}
	}
	if !(m.opts.Dropout >= 0 && m.opts.Dropout < 1) {
		ctx.Fail(m, "dropout must be in [0, 1), got %g", m.opts.Dropout)
		return tfgo.Output{}
	}
	query, value, key = ctx.autocast(m, query), ctx.autocast(m, value), ctx.autocast(m, key)
	dt := query.DataType()
	shapes := [3][]int64{}
	for i, x := range []tfgo.Output{query, value, key} {
		what := [3]string{"query", "value", "key"}[i]
		if !isFloat(x.DataType()) || x.DataType() != dt {
			ctx.Fail(m, "needs floating-point %s of the query's dtype %s, got %s", what, dt, x.DataType())
			return tfgo.Output{}
		}
		sh := staticShape(x)
		if len(sh) != 3 || sh[2] < 0 {
			ctx.Fail(m, "needs %s of rank 3 [batch, length, features] with known features, got shape %v", what, tfgo.Shape{Dims: sh, UnknownRank: sh == nil})
			return tfgo.Output{}
		}
		shapes[i] = sh
	}
	qs, vs, ks := shapes[0], shapes[1], shapes[2]
	if vs[1] >= 0 && ks[1] >= 0 && vs[1] != ks[1] {
		ctx.Fail(m, "value and key must have the same length, got %d and %d", vs[1], ks[1])
		return tfgo.Output{}
	}
	heads, kd, vd := int64(m.NumHeads), int64(m.KeyDim), int64(m.ValueDim)
	if mask.Op != nil {
		ms := staticShape(mask)
		if ms == nil || len(ms) < 2 || len(ms) > 4 {
			ctx.Fail(m, "needs an attention mask of rank 2 to 4 ([T, S], [B, T, S] or [B, heads, T, S]), got shape %v", tfgo.Shape{Dims: ms, UnknownRank: ms == nil})
			return tfgo.Output{}
		}
		// Keras inserts the missing axes before [T, S].
		full := ms
		switch len(ms) {
		case 2:
			full = []int64{1, 1, ms[0], ms[1]}
		case 3:
			full = []int64{ms[0], 1, ms[1], ms[2]}
		}
		want := []int64{qs[0], heads, qs[1], vs[1]}
		for i := range full {
			if full[i] >= 0 && want[i] >= 0 && full[i] != 1 && full[i] != want[i] {
				ctx.Fail(m, "attention mask of shape %v does not broadcast to the scores [batch, heads, T, S] = %v", ms, want)
				return tfgo.Output{}
			}
		}
	}

	if m.Build(ctx) {
		out := int64(m.opts.OutputShape)
		if out == 0 {
			out = qs[2]
		}
		sctx := m.SublayerContext(ctx)
		m.query = m.addProjection(sctx, "query", "abc,cde->abde", []int64{qs[2], heads, kd}, 2)
		m.key = m.addProjection(sctx, "key", "abc,cde->abde", []int64{ks[2], heads, kd}, 2)
		m.value = m.addProjection(sctx, "value", "abc,cde->abde", []int64{vs[2], heads, vd}, 2)
		m.output = m.addProjection(sctx, "attention_output", "abcd,cde->abe", []int64{heads, vd, out}, 1)
		// Keras makes its dropout and softmax sublayers whatever the rate;
		// they are used (and built) with dropout > 0 only.
		seed := seedFor(m.seedPrefix + "/dropout")
		if m.opts.Seed != nil {
			seed = *m.opts.Seed
		}
		m.dropout = NewDropout(m.opts.Dropout, DropoutOptions{Name: "dropout", Seed: &seed})
		m.softmax = &softmaxLayer{Base: NewBase("Softmax", "softmax")}
		m.Track(m.dropout)
		m.Track(m.softmax)
		// Keras makes every sublayer with dtype=self.dtype_policy, in the
		// RematScope the attention was made in.
		m.SetDTypePolicy(m.policy)
		for _, p := range []*Base{&m.query.Base, &m.key.Base, &m.value.Base, &m.output.Base, &m.dropout.Base, &m.softmax.Base} {
			p.remat = m.remat
		}
	}
	for i, p := range []*einsumDense{m.query, m.value, m.key} {
		if in := p.kernel.Shape()[0]; in != shapes[i][2] {
			ctx.Fail(m, "was built for %s with %d features, got %d", [3]string{"query", "value", "key"}[i], in, shapes[i][2])
			return tfgo.Output{}
		}
	}

	s := ctx.Scope.SubScope(m.name)
	pctx := m.SublayerContext(ctx)
	pctx.Scope = s
	q := m.splitHeads(s, callLayer(pctx, m.query, query)) // [B, heads, T, key_dim]
	k := m.splitHeads(s, callLayer(pctx, m.key, key))     // [B, heads, S, key_dim]
	v := m.splitHeads(s, callLayer(pctx, m.value, value)) // [B, heads, S, value_dim]

	as := s.SubScope("attention")
	if mask.Op != nil {
		if mask.DataType() != tfgo.Bool {
			mask = tfgo.Cast(as, mask, tfgo.Bool)
		}
		for r := len(staticShape(mask)); r < 4; r++ {
			mask = tfgo.ExpandDims(as, mask, tfgo.Const(as, int32(-3)))
		}
	}
	if causal {
		c := causalMaskTS(as, query, value)
		if mask.Op == nil {
			mask = c
		} else {
			mask = tfgo.LogicalAnd(as, mask, c)
		}
	}
	scale := 1 / math.Sqrt(float64(m.KeyDim))
	var probs tfgo.Output
	if m.opts.Dropout == 0 {
		// ops.dot_product_attention (_dot_product_attention_xla).
		logits := tfgo.BatchMatMulV2(as, q, k, tfgo.BatchMatMulV2AdjY(true))
		ldt, ss := dt, as
		if isHalf(dt) {
			ldt = tfgo.Float
			if ctx.Training {
				// The float32 logits, scores and probabilities would be kept
				// for the backward pass at twice the size of the half ones:
				// the backward pass recomputes them from the logits instead.
				ss = as.WithRecompute()
			}
			logits = tfgo.Cast(ss, logits, ldt)
		}
		logits = tfgo.Mul(ss, logits, scalarAs(ss, scale, ldt))
		if mask.Op != nil {
			large := 3.38953e38
			if ldt == tfgo.Half {
				large = 65500.0
			}
			logits = tfgo.SelectV2(ss, mask, logits, scalarAs(ss, large*-0.7, ldt))
		}
		probs = castTo(ss, tfgo.Softmax(ss, logits), dt)
	} else {
		q = tfgo.Mul(as, q, scalarAs(as, scale, dt))
		scores := tfgo.BatchMatMulV2(as, q, k, tfgo.BatchMatMulV2AdjY(true))
		sctx := m.SublayerContext(ctx)
		sctx.Scope = as
		probs = callLayer(sctx, m.softmax, scores, mask)
		probs = callLayer(sctx, m.dropout, probs)
	}
	o := tfgo.BatchMatMulV2(as, probs, v) // [B, heads, T, value_dim]
	o = tfgo.Transpose(as, o, tfgo.Const(as, []int32{0, 2, 1, 3}))
	return callLayer(pctx, m.output, o)
}

// addProjection makes and builds one of the EinsumDense sublayers, named
// name, with a kernel of kernelShape whose last outDims dimensions are the
// output's (and the bias').
func (m *MultiHeadAttention) addProjection(ctx *Context, name, equation string, kernelShape []int64, outDims int) *einsumDense {
	kinit, binit := m.opts.KernelInitializer, m.opts.BiasInitializer
	if kinit == nil {
		kinit = tfgo.GlorotUniform(seedFor(m.seedPrefix + "/" + name + "/kernel"))
	}
	if binit == nil {
		binit = tfgo.Zeros()
	}
	p := &einsumDense{Base: NewBase("EinsumDense", name), equation: equation, outDims: outDims}
	// Its weights take the variable dtype of the attention's policy (a
	// float16 or bfloat16 policy's weights are half too): set it before
	// they are made.
	p.SetDTypePolicy(m.policy)
	p.Build(ctx)
	p.kernel = p.AddWeight("kernel", tfgo.Float, kernelShape, kinit, true)
	if !m.opts.NoBias {
		p.bias = p.AddWeight("bias", tfgo.Float, kernelShape[len(kernelShape)-outDims:], binit, true)
	}
	m.Track(p)
	return p
}

// splitHeads turns a projection [B, L, heads, dim] into [B, heads, L, dim].
func (m *MultiHeadAttention) splitHeads(s *tfgo.Scope, y tfgo.Output) tfgo.Output {
	if y.Op == nil {
		return y
	}
	return tfgo.Transpose(s, y, tfgo.Const(s, []int32{0, 2, 1, 3}))
}

// Config is MultiHeadAttention's get_config.
func (m *MultiHeadAttention) Config() map[string]any {
	c := m.BaseConfig()
	c["num_heads"] = m.NumHeads
	c["key_dim"] = m.KeyDim
	c["value_dim"] = m.ValueDim
	c["dropout"] = m.opts.Dropout
	c["use_bias"] = !m.opts.NoBias
	c["use_gate"] = false
	if m.opts.OutputShape > 0 {
		c["output_shape"] = []int{m.opts.OutputShape}
	} else {
		c["output_shape"] = nil
	}
	// Keras resolves attention_axes=None to the sequence axis when it builds.
	if m.built {
		c["attention_axes"] = []int{1}
	} else {
		c["attention_axes"] = nil
	}
	c["sliding_window"] = nil
	if m.opts.Seed != nil {
		c["seed"] = *m.opts.Seed
	} else {
		c["seed"] = nil
	}
	return c
}

// KerasSublayers is MultiHeadAttention's attributes in Keras' saving walk:
// the EinsumDense projections query_dense, key_dense, value_dense and
// output_dense (their variables named query, key, value and
// attention_output), and _dropout_layer and _softmax, which have no
// variables.
func (m *MultiHeadAttention) KerasSublayers() map[string]Layer {
	if m.query == nil { // not built, or Build called by hand: nothing made yet
		return nil
	}
	return map[string]Layer{
		"query_dense": m.query, "key_dense": m.key, "value_dense": m.value, "output_dense": m.output,
		"_dropout_layer": m.dropout, "_softmax": m.softmax,
	}
}

// CallKeras is MultiHeadAttention's Keras call: (query, value, key=None,
// attention_mask=None, use_causal_mask=False), positionally or by keyword;
// return_attention_scores=False is accepted.
func (m *MultiHeadAttention) CallKeras(ctx *Context, args []tfgo.Output, kw map[string]any) tfgo.Output {
	names := []string{"query", "value", "key"}
	ins := make([]tfgo.Output, 3)
	if len(args) > 3 {
		ctx.Fail(m, "takes at most 3 positional inputs (query, value, key), got %d", len(args))
		return tfgo.Output{}
	}
	copy(ins, args)
	for i, n := range names {
		if v, ok := kw[n]; ok {
			t, isT := v.(tfgo.Output)
			if !isT || ins[i].Op != nil {
				ctx.Fail(m, "argument %s given twice or not a tensor", n)
				return tfgo.Output{}
			}
			ins[i] = t
			delete(kw, n)
		}
	}
	if ins[0].Op == nil || ins[1].Op == nil {
		ctx.Fail(m, "needs query and value")
		return tfgo.Output{}
	}
	var mask tfgo.Output
	if v, ok := kw["attention_mask"]; ok {
		t, isT := v.(tfgo.Output)
		if !isT {
			ctx.Fail(m, "attention_mask is not a tensor")
			return tfgo.Output{}
		}
		mask = t
		delete(kw, "attention_mask")
	}
	causal := false
	if v, ok := kw["use_causal_mask"]; ok {
		b, isB := v.(bool)
		if !isB {
			ctx.Fail(m, "use_causal_mask=%s is not a bool", excerpt(v))
			return tfgo.Output{}
		}
		causal = b
		delete(kw, "use_causal_mask")
	}
	if v, ok := kw["return_attention_scores"]; ok && v == false {
		delete(kw, "return_attention_scores")
	}
	if !checkKwargs(ctx, m, kw) {
		return tfgo.Output{}
	}
	return m.CallWithMask(ctx, ins[0], ins[1], ins[2], mask, causal)
}

func init() { registerBuiltin("MultiHeadAttention", multiHeadAttentionFromConfig) }

// multiHeadAttentionFromConfig is MultiHeadAttention.from_config.
// Regularizers and constraints are not implemented: a non-null one is
// refused.
func multiHeadAttentionFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	heads := r.required("num_heads", 1, maxDim)
	keyDim := r.required("key_dim", 1, maxDim)
	valueDim := r.int("value_dim", keyDim, 1, maxDim)
	// The projections' widths: heads·key_dim and heads·value_dim.
	if heads*keyDim > maxDim || heads*valueDim > maxDim {
		r.fail("num_heads·key_dim (%d·%d) or num_heads·value_dim (%d·%d) is more than %d", heads, keyDim, heads, valueDim, maxDim)
	}
	dropout := r.float("dropout", 0, 0, 0.999999)
	useBias := r.bool("use_bias", true)
	out := 0
	switch o := r.raw("output_shape").(type) {
	case nil:
	case float64:
		out = r.intValue("output_shape", o, 1, maxDim)
	case []any:
		if len(o) != 1 {
			r.fail("output_shape=%s: only a single dimension is supported", excerpt(o))
		} else {
			out = r.intValue("output_shape", o[0], 1, maxDim)
		}
	default:
		r.fail("output_shape: unreadable %s", excerpt(o))
	}
	switch a := r.raw("attention_axes").(type) {
	case nil:
	case float64:
		if a != 1 && a != -2 {
			r.fail("attention_axes=%s is not supported (only the sequence axis of [batch, length, features])", excerpt(a))
		}
	case []any:
		if len(a) != 1 || (fmt.Sprint(a[0]) != "1" && fmt.Sprint(a[0]) != "-2") {
			r.fail("attention_axes=%s is not supported (only the sequence axis of [batch, length, features])", excerpt(a))
		}
	default:
		r.fail("attention_axes: unreadable %s", excerpt(a))
	}
	r.want("use_gate", false)
	r.want("sliding_window")
	r.want("flash_attention", false)
	r.initializers("kernel_initializer", "bias_initializer")
	// Keras 2 recorded the shapes the layer was built for; the Go layer is
	// built for (and checks) the inputs the model gives it.
	r.raw("query_shape")
	r.raw("key_shape")
	r.raw("value_shape")
	seed := r.optSeed("seed")
	return r.done(NewMultiHeadAttention(heads, keyDim, MultiHeadAttentionOptions{Name: name, ValueDim: valueDim, Dropout: dropout, NoBias: !useBias, OutputShape: out, Seed: seed}))
}

// einsumDense is one of MultiHeadAttention's projections, Keras'
// EinsumDense sublayers (equation "abc,cde->abde" for query, key and
// value, "abcd,cde->abe" for the output): it contracts the last dimensions
// of its input with the first of its kernel (all but the last outDims),
// adds the bias (over the output dimensions) and keeps the input's leading
// dimensions. MultiHeadAttention builds it (its weights "kernel" and
// "bias" under "<attention>/<name>") and calls it.
type einsumDense struct {
	Base
	equation     string
	outDims      int
	kernel, bias *Weight
	// kernelScale is set once the projection is int8-quantized (Keras'
	// EinsumDense._int8_build): kernel is then int8.
	kernelScale *Weight
	weightOnly  bool
}

// Call projects x, whose last dimensions must be the kernel's first ones.
func (e *einsumDense) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	x, ok := ctx.OneInput(e, inputs)
	if !ok {
		return tfgo.Output{}
	}
	if e.kernel == nil {
		ctx.Fail(e, "is built by its MultiHeadAttention")
		return tfgo.Output{}
	}
	ks := e.kernel.Shape()
	k := len(ks) - e.outDims // contracted dimensions
	sh := staticShape(x)
	fits := len(sh) > k
	for i := 0; fits && i < k; i++ {
		d := sh[len(sh)-k+i]
		fits = d < 0 || d == ks[i]
	}
	if !fits {
		ctx.Fail(e, "needs inputs of known rank > %d ending in %v, got shape %v", k, ks[:k], tfgo.Shape{Dims: sh, UnknownRank: sh == nil})
		return tfgo.Output{}
	}
	in, out := int64(1), int64(1)
	for _, d := range ks[:k] {
		in *= d
	}
	for _, d := range ks[k:] {
		out *= d
	}
	s := ctx.Scope.SubScope(e.name)
	dt := x.DataType()
	x2 := tfgo.Reshape(s, x, tfgo.Const(s, []int32{-1, int32(in)}))
	var y tfgo.Output
	if e.kernelScale != nil {
		// Keras quantizes the inputs over the contracted axes and the
		// kernel over its contracted axes: on the flattened [rows, in] and
		// [in, out] matrices, the rows and the columns (see int8MatMul).
		y = int8MatMul(ctx, s, x2, e.kernel, e.kernelScale, out, e.weightOnly)
	} else {
		kernel := tfgo.Reshape(s, ctx.Read(s, e.kernel, dt), tfgo.Const(s, []int32{int32(in), int32(out)}))
		y = tfgo.MatMul(s, x2, kernel)
	}
	if e.bias != nil {
		bias := ctx.Read(s, e.bias, dt)
		if e.outDims > 1 {
			bias = tfgo.Reshape(s, bias, tfgo.Const(s, []int32{int32(out)}))
		}
		y = tfgo.BiasAdd(s, y, bias)
	}
	return reshapeFused(ctx, s, y, leadingDimsWith(s, x, len(sh)-k, ks[k:]...))
}

// Config is EinsumDense's get_config.
func (e *einsumDense) Config() map[string]any {
	c := e.BaseConfig()
	c["equation"] = e.equation
	var out []any
	if e.kernel != nil {
		out = append(out, nil)
		for _, d := range e.kernel.Shape()[len(e.kernel.Shape())-e.outDims:] {
			out = append(out, d)
		}
	}
	c["output_shape"] = out
	c["bias_axes"] = nil
	if e.bias != nil {
		c["bias_axes"] = e.equation[len(e.equation)-e.outDims:]
	}
	return c
}

// Quantization is Keras' EinsumDense int8 contract (quantize.go): the
// kernel is reduced over its contracted (leading) axes, one scale per
// output element, stored in Keras' shape: the kernel's with the
// contracted axes 1, aligned with the output's axes ([1, 1, heads, dim]
// for "abc,cde->abde", [1, 1, out] for "abcd,cde->abe").
func (e *einsumDense) floatKernel() *Weight {
	if e.kernelScale != nil {
		return nil
	}
	return e.kernel
}

func (e *einsumDense) int8Layout() int8Layout {
	l := int8Layout{outer: 1, reduce: 1, inner: 1, kernelName: "kernel", scaleName: "kernel_scale"}
	if e.kernel == nil {
		return l
	}
	ks := e.kernel.Shape()
	k := len(ks) - e.outDims
	// The output keeps the input's leading axes: the input's rank is the
	// output's (2 leading axes here) plus the contracted ones.
	lead := len(e.equation[strings.Index(e.equation, "->")+2:]) - e.outDims
	for range lead {
		l.scaleShape = append(l.scaleShape, 1)
	}
	for i, d := range ks {
		if i < k {
			l.reduce *= int(d)
		} else {
			l.inner *= int(d)
			l.scaleShape = append(l.scaleShape, d)
		}
	}
	return l
}

func (e *einsumDense) setInt8(kernel, scale *Weight, weightOnly bool) {
	e.kernel, e.kernelScale, e.weightOnly = kernel, scale, weightOnly
}

// softmaxLayer is MultiHeadAttention's Softmax sublayer (keras.layers.Softmax
// over the last axis, with its mask: masked logits become -1e9, a fully
// masked row all zeros).
type softmaxLayer struct{ Base }

// Call is the softmax of inputs[0], masked by inputs[1] when given.
func (l *softmaxLayer) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	if len(inputs) < 1 || len(inputs) > 2 {
		ctx.Fail(l, "takes the logits and an optional mask, got %d inputs", len(inputs))
		return tfgo.Output{}
	}
	if !ctx.usable() || inputs[0].Op == nil {
		return tfgo.Output{}
	}
	var mask tfgo.Output
	if len(inputs) == 2 {
		mask = inputs[1]
	}
	l.Build(ctx)
	return tfgo.MaskedSoftmax(ctx.Scope.SubScope(l.name), inputs[0], mask, -1)
}

// Config is Softmax's get_config.
func (l *softmaxLayer) Config() map[string]any {
	c := l.BaseConfig()
	c["axis"] = -1
	return c
}

// causalMaskTS is Keras' _compute_causal_mask(query, value): the [T, S]
// bool mask, true where the key position is at most the query position
// (it broadcasts against [B, heads, T, S] scores).
func causalMaskTS(s *tfgo.Scope, query, value tfgo.Output) tfgo.Output {
	cs := s.SubScope("causal_mask")
	rows := tfgo.Reshape(cs, tfgo.Range(cs, tfgo.Const(cs, int32(0)), seqLength(cs, query), tfgo.Const(cs, int32(1))), tfgo.Const(cs, []int32{-1, 1}))
	cols := tfgo.Reshape(cs, tfgo.Range(cs, tfgo.Const(cs, int32(0)), seqLength(cs, value), tfgo.Const(cs, int32(1))), tfgo.Const(cs, []int32{1, -1}))
	return tfgo.GreaterEqual(cs, rows, cols)
}

// seqLength is dimension 1 of x as an int32 scalar: a constant when known.
func seqLength(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
	if sh := staticShape(x); len(sh) > 1 && sh[1] >= 0 {
		return tfgo.Const(s, int32(sh[1]))
	}
	return tfgo.Squeeze(s, tfgo.Slice(s, tfgo.ShapeOf(s, x), tfgo.Const(s, []int32{1}), tfgo.Const(s, []int32{1})))
}

// leadingDimsWith is the int32 shape vector of x's first n dims followed
// by tail: a constant when those dims are known, else taken from Shape(x)
// by a StridedSlice, which shape inference sees through (a Slice it does
// not): the reshaped output keeps x's known dims (an unknown batch left
// the sequence length unknown too, which a Flatten after an attention
// refused).
func leadingDimsWith(s *tfgo.Scope, x tfgo.Output, n int, tail ...int64) tfgo.Output {
	sh := staticShape(x)
	known := len(sh) >= n
	for i := 0; known && i < n; i++ {
		known = sh[i] >= 0
	}
	t := make([]int32, len(tail))
	for i, d := range tail {
		t[i] = int32(d)
	}
	if known {
		v := make([]int32, 0, n+len(tail))
		for _, d := range sh[:n] {
			v = append(v, int32(d))
		}
		return tfgo.Const(s, append(v, t...))
	}
	head := tfgo.StridedSlice(s, tfgo.ShapeOf(s, x), tfgo.Const(s, []int32{0}), tfgo.Const(s, []int32{int32(n)}), tfgo.Const(s, []int32{1}))
	return tfgo.ConcatV2(s, []tfgo.Output{head, tfgo.Const(s, t)}, tfgo.Const(s, int32(0)))
}
