package keraslike

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gotf/gotf/mixedprecision"
	"github.com/gotf/gotf/tfgo"
)

// QuantizeOptions are the options of Model.QuantizeWithOptions.
type QuantizeOptions struct {
	// WeightOnly keeps int8 storage but computes in floating point: the
	// inputs are not quantized, the matrix product is a float MatMul of the
	// inputs and the int8 kernel cast to the compute dtype, rescaled after
	// (Keras' Int8QuantizationConfig(activation_quantizer=None)), for
	// devices without int8 matrix kernels. Embedding lookups are the same
	// either way.
	WeightOnly bool
	// Filter, when set, quantizes only the layers it returns true for
	// (Keras' filters=callable; a name pattern is Filter: func(l Layer)
	// bool { return re.MatchString(l.Name()) }, as Keras' regex filters
	// search the layer's name). It sees every layer, sublayers included.
	Filter func(Layer) bool
}

// Quantize is Keras' model.quantize(mode) with the default configuration:
// see QuantizeWithOptions.
func (m *Model) Quantize(mode string) error { return m.QuantizeWithOptions(mode, QuantizeOptions{}) }

// QuantizeWithOptions quantizes the model's weights in place, as Keras 3's
// model.quantize(mode) does; only mode "int8" is implemented. Every Dense,
// Embedding and MultiHeadAttention projection (Keras' EinsumDense), nested
// ones included, is quantized:
//
//   - its kernel becomes an int8 weight "kernel" (Embedding: "embeddings")
//     and a float weight "kernel_scale" ("embeddings_scale") is added, with
//     Keras' numerics (keras.quantizers.abs_max_quantize in numpy): per
//     output channel (Embedding: per row) scale = 127 / (max|w| + 1e-7),
//     q = clip(round_half_even(w·scale), -127, 127), all in float32, so
//     that the int8 kernel and its scales equal Keras' bit for bit;
//   - its dtype policy becomes "int8_from_<policy>" (QuantizedDTypePolicy);
//   - its calls quantize each input row the same way at run time (scale
//     127 / (max|row| + 1e-7)), multiply int8 by int8 into int32 (on
//     oneDNN's int8 kernel; Keras' TensorFlow backend runs BatchMatMulV3
//     with Tout int32, the same integers: see int8MatMul), cast the result
//     to the compute dtype and divide it by kernel_scale·input_scale, as
//     Keras' _int8_call does.
//
// The inference graph is rebuilt on the quantized weights; the float
// kernels are freed from the session. A compiled model must be compiled
// again; training then updates the float weights left (biases,
// normalizations) and, as Keras' custom gradient does, passes the
// gradient to the inputs through the dequantized kernels.
//
// Errors, modelled on Keras' messages, change nothing: an unknown or
// unimplemented mode, a model with no layer that can be quantized, a layer
// already quantized, and a layer whose variables are not float32.
func (m *Model) QuantizeWithOptions(mode string, o QuantizeOptions) error {
	if err := m.usable(); err != nil {
		return err
	}
	if err := checkQuantizationMode(mode); err != nil {
		return fmt.Errorf("quantizing model %q: %w", m.name, err)
	}
	if err := m.Build(); err != nil {
		return err
	}
	var qs []quantizable
	var others []string
	walkLayers(m.layers, func(l Layer) {
		if o.Filter != nil && !o.Filter(l) {
			return
		}
		if q, ok := l.(quantizable); ok {
			qs = append(qs, q)
		} else if len(l.Weights()) > 0 && !hasSublayers(l) {
			others = append(others, l.ClassName())
		}
	})
	if len(qs) == 0 {
		hint := ""
		if len(others) > 0 {
			hint = fmt.Sprintf(" (Layer %s does not have a `quantize` method implemented)", others[0])
		}
		return fmt.Errorf("quantizing model %q: no layer can be quantized: Dense, EinsumDense and Embedding can%s", m.name, hint)
	}
	for _, q := range qs {
		p := q.DTypePolicy()
		if p.QuantizationMode() != "" {
			return fmt.Errorf("quantizing model %q: Layer '%s' is already quantized with dtype_policy='%s'. Received: mode=%s", m.name, q.Name(), p.Name(), mode)
		}
		if _, err := p.Quantized(mode); err != nil {
			return fmt.Errorf("quantizing model %q: layer %q: %w", m.name, q.Name(), err)
		}
		if w := q.floatKernel(); w == nil || w.DType() != tfgo.Float {
			dt := "no kernel"
			if w != nil {
				dt = w.DType().String()
			}
			return fmt.Errorf("quantizing model %q: layer %q has %s weights: quantizing float32 weights only is implemented", m.name, q.Name(), dt)
		}
	}
	sess, err := m.session()
	if err != nil {
		return err
	}
	fetch := make([]tfgo.Output, len(qs))
	for i, q := range qs {
		fetch[i] = q.floatKernel().Value()
	}
	vals, err := sess.Run(nil, fetch)
	if err != nil {
		return fmt.Errorf("quantizing model %q: reading the kernels: %w", m.name, err)
	}
	defer func() {
		for _, v := range vals {
			v.Close()
		}
	}()

	var newW []*Weight
	var newV []*tfgo.Tensor
	defer func() {
		for _, v := range newV {
			v.Close()
		}
	}()
	var old []*tfgo.Variable
	for i, q := range qs {
		kernel := q.floatKernel()
		lay := q.int8Layout()
		q8, scale := absMaxQuantize(float32s(vals[i].Data()), lay.outer, lay.reduce, lay.inner)
		b := q.base()
		kt, err := tfgo.NewTensorFromBytes(tfgo.Int8, kernel.Shape(), int8Bytes(q8))
		if err != nil {
			return fmt.Errorf("quantizing layer %q: %w", q.Name(), err)
		}
		newV = append(newV, kt)
		st, err := tfgo.NewTensorFromBytes(tfgo.Float, lay.scaleShape, float32Bytes(scale))
		if err != nil {
			return fmt.Errorf("quantizing layer %q: %w", q.Name(), err)
		}
		newV = append(newV, st)
		k8, sw := b.addInt8Weights(lay.kernelName, kernel, lay.scaleName, lay.scaleShape)
		q.setInt8(k8, sw, o.WeightOnly)
		p, _ := b.policy.Quantized(mode)
		b.policy = p
		newW = append(newW, k8, sw)
		old = append(old, kernel.Variable)
	}
	if err := m.Scope().Err(); err != nil {
		return fmt.Errorf("quantizing model %q: %w", m.name, err)
	}
	if err := m.assign(sess, newW, newV); err != nil {
		return fmt.Errorf("quantizing model %q: assigning the int8 weights: %w", m.name, err)
	}
	// The float kernels are unreachable from now on: free them.
	ds := m.Scope().SubScope("quantize_free")
	var frees []*tfgo.Operation
	for _, v := range old {
		frees = append(frees, tfgo.DestroyResourceOp(ds, v.Handle(), tfgo.DestroyResourceOpIgnoreLookupError(true)))
	}
	if err := m.Scope().Err(); err != nil {
		return fmt.Errorf("quantizing model %q: %w", m.name, err)
	}
	if _, err := sess.Run(nil, nil, frees...); err != nil {
		return fmt.Errorf("quantizing model %q: freeing the float kernels: %w", m.name, err)
	}
	return m.rebuildInference()
}

