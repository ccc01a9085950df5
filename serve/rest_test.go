package serve

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// exportTF1 is Python code that writes a TF1-style SavedModel (as TF
// Serving's own test models are built) to inputs["dir"], with predict
// signatures of several dtypes and a string input, and classify and
// regress signatures on serialized tf.Examples.
const exportTF1 = `
d = inputs["dir"].item().decode()
g = tf.Graph()
with g.as_default():
    rs = np.random.RandomState(1)
    w = tf.compat.v1.get_variable("w", initializer=rs.randn(3, 2).astype("float32"))
    b = tf.compat.v1.get_variable("b", initializer=rs.randn(2).astype("float32"))
    x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
    y = tf.identity(tf.matmul(x, w) + b, name="y")
    a = tf.compat.v1.placeholder(tf.float32, [None, 3], name="a")
    n = tf.compat.v1.placeholder(tf.int64, [None], name="n")
    prod = tf.reduce_sum(a, axis=1) * tf.cast(n, tf.float32)
    n2 = n * n
    s = tf.compat.v1.placeholder(tf.string, [None], name="s")
    length = tf.strings.length(s)
    echo = tf.strings.join([s, s])
    t = tf.compat.v1.placeholder(tf.string, [None], name="t")
    greeting = tf.strings.join(["hello, ", t])
    ex = tf.compat.v1.placeholder(tf.string, [None], name="tf_example")
    feats = tf.io.parse_example(ex, {
        "x": tf.io.FixedLenFeature([3], tf.float32),
        "k": tf.io.FixedLenFeature([1], tf.int64, default_value=[0]),
        "tag": tf.io.FixedLenFeature([], tf.string, default_value=""),
    })
    logits = tf.matmul(feats["x"], w) + b + tf.cast(feats["k"], tf.float32) + tf.cast(tf.strings.length(feats["tag"]), tf.float32)[:, None]
    scores = tf.nn.softmax(logits)
    classes = tf.tile(tf.constant([["neg", "pos"]]), [tf.shape(scores)[0], 1])
    reg = tf.reduce_sum(logits, axis=1)
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        sd = tf.compat.v1.saved_model.signature_def_utils
        builder = tf.compat.v1.saved_model.Builder(d)
        builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={
            "serving_default": sd.predict_signature_def({"x": x}, {"y": y}),
            "multi": sd.predict_signature_def({"a": a, "n": n}, {"prod": prod, "n2": n2}),
            "strings": sd.predict_signature_def({"s": s}, {"len": length, "echo_bytes": echo}),
            "greet": sd.predict_signature_def({"t": t}, {"greeting": greeting}),
            "classify_x": sd.classification_signature_def(ex, classes, scores),
            "regress_x": sd.regression_signature_def(ex, reg),
        })
        builder.save()
`

// exportModule is Python code that saves a tf.Module with two signatures
// to inputs["dir"], its weights scaled by inputs["scale"] (so versions
// differ).
const exportModule = `
d = inputs["dir"].item().decode()
class Affine(tf.Module):
    def __init__(self, scale):
        super().__init__()
        self.w = tf.Variable(np.random.RandomState(0).randn(3, 2).astype("float32") * scale, name="w")
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def serve(self, x):
        return {"y": tf.matmul(x, self.w), "norm": tf.norm(x, axis=1)}
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="q"), tf.TensorSpec([], tf.int32, name="k")])
    def count(self, q, k):
        return {"n": tf.strings.length(q) * k}
m = Affine(float(inputs["scale"]))
tf.saved_model.save(m, d, signatures={"serving_default": m.serve, "count": m.count})
`

// pyLoad is Python code that loads (once per directory) the SavedModel in
// inputs["dir"] as _m.
const pyLoad = `
import builtins, json, base64
_cache = builtins.__dict__.setdefault("_serve_models", {})
_d = inputs["dir"].item().decode()
if _d not in _cache:
    _cache[_d] = tf.saved_model.load(_d)
_m = _cache[_d]
def _dec(v):
    if isinstance(v, dict) and list(v) == ["b64"]:
        return base64.b64decode(v["b64"])
    if isinstance(v, list):
        return [_dec(x) for x in v]
    if isinstance(v, str):
        return v.encode()
    return v
`

// pyPredict is Python code that reads a predict request and the server's
// answer (inputs "body" and "resp") as TF Serving's documentation
// describes them, runs the signature on the request's values with
// tf.saved_model.load's signature function, and returns for every output k
// want_k (the signature's output) and got_k (the server's answer, parsed
// by Python's json, which reads NaN and Infinity, with b64 decoded).
const pyPredict = pyLoad + `
req = json.loads(inputs["body"].item().decode())
resp = json.loads(inputs["resp"].item().decode())
fn = _m.signatures[req.get("signature_name", "serving_default")]
specs = fn.structured_input_signature[1]
def _is_named(v):
    return isinstance(v, dict) and list(v) != ["b64"]
if "instances" in req:
    inst = req["instances"]
    feeds = {k: [i[k] for i in inst] for k in specs} if _is_named(inst[0]) else {next(iter(specs)): inst}
    key = "predictions"
else:
    feeds = req["inputs"] if _is_named(req["inputs"]) else {next(iter(specs)): req["inputs"]}
    key = "outputs"
want = fn(**{k: tf.constant(_dec(v), dtype=specs[k].dtype) for k, v in feeds.items()})
got = resp[key]
names = sorted(want)
if len(names) == 1:
    got = {names[0]: got}
elif key == "predictions":
    got = {k: [r[k] for r in got] for k in names}
for k in names:
    w = want[k].numpy()
    outputs["want_" + k] = w
    outputs["got_" + k] = np.array(_dec(got[k]), dtype=object if w.dtype == object else w.dtype).reshape(w.shape)
`

