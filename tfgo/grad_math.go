package tfgo

import (
	"fmt"
	"math"
)

// Gradients of element-wise math, matrix products and reductions, as
// TensorFlow's math_grad.py computes them.

func init() {
	for _, t := range []string{"Identity", "ReadVariableOp", "Snapshot", "PreventGradient"} {
		RegisterGradient(t, passThrough)
	}
	for _, t := range []string{"StopGradient", "OnesLike", "ZerosLike", "Shape", "ShapeN", "Size", "Rank",
		"Fill", "Range", "Floor", "Ceil", "Round", "Sign", "ArgMax", "ArgMin", "Equal", "NotEqual",
		"Greater", "GreaterEqual", "Less", "LessEqual", "LogicalAnd", "LogicalOr", "LogicalNot",
		"OneHot", "RandomStandardNormal", "RandomUniform", "TruncatedNormal", "VariableShape",
		"StatelessRandomNormalV2", "StatelessRandomUniformV2", "StatelessTruncatedNormalV2", "BroadcastGradientArgs"} {
		RegisterNoGradient(t)
	}
	RegisterGradient("AddN", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		out := make([]Output, op.NumInputs())
		for i := range out {
			out[i] = g[0]
		}
		return out, nil
	})
	RegisterGradient("Add", addGrad)
	RegisterGradient("AddV2", addGrad)
	RegisterGradient("Sub", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x, y := op.Input(0), op.Input(1)
		return []Output{unbroadcast(s, g[0], x), unbroadcast(s, Neg(s, g[0]), y)}, nil
	})
	RegisterGradient("Mul", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x, y := op.Input(0), op.Input(1)
		return []Output{
			unbroadcast(s, Mul(s, g[0], y), x),
			unbroadcast(s, Mul(s, x, g[0]), y),
		}, nil
	})
	RegisterGradient("RealDiv", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x, y := op.Input(0), op.Input(1)
		gy := Mul(s, g[0], RealDiv(s, RealDiv(s, Neg(s, x), y), y))
		return []Output{unbroadcast(s, RealDiv(s, g[0], y), x), unbroadcast(s, gy, y)}, nil
	})
	RegisterGradient("Neg", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{Neg(s, g[0])}, nil
	})
	RegisterGradient("Square", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x := op.Input(0)
		return []Output{Mul(s, g[0], Mul(s, x, scalar(s, x, 2)))}, nil
	})
	// d sqrt(x) = 0.5 / y, d rsqrt(x) = -0.5 y^3, d tanh = 1 - y^2, d sigmoid = y (1 - y),
	// d (1/x) = -y^2: the runtime has fused kernels taking (y, dy).
	for fwd, grad := range map[string]func(s *Scope, y, dy Output) Output{"Sqrt": SqrtGrad, "Rsqrt": RsqrtGrad, "Tanh": TanhGrad,
		"Sigmoid": SigmoidGrad, "Reciprocal": ReciprocalGrad, "Inv": InvGrad} {
		grad := grad
		RegisterGradient(fwd, func(s *Scope, op *Operation, g []Output) ([]Output, error) {
			return []Output{grad(s, op.Output(0), g[0])}, nil
		})
	}
	RegisterGradient("Exp", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{Mul(s, g[0], op.Output(0))}, nil
	})
	// d expm1(x) = exp(x).
	RegisterGradient("Expm1", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{Mul(s, g[0], Exp(s, op.Input(0)))}, nil
	})
	RegisterGradient("Log", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{RealDiv(s, g[0], op.Input(0))}, nil
	})
	RegisterGradient("Erf", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x := op.Input(0)
		k := scalar(s, x, 2/math.Sqrt(math.Pi))
		return []Output{Mul(s, g[0], Mul(s, k, Exp(s, Neg(s, Square(s, x)))))}, nil
	})
	RegisterGradient("Erfc", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x := op.Input(0)
		k := scalar(s, x, -2/math.Sqrt(math.Pi))
		return []Output{Mul(s, g[0], Mul(s, k, Exp(s, Neg(s, Square(s, x)))))}, nil
	})
	RegisterGradient("SquaredDifference", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x, y := op.Input(0), op.Input(1)
		d := Mul(s, g[0], Mul(s, scalar(s, x, 2), Sub(s, x, y)))
		return []Output{unbroadcast(s, d, x), unbroadcast(s, Neg(s, d), y)}, nil
	})
	RegisterGradient("L2Loss", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{Mul(s, op.Input(0), g[0])}, nil
	})
	RegisterGradient("Pow", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x, y, z := op.Input(0), op.Input(1), op.Output(0)
		gx := Mul(s, g[0], Mul(s, y, Pow(s, x, Sub(s, y, scalar(s, y, 1)))))
		// log(x) where x > 0, else 0, as TensorFlow does.
		pos := Greater(s, x, scalar(s, x, 0))
		safe := SelectV2(s, pos, x, OnesLike(s, x))
		logx := SelectV2(s, pos, Log(s, safe), ZerosLike(s, x))
		gy := Mul(s, g[0], Mul(s, z, logx))
		return []Output{unbroadcast(s, gx, x), unbroadcast(s, gy, y)}, nil
	})
	RegisterGradient("Maximum", maxMinGrad(GreaterEqual))
	RegisterGradient("Minimum", maxMinGrad(LessEqual))
	RegisterGradient("SelectV2", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		c, t, e := op.Input(0), op.Input(1), op.Input(2)
		zero := scalar(s, g[0], 0)
		return []Output{{},
			unbroadcast(s, SelectV2(s, c, g[0], zero), t),
			unbroadcast(s, SelectV2(s, c, zero, g[0]), e)}, nil
	})
	RegisterGradient("Cast", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		src, dst := op.Input(0).DataType(), op.Output(0).DataType()
		if !isFloating(src) || !isFloating(dst) {
			return nil, nil
		}
		return []Output{Cast(s, g[0], src)}, nil
	})
	RegisterGradient("MatMul", matMulGrad("MatMul", "transpose_a", "transpose_b"))
	RegisterGradient("BatchMatMulV2", matMulGrad("BatchMatMulV2", "adj_x", "adj_y"))
	RegisterGradient("BatchMatMulV3", matMulGrad("BatchMatMulV3", "adj_x", "adj_y"))
	RegisterGradient("Sum", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{broadcastReduced(s, op, g[0])}, nil
	})
	RegisterGradient("Mean", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x, y := op.Input(0), op.Output(0)
		var count Output
		xd, okx := staticDims(x)
		yd, oky := staticDims(y)
		if okx && oky {
			count = scalar(s, g[0], float64(numElements(xd))/float64(max(numElements(yd), 1)))
		} else {
			px := Prod(s, shapeOfOutput(s, x), Const(s.SubScope("axis"), int32(0)))
			py := Prod(s, shapeOfOutput(s, y), Const(s.SubScope("axis"), int32(0)))
			ratio := Maximum(s, FloorDiv(s, px, Maximum(s, py, Const(s.SubScope("one"), int32(1)))), Const(s.SubScope("one"), int32(1)))
			count = Cast(s, ratio, g[0].DataType())
		}
		return []Output{RealDiv(s, broadcastReduced(s, op, g[0]), count)}, nil
	})
	RegisterGradient("Max", minOrMaxGrad)
	RegisterGradient("Min", minOrMaxGrad)
}

