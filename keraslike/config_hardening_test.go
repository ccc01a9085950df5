package keraslike

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Options keraslike does not implement, set on layers Keras saves: each
// file is refused with an error naming the layer and the option, never
// loaded as if the option were not there. The same models without the
// option load.
func TestKerasOptionsNotImplementedAreRefused(t *testing.T) {
	dir := t.TempDir()
	interop.Python(t, `
import os, json, keras
d = inputs["dir"].item().decode()
L, R, C = keras.layers, keras.regularizers, keras.constraints
def seq(layer, shape=(4,), dtype="float32"):
    return keras.Sequential([keras.Input(shape, dtype=dtype), layer])
cases = {
    "dense_kernel_regularizer": seq(L.Dense(3, kernel_regularizer=R.L2(0.01), name="d")),
    "dense_bias_regularizer": seq(L.Dense(3, bias_regularizer=R.L1(0.01), name="d")),
    "dense_activity_regularizer": seq(L.Dense(3, activity_regularizer=R.L2(0.01), name="d")),
    "dense_kernel_constraint": seq(L.Dense(3, kernel_constraint=C.MaxNorm(2.0), name="d")),
    "dense_bias_constraint": seq(L.Dense(3, bias_constraint=C.NonNeg(), name="d")),
    "ln_beta_regularizer": seq(L.LayerNormalization(beta_regularizer=R.L2(0.01), name="ln")),
    "ln_gamma_regularizer": seq(L.LayerNormalization(gamma_regularizer=R.L2(0.01), name="ln")),
    "ln_beta_constraint": seq(L.LayerNormalization(beta_constraint=C.NonNeg(), name="ln")),
    "ln_gamma_constraint": seq(L.LayerNormalization(gamma_constraint=C.UnitNorm(), name="ln")),
    "ln_rms_scaling": seq(L.LayerNormalization(rms_scaling=True, name="ln")),
    "embedding_embeddings_regularizer": seq(L.Embedding(10, 4, embeddings_regularizer=R.L2(0.01), name="e"), (5,), "int32"),
    "embedding_embeddings_constraint": seq(L.Embedding(10, 4, embeddings_constraint=C.MaxNorm(1.0), name="e"), (5,), "int32"),
    "embedding_activity_regularizer": seq(L.Embedding(10, 4, activity_regularizer=R.L1(0.01), name="e"), (5,), "int32"),
    "dropout_noise_shape": seq(L.Dropout(0.5, noise_shape=(None, 1), name="drop")),
    "plain": keras.Sequential([keras.Input((5, 4)), L.Dense(4, name="d"), L.LayerNormalization(name="ln"), L.Dropout(0.5, name="drop")]),
}
for kind in ["kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint"]:
    arg = {"kernel_regularizer": R.L2(0.01), "bias_regularizer": R.L2(0.01), "activity_regularizer": R.L2(0.01),
           "kernel_constraint": C.MaxNorm(1.0), "bias_constraint": C.NonNeg()}[kind]
    x = keras.Input((5, 4))
    cases["mha_" + kind] = keras.Model(x, L.MultiHeadAttention(2, 2, name="mha", **{kind: arg})(x, x))
for name, m in cases.items():
    m.save(os.path.join(d, name + ".keras"))
`, map[string]*tfgo.Tensor{"dir": strTensor(t, dir)})

	cases := map[string]struct{ layer, option string }{
		"dense_kernel_regularizer":         {"d", "kernel_regularizer"},
		"dense_bias_regularizer":           {"d", "bias_regularizer"},
		"dense_activity_regularizer":       {"d", "activity_regularizer"},
		"dense_kernel_constraint":          {"d", "kernel_constraint"},
		"dense_bias_constraint":            {"d", "bias_constraint"},
		"ln_beta_regularizer":              {"ln", "beta_regularizer"},
		"ln_gamma_regularizer":             {"ln", "gamma_regularizer"},
		"ln_beta_constraint":               {"ln", "beta_constraint"},
		"ln_gamma_constraint":              {"ln", "gamma_constraint"},
		"ln_rms_scaling":                   {"ln", "rms_scaling"},
		"embedding_embeddings_regularizer": {"e", "embeddings_regularizer"},
		"embedding_embeddings_constraint":  {"e", "embeddings_constraint"},
		"embedding_activity_regularizer":   {"e", "activity_regularizer"},
		"dropout_noise_shape":              {"drop", "noise_shape"},
		"mha_kernel_regularizer":           {"mha", "kernel_regularizer"},
		"mha_bias_regularizer":             {"mha", "bias_regularizer"},
		"mha_activity_regularizer":         {"mha", "activity_regularizer"},
		"mha_kernel_constraint":            {"mha", "kernel_constraint"},
		"mha_bias_constraint":              {"mha", "bias_constraint"},
	}
	for file, want := range cases {
		t.Run(file, func(t *testing.T) {
			m, err := LoadKerasModel(filepath.Join(dir, file+".keras"), LoadOptions{})
			if err == nil {
				m.Close()
			}
			require.Error(t, err, "%s loaded as if %s were not set", file, want.option)
			assert.Contains(t, err.Error(), fmt.Sprintf("layer %q", want.layer))
			assert.Contains(t, err.Error(), want.option)
		})
	}
	m, err := LoadKerasModel(filepath.Join(dir, "plain.keras"), LoadOptions{})
	require.NoError(t, err)
	m.Close()
}

