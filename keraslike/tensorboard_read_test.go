package keraslike

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	spb "github.com/wamuir/graft/tensorflow/core/framework/summary_go_proto"
	epb "github.com/wamuir/graft/tensorflow/core/util/event_go_proto"
	"google.golang.org/protobuf/proto"
)

// scalarOf is the value of a scalar summary, as TF1's simple_value or as
// TF2's tf.summary.scalar writes it (a float32 scalar tensor).
func scalarOf(t *testing.T, v *spb.Summary_Value) float64 {
	tn := v.GetTensor()
	if tn == nil {
		return float64(v.GetSimpleValue())
	}
	if fs := tn.GetFloatVal(); len(fs) == 1 {
		return float64(fs[0])
	}
	b := tn.GetTensorContent()
	require.Len(t, b, 4, "a float32 scalar's bytes")
	return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
}

// Event files written by Python (TF2 tf.summary.write: the scalar
// summaries of tf.summary.scalar, which needs TensorBoard installed) and
// by Go read back in Go as TensorFlow's summary_iterator reads them.
func TestReadEvents(t *testing.T) {
	dir := t.TempDir()
	ref := interop.Python(t, `
import os
d = inputs["dir"].item().decode()
w = tf.summary.create_file_writer(os.path.join(d, "tf2"))
rng = np.random.default_rng(4)
vals = rng.normal(size=7).astype(np.float32)
with w.as_default():
    for i, v in enumerate(vals):
        tf.summary.write("loss" if i % 2 else "accuracy", tf.constant(v), step=10 * i)
w.close()
outputs["vals"] = vals.astype(np.float64)
outputs["file"] = np.array([f for f in os.listdir(os.path.join(d, "tf2"))][0].encode())
`, map[string]*tfgo.Tensor{"dir": strTensor(t, dir)})
	want := floats64(t, ref["vals"])
	name, err := ref["file"].Strings()
	require.NoError(t, err)
	path := filepath.Join(dir, "tf2", string(name[0]))

	var got []float64
	var steps []int64
	var version string
	require.NoError(t, ReadEvents(path, func(e *epb.Event) error {
		if v := e.GetFileVersion(); v != "" {
			version = v
		}
		for _, v := range e.GetSummary().GetValue() {
			got = append(got, scalarOf(t, v))
			steps = append(steps, e.Step)
		}
		return nil
	}))
	assert.Equal(t, "brain.Event:2", version)
	testutil.AllClose(t, "tf.summary scalars", want, got, 0, 0)
	for i, s := range steps {
		assert.Equal(t, int64(10*i), s)
	}

	// Go's writer, read back; a torn last record (a writer still
	// appending) ends the events; a flipped byte is an error naming the file.
	w, err := NewEventWriter(filepath.Join(dir, "go"))
	require.NoError(t, err)
	for i, v := range want {
		require.NoError(t, w.Scalar("loss", v, int64(i)))
	}
	require.NoError(t, w.Close())
	var back []float64
	require.NoError(t, ReadEvents(w.Path(), func(e *epb.Event) error {
		for _, v := range e.GetSummary().GetValue() {
			back = append(back, float64(v.GetSimpleValue()))
		}
		return nil
	}))
	for i := range want {
		assert.Equal(t, float64(float32(want[i])), back[i])
	}
	b, err := os.ReadFile(w.Path())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(w.Path(), b[:len(b)-3], 0o644))
	n := 0
	require.NoError(t, ReadEvents(w.Path(), func(*epb.Event) error { n++; return nil }))
	assert.Equal(t, len(want), n, "the version event and all but the torn last scalar")
	b[len(b)/2] ^= 1
	require.NoError(t, os.WriteFile(w.Path(), b, 0o644))
	err = ReadEvents(w.Path(), func(*epb.Event) error { return nil })
	require.ErrorIs(t, err, savedmodel.ErrCorruptRecord)
	assert.Contains(t, err.Error(), w.Path())
}

// FuzzReadEvents: any event file gives events or an error, never a panic.
func FuzzReadEvents(f *testing.F) {
	var seed []byte
	for _, e := range []*epb.Event{
		{What: &epb.Event_FileVersion{FileVersion: "brain.Event:2"}},
		{Step: 3, What: &epb.Event_GraphDef{GraphDef: []byte{1, 2, 3}}},
	} {
		b, err := proto.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		seed = savedmodel.AppendRecord(seed, b)
	}
	f.Add(seed)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "events.out.tfevents.fuzz")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_ = ReadEvents(p, func(*epb.Event) error { return nil })
	})
}