// rebuildInference adds a new inference graph on the layers' current
// weights (after they changed, as Quantize changes them) and forgets the
// training step built on the old ones.
func (m *Model) rebuildInference() error {
	m.built = false
	m.train = nil
	m.restorers = nil
	return m.Build()
}

// checkQuantizationMode refuses what Keras refuses (an unknown mode, with
// its message) and the modes keraslike does not implement.
func checkQuantizationMode(mode string) error {
	if !slices.Contains(mixedprecision.QuantizationModes, mode) {
		q := make([]string, len(mixedprecision.QuantizationModes))
		for i, m := range mixedprecision.QuantizationModes {
			q[i] = "'" + m + "'"
		}
		return fmt.Errorf("Invalid quantization mode. Expected one of (%s). Received: mode=%s", strings.Join(q, ", "), excerpt(mode))
	}
	if mode != "int8" {
		return fmt.Errorf("quantization mode %q is not implemented in keraslike (int8 only)", mode)
	}
	return nil
}

// quantizable is a layer Keras' quantize("int8") changes: Dense,
// Embedding and MultiHeadAttention's EinsumDense projections.
type quantizable interface {
	Layer
	base() *Base
	DTypePolicy() mixedprecision.Policy
	// floatKernel is the float weight quantization replaces (nil before
	// the layer is built, or once quantized).
	floatKernel() *Weight
	int8Layout() int8Layout
	// setInt8 makes the layer use the int8 kernel and its scale.
	setInt8(kernel, scale *Weight, weightOnly bool)
}

