package keraslike

import (
	"github.com/gotf/gotf/tfgo"
)

// TransformerBlockOptions are TransformerBlock's arguments beyond d_model,
// num_heads and ff_dim.
type TransformerBlockOptions struct {
	Name string
	// KeyDim is the size of each attention head; 0 means d_model/num_heads.
	KeyDim int
	// Dropout is the rate of the attention-probability dropout and of the
	// dropout on the attention and feed-forward outputs before each residual
	// addition (as keras_hub's TransformerDecoder uses its dropout); training only.
	Dropout float64
	// Epsilon of both LayerNormalizations; 0 means 1e-6.
	Epsilon float64
	// PreLN selects the pre-LN block (normalize first) instead of post-LN.
	PreLN bool
	// Activation of the first feed-forward Dense: a Keras name, default "gelu".
	Activation string
	// NoCausalMask lets every position attend to every other (an encoder
	// block); by default the attention is causal (a decoder block).
	NoCausalMask bool
	// Seed seeds the dropouts: the attention's with Seed, the two output
	// dropouts with Seed+1 and Seed+2; nil derives them from the block's name.
	Seed *int64
}

// TransformerBlock is a transformer layer made of Keras layers, with
// d = d_model. Post-LN (Vaswani et al., 2017; the default):
//
//	x = LayerNormalization(x + Dropout(MultiHeadAttention(x, x)))
//	x = LayerNormalization_1(x + Dropout_1(Dense_1(Dense(x))))
//
// Pre-LN (GPT-2; PreLN true), whose output is not normalized:
//
//	h = LayerNormalization(x);   x = x + Dropout(MultiHeadAttention(h, h))
//	h = LayerNormalization_1(x); x = x + Dropout_1(Dense_1(Dense(h)))
//
// where Dense has ff_dim units and the activation and Dense_1 has d units.
// The attention has num_heads heads of key_dim (default d/num_heads), is
// causal unless NoCausalMask, and takes an optional extra attention mask
// (CallWithMask). It is keras_hub's TransformerDecoder without
// cross-attention (normalize_first = PreLN), or the TransformerBlock of the
// Keras examples.
//
// Inputs are [B, T, d]. Sublayers are named as Keras would name them in a
// fresh session, under the block's name, so the weights are
// "<name>/multi_head_attention/query/kernel" ... "<name>/layer_normalization/gamma",
// "<name>/layer_normalization_1/...", "<name>/dense/...", "<name>/dense_1/...",
// listed in that order (multi_head_attention, layer_normalization,
// layer_normalization_1, dense, dense_1: the order in which a Keras layer
// assigning them in that order tracks them). Defaults: epsilon 1e-6, gelu,
// causal.
type TransformerBlock struct {
	Base
	DModel, NumHeads, FFDim int
	opts                    TransformerBlockOptions

	mha               *MultiHeadAttention
	ln, ln1           *LayerNormalization
	dense, dense1     *Dense
	dropout, dropout1 *Dropout
}

// NewTransformerBlock returns a TransformerBlock(d_model, num_heads, ff_dim, ...).
func NewTransformerBlock(dModel, numHeads, ffDim int, opts TransformerBlockOptions) *TransformerBlock {
	if opts.Epsilon == 0 {
		opts.Epsilon = 1e-6
	}
	if opts.Activation == "" {
		opts.Activation = "gelu"
	}
	if opts.KeyDim == 0 && numHeads > 0 {
		opts.KeyDim = dModel / numHeads
	}
	return &TransformerBlock{Base: NewBase("TransformerBlock", opts.Name), DModel: dModel, NumHeads: numHeads, FFDim: ffDim, opts: opts}
}

// Sublayers lists the block's layers in weight order, then its dropouts
// (nil before the first call).
func (b *TransformerBlock) Sublayers() []Layer {
	if b.mha == nil { // not built, or Build called by hand: nothing made yet
		return nil
	}
	return []Layer{b.mha, b.ln, b.ln1, b.dense, b.dense1, b.dropout, b.dropout1}
}

