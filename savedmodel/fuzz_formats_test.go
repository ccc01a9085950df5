package savedmodel

import (
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gotf/gotf/dtypes"
	"google.golang.org/protobuf/encoding/prototext"
)

// Fuzzers of the parsers that FuzzOpenBundle and FuzzBundleEntries do not
// reach: the checkpoint state file, saved_model.pb/.pbtxt and the
// directory reading around it, fingerprint.pb, and the data shards of a
// bundle. Seeds: files Go writes (added in code) and files Python
// TensorFlow 2.21 wrote (testdata/fuzz/<Fuzzer>/python_*).

// fuzzDir is a directory of this process's own under root, made once:
// inputs run in parallel worker processes, and one directory reused per
// process keeps an input to one file write (the fuzzer runs inputs
// thousands of times when it minimizes one).
func fuzzDir(t *testing.T, root string, setup func(dir string) error) string {
	d := filepath.Join(root, strconv.Itoa(os.Getpid()))
	if _, err := os.Stat(d); err == nil {
		return d
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		if err := setup(d); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// watchdog turns an input that takes over 10 s into a crash with every
// goroutine's stack, which the fuzzer reports with the input: a hang
// otherwise shows as a worker that stops executing, with neither.
func watchdog() (stop func() bool) {
	return time.AfterFunc(10*time.Second, func() {
		buf := make([]byte, 1<<20)
		panic("input still running after 10 s:\n" + string(buf[:runtime.Stack(buf, true)]))
	}).Stop
}

// mustBeError fails on an error that is not this package's *Error.
func mustBeError(t *testing.T, what string, err error) {
	t.Helper()
	var e *Error
	if err != nil && !errors.As(err, &e) {
		t.Fatalf("%s: error of type %T: %v", what, err, err)
	}
}

// FuzzCheckpointState parses arbitrary state files; what parses must
// write back to text that parses to the same state.
func FuzzCheckpointState(f *testing.F) {
	st := &CheckpointState{
		ModelCheckpointPath:          "ckpt-4",
		AllModelCheckpointPaths:      []string{"ckpt-3", "/abs/ckpt-4", "ünï\x01\"quoted\""},
		AllModelCheckpointTimestamps: []float64{1.5e9, 1e-7, math.Inf(1)},
		LastPreservedTimestamp:       1796542651.6146517,
	}
	text, err := st.MarshalText()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(text)
	f.Add([]byte("model_checkpoint_path: 'a' # comment\nfoo: 1.0f; bar: \"x\" 'y'\n"))
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, in []byte) {
		defer watchdog()()
		st, err := ParseCheckpointState(in)
		if err == nil {
			out, err := st.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseCheckpointState(out)
			if err != nil {
				t.Fatalf("our own text does not parse: %v\n%s", err, out)
			}
			out2, _ := again.MarshalText()
			if string(out) != string(out2) {
				t.Fatalf("text changes on a round trip:\n%s\n%s", out, out2)
			}
		}
		// Through the file readers too.
		dir := fuzzDir(t, root, nil)
		if err := os.WriteFile(filepath.Join(dir, CheckpointStateFilename), in, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = ReadCheckpointState(dir)
		mustBeError(t, "ReadCheckpointState", err)
		_, err = LatestCheckpoint(dir)
		mustBeError(t, "LatestCheckpoint", err)
		if m, err := NewCheckpointManager(dir, ManagerOptions{}); err == nil {
			m.Latest()
			m.Checkpoints()
		}
	})
}

// FuzzReadSavedModel feeds arbitrary saved_model.pb (or, with text set,
// saved_model.pbtxt) bytes to the readers of a SavedModel directory that
// also holds a genuine variables bundle: ReadSavedModel, ReadMetaGraph,
// FindMetaGraph and Fingerprint must return an error or a result, never
// panic or hang.
func FuzzReadSavedModel(f *testing.F) {
	sm := testSavedModel()
	b, err := MarshalCanonical(sm)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, false)
	tb, err := prototext.Marshal(sm)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tb, true)
	root := f.TempDir()
	vars := filepath.Join(root, "vars")
	if err := WriteBundle(vars, scalarF32(1), WriteOptions{}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte, text bool) {
		defer watchdog()()
		dir := fuzzDir(t, root, func(dir string) error {
			if err := os.Mkdir(filepath.Join(dir, VariablesDirectory), 0o755); err != nil {
				return err
			}
			for _, p := range [][2]string{{IndexFilename(vars), IndexFilename(VariablesPrefix(dir))}, {DataFilename(vars, 0, 1), DataFilename(VariablesPrefix(dir), 0, 1)}} {
				if err := os.Link(p[0], p[1]); err != nil {
					return err
				}
			}
			return nil
		})
		name, other := SavedModelFilename, SavedModelFilenameText
		if text {
			name, other = other, name
		}
		os.Remove(filepath.Join(dir, other))
		if err := os.WriteFile(filepath.Join(dir, name), in, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSavedModel(dir)
		mustBeError(t, "ReadSavedModel", err)
		if err == nil {
			for _, mg := range got.GetMetaGraphs() {
				FindMetaGraph(got, mg.GetMetaInfoDef().GetTags()...)
			}
		}
		_, err = ReadMetaGraph(dir, TagServe)
		mustBeError(t, "ReadMetaGraph", err)
		if !text {
			fp, err := Fingerprint(dir)
			mustBeError(t, "Fingerprint", err)
			if err == nil {
				Singleprint(fp)
				FingerprintUUID(fp)
			}
		}
	})
}

