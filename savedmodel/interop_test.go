package savedmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gotf/gotf/dtypes"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	fcpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
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
	if out.GoPartError != "" {
		t.Fatalf("Python could not restore Go's partitioned tensors:\n%s", out.GoPartError)
	}
	if out.GoPart == nil {
		t.Fatal("Python reported neither the restored tensors nor an error")
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

// TestSavedModelBytesMatchTensorFlow checks saved_model.pb against what
// TensorFlow writes for the same proto. TensorFlow writes it from Python,
// with protobuf's (upb's) SerializeToString(deterministic=True), while
// MarshalCanonical follows C++'s deterministic serialization (which the
// fingerprint hashes). The two agree but for the order of map entries:
// upb puts integer keys in descending order and a string key after the
// keys it is a prefix of ("Tidx" before "T"). So:
//
//   - Python parses each Go-written saved_model.pb and re-serializes it: the
//     same bytes for a model without such maps; for one with them, the same
//     bytes once the map entries are put in C++'s order (cppMapOrder).
//   - Go parses the files TensorFlow wrote (the TF1 builder, and
//     tf.saved_model.save with a function library) and MarshalCanonical
//     gives back TensorFlow's bytes, once in C++'s map order.
func TestSavedModelBytesMatchTensorFlow(t *testing.T) {
	out := python(t)
	smd := (&fcpb.SavedModel{}).ProtoReflect().Descriptor()
	for _, name := range []string{"plain", "maps"} {
		t.Run("go_"+name, func(t *testing.T) {
			py := out.GoSM[name]
			if py == nil || py.Error != "" {
				t.Fatalf("Python could not re-serialize Go's saved_model.pb: %+v", py)
			}
			raw, err := os.ReadFile(filepath.Join(interop.goSM[name], SavedModelFilename))
			if err != nil {
				t.Fatal(err)
			}
			if py.MetaGraphs != 1 {
				t.Errorf("Python parsed %d meta graphs", py.MetaGraphs)
			}
			ordered, moved, err := cppMapOrder(py.Bytes, smd)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ordered, raw) {
				t.Fatalf("Go wrote %d bytes; Python re-serializes them to %d other bytes, even in C++'s map order (first difference at %d)",
					len(raw), len(py.Bytes), firstDiff(raw, ordered))
			}
			switch {
			case name == "plain" && !bytes.Equal(py.Bytes, raw):
				t.Errorf("Python re-serializes the plain model otherwise (%d maps in another order)", moved)
			case name == "maps" && moved == 0:
				t.Logf("Python's writer now orders the maps as C++ does: the doc comment of MarshalCanonical can say so")
			}
			t.Logf("%d bytes: Python's serialization is Go's, %d maps in another order", len(raw), moved)
		})
	}
	for _, name := range []string{"tf1", "tf2"} {
		t.Run(name, func(t *testing.T) {
			py := out.PySM[name]
			if py == nil || py.Error != "" {
				t.Fatalf("Python could not write the SavedModel: %+v", py)
			}
			raw, err := os.ReadFile(filepath.Join(py.Dir, SavedModelFilename))
			if err != nil {
				t.Fatal(err)
			}
			// TensorFlow's file is its own deterministic serialization.
			if !bytes.Equal(raw, py.Bytes) {
				t.Fatalf("TensorFlow's saved_model.pb (%d bytes) is not SerializeToString(deterministic=True) of itself (%d)", len(raw), len(py.Bytes))
			}
			sm, err := ReadSavedModel(py.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(sm.GetMetaGraphs()) != py.MetaGraphs {
				t.Errorf("Go reads %d meta graphs, Python %d", len(sm.GetMetaGraphs()), py.MetaGraphs)
			}
			canon, err := MarshalCanonical(sm)
			if err != nil {
				t.Fatal(err)
			}
			ordered, moved, err := cppMapOrder(raw, smd)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(canon, ordered) {
				t.Fatalf("TensorFlow wrote %d bytes, MarshalCanonical of what Go read gives %d, other even in C++'s map order (first difference at %d)",
					len(raw), len(canon), firstDiff(ordered, canon))
			}
			if name == "tf1" && !bytes.Equal(canon, raw) {
				t.Errorf("the TF1 model has no maps upb orders otherwise, yet the bytes differ (%d maps moved)", moved)
			}
			t.Logf("%d bytes: MarshalCanonical gives TensorFlow's, %d maps in another order", len(raw), moved)
		})
	}
}

// cppMapOrder puts the entries of every map in the serialized message b
// (of descriptor md), at every depth, in the order of C++'s deterministic
// serialization: by key, integers by value and strings bytewise. Nothing
// else changes. It returns the new bytes and how many maps it re-ordered.
func cppMapOrder(b []byte, md protoreflect.MessageDescriptor) ([]byte, int, error) {
	var out []byte
	moved := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, 0, protowire.ParseError(n)
		}
		fd := md.Fields().ByNumber(num)
		if fd == nil || typ != protowire.BytesType || fd.Kind() != protoreflect.MessageKind {
			m := protowire.ConsumeFieldValue(num, typ, b[n:])
			if m < 0 {
				return nil, 0, protowire.ParseError(m)
			}
			out = append(out, b[:n+m]...)
			b = b[n+m:]
			continue
		}
		// A submessage, or a run of entries of one map.
		type entry struct {
			key  protoreflect.MapKey
			data []byte
		}
		var run []entry
		for len(b) > 0 {
			num2, typ2, n2 := protowire.ConsumeTag(b)
			if num2 != num || typ2 != protowire.BytesType || len(run) > 0 && !fd.IsMap() {
				break
			}
			v, m := protowire.ConsumeBytes(b[n2:])
			if m < 0 {
				return nil, 0, protowire.ParseError(m)
			}
			data, k, err := cppMapOrder(v, fd.Message())
			if err != nil {
				return nil, 0, err
			}
			moved += k
			e := entry{data: data}
			if fd.IsMap() {
				msg := dynamicpb.NewMessage(fd.Message())
				if err := (proto.UnmarshalOptions{}).Unmarshal(data, msg); err != nil {
					return nil, 0, err
				}
				e.key = msg.Get(fd.MapKey()).MapKey()
			}
			run = append(run, e)
			b = b[n2+m:]
			if !fd.IsMap() {
				break
			}
		}
		less := func(a, c protoreflect.MapKey) int {
			switch fd.MapKey().Kind() {
			case protoreflect.StringKind:
				return strings.Compare(a.String(), c.String())
			case protoreflect.BoolKind:
				return cmpBool(a.Bool(), c.Bool())
			case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
				return cmpOrdered(a.Uint(), c.Uint())
			default:
				return cmpOrdered(a.Int(), c.Int())
			}
		}
		if fd.IsMap() && !slices.IsSortedFunc(run, func(a, c entry) int { return less(a.key, c.key) }) {
			slices.SortStableFunc(run, func(a, c entry) int { return less(a.key, c.key) })
			moved++
		}
		for _, e := range run {
			out = protowire.AppendTag(out, num, protowire.BytesType)
			out = protowire.AppendBytes(out, e.data)
		}
	}
	return out, moved, nil
}