// Call applies the block to x [B, T, d_model].
func (b *TransformerBlock) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	if len(inputs) != 1 {
		ctx.Fail(b, "takes 1 input, got %d", len(inputs))
		return tfgo.Output{}
	}
	return b.CallWithMask(ctx, inputs[0], tfgo.Output{})
}

// CallWithMask applies the block with an attention mask (e.g. padding:
// bool [B, T, T] or broadcastable, as MultiHeadAttention.CallWithMask
// takes it), combined with the causal mask unless NoCausalMask.
func (b *TransformerBlock) CallWithMask(ctx *Context, x, mask tfgo.Output) tfgo.Output {
	if !ctx.usable() || x.Op == nil {
		return tfgo.Output{}
	}
	if b.DModel <= 0 || b.NumHeads <= 0 || b.FFDim <= 0 || b.opts.KeyDim <= 0 {
		ctx.Fail(b, "d_model, num_heads, ff_dim and key_dim must be positive, got %d, %d, %d and %d", b.DModel, b.NumHeads, b.FFDim, b.opts.KeyDim)
		return tfgo.Output{}
	}
	if !isFloat(x.DataType()) {
		ctx.Fail(b, "needs floating-point inputs, got %s", x.DataType())
		return tfgo.Output{}
	}
	if sh := staticShape(x); len(sh) != 3 || sh[2] != int64(b.DModel) {
		ctx.Fail(b, "needs inputs of shape [batch, length, d_model=%d], got shape %v", b.DModel, tfgo.Shape{Dims: sh, UnknownRank: sh == nil})
		return tfgo.Output{}
	}
	if _, err := activation(b.opts.Activation); err != nil {
		ctx.Fail(b, "%v", err)
		return tfgo.Output{}
	}
	first := b.Build(ctx)
	if first {
		seed := seedFor(b.name + "/seed")
		if b.opts.Seed != nil {
			seed = *b.opts.Seed
		}
		seed1, seed2 := seed+1, seed+2
		kernel := func(sub string) tfgo.Initializer { return tfgo.GlorotUniform(seedFor(b.name + "/" + sub + "/kernel")) }
		b.mha = NewMultiHeadAttention(b.NumHeads, b.opts.KeyDim, MultiHeadAttentionOptions{Name: "multi_head_attention", Dropout: b.opts.Dropout, Seed: &seed})
		b.mha.seedPrefix = b.name + "/multi_head_attention"
		b.ln = NewLayerNormalization(LayerNormalizationOptions{Name: "layer_normalization", Epsilon: b.opts.Epsilon})
		b.ln1 = NewLayerNormalization(LayerNormalizationOptions{Name: "layer_normalization_1", Epsilon: b.opts.Epsilon})
		b.dense = NewDense(b.FFDim, DenseOptions{Name: "dense", Activation: b.opts.Activation, KernelInitializer: kernel("dense")})
		b.dense1 = NewDense(b.DModel, DenseOptions{Name: "dense_1", KernelInitializer: kernel("dense_1")})
		b.dropout = NewDropout(b.opts.Dropout, DropoutOptions{Name: "dropout", Seed: &seed1})
		b.dropout1 = NewDropout(b.opts.Dropout, DropoutOptions{Name: "dropout_1", Seed: &seed2})
		for _, l := range []*Base{&b.mha.Base, &b.ln.Base, &b.ln1.Base, &b.dense.Base, &b.dense1.Base, &b.dropout.Base, &b.dropout1.Base} {
			l.SetDTypePolicy(b.policy)
			l.remat = b.remat // made inside the block, as in Keras' __init__: in its RematScope
		}
	}
	x = ctx.autocast(b, x)
	sctx := b.SublayerContext(ctx)
	sctx.Scope = ctx.Scope.SubScope(b.name)
	s := sctx.Scope
	causal := !b.opts.NoCausalMask
	attend := func(h tfgo.Output) tfgo.Output {
		return sctx.call(b.mha, func(c *Context) tfgo.Output { return b.mha.CallWithMask(c, h, h, h, mask, causal) })
	}
	var y tfgo.Output
	if b.opts.PreLN {
		h := callLayer(sctx, b.ln, x)
		x1 := tfgo.AddV2(s, x, callLayer(sctx, b.dropout, attend(h)))
		h = callLayer(sctx, b.ln1, x1)
		y = tfgo.AddV2(s, x1, callLayer(sctx, b.dropout1, callLayer(sctx, b.dense1, callLayer(sctx, b.dense, h))))
	} else {
		a := callLayer(sctx, b.dropout, attend(x))
		x1 := callLayer(sctx, b.ln, tfgo.AddV2(s, x, a))
		f := callLayer(sctx, b.dropout1, callLayer(sctx, b.dense1, callLayer(sctx, b.dense, x1)))
		y = callLayer(sctx, b.ln1, tfgo.AddV2(s, x1, f))
	}
	if first {
		for _, l := range []Layer{b.mha, b.ln, b.ln1, b.dense, b.dense1} {
			b.Track(l)
		}
	}
	if ctx.Scope.Err() != nil {
		return tfgo.Output{}
	}
	return y
}

