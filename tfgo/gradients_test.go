package tfgo

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gradCase is one row of the gradient table: a forward computation built in
// Go and the same computation in Python, on float inputs of given shapes.
type gradCase struct {
	name   string
	shapes [][]int64
	domain string // "": normal values; "positive": > 0.5; "distinct": well-separated values; "nonzero": |x| > 0.2
	build  func(s *Scope, x []Output) Output
	py     string // Python expression over the list x of tf tensors
	noFD   string // why finite differences cannot check this row, if they cannot
}

func c32(s *Scope, v any) Output { return Const(s.SubScope("c"), v) }

// The ops a GPT-style transformer's forward pass, loss and optimizer
// differentiate through; every one must appear in the table below.
var requiredGradOps = []string{
	"MatMul", "BatchMatMulV2", "Add", "AddV2", "Sub", "Mul", "RealDiv", "Neg", "Square", "Sqrt", "Rsqrt",
	"Pow", "Exp", "Log", "Tanh", "Erf", "Relu", "Sigmoid", "Softmax", "LogSoftmax",
	"SparseSoftmaxCrossEntropyWithLogits", "SoftmaxCrossEntropyWithLogits", "Sum", "Mean", "Max",
	"Reshape", "Transpose", "ExpandDims", "Squeeze", "ConcatV2", "Split", "SplitV", "Slice", "StridedSlice",
	"GatherV2", "ResourceGather", "Cast", "Identity", "SelectV2", "Maximum", "Minimum", "Tile",
	"BroadcastTo", "Pad", "ReadVariableOp",
}

func unaryOp(op func(*Scope, Output) Output) func(*Scope, []Output) Output {
	return func(s *Scope, x []Output) Output { return op(s, x[0]) }
}

func binaryOp(op func(*Scope, Output, Output) Output) func(*Scope, []Output) Output {
	return func(s *Scope, x []Output) Output { return op(s, x[0], x[1]) }
}

// binaryOpWith is binaryOp for a wrapper with optional attributes.
func binaryOpWith[A any](op func(*Scope, Output, Output, ...A) Output, optional ...A) func(*Scope, []Output) Output {
	return func(s *Scope, x []Output) Output { return op(s, x[0], x[1], optional...) }
}

