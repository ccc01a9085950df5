package tfgo

import (
	"fmt"
)

// Composites a transformer needs, built from TensorFlow ops exactly as
// Keras 3 (TensorFlow backend) and tf.nn build them, so that results agree
// with Python to the last bits the kernels allow. Each adds its ops under a
// sub-scope named after it; errors stick to the scope and the zero Output
// is returned.

// Gelu is the Gaussian error linear unit, as tf.nn.gelu (which
// keras.activations.gelu and keras.ops.gelu call on the TensorFlow backend):
//
//	exact:        0.5 * x * erfc(-x * 0.7071067811865476)         (= 0.5x(1+erf(x/√2)))
//	approximate:  0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x³)))
//
// x must be a float tensor (float16, bfloat16, float32, float64).
func Gelu(s *Scope, x Output, approximate bool) Output {
	if !compositeInputs(s, "Gelu", x) {
		return Output{}
	}
	dt := x.DataType()
	if !isFloatDType(dt) {
		s.UpdateErr(fullOpName(s, "Gelu"), fmt.Errorf("gelu needs a float tensor, got %s", dt))
		return Output{}
	}
	gs := s.SubScope("Gelu")
	c := func(v float64) Output { return typedScalar(gs, v, dt) }
	half := binOp(gs, "Mul", c(0.5), x)
	if approximate {
		// tf.nn.gelu casts 0.044715 from a float32 tensor; the other
		// constants are converted to x's dtype directly.
		coeff := typedScalar(gs, float64(float32(0.044715)), dt)
		cube := binOp(gs, "Pow", x, c(3))
		inner := binOp(gs, "AddV2", x, binOp(gs, "Mul", coeff, cube))
		th := Out(Op(gs, "Tanh", []any{binOp(gs, "Mul", c(0.7978845608028654), inner)}, nil), 0)
		return binOp(gs, "Mul", half, binOp(gs, "AddV2", c(1), th))
	}
	negX := Out(Op(gs, "Neg", []any{x}, nil), 0)
	erfc := Out(Op(gs, "Erfc", []any{binOp(gs, "Mul", negX, c(0.7071067811865476))}, nil), 0)
	return binOp(gs, "Mul", half, erfc)
}

