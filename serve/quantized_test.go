package serve

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
	tfpb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
)

// An int8 model (keraslike's Quantize, Keras' model.quantize) exported as
// a SavedModel serves the predictions the quantized model makes in Go.
func TestServesQuantizedSavedModel(t *testing.T) {
	keraslike.ResetNames()
	m := keraslike.NewSequential("mlp", keraslike.InputSpec{Shape: []int64{8}},
		keraslike.NewDense(32, keraslike.DenseOptions{Activation: "relu"}), keraslike.NewDense(4, keraslike.DenseOptions{}))
	defer m.Close()
	require.NoError(t, m.Quantize("int8"))
	base := t.TempDir()
	require.NoError(t, m.Export(filepath.Join(base, "1"), keraslike.ExportOptions{}))
	vars, err := savedmodel.OpenBundle(filepath.Join(base, "1", "variables", "variables"))
	require.NoError(t, err)
	int8s := 0
	for _, k := range vars.Keys() {
		e, err := vars.EntryProto(k)
		require.NoError(t, err)
		if e.GetDtype() == tfpb.DataType_DT_INT8 {
			int8s++
		}
	}
	vars.Close()
	require.Equal(t, 2, int8s, "int8 kernels in the SavedModel")

	r := rand.New(rand.NewSource(5))
	rows := make([][]float32, 3)
	for i := range rows {
		rows[i] = make([]float32, 8)
		for j := range rows[i] {
			rows[i][j] = float32(r.NormFloat64())
		}
	}
	x, err := tfgo.NewTensor(rows)
	require.NoError(t, err)
	sess, err := m.Session()
	require.NoError(t, err)
	out, err := sess.Run(map[tfgo.Output]any{m.Input(): x}, []tfgo.Output{m.Output()})
	require.NoError(t, err)
	want, err := tfgo.Float32s(out[0])
	require.NoError(t, err)

	s := startServer(t, Config{Models: []ModelConfig{{Name: "q", BasePath: base}}})
	body, err := json.Marshal(map[string]any{"instances": rows})
	require.NoError(t, err)
	code, resp := s.post(t, "/v1/models/q:predict", string(body))
	require.Equal(t, 200, code, resp)
	var got struct{ Predictions [][]float32 }
	require.NoError(t, json.Unmarshal([]byte(resp), &got))
	var flat []float32
	for _, p := range got.Predictions {
		flat = append(flat, p...)
	}
	testutil.AllClose(t, fmt.Sprintf("predictions of %s", resp), want, flat, 1e-6, 1e-5)
}
