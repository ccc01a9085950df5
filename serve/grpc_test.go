package serve

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/serve/tfserving"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	tspb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// startGRPCServer is startServer with TF Serving's gRPC API on another
// loopback port too; it returns that port's address.
func startGRPCServer(t *testing.T, cfg Config) (*testServer, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	// Registered before startServer's cleanup, so it runs after Close.
	t.Cleanup(func() {
		select {
		case err := <-served:
			require.NoError(t, err)
		case <-time.After(time.Minute):
			t.Error("ServeGRPC did not return after Close")
		}
	})
	s := startServer(t, cfg)
	go func() { served <- s.ServeGRPC(l) }()
	return s, l.Addr().String()
}

// pyGRPC is Python code that connects TF Serving's own Python client
// (tensorflow_serving.apis, the tensorflow-serving-api package) to
// inputs["addr"] and loads the SavedModel of inputs["dir"] as _m.
const pyGRPC = pyLoad + `
import grpc
from tensorflow_serving.apis import (predict_pb2, classification_pb2, regression_pb2, inference_pb2,
    get_model_metadata_pb2, get_model_status_pb2, model_management_pb2, input_pb2,
    prediction_service_pb2_grpc, model_service_pb2_grpc)
from tensorflow_serving.config import model_server_config_pb2
_addr = inputs["addr"].item().decode()
_ch = grpc.insecure_channel(_addr)
grpc.channel_ready_future(_ch).result(timeout=60)
_pred = prediction_service_pb2_grpc.PredictionServiceStub(_ch)
_models = model_service_pb2_grpc.ModelServiceStub(_ch)
def _spec(req, model, sig=None, version=None, label=None):
    req.model_spec.name = model
    if sig is not None:
        req.model_spec.signature_name = sig
    if version is not None:
        req.model_spec.version.value = version
    if label is not None:
        req.model_spec.version_label = label
def _code(call):
    try:
        call()
    except grpc.RpcError as e:
        return e.code().name + ": " + e.details()
    return "OK"
`

// pyGRPCPredict sends the predict cases of inputs["cases"] (JSON: model,
// signature, optional version/label, inputs by name) with the official
// client's PredictionService.Predict, and returns for case i and output k
// want_i_k (the signature of tf.saved_model.load) and got_i_k (the answer,
// read with tf.make_ndarray), and spec_i (the answer's model spec).
const pyGRPCPredict = pyGRPC + `
for i, c in enumerate(json.loads(inputs["cases"].item().decode())):
    sig = c.get("signature") or "serving_default"
    fn = _m.signatures[sig]
    specs = fn.structured_input_signature[1]
    # "_" stands for a signature's only input, whose name Keras picks.
    named = {(next(iter(specs)) if k == "_" else k): v for k, v in c["inputs"].items()}
    feeds = {k: np.array(_dec(v), dtype=specs[k].dtype.as_numpy_dtype) for k, v in named.items()}
    req = predict_pb2.PredictRequest()
    _spec(req, c["model"], c.get("signature"), c.get("version"), c.get("label"))
    for k, v in feeds.items():
        req.inputs[k].CopyFrom(tf.make_tensor_proto(v))
    req.output_filter.extend(c.get("filter", []))
    resp = _pred.Predict(req, timeout=60)
    want = fn(**{k: tf.constant(v) for k, v in feeds.items()})
    names = c.get("filter") or sorted(want)
    if sorted(resp.outputs) != sorted(names):
        raise AssertionError(f"case {i}: outputs {sorted(resp.outputs)}, want {sorted(names)}")
    for k in names:
        outputs[f"want_{i}_{k}"] = want[k].numpy()
        outputs[f"got_{i}_{k}"] = tf.make_ndarray(resp.outputs[k])
    outputs[f"spec_{i}"] = np.array(f"{resp.model_spec.name}|{resp.model_spec.version.value}|{resp.model_spec.signature_name}", dtype=object)
`

