package keraslike

import (
	"math"

	"github.com/gotf/gotf/tfgo"
)

// PositionalEmbeddingOptions are PositionalEmbedding's arguments beyond
// sequence_length and output_dim.
type PositionalEmbeddingOptions struct {
	Name string
	// Initializer of the position embeddings; default glorot_uniform (as
	// keras_hub's PositionEmbedding), seeded from the layer's name.
	Initializer tfgo.Initializer
}

// PositionalEmbedding adds learned position embeddings to a sequence:
// for inputs x of shape [..., T, output_dim] with T <= sequence_length it
// returns
//
//	x + embeddings[:T]
//
// broadcast over the leading dims. The weight "<name>/embeddings"
// [sequence_length, output_dim] and its slicing to the input's length are
// those of keras_hub.layers.PositionEmbedding(sequence_length) (start_index
// 0), which returns the sliced embeddings broadcast to the input's shape
// for the caller to add; this layer does the addition too, as the
// TokenAndPositionEmbedding of the Keras examples does. The embeddings are
// cast to the input's dtype. A T known when the graph is built must be at
// most sequence_length; a longer T known only at run time is an error of
// the graph run.
type PositionalEmbedding struct {
	Base
	SequenceLength, OutputDim int
	opts                      PositionalEmbeddingOptions

	embeddings *Weight
}

// NewPositionalEmbedding returns a PositionalEmbedding(sequence_length, output_dim).
func NewPositionalEmbedding(sequenceLength, outputDim int, opts PositionalEmbeddingOptions) *PositionalEmbedding {
	return &PositionalEmbedding{Base: NewBase("PositionalEmbedding", opts.Name), SequenceLength: sequenceLength, OutputDim: outputDim, opts: opts}
}

// Embeddings is the weight "<name>/embeddings" (nil before the first call).
func (p *PositionalEmbedding) Embeddings() *Weight { return p.embeddings }

// Call adds the position embeddings to x.
func (p *PositionalEmbedding) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	x, ok := ctx.OneInput(p, inputs)
	if !ok {
		return tfgo.Output{}
	}
	if p.SequenceLength <= 0 || p.OutputDim <= 0 {
		ctx.Fail(p, "sequence_length and output_dim must be positive, got %d and %d", p.SequenceLength, p.OutputDim)
		return tfgo.Output{}
	}
	if !isFloat(x.DataType()) {
		ctx.Fail(p, "needs floating-point inputs, got %s", x.DataType())
		return tfgo.Output{}
	}
	shape := staticShape(x)
	if len(shape) < 2 || shape[len(shape)-1] != int64(p.OutputDim) {
		ctx.Fail(p, "needs inputs of rank >= 2 with last dimension output_dim=%d, got shape %v", p.OutputDim, tfgo.Shape{Dims: shape, UnknownRank: shape == nil})
		return tfgo.Output{}
	}
	if t := shape[len(shape)-2]; t > int64(p.SequenceLength) {
		ctx.Fail(p, "got sequences of length %d, longer than sequence_length=%d", t, p.SequenceLength)
		return tfgo.Output{}
	}
	if p.Build(ctx) {
		init := p.opts.Initializer
		if init == nil {
			init = tfgo.GlorotUniform(seedFor(p.name))
		}
		p.embeddings = p.AddWeight("embeddings", tfgo.Float, []int64{int64(p.SequenceLength), int64(p.OutputDim)}, init, true)
	}
	s := ctx.Scope.SubScope(p.name)
	var length tfgo.Output
	if t := shape[len(shape)-2]; t >= 0 {
		length = tfgo.Const(s, []int32{int32(t)})
	} else {
		rank := int32(len(shape))
		length = tfgo.Slice(s, tfgo.ShapeOf(s, x), tfgo.Const(s, []int32{rank - 2}), tfgo.Const(s, []int32{1}))
	}
	size := tfgo.ConcatV2(s, []tfgo.Output{length, tfgo.Const(s, []int32{int32(p.OutputDim)})}, tfgo.Const(s, int32(0)))
	emb := tfgo.Slice(s, ctx.Read(s, p.embeddings, x.DataType()), tfgo.Const(s, []int32{0, 0}), size)
	return tfgo.AddV2(s, x, emb)
}

// Config is PositionalEmbedding's get_config (keras_hub's keys plus output_dim).
func (p *PositionalEmbedding) Config() map[string]any {
	c := p.BaseConfig()
	c["sequence_length"] = p.SequenceLength
	c["output_dim"] = p.OutputDim
	return c
}

// PositionalEmbedding is not a Keras built-in: its Keras class is
// gotf.keraslike.PositionalEmbedding (python/gotf/keraslike.py, which `make
// setup` installs), saved by Keras as "gotf>PositionalEmbedding". Go reads
// that name and the bare "PositionalEmbedding".
func init() { registerCustom("PositionalEmbedding", positionalEmbeddingFromConfig) }

// positionalEmbeddingFromConfig is PositionalEmbedding.from_config.
func positionalEmbeddingFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	seq := r.required("sequence_length", 1, math.MaxInt32)
	d := r.required("output_dim", 1, maxDim)
	r.elements("sequence_length, output_dim", seq, d)
	return r.done(NewPositionalEmbedding(seq, d, PositionalEmbeddingOptions{Name: name}))
}