// checkPredict sends a predict request and compares the answer with
// Python's signature outputs for the same request.
func checkPredict(t *testing.T, s *testServer, dir, path, body string) {
	t.Helper()
	code, resp := s.post(t, path, body)
	require.Equal(t, http.StatusOK, code, "%s %s: %s", path, excerpt(body), resp)
	py := interop.Python(t, pyPredict, map[string]*tfgo.Tensor{"dir": str(t, dir), "body": str(t, body), "resp": str(t, resp)})
	n := 0
	for k, want := range py {
		if name, ok := strings.CutPrefix(k, "want_"); ok {
			sameTensor(t, path+" "+name, want, py["got_"+name])
			n++
		}
	}
	require.Positive(t, n)
	t.Logf("%s %s: %d outputs equal Python's", path, excerpt(body), n)
}

func excerpt(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// floats formats a [rows][cols] matrix of random floats as JSON, with the
// given special values placed at the front.
func floats(r *rand.Rand, rows, cols int, special ...string) string {
	var b strings.Builder
	b.WriteByte('[')
	k := 0
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('[')
		for j := range cols {
			if j > 0 {
				b.WriteString(", ")
			}
			if k < len(special) {
				b.WriteString(special[k])
			} else {
				fmt.Fprintf(&b, "%g", float32(r.NormFloat64()))
			}
			k++
		}
		b.WriteByte(']')
	}
	b.WriteByte(']')
	return b.String()
}

// exportTF1Model exports the TF1 test model as BASE/1 and returns BASE.
func exportTF1Model(t *testing.T) string {
	t.Helper()
	base := filepath.Join(t.TempDir(), "tf1")
	interop.Python(t, exportTF1, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(base, "1"))})
	return base
}

// TestPredictMatchesPython serves a TF1 SavedModel and checks predict
// answers against the Python signature outputs of the same requests: row
// and columnar formats, one and several inputs and outputs, int64 inputs,
// NaN/Infinity, b64 strings in and _bytes out, plain strings, versions
// and labels in the path.
func TestPredictMatchesPython(t *testing.T) {
	base := exportTF1Model(t)
	dir := filepath.Join(base, "1")
	s := startServer(t, Config{Models: []ModelConfig{{Name: "tf1", BasePath: base, VersionLabels: map[string]int64{"stable": 1}}}})
	r := rand.New(rand.NewPCG(1, 2))

	x := floats(r, 4, 3)
	checkPredict(t, s, dir, "/v1/models/tf1:predict", `{"instances": `+x+`}`)
	checkPredict(t, s, dir, "/v1/models/tf1:predict", `{"inputs": `+x+`}`)
	checkPredict(t, s, dir, "/v1/models/tf1/versions/1:predict", `{"signature_name": "serving_default", "inputs": {"x": `+x+`}}`)
	checkPredict(t, s, dir, "/v1/models/tf1/labels/stable:predict", `{"instances": `+floats(r, 1, 3)+`}`)
	// NaN and the infinities travel both ways.
	checkPredict(t, s, dir, "/v1/models/tf1:predict", `{"instances": `+floats(r, 3, 3, "NaN", "Infinity", "-Infinity", "1e30", "-0.0", "3")+`}`)
	// Several inputs and outputs: objects per instance, or per name.
	checkPredict(t, s, dir, "/v1/models/tf1:predict", `{"signature_name": "multi", "instances": [{"a": [1.5, 2, -3], "n": 7}, {"a": [0.25, 4, 1e-3], "n": -9007199254740993}]}`)
	checkPredict(t, s, dir, "/v1/models/tf1:predict", `{"signature_name": "multi", "inputs": {"a": `+floats(r, 3, 3)+`, "n": [1, 2, 3]}}`)
	// Binary strings: {"b64": ...} in, *_bytes outputs as {"b64": ...}.
	bin := []string{"\x00\xff\xfe binary", "", "caf\xc3\xa9"}
	var b64 []string
	for _, v := range bin {
		b64 = append(b64, `{"b64": "`+base64.StdEncoding.EncodeToString([]byte(v))+`"}`)
	}
	checkPredict(t, s, dir, "/v1/models/tf1:predict", `{"signature_name": "strings", "instances": [`+strings.Join(b64, ", ")+`]}`)
	checkPredict(t, s, dir, "/v1/models/tf1:predict", `{"signature_name": "strings", "inputs": [`+strings.Join(b64, ", ")+`]}`)
	checkPredict(t, s, dir, "/v1/models/tf1:predict", `{"signature_name": "greet", "instances": ["world", "\u00e9t\u00e9 \"quoted\"\n"]}`)
	// The _bytes output really is base64 in the answer.
	code, resp := s.post(t, "/v1/models/tf1:predict", `{"signature_name": "strings", "inputs": [`+b64[0]+`]}`)
	require.Equal(t, http.StatusOK, code, resp)
	require.Contains(t, resp, `"echo_bytes": [{"b64": "`+base64.StdEncoding.EncodeToString([]byte(bin[0]+bin[0]))+`"}]`)
}

