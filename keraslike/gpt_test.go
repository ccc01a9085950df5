package keraslike

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Keras counterpart of keraslike's GPT, built from Keras layers with the
// same names and the Python twins of TransformerBlock and PositionalEmbedding
// (python/gotf/keraslike.py).
const kerasGPT = `
import keras
from gotf.keraslike import PositionalEmbedding, TransformerBlock
def gpt(seq, d, h, layers, name="gpt"):
    ids = keras.Input((seq,), dtype="int32")
    x = keras.layers.Embedding(256, d, name="token_embedding")(ids)
    x = PositionalEmbedding(seq, d, name="position_embedding")(x)
    for i in range(layers):
        x = TransformerBlock(d, h, 4 * d, name="block_%d" % i)(x)
    return keras.Model(ids, keras.layers.Dense(256, name="lm_head")(x), name=name)
`

// A keraslike GPT and its Keras twin have the same weights: paths, shapes,
// order and parameter count.
func TestGPTWeightsMatchKeras(t *testing.T) {
	ResetNames()
	m, err := NewGPT("gpt", GPTConfig{SeqLen: 16, DModel: 32, Heads: 4, Layers: 2})
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Build())
	ref := interop.Python(t, kerasGPT+`
keras.backend.clear_session()
m = gpt(16, 32, 4, 2)
outputs["paths"] = np.array([v.path.encode() for v in m.weights], dtype=object)
outputs["shapes"] = np.array([",".join(map(str, v.shape)).encode() for v in m.weights], dtype=object)
outputs["count"] = np.int64(m.count_params())
`, nil)
	paths, _ := ref["paths"].Strings()
	shapes, _ := ref["shapes"].Strings()
	count, err := tfgo.Int64s(ref["count"])
	require.NoError(t, err)
	ws := m.Weights()
	require.Len(t, ws, len(paths))
	for i, w := range ws {
		assert.Equal(t, string(paths[i]), w.Path, "weight %d", i)
		assert.Equal(t, string(shapes[i]), joinDims(w.Shape()), "shape of %s", w.Path)
	}
	assert.Equal(t, count[0], m.CountParams())
}

func joinDims(d []int64) string {
	s := ""
	for i, x := range d {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprint(x)
	}
	return s
}

// One full Adam and one AdamW step of a transformer block equal Keras':
// the updated weights and the optimizer slots (1e-5).
func TestTransformerBlockOptimizerStepMatchesKeras(t *testing.T) {
	const T, D, H = 6, 16, 4
	r := rand.New(rand.NewSource(21))
	x := randTensor(t, r, 4, T, D)
	y := randTensor(t, r, 4, T, D)
	for _, c := range []struct{ name, py string }{
		{"adam", "keras.optimizers.Adam(learning_rate=0.01)"},
		{"adamw", "keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.05)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ResetNames()
			blk := NewTransformerBlock(D, H, 4*D, TransformerBlockOptions{Name: "transformer_block"})
			m := NewSequential("blk", InputSpec{Shape: []int64{T, D}}, blk)
			defer m.Close()
			var opt Optimizer = NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}})
			if c.name == "adamw" {
				opt = NewAdamW(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}, WeightDecay: 0.05})
			}
			require.NoError(t, m.Compile(CompileOptions{Optimizer: opt, Loss: MeanSquaredError{}}))
			initial, err := m.GetWeights()
			require.NoError(t, err)
			sess, err := m.Session()
			require.NoError(t, err)
			tg := m.train
			_, err = sess.Run(map[tfgo.Output]any{tg.x: x, tg.yTrue: y}, nil, tg.step)
			require.NoError(t, err)
			after, err := m.GetWeights()
			require.NoError(t, err)
			var slotOuts []tfgo.Output
			var slotNames []string
			for _, v := range opt.Variables()[1:] {
				slotOuts = append(slotOuts, v.Value())
				slotNames = append(slotNames, v.Name())
			}
			slots, err := sess.Run(nil, slotOuts)
			require.NoError(t, err)

			in := map[string]*tfgo.Tensor{"x": x, "y": y}
			for i, w := range initial {
				in[fmt.Sprintf("w%02d", i)] = w
			}
			ref := interop.Python(t, kerasGPT+fmt.Sprintf(`
keras.backend.clear_session()
m = keras.Sequential([keras.Input((%d, %d)), TransformerBlock(%d, %d, %d, name="transformer_block")], name="blk")
m.set_weights([inputs[k] for k in sorted(inputs) if k.startswith("w")])
opt = %s
m.compile(optimizer=opt, loss="mse")
m.train_on_batch(inputs["x"], inputs["y"])
`, T, D, D, H, 4*D, c.py)+pyTrainedState, in)
			// The gradients differ from Keras' by rounding relative to the
			// largest gradient (~1e-7 of it: TestTransformerBlockGradients
			// MatchKeras). Adam's first step is lr·g/(|g|+ε), about ±lr:
			// where |g| approaches ε (the key bias, whose gradient is zero in
			// exact arithmetic) that rounding moves the step by up to
			// lr·Δg/ε, observed 2e-6 = 2e-4·lr; elsewhere <= 6.4e-7.
			require.Len(t, after, len(initial))
			for i := range after {
				allClose(t, "weight "+m.Weights()[i].Path, ref[fmt.Sprintf("w%02d", i)], after[i], 1e-3*0.01, 0)
			}
			names, err := ref["slot_names"].Strings()
			require.NoError(t, err)
			require.Len(t, slots, len(names))
			// The slots are (1-β1)·g and (1-β2)·g²: their rounding follows
			// the largest momentum (velocity) of the model, as the
			// gradients' does; observed < 1e-7 of it.
			scale := map[bool]float64{}
			for i := range slots {
				kind := strings.HasSuffix(slotNames[i], "_velocity")
				for _, v := range floats(t, ref[fmt.Sprintf("s%02d", i)]) {
					scale[kind] = math.Max(scale[kind], math.Abs(float64(v)))
				}
			}
			for i := range slots {
				assert.Equal(t, string(names[i]), slotNames[i])
				kind := strings.HasSuffix(slotNames[i], "_velocity")
				allClose(t, "slot "+string(names[i]), ref[fmt.Sprintf("s%02d", i)], slots[i], 2e-6*scale[kind], 0)
			}
		})
	}
}