var gradCases = []gradCase{
	{name: "MatMul", shapes: [][]int64{{3, 4}, {4, 2}}, build: binaryOpWith(MatMul), py: "tf.matmul(x[0], x[1])"},
	{name: "MatMul_ta_tb", shapes: [][]int64{{4, 3}, {2, 4}}, build: binaryOpWith(MatMul, MatMulTransposeA(true), MatMulTransposeB(true)),
		py: "tf.matmul(x[0], x[1], transpose_a=True, transpose_b=True)"},
	{name: "MatMul_tb", shapes: [][]int64{{3, 4}, {2, 4}}, build: binaryOpWith(MatMul, MatMulTransposeB(true)),
		py: "tf.matmul(x[0], x[1], transpose_b=True)"},
	{name: "MatMul_ta", shapes: [][]int64{{4, 3}, {4, 2}}, build: binaryOpWith(MatMul, MatMulTransposeA(true)),
		py: "tf.matmul(x[0], x[1], transpose_a=True)"},
	{name: "BatchMatMulV2_broadcast", shapes: [][]int64{{2, 1, 3, 4}, {3, 4, 2}}, build: binaryOpWith(BatchMatMulV2),
		py: "tf.linalg.matmul(x[0], x[1])"},
	{name: "BatchMatMulV2_adj_y", shapes: [][]int64{{2, 3, 4}, {2, 5, 4}}, build: binaryOpWith(BatchMatMulV2, BatchMatMulV2AdjY(true)),
		py: "tf.linalg.matmul(x[0], x[1], adjoint_b=True)"},
	{name: "Add", shapes: [][]int64{{2, 3}, {3}}, build: binaryOp(Add), py: "tf.raw_ops.Add(x=x[0], y=x[1])"},
	{name: "AddV2", shapes: [][]int64{{2, 1}, {1, 3}}, build: binaryOp(AddV2), py: "x[0] + x[1]"},
	{name: "AddN", shapes: [][]int64{{2, 3}, {2, 3}}, build: func(s *Scope, x []Output) Output {
		return AddN(s, []Output{x[0], x[1], x[0]})
	}, py: "tf.add_n([x[0], x[1], x[0]])"},
	{name: "Sub", shapes: [][]int64{{2, 1}, {1, 3}}, build: binaryOp(Sub), py: "x[0] - x[1]"},
	{name: "Mul", shapes: [][]int64{{2, 3}, {2, 1}}, build: binaryOp(Mul), py: "x[0] * x[1]"},
	{name: "RealDiv", shapes: [][]int64{{2, 3}, {3}}, domain: "positive", build: binaryOp(RealDiv), py: "x[0] / x[1]"},
	{name: "Neg", shapes: [][]int64{{2, 3}}, build: unaryOp(Neg), py: "-x[0]"},
	{name: "Square", shapes: [][]int64{{2, 3}}, build: unaryOp(Square), py: "tf.square(x[0])"},
	{name: "Sqrt", shapes: [][]int64{{2, 3}}, domain: "positive", build: unaryOp(Sqrt), py: "tf.sqrt(x[0])"},
	{name: "Rsqrt", shapes: [][]int64{{2, 3}}, domain: "positive", build: unaryOp(Rsqrt), py: "tf.math.rsqrt(x[0])"},
	{name: "Erfc", shapes: [][]int64{{2, 3}}, build: unaryOp(Erfc), py: "tf.math.erfc(x[0])"},
	{name: "SquaredDifference", shapes: [][]int64{{2, 3}, {3}}, build: binaryOp(SquaredDifference), py: "tf.math.squared_difference(x[0], x[1])"},
	{name: "L2Loss", shapes: [][]int64{{2, 3}}, build: unaryOp(L2Loss), py: "tf.nn.l2_loss(x[0])"},
	{name: "Pow", shapes: [][]int64{{2, 3}, {3}}, domain: "positive", build: binaryOp(Pow), py: "tf.pow(x[0], x[1])"},
	{name: "Exp", shapes: [][]int64{{2, 3}}, build: unaryOp(Exp), py: "tf.exp(x[0])"},
	{name: "Log", shapes: [][]int64{{2, 3}}, domain: "positive", build: unaryOp(Log), py: "tf.math.log(x[0])"},
	{name: "Tanh", shapes: [][]int64{{2, 3}}, build: unaryOp(Tanh), py: "tf.tanh(x[0])"},
	{name: "Erf", shapes: [][]int64{{2, 3}}, build: unaryOp(Erf), py: "tf.math.erf(x[0])"},
	{name: "Relu", shapes: [][]int64{{2, 3}}, domain: "nonzero", build: unaryOp(Relu), py: "tf.nn.relu(x[0])"},
	{name: "Sigmoid", shapes: [][]int64{{2, 3}}, build: unaryOp(Sigmoid), py: "tf.sigmoid(x[0])"},
	{name: "Elu", shapes: [][]int64{{2, 3}}, domain: "nonzero", build: unaryOp(Elu), py: "tf.nn.elu(x[0])"},
	{name: "Selu", shapes: [][]int64{{2, 3}}, domain: "nonzero", build: unaryOp(Selu), py: "tf.nn.selu(x[0])"},
	{name: "Relu6", shapes: [][]int64{{2, 3}}, domain: "nonzero", build: func(s *Scope, x []Output) Output {
		return Relu6(s, Mul(s, x[0], scalar(s, x[0], 4))) // some inputs above 6
	}, py: "tf.nn.relu6(x[0] * 4)"},
	{name: "LeakyRelu", shapes: [][]int64{{2, 3}}, domain: "nonzero", build: func(s *Scope, x []Output) Output {
		return LeakyRelu(s, x[0], LeakyReluAlpha(0.2))
	}, py: "tf.nn.leaky_relu(x[0], alpha=0.2)"},
	{name: "Softplus", shapes: [][]int64{{2, 3}}, build: unaryOp(Softplus), py: "tf.math.softplus(x[0])"},
	{name: "Softsign", shapes: [][]int64{{2, 3}}, build: unaryOp(Softsign), py: "tf.nn.softsign(x[0])"},
	{name: "Expm1", shapes: [][]int64{{2, 3}}, build: unaryOp(Expm1), py: "tf.math.expm1(x[0])"},
	{name: "Softmax", shapes: [][]int64{{3, 5}}, build: unaryOp(Softmax), py: "tf.nn.softmax(x[0])"},
	{name: "LogSoftmax", shapes: [][]int64{{3, 5}}, build: unaryOp(LogSoftmax), py: "tf.nn.log_softmax(x[0])"},
	{name: "SparseSoftmaxCrossEntropyWithLogits", shapes: [][]int64{{4, 5}}, build: func(s *Scope, x []Output) Output {
		loss, _ := SparseSoftmaxCrossEntropyWithLogits(s, x[0], c32(s, []int32{1, 0, 4, 2}))
		return loss
	}, py: "tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[1, 0, 4, 2], logits=x[0])"},
	// Labels are a distribution, which the fused kernel's gradient assumes.
	{name: "SoftmaxCrossEntropyWithLogits", shapes: [][]int64{{3, 4}, {3, 4}}, build: func(s *Scope, x []Output) Output {
		loss, _ := SoftmaxCrossEntropyWithLogits(s, x[0], Softmax(s, x[1]))
		return loss
	}, py: "tf.nn.softmax_cross_entropy_with_logits(labels=tf.nn.softmax(x[1]), logits=x[0])"},
	{name: "BiasAdd", shapes: [][]int64{{3, 4}, {4}}, build: binaryOpWith(BiasAdd), py: "tf.nn.bias_add(x[0], x[1])"},
	{name: "Sum", shapes: [][]int64{{2, 3}}, build: func(s *Scope, x []Output) Output {
		return Sum(s, x[0], c32(s, []int32{1}))
	}, py: "tf.reduce_sum(x[0], axis=[1])"},
	{name: "Sum_keepdims", shapes: [][]int64{{2, 3, 4}}, build: func(s *Scope, x []Output) Output {
		return Sum(s, x[0], c32(s, []int32{0, -1}), SumKeepDims(true))
	}, py: "tf.reduce_sum(x[0], axis=[0, -1], keepdims=True)"},
	{name: "Sum_dynamic_axis", shapes: [][]int64{{2, 3}}, build: func(s *Scope, x []Output) Output {
		axis := Identity(s, c32(s, []int32{0}))
		return Sum(s, x[0], axis)
	}, py: "tf.reduce_sum(x[0], axis=[0])"},
	{name: "Mean", shapes: [][]int64{{2, 3, 4}}, build: func(s *Scope, x []Output) Output {
		return Mean(s, x[0], c32(s, []int32{-1}))
	}, py: "tf.reduce_mean(x[0], axis=-1)"},
	{name: "Max", shapes: [][]int64{{3, 4}}, domain: "distinct", build: func(s *Scope, x []Output) Output {
		return Max(s, x[0], c32(s, []int32{1}))
	}, py: "tf.reduce_max(x[0], axis=1)"},
	{name: "Reshape", shapes: [][]int64{{2, 6}}, build: func(s *Scope, x []Output) Output {
		return Reshape(s, x[0], c32(s, []int32{3, 4}))
	}, py: "tf.reshape(x[0], [3, 4])"},
	{name: "Transpose", shapes: [][]int64{{2, 3, 4}}, build: func(s *Scope, x []Output) Output {
		return Transpose(s, x[0], c32(s, []int32{1, 2, 0}))
	}, py: "tf.transpose(x[0], [1, 2, 0])"},
	{name: "ExpandDims", shapes: [][]int64{{2, 3}}, build: func(s *Scope, x []Output) Output {
		return ExpandDims(s, x[0], c32(s, int32(1)))
	}, py: "tf.expand_dims(x[0], 1)"},
	{name: "Squeeze", shapes: [][]int64{{2, 1, 3}}, build: func(s *Scope, x []Output) Output {
		return Squeeze(s, x[0], SqueezeSqueezeDims([]int64{1}))
	}, py: "tf.squeeze(x[0], [1])"},
	{name: "ConcatV2", shapes: [][]int64{{2, 3}, {2, 2}}, build: func(s *Scope, x []Output) Output {
		return ConcatV2(s, []Output{x[0], x[1], x[0]}, c32(s, int32(1)))
	}, py: "tf.concat([x[0], x[1], x[0]], axis=1)"},
	{name: "Split", shapes: [][]int64{{4, 3}}, build: func(s *Scope, x []Output) Output {
		sp := Split(s, c32(s, int32(0)), x[0], 2)
		return ConcatV2(s, []Output{sp[1], Square(s, sp[0])}, c32(s, int32(0)))
	}, py: "tf.concat([tf.split(x[0], 2, axis=0)[1], tf.square(tf.split(x[0], 2, axis=0)[0])], 0)"},
	{name: "SplitV_one_output_used", shapes: [][]int64{{2, 3}}, build: func(s *Scope, x []Output) Output {
		sp := SplitV(s, x[0], c32(s, []int32{1, 2}), c32(s, int32(1)), 2)
		return sp[1]
	}, py: "tf.split(x[0], [1, 2], axis=1)[1]"},
	{name: "Pack_Unpack", shapes: [][]int64{{2, 3}, {2, 3}}, build: func(s *Scope, x []Output) Output {
		p := Pack(s, []Output{x[0], x[1]}, PackAxis(1))
		un := Unpack(s, p, 2, UnpackAxis(0))
		return Mul(s, un[0], un[0])
	}, py: "tf.unstack(tf.stack([x[0], x[1]], axis=1), axis=0)[0] ** 2"},
	{name: "Slice", shapes: [][]int64{{3, 4}}, build: func(s *Scope, x []Output) Output {
		return Slice(s, x[0], c32(s, []int32{1, 1}), c32(s, []int32{2, 2}))
	}, py: "tf.slice(x[0], [1, 1], [2, 2])"},
	{name: "StridedSlice", shapes: [][]int64{{4, 5}}, build: func(s *Scope, x []Output) Output {
		return StridedSlice(s, x[0],
			c32(s, []int32{1, 1}), c32(s, []int32{4, 0}), c32(s, []int32{2, 1}), StridedSliceEndMask(2))
	}, py: "x[0][1:4:2, 1:]"},
	{name: "StridedSlice_shrink", shapes: [][]int64{{4, 3}}, build: func(s *Scope, x []Output) Output {
		return StridedSlice(s, x[0],
			c32(s, []int32{2}), c32(s, []int32{3}), c32(s, []int32{1}), StridedSliceShrinkAxisMask(1))
	}, py: "x[0][2]"},
	{name: "GatherV2", shapes: [][]int64{{5, 3}}, build: func(s *Scope, x []Output) Output {
		return GatherV2(s, x[0], c32(s, [][]int32{{2, 0}, {2, 4}}), c32(s, int32(0)))
	}, py: "tf.gather(x[0], [[2, 0], [2, 4]])"},
	{name: "Cast", shapes: [][]int64{{2, 3}}, build: func(s *Scope, x []Output) Output {
		other := Float
		if x[0].DataType() == Float {
			other = Double
		}
		there := Cast(s, x[0], other)
		return Cast(s, Mul(s, there, there), x[0].DataType())
	}, py: "tf.cast(tf.square(tf.cast(x[0], tf.float64 if x[0].dtype == tf.float32 else tf.float32)), x[0].dtype)",
		noFD: "the float64 run rounds through float32, far coarser than the finite-difference step"},
	{name: "Identity", shapes: [][]int64{{2, 3}}, build: unaryOp(Identity), py: "tf.identity(x[0])"},
	{name: "SelectV2", shapes: [][]int64{{2, 3}, {3}}, build: func(s *Scope, x []Output) Output {
		return SelectV2(s, c32(s, [][]bool{{true, false, true}, {false, true, true}}), x[0], x[1])
	}, py: "tf.where([[True, False, True], [False, True, True]], x[0], x[1])"},
	{name: "Maximum", shapes: [][]int64{{2, 3}, {3}}, domain: "distinct", build: binaryOp(Maximum), py: "tf.maximum(x[0], x[1])"},
	{name: "Minimum", shapes: [][]int64{{2, 3}, {2, 1}}, domain: "distinct", build: binaryOp(Minimum), py: "tf.minimum(x[0], x[1])"},
	{name: "Tile", shapes: [][]int64{{2, 3}}, build: func(s *Scope, x []Output) Output {
		return Tile(s, x[0], c32(s, []int32{2, 3}))
	}, py: "tf.tile(x[0], [2, 3])"},
	{name: "BroadcastTo", shapes: [][]int64{{3, 1}}, build: func(s *Scope, x []Output) Output {
		return BroadcastTo(s, x[0], c32(s, []int32{2, 3, 4}))
	}, py: "tf.broadcast_to(x[0], [2, 3, 4])"},
	{name: "Pad", shapes: [][]int64{{2, 3}}, build: func(s *Scope, x []Output) Output {
		return Pad(s, x[0], c32(s, [][]int32{{1, 0}, {0, 2}}))
	}, py: "tf.pad(x[0], [[1, 0], [0, 2]])"},
	{name: "masked_softmax_without_where", shapes: [][]int64{{2, 4}}, build: func(s *Scope, x []Output) Output {
		mask := c32(s, [][]bool{{true, true, false, true}, {true, false, false, true}})
		neg := Fill(s, c32(s, []int32{2, 4}), scalar(s, x[0], -1e9))
		return Softmax(s, SelectV2(s, mask, x[0], neg))
	}, py: "tf.nn.softmax(tf.where([[True, True, False, True], [True, False, False, True]], x[0], tf.fill([2, 4], tf.constant(-1e9, x[0].dtype))))"},
}