// int8Layout says how a layer's kernel is quantized: viewed as [outer,
// reduce, inner], the abs-max is taken over reduce (a Dense kernel [in,
// units] is [1, in, units], one scale per unit; an Embedding [rows, dim]
// is [rows, dim, 1], one scale per row), and the scales are stored in
// scaleShape under scaleName.
type int8Layout struct {
	outer, reduce, inner  int
	kernelName, scaleName string
	scaleShape            []int64
}

// walkLayers calls f on every layer and, depth first, its sublayers (Keras'
// _flatten_layers).
func walkLayers(ls []Layer, f func(Layer)) {
	for _, l := range ls {
		f(l)
		if b, ok := l.(interface{ base() *Base }); ok && b.base() != nil {
			walkLayers(b.base().sublayers, f)
		}
	}
}

func hasSublayers(l Layer) bool {
	b, ok := l.(interface{ base() *Base })
	return ok && b.base() != nil && len(b.base().sublayers) > 0
}

// addInt8Weights creates the int8 weight that takes kernel's place in the
// layer's weights (Keras saves it where the float kernel was) and the
// scale weight after the others, as Keras' _int8_build adds them, both
// untrainable.
func (b *Base) addInt8Weights(kernelName string, kernel *Weight, scaleName string, scaleShape []int64) (*Weight, *Weight) {
	k8 := &Weight{Variable: tfgo.NewVariable(b.wscope, kernelName, tfgo.Int8, kernel.Shape(), tfgo.Zeros(), tfgo.Trainable(false)), Path: kernel.Path}
	for i, w := range b.weights {
		if w == kernel {
			b.weights[i] = k8
		}
	}
	sw := b.AddWeight(scaleName, tfgo.Float, scaleShape, tfgo.Ones(), false)
	return k8, sw
}

// buildInt8Kernel creates a quantized layer's int8 kernel at its first
// call (a layer read from a quantized Keras file, Keras' _int8_build); the
// caller adds the scale after the bias, in Keras' order.
func (b *Base) buildInt8Kernel(name string, shape []int64) *Weight {
	return b.AddWeight(name, tfgo.Int8, shape, tfgo.Zeros(), false)
}

// absMaxQuantize is keras.quantizers.abs_max_quantize(w, axis,
// to_numpy=True) on float32 values laid out [outer, reduce, inner],
// reducing over the middle axis: numpy computes in float32 (the epsilon
// and 127 are weak Python scalars), rounds half to even and clips. The
// explicit float32 conversions keep Go from fusing the multiply into
// anything wider.
func absMaxQuantize(w []float32, outer, reduce, inner int) ([]int8, []float32) {
	scale := make([]float32, outer*inner)
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			var m float32
			for r := 0; r < reduce; r++ {
				if a := float32(math.Abs(float64(w[(o*reduce+r)*inner+i]))); a > m || a != a {
					m = a
				}
			}
			scale[o*inner+i] = float32(127) / float32(m+float32(1e-7))
		}
	}
	q := make([]int8, len(w))
	for o := 0; o < outer; o++ {
		for r := 0; r < reduce; r++ {
			for i := 0; i < inner; i++ {
				k := (o*reduce+r)*inner + i
				v := math.RoundToEven(float64(float32(w[k] * scale[o*inner+i])))
				q[k] = int8(max(-127, min(127, v)))
			}
		}
	}
	return q, scale
}

// roundRows is the inputs quantizer of Keras' _int8_call (AbsMaxQuantizer
// over the last axis) on a [rows, features] tensor of a float dtype: scale
// = 127 / (max|row| + 1e-7) in that dtype, clip(round(x·scale), -127, 127)
// still in that dtype (exact integers), which the products cast to int8.
func roundRows(s *tfgo.Scope, x tfgo.Output) (r, scale tfgo.Output) {
	dt := x.DataType()
	amax := tfgo.Max(s, tfgo.Abs(s, x), tfgo.Const(s, []int32{-1}), tfgo.MaxKeepDims(true))
	scale = tfgo.RealDiv(s, scalarAs(s, 127, dt), tfgo.AddV2(s, amax, scalarAs(s, 1e-7, dt)))
	r = tfgo.Round(s, tfgo.Mul(s, x, scale))
	return tfgo.ClipByValue(s, r, scalarAs(s, -127, dt), scalarAs(s, 127, dt)), scale
}

