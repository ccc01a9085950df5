package keraslike

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/gotf/gotf/internal/killtest"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
)

// The kill tests of keraslike's writers: a child saves in a directory over
// and over (killtest.Child), the parent kills it and loads what is left.
const killWriterEnv = "GOTF_KILLTEST_KERAS" // the writer the child uses

// killModel is the model of the kill tests: 10 MiB of weights, so that a
// save takes a while and kills land inside it.
func killModel(t *testing.T) *Model {
	t.Helper()
	m := NewSequential("kill", InputSpec{Shape: []int64{1024}},
		NewDense(1024, DenseOptions{Name: "d1"}),
		NewDense(1024, DenseOptions{Name: "d2"}),
		NewDense(512, DenseOptions{Name: "d3"}))
	t.Cleanup(func() { m.Close() })
	if err := m.Build(); err != nil {
		t.Fatal(err)
	}
	return m
}

// setGen gives the model's weights generation gen's values.
func setGen(m *Model, gen int) error {
	var vals []*tfgo.Tensor
	defer func() { closeTensors(vals) }()
	for k, w := range m.Weights() {
		shape := w.Shape()
		n := 1
		for _, d := range shape {
			n *= int(d)
		}
		v := killtest.Values(gen, k, n)
		t, err := tfgo.NewTensorFromBytes(tfgo.Float, shape, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*n))
		if err != nil {
			return err
		}
		vals = append(vals, t)
	}
	return m.SetWeights(vals)
}

// modelGen returns the generation the model's weights hold.
func modelGen(m *Model) (int, error) {
	vals, err := m.GetWeights()
	if err != nil {
		return 0, err
	}
	defer closeTensors(vals)
	ws := make([][]float32, len(vals))
	for i, v := range vals {
		if ws[i], err = tfgo.Float32s(v); err != nil {
			return 0, err
		}
	}
	return killtest.GenOf(ws)
}

// killWriters are the writers under test: where each saves in dir, how
// the child saves, and how the parent loads into m.
var killWriters = map[string]struct {
	file string // the saved file or prefix
	save func(m *Model, c *ModelCheckpoint, path string, gen int) error
	load func(m *Model, path string) error
}{
	"keras": {"m.keras",
		func(m *Model, _ *ModelCheckpoint, path string, _ int) error { return m.SaveKeras(path) },
		func(m *Model, path string) error {
			l, err := LoadKerasModel(path, LoadOptions{})
			if err != nil {
				return err
			}
			defer l.Close()
			vals, err := l.GetWeights()
			if err != nil {
				return err
			}
			defer closeTensors(vals)
			return m.SetWeights(vals)
		}},
	"weights.h5": {"m.weights.h5",
		func(m *Model, _ *ModelCheckpoint, path string, _ int) error { return m.SaveWeightsH5(path) },
		(*Model).LoadWeightsH5},
	"legacy.h5": {"m.h5",
		func(m *Model, _ *ModelCheckpoint, path string, _ int) error { return m.SaveWeightsLegacyH5(path) },
		(*Model).LoadWeightsLegacyH5},
	"checkpoint": {"ckpt",
		func(m *Model, _ *ModelCheckpoint, path string, _ int) error {
			return m.SaveCheckpoint(path, CheckpointOptions{})
		},
		(*Model).LoadCheckpoint},
	// ModelCheckpoint at every epoch end, one prefix per epoch
	// ("model-{epoch}"), keeping two; the latest is the state file's.
	"modelcheckpoint": {"model-{epoch}",
		func(m *Model, c *ModelCheckpoint, _ string, gen int) error {
			c.OnEpochBegin(m, gen)
			return c.OnEpochEnd(m, gen, Logs{})
		},
		func(m *Model, dir string) error {
			prefix, err := savedmodel.LatestCheckpoint(dir)
			if err != nil {
				return err
			}
			return m.LoadCheckpoint(prefix)
		}},
}

func TestKerasKillChild(t *testing.T) {
	killtest.Child(t, func(dir string) func(int) error {
		kind := os.Getenv(killWriterEnv)
		w := killWriters[kind]
		m := killModel(t)
		c := &ModelCheckpoint{Path: filepath.Join(dir, w.file), MaxToKeep: 2}
		return func(gen int) error {
			if err := setGen(m, gen); err != nil {
				return err
			}
			return w.save(m, c, filepath.Join(dir, w.file), gen)
		}
	})
}