// LayerNormalize normalizes x over one axis as keras.layers.LayerNormalization
// (keras.ops.layer_normalization on the TensorFlow backend) does:
//
//	mean, variance = tf.nn.moments(x, [axis], keepdims=True)
//	inv = rsqrt(variance + epsilon) * gamma
//	out = x * inv + (beta - mean * inv)
//
// which is (x - mean) / sqrt(variance + epsilon) * gamma + beta. gamma and
// beta have the size of the axis (or x's rank); either may be the zero
// Output, meaning scale=False / center=False. float16 and bfloat16 inputs
// are computed in float32 and cast back, as Keras does. Keras's default
// epsilon is 1e-3 (being a float32, epsilon is float64(float32(eps)) for
// float64 inputs, where Keras adds the Python float); a negative axis
// counts from the end.
func LayerNormalize(s *Scope, x, gamma, beta Output, axis int, epsilon float32) Output {
	if !compositeInputs(s, "LayerNorm", x) {
		return Output{}
	}
	orig := x.DataType()
	if !isFloatDType(orig) {
		s.UpdateErr(fullOpName(s, "LayerNorm"), fmt.Errorf("layer normalization needs a float tensor, got %s", orig))
		return Output{}
	}
	ls := s.SubScope("LayerNorm")
	dt := orig
	if dt == Half || dt == BFloat16 {
		dt = Float
		x = castOp(ls, x, dt)
	}
	// Keras reshapes gamma and beta for broadcasting unless the axis is the last.
	var bshape []int64
	if axis != -1 {
		rank := -1
		if sh, err := x.Shape(); err == nil && !sh.UnknownRank {
			rank = sh.Rank()
		}
		if rank < 0 {
			s.UpdateErr(fullOpName(s, "LayerNorm"), fmt.Errorf("layer normalization over axis %d needs x's rank, which is unknown", axis))
			return Output{}
		}
		a := axis
		if a < 0 {
			a += rank
		}
		if a < 0 || a >= rank {
			s.UpdateErr(fullOpName(s, "LayerNorm"), fmt.Errorf("axis %d out of range for rank %d", axis, rank))
			return Output{}
		}
		if a != rank-1 {
			bshape = make([]int64, rank)
			for i := range bshape {
				bshape[i] = 1
			}
			bshape[a] = -1
		}
	}
	param := func(p Output) Output {
		if p.Op == nil {
			return p
		}
		if p.DataType() != dt {
			p = castOp(ls, p, dt)
		}
		if bshape != nil {
			if sh, err := p.Shape(); err != nil || sh.UnknownRank || sh.Rank() != len(bshape) {
				p = Out(Op(ls, "Reshape", []any{p, Const(ls, bshape)}, nil), 0)
			}
		}
		return p
	}
	gamma, beta = param(gamma), param(beta)

	axes := Const(ls, []int32{int32(axis)})
	ms := ls.SubScope("moments")
	mean := Out(ms.AddOperation(OpSpec{Type: "Mean", Name: "mean", Input: []any{x, axes}, Attrs: map[string]any{"keep_dims": true}}), 0)
	sq := binOp(ms, "SquaredDifference", x, Out(Op(ms, "StopGradient", []any{mean}, nil), 0))
	variance := Out(ms.AddOperation(OpSpec{Type: "Mean", Name: "variance", Input: []any{sq, axes}, Attrs: map[string]any{"keep_dims": true}}), 0)

	inv := Out(Op(ls, "Rsqrt", []any{binOp(ls, "AddV2", variance, typedScalar(ls, float64(epsilon), dt))}, nil), 0)
	if gamma.Op != nil {
		inv = binOp(ls, "Mul", inv, gamma)
	}
	res := binOp(ls, "Mul", Out(Op(ls, "Neg", []any{mean}, nil), 0), inv)
	if beta.Op != nil {
		res = binOp(ls, "AddV2", res, beta)
	}
	out := binOp(ls, "AddV2", binOp(ls, "Mul", x, inv), res)
	if dt != orig {
		out = castOp(ls, out, orig)
	}
	return out
}

// MaskedSoftmax is keras.layers.Softmax(axis)(logits, mask=mask): where the
// mask (broadcastable to logits; bool, or numeric meaning > 0.5) is false
// the logits are replaced by a large negative number (-1e9, or -3e4 for
// float16: keras's _large_negative_number), the softmax is taken over axis,
// and masked positions are then set to 0 (so a fully masked row is all
// zeros, not uniform). Keras 3 replaces masked logits (tf.where) rather than
// adding (1-mask)*-1e9 as tf.keras 2 did; the two agree wherever a row has
// an unmasked position. A zero mask Output is a plain softmax (tf.nn.softmax).
func MaskedSoftmax(s *Scope, logits, mask Output, axis int) Output {
	if !compositeInputs(s, "MaskedSoftmax", logits) {
		return Output{}
	}
	dt := logits.DataType()
	if !isFloatDType(dt) {
		s.UpdateErr(fullOpName(s, "MaskedSoftmax"), fmt.Errorf("softmax needs a float tensor, got %s", dt))
		return Output{}
	}
	ms := s.SubScope("MaskedSoftmax")
	if mask.Op != nil {
		if mdt := mask.DataType(); mdt != Bool {
			half, err := scalarOfDType(0.5, mdt)
			if err != nil {
				s.UpdateErr(fullOpName(s, "MaskedSoftmax"), fmt.Errorf("mask of dtype %s: %w", mdt, err))
				return Output{}
			}
			mask = binOp(ms, "Greater", mask, Const(ms, half))
		}
		large := -1e9
		if dt == Half {
			large = -3e4
		}
		logits = Out(Op(ms, "SelectV2", []any{mask, logits, typedScalar(ms, large, dt)}, nil), 0)
	}
	out := softmaxOverAxis(s, ms, logits, axis)
	if mask.Op != nil && out.Op != nil {
		out = Out(Op(ms, "SelectV2", []any{mask, out, typedScalar(ms, 0, dt)}, nil), 0)
	}
	return out
}

