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
	// Devices splits the model over devices (model parallelism, a pipeline
	// without micro-batches): the blocks are cut in order into len(Devices)
	// runs of equal length (the earlier devices take one block more when
	// they do not divide evenly), block i on Devices[i·len(Devices)/Layers];
	// the embeddings go with the first block, lm_head with the last. Each
	// part's weights, forward ops and gradient ops are on its device, and
	// the activations cross devices between blocks (Base.SetDevice). Names
	// are TensorFlow's ("/device:GPU:1"; "/device:CPU:1" with
	// tfgo.SessionOptions{DeviceCount: {"CPU": 2}}); more devices than
	// blocks is an error. Empty: TensorFlow places everything.
	Devices []string
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
	if len(c.Devices) > max(c.Layers, 1) {
		return nil, fmt.Errorf("keraslike: GPT %q: %d devices for %d blocks (each device takes at least one block)", name, len(c.Devices), c.Layers)
	}
	for i, d := range c.Devices {
		if d == "" {
			return nil, fmt.Errorf("keraslike: GPT %q: GPTConfig.Devices[%d] is empty", name, i)
		}
	}
	// device is block i's device ("" when the model is not split); -1 is
	// the embeddings', Layers the head's.
	device := func(i int) string {
		if len(c.Devices) == 0 {
			return ""
		}
		i = min(max(i, 0), max(c.Layers-1, 0))
		return c.Devices[i*len(c.Devices)/max(c.Layers, 1)]
	}
	ids := Input(InputSpec{Shape: []int64{int64(c.SeqLen)}, DType: tfgo.Int32})
	tok := NewEmbedding(c.Vocab, c.DModel, EmbeddingOptions{Name: "token_embedding"})
	tok.SetDevice(device(-1))
	pos := NewPositionalEmbedding(c.SeqLen, c.DModel, PositionalEmbeddingOptions{Name: "position_embedding"})
	pos.SetDevice(device(-1))
	x := Apply(pos, Apply(tok, ids))
	for i := 0; i < c.Layers; i++ {
		b := NewTransformerBlock(c.DModel, c.Heads, c.FFDim, TransformerBlockOptions{
			Name: fmt.Sprintf("block_%d", i), PreLN: c.PreLN, Epsilon: c.Epsilon, Dropout: c.Dropout})
		if c.Remat {
			b.SetRemat(&RematScope{Mode: RematFull})
		}
		b.SetDevice(device(i))
		x = Apply(b, x)
	}
	head := NewDense(c.Vocab, DenseOptions{Name: "lm_head"})
	if c.Float32Logits {
		head.SetDTypePolicy(mixedprecision.Float32)
	}
	head.SetDevice(device(c.Layers))
	return NewFunctional(name, ids, Apply(head, x))
}