// sampleInputs draws inputs for a case (float64 values; cast for float32).
func sampleInputs(r *rand.Rand, c gradCase) [][]float64 {
	out := make([][]float64, len(c.shapes))
	for i, sh := range c.shapes {
		v := make([]float64, numElements(sh))
		for j := range v {
			switch c.domain {
			case "positive":
				v[j] = 0.5 + 1.5*r.Float64()
			case "nonzero":
				v[j] = (0.2 + r.Float64()) * float64(1-2*r.Intn(2))
			case "distinct":
				v[j] = float64(r.Perm(64)[0])*0.25 + 0.01*float64(i) // ties are broken by the offset
			default:
				v[j] = r.NormFloat64()
			}
		}
		out[i] = v
	}
	if c.domain == "distinct" { // all values distinct across inputs
		k := 0
		perm := r.Perm(1000)
		for i := range out {
			for j := range out[i] {
				out[i][j] = float64(perm[k])*0.01 - 5
				k++
			}
		}
	}
	return out
}

// gradRun builds a case in Go for dtype and returns a function evaluating
// y and the gradients of sum(y · gy) at given inputs.
type gradGraph struct {
	sess   *Session
	xs     []Output
	gy     Output
	y      Output
	grads  []Output
	opSeen map[string]bool
}