// checkGRPCPredict runs pyGRPCPredict on cases and compares every output
// with Python's; it returns the answers' model specs.
func checkGRPCPredict(t *testing.T, addr, dir string, cases []map[string]any) []string {
	t.Helper()
	js, err := json.Marshal(cases)
	require.NoError(t, err)
	py := interop.Python(t, pyGRPCPredict, map[string]*tfgo.Tensor{"addr": str(t, addr), "dir": str(t, dir), "cases": str(t, string(js))})
	n := 0
	for k, want := range py {
		if name, ok := strings.CutPrefix(k, "want_"); ok {
			sameTensor(t, "grpc predict "+name, want, py["got_"+name])
			n++
		}
	}
	require.Positive(t, n)
	specs := make([]string, len(cases))
	for i := range cases {
		specs[i] = stringsOf(t, py["spec_"+strconv.Itoa(i)])[0]
	}
	return specs
}

// randomRows is rows×cols uniform floats in [-4, 4) as a JSON-ready slice.
func randomRows(r *rand.Rand, rows, cols int) [][]float64 {
	out := make([][]float64, rows)
	for i := range out {
		out[i] = make([]float64, cols)
		for j := range out[i] {
			out[i][j] = float64(float32(r.Float64()*8 - 4))
		}
	}
	return out
}

// exportKeras is Python code that exports a Keras model with
// model.export to inputs["dir"].
const exportKeras = `
import keras
keras.utils.set_random_seed(2)
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(2)])
m.export(inputs["dir"].item().decode())
`

// exportGoModel exports from a Go graph a model with two predict
// signatures, y = x·w + b and the rows' sums of x times an int32 scale.
func exportGoModel(t *testing.T, base string) {
	t.Helper()
	s := tfgo.NewScope()
	x := tfgo.Placeholder(s.SubScope("x"), tfgo.Float, -1, 3)
	k := tfgo.Placeholder(s.SubScope("k"), tfgo.Int32)
	w := tfgo.NewVariable(s, "w", tfgo.Float, []int64{3, 2}, tfgo.GlorotUniform(7))
	b := tfgo.NewVariable(s, "b", tfgo.Float, []int64{2}, tfgo.RandomNormal(0, 1, 8))
	y := tfgo.AddV2(s.SubScope("y"), tfgo.MatMul(s, x, w.Value()), b.Value())
	sum := tfgo.Mul(s.SubScope("scaled"), tfgo.Sum(s, x, tfgo.Const(s, int32(1))), tfgo.Cast(s, k, tfgo.Float))
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	_, err = sess.Run(nil, nil, tfgo.GlobalVariablesInitializer(s))
	require.NoError(t, err)
	_, err = runner.ExportVersion(base, 3, s.Graph(), sess, map[string]runner.Signature{
		"serving_default": {Inputs: map[string]tfgo.Output{"x": x}, Outputs: map[string]tfgo.Output{"y": y}},
		"scaled_sum":      {Inputs: map[string]tfgo.Output{"x": x, "k": k}, Outputs: map[string]tfgo.Output{"s": sum}},
	}, runner.ExportOptions{})
	require.NoError(t, err)
}