// pyExamples is Python code that runs a classify or regress signature on
// the examples of a request (inputs "body", "sig"), serialized by Python's
// tf.train.Example, and returns the server's answer (inputs "resp") parsed
// by Python beside it.
const pyExamples = pyLoad + `
req = json.loads(inputs["body"].item().decode())
resp = json.loads(inputs["resp"].item().decode())["results"]
def _feature(v):
    vs = v if isinstance(v, list) else [v]
    if all(isinstance(e, (str, dict)) for e in vs):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[_dec(e) for e in vs]))
    if all(isinstance(e, int) for e in vs):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=vs))
    return tf.train.Feature(float_list=tf.train.FloatList(value=vs))
ctx = req.get("context", {})
ser = []
for e in req["examples"]:
    feats = {k: _feature(v) for k, v in {**ctx, **e}.items()}
    ser.append(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
out = _m.signatures[inputs["sig"].item().decode()](inputs=tf.constant(ser))
if "scores" in out:
    outputs["want_scores"] = out["scores"].numpy()
    outputs["want_classes"] = out["classes"].numpy()
    outputs["got_scores"] = np.array([[c[1] for c in r] for r in resp], dtype=np.float32)
    outputs["got_classes"] = np.array([[c[0].encode() for c in r] for r in resp], dtype=object)
else:
    outputs["want_outputs"] = out["outputs"].numpy()
    outputs["got_outputs"] = np.array(resp, dtype=np.float32)
`

// TestClassifyRegressMatchPython runs :classify and :regress on
// classification and regression signatures and compares the results with
// Python running the same signatures on the same tf.Examples.
func TestClassifyRegressMatchPython(t *testing.T) {
	base := exportTF1Model(t)
	dir := filepath.Join(base, "1")
	s := startServer(t, Config{Models: []ModelConfig{{Name: "tf1", BasePath: base}}})
	for _, c := range []struct{ method, sig, body string }{
		{"classify", "classify_x", `{"signature_name": "classify_x", "examples": [{"x": [1.0, 2.5, -1.0], "k": 2}, {"x": [0.5, -0.5, 3.0], "tag": "abc"}, {"x": [1e-3, 2.0, 0.0], "tag": {"b64": "AAEC"}}]}`},
		{"classify", "classify_x", `{"signature_name": "classify_x", "context": {"k": [3]}, "examples": [{"x": [1.0, 2.0, 3.0]}, {"x": [-1.5, 0.0, 0.5]}]}`},
		{"regress", "regress_x", `{"signature_name": "regress_x", "examples": [{"x": [1.0, 2.5, -1.0], "k": 2}, {"x": [0.5, -0.5, 3.0]}]}`},
	} {
		code, resp := s.post(t, "/v1/models/tf1:"+c.method, c.body)
		require.Equal(t, http.StatusOK, code, "%s: %s", c.method, resp)
		py := interop.Python(t, pyExamples, map[string]*tfgo.Tensor{"dir": str(t, dir), "sig": str(t, c.sig), "body": str(t, c.body), "resp": str(t, resp)})
		n := 0
		for k, want := range py {
			if name, ok := strings.CutPrefix(k, "want_"); ok {
				sameTensor(t, c.method+" "+name, want, py["got_"+name])
				n++
			}
		}
		require.Positive(t, n)
		t.Logf("%s: %s", c.method, strings.TrimSpace(resp))
	}
	// A predict signature is not a classification one; the default
	// signature is predict too.
	code, resp := s.post(t, "/v1/models/tf1:classify", `{"examples": [{"x": [1, 2, 3]}]}`)
	errorBody(t, "classify on a predict signature", http.StatusBadRequest, code, resp, "No classification inputs found in SignatureDef")
	code, resp = s.post(t, "/v1/models/tf1:regress", `{"signature_name": "regress_x", "examples": []}`)
	errorBody(t, "no examples", http.StatusBadRequest, code, resp, "'examples' value is an empty array")
	code, resp = s.post(t, "/v1/models/tf1:regress", `{"signature_name": "regress_x", "examples": [{"x": [1, 2.5, 3]}]}`)
	errorBody(t, "mixed int and float feature", http.StatusBadRequest, code, resp, "Unexpected element type in feature: x expecting type: int64")
}

// pyMetadata is Python code that prints the SignatureDefs of
// inputs["dir"]'s saved_model.pb as TF Serving prints them (proto field
// names, default values), and lists the signatures tf.saved_model.load
// sees, one "name|input or output|key|dtype|dims" line each.
const pyMetadata = pyLoad + `
from tensorflow.core.protobuf import saved_model_pb2
from google.protobuf import json_format
sm = saved_model_pb2.SavedModel()
with open(_d + "/saved_model.pb", "rb") as f:
    sm.ParseFromString(f.read())
mg = [g for g in sm.meta_graphs if list(g.meta_info_def.tags) == ["serve"]][0]
outputs["sigdefs"] = json.dumps({k: json_format.MessageToDict(v, preserving_proto_field_name=True, always_print_fields_with_no_presence=True) for k, v in mg.signature_def.items()})
lines = []
def _dims(shape):
    return "?" if shape.rank is None else ",".join("-1" if d is None else str(d) for d in shape.as_list())
for name, fn in _m.signatures.items():
    for k, spec in fn.structured_input_signature[1].items():
        lines.append(f"{name}|input|{k}|{spec.dtype.as_datatype_enum}|{_dims(spec.shape)}")
    for k, spec in fn.structured_outputs.items():
        lines.append(f"{name}|output|{k}|{spec.dtype.as_datatype_enum}|{_dims(spec.shape)}")
outputs["loaded"] = np.array(sorted(lines), dtype=object)
`