// kerasConfigOf is the config.json a model writes.
func kerasConfigOf(t testing.TB, m *Model) []byte {
	t.Helper()
	c, err := m.kerasConfig()
	require.NoError(t, err)
	b, err := json.Marshal(c)
	require.NoError(t, err)
	return b
}

// editConfig decodes a config, lets edit change it, and encodes it.
func editConfig(t testing.TB, raw []byte, edit func(top map[string]any)) []byte {
	t.Helper()
	var top map[string]any
	require.NoError(t, json.Unmarshal(raw, &top))
	edit(top)
	b, err := json.Marshal(top)
	require.NoError(t, err)
	return b
}

// layerConfig is the config dict of layer i of a decoded model config.
func layerConfig(top map[string]any, i int) map[string]any {
	return top["config"].(map[string]any)["layers"].([]any)[i].(map[string]any)["config"].(map[string]any)
}

// An option no from-config understands is refused unless null, naming the
// layer and the key, in every layer class, and in the model's and the
// InputLayer's configs too.
func TestUnknownConfigKeysAreRefused(t *testing.T) {
	seq := NewSequential("seqm", InputSpec{Shape: []int64{6, 4}},
		NewDense(4, DenseOptions{Name: "d"}),
		NewLayerNormalization(LayerNormalizationOptions{Name: "ln"}),
		NewDropout(0.1, DropoutOptions{Name: "drop"}),
		NewActivation("relu", ActivationOptions{Name: "act"}),
		NewGlobalAveragePooling1D(GlobalPooling1DOptions{Name: "pool"}))
	defer seq.Close()
	clf, err := goClassifier()
	require.NoError(t, err)
	defer clf.Close()
	gpt, err := goGPT(false)
	require.NoError(t, err)
	defer gpt.Close()

	for _, tc := range []struct {
		what string
		m    *Model
	}{{"sequential", seq}, {"classifier", clf}, {"gpt", gpt}} {
		raw := kerasConfigOf(t, tc.m)
		var top map[string]any
		require.NoError(t, json.Unmarshal(raw, &top))
		n := len(top["config"].(map[string]any)["layers"].([]any))
		for i := 0; i < n; i++ {
			for _, v := range []any{true, 1.0, "x", map[string]any{"class_name": "L2"}} {
				bad := editConfig(t, raw, func(top map[string]any) { layerConfig(top, i)["future_option"] = v })
				m, err := modelFromJSON(bad, LoadOptions{}, false)
				if err == nil {
					m.Close()
				}
				require.Error(t, err, "%s layer %d loaded with future_option=%v", tc.what, i, v)
				name := layerConfig(top, i)["name"].(string)
				assert.Contains(t, err.Error(), fmt.Sprintf("%q", name))
				assert.Contains(t, err.Error(), "future_option")
			}
			// A null option is its default.
			ok := editConfig(t, raw, func(top map[string]any) { layerConfig(top, i)["future_option"] = nil })
			m, err := modelFromJSON(ok, LoadOptions{}, false)
			require.NoError(t, err, "%s layer %d with future_option=null", tc.what, i)
			m.Close()
		}
		bad := editConfig(t, raw, func(top map[string]any) { top["config"].(map[string]any)["future_option"] = true })
		_, err := modelFromJSON(bad, LoadOptions{}, false)
		require.Error(t, err, "%s: model-level future_option", tc.what)
		assert.Contains(t, err.Error(), "future_option")
	}
}