func kerasKillWriter(t *testing.T, kind string) killtest.Writer {
	w := killWriters[kind]
	m := killModel(t)
	return killtest.Writer{
		Child: "TestKerasKillChild",
		Env:   []string{killWriterEnv + "=" + kind},
		Load: func(dir string) (int, bool, error) {
			path := filepath.Join(dir, w.file)
			switch kind {
			case "checkpoint":
				if _, err := os.Stat(path + ".index"); os.IsNotExist(err) {
					return 0, false, nil
				}
			case "modelcheckpoint":
				path = dir
				if _, err := os.Stat(filepath.Join(dir, "checkpoint")); os.IsNotExist(err) {
					return 0, false, nil
				}
			default:
				if _, err := os.Stat(path); os.IsNotExist(err) {
					return 0, false, nil
				}
			}
			if err := w.load(m, path); err != nil {
				return 0, true, err
			}
			gen, err := modelGen(m)
			return gen, true, err
		},
		Own: func(name string) bool {
			switch kind {
			case "checkpoint":
				return name == "ckpt.index" || strings.HasPrefix(name, "ckpt.data-") && !strings.Contains(name, "tempstate")
			case "modelcheckpoint":
				return name == "checkpoint" || strings.HasPrefix(name, "model-") && !strings.Contains(name, "tempstate")
			}
			return name == w.file
		},
	}
}

// Each writer killed at random times (GOTF_KILLS of them, default 3): the
// latest artifact always loads and holds exactly the generation saved
// last or the one being saved, and a completed save leaves no temporaries.
func TestKerasWritersSurviveKills(t *testing.T) {
	for _, kind := range []string{"keras", "weights.h5", "legacy.h5", "checkpoint", "modelcheckpoint"} {
		t.Run(kind, func(t *testing.T) {
			killtest.Run(t, kerasKillWriter(t, kind), killtest.Kills(t, 3))
		})
	}
}

// Each writer killed the moment its first temporary appears next to the
// target: the next save removes it. The old SaveKeras, SaveWeightsH5 and
// SaveWeightsLegacyH5 left hidden temporaries (.m.keras.weights*.h5,
// .m.h5.tmp*) that no later save removed. SaveCheckpoint is killed the
// moment a data file appears under its final name instead: the previous
// checkpoint must still load (with the old SaveCheckpoint it did not).
func TestKerasWritersKilledAtTemporary(t *testing.T) {
	hidden := func(name string) bool { return strings.HasPrefix(name, ".") }
	dataOf := func(prefix string) func(string) bool {
		return func(name string) bool {
			return strings.HasPrefix(name, prefix) && strings.Contains(name, ".data-") && !strings.Contains(name, "tempstate")
		}
	}
	for kind, trigger := range map[string]func(string) bool{
		"keras": hidden, "weights.h5": hidden, "legacy.h5": hidden,
		"checkpoint": dataOf("ckpt."),
		// Its temporary, or its data file if it has no temporary (the old
		// ModelCheckpoint had none next to the prefix).
		"modelcheckpoint": func(name string) bool { return hidden(name) || dataOf("model-")(name) },
	} {
		t.Run(kind, func(t *testing.T) {
			w := kerasKillWriter(t, kind)
			w.Trigger = trigger
			killtest.Run(t, w, killtest.Kills(t, 3))
		})
	}
}

// ModelCheckpoint's saves go to a new prefix each epoch, so each removes
// the dead temporaries of every prefix its template makes, and only those.
func TestModelCheckpointRemovesStaleOfTemplate(t *testing.T) {
	dir := t.TempDir()
	c := &ModelCheckpoint{Path: filepath.Join(dir, "model-{epoch:02d}-{val_loss:.2f}")}
	stale := []string{".model-03-0.25.tmp-123", ".model-04-1.50.tmp-9"}
	keep := []string{".model.tmp-1", ".other-03-0.25.tmp-5", ".model-03-0.25.tmp-x", "model-03-0.25.index"}
	for _, n := range append(append([]string{}, stale...), keep...) {
		if err := os.Mkdir(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.removeStale()
	got := killtest.DirNames(t, dir)
	want := append([]string{}, keep...)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after removeStale: %v, want %v", got, want)
	}
}
