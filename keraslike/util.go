package keraslike

import (
	"hash/fnv"

	"github.com/gotf/gotf/cgo"
	"github.com/gotf/gotf/tfgo"
)

func isFloat(dt cgo.DataType) bool {
	switch dt {
	case cgo.Float, cgo.Double, cgo.Half, cgo.BFloat16:
		return true
	}
	return false
}

// castTo casts x to dt unless it already is (mixed precision reads float32
// variables into float16/bfloat16 compute).
func castTo(s *tfgo.Scope, x tfgo.Output, dt cgo.DataType) tfgo.Output {
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
