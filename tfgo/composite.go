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
	half := Mul(gs, c(0.5), x)
	if approximate {
		// tf.nn.gelu casts 0.044715 from a float32 tensor; the other
		// constants are converted to x's dtype directly.
		coeff := typedScalar(gs, float64(float32(0.044715)), dt)
		cube := Pow(gs, x, c(3))
		inner := AddV2(gs, x, Mul(gs, coeff, cube))
		th := Tanh(gs, Mul(gs, c(0.7978845608028654), inner))
		return Mul(gs, half, AddV2(gs, c(1), th))
	}
	negX := Neg(gs, x)
	erfc := Erfc(gs, Mul(gs, negX, c(0.7071067811865476)))
	return Mul(gs, half, erfc)
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
		x = Cast(ls, x, dt)
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
			p = Cast(ls, p, dt)
		}
		if bshape != nil {
			if sh, err := p.Shape(); err != nil || sh.UnknownRank || sh.Rank() != len(bshape) {
				p = Reshape(ls, p, Const(ls, bshape))
			}
		}
		return p
	}
	gamma, beta = param(gamma), param(beta)

	axes := Const(ls, []int32{int32(axis)})
	ms := ls.SubScope("moments")
	mean := Out(ms.AddOperation(OpSpec{Type: "Mean", Name: "mean", Input: []any{x, axes}, Attrs: map[string]any{"keep_dims": true}}), 0)
	sq := SquaredDifference(ms, x, StopGradient(ms, mean))
	variance := Out(ms.AddOperation(OpSpec{Type: "Mean", Name: "variance", Input: []any{sq, axes}, Attrs: map[string]any{"keep_dims": true}}), 0)

	inv := Rsqrt(ls, AddV2(ls, variance, typedScalar(ls, float64(epsilon), dt)))
	if gamma.Op != nil {
		inv = Mul(ls, inv, gamma)
	}
	res := Mul(ls, Neg(ls, mean), inv)
	if beta.Op != nil {
		res = AddV2(ls, res, beta)
	}
	out := AddV2(ls, Mul(ls, x, inv), res)
	if dt != orig {
		out = Cast(ls, out, orig)
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
			mask = Greater(ms, mask, Const(ms, half))
		}
		large := -1e9
		if dt == Half {
			large = -3e4
		}
		logits = SelectV2(ms, mask, logits, typedScalar(ms, large, dt))
	}
	out := softmaxOverAxis(s, ms, logits, axis)
	if mask.Op != nil && out.Op != nil {
		out = SelectV2(ms, mask, out, typedScalar(ms, 0, dt))
	}
	return out
}

// softmaxOverAxis is tf.nn.softmax(x, axis): the Softmax op works on the
// last axis, so another axis is swapped with the last one and back.
func softmaxOverAxis(root, s *Scope, x Output, axis int) Output {
	if axis == -1 {
		return Softmax(s, x)
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
		return Softmax(s, x)
	}
	perm := make([]int32, rank)
	for i := range perm {
		perm[i] = int32(i)
	}
	perm[a], perm[rank-1] = int32(rank-1), int32(a)
	p := Const(s, perm)
	t := Transpose(s, x, p)
	return Transpose(s, Softmax(s, t), p)
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
		length = Cast(cs, length, Int32)
	default:
		s.UpdateErr(fullOpName(s, "CausalMask"), fmt.Errorf("length must be an int32 or int64 scalar, got %s", length.DataType()))
		return Output{}
	}
	shape := Pack(cs, []Output{length, length}, PackAxis(0))
	ones := Fill(cs, shape, Const(cs, int32(1)))
	row := Cumsum(cs, ones, Const(cs, int32(0)))
	col := Cumsum(cs, ones, Const(cs, int32(1)))
	return GreaterEqual(cs, row, col)
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
		halves[i] = L2Loss(gs, t)
	}
	stacked := Pack(gs, halves, PackAxis(0))
	sum := Sum(gs, stacked, Const(gs, []int32{0}))
	norm := Out(gs.AddOperation(OpSpec{Type: "Sqrt", Name: "global_norm", Input: []any{Mul(gs, sum, typedScalar(gs, 2, dt))}}), 0)

	cs := s.SubScope("clip_by_global_norm")
	clip := typedScalar(cs, float64(clipNorm), dt)
	one := func() Output { return typedScalar(cs, 1, dt) }
	minimum := Minimum(cs, RealDiv(cs, one(), norm), RealDiv(cs, one(), clip))
	scaleFinite := Mul(cs, clip, minimum)
	scale := AddV2(cs, scaleFinite, Sub(cs, norm, norm))
	for i, t := range ts {
		if t.Op == nil {
			continue
		}
		sc := scale
		if t.DataType() != dt {
			sc = Cast(cs, scale, t.DataType())
		}
		out[i] = Out(cs.AddOperation(OpSpec{Type: "Identity", Name: fmt.Sprintf("clip_by_global_norm_%d", i),
			Input: []any{Mul(cs, t, sc)}}), 0)
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
	if s == nil || s.namespace == "" {
		return name
	}
	return s.namespace + "/" + name
}

func isFloatDType(dt DataType) bool {
	return dt == Float || dt == Double || dt == Half || dt == BFloat16
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
