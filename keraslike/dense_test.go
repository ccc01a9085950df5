package keraslike

import (
	"math/rand"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randTensor is a float32 tensor of N(0, 1) values.
func randTensor(t *testing.T, r *rand.Rand, shape ...int64) *tfgo.Tensor {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	flat, err := tfgo.NewTensor(v)
	require.NoError(t, err)
	defer flat.Close()
	tn, err := tfgo.NewTensorFromBytes(tfgo.Float, shape, flat.Data())
	require.NoError(t, err)
	return tn
}

func floats(t *testing.T, tn *tfgo.Tensor) []float32 {
	v, err := tfgo.Float32s(tn)
	require.NoError(t, err)
	return v
}

// run initializes the variables of s and evaluates outs.
func run(t *testing.T, s *tfgo.Scope, feeds map[tfgo.Output]any, outs ...tfgo.Output) []*tfgo.Tensor {
	t.Helper()
	init := tfgo.GlobalVariablesInitializer(s)
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { sess.Close() })
	_, err = sess.Run(nil, nil, init)
	require.NoError(t, err)
	res, err := sess.Run(feeds, outs)
	require.NoError(t, err)
	return res
}

func TestDenseMatchesKeras(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	x := randTensor(t, r, 2, 3, 5)
	k := randTensor(t, r, 5, 4)
	b := randTensor(t, r, 4)
	for _, act := range []string{"", "relu", "gelu", "tanh", "softmax", "sigmoid"} {
		t.Run("activation="+act, func(t *testing.T) {
			s := tfgo.NewScope()
			d := NewDense(4, DenseOptions{Name: "dense", Activation: act, KernelInitializer: tfgo.InitialValue(k), BiasInitializer: tfgo.InitialValue(b)})
			y := d.Call(NewContext(s, false), tfgo.Const(s, x))
			got := run(t, s, nil, y)[0]
			pyAct := act
			if pyAct == "" {
				pyAct = "None"
			} else {
				pyAct = `"` + act + `"`
			}
			ref := interop.Python(t, `
import keras
d = keras.layers.Dense(4, activation=`+pyAct+`, name="dense")
d.build((None, 3, 5))
d.set_weights([inputs["k"], inputs["b"]])
outputs["y"] = d(inputs["x"])
outputs["paths"] = np.array([v.path.encode() for v in d.weights], dtype=object)
`, map[string]*tfgo.Tensor{"x": x, "k": k, "b": b})
			assert.InDeltaSlice(t, floats(t, ref["y"]), floats(t, got), 1e-5)
			paths, err := ref["paths"].Strings()
			require.NoError(t, err)
			require.Len(t, d.Weights(), len(paths))
			for i, w := range d.Weights() {
				assert.Equal(t, string(paths[i]), w.Path)
				assert.Equal(t, string(paths[i]), w.Name(), "variable name equals Keras path")
			}
		})
	}
}

func TestDenseBadInput(t *testing.T) {
	s := tfgo.NewScope()
	d := NewDense(4, DenseOptions{Name: "head"})
	d.Call(NewContext(s, false), tfgo.Placeholder(s, tfgo.Float, 3))
	require.ErrorContains(t, s.Err(), `layer "head" (Dense): needs inputs of rank >= 2`)

	s = tfgo.NewScope()
	d = NewDense(4, DenseOptions{Name: "head"})
	d.Call(NewContext(s, false), tfgo.Placeholder(s, tfgo.Int32, 2, 3))
	require.ErrorContains(t, s.Err(), "floating-point")

	s = tfgo.NewScope()
	d = NewDense(4, DenseOptions{Name: "head", Activation: "swishy"})
	d.Call(NewContext(s, false), tfgo.Placeholder(s, tfgo.Float, 2, 3))
	require.ErrorContains(t, s.Err(), `unknown activation "swishy"`)

	s = tfgo.NewScope()
	d = NewDense(4, DenseOptions{Name: "head"})
	ctx := NewContext(s, false)
	d.Call(ctx, tfgo.Placeholder(s, tfgo.Float, 2, 3))
	d.Call(ctx, tfgo.Placeholder(s, tfgo.Float, 2, 5))
	require.ErrorContains(t, s.Err(), "built for inputs with last dimension 3, got 5")
}
