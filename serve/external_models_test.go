package serve

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// exportExternal is Python code that writes, as BASE/1 under
// inputs["root"], SavedModels of the kinds Python users write that the
// other serve tests do not: a tf.Module with signatures of many dtypes, a
// scalar and a string input and one with a single unnamed output
// ("output_0"); a Keras functional model with two inputs and two outputs
// via model.export and via tf.saved_model.save with a signature; lookup
// tables with a vocabulary asset; and a TF1 export whose signature keys
// are not its placeholders' names and whose outputs include an input.
const exportExternal = `
import os
import keras
root = inputs["root"].item().decode()
rs = np.random.RandomState(11)
def base(name):
    return os.path.join(root, name, "1")

class Kinds(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(rs.randn(3).astype("float32"))
        self.h = tf.Variable(rs.randn(2).astype("float16"))
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def single(self, x):
        return tf.reduce_sum(x * self.w, axis=1)
    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.int64, name="i64"),
        tf.TensorSpec([None], tf.bool, name="flag"),
        tf.TensorSpec([None], tf.string, name="text"),
        tf.TensorSpec([None, 2], tf.uint8, name="u8"),
        tf.TensorSpec([None], tf.int8, name="i8"),
        tf.TensorSpec([None, None], tf.float64, name="f64"),
    ])
    def rows(self, i64, flag, text, u8, i8, f64):
        return {"i64": i64 * 3, "not": tf.logical_not(flag), "upper_bytes": tf.strings.upper(text),
                "len": tf.strings.length(text), "u16": tf.cast(u8, tf.uint16) * 300,
                "i8": i8 - 1, "f64": tf.reduce_sum(f64, axis=1)}
    @tf.function(input_signature=[
        tf.TensorSpec([None, 2], tf.float16, name="f16"),
        tf.TensorSpec([None], tf.bfloat16, name="bf16"),
        tf.TensorSpec([], tf.int32, name="k"),
        tf.TensorSpec(None, tf.float32, name="any_rank"),
    ])
    def narrow(self, f16, bf16, k, any_rank):
        return {"f16": f16 * self.h, "bf16": bf16 * tf.cast(k, tf.bfloat16),
                "mean": tf.reduce_mean(any_rank), "rank": tf.rank(any_rank)}
    @tf.function(input_signature=[tf.TensorSpec([None], tf.complex64, name="c")])
    def complex(self, c):
        return {"c": c * 2, "abs": tf.abs(c)}
k = Kinds()
tf.saved_model.save(k, base("kinds"), signatures={"serving_default": k.single, "rows": k.rows, "narrow": k.narrow, "complex": k.complex})

keras.utils.set_random_seed(9)
feat = keras.Input((4,), name="feat")
ids = keras.Input((None,), dtype="int32", name="ids")
e = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 4)(ids))
h = keras.layers.Concatenate()([feat, e])
probs = keras.layers.Dense(3, activation="softmax", name="probs")(h)
score = keras.layers.Dense(1, name="score")(h)
keras.Model({"feat": feat, "ids": ids}, {"probs": probs, "score": score}).export(base("keras_export"), verbose=False)
kd = keras.Model({"feat": feat, "ids": ids}, {"probs": probs, "score": score})
fn = tf.function(lambda feat, ids: kd({"feat": feat, "ids": ids}), input_signature=[
    tf.TensorSpec([None, 4], tf.float32, name="feat"), tf.TensorSpec([None, None], tf.int32, name="ids")])
tf.saved_model.save(kd, base("keras_saved_model"), signatures={"serving_default": fn})

vocab = os.path.join(root, "vocab.txt")
with open(vocab, "w") as f:
    f.write("the\nquick\nbrown\nfox\n")
class Lookup(tf.Module):
    def __init__(self):
        super().__init__()
        self.table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
            vocab, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER), -1)
        self.sl = keras.layers.StringLookup(vocabulary=["a", "b", "c"])
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="words")])
    def lookup(self, words):
        return {"ids": self.table.lookup(words), "letters": self.sl(words)}
lk = Lookup()
tf.saved_model.save(lk, base("lookup"), signatures={"serving_default": lk.lookup})
os.remove(vocab)

class Odd(tf.Module):
    def __init__(self):
        super().__init__()
        self.v = tf.Variable([1.0, 2.0])
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def handles(self, x):
        return {"handle": self.v.handle, "list": tf.raw_ops.TensorListFromTensor(tensor=x, element_shape=tf.constant([], tf.int32)), "y": x + 1}
odd = Odd()
tf.saved_model.save(odd, base("odd_dtypes"), signatures={"serving_default": odd.handles})

g = tf.Graph()
with g.as_default():
    sd = tf.compat.v1.saved_model.signature_def_utils
    x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="placeholder_x")
    n = tf.compat.v1.placeholder(tf.int32, [None], name="Placeholder")
    w = tf.compat.v1.get_variable("w", initializer=rs.randn(2).astype("float32"), use_resource=False)
    y = tf.identity(x * w * tf.cast(n, tf.float32)[:, None], name="output_tensor")
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        b = tf.compat.v1.saved_model.Builder(base("tf1_renamed"))
        b.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={
            "serving_default": sd.predict_signature_def({"features": x, "count": n}, {"scores": y, "echo": x}),
            "echo": sd.predict_signature_def({"features": x}, {"same": x}),
        })
        b.save()
# tf.py_function: Python code in the graph.
class PyFn(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def f(self, x):
        return {"y": tf.py_function(lambda v: v * 2, [x], tf.float32)}
pf = PyFn()
tf.saved_model.save(pf, base("py_function"), signatures={"serving_default": pf.f})
# SparseTensor input and output (COO sparse TensorInfo).
g = tf.Graph()
with g.as_default():
    sd = tf.compat.v1.saved_model.signature_def_utils
    ti = tf.compat.v1.saved_model.utils.build_tensor_info
    x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
    sp = tf.compat.v1.sparse_placeholder(tf.float32, [None, 3], name="sp")
    with tf.compat.v1.Session() as sess:
        b = tf.compat.v1.saved_model.Builder(base("tf1_sparse"))
        b.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={
            "serving_default": sd.predict_signature_def({"x": x}, {"y": x * 3}),
            "sparse_in": sd.build_signature_def({"sp": ti(sp)}, {"total": ti(tf.sparse.reduce_sum(sp, axis=1))}, "tensorflow/serving/predict"),
            "sparse_out": sd.build_signature_def({"x": ti(x)}, {"sp": ti(tf.sparse.from_dense(x))}, "tensorflow/serving/predict")})
        b.save()
# Two inputs on one placeholder (Python's loader refuses the model).
g = tf.Graph()
with g.as_default():
    x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
    with tf.compat.v1.Session() as sess:
        b = tf.compat.v1.saved_model.Builder(base("tf1_shared"))
        b.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={
            "serving_default": tf.compat.v1.saved_model.signature_def_utils.predict_signature_def({"a": x, "b": x}, {"y": x * 2})})
        b.save()
`

