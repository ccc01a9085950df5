package apicheck

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
)

// safely runs f, turning a panic into a test error naming what was done,
// so that one closed value misbehaving does not hide the others.
func safely(t *testing.T, what string, f func() error) error {
	t.Helper()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				buf := make([]byte, 4096)
				buf = buf[:runtime.Stack(buf, false)]
				t.Errorf("%s: panic: %v\n%s", what, r, frames(string(buf)))
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		err = f()
	}()
	return err
}

// wantErr says that what, done on a closed value, must fail.
func wantErr(t *testing.T, what string, f func() error) {
	t.Helper()
	if err := safely(t, what, f); err == nil {
		t.Errorf("%s after Close succeeded", what)
	}
}

// wantOK says that what (a second Close, a documented use after Close) must
// succeed.
func wantOK(t *testing.T, what string, f func() error) {
	t.Helper()
	if err := safely(t, what, f); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

func TestClosedSessionAndTensor(t *testing.T) {
	s := tfgo.NewScope()
	x := tfgo.Placeholder(s.SubScope("x"), tfgo.Float, 2)
	y := tfgo.Mul(s, x, tfgo.Const(s, float32(2)))
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	in, err := tfgo.NewTensor([]float32{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	wantOK(t, "Session.Run", func() error { _, err := sess.Run(map[tfgo.Output]any{x: in}, []tfgo.Output{y}); return err })

	wantOK(t, "Tensor.Close", in.Close)
	wantOK(t, "second Tensor.Close", in.Close)
	wantErr(t, "tfgo.Float32s of a closed tensor", func() error { _, err := tfgo.Float32s(in); return err })
	wantErr(t, "tfgo.Value of a closed tensor", func() error { _, err := tfgo.Value(in); return err })
	wantErr(t, "Tensor.Strings", func() error { _, err := in.Strings(); return err })
	wantErr(t, "Session.Run fed a closed tensor", func() error {
		_, err := sess.Run(map[tfgo.Output]any{x: in}, []tfgo.Output{y})
		return err
	})
	// What a closed tensor still says about itself, and its data: none.
	safely(t, "closed Tensor's getters", func() error {
		if in.DataType() != tfgo.Float || !slices.Equal(in.Shape(), []int64{2}) || in.Data() != nil || !in.Closed() {
			t.Errorf("closed tensor: %s %v, %d bytes, closed %v", in.DataType(), in.Shape(), len(in.Data()), in.Closed())
		}
		return nil
	})

	wantOK(t, "Session.Close", sess.Close)
	wantOK(t, "second Session.Close", sess.Close)
	wantErr(t, "Session.Run", func() error { _, err := sess.Run(nil, []tfgo.Output{y}); return err })
	wantErr(t, "Session.ListDevices", func() error { _, err := sess.ListDevices(); return err })
}

// newModel is a small built model: Dense(2) on 3 features.
func newModel(t *testing.T) *keraslike.Model {
	t.Helper()
	m := keraslike.NewSequential("closed_check", keraslike.InputSpec{Shape: []int64{3}}, keraslike.NewDense(2, keraslike.DenseOptions{}))
	if err := m.Build(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestClosedKerasModel: Model.Close frees the session and the model stays
// usable, starting again from its initializers (Close's documentation).
func TestClosedKerasModel(t *testing.T) {
	m := newModel(t)
	defer m.Close()
	ws, err := m.GetWeights()
	if err != nil {
		t.Fatal(err)
	}
	sevens := make([]*tfgo.Tensor, len(ws))
	for i, w := range ws {
		vals := make([]float32, w.NumElements())
		for j := range vals {
			vals[j] = 7
		}
		if sevens[i], err = tfgo.NewTensorFromBytes(tfgo.Float, w.Shape(), f32bytes(vals)); err != nil {
			t.Fatal(err)
		}
		defer sevens[i].Close()
		w.Close()
	}
	if err := m.SetWeights(sevens); err != nil {
		t.Fatal(err)
	}
	wantOK(t, "Model.Close", m.Close)
	wantOK(t, "second Model.Close", m.Close)
	x := [][]float32{{1, 2, 3}}
	wantOK(t, "Model.Predict after Close", func() error {
		out, err := m.Predict(x)
		if err == nil {
			out.Close()
		}
		return err
	})
	wantOK(t, "Model.GetWeights after Close", func() error {
		ws, err := m.GetWeights()
		if err != nil {
			return err
		}
		for i, w := range ws {
			vals, err := tfgo.Float32s(w)
			w.Close()
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(vals, func(v float32) bool { return v != 7 }) {
				return fmt.Errorf("weight %d kept the value set before Close", i)
			}
		}
		return nil
	})
	wantOK(t, "Model.Close of a model never run", keraslike.NewSequential("unused", keraslike.InputSpec{Shape: []int64{3}}).Close)
}

func f32bytes(vals []float32) []byte {
	b := make([]byte, 0, 4*len(vals))
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func TestClosedRunnerModel(t *testing.T) {
	km := newModel(t)
	defer km.Close()
	dir := filepath.Join(t.TempDir(), "export")
	if err := km.Export(dir, keraslike.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := runner.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"inputs": [][]float32{{1, 2, 3}}}
	wantOK(t, "runner.Model.Run", func() error { _, err := m.Run(context.Background(), "serving_default", in); return err })
	wantOK(t, "runner.Model.Close", m.Close)
	wantOK(t, "second runner.Model.Close", m.Close)
	wantErr(t, "runner.Model.Run", func() error { _, err := m.Run(context.Background(), "serving_default", in); return err })
}

func TestClosedBundle(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "ckpt")
	w, err := savedmodel.NewBundleWriter(prefix, savedmodel.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := &savedmodel.Tensor{DType: tfgo.Float, Shape: []int64{2}, Data: f32bytes([]float32{1, 2})}
	if err := w.Add("a", a); err != nil {
		t.Fatal(err)
	}
	wantOK(t, "BundleWriter.Close", w.Close)
	wantErr(t, "BundleWriter.Add", func() error { return w.Add("b", a) })
	// The second Close is an error by design (documented): the bundle was
	// committed once, and a Close after Abort must not report a commit.
	wantErr(t, "second BundleWriter.Close", w.Close)
	safely(t, "BundleWriter.Abort after Close", func() error { w.Abort(); return nil })

	r, err := savedmodel.OpenBundle(prefix)
	if err != nil {
		t.Fatal(err)
	}
	wantOK(t, "BundleReader.Read", func() error { _, err := r.Read("a"); return err })
	wantOK(t, "BundleReader.Close", r.Close)
	wantOK(t, "second BundleReader.Close", r.Close)
	wantErr(t, "BundleReader.Read", func() error { _, err := r.Read("a"); return err })
	wantErr(t, "BundleReader.ReadInto", func() error { return r.ReadInto("a", new(nopWriter)) })
}

type nopWriter struct{}

func (*nopWriter) Write(b []byte) (int, error) { return len(b), nil }

func TestClosedEventWriter(t *testing.T) {
	w, err := keraslike.NewEventWriter(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wantOK(t, "EventWriter.Scalar", func() error { return w.Scalar("loss", 1, 0) })
	wantOK(t, "EventWriter.Close", w.Close)
	wantOK(t, "second EventWriter.Close", w.Close)
	wantErr(t, "EventWriter.Scalar", func() error { return w.Scalar("loss", 1, 1) })
	wantErr(t, "EventWriter.Flush", w.Flush)
}
