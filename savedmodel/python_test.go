package savedmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gotf/gotf/dtypes"
	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	fnpb "github.com/wamuir/graft/tensorflow/core/framework/function_go_proto"
	ndpb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	opdefpb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// The interop tests compare with Python TensorFlow in the same run. Python
// with TensorFlow takes seconds to start, so all the Python work of the
// package happens in ONE invocation (pyOnce): Go first writes its
// checkpoints, then one Python process reads them, writes its own
// checkpoints and dumps every value it read or wrote to JSON, and the tests
// compare. Nothing expected is typed in by hand: Go compares what Python
// read with what Go wrote, and what Go reads with what Python wrote.

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild() // a child process of TestCrashWhileWriting
		return
	}
	code := m.Run()
	if interop.root != "" {
		os.RemoveAll(interop.root)
	}
	os.Exit(code)
}

// pyValue is a tensor value exchanged with Python: raw little-endian bytes
// (base64 in JSON) or the bytes of each string.
type pyValue struct {
	Shape   []int64  `json:"shape"`
	Data    []byte   `json:"data"`
	Strings [][]byte `json:"strings"`
}

// pyRead is what Python read from one Go-written checkpoint.
type pyRead struct {
	Error  string               `json:"error"`
	Vars   [][2]json.RawMessage `json:"vars"` // [name, shape] of tf.train.list_variables
	DTypes map[string]int32     `json:"dtypes"`
	Values map[string]pyValue   `json:"values"`
}

type pyState struct {
	Error    string    `json:"error"`
	Model    string    `json:"model"`
	All      []string  `json:"all"`
	TS       []float64 `json:"ts"`
	Last     float64   `json:"last"`
	Text     string    `json:"text"`
	Latest   *string   `json:"latest"`
	AbsModel string    `json:"abs_model"`
	AbsAll   []string  `json:"abs_all"`
}

// pyWritten is a checkpoint Python wrote and the values it holds.
type pyWritten struct {
	Prefix    string             `json:"prefix"`
	Values    map[string]pyValue `json:"values"`   // from the variables themselves
	Read      map[string]pyValue `json:"read"`     // every key, as Python's reader reads it
	Dir       string             `json:"dir"`      // for the CheckpointManager
	State     *pyState           `json:"state"`    // the directory's checkpoint file
	OG        []byte             `json:"og"`       // _CHECKPOINTABLE_OBJECT_GRAPH
	OGNodes   int                `json:"og_nodes"` // nodes of the decoded graph
	OGRoot    []string           `json:"og_root"`  // local names of the root's children
	OGKeys    []string           `json:"og_keys"`  // checkpoint keys of all attributes
	NumShards int                `json:"num_shards"`
}

// pySavedModel is a SavedModel directory on the Python side: Go's, as
// Python re-serialized its saved_model.pb, or one Python wrote.
type pySavedModel struct {
	Error      string `json:"error"`
	Dir        string `json:"dir"`
	Bytes      []byte `json:"bytes"` // SerializeToString(deterministic=True) of the parsed saved_model.pb
	MetaGraphs int    `json:"meta_graphs"`
}

type pyOutput struct {
	Go      map[string]*pyRead  `json:"go"`
	GoState map[string]*pyState `json:"go_state"`
	GoPart  map[string]pyValue  `json:"go_part"` // Go's partitioned tensors restored by a Saver
	// GoPartError is the traceback of the Saver's restore, if it raised.
	GoPartError string                `json:"go_part_error"`
	Py          map[string]*pyWritten `json:"py"`
	// GoSM is Go's SavedModel as Python parses and re-serializes it; PySM
	// the SavedModels Python wrote (tf.saved_model.save and the TF1
	// builder).
	GoSM map[string]*pySavedModel `json:"go_sm"`
	PySM map[string]*pySavedModel `json:"py_sm"`
}

// decodePyOutput decodes Python's out.json. A key Go does not decode is an
// error: Python's results (its tracebacks included) must not be dropped.
func decodePyOutput(data []byte) (*pyOutput, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	out := &pyOutput{}
	if err := dec.Decode(out); err != nil {
		return nil, fmt.Errorf("decoding Python's results: %v", err)
	}
	return out, nil
}

