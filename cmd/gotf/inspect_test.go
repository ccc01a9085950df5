package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exportPythonSavedModel writes a SavedModel from Python: two signatures
// (one with several inputs and outputs of two dtypes), a tf.function
// traced twice with a Python argument, and variables.
func exportPythonSavedModel(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "py_model")
	python(t, `
class M(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.normal([3, 2], seed=1), name="w")
        self.b = tf.Variable(tf.random.normal([2], seed=2), name="b")

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def serve(self, x):
        return {"y": tf.matmul(x, self.w) + self.b, "n": tf.shape(x)[0]}

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32), tf.TensorSpec([], tf.int32, name="k"), tf.TensorSpec(None, tf.int64, name="any")])
    def scaled(self, x, k, any):
        return {"z": tf.matmul(x, self.w) * tf.cast(k, tf.float32), "s": tf.reduce_sum(any)}

    @tf.function
    def free(self, a, flag=True, scale=0.5, mode="x", dims=(1, 2)):
        return a * 2

m = M()
m.free(tf.constant([1.0]))
m.free(tf.constant([[1]]), flag=False, mode="y", dims=[3])
tf.saved_model.save(m, inputs["dir"].item().decode(),
    signatures={"serving_default": m.serve, "scaled": m.scaled.get_concrete_function()})
`, map[string]string{"dir": dir})
	return dir
}

// showAll is saved_model_cli show --all's content, parsed from its text.
type showAll struct {
	MetaGraphs []showMetaGraph
	// Functions is the "Concrete Functions" section as printed.
	Functions string
}

type showMetaGraph struct {
	TagSet     string
	Signatures []showSignature
	OpsTags    string
	Ops        []string
}

type showSignature struct {
	Key             string
	Inputs, Outputs []showTensor
	Method          string
}

type showTensor struct{ Key, DType, Shape, Name string }

var (
	reMetaGraph = regexp.MustCompile(`^MetaGraphDef with tag-set: '(.*)' contains the following SignatureDefs:$`)
	reSigKey    = regexp.MustCompile(`^signature_def\['(.*)'\]:$`)
	reTensorKey = regexp.MustCompile(`^    (inputs|outputs)\['(.*)'\] tensor_info:$`)
	reOps       = regexp.MustCompile(`^The MetaGraph with tag set (\[.*\]) contains the following ops: (.*)$`)
	reQuoted    = regexp.MustCompile(`'([^']*)'`)
)

func parseShowAll(t *testing.T, text string) showAll {
	t.Helper()
	var s showAll
	head, funcs, _ := strings.Cut(text, "\nConcrete Functions:")
	s.Functions = normalizeFunctions(funcs)
	lines := strings.Split(head, "\n")
	var mg *showMetaGraph
	var sig *showSignature
	var list *[]showTensor
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case l == "":
		case reMetaGraph.MatchString(l):
			s.MetaGraphs = append(s.MetaGraphs, showMetaGraph{TagSet: reMetaGraph.FindStringSubmatch(l)[1]})
			mg = &s.MetaGraphs[len(s.MetaGraphs)-1]
		case reSigKey.MatchString(l):
			require.NotNil(t, mg, l)
			mg.Signatures = append(mg.Signatures, showSignature{Key: reSigKey.FindStringSubmatch(l)[1]})
			sig = &mg.Signatures[len(mg.Signatures)-1]
		case l == "  The given SavedModel SignatureDef contains the following input(s):":
			list = &sig.Inputs
		case l == "  The given SavedModel SignatureDef contains the following output(s):":
			list = &sig.Outputs
		case reTensorKey.MatchString(l):
			require.Less(t, i+3, len(lines), "truncated tensor_info")
			ti := showTensor{Key: reTensorKey.FindStringSubmatch(l)[2]}
			for j, field := range []string{"dtype", "shape", "name"} {
				v, ok := strings.CutPrefix(lines[i+1+j], "        "+field+": ")
				require.True(t, ok, "line %q", lines[i+1+j])
				*[]*string{&ti.DType, &ti.Shape, &ti.Name}[j] = v
			}
			i += 3
			*list = append(*list, ti)
		case strings.HasPrefix(l, "  Method name is: "):
			sig.Method = strings.TrimPrefix(l, "  Method name is: ")
		case reOps.MatchString(l):
			m := reOps.FindStringSubmatch(l)
			mg.OpsTags = m[1]
			for _, q := range reQuoted.FindAllStringSubmatch(m[2], -1) {
				mg.Ops = append(mg.Ops, q[1])
			}
			sort.Strings(mg.Ops)
		default:
			t.Fatalf("unexpected line %q", l)
		}
	}
	return s
}