// softmaxOverAxis is tf.nn.softmax(x, axis): the Softmax op works on the
// last axis, so another axis is swapped with the last one and back.
func softmaxOverAxis(root, s *Scope, x Output, axis int) Output {
	if axis == -1 {
		return Out(Op(s, "Softmax", []any{x}, nil), 0)
	}
	sh, err := x.Shape()
	if err != nil || sh.UnknownRank {
		root.UpdateErr(fullOpName(s, "Softmax"), fmt.Errorf("softmax over axis %d needs the logits' rank, which is unknown", axis))
		return Output{}
	}
	rank := sh.Rank()
	a := axis
	if a < 0 {
		a += rank
	}
	if a < 0 || a >= rank {
		root.UpdateErr(fullOpName(s, "Softmax"), fmt.Errorf("axis %d out of range for rank %d", axis, rank))
		return Output{}
	}
	if a == rank-1 {
		return Out(Op(s, "Softmax", []any{x}, nil), 0)
	}
	perm := make([]int32, rank)
	for i := range perm {
		perm[i] = int32(i)
	}
	perm[a], perm[rank-1] = int32(rank-1), int32(a)
	p := Const(s, perm)
	t := Out(Op(s, "Transpose", []any{x, p}, nil), 0)
	return Out(Op(s, "Transpose", []any{Out(Op(s, "Softmax", []any{t}, nil), 0), p}, nil), 0)
}

// CausalMask is the [T, T] bool lower-triangular mask (true where the key
// position <= the query position) for a sequence of length T (an int32 or
// int64 scalar), built as keras.layers.MultiHeadAttention's
// _compute_causal_mask builds its (1, T, T) mask: row and column indices as
// cumulative sums of ones, row >= col. It broadcasts against
// [batch, heads, T, T] attention scores.
func CausalMask(s *Scope, length Output) Output {
	if !compositeInputs(s, "CausalMask", length) {
		return Output{}
	}
	cs := s.SubScope("CausalMask")
	switch length.DataType() {
	case Int32:
	case Int64:
		length = castOp(cs, length, Int32)
	default:
		s.UpdateErr(fullOpName(s, "CausalMask"), fmt.Errorf("length must be an int32 or int64 scalar, got %s", length.DataType()))
		return Output{}
	}
	shape := Out(Op(cs, "Pack", []any{[]Output{length, length}}, map[string]any{"axis": 0}), 0)
	ones := Out(Op(cs, "Fill", []any{shape, Const(cs, int32(1))}, nil), 0)
	row := Out(Op(cs, "Cumsum", []any{ones, Const(cs, int32(0))}, nil), 0)
	col := Out(Op(cs, "Cumsum", []any{ones, Const(cs, int32(1))}, nil), 0)
	return binOp(cs, "GreaterEqual", row, col)
}