// checkMetadata compares GET .../metadata with what Python reads from the
// SavedModel: the SignatureDefMap as TF Serving prints it, and the
// signatures tf.saved_model.load gives.
func checkMetadata(t *testing.T, s *testServer, model string, version int64, dir string) {
	t.Helper()
	code, resp := s.get(t, fmt.Sprintf("/v1/models/%s/versions/%d/metadata", model, version))
	require.Equal(t, http.StatusOK, code, resp)
	var got struct {
		ModelSpec map[string]any `json:"model_spec"`
		Metadata  struct {
			SignatureDef struct {
				SignatureDef map[string]json.RawMessage `json:"signature_def"`
			} `json:"signature_def"`
		} `json:"metadata"`
	}
	require.NoError(t, json.Unmarshal([]byte(resp), &got), resp)
	require.Equal(t, map[string]any{"name": model, "signature_name": "", "version": fmt.Sprint(version)}, got.ModelSpec)
	py := interop.Python(t, pyMetadata, map[string]*tfgo.Tensor{"dir": str(t, dir)})
	var want map[string]any
	require.NoError(t, json.Unmarshal([]byte(stringsOf(t, py["sigdefs"])[0]), &want))
	gotDefs := map[string]any{}
	for k, raw := range got.Metadata.SignatureDef.SignatureDef {
		var v any
		require.NoError(t, json.Unmarshal(raw, &v))
		gotDefs[k] = v
	}
	require.Equal(t, want, gotDefs, "signature_def of %s", dir)
	// The same signatures, as the loaded model's functions see them.
	var lines []string
	for name, raw := range got.Metadata.SignatureDef.SignatureDef {
		if name == "__saved_model_init_op" {
			continue
		}
		var def struct{ Inputs, Outputs map[string]tensorInfoJSON }
		require.NoError(t, json.Unmarshal(raw, &def))
		for kind, m := range map[string]map[string]tensorInfoJSON{"input": def.Inputs, "output": def.Outputs} {
			for k, ti := range m {
				dims := "?"
				if !ti.TensorShape.UnknownRank {
					var ds []string
					for _, d := range ti.TensorShape.Dim {
						ds = append(ds, d.Size)
					}
					dims = strings.Join(ds, ",")
				}
				lines = append(lines, fmt.Sprintf("%s|%s|%s|%d|%s", name, kind, k, dtypeNumber(t, ti.DType), dims))
			}
		}
	}
	sort.Strings(lines)
	require.Equal(t, stringsOf(t, py["loaded"]), lines)
	t.Logf("metadata of %s version %d: %d signatures equal Python's", model, version, len(gotDefs))
}

// tensorInfoJSON is the part of a TensorInfo's JSON the test reads.
type tensorInfoJSON struct {
	DType       string `json:"dtype"`
	TensorShape struct {
		Dim []struct {
			Size string `json:"size"`
		} `json:"dim"`
		UnknownRank bool `json:"unknown_rank"`
	} `json:"tensor_shape"`
}

func dtypeNumber(t *testing.T, name string) int {
	t.Helper()
	for dt := tfgo.DataType(1); dt < 30; dt++ {
		if dt.Proto().String() == name {
			return int(dt)
		}
	}
	t.Fatalf("unknown dtype %s", name)
	return 0
}

// TestMetadataMatchesPython compares the metadata of a TF1 model and a
// tf.Module export with Python's view of their SavedModels.
func TestMetadataMatchesPython(t *testing.T) {
	tf1 := exportTF1Model(t)
	mod := filepath.Join(t.TempDir(), "module")
	interop.Python(t, exportModule, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(mod, "3")), "scale": tensorOf(t, float32(1))})
	s := startServer(t, Config{Models: []ModelConfig{{Name: "tf1", BasePath: tf1}, {Name: "module", BasePath: mod}}})
	checkMetadata(t, s, "tf1", 1, filepath.Join(tf1, "1"))
	checkMetadata(t, s, "module", 3, filepath.Join(mod, "3"))
	// Without a version: the latest.
	code, resp := s.get(t, "/v1/models/module/metadata")
	require.Equal(t, http.StatusOK, code, resp)
	require.Contains(t, resp, `"version": "3"`)
}

func tensorOf(t *testing.T, v any) *tfgo.Tensor {
	t.Helper()
	tn, err := tfgo.NewTensor(v)
	require.NoError(t, err)
	return tn
}