// TestGRPCPredictMatchesPython calls Predict with TF Serving's Python
// client on a Python TF1 SavedModel, a tf.Module saved with two signatures,
// a Keras model.export and a Go-exported model, and compares the answers with the signatures of
// tf.saved_model.load run on the same inputs in Python: several dtypes
// and signatures, strings, versions and labels, output_filter.
func TestGRPCPredictMatchesPython(t *testing.T) {
	root := t.TempDir()
	tf1 := exportTF1Model(t)
	mod := filepath.Join(root, "module")
	interop.Python(t, exportModule, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(mod, "2")), "scale": tensorOf(t, float32(1.5))})
	keras := filepath.Join(root, "keras")
	interop.Python(t, exportKeras, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(keras, "1"))})
	goBase := filepath.Join(root, "go")
	exportGoModel(t, goBase)
	_, addr := startGRPCServer(t, Config{Models: []ModelConfig{
		{Name: "tf1", BasePath: tf1, VersionLabels: map[string]int64{"stable": 1}},
		{Name: "module", BasePath: mod},
		{Name: "keras", BasePath: keras},
		{Name: "go", BasePath: goBase},
	}})
	r := rand.New(rand.NewPCG(3, 4))

	specs := checkGRPCPredict(t, addr, filepath.Join(tf1, "1"), []map[string]any{
		{"model": "tf1", "inputs": map[string]any{"x": randomRows(r, 4, 3)}},
		{"model": "tf1", "signature": "serving_default", "version": 1, "inputs": map[string]any{"x": randomRows(r, 1, 3)}},
		{"model": "tf1", "label": "stable", "inputs": map[string]any{"x": randomRows(r, 2, 3)}},
		{"model": "tf1", "signature": "multi", "inputs": map[string]any{"a": randomRows(r, 3, 3), "n": []int64{4, -9007199254740993, 0}}},
		{"model": "tf1", "signature": "multi", "filter": []string{"n2"}, "inputs": map[string]any{"a": randomRows(r, 2, 3), "n": []int64{5, 6}}},
		{"model": "tf1", "signature": "strings", "inputs": map[string]any{"s": []any{map[string]string{"b64": "AP/+IGJpbmFyeQ=="}, "", "caf\u00e9"}}},
	})
	require.Equal(t, []string{"tf1|1|serving_default", "tf1|1|serving_default", "tf1|1|serving_default", "tf1|1|multi", "tf1|1|multi", "tf1|1|strings"}, specs)
	specs = checkGRPCPredict(t, addr, filepath.Join(mod, "2"), []map[string]any{
		{"model": "module", "inputs": map[string]any{"x": randomRows(r, 5, 3)}},
		{"model": "module", "signature": "count", "inputs": map[string]any{"q": []string{"a", "abc", ""}, "k": 3}},
	})
	require.Equal(t, []string{"module|2|serving_default", "module|2|count"}, specs)
	specs = checkGRPCPredict(t, addr, filepath.Join(keras, "1"), []map[string]any{
		{"model": "keras", "inputs": map[string]any{"_": randomRows(r, 6, 4)}},
	})
	require.Equal(t, []string{"keras|1|serving_default"}, specs)
	checkGRPCPredict(t, addr, filepath.Join(goBase, "3"), []map[string]any{
		{"model": "go", "inputs": map[string]any{"x": randomRows(r, 3, 3)}},
		{"model": "go", "signature": "scaled_sum", "inputs": map[string]any{"x": randomRows(r, 2, 3), "k": -2}},
	})
}

// pyGRPCExamples calls Classify, Regress and MultiInference on the TF1
// model's classification and regression signatures with tf.Examples built
// by Python (with a context for Regress), and returns want_* from the
// signatures run on the same serialized examples and got_* from the
// answers.
const pyGRPCExamples = pyGRPC + `
def _ex(x, k=None, tag=None):
    f = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=x))}
    if k is not None:
        f["k"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[k]))
    if tag is not None:
        f["tag"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[tag]))
    return tf.train.Example(features=tf.train.Features(feature=f))
rs = np.random.RandomState(int(inputs["seed"]))
exs = [_ex(rs.randn(3).tolist(), 2), _ex(rs.randn(3).tolist(), tag=b"abc"), _ex(rs.randn(3).tolist(), tag=b"\x00\x01")]
ctx = tf.train.Example(features=tf.train.Features(feature={"k": tf.train.Feature(int64_list=tf.train.Int64List(value=[3]))}))
plain = [e.SerializeToString() for e in exs]
merged = [ctx.SerializeToString() + e.SerializeToString() for e in exs]

req = classification_pb2.ClassificationRequest()
_spec(req, "tf1", "classify_x")
req.input.example_list.examples.extend(exs)
resp = _pred.Classify(req, timeout=60)
out = _m.signatures["classify_x"](inputs=tf.constant(plain))
outputs["want_classify_scores"] = out["scores"].numpy()
outputs["got_classify_scores"] = np.array([[c.score for c in r.classes] for r in resp.result.classifications], dtype=np.float32)
outputs["want_classify_classes"] = out["classes"].numpy()
outputs["got_classify_classes"] = np.array([[c.label.encode() for c in r.classes] for r in resp.result.classifications], dtype=object)

req = regression_pb2.RegressionRequest()
_spec(req, "tf1", "regress_x")
req.input.example_list_with_context.examples.extend(exs)
req.input.example_list_with_context.context.CopyFrom(ctx)
resp = _pred.Regress(req, timeout=60)
outputs["want_regress"] = _m.signatures["regress_x"](inputs=tf.constant(merged))["outputs"].numpy()
outputs["got_regress"] = np.array([r.value for r in resp.result.regressions], dtype=np.float32)

req = inference_pb2.MultiInferenceRequest()
for sig, method in [("classify_x", "tensorflow/serving/classify"), ("regress_x", "tensorflow/serving/regress")]:
    task = req.tasks.add()
    task.model_spec.name = "tf1"
    task.model_spec.signature_name = sig
    task.method_name = method
req.input.example_list.examples.extend(exs)
resp = _pred.MultiInference(req, timeout=60)
outputs["want_multi_scores"] = out["scores"].numpy()
outputs["got_multi_scores"] = np.array([[c.score for c in r.classes] for r in resp.results[0].classification_result.classifications], dtype=np.float32)
outputs["want_multi_regress"] = _m.signatures["regress_x"](inputs=tf.constant(plain))["outputs"].numpy()
outputs["got_multi_regress"] = np.array([r.value for r in resp.results[1].regression_result.regressions], dtype=np.float32)
outputs["multi_specs"] = np.array([f"{r.model_spec.name}|{r.model_spec.version.value}|{r.model_spec.signature_name}" for r in resp.results], dtype=object)

# Refusals, with TF Serving's codes.
bad = classification_pb2.ClassificationRequest()
_spec(bad, "tf1")
bad.input.example_list.examples.extend(exs)
empty = regression_pb2.RegressionRequest()
_spec(empty, "tf1", "regress_x")
dup = inference_pb2.MultiInferenceRequest()
for m in ["tf1", "other"]:
    task = dup.tasks.add()
    task.model_spec.name = m
    task.model_spec.signature_name = "regress_x"
    task.method_name = "tensorflow/serving/regress"
dup.input.example_list.examples.extend(exs)
outputs["errors"] = np.array([
    _code(lambda: _pred.Classify(bad, timeout=60)),
    _code(lambda: _pred.Regress(empty, timeout=60)),
    _code(lambda: _pred.MultiInference(dup, timeout=60)),
], dtype=object)
`

