package cgo

import (
	"strconv"
	"strings"

	"github.com/gotf/gotf/dtypes"
)

// Shape is a (possibly partial) tensor shape: a dimension of -1 is unknown,
// and UnknownRank marks a shape of which not even the rank is known. The zero
// Shape is a scalar.
type Shape struct {
	Dims        []int64
	UnknownRank bool
}

// MakeShape returns the shape with the given dimensions (-1 for unknown ones).
func MakeShape(dims ...int64) Shape { return Shape{Dims: dims} }

// UnknownShape returns a shape of unknown rank.
func UnknownShape() Shape { return Shape{UnknownRank: true} }

// Rank is the number of dimensions, or -1 when the rank is unknown.
func (s Shape) Rank() int {
	if s.UnknownRank {
		return -1
	}
	return len(s.Dims)
}

// IsFullyDefined reports whether the rank and every dimension are known.
func (s Shape) IsFullyDefined() bool {
	if s.UnknownRank {
		return false
	}
	for _, d := range s.Dims {
		if d < 0 {
			return false
		}
	}
	return true
}

// NumElements is the product of the dimensions, or -1 if the shape is not fully defined.
func (s Shape) NumElements() int64 {
	if !s.IsFullyDefined() {
		return -1
	}
	n, err := dtypes.NumElements(s.Dims)
	if err != nil {
		return -1
	}
	return n
}

// String formats the shape as Python's TensorShape does: "(2, None)", "<unknown>".
func (s Shape) String() string {
	if s.UnknownRank {
		return "<unknown>"
	}
	parts := make([]string, len(s.Dims))
	for i, d := range s.Dims {
		if d < 0 {
			parts[i] = "None"
		} else {
			parts[i] = strconv.FormatInt(d, 10)
		}
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