func passThrough(s *Scope, op *Operation, g []Output) ([]Output, error) {
	return []Output{g[0]}, nil
}

func addGrad(s *Scope, op *Operation, g []Output) ([]Output, error) {
	return []Output{unbroadcast(s, g[0], op.Input(0)), unbroadcast(s, g[0], op.Input(1))}, nil
}

func maxMinGrad(selector func(s *Scope, x, y Output) Output) GradFunc {
	return func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x, y := op.Input(0), op.Input(1)
		mask := selector(s, x, y)
		zero := scalar(s, g[0], 0)
		return []Output{
			unbroadcast(s, SelectV2(s, mask, g[0], zero), x),
			unbroadcast(s, SelectV2(s, mask, zero, g[0]), y),
		}, nil
	}
}

func isFloating(dt DataType) bool {
	switch dt {
	case Float, Double, Half, BFloat16, Complex64, Complex128:
		return true
	}
	return false
}

// matMulGrad covers MatMul (transpose_a/b) and BatchMatMul (adj_x/y):
// for C = op(A)·op(B), dA and dB are products of dC with A or B, chosen by
// the two flags; batch dims that were broadcast are summed away.
func matMulGrad(opType, ta, tb string) GradFunc {
	return func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		a, b := op.Input(0), op.Input(1)
		tA, tB := attrBool(op, ta), attrBool(op, tb)
		mm := func(x, y Output, adjX, adjY bool) Output {
			switch opType {
			case "BatchMatMulV2":
				return BatchMatMulV2(s, x, y, BatchMatMulV2AdjX(adjX), BatchMatMulV2AdjY(adjY))
			case "BatchMatMulV3":
				return BatchMatMulV3(s, x, y, g[0].DataType(), BatchMatMulV3AdjX(adjX), BatchMatMulV3AdjY(adjY))
			}
			return MatMul(s, x, y, MatMulTransposeA(adjX), MatMulTransposeB(adjY))
		}
		var ga, gb Output
		switch {
		case !tA && !tB:
			ga, gb = mm(g[0], b, false, true), mm(a, g[0], true, false)
		case !tA && tB:
			ga, gb = mm(g[0], b, false, false), mm(g[0], a, true, false)
		case tA && !tB:
			ga, gb = mm(b, g[0], false, true), mm(a, g[0], false, false)
		default:
			ga, gb = mm(b, g[0], true, true), mm(g[0], a, true, true)
		}
		if opType != "MatMul" {
			ga, gb = unbroadcast(s, ga, a), unbroadcast(s, gb, b)
		}
		return []Output{ga, gb}, nil
	}
}