// TestErrorsAsTFServing sends bad requests among good ones: each gets TF
// Serving's error shape, code and message, and the server keeps serving.
func TestErrorsAsTFServing(t *testing.T) {
	base := exportTF1Model(t)
	s := startServer(t, Config{
		Models:          []ModelConfig{{Name: "tf1", BasePath: base, VersionLabels: map[string]int64{"stable": 1}}},
		MaxRequestBytes: 1 << 20,
		MaxJSONValues:   1 << 15,
	})
	good := func() {
		t.Helper()
		code, resp := s.post(t, "/v1/models/tf1:predict", `{"instances": [[1, 2, 3]]}`)
		require.Equal(t, http.StatusOK, code, resp)
	}
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	big := `{"instances": [` + strings.Repeat("[1.0, 2.0, 3.0], ", 1<<14) + `[1, 2, 3]]}`
	huge := `{"instances": "` + strings.Repeat("x", 2<<20) + `"}`
	for _, c := range []struct {
		what, method, path, body string
		code                     int
		parts                    []string
	}{
		{"unknown model", "POST", "/v1/models/nosuch:predict", `{"instances": [1]}`, 404, []string{"Servable not found for request: Latest(nosuch)"}},
		{"unknown version", "POST", "/v1/models/tf1/versions/7:predict", `{"instances": [[1, 2, 3]]}`, 404, []string{"Servable not found for request: Specific(tf1, 7)"}},
		{"unknown label", "POST", "/v1/models/tf1/labels/canary:predict", `{"instances": [[1, 2, 3]]}`, 400, []string{"Unrecognized servable version label: canary"}},
		{"status of an unknown model", "GET", "/v1/models/nosuch", "", 404, []string{"Could not find any versions of model nosuch"}},
		{"status of an unknown version", "GET", "/v1/models/tf1/versions/9", "", 404, []string{"Could not find version 9 of model tf1"}},
		{"unknown signature", "POST", "/v1/models/tf1:predict", `{"signature_name": "nope", "instances": [[1, 2, 3]]}`, 400, []string{`Serving signature name: "nope" not found in signature def`}},
		{"signature_name not a string", "POST", "/v1/models/tf1:predict", `{"signature_name": 3, "instances": [[1, 2, 3]]}`, 400, []string{"'signature_name' key must be a string value."}},
		{"malformed JSON", "POST", "/v1/models/tf1:predict", `{"instances": [[1, 2, 3]`, 400, []string{"JSON Parse error: Missing a comma or ']' after an array element."}},
		{"empty body", "POST", "/v1/models/tf1:predict", ``, 400, []string{"JSON Parse error: The document is empty"}},
		{"not an object", "POST", "/v1/models/tf1:predict", `[1, 2]`, 400, []string{"Is not object"}},
		{"neither key", "POST", "/v1/models/tf1:predict", `{"instancez": [[1, 2, 3]]}`, 400, []string{"Missing 'inputs' or 'instances' key"}},
		{"both keys", "POST", "/v1/models/tf1:predict", `{"instances": [[1, 2, 3]], "inputs": [[1, 2, 3]]}`, 400, []string{"expecting only one of 'inputs' or 'instances' keys to exist"}},
		{"empty instances", "POST", "/v1/models/tf1:predict", `{"instances": []}`, 400, []string{"No values in 'instances' array"}},
		{"wrong dtype", "POST", "/v1/models/tf1:predict", `{"instances": [["a", "b", "c"]]}`, 400, []string{`JSON Value: "a" Type: String is not of expected type: float`}},
		{"wrong int dtype", "POST", "/v1/models/tf1:predict", `{"signature_name": "multi", "instances": [{"a": [1, 2, 3], "n": 1.5}]}`, 400, []string{"JSON Value: 1.5 Type: Number is not of expected type: int64"}},
		{"wrong shape", "POST", "/v1/models/tf1:predict", `{"instances": [[1, 2]]}`, 400, []string{"Matrix size-incompatible: In[0]: [1,2], In[1]: [3,2]"}},
		{"ragged", "POST", "/v1/models/tf1:predict", `{"instances": [[1, 2, 3], [1, 2]]}`, 400, []string{"Expecting tensor size: 3 but got: 2"}},
		{"ragged inside", "POST", "/v1/models/tf1:predict", `{"inputs": [[1, 2, 3], [1, [2], 3]]}`, 400, []string{"Encountered list at unexpected level: 2 expected < 2"}},
		{"missing named input", "POST", "/v1/models/tf1:predict", `{"signature_name": "multi", "inputs": {"a": [[1, 2, 3]]}}`, 400, []string{"Missing named input: n in 'inputs' object."}},
		{"unknown named input", "POST", "/v1/models/tf1:predict", `{"signature_name": "multi", "instances": [{"a": [1, 2, 3], "n": 1, "z": 2}]}`, 400, []string{"JSON object: does not have named input: z"}},
		{"plain list for several inputs", "POST", "/v1/models/tf1:predict", `{"signature_name": "multi", "instances": [[1, 2, 3]]}`, 400, []string{"instances is a plain list, but expecting list of objects"}},
		{"b64 that is not base64", "POST", "/v1/models/tf1:predict", `{"signature_name": "strings", "instances": [{"b64": "not base64!"}]}`, 400, []string{"Unable to base64 decode"}},
		{"b64 object with more keys", "POST", "/v1/models/tf1:predict", `{"signature_name": "strings", "inputs": [{"b64": "AA==", "x": 1}]}`, 400, []string{"not formatted correctly for base64 data"}},
		{"bad version", "POST", "/v1/models/tf1/versions/99999999999999999999:predict", `{"instances": [[1, 2, 3]]}`, 400, []string{"Failed to convert version: 99999999999999999999 to numeric."}},
		{"malformed path", "POST", "/v1/models/tf1:explode", `{}`, 400, []string{"Malformed request: POST /v1/models/tf1:explode"}},
		{"GET of a predict path", "GET", "/v1/models/tf1:predict", ``, 400, []string{"Malformed request: GET /v1/models/tf1:predict"}},
		{"no model name", "GET", "/v1/models", ``, 400, []string{"Missing model name in request."}},
		{"deep nesting", "POST", "/v1/models/tf1:predict", `{"instances": ` + deep + `}`, 400, []string{"nested deeper than 64 levels"}},
		{"too many values", "POST", "/v1/models/tf1:predict", big, 429, []string{"more than 32768 values"}},
		{"body over the limit", "POST", "/v1/models/tf1:predict", huge, 429, []string{"over the server's limit of 1048576 bytes"}},
		{"NaN for an int", "POST", "/v1/models/tf1:predict", `{"signature_name": "multi", "instances": [{"a": [1, 2, 3], "n": NaN}]}`, 400, []string{"is not of expected type: int64"}},
		{"bare word", "POST", "/v1/models/tf1:predict", `{"instances": [[1, 2, nope]]}`, 400, []string{"JSON Parse error: Invalid value. at offset: 22"}},
	} {
		code, resp := s.do(t, c.method, c.path, c.body)
		msg := errorBody(t, c.what, c.code, code, resp, c.parts...)
		t.Logf("%s: %d %s", c.what, code, excerpt(msg))
		good()
	}
}