var interop struct {
	once     sync.Once
	root     string
	goCkpts  map[string]string             // name -> prefix of the Go-written checkpoints
	goValues map[string]map[string]*Tensor // name -> tensors written
	states   map[string]*CheckpointState   // the state files written
	goSM     map[string]string             // name -> Go-written SavedModel directory
	out      *pyOutput
	err      error
	took     time.Duration
}

// python runs the whole interop exchange once per test binary and returns
// its results, failing t if it failed.
func python(t *testing.T) *pyOutput {
	t.Helper()
	interop.once.Do(func() {
		start := time.Now()
		interop.err = runInterop()
		interop.took = time.Since(start)
	})
	if interop.err != nil {
		t.Fatal(interop.err)
	}
	return interop.out
}

// pythonBin is the project's pinned Python interpreter.
func pythonBin() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", ".venv", "bin", "python")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the project's Python environment is missing (%v): run `make setup`", err)
	}
	return p, nil
}

// runPython runs code with the pinned interpreter and the given arguments,
// returning its stdout or an error with its stderr.
func runPython(code string, args ...string) ([]byte, error) {
	bin, err := pythonBin()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"-c", code}, args...)...)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=3", "CUDA_VISIBLE_DEVICES=-1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("python: %v\n%s", err, stderr.String())
	}
	return stdout.Bytes(), nil
}

