package keraslike

import (
	"hash/fnv"

	"github.com/gotf/gotf/tfgo"
)

func isFloat(dt tfgo.DataType) bool {
	switch dt {
	case tfgo.Float, tfgo.Double, tfgo.Half, tfgo.BFloat16:
		return true
	}
	return false
}

// castTo casts x to dt unless it already is (mixed precision reads float32
// variables into float16/bfloat16 compute).
func castTo(s *tfgo.Scope, x tfgo.Output, dt tfgo.DataType) tfgo.Output {
	if x.Op == nil || x.DataType() == dt {
		return x
	}
	return tfgo.Cast(s, x, dt)
}

// seedFor derives a default initializer seed from a layer's name, so that
// a model built twice the same way starts from the same weights.
func seedFor(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64() >> 1)
}

// outputShape is x's shape with the last dimension replaced by units: a
// constant when x's leading dimensions are known, else computed at run time.
func outputShape(s *tfgo.Scope, x tfgo.Output, shape []int64, units int64) tfgo.Output {
	static := true
	dims := make([]int32, len(shape))
	for i, d := range shape[:len(shape)-1] {
		static = static && d >= 0
		dims[i] = int32(d)
	}
	dims[len(dims)-1] = int32(units)
	if static {
		return tfgo.Const(s, dims)
	}
	lead := tfgo.StridedSlice(s, tfgo.ShapeOf(s, x), tfgo.Const(s, []int32{0}), tfgo.Const(s, []int32{-1}), tfgo.Const(s, []int32{1}))
	return tfgo.ConcatV2(s, []tfgo.Output{lead, tfgo.Const(s, []int32{int32(units)})}, tfgo.Const(s, int32(0)))
}

// closeTensors frees tensors the caller owns.
func closeTensors(ts []*tfgo.Tensor) {
	for _, t := range ts {
		t.Close()
	}
}

// isHalf reports a 16-bit float dtype, which mixed precision computes in.
func isHalf(dt tfgo.DataType) bool { return dt == tfgo.Half || dt == tfgo.BFloat16 }
