package keraslike

import (
	"math"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/tfgo"
)

// The supported Keras operations, by class name, each computed as the
// keras.ops function computes it on the TensorFlow backend.
var opTable = map[string]*opDef{}

const (
	numpyOps = "keras.src.ops.numpy"
	nnOps    = "keras.src.ops.nn"
	coreOps  = "keras.src.ops.core"
	mathOps  = "keras.src.ops.math"
)

// Checks of constructor arguments (JSON values).
func isInt(v any) bool {
	f, ok := v.(float64)
	return ok && f == math.Trunc(f) && math.Abs(f) <= 1<<31
}

func isIntOrNull(v any) bool { return v == nil || isInt(v) }

func isIntList(v any) bool {
	l, ok := v.([]any)
	if !ok || len(l) > 16 {
		return false
	}
	for _, e := range l {
		if !isInt(e) {
			return false
		}
	}
	return true
}

// isAxis is an axis argument: null, an int, or a list of ints.
func isAxis(v any) bool { return isIntOrNull(v) || isIntList(v) }

func isBool(v any) bool { _, ok := v.(bool); return ok }

func isNull(v any) bool { return v == nil }

func isNumber(v any) bool { f, ok := v.(float64); return ok && !math.IsNaN(f) }

func isDType(v any) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	dt, err := dtypes.Parse(s)
	return err == nil && constantDType(dt)
}

func isDTypeOrNull(v any) bool { return v == nil || isDType(v) }

func isSubscripts(v any) bool { s, ok := v.(string); return ok && len(s) > 0 && len(s) <= 256 }

func parseDType(v any) tfgo.DataType {
	s, _ := v.(string)
	dt, _ := dtypes.Parse(s)
	return dt
}

// binaryOp registers an elementwise operation of two promoted operands.
func binaryOp(class string, f func(s *tfgo.Scope, x, y tfgo.Output) tfgo.Output) {
	opTable[class] = &opDef{module: numpyOps, args: []string{"x1", "x2"}, call: func(c *opCall) tfgo.Output {
		xs, ok := c.operands(c.args["x1"], c.args["x2"])
		if !ok {
			return tfgo.Output{}
		}
		return f(c.s, xs[0], xs[1])
	}}
}

// logical registers an elementwise operation of operands as bools.
func logical(class string, f func(s *tfgo.Scope, x, y tfgo.Output) tfgo.Output) {
	opTable[class] = &opDef{module: numpyOps, args: []string{"x1", "x2"}, call: func(c *opCall) tfgo.Output {
		xs, ok := c.operands(c.args["x1"], c.args["x2"])
		if !ok {
			return tfgo.Output{}
		}
		return f(c.s, castTo(c.s, xs[0], tfgo.Bool), castTo(c.s, xs[1], tfgo.Bool))
	}}
}

// onX is an operation of one tensor argument x.
func onX(module string, params map[string]opParam, f func(c *opCall, x tfgo.Output) tfgo.Output) *opDef {
	return &opDef{module: module, args: []string{"x"}, params: params, call: func(c *opCall) tfgo.Output {
		x, ok := c.tensor("x")
		if !ok {
			return tfgo.Output{}
		}
		return f(c, x)
	}}
}

// unary registers an elementwise operation of one operand; toFloat makes
// integer inputs float32 first.
func unary(module, class string, toFloat bool, f func(s *tfgo.Scope, x tfgo.Output) tfgo.Output) {
	opTable[class] = onX(module, nil, func(c *opCall, x tfgo.Output) tfgo.Output {
		if toFloat {
			x = c.float(x)
		}
		return f(c.s, x)
	})
}