// TestGRPCClassifyRegressMatchPython checks Classify, Regress (with an
// example context) and MultiInference against the same signatures run by
// Python, and the codes of refused requests.
func TestGRPCClassifyRegressMatchPython(t *testing.T) {
	tf1 := exportTF1Model(t)
	_, addr := startGRPCServer(t, Config{Models: []ModelConfig{{Name: "tf1", BasePath: tf1}}})
	py := interop.Python(t, pyGRPCExamples, map[string]*tfgo.Tensor{"addr": str(t, addr), "dir": str(t, filepath.Join(tf1, "1")), "seed": tensorOf(t, int64(5))})
	for _, k := range []string{"classify_scores", "classify_classes", "regress", "multi_scores", "multi_regress"} {
		sameTensor(t, k, py["want_"+k], py["got_"+k])
	}
	require.Equal(t, []string{"tf1|1|classify_x", "tf1|1|regress_x"}, stringsOf(t, py["multi_specs"]))
	errs := stringsOf(t, py["errors"])
	require.True(t, strings.HasPrefix(errs[0], "INVALID_ARGUMENT: No classification inputs found in SignatureDef"), errs[0])
	require.Equal(t, "INVALID_ARGUMENT: Input is empty.", errs[1])
	require.Equal(t, "INVALID_ARGUMENT: All ModelSpecs in a MultiInferenceRequest must access the same model name.", errs[2])
}

