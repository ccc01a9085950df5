package serve

import (
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// exportWarm is Python code that saves to inputs["dir"] a tf.Module whose
// predict, classify and regress signatures each add one to a variable,
// calls, that the "calls" signature reads: the number of runs the
// version has answered, warm-up included. Its "gate" signature writes to
// the file named by its input, so that a named pipe holds a warm-up
// request until the test opens the pipe's other end.
const exportWarm = `
d = inputs["dir"].item().decode()
class Warm(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(np.random.RandomState(0).randn(3, 2).astype("float32"), name="w")
        self.calls = tf.Variable(0, dtype=tf.int64, name="calls")
    def _x(self, inputs):
        return tf.io.parse_example(inputs, {"x": tf.io.FixedLenFeature([3], tf.float32)})["x"]
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def predict(self, x):
        self.calls.assign_add(1)
        return {"y": tf.matmul(x, self.w)}
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        self.calls.assign_add(1)
        scores = tf.nn.softmax(tf.matmul(self._x(inputs), self.w))
        return {"classes": tf.tile(tf.constant([["a", "b"]]), [tf.shape(scores)[0], 1]), "scores": scores}
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, inputs):
        self.calls.assign_add(1)
        return {"outputs": tf.reduce_sum(tf.matmul(self._x(inputs), self.w), axis=1)}
    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="path")])
    def gate(self, path):
        tf.io.write_file(path, "through")
        return {"path": tf.identity(path)}
    @tf.function(input_signature=[tf.TensorSpec([], tf.float32, name="unused")])
    def count(self, unused):
        return {"calls": self.calls.read_value()}
m = Warm()
tf.saved_model.save(m, d, signatures={"serving_default": m.predict, "classify": m.classify,
    "regress": m.regress, "gate": m.gate, "calls": m.count})
`

// writeWarmup is Python code that writes the warm-up file of the version
// directory inputs["dir"] with TF Serving's own client messages and
// tf.io.TFRecordWriter, as TF Serving's documentation shows: one
// PredictionLog per entry of inputs["records"] (JSON: "predict",
// "classify", "regress", "multi" (classify and regress tasks), "gate:<path>",
// "badinput", "session_run"). outputs["runs"] is the number of signature
// runs the records ask for.
const writeWarmup = `
import json, os
from tensorflow_serving.apis import prediction_log_pb2
d = inputs["dir"].item().decode()
os.makedirs(os.path.join(d, "assets.extra"), exist_ok=True)
def examples(inp):
    for row in ([1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]):
        inp.example_list.examples.add().features.feature["x"].float_list.value.extend(row)
runs = 0
with tf.io.TFRecordWriter(os.path.join(d, "assets.extra", "tf_serving_warmup_requests")) as w:
    for r in json.loads(inputs["records"].item().decode()):
        kind, _, arg = r.partition(":")
        log = prediction_log_pb2.PredictionLog()
        if kind == "predict":
            req = log.predict_log.request
            req.model_spec.name = "warm"
            req.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones((2, 3), np.float32)))
            runs += 1
        elif kind == "gate":
            req = log.predict_log.request
            req.model_spec.signature_name = "gate"
            req.inputs["path"].CopyFrom(tf.make_tensor_proto(arg.encode()))
        elif kind == "badinput":
            log.predict_log.request.inputs["nope"].CopyFrom(tf.make_tensor_proto(np.ones((1, 3), np.float32)))
        elif kind == "classify":
            req = log.classify_log.request
            req.model_spec.signature_name = "classify"
            examples(req.input)
            runs += 1
        elif kind == "regress":
            req = log.regress_log.request
            req.model_spec.signature_name = "regress"
            examples(req.input)
            runs += 1
        elif kind == "multi":
            req = log.multi_inference_log.request
            for sig, method in (("classify", "tensorflow/serving/classify"), ("regress", "tensorflow/serving/regress")):
                task = req.tasks.add()
                task.model_spec.name = "warm"
                task.model_spec.signature_name = sig
                task.method_name = method
                runs += 1
            examples(req.input)
        elif kind == "session_run":
            log.session_run_log.request.fetch.append("y")
        else:
            raise ValueError(kind)
        w.write(log.SerializeToString())
outputs["runs"] = np.array(runs, np.int64)
`

// exportWarmVersion saves the exportWarm module as dir and writes its
// warm-up file with records; it returns the signature runs they ask for.
func exportWarmVersion(t *testing.T, dir string, records ...string) int64 {
	t.Helper()
	interop.Python(t, exportWarm, map[string]*tfgo.Tensor{"dir": str(t, dir)})
	return writeWarmupFile(t, dir, records...)
}

func writeWarmupFile(t *testing.T, dir string, records ...string) int64 {
	t.Helper()
	b, err := json.Marshal(records)
	require.NoError(t, err)
	out := interop.Python(t, writeWarmup, map[string]*tfgo.Tensor{"dir": str(t, dir), "records": str(t, string(b))})
	runs, err := tfgo.Int64s(out["runs"])
	require.NoError(t, err)
	return runs[0]
}

// calls reads the warm module's run counter through the REST API.
func calls(t *testing.T, s *testServer, model string) int64 {
	t.Helper()
	code, body := s.post(t, "/v1/models/"+model+":predict", `{"signature_name": "calls", "inputs": {"unused": 0}}`)
	require.Equal(t, http.StatusOK, code, body)
	var resp struct{ Outputs int64 }
	require.NoError(t, jsonUnmarshal(body, &resp), body)
	return resp.Outputs
}

// TestWarmupReplaysBeforeAvailable: a version's warm-up records (predict,
// classify, regress and multi-inference logs written by TF Serving's
// Python client) run WarmupIterations times each before the version
// answers its first request: the model's own run counter, read by that
// first request, already holds records' runs × iterations. With warm-up
// off, it holds 0.
func TestWarmupReplaysBeforeAvailable(t *testing.T) {
	base := filepath.Join(t.TempDir(), "warm")
	runs := exportWarmVersion(t, filepath.Join(base, "1"), "predict", "predict", "classify", "regress", "multi")
	require.Positive(t, runs)
	const iterations = 3
	s := startServer(t, Config{Models: []ModelConfig{{Name: "warm", BasePath: base}}, PollInterval: -1, WarmupIterations: iterations})
	got := calls(t, s, "warm")
	require.Equal(t, runs*iterations, got, "runs before the first request")
	t.Logf("first request saw %d warm-up runs (%d per iteration, %d iterations)", got, runs, iterations)
	code, body := s.get(t, "/readyz")
	require.Equal(t, http.StatusOK, code, body)

	cold := startServer(t, Config{Models: []ModelConfig{{Name: "warm", BasePath: base}}, PollInterval: -1, DisableModelWarmup: true})
	require.Zero(t, calls(t, cold, "warm"), "runs with warm-up off")
}

// maskedCRC is TFRecord's masked crc32c, for a hand-made record header.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
	return (c>>15 | c<<17) + 0xa282ead8
}