var reOption = regexp.MustCompile(`(?m)^    Option #\d+\n`)

// normalizeFunctions sorts each function's call options: saved_model_cli
// lists them by the names its loader gives the concrete functions, which
// come from a process-wide counter (a second load in the same Python
// process can order them differently); gotf lists them by their saved
// names.
func normalizeFunctions(text string) string {
	funcs := strings.Split(text, "\n  Function Name: ")
	for i, f := range funcs {
		opts := reOption.Split(f, -1)
		head, rest := opts[0], opts[1:]
		for j := range rest {
			rest[j] = strings.TrimSuffix(rest[j], "\n") + "\n"
		}
		sort.Strings(rest)
		funcs[i] = head + "<options>" + strings.Join(rest, "<option>")
	}
	return strings.Join(funcs, "\n  Function Name: ")
}

// gotf inspect prints what saved_model_cli show --all prints for a
// Python-exported SavedModel: the same parsed content, and the same text
// but for the order of the ops (a Python set there) and of a function's
// call options (see normalizeFunctions).
func TestInspectSavedModelMatchesSavedModelCLI(t *testing.T) {
	dir := exportPythonSavedModel(t)
	cli := runTool(t, "saved_model_cli", "show", "--dir", dir, "--all")
	got := mustGotf(t, "inspect", dir)

	want := parseShowAll(t, cli)
	have := parseShowAll(t, got)
	require.NotEmpty(t, want.MetaGraphs)
	require.NotEmpty(t, want.Functions, "saved_model_cli listed no concrete functions")
	assert.Equal(t, want, have)

	sortOps := func(text string) string {
		head, funcs, _ := strings.Cut(text, "\nConcrete Functions:")
		text = head + "\nConcrete Functions:" + normalizeFunctions(funcs)
		lines := strings.Split(text, "\n")
		for i, l := range lines {
			if m := reOps.FindStringSubmatch(l); m != nil {
				ops := reQuoted.FindAllString(m[2], -1)
				sort.Strings(ops)
				lines[i] = "ops " + m[1] + strings.Join(ops, ",")
			}
		}
		return strings.Join(lines, "\n")
	}
	assert.Equal(t, sortOps(cli), sortOps(got), "the text differs from saved_model_cli's")

	// --json holds the same content.
	var js savedModelInfo
	require.NoError(t, json.Unmarshal([]byte(mustGotf(t, "inspect", "--json", dir)), &js))
	require.Len(t, js.MetaGraphs, len(want.MetaGraphs))
	for i, mg := range want.MetaGraphs {
		jm := js.MetaGraphs[i]
		assert.Equal(t, mg.TagSet, strings.Join(jm.Tags, ", "))
		assert.Equal(t, mg.Ops, jm.Ops)
		require.Len(t, jm.Signatures, len(mg.Signatures))
		for j, sig := range mg.Signatures {
			js := jm.Signatures[j]
			assert.Equal(t, sig.Key, js.Key)
			assert.Equal(t, sig.Method, js.MethodName)
			conv := func(ts []tensorInfo) []showTensor {
				var out []showTensor
				for _, ti := range ts {
					shape := "unknown_rank"
					if !ti.UnknownRank {
						parts := []string{}
						for _, d := range ti.Shape {
							parts = append(parts, strconv.FormatInt(d, 10))
						}
						shape = "(" + strings.Join(parts, ", ") + ")"
					}
					out = append(out, showTensor{ti.Key, ti.DType, shape, ti.Name})
				}
				return out
			}
			assert.Equal(t, sig.Inputs, conv(js.Inputs), "inputs of %s", sig.Key)
			assert.Equal(t, sig.Outputs, conv(js.Outputs), "outputs of %s", sig.Key)
		}
	}
	names := []string{}
	for _, f := range js.Functions {
		names = append(names, f.Name)
	}
	assert.Equal(t, []string{"free", "scaled", "serve"}, names)
}

