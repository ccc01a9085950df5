package keraslike

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/h5"
	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// legacyLayout is a Python function describing a legacy .h5 full model's
// layout (root and model_weights attributes, layer groups and their
// weight names, the model config's entries without their layers'
// options), to compare the file Go writes with the one Keras writes.
const legacyLayout = `
import json, h5py
def legacy_layout(path):
    with h5py.File(path, "r") as f:
        conf = json.loads(f.attrs["model_config"])
        mw = f["model_weights"]
        # Keras writes these lists as variable-length strings, Go as numpy's
        # fixed-length bytes; Keras reads both.
        strs = lambda a: [n.decode() if isinstance(n, bytes) else n for n in a]
        return json.dumps({
            "root": sorted(f.attrs.keys()), "groups": sorted(f.keys()),
            "model_weights": sorted(mw.attrs.keys()), "layer_names": strs(mw.attrs["layer_names"]),
            "weights": {n: strs(mw[n].attrs["weight_names"]) for n in mw.keys()},
            "config": sorted(conf.keys()), "class": conf["class_name"],
            "model_options": sorted(conf["config"].keys()),
            "layers": [[l["class_name"], sorted(l.keys())] for l in conf["config"]["layers"]],
        }, sort_keys=True).encode()
`

func isZip(t *testing.T, path string) bool {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return bytes.HasPrefix(b, []byte("PK\x03\x04"))
}

// Go's legacy .h5 full models (a Sequential, a functional classifier and
// a GPT of custom layers) open in keras.models.load_model and predict what
// Go predicts, have the layout Keras gives its twins, and load back in Go.
func TestLegacyH5FullModelGoToPython(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewSource(17))
	x := randTensor(t, r, 5, 4)
	seq := NewSequential("seqm", InputSpec{Shape: []int64{4}},
		NewDense(8, DenseOptions{Name: "d1", Activation: "tanh"}),
		NewLayerNormalization(LayerNormalizationOptions{Name: "ln"}),
		NewDense(2, DenseOptions{Name: "d2"}))
	defer seq.Close()
	require.NoError(t, seq.Build())
	randomizeGo(t, seq, 31)
	clf, err := goClassifier()
	require.NoError(t, err)
	defer clf.Close()
	require.NoError(t, clf.Build())
	randomizeGo(t, clf, 32)
	gpt, err := goGPT(false)
	require.NoError(t, err)
	defer gpt.Close()
	require.NoError(t, gpt.Build())
	randomizeGo(t, gpt, 33)
	ids, tokens := randIDs(t, 34, 50), randIDs(t, 35, 256)

	models := []struct {
		file, twin string
		m          *Model
		x          *tfgo.Tensor
	}{
		{"seq.h5", `keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh", name="d1"),
    keras.layers.LayerNormalization(name="ln"), keras.layers.Dense(2, name="d2")], name="seqm")`, seq, x},
		{"clf.hdf5", "classifier()", clf, ids},
		{"gpt.h5", "gpt()", gpt, tokens},
	}
	in := map[string]*tfgo.Tensor{"dir": strTensor(t, dir)}
	code := kerasTwins + legacyLayout + `
import os
d = inputs["dir"].item().decode()
`
	for i, c := range models {
		require.NoError(t, c.m.SaveKeras(filepath.Join(dir, c.file)))
		require.False(t, isZip(t, filepath.Join(dir, c.file)), "%s is a zip", c.file)
		k := string(rune('a' + i))
		in["x"+k] = c.x
		code += `
keras.backend.clear_session()
m = keras.models.load_model(os.path.join(d, "` + c.file + `"), custom_objects=custom_objects)
outputs["y` + k + `"] = m.predict(inputs["x` + k + `"], verbose=0)
outputs["go_layout` + k + `"] = legacy_layout(os.path.join(d, "` + c.file + `"))
keras.backend.clear_session()
t = ` + c.twin + `
t.save(os.path.join(d, "twin_` + c.file + `"))
outputs["py_layout` + k + `"] = legacy_layout(os.path.join(d, "twin_` + c.file + `"))
`
	}
	out := interop.Python(t, code, in)

	for i, c := range models {
		k := string(rune('a' + i))
		t.Run(c.file, func(t *testing.T) {
			y := predict(t, c.m, c.x)
			samePredictions(t, y, out["y"+k], 1e-6, "Go's "+c.file+" in keras.models.load_model")
			goLayout, err := out["go_layout"+k].Strings()
			require.NoError(t, err)
			pyLayout, err := out["py_layout"+k].Strings()
			require.NoError(t, err)
			assert.JSONEq(t, string(pyLayout[0]), string(goLayout[0]), "the layout of Go's %s (right) and of Keras' twin's (left)", c.file)

			back, err := LoadKerasModel(filepath.Join(dir, c.file), LoadOptions{})
			require.NoError(t, err)
			defer back.Close()
			samePredictions(t, y, predict(t, back, c.x), 0, "Go's "+c.file+" in Go")
		})
	}
}

