package keraslike

import (
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// A Keras 3 model checkpointed by Python's tf.train.Checkpoint loads into
// the equivalent keraslike model, which then predicts what Keras predicts.
func TestLoadObjectCheckpointFromPython(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewSource(3))
	ids := make([][]int32, 2)
	for i := range ids {
		ids[i] = make([]int32, 5)
		for j := range ids[i] {
			ids[i][j] = int32(r.Intn(10))
		}
	}
	idsT, err := tfgo.NewTensor(ids)
	require.NoError(t, err)
	prefix := filepath.Join(dir, "ckpt")
	pT, err := tfgo.NewStringTensor(nil, [][]byte{[]byte(prefix)})
	require.NoError(t, err)
	ref := interop.Python(t, `
import keras
keras.backend.clear_session()
ids = keras.Input((5,), dtype="int32")
x = keras.layers.Embedding(10, 8)(ids)
x = keras.layers.LayerNormalization(epsilon=1e-6)(x + keras.layers.MultiHeadAttention(2, 4)(x, x))
m = keras.Model(ids, keras.layers.Dense(3)(x))
# Seeded random weights: Keras' initial zero biases and unit gammas would
# let a loader that skips them pass.
rng = np.random.default_rng(3)
m.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in m.get_weights()])
tf.train.Checkpoint(model=m).write(inputs["prefix"].item().decode())
outputs["y"] = m(inputs["ids"])
`, map[string]*tfgo.Tensor{"prefix": pT, "ids": idsT})

	ResetNames()
	emb := NewEmbedding(10, 8, EmbeddingOptions{})
	mha := NewMultiHeadAttention(2, 4, MultiHeadAttentionOptions{})
	ln := NewLayerNormalization(LayerNormalizationOptions{Epsilon: 1e-6})
	head := NewDense(3, DenseOptions{})
	m := NewModel("functional", InputSpec{Shape: []int64{5}, DType: tfgo.Int32}, []Layer{emb, mha, ln, head},
		func(ctx *Context, x tfgo.Output) tfgo.Output {
			h := emb.Call(ctx, x)
			h = ln.Call(ctx, tfgo.Add(ctx.Scope, h, mha.Call(ctx, h)))
			return head.Call(ctx, h)
		})
	defer m.Close()
	require.NoError(t, m.LoadObjectCheckpoint(prefix))
	got, err := m.Predict(ids)
	require.NoError(t, err)
	allCloseTol(t, "predictions", ref["y"], got, kerasTol)
}