// keptDims is the shape of a reduction's output with the reduced axes kept
// as 1s (math_ops.reduced_shape), static when possible.
func keptDims(s *Scope, x, axes Output) Output {
	xd, okx := staticDims(x)
	ax, oka := constInt64s(axes)
	if okx && oka {
		kept := append([]int64(nil), xd...)
		for _, a := range ax {
			if a < 0 {
				a += int64(len(xd))
			}
			if a >= 0 && a < int64(len(kept)) {
				kept[a] = 1
			}
		}
		return Const(s.SubScope("kept_shape"), int32s(kept))
	}
	shape := shapeOfOutput(s, x)
	rank := Size(s, shape, SizeOutType(Int32))
	axes32 := Cast(s, axes, Int32)
	axes32 = FloorMod(s, AddV2(s, axes32, rank), rank)
	ones := Fill(s, shapeOfOutput(s, axes32), Const(s.SubScope("one"), int32(1)))
	idx := Range(s, Const(s.SubScope("zero"), int32(0)), rank, Const(s.SubScope("one"), int32(1)))
	return DynamicStitch(s, []Output{idx, axes32}, []Output{shape, ones})
}

// broadcastReduced spreads the gradient of a reduction back over its input.
func broadcastReduced(s *Scope, op *Operation, g Output) Output {
	x, axes := op.Input(0), op.Input(1)
	r := Reshape(s, g, keptDims(s, x, axes))
	return BroadcastTo(s, r, shapeOfOutput(s, x))
}

// minOrMaxGrad splits the gradient evenly between the elements that tie
// for the extremum, as TensorFlow does.
func minOrMaxGrad(s *Scope, op *Operation, g []Output) ([]Output, error) {
	x, axes := op.Input(0), op.Input(1)
	kept := keptDims(s, x, axes)
	y := Reshape(s, op.Output(0), kept)
	gr := Reshape(s, g[0], kept)
	ind := Cast(s, Equal(s, y, x), g[0].DataType())
	n := Reshape(s, Sum(s, ind, axes), kept)
	return []Output{Mul(s, RealDiv(s, ind, n), gr)}, nil
}

// errNoSecondOutputGrad is returned where a gradient through an auxiliary
// output (such as the backprop of a fused cross-entropy) is not supported.
func errNoSecondOutputGrad(op *Operation, i int) error {
	return fmt.Errorf("a gradient through output %d of %s is not supported", i, op.Type())
}