func runInterop() error {
	root, err := os.MkdirTemp("", "savedmodel-interop-")
	if err != nil {
		return err
	}
	interop.root = root
	interop.goCkpts = map[string]string{}
	interop.goValues = map[string]map[string]*Tensor{}

	// Go writes its checkpoints first.
	fx := fixtures()
	write := func(name string, tensors map[string]*Tensor, opts WriteOptions) error {
		prefix := filepath.Join(root, "go", name, "ckpt")
		interop.goCkpts[name] = prefix
		interop.goValues[name] = tensors
		return WriteBundle(prefix, tensors, opts)
	}
	if err := write("single", fx, WriteOptions{}); err != nil {
		return err
	}
	if err := write("sharded", fx, WriteOptions{NumShards: 3}); err != nil {
		return err
	}
	many := manyTensors()
	if err := write("snappy", many, WriteOptions{Compression: SnappyCompression, IndexBlockSize: 512, NumShards: 2}); err != nil {
		return err
	}
	sliced, parts := slicedFixtures()
	if err := write("sliced", sliced, WriteOptions{Partitions: parts, NumShards: 2}); err != nil {
		return err
	}
	// A streaming writer, tensors added in reverse order, plus a grid of
	// slices added one by one with AddSlice.
	{
		prefix := filepath.Join(root, "go", "stream", "ckpt")
		bw, err := NewBundleWriter(prefix, WriteOptions{NumShards: 2})
		if err != nil {
			return err
		}
		names := sortedNames(fx)
		for i := len(names) - 1; i >= 0; i-- {
			if err := bw.Add(names[i], fx[names[i]]); err != nil {
				return err
			}
		}
		grid := randTensor(rand.New(rand.NewPCG(9, 9)), dtypes.Double, 4, 6)
		for _, sl := range gridSlices() {
			if err := bw.AddSlice("grid", grid.Shape, sl, cut(grid, sl)); err != nil {
				return err
			}
		}
		if err := bw.Close(); err != nil {
			return err
		}
		vals := map[string]*Tensor{"grid": grid}
		for k, v := range fx {
			vals[k] = v
		}
		interop.goCkpts["stream"] = prefix
		interop.goValues["stream"] = vals
	}
	// Checkpoint state files.
	stateDirs := map[string]string{}
	interop.states = goStates()
	for name, st := range interop.states {
		dir := filepath.Join(root, "gostate", name)
		if err := WriteCheckpointState(dir, st); err != nil {
			return err
		}
		stateDirs[name] = dir
	}
	// The latest checkpoint of the "plain" state exists.
	if err := WriteBundle(filepath.Join(stateDirs["plain"], "ckpt-2"), map[string]*Tensor{"x": fx["f32"]}, WriteOptions{}); err != nil {
		return err
	}

	// SavedModel directories, for Python to re-serialize their
	// saved_model.pb: the plain test model, and one with the maps whose
	// order Python's writer does not share with C++ (see mapsSavedModel).
	vocab := filepath.Join(root, "go_sm", "vocab.txt")
	if err := os.MkdirAll(filepath.Dir(vocab), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(vocab, []byte("a\nb\n"), 0o644); err != nil {
		return err
	}
	interop.goSM = map[string]string{}
	for name, sm := range map[string]*cpb.SavedModel{"plain": testSavedModel(), "maps": mapsSavedModel()} {
		interop.goSM[name] = filepath.Join(root, "go_sm", name)
		if err := Write(interop.goSM[name], &Directory{
			SavedModel: sm,
			Variables:  map[string]*Tensor{"w": fx["f32"]},
			Assets:     []Asset{{Filename: "vocab.txt", Source: vocab}},
		}); err != nil {
			return err
		}
	}

	manifest, err := json.Marshal(map[string]any{
		"go": interop.goCkpts, "go_state": stateDirs, "go_part": interop.goCkpts["sliced"],
		"py": filepath.Join(root, "py"), "go_sm": interop.goSM,
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "manifest.json"), manifest, 0o644); err != nil {
		return err
	}
	if _, err := runPython(pythonScript, root); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(root, "out.json"))
	if err != nil {
		return err
	}
	out, err := decodePyOutput(data)
	if err != nil {
		return err
	}
	interop.out = out
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// randTensor returns a tensor of random values (normal floats, random
// integers, 0/1 bools, random bit patterns for the 16-bit floats).
func randTensor(rng *rand.Rand, dt DataType, shape ...int64) *Tensor {
	if shape == nil {
		shape = []int64{}
	}
	n, err := dtypes.NumElements(shape)
	if err != nil {
		panic(err)
	}
	t := &Tensor{DType: dt, Shape: shape}
	if dt == dtypes.String {
		t.Strings = make([][]byte, n)
		for i := range t.Strings {
			s := make([]byte, rng.IntN(20))
			for j := range s {
				s[j] = byte(rng.Uint32())
			}
			t.Strings[i] = s
		}
		return t
	}
	es, _ := dt.Size(), dt.Size() > 0
	t.Data = make([]byte, 0, n*int64(es))
	for range n {
		switch dt {
		case dtypes.Float, dtypes.Complex64:
			for range es / 4 {
				t.Data = appendU32(t.Data, math.Float32bits(float32(rng.NormFloat64())))
			}
		case dtypes.Double, dtypes.Complex128:
			for range es / 8 {
				t.Data = appendU64(t.Data, math.Float64bits(rng.NormFloat64()))
			}
		case dtypes.Bool:
			t.Data = append(t.Data, byte(rng.IntN(2)))
		default:
			for range es {
				t.Data = append(t.Data, byte(rng.Uint32()))
			}
		}
	}
	return t
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func appendU64(b []byte, v uint64) []byte {
	return appendU32(appendU32(b, uint32(v)), uint32(v>>32))
}

// fixtures are the tensors of the Go-written checkpoints: every dtype the
// brief names and more, scalars, empty tensors, strings with NULs, empty
// and long strings, and names as object-based checkpoints spell them.
func fixtures() map[string]*Tensor {
	rng := rand.New(rand.NewPCG(1, 2))
	f32 := randTensor(rng, dtypes.Float, 3, 4)
	// Special values, checked bit for bit.
	specials := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, math.MaxFloat32}
	for i, v := range specials {
		copy(f32.Data[4*i:], appendU32(nil, math.Float32bits(v)))
	}
	long := make([]byte, 100_000)
	for i := range long {
		long[i] = byte(rng.Uint32())
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	return map[string]*Tensor{
		"f32":        f32,
		"f64":        randTensor(rng, dtypes.Double, 5),
		"i32":        randTensor(rng, dtypes.Int32, 2, 3),
		"i64":        randTensor(rng, dtypes.Int64, 4),
		"bool":       randTensor(rng, dtypes.Bool, 7),
		"u8":         randTensor(rng, dtypes.Uint8, 16),
		"f16":        randTensor(rng, dtypes.Half, 3, 3),
		"bf16":       randTensor(rng, dtypes.BFloat16, 2, 5),
		"c64":        randTensor(rng, dtypes.Complex64, 3),
		"c128":       randTensor(rng, dtypes.Complex128, 2),
		"i8":         randTensor(rng, dtypes.Int8, 5),
		"i16":        randTensor(rng, dtypes.Int16, 5),
		"u16":        randTensor(rng, dtypes.Uint16, 5),
		"u32":        randTensor(rng, dtypes.Uint32, 5),
		"u64":        randTensor(rng, dtypes.Uint64, 5),
		"scalar_f32": randTensor(rng, dtypes.Float),
		"scalar_i64": randTensor(rng, dtypes.Int64),
		"empty_f32":  randTensor(rng, dtypes.Float, 0),
		"empty_i32":  randTensor(rng, dtypes.Int32, 3, 0),
		"str": {DType: dtypes.String, Shape: []int64{2, 4}, Strings: [][]byte{
			{}, {0}, []byte("a\x00b\x00"), long, []byte("ü€😀"), all, bytes.Repeat([]byte("x"), 200), []byte("plain"),
		}},
		"str_scalar": {DType: dtypes.String, Shape: []int64{}, Strings: [][]byte{[]byte("hello\x00world")}},
		"str_empty":  {DType: dtypes.String, Shape: []int64{0}, Strings: [][]byte{}},
		"str_blank":  {DType: dtypes.String, Shape: []int64{3}, Strings: [][]byte{{}, {}, {}}},
		"model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE": randTensor(rng, dtypes.Float, 3, 2),
		"model/layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE":   randTensor(rng, dtypes.Float, 2),
	}
}

// manyTensors is enough small tensors for a multi-block index.
func manyTensors() map[string]*Tensor {
	rng := rand.New(rand.NewPCG(3, 4))
	out := map[string]*Tensor{}
	for i := range 300 {
		out[fmt.Sprintf("layer_%03d/weights/.ATTRIBUTES/VARIABLE_VALUE", i)] = randTensor(rng, dtypes.Float, int64(1+i%3), 2)
	}
	return out
}

// slicedFixtures are tensors that WriteBundle stores partitioned, and how.
// (No string tensor: TensorFlow's BundleReader cannot assemble partitioned
// string tensors; the Go-only tests cover them.)
func slicedFixtures() (map[string]*Tensor, map[string]Partition) {
	rng := rand.New(rand.NewPCG(5, 6))
	ts := map[string]*Tensor{
		"part0":  randTensor(rng, dtypes.Float, 10, 4),
		"part1":  randTensor(rng, dtypes.Int64, 3, 7),
		"p3d":    randTensor(rng, dtypes.BFloat16, 2, 5, 3),
		"whole":  randTensor(rng, dtypes.Float, 4),
		"single": randTensor(rng, dtypes.Float, 4, 2),
	}
	return ts, map[string]Partition{
		"part0": {Axis: 0, Parts: 3}, "part1": {Axis: 1, Parts: 2},
		"p3d": {Axis: 1, Parts: 3}, "single": {Axis: 0, Parts: 1},
	}
}

// gridSlices cuts a [4,6] tensor into three slices, one with a
// whole-dimension extent.
func gridSlices() [][]Extent {
	return [][]Extent{
		{{0, 2}, {0, 3}},
		{{0, 2}, {3, 3}},
		{{2, 2}, FullExtent},
	}
}

// cut returns the part of t that slice selects (a test helper, written
// independently of the reader's assembler: element by element).
func cut(t *Tensor, slice []Extent) *Tensor {
	shape, err := checkSlice(t.Shape, slice)
	if err != nil {
		panic(err)
	}
	out := &Tensor{DType: t.DType, Shape: shape}
	es := 1
	if t.DType != dtypes.String {
		es, _ = t.DType.Size(), t.DType.Size() > 0
		out.Data = []byte{}
	} else {
		out.Strings = [][]byte{}
	}
	n, _ := dtypes.NumElements(t.Shape)
	idx := make([]int64, len(t.Shape))
	for flat := range n {
		rem := flat
		for d := len(t.Shape) - 1; d >= 0; d-- {
			idx[d] = rem % t.Shape[d]
			rem /= t.Shape[d]
		}
		in := true
		for d, e := range slice {
			if !e.isFull() && (idx[d] < e.Start || idx[d] >= e.Start+e.Length) {
				in = false
			}
		}
		if !in {
			continue
		}
		if t.DType == dtypes.String {
			out.Strings = append(out.Strings, t.Strings[flat])
		} else {
			out.Data = append(out.Data, t.Data[flat*int64(es):(flat+1)*int64(es)]...)
		}
	}
	return out
}

// mapsSavedModel is testSavedModel with the maps whose entries TensorFlow's
// Python writer orders otherwise than C++: a node's attrs "T" and "Tidx"
// (a key that is a prefix of another), a signature "serving" next to
// "serving_default", and a function with integer-keyed maps (arg_attr,
// resource_arg_unique_id).
func mapsSavedModel() *cpb.SavedModel {
	sm := testSavedModel()
	mg := sm.GetMetaGraphs()[0]
	typ := func(t int32) *attrpb.AttrValue {
		return &attrpb.AttrValue{Value: &attrpb.AttrValue_Type{Type: tpb.DataType(t)}}
	}
	b := &attrpb.AttrValue{Value: &attrpb.AttrValue_B{B: true}}
	gd := mg.GetGraphDef()
	gd.Node = append(gd.Node, &ndpb.NodeDef{Name: "sum", Op: "Sum", Input: []string{"x", "axis"},
		Attr: map[string]*attrpb.AttrValue{"T": typ(1), "Tidx": typ(3), "keep_dims": b}})
	argAttr := func(name string) *fnpb.FunctionDef_ArgAttrs {
		return &fnpb.FunctionDef_ArgAttrs{Attr: map[string]*attrpb.AttrValue{"_user_specified_name": {Value: &attrpb.AttrValue_S{S: []byte(name)}}, "_output_shapes": b}}
	}
	gd.Library = &fnpb.FunctionDefLibrary{Function: []*fnpb.FunctionDef{{
		Signature:           &opdefpb.OpDef{Name: "f", InputArg: []*opdefpb.OpDef_ArgDef{{Name: "a"}, {Name: "b"}, {Name: "c"}}},
		ArgAttr:             map[uint32]*fnpb.FunctionDef_ArgAttrs{0: argAttr("a"), 2: argAttr("c"), 1: argAttr("b"), 300: argAttr("z")},
		ResourceArgUniqueId: map[uint32]uint32{1: 7, 0: 3, 129: 1},
		Ret:                 map[string]string{"y": "a", "y1": "b", "": "c"},
	}}}
	mg.SignatureDef["serving"] = proto.Clone(mg.GetSignatureDef()[DefaultServingSignature]).(*cpb.SignatureDef)
	return sm
}

// goStates are the checkpoint state files Go writes for Python to read.
func goStates() map[string]*CheckpointState {
	now := float64(time.Now().UnixMicro()) / 1e6
	return map[string]*CheckpointState{
		"plain": {
			ModelCheckpointPath:          "ckpt-2",
			AllModelCheckpointPaths:      []string{"ckpt-1", "ckpt-2"},
			AllModelCheckpointTimestamps: []float64{now - 1.25, now},
			LastPreservedTimestamp:       now - 7200,
		},
		"odd": {
			ModelCheckpointPath:          "/abs/dir with space/ck\"pt\\-ü\n\t\x01€",
			AllModelCheckpointPaths:      []string{"rel'q", "/abs/dir with space/ck\"pt\\-ü\n\t\x01€"},
			AllModelCheckpointTimestamps: []float64{1e-7, 1e20},
		},
	}
}

// pythonScript does all the Python work of the package's tests. argv[1] is
// the exchange directory with manifest.json; it writes out.json there.
const pythonScript = `
import base64, json, os, sys
import numpy as np
import tensorflow as tf
import keras
from google.protobuf import text_format
from tensorflow.python.training import checkpoint_state_pb2
from tensorflow.core.protobuf import trackable_object_graph_pb2

root = sys.argv[1]
man = json.load(open(os.path.join(root, "manifest.json")))
out = {"go": {}, "go_state": {}, "go_part": {}, "py": {}}

def b64(b):
    return base64.b64encode(bytes(b)).decode()

def dump(v):
    a = np.asarray(v)
    if a.dtype == object or a.dtype.kind in "SU":
        return {"shape": list(a.shape), "strings": [b64(x if isinstance(x, bytes) else str(x).encode()) for x in a.reshape(-1)]}
    return {"shape": list(a.shape), "data": b64(np.ascontiguousarray(a).tobytes())}

def read_all(prefix):
    r = tf.train.load_checkpoint(prefix)
    res = {"vars": [[n, list(s)] for n, s in tf.train.list_variables(prefix)],
           "dtypes": {n: d.as_datatype_enum for n, d in r.get_variable_to_dtype_map().items()},
           "values": {}}
    for n, _ in res["vars"]:
        res["values"][n] = dump(r.get_tensor(n))
    return res

def guarded(f, *a):
    try:
        return f(*a)
    except Exception as e:
        import traceback
        return {"error": traceback.format_exc()}

# 1. Python reads every Go-written checkpoint.
for k, p in man["go"].items():
    out["go"][k] = guarded(read_all, p)

def read_state(d):
    raw = open(os.path.join(d, "checkpoint")).read()
    st = text_format.Parse(raw, checkpoint_state_pb2.CheckpointState())
    ab = tf.train.get_checkpoint_state(d)
    return {"model": st.model_checkpoint_path, "all": list(st.all_model_checkpoint_paths),
            "ts": list(st.all_model_checkpoint_timestamps), "last": st.last_preserved_timestamp,
            "text": text_format.MessageToString(st), "latest": tf.train.latest_checkpoint(d),
            "abs_model": ab.model_checkpoint_path, "abs_all": list(ab.all_model_checkpoint_paths)}

for k, d in man["go_state"].items():
    out["go_state"][k] = guarded(read_state, d)

# 2. A Saver restores Go's partitioned tensors into tf.compat.v1
#    partitioned variables (same partitioning), looking up each slice by key.
def restore_parts(prefix):
    g = tf.Graph()
    res = {}
    with g.as_default():
        p0 = tf.compat.v1.get_variable("part0", shape=[10, 4], dtype=tf.float32,
                                       partitioner=tf.compat.v1.fixed_size_partitioner(3))
        p1 = tf.compat.v1.get_variable("part1", shape=[3, 7], dtype=tf.int64, initializer=tf.compat.v1.zeros_initializer(),
                                       partitioner=tf.compat.v1.fixed_size_partitioner(2, axis=1))
        # Restored with a different partitioning: TF assembles from Go's slices.
        p2 = tf.compat.v1.get_variable("p3d", shape=[2, 5, 3], dtype=tf.bfloat16, initializer=tf.compat.v1.zeros_initializer(),
                                       partitioner=tf.compat.v1.fixed_size_partitioner(2, axis=0))
        saver = tf.compat.v1.train.Saver([p0, p1, p2])
        with tf.compat.v1.Session() as s:
            saver.restore(s, prefix)
            for name, v in [("part0", p0), ("part1", p1), ("p3d", p2)]:
                res[name] = dump(s.run(v.as_tensor()))
    return res
r = guarded(restore_parts, man["go_part"])
if "error" in r:
    out["go_part_error"] = r["error"]
else:
    out["go_part"] = r

# 3. Python writes checkpoints for Go to read.
pyroot = man["py"]
PART_SHAPE, PART_AXIS1_SHAPE = [10, 4], [3, 7]

def saver_checkpoint(d, sharded):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(11 if sharded else 12)
    g = tf.Graph()
    V = {}
    cpu1 = "/cpu:1" if sharded else "/cpu:0"
    with g.as_default():
        def var(name, value, dtype=None, device="/cpu:0"):
            with tf.device(device):
                V[name] = tf.compat.v1.Variable(tf.constant(value, dtype=dtype), name=name)
        var("f32", rng.standard_normal((3, 4)).astype(np.float32))
        var("f64", rng.standard_normal((5,)))
        var("i32", rng.integers(-2**31, 2**31, (2, 3), dtype=np.int32), device=cpu1)
        var("i64", rng.integers(-2**63, 2**63 - 1, (4,), dtype=np.int64))
        var("bool", rng.integers(0, 2, (7,)).astype(bool))
        var("u8", rng.integers(0, 256, (16,), dtype=np.uint8), device=cpu1)
        var("f16", rng.standard_normal((3, 3)).astype(np.float16))
        var("bf16", rng.standard_normal((2, 5)).astype(np.float32), dtype=tf.bfloat16)
        var("c64", (rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype(np.complex64), device=cpu1)
        var("str", np.array([b"", b"a\x00b", b"x" * 300, "\u00fc".encode(), bytes(range(256)), rng.bytes(70000)], dtype=object))
        var("str_scalar", b"hello\x00world", device=cpu1)
        var("scalar", np.float32(rng.standard_normal()))
        var("empty", np.zeros((0,), np.float32))
        var("empty2", np.zeros((3, 0), np.int32))
        with tf.device(cpu1):
            P = tf.compat.v1.get_variable("part", shape=PART_SHAPE, dtype=tf.float32,
                                          initializer=tf.compat.v1.random_normal_initializer(seed=3),
                                          partitioner=tf.compat.v1.fixed_size_partitioner(3))
            P1 = tf.compat.v1.get_variable("part_axis1", shape=PART_AXIS1_SHAPE, dtype=tf.float64,
                                           initializer=tf.compat.v1.random_normal_initializer(seed=4, dtype=tf.float64),
                                           partitioner=tf.compat.v1.fixed_size_partitioner(2, axis=1))
        saver = tf.compat.v1.train.Saver(sharded=sharded)
        config = tf.compat.v1.ConfigProto(device_count={"CPU": 2})
        with tf.compat.v1.Session(config=config) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            prefix = saver.save(s, os.path.join(d, "model.ckpt"))
            vals = s.run(dict(V, part=P.as_tensor(), part_axis1=P1.as_tensor()))
    r = tf.train.load_checkpoint(prefix)
    return {"prefix": prefix, "values": {k: dump(v) for k, v in vals.items()},
            "num_shards": len([f for f in os.listdir(d) if ".data-" in f]),
            "state": read_state(d)}

out["py"]["saver_sharded"] = saver_checkpoint(os.path.join(pyroot, "saver_sharded"), True)
out["py"]["saver"] = saver_checkpoint(os.path.join(pyroot, "saver"), False)

class Dense(tf.Module):
    def __init__(self, rng, i, o):
        super().__init__()
        self.kernel = tf.Variable(rng.standard_normal((i, o)).astype(np.float32))
        self.bias = tf.Variable(rng.standard_normal((o,)).astype(np.float32))

def object_checkpoint(d):
    rng = np.random.default_rng(21)
    model = tf.Module()
    l0, l1 = Dense(rng, 3, 4), Dense(rng, 4, 2)
    setattr(model, "layer_with_weights-0", l0)
    setattr(model, "layer_with_weights-1", l1)
    km = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    step = tf.Variable(7, dtype=tf.int64)
    note = tf.Variable(b"note\x00with NUL")
    ck = tf.train.Checkpoint(model=model, keras_model=km, step=step, note=note)
    prefix = ck.write(os.path.join(d, "ckpt"))
    attr = "/.ATTRIBUTES/VARIABLE_VALUE"
    direct = {"model/layer_with_weights-0/kernel" + attr: l0.kernel, "model/layer_with_weights-0/bias" + attr: l0.bias,
              "model/layer_with_weights-1/kernel" + attr: l1.kernel, "model/layer_with_weights-1/bias" + attr: l1.bias,
              "step" + attr: step, "note" + attr: note}
    r = tf.train.load_checkpoint(prefix)
    og_bytes = r.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
    og = trackable_object_graph_pb2.TrackableObjectGraph.FromString(og_bytes)
    return {"prefix": prefix, "values": {k: dump(v.numpy()) for k, v in direct.items()},
            "read": {n: dump(r.get_tensor(n)) for n, _ in tf.train.list_variables(prefix) if n != "_CHECKPOINTABLE_OBJECT_GRAPH"},
            "og": b64(og_bytes), "og_nodes": len(og.nodes), "og_root": [c.local_name for c in og.nodes[0].children],
            "og_keys": sorted(a.checkpoint_key for n in og.nodes for a in n.attributes)}

out["py"]["object"] = object_checkpoint(os.path.join(pyroot, "object"))

def managed(d):
    v = tf.Variable(0.0)
    ck = tf.train.Checkpoint(v=v)
    mgr = tf.train.CheckpointManager(ck, d, max_to_keep=2)
    vals = {}
    for i in range(3):
        v.assign(float(i) + 0.5)
        mgr.save()
    return {"dir": d, "state": read_state(d), "values": {"v/.ATTRIBUTES/VARIABLE_VALUE": dump(v.numpy())}}

out["py"]["manager"] = managed(os.path.join(pyroot, "manager"))

# 4. saved_model.pb. TensorFlow writes it with Python's
#    SerializeToString(deterministic=True) (save.py, builder_impl.py): Python
#    re-serializes Go's so, and writes two of its own for Go to re-serialize.
from tensorflow.core.protobuf import saved_model_pb2

def reserialize(d):
    sm = saved_model_pb2.SavedModel.FromString(open(os.path.join(d, "saved_model.pb"), "rb").read())
    return {"dir": d, "bytes": b64(sm.SerializeToString(deterministic=True)), "meta_graphs": len(sm.meta_graphs)}

out["go_sm"] = {k: guarded(reserialize, d) for k, d in man["go_sm"].items()}

class Affine(tf.Module):
    def __init__(self, rng):
        super().__init__()
        self.w = tf.Variable(rng.standard_normal((3, 2)).astype(np.float32), name="w")
        self.b = tf.Variable(rng.standard_normal((2,)).astype(np.float32), name="b")

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def __call__(self, x):
        return {"y": tf.nn.relu(tf.matmul(x, self.w) + self.b)}

def tf2_savedmodel(d):
    m = Affine(np.random.default_rng(31))
    tf.saved_model.save(m, d, signatures={"serving_default": m.__call__})
    return reserialize(d)

def tf1_savedmodel(d):
    os.makedirs(os.path.dirname(d), exist_ok=True)
    vocab = os.path.join(os.path.dirname(d), "vocab.txt")
    open(vocab, "w").write("a\nb\n")
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        w = tf.compat.v1.get_variable("w", initializer=tf.constant(np.random.default_rng(32).standard_normal((3, 2)).astype(np.float32)))
        y = tf.identity(tf.matmul(x, w), name="y")
        asset = tf.constant(vocab, name="vocab")
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, asset)
        with tf.compat.v1.Session() as s:
            s.run(tf.compat.v1.global_variables_initializer())
            b = tf.compat.v1.saved_model.Builder(d)
            sig = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
            b.add_meta_graph_and_variables(s, ["serve"], signature_def_map={"serving_default": sig},
                                           assets_collection=tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS))
            b.save()
    return reserialize(d)

out["py_sm"] = {"tf2": guarded(tf2_savedmodel, os.path.join(pyroot, "sm_tf2")),
                "tf1": guarded(tf1_savedmodel, os.path.join(pyroot, "sm_tf1", "m"))}

json.dump(out, open(os.path.join(root, "out.json"), "w"))
`