// int8MatMul is the product of Keras' int8 Dense and EinsumDense calls
// on x [rows, in] (compute dtype) and an int8 kernel [in, out] with its
// scales [out]: int8 × int8 → int32 on quantized inputs, cast to the
// compute dtype and divided by kernel_scale·inputs_scale; weight-only, a
// float MatMul on the kernel cast to the compute dtype, divided by
// kernel_scale. The integer product runs on oneDNN's int8 kernel
// (QuantizedMatMulWithBias, a CPU kernel: GPU hosts want WeightOnly),
// about 5 times faster on the main job's GPT here (AVX-512 VNNI) than
// TensorFlow's Eigen int8 BatchMatMulV3, which Keras'
// tf.matmul(..., output_type=int32) runs and which remains for products
// deeper than maxOneDNNDepth.
func int8MatMul(ctx *Context, s *tfgo.Scope, x tfgo.Output, kernel, scale *Weight, out int64, weightOnly bool) tfgo.Output {
	dt := x.DataType()
	k := ctx.Read(s, kernel, tfgo.Int8)
	if len(kernel.Shape()) != 2 {
		k = tfgo.Reshape(s, k, tfgo.Const(s, []int32{-1, int32(out)}))
	}
	ks := ctx.Read(s, scale, dt)
	if len(scale.Shape()) != 1 {
		ks = tfgo.Reshape(s, ks, tfgo.Const(s, []int32{int32(out)}))
	}
	if weightOnly {
		return tfgo.RealDiv(s, tfgo.MatMul(s, x, castTo(s, k, dt)), ks)
	}
	xr, xs := roundRows(s, x)
	var p tfgo.Output
	if depth(kernel.Shape(), out) <= maxOneDNNDepth {
		p = oneDNNInt8MatMul(s, xr, k, out)
	} else {
		p = tfgo.BatchMatMulV3(s, tfgo.Cast(s, xr, tfgo.Int8), k, tfgo.Int32)
	}
	y := tfgo.RealDiv(s, tfgo.Cast(s, p, dt), tfgo.Mul(s, ks, xs))
	if !ctx.Training {
		return y
	}
	// Keras' custom gradient: the inputs' gradient through the dequantized
	// kernel (the rounding has none); the int8 kernel and its scales are
	// not trained. The forward value stays y: a - a is 0.
	a := tfgo.MatMul(s, x, tfgo.RealDiv(s, castTo(s, k, dt), ks))
	return tfgo.AddV2(s, tfgo.StopGradient(s, y), tfgo.Sub(s, a, tfgo.StopGradient(s, a)))
}

// maxOneDNNDepth bounds the contracted depth given to oneDNN's int8
// kernel: it offsets the signed inputs by 128 and subtracts 128·Σw per
// column again (input_quant_mode MIN_FIRST), a correction of at most
// 128·127·depth, exact while that stays within float32's 2^24 integers
// (the products themselves accumulate in int32). Deeper products take
// TensorFlow's Eigen int8 kernel.
const maxOneDNNDepth = 1 << 24 / (128 * 127)

func depth(kernelShape []int64, out int64) int64 {
	n := int64(1)
	for _, d := range kernelShape {
		n *= d
	}
	return n / out
}