// A long name is refused before it is used (a layer's name prefixes every
// op it makes: a 5 MB name once took 4.6 GB and 19 s), and errors quote
// only an excerpt of what came from the file.
func TestConfigNamesAndStringsAreBounded(t *testing.T) {
	seq := NewSequential("seqm", InputSpec{Shape: []int64{4}}, NewDense(2, DenseOptions{Name: "d"}))
	defer seq.Close()
	raw := kerasConfigOf(t, seq)
	long := strings.Repeat("n", 64<<10)
	check := func(what string, cfg []byte, wants ...string) {
		t.Helper()
		start := time.Now()
		m, err := modelFromJSON(cfg, LoadOptions{}, false)
		if err == nil {
			m.Close()
		}
		require.Error(t, err, what)
		assert.Less(t, time.Since(start), 2*time.Second, what)
		assert.Less(t, len(err.Error()), 1000, "%s: the error quotes %d bytes", what, len(err.Error()))
		for _, w := range wants {
			assert.Contains(t, err.Error(), w, what)
		}
	}
	check("layer name", editConfig(t, raw, func(top map[string]any) { layerConfig(top, 1)["name"] = long }), "name", "longer than")
	check("layer class", editConfig(t, raw, func(top map[string]any) {
		top["config"].(map[string]any)["layers"].([]any)[1].(map[string]any)["class_name"] = long
	}), "class name")
	check("model name", editConfig(t, raw, func(top map[string]any) { top["config"].(map[string]any)["name"] = long }), "name", "longer than")
	check("input name", editConfig(t, raw, func(top map[string]any) { layerConfig(top, 0)["name"] = long }), "name", "longer than")
	check("activation", editConfig(t, raw, func(top map[string]any) { layerConfig(top, 1)["activation"] = long }), `layer "d"`, "activation")
	check("a long string anywhere", editConfig(t, raw, func(top map[string]any) {
		layerConfig(top, 1)["kernel_initializer"] = map[string]any{"class_name": strings.Repeat("s", 1<<20)}
	}), "string of 1048576 bytes")
	// Nesting, even under a key a layer ignores.
	deep := any(nil)
	for i := 0; i < 100; i++ {
		deep = []any{deep}
	}
	check("nesting", editConfig(t, raw, func(top map[string]any) { layerConfig(top, 1)["kernel_initializer"] = deep }), "nested more than")
	// An unsupported value quoted in part.
	check("a long unsupported value", editConfig(t, raw, func(top map[string]any) { layerConfig(top, 1)["use_bias"] = long }), `layer "d"`, "use_bias", "...")
}