// TestModelStatus checks GET /v1/models/{m} in TF Serving's form, and that
// a version that fails to load is END with its error.
func TestModelStatus(t *testing.T) {
	base := exportTF1Model(t)
	// A version directory without a SavedModel: it fails to load.
	require.NoError(t, os.MkdirAll(filepath.Join(base, "0"), 0o755))
	s := startServer(t, Config{
		Models:      []ModelConfig{{Name: "tf1", BasePath: base, Policy: VersionPolicy{Kind: All}, VersionLabels: map[string]int64{"stable": 1}}},
		LoadRetries: -1,
	})
	type status struct {
		MVS []struct {
			Version string `json:"version"`
			State   string `json:"state"`
			Status  struct {
				ErrorCode    string `json:"error_code"`
				ErrorMessage string `json:"error_message"`
			} `json:"status"`
		} `json:"model_version_status"`
	}
	var st status
	code, resp := s.get(t, "/v1/models/tf1")
	require.Equal(t, http.StatusOK, code, resp)
	require.NoError(t, json.Unmarshal([]byte(resp), &st))
	require.Len(t, st.MVS, 2, resp)
	require.Equal(t, "1", st.MVS[0].Version)
	require.Equal(t, "AVAILABLE", st.MVS[0].State)
	require.Equal(t, "OK", st.MVS[0].Status.ErrorCode)
	require.Equal(t, "", st.MVS[0].Status.ErrorMessage)
	require.Equal(t, "0", st.MVS[1].Version)
	require.Equal(t, "END", st.MVS[1].State)
	require.NotEqual(t, "OK", st.MVS[1].Status.ErrorCode)
	require.Contains(t, st.MVS[1].Status.ErrorMessage, "saved_model.pb")
	t.Logf("%s", resp)
	for _, p := range []string{"/v1/models/tf1/versions/1", "/v1/models/tf1/labels/stable", "/V1/MODELS/tf1/VERSIONS/1"} {
		code, resp = s.get(t, p)
		require.Equal(t, http.StatusOK, code, resp)
		st = status{}
		require.NoError(t, json.Unmarshal([]byte(resp), &st))
		require.Len(t, st.MVS, 1, resp)
		require.Equal(t, "AVAILABLE", st.MVS[0].State)
	}
}

// TestNewVersionServedWithinFiveSeconds drops version 2 of a tf.Module
// export into the base path while a client sends requests: the server
// answers with version 2 (Python's outputs of version 2) within 5 s, no
// request fails during the switch, and version 1 ends (latest{1}).
func TestNewVersionServedWithinFiveSeconds(t *testing.T) {
	base := filepath.Join(t.TempDir(), "module")
	staging := t.TempDir()
	interop.Python(t, exportModule, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(base, "1")), "scale": tensorOf(t, float32(1))})
	interop.Python(t, exportModule, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(staging, "2")), "scale": tensorOf(t, float32(-2))})
	s := startServer(t, Config{Models: []ModelConfig{{Name: "module", BasePath: base}}, PollInterval: 200 * time.Millisecond})
	body := `{"inputs": [[1.0, 2.0, 3.0], [-0.5, 0.25, 4.0]]}`
	checkPredict(t, s, filepath.Join(base, "1"), "/v1/models/module:predict", body)

	var stop atomic.Bool
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 5000 && !stop.Load(); i++ {
			resp, err := s.client.Post(s.url+"/v1/models/module:predict", "application/json", strings.NewReader(body))
			sent.Add(1)
			if err != nil {
				failed.Add(1)
				firstFailure.CompareAndSwap(nil, err.Error())
				continue
			}
			if resp.StatusCode != http.StatusOK {
				failed.Add(1)
				firstFailure.CompareAndSwap(nil, resp.Status)
			}
			resp.Body.Close()
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()

	// Publish version 2 atomically, as TF Serving's users must.
	require.NoError(t, os.Rename(filepath.Join(staging, "2"), filepath.Join(base, "2")))
	took := waitUntil(t, 5*time.Second, "version 2 served", func() bool {
		code, resp := s.get(t, "/v1/models/module/metadata")
		return code == http.StatusOK && strings.Contains(resp, `"version": "2"`)
	})
	t.Logf("version 2 served %s after it appeared", took.Round(time.Millisecond))
	checkPredict(t, s, filepath.Join(base, "2"), "/v1/models/module:predict", body)
	waitUntil(t, 10*time.Second, "version 1 unloaded", func() bool {
		vs, err := s.ModelStatus("module", nil)
		return err == nil && len(vs) == 2 && vs[1].Version == 1 && vs[1].State == StateEnd
	})
	stop.Store(true)
	wg.Wait()
	require.Zero(t, failed.Load(), "failed requests during the switch (first: %v)", firstFailure.Load())
	require.Positive(t, sent.Load())
	t.Logf("%d requests during the switch, none failed", sent.Load())
	code, resp := s.post(t, "/v1/models/module/versions/1:predict", body)
	errorBody(t, "unloaded version", http.StatusNotFound, code, resp, "Servable not found for request: Specific(module, 1)")
	// The module's second signature, with a scalar input: columnar only.
	checkPredict(t, s, filepath.Join(base, "2"), "/v1/models/module:predict", `{"signature_name": "count", "inputs": {"q": ["a", "bcd", ""], "k": 3}}`)
}