// reduction registers Sum, Mean, Max, Min: over axis (all for null),
// keeping the reduced dimensions when keepdims.
func reduction(class string, toFloat bool, extra map[string]opParam, f func(s *tfgo.Scope, x, axes tfgo.Output, keep bool) tfgo.Output) {
	params := map[string]opParam{"axis": {nil, isAxis}, "keepdims": {false, isBool}}
	for k, p := range extra {
		params[k] = p
	}
	opTable[class] = onX(numpyOps, params, func(c *opCall, x tfgo.Output) tfgo.Output {
		if toFloat {
			x = c.float(x)
		}
		if x.DataType() == tfgo.Bool {
			x = tfgo.Cast(c.s, x, tfgo.Int32)
		}
		axes, all := c.axes("axis")
		if all {
			n, ok := c.rank(x)
			if !ok {
				return tfgo.Output{}
			}
			for i := range n {
				axes = append(axes, int64(i))
			}
		}
		keep, _ := c.param("keepdims").(bool)
		return f(c.s, x, tfgo.Const(c.s, append([]int64{}, axes...)), keep)
	})
}

func init() {
	binaryOp("Add", tfgo.AddV2)
	binaryOp("Subtract", tfgo.Sub)
	binaryOp("Multiply", tfgo.Mul)
	binaryOp("Power", tfgo.Pow)
	binaryOp("Maximum", tfgo.Maximum)
	binaryOp("Minimum", tfgo.Minimum)
	binaryOp("Equal", func(s *tfgo.Scope, x, y tfgo.Output) tfgo.Output { return tfgo.Equal(s, x, y) })
	binaryOp("NotEqual", func(s *tfgo.Scope, x, y tfgo.Output) tfgo.Output { return tfgo.NotEqual(s, x, y) })
	binaryOp("Greater", tfgo.Greater)
	binaryOp("GreaterEqual", tfgo.GreaterEqual)
	binaryOp("FloorDivide", tfgo.FloorDiv)
	binaryOp("Mod", tfgo.FloorMod) // tf.math.mod: the sign of the divisor, as numpy's
	binaryOp("Less", tfgo.Less)
	binaryOp("LessEqual", tfgo.LessEqual)
	logical("LogicalAnd", tfgo.LogicalAnd)
	logical("LogicalOr", tfgo.LogicalOr)
	// divide and true_divide are float divisions (integers become float32).
	for _, class := range []string{"Divide", "TrueDivide"} {
		opTable[class] = &opDef{module: numpyOps, args: []string{"x1", "x2"}, call: func(c *opCall) tfgo.Output {
			xs, ok := c.operands(c.args["x1"], c.args["x2"])
			if !ok {
				return tfgo.Output{}
			}
			return tfgo.RealDiv(c.s, c.float(xs[0]), c.float(xs[1]))
		}}
	}

	unary(numpyOps, "Negative", false, func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Neg(s, x) })
	unary(numpyOps, "Abs", false, tfgo.Abs)
	unary(numpyOps, "Absolute", false, tfgo.Abs) // keras.ops.abs
	unary(numpyOps, "Square", false, tfgo.Square)
	unary(numpyOps, "Sqrt", true, tfgo.Sqrt)
	unary(numpyOps, "Exp", true, tfgo.Exp)
	unary(numpyOps, "Log", true, tfgo.Log)
	unary(numpyOps, "Tanh", true, tfgo.Tanh)
	unary(numpyOps, "LogicalNot", false, func(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
		return tfgo.LogicalNot(s, castTo(s, x, tfgo.Bool))
	})
	unary(numpyOps, "Floor", true, tfgo.Floor)
	unary(numpyOps, "Ceil", true, tfgo.Ceil)
	unary(numpyOps, "Sign", false, tfgo.Sign)
	unary(mathOps, "Rsqrt", true, tfgo.Rsqrt)
	unary(mathOps, "Erf", true, tfgo.Erf)
	unary(nnOps, "Relu", false, tfgo.Relu)
	unary(nnOps, "Relu6", false, tfgo.Relu6)
	unary(nnOps, "Sigmoid", true, tfgo.Sigmoid)
	unary(nnOps, "Softplus", true, tfgo.Softplus)
	unary(nnOps, "Silu", true, silu)

	opTable["Gelu"] = onX(nnOps, map[string]opParam{"approximate": {true, isBool}}, func(c *opCall, x tfgo.Output) tfgo.Output {
		approx, _ := c.param("approximate").(bool)
		return tfgo.Gelu(c.s, c.float(x), approx)
	})
	opTable["LeakyRelu"] = onX(nnOps, map[string]opParam{"negative_slope": {0.2, isNumber}}, func(c *opCall, x tfgo.Output) tfgo.Output {
		a, _ := c.param("negative_slope").(float64)
		return tfgo.LeakyRelu(c.s, c.float(x), tfgo.LeakyReluAlpha(float32(a)))
	})
	opTable["Softmax"] = onX(nnOps, map[string]opParam{"axis": {-1.0, isInt}}, func(c *opCall, x tfgo.Output) tfgo.Output {
		return tfgo.MaskedSoftmax(c.s, c.float(x), tfgo.Output{}, c.intParam("axis"))
	})
	opTable["LogSoftmax"] = onX(nnOps, map[string]opParam{"axis": {-1.0, isInt}}, func(c *opCall, x tfgo.Output) tfgo.Output {
		x = c.float(x)
		axis := tfgo.Const(c.s, []int64{int64(c.intParam("axis"))})
		y := tfgo.Sub(c.s, x, tfgo.Max(c.s, x, axis, tfgo.MaxKeepDims(true)))
		return tfgo.Sub(c.s, y, tfgo.Log(c.s, tfgo.Sum(c.s, tfgo.Exp(c.s, y), axis, tfgo.SumKeepDims(true))))
	})

	reduction("Sum", false, nil, func(s *tfgo.Scope, x, axes tfgo.Output, keep bool) tfgo.Output {
		return tfgo.Sum(s, x, axes, tfgo.SumKeepDims(keep))
	})
	reduction("Mean", true, nil, func(s *tfgo.Scope, x, axes tfgo.Output, keep bool) tfgo.Output {
		return tfgo.Mean(s, x, axes, tfgo.MeanKeepDims(keep))
	})
	noInitial := map[string]opParam{"initial": {nil, isNull}}
	reduction("Max", false, noInitial, func(s *tfgo.Scope, x, axes tfgo.Output, keep bool) tfgo.Output {
		return tfgo.Max(s, x, axes, tfgo.MaxKeepDims(keep))
	})
	reduction("Min", false, noInitial, func(s *tfgo.Scope, x, axes tfgo.Output, keep bool) tfgo.Output {
		return tfgo.Min(s, x, axes, tfgo.MinKeepDims(keep))
	})

	opTable["Cast"] = onX(coreOps, map[string]opParam{"dtype": {"float32", isDType}}, func(c *opCall, x tfgo.Output) tfgo.Output {
		return castTo(c.s, x, parseDType(c.param("dtype")))
	})
	for class, one := range map[string]float64{"ZerosLike": 0, "OnesLike": 1} {
		opTable[class] = onX(numpyOps, map[string]opParam{"dtype": {nil, isDTypeOrNull}}, func(c *opCall, x tfgo.Output) tfgo.Output {
			dt := x.DataType()
			if d := c.param("dtype"); d != nil {
				dt = parseDType(d)
			}
			// Fill keeps the input's (dynamic) shape.
			return tfgo.Fill(c.s, tfgo.ShapeOf(c.s, x), valuesConst(c.s, []float64{one}, nil, dt))
		})
	}
	opTable["Clip"] = &opDef{module: numpyOps, args: []string{"x"},
		params: map[string]opParam{"x_min": {nil, isNumber}, "x_max": {nil, isNumber}},
		call: func(c *opCall) tfgo.Output {
			x, ok := c.tensor("x")
			if !ok {
				return tfgo.Output{}
			}
			dt := x.DataType()
			if dt == tfgo.Bool {
				return c.fail("clips a bool tensor")
			}
			// tf.clip_by_value: the bounds in x's dtype.
			lo, _ := c.param("x_min").(float64)
			hi, _ := c.param("x_max").(float64)
			return tfgo.Maximum(c.s, tfgo.Minimum(c.s, x, valuesConst(c.s, []float64{hi}, nil, dt)), valuesConst(c.s, []float64{lo}, nil, dt))
		}}
	opTable["Where"] = &opDef{module: numpyOps, args: []string{"condition", "x1", "x2"},
		call: func(c *opCall) tfgo.Output {
			cond, ok := c.tensor("condition")
			if !ok {
				return tfgo.Output{}
			}
			if c.args["x1"] == nil || c.args["x2"] == nil {
				return c.fail("where(condition) without x1 and x2 (the indices of true elements) is not supported")
			}
			xs, ok := c.operands(c.args["x1"], c.args["x2"])
			if !ok {
				return tfgo.Output{}
			}
			return tfgo.SelectV2(c.s, castTo(c.s, cond, tfgo.Bool), xs[0], xs[1])
		}}
	opTable["Take"] = &opDef{module: numpyOps, args: []string{"x", "indices"}, params: map[string]opParam{"axis": {nil, isIntOrNull}},
		call: func(c *opCall) tfgo.Output {
			x, ok := c.tensor("x")
			if !ok {
				return tfgo.Output{}
			}
			idx, ok := c.tensor("indices")
			if !ok {
				return tfgo.Output{}
			}
			axis := c.param("axis")
			if axis == nil {
				x = tfgo.Reshape(c.s, x, tfgo.Const(c.s, []int64{-1}))
				axis = 0.0
			}
			a := int(toFloat(axis))
			if a < 0 {
				n, ok := c.rank(x)
				if !ok {
					return tfgo.Output{}
				}
				a += n
			}
			ax := tfgo.Const(c.s, int32(a))
			// Negative indices count from the end, as in JAX's "fill" mode.
			dim := castTo(c.s, tfgo.GatherV2(c.s, tfgo.ShapeOf(c.s, x), ax, tfgo.Const(c.s, int32(0))), idx.DataType())
			idx = tfgo.SelectV2(c.s, tfgo.Less(c.s, idx, valuesConst(c.s, []float64{0}, nil, idx.DataType())), tfgo.AddV2(c.s, idx, dim), idx)
			return tfgo.GatherV2(c.s, x, idx, ax)
		}}
	opTable["Matmul"] = &opDef{module: numpyOps, args: []string{"x1", "x2"}, call: matmulOp}
	opTable["Einsum"] = &opDef{module: numpyOps, variadic: true, params: map[string]opParam{"subscripts": {nil, isSubscripts}},
		call: func(c *opCall) tfgo.Output {
			operands, _ := c.args["operands"].([]any)
			if len(operands) < 1 || len(operands) > 2 {
				return c.fail("einsum of %d operands (1 or 2 are supported)", len(operands))
			}
			xs, ok := c.operands(operands...)
			if !ok {
				return tfgo.Output{}
			}
			sub, _ := c.param("subscripts").(string)
			return tfgo.Einsum(c.s, xs, sub)
		}}
	registerShapeOps()
}