// SaveKeras writes the format the extension names and refuses the others,
// naming the path and leaving nothing there; LoadKerasModel reads a file
// by what it holds, whatever its name says.
func TestSaveKerasExtensions(t *testing.T) {
	dir := t.TempDir()
	m := NewSequential("ext", InputSpec{Shape: []int64{3}}, NewDense(2, DenseOptions{Name: "d"}))
	defer m.Close()
	require.NoError(t, m.Build())
	randomizeGo(t, m, 5)
	x := randTensor(t, rand.New(rand.NewSource(6)), 2, 3)
	y := predict(t, m, x)

	for _, name := range []string{"m.weights.h5", "m.json", "m.pb", "m", "m.keras.bak", "m.H5"} {
		p := filepath.Join(dir, name)
		err := m.SaveKeras(p)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), p)
		assert.Contains(t, err.Error(), ".keras")
		_, serr := os.Stat(p)
		assert.True(t, os.IsNotExist(serr), "%s was written", name)
	}
	err := m.SaveKeras(filepath.Join(dir, "m.weights.h5"))
	assert.ErrorContains(t, err, "SaveWeightsH5")

	require.NoError(t, m.SaveKeras(filepath.Join(dir, "m.keras")))
	require.NoError(t, m.SaveKeras(filepath.Join(dir, "m.h5")))
	assert.True(t, isZip(t, filepath.Join(dir, "m.keras")))
	assert.False(t, isZip(t, filepath.Join(dir, "m.h5")))
	// Renamed files load by their contents.
	for from, to := range map[string]string{"m.keras": "zip.h5", "m.h5": "hdf5.keras"} {
		b, err := os.ReadFile(filepath.Join(dir, from))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, to), b, 0o644))
		l, err := LoadKerasModel(filepath.Join(dir, to), LoadOptions{})
		require.NoError(t, err, to)
		samePredictions(t, y, predict(t, l, x), 0, to)
		l.Close()
	}
	// A weights file is no model.
	require.NoError(t, m.SaveWeightsH5(filepath.Join(dir, "w.weights.h5")))
	_, err = LoadKerasModel(filepath.Join(dir, "w.weights.h5"), LoadOptions{})
	assert.ErrorContains(t, err, "weights-only")
}

// A legacy file names its groups and datasets after the layer and weight
// names it lists: errors about them quote a bounded excerpt, not names of
// the file's choosing in full.
func TestLegacyH5ErrorsQuoteExcerpts(t *testing.T) {
	dir := t.TempDir()
	m := NewSequential("ext", InputSpec{Shape: []int64{3}}, NewDense(2, DenseOptions{Name: "d"}))
	defer m.Close()
	require.NoError(t, m.Build())
	require.NoError(t, m.SaveKeras(filepath.Join(dir, "good.h5")))
	good, err := h5.Open(filepath.Join(dir, "good.h5"))
	require.NoError(t, err)
	conf, err := good.Root().StringAttr("model_config")
	good.Close()
	require.NoError(t, err)

	long := strings.Repeat("x", 5000)
	write := func(name string, fill func(top *h5.Group)) string {
		p := filepath.Join(dir, name)
		f, err := h5.Create(p)
		require.NoError(t, err)
		top := f.Root()
		if strings.HasSuffix(name, ".model.h5") {
			require.NoError(t, top.SetStringAttr("model_config", conf))
			top, err = top.CreateGroup("model_weights")
			require.NoError(t, err)
		}
		fill(top)
		require.NoError(t, f.Close())
		return p
	}
	cases := map[string]func(top *h5.Group){
		// A layer whose group is missing.
		"layer.weights.h5": func(top *h5.Group) {
			require.NoError(t, top.SetStringsAttr("layer_names", []string{long}))
		},
		// More weights than the layer has.
		"count.weights.h5": func(top *h5.Group) {
			require.NoError(t, top.SetStringsAttr("layer_names", []string{"d"}))
			g, err := top.CreateGroup("d")
			require.NoError(t, err)
			require.NoError(t, g.SetStringsAttr("weight_names", []string{long + "1", long + "2", long + "3"}))
		},
		// A weight whose dataset is missing, in a full model.
		"weight.model.h5": func(top *h5.Group) {
			require.NoError(t, top.SetStringsAttr("layer_names", []string{"d"}))
			g, err := top.CreateGroup("d")
			require.NoError(t, err)
			require.NoError(t, g.SetStringsAttr("weight_names", []string{long + "1", long + "2"}))
		},
	}
	for name, fill := range cases {
		p := write(name, fill)
		if strings.HasSuffix(name, ".model.h5") {
			_, err = LoadKerasModel(p, LoadOptions{})
		} else {
			err = m.LoadWeightsLegacyH5(p)
		}
		require.Error(t, err, name)
		assert.Less(t, len(err.Error()), len(p)+500, "%s: %s", name, err)
		assert.NotContains(t, err.Error(), long[:300], name)
	}
}