// pyCheckpointInfo is the checkpoint as Python reads it:
// tf.train.list_variables, the reader's dtypes, and the object graph
// proto decoded by TensorFlow's own generated code.
const pyCheckpointInfo = `
import json
from tensorflow.core.protobuf import trackable_object_graph_pb2
prefix = inputs["prefix"].item().decode()
reader = tf.train.load_checkpoint(prefix)
dt = reader.get_variable_to_dtype_map()
outputs["vars"] = json.dumps([[n, dt[n].name, list(s)] for n, s in tf.train.list_variables(prefix)])
og = trackable_object_graph_pb2.TrackableObjectGraph()
og.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
outputs["objects"] = json.dumps([{
    "id": i,
    "children": [{"name": c.local_name, "id": c.node_id} for c in n.children],
    "attributes": [{"name": a.name, "checkpoint_key": a.checkpoint_key} for a in n.attributes],
    "slot_variables": [{"slot": s.slot_name, "variable_id": s.original_variable_node_id, "slot_id": s.slot_variable_node_id} for s in n.slot_variables],
} for i, n in enumerate(og.nodes)])
`

func compareCheckpoint(t *testing.T, prefix string, got checkpointInfo) {
	t.Helper()
	py := python(t, pyCheckpointInfo, map[string]string{"prefix": prefix})
	var vars [][]any
	pyJSON(t, py["vars"], &vars)
	var want []variableInfo
	for _, v := range vars {
		vi := variableInfo{Name: v[0].(string), DType: v[1].(string), Shape: []int64{}}
		for _, d := range v[2].([]any) {
			vi.Shape = append(vi.Shape, int64(d.(float64)))
		}
		want = append(want, vi)
	}
	require.NotEmpty(t, want)
	assert.Equal(t, want, got.Variables)

	// The object graph, compared as JSON so that empty lists and absent
	// ones are alike.
	var wantObjs, gotObjs any
	pyJSON(t, py["objects"], &wantObjs)
	b, err := json.Marshal(got.Objects)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &gotObjs))
	assert.Equal(t, dropEmpty(wantObjs), dropEmpty(gotObjs))
}

// dropEmpty removes empty lists from JSON objects (omitempty's view).
func dropEmpty(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if l, ok := e.([]any); ok && len(l) == 0 {
				continue
			}
			out[k] = dropEmpty(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = dropEmpty(e)
		}
		return out
	}
	return v
}

// On a tf.train.Checkpoint of a Keras model and its optimizer (slot
// variables), gotf inspect lists what tf.train.list_variables lists, with
// the dtypes the reader gives, and the object graph Python decodes; a
// directory with a "checkpoint" file means its latest checkpoint.
func TestInspectCheckpointMatchesListVariables(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpts")
	py := python(t, `
import keras
d = inputs["dir"].item().decode()
model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
opt = keras.optimizers.Adam()
model.compile(optimizer=opt, loss="mse")
model.fit(np.ones((4, 4), np.float32), np.ones((4, 2), np.float32), verbose=0)
step = tf.Variable(7, dtype=tf.int64)
ck = tf.train.Checkpoint(model=model, optimizer=opt, step=step, half=tf.Variable(tf.zeros([2], tf.float16)))
mgr = tf.train.CheckpointManager(ck, d, max_to_keep=2)
mgr.save()
outputs["latest"] = mgr.save()
`, map[string]string{"dir": dir})
	latest := string(py["latest"].Strings[0])

	for _, path := range []string{latest, latest + ".index", dir} {
		var got checkpointInfo
		require.NoError(t, json.Unmarshal([]byte(mustGotf(t, "inspect", "--json", path)), &got), path)
		assert.Equal(t, latest, got.Prefix, path)
		compareCheckpoint(t, latest, got)
	}

	text := mustGotf(t, "inspect", latest)
	assert.Regexp(t, `\n  step/\.ATTRIBUTES/VARIABLE_VALUE +int64 +\[\]\n`, text)
	assert.Regexp(t, `\n  half/\.ATTRIBUTES/VARIABLE_VALUE +float16 +\[2\]\n`, text)
	assert.Contains(t, text, "\nObject graph (")
	assert.Contains(t, text, "\n    step\n      .VARIABLE_VALUE: step/.ATTRIBUTES/VARIABLE_VALUE\n")
}