func buildGradGraph(t *testing.T, c gradCase, dt DataType) *gradGraph {
	s := NewScope()
	xs := make([]Output, len(c.shapes))
	for i, sh := range c.shapes {
		xs[i] = Placeholder(s.SubScope(fmt.Sprintf("x%d", i)), dt, sh...)
	}
	fwd := s.SubScope("forward")
	y := c.build(fwd, xs)
	gy := Placeholder(s.SubScope("gy"), dt)
	grads := Gradients(s, []Output{y}, xs, []Output{gy}, UnconnectedZeros())
	for i, g := range grads { // a gradient may be gy itself, which cannot be fed and fetched
		grads[i] = Identity(s.SubScope("fetch"), g)
	}
	g, err := s.Finalize()
	require.NoError(t, err, c.name)
	seen := map[string]bool{}
	for _, op := range g.Operations() {
		if strings.HasPrefix(op.Name(), "forward/") {
			seen[op.Type()] = true
		}
	}
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	return &gradGraph{sess: sess, xs: xs, gy: gy, y: y, grads: grads, opSeen: seen}
}

func (gg *gradGraph) feeds(t *testing.T, dt DataType, c gradCase, in [][]float64, gy *Tensor) map[Output]any {
	f := map[Output]any{}
	for i, v := range in {
		tn := floatTensor(t, dt, c.shapes[i], v)
		f[gg.xs[i]] = tn
	}
	if gy != nil {
		f[gg.gy] = gy
	}
	return f
}

