package runner

import (
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// TestFingerprint64MatchesTensorFlow compares savedmodel.Fingerprint64
// (farmhash) with TensorFlow's Fingerprint op (method "farmhash64") on
// strings of every length up to 300 bytes (each code path and tail).
func TestFingerprint64MatchesTensorFlow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var data [][]byte
	for n := 0; n <= 300; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		data = append(data, b)
	}
	in, err := tfgo.NewStringTensor([]int64{int64(len(data))}, data)
	require.NoError(t, err)
	py := interop.Python(t, `outputs["fp"] = tf.fingerprint(tf.constant(inputs["s"]), method="farmhash64")`,
		map[string]*tfgo.Tensor{"s": in})
	fp := py["fp"].Data()
	require.Equal(t, []int64{int64(len(data)), 8}, py["fp"].Shape())
	for i, b := range data {
		require.Equal(t, binary.LittleEndian.Uint64(fp[8*i:]), savedmodel.Fingerprint64(b), "length %d", len(b))
	}
}

// pyFingerprint is Python code setting outputs from a FingerprintDef fp.
const pyFingerprint = `
outputs["fields"] = np.array([fp.saved_model_checksum, fp.graph_def_program_hash, fp.signature_def_hash,
    fp.saved_object_graph_hash, fp.checkpoint_hash, fp.version.producer], dtype=np.uint64)
outputs["uuid"] = fp.uuid
`

func fields(fp *cpb.FingerprintDef) []uint64 {
	return []uint64{fp.GetSavedModelChecksum(), fp.GetGraphDefProgramHash(), fp.GetSignatureDefHash(),
		fp.GetSavedObjectGraphHash(), fp.GetCheckpointHash(), uint64(fp.GetVersion().GetProducer())}
}

// TestFingerprintMatchesTensorFlow: the fingerprint.pb Export writes has
// the values TensorFlow's own fingerprinting computes for the directory,
// Python reads it, and Fingerprint computes for a Python export what
// Python wrote.
func TestFingerprintMatchesTensorFlow(t *testing.T) {
	b := newBlock(t)
	dir := filepath.Join(t.TempDir(), "go")
	require.NoError(t, Export(dir, b.s.Graph(), b.sess, b.signatures(), ExportOptions{}))
	ours, err := savedmodel.ReadFingerprint(dir)
	require.NoError(t, err)
	require.NotZero(t, ours.GetCheckpointHash())
	require.Regexp(t, `^[0-9]+$`, savedmodel.FingerprintUUID(ours))

	py := interop.Python(t, `
from tensorflow.core.protobuf import fingerprint_pb2
from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting as fingerprinting_pywrap
fp = fingerprint_pb2.FingerprintDef.FromString(fingerprinting_pywrap.CreateFingerprintDef(inputs["dir"].item().decode()))
`+pyFingerprint+`
outputs["singleprint"] = tf.saved_model.experimental.read_fingerprint(inputs["dir"].item().decode()).singleprint()
`, map[string]*tfgo.Tensor{"dir": str(t, dir)})
	want, err := tfgo.Value(py["fields"])
	require.NoError(t, err)
	require.Equal(t, want, fields(ours), "TensorFlow's fingerprint of the Go export")
	single := stringsOf(t, py["singleprint"])
	require.Equal(t, savedmodel.Singleprint(ours), single[0], "Python reads fingerprint.pb")
	t.Logf("fingerprint of the Go export: %s (uuid %s)", savedmodel.Singleprint(ours), savedmodel.FingerprintUUID(ours))

	// A Python export (with an object graph and functions).
	pdir := filepath.Join(t.TempDir(), "py")
	py = interop.Python(t, `
from tensorflow.core.protobuf import fingerprint_pb2
class M(tf.Module):
    def __init__(self):
        super().__init__()
        self.v = tf.Variable([1.0, 2.0])
    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def f(self, x):
        return {"y": x * self.v, "s": tf.strings.as_string(x)}
m = M()
d = inputs["dir"].item().decode()
tf.saved_model.save(m, d, signatures=m.f)
fp = fingerprint_pb2.FingerprintDef.FromString(open(d + "/fingerprint.pb", "rb").read())
`+pyFingerprint, map[string]*tfgo.Tensor{"dir": str(t, pdir)})
	want, err = tfgo.Value(py["fields"])
	require.NoError(t, err)
	got, err := savedmodel.Fingerprint(pdir)
	require.NoError(t, err)
	require.Equal(t, want, fields(got), "Fingerprint of a Python export")
	read, err := savedmodel.ReadFingerprint(pdir)
	require.NoError(t, err)
	uuid := stringsOf(t, py["uuid"])
	require.Equal(t, uuid[0], savedmodel.FingerprintUUID(read))
	t.Logf("fingerprint of the Python export: %s", savedmodel.Singleprint(got))
}