// ClipByGlobalNorm is tf.clip_by_global_norm(ts, clipNorm): with
// global_norm = sqrt(sum of squares of every element of ts) (tf.linalg.global_norm,
// computed as sqrt(2 * sum(L2Loss(t)))), each t is scaled by
// clipNorm * min(1/global_norm, 1/clipNorm), i.e. left unchanged when the
// norm is at most clipNorm; a non-finite norm makes every result NaN. It
// returns the clipped tensors and the global norm. Zero Outputs in ts are
// ignored (returned as zero), as None entries are in TensorFlow; the others
// must share one float dtype.
func ClipByGlobalNorm(s *Scope, ts []Output, clipNorm float32) ([]Output, Output) {
	out := make([]Output, len(ts))
	if s.Err() != nil {
		return out, Output{}
	}
	var present []Output
	for _, t := range ts {
		if t.Op != nil {
			present = append(present, t)
		}
	}
	if len(present) == 0 {
		s.UpdateErr(fullOpName(s, "clip_by_global_norm"), fmt.Errorf("no tensors to clip"))
		return out, Output{}
	}
	dt := present[0].DataType()
	if !isFloatDType(dt) {
		s.UpdateErr(fullOpName(s, "clip_by_global_norm"), fmt.Errorf("clipping needs float tensors, got %s", dt))
		return out, Output{}
	}
	gs := s.SubScope("global_norm")
	halves := make([]Output, len(present))
	for i, t := range present {
		halves[i] = Out(Op(gs, "L2Loss", []any{t}, nil), 0)
	}
	stacked := Out(Op(gs, "Pack", []any{halves}, map[string]any{"axis": 0}), 0)
	sum := Out(Op(gs, "Sum", []any{stacked, Const(gs, []int32{0})}, nil), 0)
	norm := Out(gs.AddOperation(OpSpec{Type: "Sqrt", Name: "global_norm", Input: []any{binOp(gs, "Mul", sum, typedScalar(gs, 2, dt))}}), 0)

	cs := s.SubScope("clip_by_global_norm")
	clip := typedScalar(cs, float64(clipNorm), dt)
	one := func() Output { return typedScalar(cs, 1, dt) }
	minimum := binOp(cs, "Minimum", binOp(cs, "RealDiv", one(), norm), binOp(cs, "RealDiv", one(), clip))
	scaleFinite := binOp(cs, "Mul", clip, minimum)
	scale := binOp(cs, "AddV2", scaleFinite, binOp(cs, "Sub", norm, norm))
	for i, t := range ts {
		if t.Op == nil {
			continue
		}
		sc := scale
		if t.DataType() != dt {
			sc = castOp(cs, scale, t.DataType())
		}
		out[i] = Out(cs.AddOperation(OpSpec{Type: "Identity", Name: fmt.Sprintf("clip_by_global_norm_%d", i),
			Input: []any{binOp(cs, "Mul", t, sc)}}), 0)
	}
	if s.Err() != nil {
		return make([]Output, len(ts)), Output{}
	}
	return out, norm
}

// compositeInputs reports whether the inputs exist; a zero Output (an
// earlier error, or a mistake) records an error unless one is recorded.
func compositeInputs(s *Scope, op string, xs ...Output) bool {
	if s.Err() != nil {
		return false
	}
	for i, x := range xs {
		if x.Op == nil {
			s.UpdateErr(fullOpName(s, op), fmt.Errorf("input %d is not an operation's output", i))
			return false
		}
	}
	return true
}

// fullOpName is name in s's namespace, for errors about ops not (yet) added.
func fullOpName(s *Scope, name string) string {
	if s.namespace == "" {
		return name
	}
	return s.namespace + "/" + name
}

func isFloatDType(dt DataType) bool {
	return dt == Float || dt == Double || dt == Half || dt == BFloat16
}

// binOp adds a two-input op named after its type.
func binOp(s *Scope, opType string, x, y Output) Output {
	return Out(Op(s, opType, []any{x, y}, nil), 0)
}

func castOp(s *Scope, x Output, dt DataType) Output {
	return Out(Op(s, "Cast", []any{x}, map[string]any{"DstT": dt}), 0)
}

// typedScalar is a constant scalar v of dtype dt.
func typedScalar(s *Scope, v float64, dt DataType) Output {
	x, err := scalarOfDType(v, dt)
	if err != nil {
		s.UpdateErr(fullOpName(s, "Const"), err)
		return Output{}
	}
	return Const(s, x)
}