func floatTensor(t *testing.T, dt DataType, shape []int64, v []float64) *Tensor {
	var val any = v
	if dt == Float {
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		val = f
	}
	tn, err := NewTensor(val)
	require.NoError(t, err)
	if len(shape) != 1 || shape[0] != int64(len(v)) {
		r, err := NewTensorFromBytes(dt, shape, tn.Data())
		require.NoError(t, err)
		tn.Close()
		tn = r
	}
	return tn
}

func closeClose(ts []*Tensor) {
	for _, t := range ts {
		t.Close()
	}
}

// TestGradientsMatchTensorFlowAndFiniteDifferences checks every row of
// the table twice: against tf.GradientTape on the same inputs and upstream
// gradient (1e-5 in float64, 1e-4 in float32), and against central finite
// differences of the Go forward graph in float64.
func TestGradientsMatchTensorFlowAndFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewSource(42))
	for _, c := range gradCases {
		in := sampleInputs(r, c)
		for _, dt := range []DataType{Double, Float} {
			t.Run(c.name+"/"+dt.String(), func(t *testing.T) {
				gg := buildGradGraph(t, c, dt)
				defer gg.sess.Close()
				// Forward once to learn y's shape, then draw the upstream gradient.
				yv, err := gg.sess.Run(gg.feeds(t, dt, c, in, nil), []Output{gg.y})
				require.NoError(t, err)
				gyVals := make([]float64, yv[0].NumElements())
				for i := range gyVals {
					gyVals[i] = r.NormFloat64()
				}
				gy := floatTensor(t, dt, yv[0].Shape(), gyVals)
				out, err := gg.sess.Run(gg.feeds(t, dt, c, in, gy), append([]Output{gg.y}, gg.grads...))
				require.NoError(t, err)
				defer closeClose(out)

				// Python TensorFlow's own gradient of the same computation.
				pin := map[string]*Tensor{"gy": gy}
				for i, v := range in {
					pin[fmt.Sprintf("x%d", i)] = floatTensor(t, dt, c.shapes[i], v)
				}
				ref := python(t, fmt.Sprintf(`
x = [tf.constant(inputs["x%%d" %% i]) for i in range(%d)]
with tf.GradientTape() as tape:
    for v in x:
        tape.watch(v)
    y = %s
g = tape.gradient(y, x, output_gradients=tf.constant(inputs["gy"]))
outputs["y"] = y
for i, gi in enumerate(g):
    outputs["g%%d" %% i] = tf.zeros_like(x[i]) if gi is None else tf.convert_to_tensor(gi)
`, len(c.shapes), c.py), pin)
				// The same kernels as tf.GradientTape's, composed by our
				// gradient functions instead of TensorFlow's: a few roundings
				// apart (observed <= 2 ulps), relative to each element or, for
				// sums of mixed signs, to the largest (Scaled). 64 ulps leave
				// room for another CPU's vector widths.
				tol := testutil.Tol{Rtol: 64 * 0x1p-52, Scaled: 64 * 0x1p-52}
				if dt == Float {
					tol = testutil.Tol{Rtol: 64 * 0x1p-23, Scaled: 64 * 0x1p-23}
				}
				assertClose(t, asFloat64s(t, ref["y"]), asFloat64s(t, out[0]), tol, "forward")
				for i := range c.shapes {
					assertClose(t, asFloat64s(t, ref[fmt.Sprintf("g%d", i)]), asFloat64s(t, out[1+i]), tol, fmt.Sprintf("d/dx%d vs GradientTape", i))
				}
				if dt == Double && c.noFD == "" {
					for i := range c.shapes {
						fd := finiteDifferences(t, gg, c, in, gyVals, i)
						assertClose(t, fd, asFloat64s(t, out[1+i]), finiteDiffTol, fmt.Sprintf("d/dx%d vs finite differences", i))
					}
				}
			})
		}
	}
}