// pyGRPCModel calls GetModelMetadata and GetModelStatus, compares the
// SignatureDefMap answered with the one in saved_model.pb (read by
// Python's protobuf), sends bad requests, and reloads the config with
// HandleReloadConfigRequest to add inputs["new_base"] as model "added".
const pyGRPCModel = pyGRPC + `
from tensorflow.core.protobuf import saved_model_pb2
sm = saved_model_pb2.SavedModel()
with open(_d + "/saved_model.pb", "rb") as f:
    sm.ParseFromString(f.read())
want = [g for g in sm.meta_graphs if list(g.meta_info_def.tags) == ["serve"]][0].signature_def
req = get_model_metadata_pb2.GetModelMetadataRequest()
_spec(req, "tf1")
req.metadata_field.append("signature_def")
resp = _pred.GetModelMetadata(req, timeout=60)
got = get_model_metadata_pb2.SignatureDefMap()
if not resp.metadata["signature_def"].Unpack(got):
    raise AssertionError("metadata[signature_def] is not a SignatureDefMap: " + resp.metadata["signature_def"].type_url)
if sorted(got.signature_def) != sorted(want):
    raise AssertionError(f"signatures {sorted(got.signature_def)} != {sorted(want)}")
for k in want:
    if got.signature_def[k] != want[k]:
        raise AssertionError(f"signature {k}: {got.signature_def[k]} != {want[k]}")
outputs["metadata_spec"] = np.array(f"{resp.model_spec.name}|{resp.model_spec.version.value}", dtype=object)
outputs["signatures"] = np.array(sorted(got.signature_def), dtype=object)

def _status(model, version=None):
    req = get_model_status_pb2.GetModelStatusRequest()
    _spec(req, model, version=version)
    return [f"{v.version}|{get_model_status_pb2.ModelVersionStatus.State.Name(v.state)}|{v.status.error_code}|{v.status.error_message}"
            for v in _models.GetModelStatus(req, timeout=60).model_version_status]
outputs["status"] = np.array(_status("tf1"), dtype=object)

nometa = get_model_metadata_pb2.GetModelMetadataRequest()
_spec(nometa, "tf1")
unknown = get_model_status_pb2.GetModelStatusRequest()
_spec(unknown, "nope")
badsig = predict_pb2.PredictRequest()
_spec(badsig, "tf1", "nosuch")
badsig.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros([1, 3], np.float32)))
badname = predict_pb2.PredictRequest()
_spec(badname, "tf1")
badname.inputs["z"].CopyFrom(tf.make_tensor_proto(np.zeros([1, 3], np.float32)))
badtype = predict_pb2.PredictRequest()
_spec(badtype, "tf1")
badtype.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros([1, 3], np.int32)))
badshape = predict_pb2.PredictRequest()
_spec(badshape, "tf1")
badshape.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros([2, 5], np.float32)))
noversion = predict_pb2.PredictRequest()
_spec(noversion, "tf1", version=9)
noversion.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros([1, 3], np.float32)))
outputs["errors"] = np.array([
    _code(lambda: _pred.GetModelMetadata(nometa, timeout=60)),
    _code(lambda: _models.GetModelStatus(unknown, timeout=60)),
    _code(lambda: _pred.Predict(badsig, timeout=60)),
    _code(lambda: _pred.Predict(badname, timeout=60)),
    _code(lambda: _pred.Predict(badtype, timeout=60)),
    _code(lambda: _pred.Predict(badshape, timeout=60)),
    _code(lambda: _pred.Predict(noversion, timeout=60)),
], dtype=object)

reload = model_management_pb2.ReloadConfigRequest()
for name, base in [("tf1", inputs["tf1_base"].item().decode()), ("added", inputs["new_base"].item().decode())]:
    c = reload.config.model_config_list.config.add()
    c.name = name
    c.base_path = base
    c.model_platform = "tensorflow"
resp = _models.HandleReloadConfigRequest(reload, timeout=60)
outputs["reload"] = np.array(f"{resp.status.error_code}|{resp.status.error_message}", dtype=object)
import time
deadline = time.time() + 60
while True:
    try:
        st = _status("added")
        if st and st[0].split("|")[1] == "AVAILABLE":
            break
    except grpc.RpcError:
        pass
    if time.time() > deadline:
        raise AssertionError("the reloaded model is not AVAILABLE within 60 s")
    time.sleep(0.05)
outputs["added_status"] = np.array(st, dtype=object)
bad = model_management_pb2.ReloadConfigRequest()
bad.config.custom_model_config.type_url = "x"
outputs["reload_error"] = np.array(_code(lambda: _models.HandleReloadConfigRequest(bad, timeout=60)), dtype=object)
`