// Long lists of layer or weight names are split into attributes as Keras
// splits them (the same attribute names), and read back whole by Keras
// and by Go.
func TestLegacyH5ChunkedNameLists(t *testing.T) {
	dir := t.TempDir()
	lists := map[string][]string{"few": {"dense", "层_1"}}
	var many []string
	for i := range 5000 {
		many = append(many, fmt.Sprintf("层_%d_%s", i, strings.Repeat("x", i%37)))
	}
	lists["many"] = many
	in := map[string]*tfgo.Tensor{"dir": strTensor(t, dir)}
	code := `
import os, h5py
from keras.src.legacy.saving import legacy_h5_format as lh5
d = inputs["dir"].item().decode()
`
	for key, names := range lists {
		p := filepath.Join(dir, key+".h5")
		f, err := h5.Create(p)
		require.NoError(t, err)
		require.NoError(t, setLegacyStrings(f.Root(), "layer_names", names))
		require.NoError(t, f.Close())
		f, err = h5.Open(p)
		require.NoError(t, err)
		back, err := legacyStrings(f.Root(), "layer_names")
		f.Close()
		require.NoError(t, err)
		assert.Equal(t, names, back, "%s read back in Go", key)

		bs := make([][]byte, len(names))
		for i, n := range names {
			bs[i] = []byte(n)
		}
		in[key], err = tfgo.NewStringTensor([]int64{int64(len(names))}, bs)
		require.NoError(t, err)
		code += `
with h5py.File(os.path.join(d, "` + key + `.h5"), "r") as f:
    outputs["` + key + `_go_attrs"] = np.array(sorted(a.encode() for a in f.attrs.keys()), dtype=object)
    outputs["` + key + `_read"] = np.array([n.encode() for n in lh5.load_attributes_from_hdf5_group(f, "layer_names")], dtype=object)
with h5py.File(os.path.join(d, "` + key + `_keras.h5"), "w") as f:
    lh5.save_attributes_to_hdf5_group(f, "layer_names", list(inputs["` + key + `"]))
    outputs["` + key + `_keras_attrs"] = np.array(sorted(a.encode() for a in f.attrs.keys()), dtype=object)
`
	}
	out := interop.Python(t, code, in)
	for key, names := range lists {
		read, err := out[key+"_read"].Strings()
		require.NoError(t, err)
		require.Len(t, read, len(names), key)
		for i := range names {
			require.Equal(t, names[i], string(read[i]), "%s: name %d read by Keras", key, i)
		}
		goAttrs, err := out[key+"_go_attrs"].Strings()
		require.NoError(t, err)
		kerasAttrs, err := out[key+"_keras_attrs"].Strings()
		require.NoError(t, err)
		assert.Equal(t, kerasAttrs, goAttrs, "%s: the attributes Keras and Go write", key)
	}
	split, err := out["many_keras_attrs"].Strings()
	require.NoError(t, err)
	assert.Greater(t, len(split), 2, "Keras splits the long list: %q", split)
}