// The table, not prose, is the coverage list: every required op is built
// by some row (ResourceGather and ReadVariableOp by the variable test).
func TestGradientTableCoversRequiredOps(t *testing.T) {
	covered := map[string]bool{"ResourceGather": true, "ReadVariableOp": true}
	for _, c := range gradCases {
		gg := buildGradGraph(t, c, Double)
		for k := range gg.opSeen {
			covered[k] = true
		}
		gg.sess.Close()
	}
	var missing []string
	for _, op := range requiredGradOps {
		if !covered[op] {
			missing = append(missing, op)
		}
		_, ok := lookupGradient(op)
		assert.True(t, ok, "no gradient registered for %s", op)
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "ops of the required list with no row in the gradient table")
}

// finiteDifferences estimates d sum(y·gy)/d x_i by central differences.
func finiteDifferences(t *testing.T, gg *gradGraph, c gradCase, in [][]float64, gy []float64, i int) []float64 {
	const eps = 1e-6
	f := func(v [][]float64) float64 {
		out, err := gg.sess.Run(gg.feeds(t, Double, c, v, nil), []Output{gg.y})
		require.NoError(t, err)
		defer closeClose(out)
		y := asFloat64s(t, out[0])
		sum := 0.0
		for k := range y {
			sum += y[k] * gy[k]
		}
		return sum
	}
	grad := make([]float64, len(in[i]))
	for j := range in[i] {
		plus, minus := clone2(in), clone2(in)
		plus[i][j] += eps
		minus[i][j] -= eps
		grad[j] = (f(plus) - f(minus)) / (2 * eps)
	}
	return grad
}

