package keraslike

import (
	"testing"

	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The default thread pools follow the training graph's largest matrix
// product: one thread each for the small GPT of cmd/benchtrain,
// TensorFlow's default for the large one and without a static batch size;
// a size the caller set is kept. Only graphs are built: no session runs.
func TestDefaultThreadsFollowTheGraph(t *testing.T) {
	compiled := func(c GPTConfig, batch int) *Model {
		ResetNames()
		m, err := NewGPT("gpt", c)
		require.NoError(t, err)
		t.Cleanup(func() { m.Close() })
		require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}, BatchSize: batch}))
		return m
	}
	small := GPTConfig{SeqLen: 64, DModel: 64, Heads: 2, Layers: 2}
	large := GPTConfig{SeqLen: 128, DModel: 256, Heads: 4, Layers: 4}
	o := compiled(small, 16).defaultThreads(tfgo.SessionOptions{})
	assert.Equal(t, [2]int{1, 1}, [2]int{o.IntraOpThreads, o.InterOpThreads})
	o = compiled(small, 16).defaultThreads(tfgo.SessionOptions{InterOpThreads: 2})
	assert.Equal(t, [2]int{1, 2}, [2]int{o.IntraOpThreads, o.InterOpThreads})
	o = compiled(large, 32).defaultThreads(tfgo.SessionOptions{})
	assert.Equal(t, [2]int{0, 0}, [2]int{o.IntraOpThreads, o.InterOpThreads})
	assert.Equal(t, 0, compiled(small, 0).defaultThreads(tfgo.SessionOptions{}).IntraOpThreads)
	assert.Equal(t, 2, compiled(small, 16).defaultThreads(tfgo.SessionOptions{IntraOpThreads: 2}).IntraOpThreads)
}