// TestGRPCModelServiceMatchesPython checks GetModelMetadata against the
// SignatureDefs Python reads from saved_model.pb, GetModelStatus, the
// codes of bad requests, and a HandleReloadConfigRequest that adds a model,
// all through TF Serving's Python client; then health checking and
// reflection from Go's client.
func TestGRPCModelServiceMatchesPython(t *testing.T) {
	tf1 := exportTF1Model(t)
	added := filepath.Join(t.TempDir(), "added")
	interop.Python(t, exportModule, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(added, "4")), "scale": tensorOf(t, float32(2))})
	s, addr := startGRPCServer(t, Config{Models: []ModelConfig{{Name: "tf1", BasePath: tf1}}, PollInterval: 50 * time.Millisecond})
	py := interop.Python(t, pyGRPCModel, map[string]*tfgo.Tensor{
		"addr": str(t, addr), "dir": str(t, filepath.Join(tf1, "1")), "tf1_base": str(t, tf1), "new_base": str(t, added),
	})
	require.Equal(t, "tf1|1", stringsOf(t, py["metadata_spec"])[0])
	require.Equal(t, []string{"classify_x", "greet", "multi", "regress_x", "serving_default", "strings"}, stringsOf(t, py["signatures"]))
	require.Equal(t, []string{"1|AVAILABLE|0|"}, stringsOf(t, py["status"]))
	errs := stringsOf(t, py["errors"])
	prefixes := []string{
		"INVALID_ARGUMENT: GetModelMetadataRequest must specify at least one metadata_field",
		"NOT_FOUND: Could not find any versions of model nope",
		`INVALID_ARGUMENT: Serving signature name: "nosuch" not found in signature def`,
		"INVALID_ARGUMENT: input size does not match signature",
		"INVALID_ARGUMENT: ", // the runtime's message on the feed's dtype
		"INVALID_ARGUMENT: ", // the runtime's message on the shape
		"NOT_FOUND: Servable not found for request: Specific(tf1, 9)",
	}
	require.Len(t, errs, len(prefixes))
	for i, p := range prefixes {
		t.Logf("refused: %s", errs[i])
		require.True(t, strings.HasPrefix(errs[i], p), "error %d: %q, want %q...", i, errs[i], p)
	}
	require.Contains(t, errs[4], "int32")
	require.Contains(t, errs[5], "[2,5]")
	require.Equal(t, "0|", stringsOf(t, py["reload"])[0])
	require.Equal(t, []string{"4|AVAILABLE|0|"}, stringsOf(t, py["added_status"]))
	require.True(t, strings.HasPrefix(stringsOf(t, py["reload_error"])[0], "INVALID_ARGUMENT: ServerModelConfig type not supported"), stringsOf(t, py["reload_error"])[0])
	vs, err := s.ModelStatus("added", nil)
	require.NoError(t, err)
	require.Equal(t, StateAvailable, vs[0].State)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, svc := range []string{"", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService"} {
		h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err, "health of %q", svc)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.Status, "health of %q", svc)
	}
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}))
	ref, err := stream.Recv()
	require.NoError(t, err)
	var names []string
	for _, svc := range ref.GetListServicesResponse().GetService() {
		names = append(names, svc.GetName())
	}
	require.Subset(t, names, []string{"tensorflow.serving.PredictionService", "tensorflow.serving.ModelService", "grpc.health.v1.Health"})
	// A client without the .proto files gets them from the server, with
	// TensorFlow's own (TensorProto) among the dependencies.
	require.NoError(t, stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "tensorflow.serving.PredictionService"}}))
	ref, err = stream.Recv()
	require.NoError(t, err)
	require.Empty(t, ref.GetErrorResponse().GetErrorMessage())
	require.NotEmpty(t, ref.GetFileDescriptorResponse().GetFileDescriptorProto())
	require.NoError(t, stream.CloseSend())
}

// pyTensorProtos makes TensorProtos of every dtype TF Serving's clients
// send with tf.make_tensor_proto: tensor_content for arrays, and one value
// broadcast to a shape (the repeated field's last value fills it).
const pyTensorProtos = `
rs = np.random.RandomState(int(inputs["seed"]))
names, protos = [], []
for dt in ["float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "uint16",
           "uint32", "uint64", "bool", "complex64", "complex128", "string"]:
    if dt == "bool":
        a = rs.rand(2, 3) > 0.5
    elif dt == "string":
        a = np.array([[b"a", b"", b"\x00\xff"], [b"xyz", "caf\u00e9".encode(), b"r"]], dtype=object)
    elif dt.startswith("complex"):
        a = (rs.randn(2, 3) + 1j * rs.randn(2, 3)).astype(dt)
    elif dt == "bfloat16":
        a = tf.constant(rs.randn(2, 3), dtype=tf.bfloat16).numpy()
    elif dt.startswith(("int", "uint")):
        info = np.iinfo(dt)
        a = rs.randint(info.min, info.max, size=(2, 3), dtype=dt)
    else:
        a = rs.randn(2, 3).astype(dt)
    names += [dt + "/array", dt + "/broadcast"]
    protos += [tf.make_tensor_proto(a).SerializeToString(),
               tf.make_tensor_proto(a.flat[-1], dtype=tf.as_dtype(a.dtype) if dt != "string" else tf.string, shape=[2, 3]).SerializeToString()]
outputs["names"] = np.array(names, dtype=object)
outputs["protos"] = np.array(protos, dtype=object)
`