func clone2(v [][]float64) [][]float64 {
	out := make([][]float64, len(v))
	for i := range v {
		out[i] = append([]float64(nil), v[i]...)
	}
	return out
}

// assertClose compares got with want by testutil's rule (equal lengths, no
// NaN, |got-want| <= Atol + Scaled*max|want| + Rtol*|want|).
func assertClose(t *testing.T, want, got []float64, tol testutil.Tol, what string) {
	t.Helper()
	testutil.AllCloseTol(t, what, want, got, tol)
}

// finiteDiffTol bounds central differences in float64 against the
// gradient: truncation O(h^2 f”') plus cancellation O(eps |f| / h) with
// h = 1e-6.
var finiteDiffTol = testutil.Tol{Rtol: 1e-5, Atol: 1e-5}

// The gradient w.r.t. a variable handle flows through ReadVariableOp and
// ResourceGather (an embedding lookup) and comes back dense, as
// tf.GradientTape's gradient of a tf.Variable converted to a tensor.
func TestVariableHandleGradientsMatchTensorFlowAndFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	vals := make([]float64, 15)
	cs := make([]float64, 15)
	ws := make([]float64, 12)
	for _, v := range [][]float64{vals, cs, ws} {
		for i := range v {
			v[i] = r.NormFloat64()
		}
	}
	s := NewScope()
	h := VarHandleOp(s, Double, MakeShape(5, 3), VarHandleOpSharedName("emb"))
	pv := Placeholder(s, Double, 5, 3)
	assign := AssignVariableOp(s, h, pv)
	f := s.SubScope("forward")
	read := ReadVariableOp(f, h, Double)
	c := floatTensor(t, Double, []int64{5, 3}, cs)
	w := floatTensor(t, Double, []int64{2, 2, 3}, ws)
	gathered := ResourceGather(f, h, c32(f, [][]int32{{1, 3}, {1, 0}}), Double)
	y := AddV2(f,
		Sum(f, Mul(f, read, c32(f, c)), c32(f, []int32{0, 1})),
		Sum(f, Mul(f, gathered, c32(f, w)), c32(f, []int32{0, 1, 2})))
	grad := Gradients(s, []Output{y}, []Output{h}, nil)[0]
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	at := func(v []float64) float64 {
		_, err := sess.Run(map[Output]any{pv: floatTensor(t, Double, []int64{5, 3}, v)}, nil, assign)
		require.NoError(t, err)
		out, err := sess.Run(nil, []Output{y})
		require.NoError(t, err)
		return asFloat64s(t, out[0])[0]
	}
	at(vals)
	out, err := sess.Run(nil, []Output{grad})
	require.NoError(t, err)
	require.Equal(t, []int64{5, 3}, out[0].Shape())
	got := asFloat64s(t, out[0])

	ref := python(t, `
v = tf.Variable(inputs["v"])
with tf.GradientTape() as tape:
    y = tf.reduce_sum(v * inputs["c"]) + tf.reduce_sum(tf.gather(v, [[1, 3], [1, 0]]) * inputs["w"])
outputs["g"] = tf.convert_to_tensor(tape.gradient(y, v))
`, map[string]*Tensor{"v": floatTensor(t, Double, []int64{5, 3}, vals), "c": c, "w": w})
	assertClose(t, asFloat64s(t, ref["g"]), got, testutil.Tol{Rtol: 64 * 0x1p-52, Scaled: 64 * 0x1p-52}, "d/dv vs GradientTape")

	fd := make([]float64, len(vals))
	for j := range vals {
		plus, minus := append([]float64(nil), vals...), append([]float64(nil), vals...)
		plus[j] += 1e-6
		minus[j] -= 1e-6
		fd[j] = (at(plus) - at(minus)) / 2e-6
	}
	assertClose(t, fd, got, finiteDiffTol, "d/dv vs finite differences")
}