func cmpOrdered[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// TestCppMapOrder: cppMapOrder turns upb's order of map entries (integer
// keys descending, a prefix after its extensions) into MarshalCanonical's,
// at depth, and leaves a message without maps as it is.
func TestCppMapOrder(t *testing.T) {
	sm := mapsSavedModel()
	canon, err := MarshalCanonical(sm)
	if err != nil {
		t.Fatal(err)
	}
	smd := sm.ProtoReflect().Descriptor()
	same, moved, err := cppMapOrder(canon, smd)
	if err != nil || moved != 0 || !bytes.Equal(same, canon) {
		t.Fatalf("canonical bytes changed: %d maps moved, %v", moved, err)
	}
	// Reverse every map: each is then out of order, and put back.
	rev, err := reverseMaps(canon, smd)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(rev, canon) {
		t.Fatal("reversing the maps changed nothing")
	}
	back, moved, err := cppMapOrder(rev, smd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, canon) {
		t.Fatalf("cppMapOrder did not restore the canonical bytes (first difference at %d)", firstDiff(back, canon))
	}
	// signature_def, the node's attr, arg_attr and each ArgAttrs' attr,
	// resource_arg_unique_id, ret.
	if moved < 6 {
		t.Errorf("%d maps moved, want at least 6", moved)
	}
}

// reverseMaps reverses the order of the entries of every map (a test of
// cppMapOrder).
func reverseMaps(b []byte, md protoreflect.MessageDescriptor) ([]byte, error) {
	var out []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if n < 0 || m < 0 {
			return nil, errors.New("bad wire data")
		}
		fd := md.Fields().ByNumber(num)
		if fd == nil || typ != protowire.BytesType || fd.Kind() != protoreflect.MessageKind {
			out = append(out, b[:n+m]...)
			b = b[n+m:]
			continue
		}
		var run [][]byte
		for len(b) > 0 {
			num2, typ2, n2 := protowire.ConsumeTag(b)
			if num2 != num || typ2 != protowire.BytesType || len(run) > 0 && !fd.IsMap() {
				break
			}
			v, m2 := protowire.ConsumeBytes(b[n2:])
			sub, err := reverseMaps(v, fd.Message())
			if err != nil {
				return nil, err
			}
			run = append(run, sub)
			b = b[n2+m2:]
		}
		if fd.IsMap() {
			slices.Reverse(run)
		}
		for _, e := range run {
			out = protowire.AppendTag(out, num, protowire.BytesType)
			out = protowire.AppendBytes(out, e)
		}
	}
	return out, nil
}

// firstDiff is the first index where a and b differ (len of the shorter
// if one is a prefix of the other).
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
