package tfgo

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each kind of mistake comes back as an error naming the op; none crashes.
func TestMistakesGiveErrorsNamingTheOp(t *testing.T) {
	cases := []struct {
		name  string
		build func(s *Scope) error
		op    string
		want  string
	}{
		{"bad attr", func(s *Scope) error {
			Op(s.SubScope("input"), "Placeholder", nil, map[string]any{"dtype": "float32"})
			return s.Err()
		}, "input/Placeholder", "dtype"},
		{"shape mismatch", func(s *Scope) error {
			a := Const(s, [][]float32{{1, 2, 3}})
			MatMul(s.SubScope("dense"), a, a)
			return s.Err()
		}, "dense/MatMul", "Dimensions must be equal"},
		{"missing gradient", func(s *Scope) error {
			x := Placeholder(s, Float, 4)
			y := Cumprod(s.SubScope("odd"), x, Const(s, int32(0)))
			Gradients(s, []Output{y}, []Output{x}, nil)
			return s.Err()
		}, "odd/Cumprod", "no gradient registered for op type Cumprod"},
		{"fetch of a non-existent op", func(s *Scope) error {
			Const(s, float32(1))
			_, err := s.Graph().OutputByName("logits:0")
			return err
		}, "logits", "no operation named"},
		{"unknown op type", func(s *Scope) error {
			Op(s, "FlashAttention", nil, nil)
			return s.Err()
		}, "FlashAttention", "Op type not registered"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.build(NewScope())
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.op)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}