// TestCorruptWarmupFailsTheLoad: a warm-up file that is truncated, fails
// a checksum, declares a huge record, holds bytes that are no
// PredictionLog, has more than 1000 records, or asks for a request that
// fails or a session run, fails its version's load (END, with an error
// naming the file and the record), without the server allocating what
// the file declares; the other models are served, and readiness names
// the failed ones.
func TestCorruptWarmupFailsTheLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good", "1")
	goodRuns := exportWarmVersion(t, good, "predict", "classify")
	warmFile := func(model string) string {
		return filepath.Join(dir, model, "1", filepath.FromSlash(warmupFile))
	}
	valid, err := os.ReadFile(warmFile("good"))
	require.NoError(t, err)
	huge := binary.LittleEndian.AppendUint64(nil, 1<<40)
	huge = binary.LittleEndian.AppendUint32(huge, maskedCRC(huge))
	huge = append(huge, "a few bytes"...)
	var tooMany []byte
	for range maxWarmupRecords + 1 {
		tooMany = savedmodel.AppendRecord(tooMany, nil)
	}
	flipped := append([]byte(nil), valid...)
	flipped[12+3] ^= 0xff
	files := map[string][]byte{
		"truncated": valid[:len(valid)-5],
		"crc":       flipped,
		"huge":      huge,
		"notproto":  savedmodel.AppendRecord(nil, []byte("not a PredictionLog")),
		"toomany":   tooMany,
	}
	cases := []struct {
		model string
		code  Code
		parts []string
	}{
		{"truncated", DataLoss, []string{"warm-up record 1 of", "unexpected EOF", "TFRecord format"}},
		{"crc", DataLoss, []string{"warm-up record 0 of", "crc32c", "TFRecord format"}},
		{"huge", DataLoss, []string{"warm-up record 0 of", "1099511627776 bytes is over the limit"}},
		{"notproto", InvalidArgument, []string{"Failed to parse warmup record 0"}},
		{"toomany", InvalidArgument, []string{"Number of warmup records exceeds the maximum (1000)"}},
		{"badinput", InvalidArgument, []string{"warm-up record 1 of", "Sent extra: {nope}"}},
		{"sessionrun", Unimplemented, []string{"warm-up record 0 of", "Unsupported log_type for warmup: session_run_log"}},
	}
	models := []ModelConfig{{Name: "good", BasePath: filepath.Join(dir, "good")}}
	for _, c := range cases {
		vdir := filepath.Join(dir, c.model, "1")
		require.NoError(t, os.CopyFS(vdir, os.DirFS(good)))
		switch c.model {
		case "badinput":
			writeWarmupFile(t, vdir, "predict", "badinput")
		case "sessionrun":
			writeWarmupFile(t, vdir, "session_run", "predict")
		default:
			require.NoError(t, os.WriteFile(warmFile(c.model), files[c.model], 0o644))
		}
		models = append(models, ModelConfig{Name: c.model, BasePath: filepath.Join(dir, c.model)})
	}
	s := startServer(t, Config{Models: models, PollInterval: -1, LoadRetries: -1})
	for _, c := range cases {
		vs, err := s.ModelStatus(c.model, nil)
		require.NoError(t, err, c.model)
		require.Len(t, vs, 1, c.model)
		require.Equal(t, StateEnd, vs[0].State, c.model)
		require.NotNil(t, vs[0].Err, c.model)
		require.Equal(t, c.code, vs[0].Err.Code, "%s: %s", c.model, vs[0].Err.Message)
		for _, p := range append(c.parts, warmFile(c.model)) {
			require.Contains(t, vs[0].Err.Message, p, c.model)
		}
		t.Logf("%s: %s", c.model, vs[0].Err.Message)
		code, body := s.post(t, "/v1/models/"+c.model+":predict", `{"instances": [[1.0, 2.0, 3.0]]}`)
		errorBody(t, c.model, http.StatusNotFound, code, body, "Servable not found")
	}
	require.Equal(t, goodRuns, calls(t, s, "good"), "the good model's warm-up runs")
	code, body := s.get(t, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	for _, c := range cases {
		require.Contains(t, body, "model "+c.model+": no version available (version 1 failed to load", c.model)
	}
	require.NotContains(t, body, "model good")
	require.True(t, strings.HasPrefix(body, `{ "status": "not ready"`), body)
}
