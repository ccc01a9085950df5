package keraslike

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Freezing a composite layer freezes the sublayers it makes when it is
// built (as Keras' trainable setter reaches sublayers); unfreezing undoes
// it; the model's config carries it and reads back frozen.
func TestSetTrainableFreezesSublayers(t *testing.T) {
	mha := NewMultiHeadAttention(2, 4, MultiHeadAttentionOptions{Name: "mha"})
	mha.SetTrainable(false)
	in := Input(InputSpec{Shape: []int64{5, 8}})
	m, err := NewFunctional("m", in, Apply(NewDense(3, DenseOptions{Name: "head"}), Apply(mha, in, in)))
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Build())
	paths := func(m *Model) []string {
		var ps []string
		for _, w := range m.TrainableWeights() {
			ps = append(ps, strings.TrimPrefix(w.Path, "m/")) // a loaded model's paths start with its name
		}
		return ps
	}
	assert.Equal(t, []string{"head/kernel", "head/bias"}, paths(m))
	assert.Len(t, m.Weights(), 10)
	assert.Equal(t, false, mha.Config()["trainable"])
	assert.False(t, mha.Trainable())
	frozen := int64(0)
	for _, w := range mha.Weights() {
		frozen += weightSize(w)
	}
	assert.Contains(t, m.Summary(), fmt.Sprintf("Non-trainable params: %d", frozen))

	back, err := modelFromJSON(kerasConfigOf(t, m), LoadOptions{}, false)
	require.NoError(t, err)
	defer back.Close()
	assert.Equal(t, []string{"head/kernel", "head/bias"}, paths(back))

	// A model saved frozen (Keras' model.trainable = False) freezes every layer.
	all := editConfig(t, kerasConfigOf(t, m), func(top map[string]any) { top["config"].(map[string]any)["trainable"] = false })
	frozenModel, err := modelFromJSON(all, LoadOptions{}, false)
	require.NoError(t, err)
	defer frozenModel.Close()
	assert.Empty(t, frozenModel.TrainableWeights())

	mha.SetTrainable(true)
	assert.Len(t, m.TrainableWeights(), 10)
	assert.Equal(t, true, mha.Config()["trainable"])
}