// pyWeights lists a Keras model's weights, and the datasets of HDF5
// weights files as h5py sees them.
const pyWeights = `
import json, h5py, keras
def datasets(path, shard=""):
    out = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out.append({"path": "/" + name, "dtype": obj.dtype.name, "shape": list(obj.shape), "shard": shard})
        f.visititems(visit)
    return out
`

// gotf inspect shows the model and its weights for .keras and legacy .h5
// files as Keras loads them, and every weight of .weights.h5 and sharded
// .weights.json files as h5py lists them.
func TestInspectKerasFiles(t *testing.T) {
	dir := t.TempDir()
	py := python(t, pyWeights+`
d = inputs["dir"].item().decode()
m = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(8, activation="relu"),
                      keras.layers.LayerNormalization(), keras.layers.Dense(3)], name="seq")
m.save(d + "/m.keras"); m.save(d + "/m.h5"); m.save_weights(d + "/m.weights.h5")
m.save_weights(d + "/s.weights.json", max_shard_size=2e-7)
outputs["model"] = json.dumps([{"path": w.path, "dtype": w.dtype, "shape": list(w.shape)} for w in m.weights])
outputs["params"] = m.count_params()
outputs["h5"] = json.dumps(sorted(datasets(d + "/m.weights.h5"), key=lambda x: x["path"]))
index = json.load(open(d + "/s.weights.json"))
shards = sorted({s for v in index["weight_map"].values() for s in (v if isinstance(v, list) else [v])})
outputs["shards"] = json.dumps(shards)
outputs["sharded"] = json.dumps([w for s in shards for w in sorted(datasets(d + "/" + s, s), key=lambda x: x["path"])])
`, map[string]string{"dir": dir})
	var model, h5, sharded []weightInfo
	var shards []string
	pyJSON(t, py["model"], &model)
	pyJSON(t, py["h5"], &h5)
	pyJSON(t, py["sharded"], &sharded)
	pyJSON(t, py["shards"], &shards)
	params, err := py["params"].Int64s()
	require.NoError(t, err)
	require.Greater(t, len(shards), 1, "the test wants several shards")

	for _, f := range []string{"m.keras", "m.h5"} {
		var got kerasInfo
		require.NoError(t, json.Unmarshal([]byte(mustGotf(t, "inspect", "--json", filepath.Join(dir, f))), &got))
		assert.Equal(t, model, got.Weights, f)
		assert.Equal(t, params[0], got.Params, f)
		assert.Equal(t, "seq", got.Model)
		text := mustGotf(t, "inspect", filepath.Join(dir, f))
		assert.Contains(t, text, fmt.Sprintf("Total params: %d", params[0]))
		assert.Contains(t, text, model[len(model)-1].Path)
	}

	var got weightsInfo
	require.NoError(t, json.Unmarshal([]byte(mustGotf(t, "inspect", "--json", filepath.Join(dir, "m.weights.h5"))), &got))
	sortWeights := func(ws []weightInfo) []weightInfo {
		sort.SliceStable(ws, func(i, j int) bool { return ws[i].Path < ws[j].Path })
		return ws
	}
	assert.Equal(t, h5, sortWeights(got.Weights))

	got = weightsInfo{}
	require.NoError(t, json.Unmarshal([]byte(mustGotf(t, "inspect", "--json", filepath.Join(dir, "s.weights.json"))), &got))
	assert.Equal(t, shards, got.Shards)
	var byShard []weightInfo
	for _, s := range shards {
		var one []weightInfo
		for _, w := range got.Weights {
			if w.Shard == s {
				one = append(one, w)
			}
		}
		byShard = append(byShard, sortWeights(one)...)
	}
	assert.Equal(t, sharded, byShard)

	// A renamed .keras archive is still read as one.
	renamed := filepath.Join(dir, "model.bin")
	data, err := os.ReadFile(filepath.Join(dir, "m.keras"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(renamed, data, 0o644))
	assert.Contains(t, mustGotf(t, "inspect", renamed), model[0].Path)
}
