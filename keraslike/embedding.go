package keraslike

import (
	"fmt"
	"math"

	"github.com/gotf/gotf/tfgo"
)

// EmbeddingOptions are keras.layers.Embedding's arguments beyond input_dim
// and output_dim.
type EmbeddingOptions struct {
	Name string
	// EmbeddingsInitializer defaults to Keras' "uniform":
	// keras.initializers.RandomUniform(-0.05, 0.05), seeded from the
	// layer's name (Keras' default is unseeded).
	EmbeddingsInitializer tfgo.Initializer
}

// Embedding is keras.layers.Embedding(input_dim, output_dim): it maps each
// integer id in [0, input_dim) to row id of its weight "<name>/embeddings"
// [input_dim, output_dim], so ids of shape S give S + [output_dim]. Ids are
// int32 or int64 of any rank; a negative id counts from the end (id +
// input_dim), as Keras' ops.take does; an id out of range is an error when
// the graph runs. Keras casts float ids to int32; here float ids are an
// error naming the layer, since they are nearly always a mistake.
//
// The lookup is a ResourceGather on the variable's handle (what
// tf.gather on a resource variable builds), so tfgo.Gradients gives the
// embeddings a dense gradient that is non-zero only in the looked-up rows.
// The result is in the context's compute dtype (Keras casts it to the
// layer's compute dtype). mask_zero is not supported.
type Embedding struct {
	Base
	InputDim, OutputDim int
	opts                EmbeddingOptions

	embeddings *Weight
	// embeddingsScale is set when the layer is int8-quantized: embeddings
	// is then int8 and each row is divided by its scale.
	embeddingsScale *Weight
	// weightOnly only records the quantization_config (a lookup quantizes
	// no inputs either way).
	weightOnly bool
}

// NewEmbedding returns keras.layers.Embedding(input_dim, output_dim, ...).
func NewEmbedding(inputDim, outputDim int, opts EmbeddingOptions) *Embedding {
	return &Embedding{Base: NewBase("Embedding", opts.Name), InputDim: inputDim, OutputDim: outputDim, opts: opts}
}

// Embeddings is the weight "<name>/embeddings" (nil before the first call).
func (e *Embedding) Embeddings() *Weight { return e.embeddings }

// Call looks up the embeddings of the ids in inputs[0].
func (e *Embedding) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	ids, ok := ctx.OneInput(e, inputs)
	if !ok {
		return tfgo.Output{}
	}
	if e.InputDim <= 0 || e.OutputDim <= 0 {
		ctx.Fail(e, "input_dim and output_dim must be positive, got %d and %d", e.InputDim, e.OutputDim)
		return tfgo.Output{}
	}
	// Keras casts ids of another dtype to int32: float ids (from an Input
	// left float32) are truncated.
	if dt := ids.DataType(); dt != tfgo.Int32 && dt != tfgo.Int64 && !isFloat(dt) {
		ctx.Fail(e, "needs int32, int64 or floating-point ids, got %s", dt)
		return tfgo.Output{}
	}
	if e.Build(ctx) {
		init := e.opts.EmbeddingsInitializer
		if init == nil {
			init = uniformInitializer(-0.05, 0.05, seedFor(e.name))
		}
		shape := []int64{int64(e.InputDim), int64(e.OutputDim)}
		if e.policy.QuantizationMode() == "int8" {
			e.embeddings = e.buildInt8Kernel("embeddings", shape)
			e.embeddingsScale = e.AddWeight("embeddings_scale", tfgo.Float, []int64{int64(e.InputDim)}, tfgo.Ones(), false)
		} else {
			e.embeddings = e.AddWeight("embeddings", tfgo.Float, shape, init, true)
		}
	}
	s := ctx.Scope.SubScope(e.name)
	if isFloat(ids.DataType()) {
		ids = tfgo.Cast(s, ids, tfgo.Int32)
	}
	// keras ops.take: tf.where(ids < 0, ids + input_dim, ids).
	n, zero := tfgo.Const(s, int64(e.InputDim)), tfgo.Const(s, int64(0))
	if ids.DataType() == tfgo.Int32 {
		n, zero = tfgo.Const(s, int32(e.InputDim)), tfgo.Const(s, int32(0))
	}
	ids = tfgo.SelectV2(s, tfgo.Less(s, ids, zero), tfgo.AddV2(s, ids, n), ids)
	// Gathering before the cast casts only the rows used (Keras casts the
	// table, then takes: the same values).
	y := tfgo.ResourceGather(s, e.embeddings.Handle(), ids, e.embeddings.DType())
	if e.embeddingsScale != nil {
		// Keras' _int8_call: the rows cast to the compute dtype, divided by
		// their scales (read in the compute dtype, as Keras' autocast does).
		dt := e.ComputeDType()
		sc := castTo(s, tfgo.ResourceGather(s, e.embeddingsScale.Handle(), ids, e.embeddingsScale.DType()), dt)
		return tfgo.RealDiv(s, castTo(s, y, dt), tfgo.ExpandDims(s, sc, tfgo.Const(s, int32(-1))))
	}
	return castTo(s, y, e.ComputeDType())
}

