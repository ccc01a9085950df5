package keraslike

import (
	"math"

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

	query, key, value, output mhaProjection
	dropout                   *Dropout
}

// mhaProjection is one of Keras' EinsumDense sublayers of MultiHeadAttention.
type mhaProjection struct {
	kernel, bias *Weight
}

// NewMultiHeadAttention returns keras.layers.MultiHeadAttention(num_heads, key_dim, ...).
func NewMultiHeadAttention(numHeads, keyDim int, opts MultiHeadAttentionOptions) *MultiHeadAttention {
	m := &MultiHeadAttention{Base: newBase("MultiHeadAttention", opts.Name), NumHeads: numHeads, KeyDim: keyDim, ValueDim: opts.ValueDim, opts: opts}
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
	ctx.fail(m, "takes 1 to 3 inputs (query, value, key), got %d", len(inputs))
	return tfgo.Output{}
}

// CallWithMask is Keras' call(query, value, key=key,
// attention_mask=mask, use_causal_mask=causal). A zero key is value; a
// zero mask is no mask.
func (m *MultiHeadAttention) CallWithMask(ctx *Context, query, value, key, mask tfgo.Output, causal bool) tfgo.Output {
	if key.Op == nil {
		key = value
	}
	if ctx.Scope.Err() != nil || query.Op == nil || value.Op == nil {
		return tfgo.Output{}
	}
	if m.NumHeads <= 0 || m.KeyDim <= 0 || m.ValueDim <= 0 || m.opts.OutputShape < 0 {
		ctx.fail(m, "num_heads, key_dim, value_dim and output_shape must be positive, got %d, %d, %d and %d", m.NumHeads, m.KeyDim, m.ValueDim, m.opts.OutputShape)
		return tfgo.Output{}
	}
	if !(m.opts.Dropout >= 0 && m.opts.Dropout < 1) {
		ctx.fail(m, "dropout must be in [0, 1), got %g", m.opts.Dropout)
		return tfgo.Output{}
	}
	dt := query.DataType()
	shapes := [3][]int64{}
	for i, x := range []tfgo.Output{query, value, key} {
		what := [3]string{"query", "value", "key"}[i]
		if !isFloat(x.DataType()) || x.DataType() != dt {
			ctx.fail(m, "needs floating-point %s of the query's dtype %s, got %s", what, dt, x.DataType())
			return tfgo.Output{}
		}
		sh := staticShape(x)
		if len(sh) != 3 || sh[2] < 0 {
			ctx.fail(m, "needs %s of rank 3 [batch, length, features] with known features, got shape %v", what, tfgo.Shape{Dims: sh, UnknownRank: sh == nil})
			return tfgo.Output{}
		}
		shapes[i] = sh
	}
	qs, vs, ks := shapes[0], shapes[1], shapes[2]
	if vs[1] >= 0 && ks[1] >= 0 && vs[1] != ks[1] {
		ctx.fail(m, "value and key must have the same length, got %d and %d", vs[1], ks[1])
		return tfgo.Output{}
	}
	heads, kd, vd := int64(m.NumHeads), int64(m.KeyDim), int64(m.ValueDim)
	if mask.Op != nil {
		ms := staticShape(mask)
		if ms == nil || len(ms) < 2 || len(ms) > 4 {
			ctx.fail(m, "needs an attention mask of rank 2 to 4 ([T, S], [B, T, S] or [B, heads, T, S]), got shape %v", tfgo.Shape{Dims: ms, UnknownRank: ms == nil})
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
				ctx.fail(m, "attention mask of shape %v does not broadcast to the scores [batch, heads, T, S] = %v", ms, want)
				return tfgo.Output{}
			}
		}
	}

	if m.build(ctx) {
		out := int64(m.opts.OutputShape)
		if out == 0 {
			out = qs[2]
		}
		m.query = m.addProjection("query", []int64{qs[2], heads, kd}, []int64{heads, kd})
		m.key = m.addProjection("key", []int64{ks[2], heads, kd}, []int64{heads, kd})
		m.value = m.addProjection("value", []int64{vs[2], heads, vd}, []int64{heads, vd})
		m.output = m.addProjection("attention_output", []int64{heads, vd, out}, []int64{out})
		if m.opts.Dropout > 0 {
			seed := seedFor(m.seedPrefix + "/dropout")
			if m.opts.Seed != nil {
				seed = *m.opts.Seed
			}
			m.dropout = NewDropout(m.opts.Dropout, DropoutOptions{Name: "dropout", Seed: &seed})
		}
	}
	for i, p := range []mhaProjection{m.query, m.value, m.key} {
		if in := p.kernel.Shape()[0]; in != shapes[i][2] {
			ctx.fail(m, "was built for %s with %d features, got %d", [3]string{"query", "value", "key"}[i], in, shapes[i][2])
			return tfgo.Output{}
		}
	}

	s := ctx.Scope.SubScope(m.name)
	q := m.project(s.SubScope("query"), query, m.query, heads, kd) // [B, heads, T, key_dim]
	k := m.project(s.SubScope("key"), key, m.key, heads, kd)       // [B, heads, S, key_dim]
	v := m.project(s.SubScope("value"), value, m.value, heads, vd) // [B, heads, S, value_dim]

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
		ldt := dt
		if dt == tfgo.Half || dt == tfgo.BFloat16 {
			ldt = tfgo.Float
			logits = tfgo.Cast(as, logits, ldt)
		}
		logits = tfgo.Mul(as, logits, scalarAs(as, scale, ldt))
		if mask.Op != nil {
			large := 3.38953e38
			if ldt == tfgo.Half {
				large = 65500.0
			}
			logits = tfgo.SelectV2(as, mask, logits, scalarAs(as, large*-0.7, ldt))
		}
		probs = castTo(as, tfgo.Softmax(as, logits), dt)
	} else {
		q = tfgo.Mul(as, q, scalarAs(as, scale, dt))
		scores := tfgo.BatchMatMulV2(as, q, k, tfgo.BatchMatMulV2AdjY(true))
		probs = tfgo.MaskedSoftmax(as, scores, mask, -1)
		dctx := m.sublayerContext(ctx)
		dctx.Scope = as
		probs = m.dropout.Call(dctx, probs)
	}
	o := tfgo.BatchMatMulV2(as, probs, v) // [B, heads, T, value_dim]

	os := s.SubScope("attention_output")
	o = tfgo.Transpose(os, o, tfgo.Const(os, []int32{0, 2, 1, 3}))
	out := m.output.kernel.Shape()[2]
	kernel := tfgo.Reshape(os, castTo(os, m.output.kernel.Read(os), dt), tfgo.Const(os, []int32{int32(heads * vd), int32(out)}))
	y := tfgo.MatMul(os, tfgo.Reshape(os, o, tfgo.Const(os, []int32{-1, int32(heads * vd)})), kernel)
	if m.output.bias != nil {
		y = tfgo.BiasAdd(os, y, castTo(os, m.output.bias.Read(os), dt))
	}
	return tfgo.Reshape(os, y, leadingDimsWith(os, query, 2, out))
}