// TestDeadlineExceeded: a run whose deadline (Config.RequestTimeout) has
// passed is DeadlineExceeded, 504, as TF Serving maps it.
func TestDeadlineExceeded(t *testing.T) {
	base := exportTF1Model(t)
	s := startServer(t, Config{Models: []ModelConfig{{Name: "tf1", BasePath: base}}, RequestTimeout: time.Nanosecond})
	code, resp := s.post(t, "/v1/models/tf1:predict", `{"instances": [[1, 2, 3]]}`)
	errorBody(t, "expired deadline", http.StatusGatewayTimeout, code, resp, "deadline exceeded")
}

// TestReload changes the served set at run time: a model added is loaded,
// a model removed answers NotFound, a kept model takes its new policy and
// labels.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	interop.Python(t, exportModule, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(a, "1")), "scale": tensorOf(t, float32(1))})
	interop.Python(t, exportModule, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(b, "1")), "scale": tensorOf(t, float32(3))})
	interop.Python(t, exportModule, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(b, "2")), "scale": tensorOf(t, float32(-1))})
	s := startServer(t, Config{Models: []ModelConfig{{Name: "a", BasePath: a}}, PollInterval: 100 * time.Millisecond})
	body := `{"instances": [[1.0, 2.0, 3.0]]}`
	code, resp := s.post(t, "/v1/models/b:predict", body)
	errorBody(t, "b before the reload", http.StatusNotFound, code, resp, "Servable not found for request: Latest(b)")

	require.NoError(t, s.Reload([]ModelConfig{{Name: "a", BasePath: a}, {Name: "b", BasePath: b}}))
	waitUntil(t, 10*time.Second, "b available", func() bool {
		vs, err := s.ModelStatus("b", nil)
		return err == nil && len(vs) == 1 && vs[0].Version == 2 && vs[0].State == StateAvailable
	})
	checkPredict(t, s, filepath.Join(b, "2"), "/v1/models/b:predict", body)

	// a goes; b serves both versions, with a label on the older.
	require.NoError(t, s.Reload([]ModelConfig{{Name: "b", BasePath: b, Policy: VersionPolicy{Kind: All}, VersionLabels: map[string]int64{"old": 1}}}))
	waitUntil(t, 10*time.Second, "b's version 1 available", func() bool {
		vs, err := s.ModelStatus("b", nil)
		return err == nil && len(vs) == 2 && vs[1].State == StateAvailable
	})
	checkPredict(t, s, filepath.Join(b, "1"), "/v1/models/b/labels/old:predict", body)
	checkPredict(t, s, filepath.Join(b, "2"), "/v1/models/b:predict", body)
	code, resp = s.post(t, "/v1/models/a:predict", body)
	errorBody(t, "a after its removal", http.StatusNotFound, code, resp, "Servable not found for request: Latest(a)")
	code, resp = s.get(t, "/v1/models/a")
	errorBody(t, "status of a after its removal", http.StatusNotFound, code, resp, "Could not find any versions of model a")
	require.Error(t, s.Reload(nil), "an empty config")
	require.Error(t, s.Reload([]ModelConfig{{Name: "b", BasePath: b}, {Name: "b", BasePath: a}}), "a name twice")
}

// TestFailedVersionRetried: a version directory that is not complete when
// first seen fails to load (END with its error), and is tried again after
// LoadRetryInterval, once complete.
func TestFailedVersionRetried(t *testing.T) {
	base := filepath.Join(t.TempDir(), "module")
	staging := filepath.Join(t.TempDir(), "1")
	interop.Python(t, exportModule, map[string]*tfgo.Tensor{"dir": str(t, staging), "scale": tensorOf(t, float32(1))})
	require.NoError(t, os.MkdirAll(filepath.Join(base, "1"), 0o755))
	s := startServer(t, Config{Models: []ModelConfig{{Name: "module", BasePath: base}}, PollInterval: 50 * time.Millisecond, LoadRetryInterval: 300 * time.Millisecond})
	vs, err := s.ModelStatus("module", nil)
	require.NoError(t, err)
	require.Len(t, vs, 1)
	require.Equal(t, StateEnd, vs[0].State)
	require.NotNil(t, vs[0].Err)
	entries, err := os.ReadDir(staging)
	require.NoError(t, err)
	for _, e := range entries {
		require.NoError(t, os.Rename(filepath.Join(staging, e.Name()), filepath.Join(base, "1", e.Name())))
	}
	waitUntil(t, 5*time.Second, "version 1 loaded on a retry", func() bool {
		vs, err := s.ModelStatus("module", nil)
		return err == nil && vs[0].State == StateAvailable && vs[0].Err == nil
	})
	checkPredict(t, s, filepath.Join(base, "1"), "/v1/models/module:predict", `{"instances": [[1.0, 2.0, 3.0]]}`)
}