// Quantization is Keras' int8 contract (quantize.go): one scale per row
// (Keras reduces over output_dim, usually the smaller axis).
func (e *Embedding) floatKernel() *Weight {
	if e.embeddingsScale != nil {
		return nil
	}
	return e.embeddings
}

func (e *Embedding) int8Layout() int8Layout {
	return int8Layout{outer: e.InputDim, reduce: e.OutputDim, inner: 1, kernelName: "embeddings", scaleName: "embeddings_scale", scaleShape: []int64{int64(e.InputDim)}}
}

func (e *Embedding) setInt8(kernel, scale *Weight, weightOnly bool) {
	e.embeddings, e.embeddingsScale, e.weightOnly = kernel, scale, weightOnly
}

// Config is Embedding's get_config.
func (e *Embedding) Config() map[string]any {
	c := e.BaseConfig()
	c["input_dim"] = e.InputDim
	c["output_dim"] = e.OutputDim
	c["mask_zero"] = false
	if e.embeddingsScale != nil {
		c["quantization_config"] = int8QuantizationConfig(e.weightOnly)
	}
	return c
}

// uniformInitializer is keras.initializers.RandomUniform(minval, maxval,
// seed), built with the ops Keras 3's TensorFlow backend builds for an
// integer seed (as tfgo's initializers are): the seed pair
// [floormod(seed, 2^31-2), 0], StatelessRandomGetKeyCounter,
// StatelessRandomUniformV2 (alg 3), then draw*(maxval-minval)+minval with
// the bounds cast from float32, so the values equal Keras' for the same seed.
func uniformInitializer(minval, maxval float64, seed int64) tfgo.Initializer {
	return tfgo.InitializerFunc(func(s *tfgo.Scope, shape []int64, dtype tfgo.DataType) tfgo.Output {
		if !isFloat(dtype) {
			s.UpdateErr("stateless_random_uniform", fmt.Errorf("a uniform initializer needs a float dtype, not %s", dtype))
			return tfgo.Output{}
		}
		rs := s.SubScope("stateless_random_uniform")
		const m = math.MaxInt32 - 1
		seed0 := ((seed % m) + m) % m
		key, counter := tfgo.StatelessRandomGetKeyCounter(rs, tfgo.Const(rs, []int32{int32(seed0), 0}))
		dims := make([]int64, len(shape))
		copy(dims, shape)
		draw := tfgo.StatelessRandomUniformV2(rs, tfgo.Const(rs, dims), key, counter, tfgo.Const(rs, int32(3)),
			tfgo.StatelessRandomUniformV2Dtype(dtype))
		// Keras passes tf.cast(minval, dtype), which goes through float32.
		lo := scalarAs(rs, float64(float32(minval)), dtype)
		hi := scalarAs(rs, float64(float32(maxval)), dtype)
		return tfgo.AddV2(rs, tfgo.Mul(rs, draw, tfgo.Sub(rs, hi, lo)), lo)
	})
}

func init() { registerBuiltin("Embedding", embeddingFromConfig) }

// embeddingFromConfig is Embedding.from_config. Regularizers,
// constraints and the legacy input_length are not implemented: a non-null
// one is refused; so is a quantization_config other than the int8 one
// Keras writes.
func embeddingFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	in := r.required("input_dim", 1, math.MaxInt32)
	out := r.required("output_dim", 1, maxDim)
	r.elements("input_dim, output_dim", in, out)
	r.initializers("embeddings_initializer")
	r.want("mask_zero", false)
	r.want("lora_rank", 0)
	weightOnly := readQuantizationConfig(r)
	e := NewEmbedding(in, out, EmbeddingOptions{Name: name})
	e.weightOnly = weightOnly
	return r.done(e)
}
