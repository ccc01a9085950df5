package tfgo

import (
	"fmt"
	"testing"
)

// The per-step overheads the Go path adds around TensorFlow's kernels: a
// regression here shows up in every train step and inference call, so it is
// measured apart from the kernels (`go test ./tfgo -run '^$' -bench .`).

// benchSizes span one scalar-ish feed to a large activation batch, where
// per-call costs give way to per-byte copies.
var benchSizes = []int{16, 4 << 10, 1 << 20}

func BenchmarkNewTensorFloat32(b *testing.B) {
	for _, n := range benchSizes {
		v := make([]float32, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(4 * n))
			for i := 0; i < b.N; i++ {
				t, err := NewTensor(v)
				if err != nil {
					b.Fatal(err)
				}
				t.Close()
			}
		})
	}
}

func BenchmarkNewTensorInt32Batch(b *testing.B) {
	// [batch][seq] int32 token ids: the shape every language-model step feeds.
	for _, n := range benchSizes {
		seq := 128
		rows := max(n/seq, 1)
		v := make([][]int32, rows)
		for i := range v {
			v[i] = make([]int32, seq)
		}
		b.Run(fmt.Sprintf("%dx%d", rows, seq), func(b *testing.B) {
			b.SetBytes(int64(4 * rows * seq))
			for i := 0; i < b.N; i++ {
				t, err := NewTensor(v)
				if err != nil {
					b.Fatal(err)
				}
				t.Close()
			}
		})
	}
}

func BenchmarkFloat32s(b *testing.B) { benchToSlice(b, Float32s) }

func BenchmarkInt32s(b *testing.B) { benchToSlice(b, Int32s) }

// benchToSlice times conv, a tensor's copy out to a Go slice, at each size.
func benchToSlice[T float32 | int32](b *testing.B, conv func(*Tensor) ([]T, error)) {
	for _, n := range benchSizes {
		t, err := NewTensor(make([]T, n))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(4 * n))
			for i := 0; i < b.N; i++ {
				if _, err := conv(t); err != nil {
					b.Fatal(err)
				}
			}
		})
		t.Close()
	}
}

// BenchmarkSessionRunTrivial is the fixed cost of one TF_SessionRun from Go
// (feed conversion, call, fetch wrap) on a graph whose kernel is negligible.
func BenchmarkSessionRunTrivial(b *testing.B) {
	s := NewScope()
	x := Placeholder(s, Float)
	y := Add(s, x, x)
	sess, err := NewSession(s, SessionOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	feed, err := NewTensor(float32(1))
	if err != nil {
		b.Fatal(err)
	}
	defer feed.Close()
	// The first run creates the executor: a one-off cost, not a per-step one.
	if out, err := sess.Run(map[Output]any{x: feed}, []Output{y}); err == nil {
		out[0].Close()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := sess.Run(map[Output]any{x: feed}, []Output{y})
		if err != nil {
			b.Fatal(err)
		}
		out[0].Close()
	}
}

// BenchmarkSessionRunFeedBatch feeds a Go [batch][seq] slice (not a
// prepared tensor), as a training loop does with each new batch.
func BenchmarkSessionRunFeedBatch(b *testing.B) {
	for _, batch := range []int{1, 32} {
		s := NewScope()
		x := Placeholder(s, Int32, -1, 128)
		y := Sum(s, x, Const(s, []int32{0, 1}))
		sess, err := NewSession(s, SessionOptions{})
		if err != nil {
			b.Fatal(err)
		}
		v := make([][]int32, batch)
		for i := range v {
			v[i] = make([]int32, 128)
		}
		b.Run(fmt.Sprint(batch), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				out, err := sess.Run(map[Output]any{x: v}, []Output{y})
				if err != nil {
					b.Fatal(err)
				}
				out[0].Close()
			}
		})
		sess.Close()
	}
}
