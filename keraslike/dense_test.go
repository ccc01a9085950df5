package keraslike

import (
	"math/rand"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
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
	t.Helper()
	v, err := tfgo.Float32s(tn)
	require.NoError(t, err)
	return v
}

// allClose compares two float32 tensors: equal shapes, no NaN, and
// |got - want| <= atol + rtol·|want| at every element (testutil.AllClose).
func allClose(t *testing.T, what string, want, got *tfgo.Tensor, atol, rtol float64) bool {
	t.Helper()
	return allCloseTol(t, what, want, got, testutil.Tol{Atol: atol, Rtol: rtol})
}

// kerasTol compares a forward pass of ours with Keras' on the same
// weights: both run TensorFlow's float32 kernels op for op and agree to the
// bit on the machines we measured, but grappler fuses ops differently in
// a session graph, a tf.function and eager calls (MatMul+BiasAdd+activation
// into one kernel), which may round differently on another CPU: a few ulps
// of each element, or of the tensor's largest for sums of mixed signs.
var kerasTol = testutil.Tol{Rtol: 1e-6, Scaled: 1e-7}

// allCloseTol is allClose with a testutil.Tol (for Scaled).
func allCloseTol(t *testing.T, what string, want, got *tfgo.Tensor, tol testutil.Tol) bool {
	t.Helper()
	return testutil.AllCloseShapeTol(t, what, want.Shape(), floats(t, want), got.Shape(), floats(t, got), tol)
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
			allCloseTol(t, "dense "+act, ref["y"], got, kerasTol)
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