// pyTensorCheck reads back, with tf.make_ndarray, the TensorProtos the
// server would answer for the tensors it made of pyTensorProtos' protos,
// and lists those that differ from the values Python sent.
const pyTensorCheck = `
from tensorflow.core.framework import tensor_pb2
bad = []
for name, sent, back in zip(inputs["names"], inputs["protos"], inputs["back"]):
    want = tf.make_ndarray(tensor_pb2.TensorProto.FromString(sent))
    got = tf.make_ndarray(tensor_pb2.TensorProto.FromString(back))
    if want.dtype != got.dtype or want.shape != got.shape or not np.array_equal(want, got):
        bad.append(f"{name.decode()}: sent {want!r}, answered {got!r}")
outputs["bad"] = np.array(bad + [""], dtype=object)
`

// TestTensorProtosMatchPython converts the TensorProtos Python makes for
// every dtype into runtime tensors and back into answers, and has Python
// read the answers: the values must be the ones Python sent, and reading
// an answer again must give the same tensor.
func TestTensorProtosMatchPython(t *testing.T) {
	py := interop.Python(t, pyTensorProtos, map[string]*tfgo.Tensor{"seed": tensorOf(t, int64(9))})
	names := stringsOf(t, py["names"])
	sent, err := py["protos"].Strings()
	require.NoError(t, err)
	back := make([][]byte, len(sent))
	for i, b := range sent {
		tp := &tpb.TensorProto{}
		require.NoError(t, proto.Unmarshal(b, tp), names[i])
		tn, err := tensorFromProto(names[i], tp, 0)
		require.NoError(t, err, names[i])
		defer tn.Close()
		answer, err := tensorProto(tn)
		require.NoError(t, err, names[i])
		again, err := tensorFromProto(names[i], answer, 0)
		require.NoError(t, err, names[i])
		defer again.Close()
		require.Equal(t, tn.Shape(), again.Shape(), names[i])
		if tn.DataType() == tfgo.String {
			require.Equal(t, stringsOf(t, tn), stringsOf(t, again), names[i])
		} else {
			require.Equal(t, tn.Data(), again.Data(), names[i])
		}
		if back[i], err = proto.Marshal(answer); err != nil {
			t.Fatal(err)
		}
	}
	backT, err := tfgo.NewStringTensor([]int64{int64(len(back))}, back)
	require.NoError(t, err)
	check := interop.Python(t, pyTensorCheck, map[string]*tfgo.Tensor{"names": py["names"], "protos": py["protos"], "back": backT})
	require.Equal(t, []string{""}, stringsOf(t, check["bad"]))

	// A short proto cannot make the server allocate a huge shape.
	huge := &tpb.TensorProto{Dtype: tfgo.Float.Proto(), FloatVal: []float32{1},
		TensorShape: &tspb.TensorShapeProto{Dim: []*tspb.TensorShapeProto_Dim{{Size: 1 << 20}, {Size: 1 << 20}}}}
	_, err = tensorFromProto("x", huge, 1<<20)
	require.Equal(t, ResourceExhausted, statusOf(err).Code, "%v", err)
}

// TestGRPCDeadlineExceeded: a run past the server's request timeout is
// DEADLINE_EXCEEDED, as over REST, and the server keeps answering.
func TestGRPCDeadlineExceeded(t *testing.T) {
	base := exportTF1Model(t)
	_, addr := startGRPCServer(t, Config{Models: []ModelConfig{{Name: "tf1", BasePath: base}}, RequestTimeout: time.Nanosecond})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	x, err := tensorProto(tensorOf(t, [][]float32{{1, 2, 3}}))
	require.NoError(t, err)
	_, err = tfserving.NewPredictionServiceClient(conn).Predict(ctx, &tfserving.PredictRequest{
		ModelSpec: &tfserving.ModelSpec{Name: "tf1"}, Inputs: map[string]*tpb.TensorProto{"x": x},
	})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	st, err := tfserving.NewModelServiceClient(conn).GetModelStatus(ctx, &tfserving.GetModelStatusRequest{ModelSpec: &tfserving.ModelSpec{Name: "tf1"}})
	require.NoError(t, err)
	require.Equal(t, tfserving.ModelVersionStatus_AVAILABLE, st.ModelVersionStatus[0].State)
}
