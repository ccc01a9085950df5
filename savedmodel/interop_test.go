package savedmodel

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gotf/gotf/dtypes"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	fcpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// sameValue reports how a Go tensor differs from a Python value ("" if
// equal: same shape and the same bytes).
func sameValue(t *Tensor, v pyValue) string {
	shape := t.Shape
	if shape == nil {
		shape = []int64{}
	}
	if v.Shape == nil {
		v.Shape = []int64{}
	}
	if !slices.Equal(shape, v.Shape) {
		return "shape " + fmtShape(shape) + " vs Python's " + fmtShape(v.Shape)
	}
	if t.DType == dtypes.String {
		if len(t.Strings) != len(v.Strings) {
			return "string count differs"
		}
		for i := range t.Strings {
			if !bytes.Equal(t.Strings[i], v.Strings[i]) {
				return "string " + itoa(i) + " differs"
			}
		}
		return ""
	}
	if !bytes.Equal(t.Data, v.Data) {
		return "bytes differ"
	}
	return ""
}

func fmtShape(s []int64) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// TestPythonReadsGoCheckpoints: tf.train.load_checkpoint and
// tf.train.list_variables read every Go-written checkpoint (one shard,
// three shards, a snappy multi-block index, partitioned tensors, the
// streaming writer) with the names, shapes, dtypes and values Go wrote.
func TestPythonReadsGoCheckpoints(t *testing.T) {
	out := python(t)
	t.Logf("the Python exchange took %v", interop.took)
	for _, name := range sortedNames(interop.goCkpts) {
		t.Run(name, func(t *testing.T) {
			got := out.Go[name]
			if got == nil {
				t.Fatal("no result from Python")
			}
			if got.Error != "" {
				t.Fatalf("Python could not read the checkpoint:\n%s", got.Error)
			}
			want := interop.goValues[name]
			var listed []string
			for _, v := range got.Vars {
				var n string
				var shape []int64
				if err := json.Unmarshal(v[0], &n); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(v[1], &shape); err != nil {
					t.Fatal(err)
				}
				listed = append(listed, n)
				if w, ok := want[n]; ok && !slices.Equal(shape, w.Shape) && !(len(shape) == 0 && len(w.Shape) == 0) {
					t.Errorf("%s: list_variables shape %v, Go wrote %v", n, shape, w.Shape)
				}
			}
			if wn := sortedNames(want); !slices.Equal(listed, wn) {
				t.Fatalf("list_variables lists %q\nGo wrote %q", listed, wn)
			}
			for _, n := range listed {
				w := want[n]
				if dt := got.DTypes[n]; dt != int32(w.DType) {
					t.Errorf("%s: Python's dtype %v, Go wrote %v", n, tpb.DataType(dt), w.DType)
				}
				if d := sameValue(w, got.Values[n]); d != "" {
					t.Errorf("%s (%v): Python read a different value: %s", n, w.DType, d)
				}
			}
			// And Go reads its own checkpoint back the same.
			r, err := OpenBundle(interop.goCkpts[name])
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if !slices.Equal(r.Names(), listed) {
				t.Errorf("Go's Names %q, Python's %q", r.Names(), listed)
			}
			for _, n := range listed {
				g, err := r.Read(n)
				if err != nil {
					t.Fatal(err)
				}
				if d := sameValue(g, got.Values[n]); d != "" {
					t.Errorf("%s: Go read a value Python did not: %s", n, d)
				}
			}
		})
	}
	if n := len(out.Go["snappy"].Vars); n != 300 {
		t.Errorf("snappy checkpoint lists %d tensors, want 300", n)
	}
}

// TestPythonRestoresGoPartitioned: a tf.compat.v1 Saver restores Go's
// partitioned tensors into partitioned variables, looking their slices up
// by key (same partitioning) or assembling them (another partitioning).
func TestPythonRestoresGoPartitioned(t *testing.T) {
	out := python(t)
	if out.GoPart == nil {
		t.Fatalf("Python could not restore: %v", out)
	}
	want := interop.goValues["sliced"]
	for _, n := range []string{"part0", "part1", "p3d"} {
		if d := sameValue(want[n], out.GoPart[n]); d != "" {
			t.Errorf("%s: %s", n, d)
		}
	}
	// The sliced checkpoint really is partitioned.
	r, err := OpenBundle(interop.goCkpts["sliced"])
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e, err := r.Entry("part0")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Slices) != 3 {
		t.Errorf("part0 has %d slices, want 3", len(e.Slices))
	}
	if e, _ := r.Entry("single"); len(e.Slices) != 0 {
		t.Errorf("a one-part partition should be stored whole, has slices %v", e.Slices)
	}
	if got, want := len(r.Keys())-len(r.Names()), 3+2+3; got != want {
		t.Errorf("%d slice keys, want %d", got, want)
	}
}