// KerasSublayers is the block's sublayers by the attribute names of its
// Python twin, which are their names (multi_head_attention,
// layer_normalization, layer_normalization_1, dense, dense_1, dropout,
// dropout_1); nil before the first call.
func (b *TransformerBlock) KerasSublayers() map[string]Layer {
	subs := b.Sublayers()
	if subs == nil {
		return nil
	}
	m := make(map[string]Layer, len(subs))
	for _, sub := range subs {
		m[sub.Name()] = sub
	}
	return m
}

// CallKeras is the block's Keras call: (x, attention_mask=None).
func (b *TransformerBlock) CallKeras(ctx *Context, args []tfgo.Output, kw map[string]any) tfgo.Output {
	mask, ok := kw["attention_mask"].(tfgo.Output)
	delete(kw, "attention_mask")
	if !checkKwargs(ctx, b, kw) {
		return tfgo.Output{}
	}
	if len(args) != 1 {
		ctx.Fail(b, "takes 1 input, got %d", len(args))
		return tfgo.Output{}
	}
	if ok {
		return b.CallWithMask(ctx, args[0], mask)
	}
	return b.Call(ctx, args[0])
}

// Config is the block's configuration, with the argument names above.
func (b *TransformerBlock) Config() map[string]any {
	c := b.BaseConfig()
	c["d_model"] = b.DModel
	c["num_heads"] = b.NumHeads
	c["ff_dim"] = b.FFDim
	c["key_dim"] = b.opts.KeyDim
	c["dropout"] = b.opts.Dropout
	c["epsilon"] = b.opts.Epsilon
	c["pre_ln"] = b.opts.PreLN
	c["activation"] = b.opts.Activation
	c["causal"] = !b.opts.NoCausalMask
	if b.opts.Seed != nil {
		c["seed"] = *b.opts.Seed
	} else {
		c["seed"] = nil
	}
	return c
}

// TransformerBlock is not a Keras built-in: its Keras class is
// gotf.keraslike.TransformerBlock (python/gotf/keraslike.py, which `make
// setup` installs), saved by Keras as "gotf>TransformerBlock". Go reads that
// name and the bare "TransformerBlock".
func init() { registerCustom("TransformerBlock", transformerBlockFromConfig) }

// transformerBlockFromConfig is TransformerBlock.from_config.
func transformerBlockFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	d := r.required("d_model", 1, maxDim)
	heads := r.required("num_heads", 1, maxDim)
	ff := r.required("ff_dim", 1, maxDim)
	opts := TransformerBlockOptions{
		Name:         name,
		KeyDim:       r.int("key_dim", 0, 0, maxDim),
		Dropout:      r.float("dropout", 0, 0, 0.999999),
		Epsilon:      r.float("epsilon", 1e-6, 1e-12, 1),
		PreLN:        r.bool("pre_ln", false),
		Activation:   r.activation("activation"),
		NoCausalMask: !r.bool("causal", true),
		Seed:         r.optSeed("seed"),
	}
	if !r.has("activation") {
		opts.Activation = "gelu"
	}
	return r.done(NewTransformerBlock(d, heads, ff, opts))
}
