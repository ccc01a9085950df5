package keraslike

import (
	"fmt"

	"github.com/gotf/gotf/mixedprecision"
	"github.com/gotf/gotf/tfgo"
)

// GPTConfig sizes a GPT-style decoder-only language model.
type GPTConfig struct {
	Vocab  int // default 256 (bytes)
	SeqLen int
	DModel int
	Heads  int
	Layers int
	// FFDim is the feed-forward width; 0 means 4·DModel.
	FFDim int
	// PreLN selects pre-LN blocks (GPT-2); the default is post-LN.
	PreLN bool
	// Epsilon of the LayerNormalizations; 0 means 1e-6.
	Epsilon float64
	Dropout float64
	// Remat recomputes each block's activations in the backward pass
	// instead of keeping them (gradient checkpointing: the blocks are made
	// in a RematScope{Mode: RematFull}); only the blocks' inputs stay alive
	// between the passes.
	Remat bool
	// Float32Logits computes the lm_head in float32 whatever the global
	// dtype policy, so that a mixed-precision model's logits (and the
	// softmax and loss on them) are float32, as TensorFlow's mixed
	// precision guide advises for the output layer.
	Float32Logits bool
}

// NewGPT returns the functional model ids [B, SeqLen] (int32) -> logits
// [B, SeqLen, Vocab]: token embedding + learned position embedding, Layers
// causal TransformerBlocks ("block_0" ...), and a Dense head ("lm_head"). It
// is a functional graph, so SaveKeras can write it.
func NewGPT(name string, c GPTConfig) (*Model, error) {
	if c.Vocab == 0 {
		c.Vocab = 256
	}
	if c.FFDim == 0 {
		c.FFDim = 4 * c.DModel
	}
	ids := Input(InputSpec{Shape: []int64{int64(c.SeqLen)}, DType: tfgo.Int32})
	x := Apply(NewEmbedding(c.Vocab, c.DModel, EmbeddingOptions{Name: "token_embedding"}), ids)
	x = Apply(NewPositionalEmbedding(c.SeqLen, c.DModel, PositionalEmbeddingOptions{Name: "position_embedding"}), x)
	for i := 0; i < c.Layers; i++ {
		b := NewTransformerBlock(c.DModel, c.Heads, c.FFDim, TransformerBlockOptions{
			Name: fmt.Sprintf("block_%d", i), PreLN: c.PreLN, Epsilon: c.Epsilon, Dropout: c.Dropout})
		if c.Remat {
			b.SetRemat(&RematScope{Mode: RematFull})
		}
		x = Apply(b, x)
	}
	head := NewDense(c.Vocab, DenseOptions{Name: "lm_head"})
	if c.Float32Logits {
		head.SetDTypePolicy(mixedprecision.Float32)
	}
	return NewFunctional(name, ids, Apply(head, x))
}