// oneDNNInt8MatMul is the int8 × int8 → int32 product of rounded inputs
// xr (floats in [-127, 127]) and an int8 kernel [in, out] on oneDNN's
// int8 kernel (VNNI where the CPU has it): TensorFlow registers it for
// QuantizedMatMulWithBias with unsigned inputs only, so the inputs are
// shifted to [1, 255] and declared to span [-128, 127] (scale 1, zero
// point -128), for which the kernel subtracts the shift exactly; the
// weights span [-127, 127] (scale 1). The result equals the signed
// product to the bit (checked in the tests against BatchMatMulV3).
func oneDNNInt8MatMul(s *tfgo.Scope, xr, k tfgo.Output, out int64) tfgo.Output {
	dt := xr.DataType()
	xu := tfgo.Bitcast(s, tfgo.Cast(s, tfgo.AddV2(s, xr, scalarAs(s, 128, dt)), tfgo.Uint8), tfgo.Quint8)
	kq := tfgo.Bitcast(s, k, tfgo.Qint8)
	zero := tfgo.Const(s, make([]float32, out))
	y, _, _ := tfgo.QuantizedMatMulWithBias(s, xu, kq, zero,
		tfgo.Const(s, float32(-128)), tfgo.Const(s, float32(127)), tfgo.Const(s, float32(-127)), tfgo.Const(s, float32(127)),
		tfgo.QuantizedMatMulWithBiasToutput(tfgo.Qint32), tfgo.QuantizedMatMulWithBiasInputQuantMode("MIN_FIRST"))
	return tfgo.Bitcast(s, y, tfgo.Int32)
}

// float32s reads little-endian float32 tensor bytes.
func float32s(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func float32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func int8Bytes(v []int8) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}

// Keras writes a quantized layer's quantization_config as an
// Int8QuantizationConfig: no weight quantizer (the default), and the
// inputs' AbsMaxQuantizer, or none for weight-only quantization.
func int8QuantizationConfig(weightOnly bool) map[string]any {
	var act any
	if !weightOnly {
		act = map[string]any{
			"module": "keras.quantizers", "class_name": "AbsMaxQuantizer", "registered_name": nil,
			"config": map[string]any{"value_range": []any{-127, 127}, "epsilon": 1e-7, "output_dtype": "int8"},
		}
	}
	return map[string]any{
		"module": "keras.quantizers", "class_name": "Int8QuantizationConfig", "registered_name": nil,
		"config": map[string]any{"weight_quantizer": nil, "activation_quantizer": act},
	}
}

// readQuantizationConfig reads a layer config's quantization_config (and
// its dtype, which says whether the layer is quantized): null, or the
// Int8QuantizationConfig Keras writes, with the default quantizers or no
// inputs quantizer (weightOnly). Any other quantizer, or a config on a
// layer that is not int8-quantized, is refused.
func readQuantizationConfig(r *cfg) (weightOnly bool) {
	v := r.raw("quantization_config")
	if v == nil {
		return false
	}
	p, err := mixedprecision.PolicyFromConfig(r.c["dtype"])
	if err != nil || p.QuantizationMode() != "int8" {
		r.fail("quantization_config=%s on a layer whose dtype policy is not int8-quantized is not supported", excerpt(v))
		return false
	}
	c, ok := v.(map[string]any)
	bad := func() bool {
		r.fail("quantization_config=%s is not supported (Int8QuantizationConfig with the default quantizers, or activation_quantizer=None)", excerpt(v))
		return false
	}
	if !ok || c["class_name"] != "Int8QuantizationConfig" {
		return bad()
	}
	qc, ok := c["config"].(map[string]any)
	if !ok {
		return bad()
	}
	for k, x := range qc {
		switch k {
		case "weight_quantizer":
			if x != nil {
				return bad()
			}
		case "activation_quantizer":
			if x == nil {
				weightOnly = true
			} else if !defaultAbsMax(x) {
				return bad()
			}
		default:
			return bad()
		}
	}
	if _, ok := qc["activation_quantizer"]; !ok {
		return bad()
	}
	return weightOnly
}

// defaultAbsMax reports whether v is a serialized AbsMaxQuantizer() with
// Keras' defaults (what the inputs quantizer of an int8 layer is).
func defaultAbsMax(v any) bool {
	q, ok := v.(map[string]any)
	if !ok || q["class_name"] != "AbsMaxQuantizer" {
		return false
	}
	c, ok := q["config"].(map[string]any)
	if !ok {
		return false
	}
	for k, x := range c {
		switch k {
		case "value_range":
			r, ok := x.([]any)
			if !ok || len(r) != 2 || r[0] != -127.0 || r[1] != 127.0 {
				return false
			}
		case "epsilon":
			if x != 1e-7 {
				return false
			}
		case "output_dtype":
			if x != "int8" {
				return false
			}
		case "axis":
			if x != nil && x != -1.0 && !slices.Equal(anySlice(x), []any{-1.0}) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func anySlice(v any) []any {
	s, _ := v.([]any)
	return s
}