// matmulOp is numpy's matmul: batched over leading dimensions
// (broadcast), a 1-D operand taken as a row (x1) or column (x2) vector
// whose dimension the result drops.
func matmulOp(c *opCall) tfgo.Output {
	xs, ok := c.operands(c.args["x1"], c.args["x2"])
	if !ok {
		return tfgo.Output{}
	}
	r1, ok1 := c.rank(xs[0])
	r2, ok2 := c.rank(xs[1])
	if !ok1 || !ok2 {
		return tfgo.Output{}
	}
	if r1 == 0 || r2 == 0 {
		return c.fail("matmul of a scalar")
	}
	a, b := xs[0], xs[1]
	if r1 == 1 {
		a = tfgo.ExpandDims(c.s, a, tfgo.Const(c.s, int32(0)))
	}
	if r2 == 1 {
		b = tfgo.ExpandDims(c.s, b, tfgo.Const(c.s, int32(-1)))
	}
	y := tfgo.BatchMatMulV2(c.s, a, b)
	var drop []int64
	if r1 == 1 {
		drop = append(drop, -2)
	}
	if r2 == 1 {
		drop = append(drop, -1)
	}
	if drop != nil {
		y = tfgo.Squeeze(c.s, y, tfgo.SqueezeSqueezeDims(drop))
	}
	return y
}