// TestGoReadsPythonSaver: Go reads the name-based checkpoints of a
// tf.compat.v1.train.Saver in graph mode (one shard, and two shards from
// two CPU devices), partitioned variables assembled whole, and the Saver's
// checkpoint state file.
func TestGoReadsPythonSaver(t *testing.T) {
	out := python(t)
	for _, name := range []string{"saver", "saver_sharded"} {
		t.Run(name, func(t *testing.T) {
			w := out.Py[name]
			r, err := OpenBundle(w.Prefix)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := int(r.Header().GetNumShards()); got != w.NumShards {
				t.Errorf("header has %d shards, the directory %d", got, w.NumShards)
			}
			if name == "saver_sharded" && w.NumShards < 2 {
				t.Errorf("the sharded Saver wrote %d shard(s)", w.NumShards)
			}
			if got, want := r.Names(), sortedNames(w.Values); !slices.Equal(got, want) {
				t.Errorf("Names %q, Python saved %q", got, want)
			}
			for _, n := range sortedNames(w.Values) {
				g, err := r.Read(n)
				if err != nil {
					t.Fatal(err)
				}
				if d := sameValue(g, w.Values[n]); d != "" {
					t.Errorf("%s (%v): %s", n, g.DType, d)
				}
				if g.DType != dtypes.String {
					var buf bytes.Buffer
					if err := r.ReadInto(n, &buf); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(buf.Bytes(), g.Data) {
						t.Errorf("%s: ReadInto streamed other bytes than Read", n)
					}
				}
			}
			for _, n := range []string{"part", "part_axis1"} {
				e, err := r.Entry(n)
				if err != nil {
					t.Fatal(err)
				}
				if len(e.Slices) < 2 {
					t.Errorf("%s: Python saved %d slices", n, len(e.Slices))
				}
			}
			latest, err := LatestCheckpoint(filepath.Dir(w.Prefix))
			if err != nil {
				t.Fatal(err)
			}
			if latest != w.Prefix {
				t.Errorf("LatestCheckpoint %q, Saver saved %q", latest, w.Prefix)
			}
		})
	}
}