// TestExternalModelsServed serves the models of exportExternal and checks
// REST predict (row and columnar formats, b64 strings) and gRPC Predict
// answers against the signatures of tf.saved_model.load on the same
// inputs.
func TestExternalModelsServed(t *testing.T) {
	root := t.TempDir()
	interop.Python(t, exportExternal, map[string]*tfgo.Tensor{"root": str(t, root)})
	names := []string{"kinds", "keras_export", "keras_saved_model", "lookup", "tf1_renamed", "odd_dtypes", "tf1_shared", "tf1_sparse", "py_function"}
	var models []ModelConfig
	for _, n := range names {
		models = append(models, ModelConfig{Name: n, BasePath: filepath.Join(root, n)})
	}
	s, addr := startGRPCServer(t, Config{Models: models})
	dir := func(n string) string { return filepath.Join(root, n, "1") }
	r := rand.New(rand.NewPCG(5, 6))

	// The same requests to a server that batches (padded to 4 or 8 rows).
	batching := startServer(t, Config{Models: models, Batching: &BatchingConfig{
		MaxBatchSize: 8, AllowedBatchSizes: []int{4, 8}, PadVariableLengthInputs: true, BatchTimeout: time.Millisecond}})
	for _, c := range []struct{ model, body string }{
		{"kinds", `{"instances": [[1, 2, 3], [-0.5, 0.25, 8]]}`},
		{"kinds", `{"inputs": [[1, 2, 3]]}`},
		{"kinds", `{"signature_name": "rows", "instances": [
			{"i64": 9007199254740993, "flag": true, "text": {"b64": "AP/+IGJpbmFyeQ=="}, "u8": [255, 0], "i8": -128, "f64": [1.5, 2]},
			{"i64": -4, "flag": false, "text": "caf\u00e9", "u8": [7, 9], "i8": 127, "f64": [1e300, -1e300]}]}`},
		{"kinds", `{"signature_name": "rows", "inputs": {"i64": [1], "flag": [true], "text": [{"b64": "aGk="}], "u8": [[1, 2]], "i8": [0], "f64": [[0.125, 3, 4]]}}`},
		{"keras_export", `{"instances": [{"feat": [1, 2, 3, 4], "ids": [1, 2, 3]}, {"feat": [0, -1, 0.5, 2], "ids": [9, 0, 0]}]}`},
		{"keras_export", `{"inputs": {"feat": [[1, 2, 3, 4]], "ids": [[5, 5]]}}`},
		{"keras_saved_model", `{"instances": [{"feat": [1, 2, 3, 4], "ids": [1, 2, 3]}]}`},
		{"keras_saved_model", `{"inputs": {"feat": ` + floats(r, 3, 4) + `, "ids": [[1], [2], [3]]}}`},
		{"lookup", `{"instances": ["fox", "cat", {"b64": "YQ=="}, "the"]}`},
		{"lookup", `{"inputs": {"words": ["quick", ""]}}`},
		{"tf1_renamed", `{"instances": [{"features": [1, 2], "count": 3}, {"features": [-1, 0.5], "count": -2}]}`},
		{"tf1_renamed", `{"signature_name": "echo", "inputs": [[1.5, 2.5]]}`},
		// float16 and bfloat16 as JSON numbers, which TF Serving refuses.
		{"kinds", `{"signature_name": "narrow", "inputs": {"f16": [[1, 2.5], [0.1, -65504]], "bf16": [1, 3.14159], "k": 2, "any_rank": [[1], [2]]}}`},
		{"kinds", `{"signature_name": "narrow", "inputs": {"f16": [[1e-3, 7]], "bf16": [-0.3], "k": -3, "any_rank": 1.5}}`},
	} {
		checkPredict(t, s, dir(c.model), "/v1/models/"+c.model+":predict", c.body)
		if strings.Contains(c.body, `"narrow"`) {
			// A scalar input cannot be batched: TF Serving's answer.
			code, body := batching.post(t, "/v1/models/"+c.model+":predict", c.body)
			errorBody(t, "batching a scalar", http.StatusBadRequest, code, body, "Batching Run() input tensors must have at least one dimension")
			continue
		}
		checkPredict(t, batching, dir(c.model), "/v1/models/"+c.model+":predict", c.body)
	}
	// JSON has no complex numbers (nor has TF Serving's): the error names
	// the type.
	code, body := s.post(t, "/v1/models/kinds:predict", `{"signature_name": "complex", "inputs": {"c": [1, 2]}}`)
	errorBody(t, "complex64 over JSON", http.StatusNotImplemented, code, body, "complex64")

	checkGRPCPredict(t, addr, dir("kinds"), []map[string]any{
		{"model": "kinds", "inputs": map[string]any{"x": randomRows(r, 2, 3)}},
		{"model": "kinds", "signature": "rows", "inputs": map[string]any{"i64": []int64{1, -2}, "flag": []bool{true, false},
			"text": []any{map[string]string{"b64": "AP8="}, "x y"}, "u8": [][]int{{1, 2}, {255, 3}}, "i8": []int{-5, 5}, "f64": randomRows(r, 2, 4)}},
		{"model": "kinds", "signature": "narrow", "inputs": map[string]any{"f16": randomRows(r, 3, 2), "bf16": []float64{1.5, -2, 0.25}, "k": 3,
			"any_rank": [][][]float64{{{1, 2}}, {{3, 4}}}}},
		{"model": "kinds", "signature": "narrow", "inputs": map[string]any{"f16": randomRows(r, 1, 2), "bf16": []float64{}, "k": -1, "any_rank": 7.5}},
	})
	checkGRPCPredict(t, addr, dir("keras_saved_model"), []map[string]any{
		{"model": "keras_saved_model", "inputs": map[string]any{"feat": randomRows(r, 2, 4), "ids": [][]int{{1, 2}, {3, 4}}}},
	})
	checkGRPCPredict(t, addr, dir("keras_export"), []map[string]any{
		{"model": "keras_export", "inputs": map[string]any{"feat": randomRows(r, 1, 4), "ids": [][]int{{7, 8, 9}}}},
	})
	checkGRPCPredict(t, addr, dir("lookup"), []map[string]any{
		{"model": "lookup", "inputs": map[string]any{"words": []string{"brown", "b", "zzz"}}},
	})
	checkGRPCPredict(t, addr, dir("tf1_renamed"), []map[string]any{
		{"model": "tf1_renamed", "inputs": map[string]any{"features": randomRows(r, 2, 2), "count": []int{4, 5}}},
		{"model": "tf1_renamed", "signature": "echo", "inputs": map[string]any{"features": randomRows(r, 1, 2)}},
	})

	// Two inputs on one placeholder: refused, not one value dropped.
	code, body = s.post(t, "/v1/models/tf1_shared:predict", `{"inputs": {"a": [[1, 2]], "b": [[3, 4]]}}`)
	errorBody(t, "two inputs, one tensor", http.StatusNotImplemented, code, body, `inputs "a" and "b" are the same tensor x:0`)
	// Resource and variant outputs have no JSON or TensorProto form here:
	// refused by name; the other outputs can be asked for alone.
	code, body = s.post(t, "/v1/models/odd_dtypes:predict", `{"inputs": [1, 2]}`)
	errorBody(t, "resource output over JSON", http.StatusBadRequest, code, body, "resource")
	py := interop.Python(t, pyGRPC+`
req = predict_pb2.PredictRequest()
_spec(req, "odd_dtypes")
req.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1, 2], np.float32)))
outputs["all"] = np.array(_code(lambda: _pred.Predict(req, timeout=60)), dtype=object)
req.output_filter.append("y")
outputs["y"] = tf.make_ndarray(_pred.Predict(req, timeout=60).outputs["y"])
outputs["want_y"] = _m.signatures["serving_default"](x=tf.constant([1.0, 2.0]))["y"]
`, map[string]*tfgo.Tensor{"addr": str(t, addr), "dir": str(t, dir("odd_dtypes"))})
	require.Contains(t, stringsOf(t, py["all"])[0], "UNIMPLEMENTED")
	require.Contains(t, stringsOf(t, py["all"])[0], "is a resource tensor")
	sameTensor(t, "odd_dtypes y", py["want_y"], py["y"])

	// tf.py_function's op has no kernel outside Python: refused by name
	// before the session runs, and the server keeps serving.
	for i := 0; i < 3; i++ {
		code, body = s.post(t, "/v1/models/py_function:predict", `{"instances": [1, 2]}`)
		errorBody(t, "tf.py_function", http.StatusNotImplemented, code, body, `calls tf.py_function (op EagerPyFunc`)
	}
	// Sparse signature inputs and outputs are refused by name; the
	// model's dense signature is served.
	checkPredict(t, s, dir("tf1_sparse"), "/v1/models/tf1_sparse:predict", `{"instances": [[1, 2, 3]]}`)
	for _, c := range []struct{ sig, part string }{{"sparse_in", `input \"sp\"`}, {"sparse_out", `output \"sp\"`}} {
		code, body = s.post(t, "/v1/models/tf1_sparse:predict", `{"signature_name": "`+c.sig+`", "instances": [[1, 2, 3]]}`)
		errorBody(t, c.sig, http.StatusNotImplemented, code, body, "not a dense tensor")
		require.Contains(t, body, c.part)
	}

	// Metadata: the SignatureDefs as TF Serving prints them and the
	// signatures tf.saved_model.load sees.
	for _, n := range names {
		if n != "tf1_shared" && n != "tf1_sparse" { // see below
			checkMetadata(t, s, n, 1, dir(n))
		}
	}
	// tf1_sparse's SignatureDefs, COO sparse TensorInfos included, as TF
	// Serving prints them (Python's loaded functions take a sparse input
	// as three tensors, which checkMetadata's second half compares).
	code, body = s.get(t, "/v1/models/tf1_sparse/versions/1/metadata")
	require.Equal(t, http.StatusOK, code, body)
	var meta struct {
		Metadata struct {
			SignatureDef struct {
				SignatureDef map[string]any `json:"signature_def"`
			} `json:"signature_def"`
		} `json:"metadata"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &meta))
	py = interop.Python(t, pyMetadata, map[string]*tfgo.Tensor{"dir": str(t, dir("tf1_sparse"))})
	var want map[string]any
	require.NoError(t, json.Unmarshal([]byte(stringsOf(t, py["sigdefs"])[0]), &want))
	require.Equal(t, want, meta.Metadata.SignatureDef.SignatureDef)
	require.Contains(t, body, "coo_sparse")
}