func TestGradientErrorsNameTheOp(t *testing.T) {
	s := NewScope()
	x := Placeholder(s, Float, 3)
	y := Cumprod(s.SubScope("model"), x, c32(s, int32(0)))
	Gradients(s, []Output{y}, []Output{x}, nil)
	_, err := s.Finalize()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Cumprod")
	assert.Contains(t, err.Error(), "model/Cumprod")

	// Unconnected xs: the zero Output by default, zeros on request.
	s = NewScope()
	a, b := Placeholder(s, Float, 2), Placeholder(s, Float, 2)
	y = Square(s, a)
	g := Gradients(s, []Output{y}, []Output{a, b}, nil)
	assert.NotNil(t, g[0].Op)
	assert.Nil(t, g[1].Op)
	g = Gradients(s, []Output{y}, []Output{b}, nil, UnconnectedZeros())
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	out, err := sess.Run(map[Output]any{b: []float32{1, 2}}, []Output{g[0]})
	require.NoError(t, err)
	v, _ := Float32s(out[0])
	assert.Equal(t, []float32{0, 0}, v)

	// StopGradient stops; so do ops named in StopGradients.
	s = NewScope()
	x = Placeholder(s, Float, 2)
	sq := Square(s, x)
	y = AddV2(s, StopGradient(s, sq), x)
	g = Gradients(s, []Output{y}, []Output{x}, nil)
	sess2, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess2.Close()
	out, err = sess2.Run(map[Output]any{x: []float32{3, 4}}, []Output{Identity(s, g[0])})
	require.NoError(t, err)
	v, _ = Float32s(out[0])
	assert.Equal(t, []float32{1, 1}, v)
}