// TestGoReadsPythonObjectCheckpoint: Go reads a tf.train.Checkpoint with
// its object graph, names like model/layer_with_weights-0/kernel/... and a
// Keras 3 model's variables.
func TestGoReadsPythonObjectCheckpoint(t *testing.T) {
	w := python(t).Py["object"]
	r, err := OpenBundle(w.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, n := range sortedNames(w.Values) {
		g, err := r.Read(n)
		if err != nil {
			t.Fatal(err)
		}
		if d := sameValue(g, w.Values[n]); d != "" {
			t.Errorf("%s: %s", n, d)
		}
	}
	var names []string
	for _, n := range r.Names() {
		if n != ObjectGraphKey {
			names = append(names, n)
		}
	}
	if want := sortedNames(w.Read); !slices.Equal(names, want) {
		t.Errorf("Names %q, Python lists %q", names, want)
	}
	for _, n := range names {
		g, err := r.Read(n)
		if err != nil {
			t.Fatal(err)
		}
		if d := sameValue(g, w.Read[n]); d != "" {
			t.Errorf("%s: %s", n, d)
		}
	}
	og, err := r.ObjectGraph()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(og, w.OG) {
		t.Fatal("object graph bytes differ from Python's")
	}
	graph := &fcpb.TrackableObjectGraph{}
	if err := proto.Unmarshal(og, graph); err != nil {
		t.Fatal(err)
	}
	if len(graph.GetNodes()) != w.OGNodes {
		t.Errorf("%d nodes, Python decoded %d", len(graph.GetNodes()), w.OGNodes)
	}
	var root, keys []string
	for _, c := range graph.GetNodes()[0].GetChildren() {
		root = append(root, c.GetLocalName())
	}
	for _, n := range graph.GetNodes() {
		for _, a := range n.GetAttributes() {
			keys = append(keys, a.GetCheckpointKey())
		}
	}
	sort.Strings(keys)
	if !slices.Equal(root, w.OGRoot) || !slices.Equal(keys, w.OGKeys) {
		t.Errorf("root children %q keys %q; Python: %q %q", root, keys, w.OGRoot, w.OGKeys)
	}
	if !slices.Equal(keys, names) {
		t.Errorf("object graph keys %q are not the bundle's tensors %q", keys, names)
	}
}

// TestIndexMatchesPython: for the variables of Python's one-shard Saver
// checkpoint (partitioned ones included), Go's WriteBundle writes an index
// with the same keys (slice keys included), dtypes, shapes, slices, sizes
// and checksums, decoded entry by entry; and byte for byte the same .index
// and .data files.
func TestIndexMatchesPython(t *testing.T) {
	w := python(t).Py["saver"]
	pr, err := OpenBundle(w.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	tensors := map[string]*Tensor{}
	for _, n := range pr.Names() {
		if tensors[n], err = pr.Read(n); err != nil {
			t.Fatal(err)
		}
	}
	prefix := filepath.Join(t.TempDir(), "model.ckpt")
	err = WriteBundle(prefix, tensors, WriteOptions{Partitions: map[string]Partition{
		"part": {Axis: 0, Parts: 3}, "part_axis1": {Axis: 1, Parts: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	gr, err := OpenBundle(prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer gr.Close()
	if !slices.Equal(gr.Keys(), pr.Keys()) {
		t.Fatalf("keys differ:\nGo     %q\nPython %q", gr.Keys(), pr.Keys())
	}
	if !proto.Equal(gr.Header(), pr.Header()) {
		t.Errorf("header %v, Python's %v", gr.Header(), pr.Header())
	}
	for _, k := range pr.Keys() {
		ge, _ := gr.EntryProto(k)
		pe, _ := pr.EntryProto(k)
		// Offsets depend on the order the tensors were written in.
		ge.Offset, pe.Offset = 0, 0
		if !proto.Equal(ge, pe) {
			t.Errorf("entry %q:\nGo     %v\nPython %v", k, ge, pe)
		}
	}
	gi, _ := os.ReadFile(IndexFilename(prefix))
	pi, _ := os.ReadFile(IndexFilename(w.Prefix))
	gd, _ := os.ReadFile(DataFilename(prefix, 0, 1))
	pd, _ := os.ReadFile(DataFilename(w.Prefix, 0, 1))
	// TensorFlow writes the tensors in key order, as WriteBundle does for
	// one shard, so the files come out identical.
	if !bytes.Equal(gd, pd) {
		t.Errorf("data files differ (Go %d bytes, Python %d)", len(gd), len(pd))
	}
	if !bytes.Equal(gi, pi) {
		t.Errorf("index files differ (Go %d bytes, Python %d)", len(gi), len(pi))
	}
}

// TestCheckpointStateInterop: Python parses the checkpoint state files Go
// writes (odd characters included, and Python prints the plain one
// identically), and Go reads the ones a Saver and a CheckpointManager wrote.
func TestCheckpointStateInterop(t *testing.T) {
	out := python(t)
	for name, st := range interop.states {
		got := out.GoState[name]
		if got.Error != "" {
			t.Fatalf("%s: Python failed: %s", name, got.Error)
		}
		if got.Model != st.ModelCheckpointPath || !slices.Equal(got.All, st.AllModelCheckpointPaths) ||
			!slices.Equal(got.TS, st.AllModelCheckpointTimestamps) || got.Last != st.LastPreservedTimestamp {
			t.Errorf("%s: Python parsed %+v, Go wrote %+v", name, got, st)
		}
		text, _ := st.MarshalText()
		if name == "plain" && got.Text != string(text) {
			t.Errorf("Python prints\n%s\nGo wrote\n%s", got.Text, text)
		}
		// Go parses what Python prints back to the same state.
		back, err := ParseCheckpointState([]byte(got.Text))
		if err != nil {
			t.Fatal(err)
		}
		if back.ModelCheckpointPath != st.ModelCheckpointPath || !slices.Equal(back.AllModelCheckpointPaths, st.AllModelCheckpointPaths) {
			t.Errorf("%s: Go parsed Python's text to %+v", name, back)
		}
	}
	plain := out.GoState["plain"]
	dir := filepath.Join(interop.root, "gostate", "plain")
	if plain.Latest == nil || *plain.Latest != filepath.Join(dir, "ckpt-2") {
		t.Errorf("tf.train.latest_checkpoint = %v", plain.Latest)
	}
	if latest, err := LatestCheckpoint(dir); err != nil || latest != filepath.Join(dir, "ckpt-2") {
		t.Errorf("LatestCheckpoint = %q, %v", latest, err)
	}
	if _, err := LatestCheckpoint(filepath.Join(interop.root, "gostate", "odd")); err == nil {
		t.Error("LatestCheckpoint of a state whose checkpoint does not exist succeeded")
	}

	for _, name := range []string{"saver", "manager"} {
		w := out.Py[name]
		dir := w.Dir
		if dir == "" {
			dir = filepath.Dir(w.Prefix)
		}
		st, err := ReadCheckpointState(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.ModelCheckpointPath != w.State.AbsModel || !slices.Equal(st.AllModelCheckpointPaths, w.State.AbsAll) ||
			!slices.Equal(st.AllModelCheckpointTimestamps, w.State.TS) || st.LastPreservedTimestamp != w.State.Last {
			t.Errorf("%s: Go read %+v, Python %+v", name, st, w.State)
		}
		raw, _ := os.ReadFile(filepath.Join(dir, CheckpointStateFilename))
		parsed, err := ParseCheckpointState(raw)
		if err != nil {
			t.Fatal(err)
		}
		if text, _ := parsed.MarshalText(); string(text) != string(raw) {
			t.Errorf("%s: Go rewrites the state file as\n%s\nPython wrote\n%s", name, text, raw)
		}
		if name == "manager" {
			if len(st.AllModelCheckpointPaths) != 2 || !strings.HasSuffix(st.ModelCheckpointPath, "ckpt-3") {
				t.Errorf("manager state %+v", st)
			}
			latest, err := LatestCheckpoint(dir)
			if err != nil {
				t.Fatal(err)
			}
			r, err := OpenBundle(latest)
			if err != nil {
				t.Fatal(err)
			}
			for n, v := range w.Values {
				g, err := r.Read(n)
				if err != nil {
					t.Fatal(err)
				}
				if d := sameValue(g, v); d != "" {
					t.Errorf("%s: %s", n, d)
				}
			}
			r.Close()
		}
	}
}