// FuzzReadFingerprint feeds arbitrary fingerprint.pb bytes to
// ReadFingerprint and what reads the FingerprintDef.
func FuzzReadFingerprint(f *testing.F) {
	root := f.TempDir()
	sm := filepath.Join(root, "sm")
	if err := Write(sm, &Directory{SavedModel: testSavedModel()}); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(sm, FingerprintFilename))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		defer watchdog()()
		dir := fuzzDir(t, root, nil)
		if err := os.WriteFile(filepath.Join(dir, FingerprintFilename), in, 0o644); err != nil {
			t.Fatal(err)
		}
		fp, err := ReadFingerprint(dir)
		mustBeError(t, "ReadFingerprint", err)
		if err == nil {
			Singleprint(fp)
			FingerprintUUID(fp)
		}
	})
}

// FuzzBundleData reads every tensor of a genuine index over arbitrary
// data shard bytes: a tensor that reads must be valid (its checksum
// passed), and nothing may panic or allocate more than the index and the
// file allow.
func FuzzBundleData(f *testing.F) {
	root := f.TempDir()
	rng := rand.New(rand.NewPCG(3, 3))
	ts := map[string]*Tensor{
		"f32":  randTensor(rng, dtypes.Float, 2, 3),
		"str":  randTensor(rng, dtypes.String, 4),
		"one":  {DType: dtypes.String, Strings: [][]byte{make([]byte, 300)}},
		"none": randTensor(rng, dtypes.Int32, 0),
		"part": randTensor(rng, dtypes.Int64, 3, 2),
	}
	seed := filepath.Join(root, "seed")
	if err := WriteBundle(seed, ts, WriteOptions{Partitions: map[string]Partition{"part": {Axis: 0, Parts: 2}}}); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(DataFilename(seed, 0, 1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	index := IndexFilename(seed)
	f.Fuzz(func(t *testing.T, in []byte) {
		defer watchdog()()
		prefix := filepath.Join(fuzzDir(t, root, func(dir string) error {
			return os.Link(index, IndexFilename(filepath.Join(dir, "b")))
		}), "b")
		if err := os.WriteFile(DataFilename(prefix, 0, 1), in, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, opts := range []ReadOptions{{IO: BufferedIO}, {IO: DirectIO}, {}} {
			r, err := OpenBundleWithOptions(prefix, opts)
			if err != nil {
				t.Fatal(err) // the index is genuine
			}
			for _, k := range r.Keys() {
				got, err := r.Read(k)
				mustBeError(t, "Read "+k, err)
				if err == nil {
					if err := got.Validate(); err != nil {
						t.Fatalf("%q: Read returned an invalid tensor: %v", k, err)
					}
				}
				mustBeError(t, "ReadInto "+k, r.ReadInto(k, io.Discard))
			}
			r.Close()
		}
	})
}