// addProjection creates the kernel and bias of one EinsumDense sublayer.
func (m *MultiHeadAttention) addProjection(name string, kernelShape, biasShape []int64) mhaProjection {
	kinit, binit := m.opts.KernelInitializer, m.opts.BiasInitializer
	if kinit == nil {
		kinit = tfgo.GlorotUniform(seedFor(m.seedPrefix + "/" + name + "/kernel"))
	}
	if binit == nil {
		binit = tfgo.Zeros()
	}
	p := mhaProjection{kernel: m.addWeight(name+"/kernel", tfgo.Float, kernelShape, kinit, true)}
	if !m.opts.NoBias {
		p.bias = m.addWeight(name+"/bias", tfgo.Float, biasShape, binit, true)
	}
	return p
}

// project computes x·W + b for x [B, L, d] and W [d, heads, dim] as one
// MatMul, and returns the heads first: [B, heads, L, dim].
func (m *MultiHeadAttention) project(s *tfgo.Scope, x tfgo.Output, p mhaProjection, heads, dim int64) tfgo.Output {
	dt := x.DataType()
	in := p.kernel.Shape()[0]
	kernel := tfgo.Reshape(s, castTo(s, p.kernel.Read(s), dt), tfgo.Const(s, []int32{int32(in), int32(heads * dim)}))
	y := tfgo.MatMul(s, tfgo.Reshape(s, x, tfgo.Const(s, []int32{-1, int32(in)})), kernel)
	if p.bias != nil {
		bias := tfgo.Reshape(s, castTo(s, p.bias.Read(s), dt), tfgo.Const(s, []int32{int32(heads * dim)}))
		y = tfgo.BiasAdd(s, y, bias)
	}
	y = tfgo.Reshape(s, y, leadingDimsWith(s, x, 2, heads, dim))
	return tfgo.Transpose(s, y, tfgo.Const(s, []int32{0, 2, 1, 3}))
}

// Config is MultiHeadAttention's get_config.
func (m *MultiHeadAttention) Config() map[string]any {
	c := m.baseConfig()
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
// by tail: a constant when those dims are known, else taken from Shape(x).
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
	head := tfgo.Slice(s, tfgo.ShapeOf(s, x), tfgo.Const(s, []int32{0}), tfgo.Const(s, []int32{int32(n)}))
	return tfgo.ConcatV2(s, []tfgo.Output{head, tfgo.Const(s, t)}, tfgo.Const(s, int32(0)))
}