// Sizes from configs are refused, naming the layer and the field, before
// the graph is built or anything allocated.
func TestConfigSizesAreBounded(t *testing.T) {
	entry := func(class string, cfg map[string]any) map[string]any {
		cfg["trainable"], cfg["dtype"] = true, "float32"
		return map[string]any{"module": "keras.layers", "class_name": class, "config": cfg}
	}
	model := func(shape []any, dtype string, layers ...any) []byte {
		in := map[string]any{"class_name": "InputLayer", "config": map[string]any{"batch_shape": shape, "dtype": dtype, "name": "in"}}
		b, err := json.Marshal(map[string]any{"class_name": "Sequential", "config": map[string]any{"name": "m", "layers": append([]any{in}, layers...)}})
		require.NoError(t, err)
		return b
	}
	for _, tc := range []struct {
		what  string
		cfg   []byte
		wants []string
	}{
		{"Dense units 1e12", model([]any{nil, 4}, "float32", entry("Dense", map[string]any{"name": "big", "units": 1e12})), []string{`layer "big"`, "units"}},
		{"Embedding input_dim 1e12", model([]any{nil, 4}, "int32", entry("Embedding", map[string]any{"name": "emb", "input_dim": 1e12, "output_dim": 8})), []string{`layer "emb"`, "input_dim"}},
		{"Embedding 2e9 x 1e6", model([]any{nil, 4}, "int32", entry("Embedding", map[string]any{"name": "emb", "input_dim": 2e9, "output_dim": 1e6})), []string{`layer "emb"`, "input_dim, output_dim"}},
		{"MultiHeadAttention key_dim", model([]any{nil, 4, 8}, "float32", entry("MultiHeadAttention", map[string]any{"name": "mha", "num_heads": 1 << 20, "key_dim": 1 << 20})), []string{`layer "mha"`, "key_dim"}},
		{"PositionalEmbedding", model([]any{nil, 4, 8}, "float32", map[string]any{"class_name": "PositionalEmbedding", "module": "gotf.keraslike", "registered_name": "PositionalEmbedding",
			"config": map[string]any{"name": "pos", "sequence_length": 1e9, "output_dim": 1e6}}), []string{`layer "pos"`, "sequence_length, output_dim"}},
		{"input shape", model([]any{nil, 1 << 24, 1 << 24, 1 << 24}, "float32", entry("Flatten", map[string]any{"name": "f"})), []string{"InputLayer", "batch_shape"}},
	} {
		start := time.Now()
		m, err := modelFromJSON(tc.cfg, LoadOptions{MaxParams: 1 << 62}, false)
		if err == nil {
			m.Close()
		}
		require.Error(t, err, tc.what)
		t.Logf("%s: %v", tc.what, err)
		assert.Less(t, time.Since(start), 2*time.Second, tc.what)
		for _, w := range tc.wants {
			assert.Contains(t, err.Error(), w, tc.what)
		}
	}

	// The number of layers (over the limit, 8192): refused before any is made.
	layers := make([]any, 10000)
	for i := range layers {
		layers[i] = entry("Activation", map[string]any{"name": fmt.Sprintf("a%d", i), "activation": "relu"})
	}
	start := time.Now()
	m, err := modelFromJSON(model([]any{nil, 2}, "float32", layers...), LoadOptions{}, false)
	if err == nil {
		m.Close()
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "layers, more than the limit")
	assert.Less(t, time.Since(start), 2*time.Second)
}

// A layer saved frozen (trainable=False) loads frozen: one training step in
// Go leaves its weights unchanged and moves the others as Keras' step does;
// Go writes it back frozen, and Keras loads it so.
func TestFrozenLayerTrainsAsInKeras(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewSource(21))
	x, y := randTensor(t, r, 16, 4), randTensor(t, r, 16, 3)
	in := map[string]*tfgo.Tensor{"dir": strTensor(t, dir), "x": x, "y": y}
	ref := interop.Python(t, `
import os, keras
d = inputs["dir"].item().decode()
keras.backend.clear_session()
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh", name="frozen", trainable=False),
    keras.layers.Dense(3, name="head")], name="frozen_model")
rng = np.random.default_rng(3)
m.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in m.get_weights()])
m.save(os.path.join(d, "frozen.keras"))
for i, w in enumerate(m.get_weights()):
    outputs["before%d" % i] = w
m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
m.train_on_batch(inputs["x"], inputs["y"])
for i, w in enumerate(m.get_weights()):
    outputs["after%d" % i] = w
`, in)

	m, err := LoadKerasModel(filepath.Join(dir, "frozen.keras"), LoadOptions{})
	require.NoError(t, err)
	defer m.Close()
	var trainable []string
	for _, w := range m.TrainableWeights() {
		trainable = append(trainable, w.Path)
	}
	assert.Equal(t, []string{"frozen_model/head/kernel", "frozen_model/head/bias"}, trainable)
	got := sgdStep(t, m, x, y)
	require.Len(t, got, 4)
	for i := range got {
		allCloseTol(t, fmt.Sprintf("weight %d after the step", i), ref[fmt.Sprintf("after%d", i)], got[i], kerasTol)
	}
	for i := 0; i < 2; i++ {
		assert.Equal(t, floats(t, ref[fmt.Sprintf("before%d", i)]), floats(t, got[i]), "frozen weight %d moved", i)
	}
	assert.NotEqual(t, floats(t, ref["before2"]), floats(t, got[2]), "the head's kernel did not move")

	// Go writes it frozen; Keras loads it frozen, and so does Go.
	require.NoError(t, m.SaveKeras(filepath.Join(dir, "go_frozen.keras")))
	out := interop.Python(t, `
import os, keras
m = keras.models.load_model(os.path.join(inputs["dir"].item().decode(), "go_frozen.keras"))
outputs["trainable"] = np.array([m.get_layer("frozen").trainable, m.get_layer("head").trainable, len(m.trainable_weights)], "float32")
`, in)
	assert.Equal(t, []float32{0, 1, 2}, floats(t, out["trainable"]), "Keras' frozen.trainable, head.trainable, len(trainable_weights)")
	back, err := LoadKerasModel(filepath.Join(dir, "go_frozen.keras"), LoadOptions{})
	require.NoError(t, err)
	defer back.Close()
	assert.Len(t, back.TrainableWeights(), 2)
}