// exportHalfPlusThree is Python code that builds a model like the
// half_plus_three of TF Serving's REST documentation (y = 0.5x + 3 on x
// parsed from tf.Examples, with predict, regress and classify signatures)
// in inputs["dir"].
const exportHalfPlusThree = `
d = inputs["dir"].item().decode()
with tf.Graph().as_default():
    a = tf.compat.v1.Variable(0.5, name="a")
    b = tf.compat.v1.Variable(3.0, name="b")
    ex = tf.compat.v1.placeholder(tf.string, [None], name="tf_example")
    x = tf.identity(tf.io.parse_example(ex, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"], name="x")
    y = tf.identity(a * x + b, name="y")
    sd = tf.compat.v1.saved_model.signature_def_utils
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        builder = tf.compat.v1.saved_model.Builder(d)
        builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={
            "serving_default": sd.predict_signature_def({"x": x}, {"y": y}),
            "tensorflow/serving/regress": sd.regression_signature_def(ex, y),
            "tensorflow/serving/classify": sd.classification_signature_def(ex, None, y),
        })
        builder.save()
`

// pyHalfPlusThree computes the references for the documentation's
// requests (inputs "predict", "regress", "classify": the bodies) with the
// loaded model's signatures, and parses the server's answers (inputs
// "predict_resp" ...) with Python's json beside them.
const pyHalfPlusThree = pyLoad + `
def body(k):
    return json.loads(inputs[k].item().decode())
xs = body("predict")["instances"]
outputs["want_predict"] = _m.signatures["serving_default"](x=tf.constant(xs)[:, None])["y"].numpy().reshape(-1)
outputs["got_predict"] = np.array(body("predict_resp")["predictions"], np.float32)
def examples(req):
    return tf.constant([tf.train.Example(features=tf.train.Features(feature={
        k: tf.train.Feature(float_list=tf.train.FloatList(value=[v])) for k, v in e.items()})).SerializeToString()
        for e in req["examples"]])
req = body("regress")
outputs["want_regress"] = _m.signatures[req["signature_name"]](inputs=examples(req))["outputs"].numpy().reshape(-1)
outputs["got_regress"] = np.array(body("regress_resp")["results"], np.float32)
req = body("classify")
outputs["want_classify"] = _m.signatures[req["signature_name"]](inputs=examples(req))["scores"].numpy()
res = body("classify_resp")["results"]
outputs["got_classify"] = np.array([[c[1] for c in r] for r in res], np.float32)
outputs["labels"] = np.array([c[0] for r in res for c in r], dtype=object)
`

// TestDocumentationExample sends the requests of TF Serving's REST
// documentation (api_rest.md, its half_plus_three example) and compares
// the answers with Python's signature outputs; status and the unknown
// model's error have the documentation's shape.
func TestDocumentationExample(t *testing.T) {
	base := filepath.Join(t.TempDir(), "half_plus_three")
	dir := filepath.Join(base, "00000123")
	interop.Python(t, exportHalfPlusThree, map[string]*tfgo.Tensor{"dir": str(t, dir)})
	s := startServer(t, Config{Models: []ModelConfig{{Name: "half_plus_three", BasePath: base}}})

	code, resp := s.get(t, "/v1/models/half_plus_three")
	require.Equal(t, http.StatusOK, code, resp)
	var status any
	require.NoError(t, json.Unmarshal([]byte(resp), &status))
	require.Equal(t, map[string]any{"model_version_status": []any{map[string]any{
		"version": "123", "state": "AVAILABLE", "status": map[string]any{"error_code": "OK", "error_message": ""},
	}}}, status)

	bodies := map[string]string{
		"predict":  `{"instances": [1.0,2.0,5.0]}`,
		"regress":  `{"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 2.0}]}`,
		"classify": `{"signature_name": "tensorflow/serving/classify", "examples": [{"x": 1.0}, {"x": 2.0}]}`,
	}
	in := map[string]*tfgo.Tensor{"dir": str(t, dir)}
	for method, body := range bodies {
		code, resp := s.post(t, "/v1/models/half_plus_three:"+method, body)
		require.Equal(t, http.StatusOK, code, "%s: %s", method, resp)
		t.Logf("%s %s -> %s", method, body, strings.TrimSpace(resp))
		in[method], in[method+"_resp"] = str(t, body), str(t, resp)
	}
	py := interop.Python(t, pyHalfPlusThree, in)
	for method := range bodies {
		sameTensor(t, method, py["want_"+method], py["got_"+method])
	}
	require.Equal(t, []string{"", ""}, stringsOf(t, py["labels"]), "a classification without classes has empty labels")

	code, resp = s.post(t, "/v1/models/half:predict", `{"instances": [1.0,5.0]}`)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, `{ "error": "Servable not found for request: Latest(half)" }`, strings.TrimSpace(resp))
}