// A .keras archive whose config.json is too large is refused from its
// header, and one whose weights member declares more bytes than the
// model's weights could need is refused before it is copied to disk.
func TestKerasArchiveMemberLimits(t *testing.T) {
	dir := t.TempDir()
	seq := NewSequential("seqm", InputSpec{Shape: []int64{4}}, NewDense(2, DenseOptions{Name: "d"}))
	defer seq.Close()
	raw := kerasConfigOf(t, seq)
	write := func(name string, members map[string][]byte) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		require.NoError(t, err)
		zw := zip.NewWriter(f)
		for n, b := range members {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate})
			require.NoError(t, err)
			_, err = w.Write(b)
			require.NoError(t, err)
		}
		require.NoError(t, zw.Close())
		require.NoError(t, f.Close())
		return p
	}
	// 100 MB of zeros deflate to 100 KB: under the bomb ratio, over the
	// weights a model of 10 parameters needs.
	p := write("big_weights.keras", map[string][]byte{"config.json": raw, "model.weights.h5": make([]byte, 100<<20)})
	_, err := LoadKerasModel(p, LoadOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "model.weights.h5 declares")
	p = write("big_config.keras", map[string][]byte{"config.json": append(raw, make([]byte, maxConfigBytes)...)})
	_, err = LoadKerasModel(p, LoadOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "config.json")
}

// Reading a functional config costs time in proportion to its size, not to
// its size times its layers: here the calls are listed last to first (each
// pass over the list can build only one) and every call's arguments hold a
// long list before the tensor it waits for.
func TestFunctionalConfigReadsInLinearTime(t *testing.T) {
	const n, k = 1500, 1000
	pad := make([]any, k)
	for i := range pad {
		pad[i] = 0.0
	}
	tensor := func(layer string) map[string]any {
		return map[string]any{"class_name": "__keras_tensor__", "config": map[string]any{"shape": []any{nil, 2}, "dtype": "float32", "keras_history": []any{layer, 0, 0}}}
	}
	layers := []any{map[string]any{"class_name": "InputLayer", "name": "in", "config": map[string]any{"batch_shape": []any{nil, 2}, "name": "in"}, "inbound_nodes": []any{}}}
	for i := n - 1; i >= 0; i-- {
		src := "in"
		if i > 0 {
			src = fmt.Sprintf("a%d", i-1)
		}
		layers = append(layers, map[string]any{"class_name": "Activation", "name": fmt.Sprintf("a%d", i),
			"config":        map[string]any{"name": fmt.Sprintf("a%d", i), "activation": "relu"},
			"inbound_nodes": []any{map[string]any{"args": []any{pad, tensor(src)}, "kwargs": map[string]any{}}}})
	}
	raw, err := json.Marshal(map[string]any{"class_name": "Functional", "config": map[string]any{"name": "chain", "layers": layers,
		"input_layers": []any{"in", 0, 0}, "output_layers": []any{fmt.Sprintf("a%d", n-1), 0, 0}}})
	require.NoError(t, err)
	start := time.Now()
	m, err := modelFromJSON(raw, LoadOptions{}, false)
	if err == nil {
		m.Close()
	}
	t.Logf("%d bytes in %v: %v", len(raw), time.Since(start), err)
	assert.Less(t, time.Since(start), 10*time.Second)
}
