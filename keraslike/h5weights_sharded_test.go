package keraslike

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/killtest"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shardNames are the distinct shards an index lists, and whether some
// group straddles two of them.
func shardNames(t *testing.T, index string) (names []string, straddles bool) {
	t.Helper()
	b, err := os.ReadFile(index)
	require.NoError(t, err)
	var idx struct {
		WeightMap map[string]any `json:"weight_map"`
	}
	require.NoError(t, json.Unmarshal(b, &idx))
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			names = append(names, s)
		}
	}
	for _, v := range idx.WeightMap {
		switch x := v.(type) {
		case string:
			add(x)
		case []any:
			straddles = straddles || len(x) > 1
			for _, s := range x {
				add(s.(string))
			}
		}
	}
	// In the shards' order, not the map's: the hostile cases that swap the
	// first and last shard must meet the same files every run.
	sort.Strings(names)
	return names, straddles
}

// sameWeights checks that m's weights are, byte for byte, the arrays
// Python returned as w0, w1, ... (Keras order).
func sameWeights(t *testing.T, m *Model, py map[string]*tfgo.Tensor, what string) {
	t.Helper()
	vals, err := m.GetWeights()
	require.NoError(t, err)
	defer closeTensors(vals)
	for i, v := range vals {
		p := py["w"+strconv.Itoa(i)]
		require.NotNil(t, p, "%s: Python returned no w%d", what, i)
		assert.Equal(t, p.Shape(), v.Shape(), "%s: weight %d", what, i)
		assert.True(t, bytes.Equal(p.Data(), v.Data()), "%s: weight %d (%s) differs", what, i, m.Weights()[i].Path)
	}
	assert.Nil(t, py["w"+strconv.Itoa(len(vals))], "%s: Python has more weights", what)
}

// unchanged checks that m's weights still hold before's values.
func unchanged(t *testing.T, m *Model, before []*tfgo.Tensor) {
	t.Helper()
	after, err := m.GetWeights()
	require.NoError(t, err)
	defer closeTensors(after)
	for i := range before {
		assert.True(t, bytes.Equal(before[i].Data(), after[i].Data()), "weight %s changed by a refused load", m.Weights()[i].Path)
	}
}

func gbTensor(t *testing.T, gb float64) *tfgo.Tensor {
	tn, err := tfgo.NewTensor(gb)
	require.NoError(t, err)
	return tn
}

// shardSize picks a MaxShardSize (GB) at which Go splits m into at least
// three shards with some variables group straddling two, so that every
// case of Keras' split rule is compared with Keras.
func shardSize(t *testing.T, m *Model) float64 {
	t.Helper()
	for _, b := range []float64{3300, 3600, 4000, 4500, 5000, 6000, 8000} {
		gb := b / (1 << 30)
		dir := t.TempDir()
		if m.SaveWeightsH5WithOptions(filepath.Join(dir, "m.weights.json"), SaveWeightsOptions{MaxShardSize: gb}) != nil {
			continue // a weight larger than a shard
		}
		names, straddles := shardNames(t, filepath.Join(dir, "m.weights.json"))
		if len(names) >= 3 && straddles {
			return gb
		}
	}
	t.Fatal("no shard size gives >= 3 shards with a straddling group")
	return 0
}

// TestShardedWeightsGoToPython: Go writes sharded weights that Keras'
// model.load_weights reads into the twin, and Go's index and shard names
// are what Keras writes for the same model at the same shard size.
func TestShardedWeightsGoToPython(t *testing.T) {
	m, err := goClassifier()
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Build())
	randomizeGo(t, m, 11)
	gb := shardSize(t, m)

	dir := t.TempDir()
	goDir, pyDir := filepath.Join(dir, "go"), filepath.Join(dir, "py")
	require.NoError(t, os.MkdirAll(pyDir, 0o755))
	index := filepath.Join(goDir, "m.weights.json")
	require.NoError(t, m.SaveWeightsH5WithOptions(index, SaveWeightsOptions{MaxShardSize: gb}))
	names, _ := shardNames(t, index)
	require.GreaterOrEqual(t, len(names), 3)

	out := interop.Python(t, kerasTwins+`
import os
import numpy as np
d = inputs["dir"].item().decode()
gb = float(inputs["gb"])
keras.backend.clear_session()
m = classifier()
m.load_weights(os.path.join(d, "go", "m.weights.json"))
for i, w in enumerate(m.get_weights()):
    outputs["w%d" % i] = w
keras.backend.clear_session()
twin = classifier()
twin.set_weights(m.get_weights())
twin.save_weights(os.path.join(d, "py", "m.weights.json"), max_shard_size=gb)
with open(os.path.join(d, "py", "m.weights.json"), "rb") as f:
    outputs["index"] = np.frombuffer(f.read(), dtype=np.uint8)
`, map[string]*tfgo.Tensor{"dir": strTensor(t, dir), "gb": gbTensor(t, gb)})
	sameWeights(t, m, out, "Go's shards in Keras")

	goIndex, err := os.ReadFile(index)
	require.NoError(t, err)
	assert.Equal(t, string(out["index"].Data()), string(goIndex), "Keras' index for the same model and shard size")
	for _, n := range names {
		assert.FileExists(t, filepath.Join(pyDir, n))
	}

	loadsInGo(t, index, out, "Go's shards in Go")
}

// loadsInGo loads the index into a fresh goClassifier and checks its
// weights against Python's.
func loadsInGo(t *testing.T, index string, py map[string]*tfgo.Tensor, what string) {
	t.Helper()
	m, err := goClassifier()
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.LoadWeightsH5(index))
	sameWeights(t, m, py, what)
}

// TestShardedWeightsPythonToGo: Keras writes a compiled model's sharded
// weights (its optimizer's variables too), Go loads them.
func TestShardedWeightsPythonToGo(t *testing.T) {
	dir := t.TempDir()
	out := interop.Python(t, kerasTwins+`
import os
d = inputs["dir"].item().decode()
keras.backend.clear_session()
m = classifier()
randomize(m, 7)
m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
m.optimizer.build(m.trainable_variables)
m.save_weights(os.path.join(d, "py.weights.json"), max_shard_size=4000 / 2**30)
for i, w in enumerate(m.get_weights()):
    outputs["w%d" % i] = w
`, map[string]*tfgo.Tensor{"dir": strTensor(t, dir)})
	index := filepath.Join(dir, "py.weights.json")
	names, _ := shardNames(t, index)
	require.GreaterOrEqual(t, len(names), 3)
	raw, err := os.ReadFile(index)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"/optimizer/vars"`)

	loadsInGo(t, index, out, "Keras' shards in Go")
}

// TestShardedWeightsHostile: indexes that name files outside their
// directory, name missing shards, are not JSON or do not fit the model
// give short errors naming the index, and change no weight.
func TestShardedWeightsHostile(t *testing.T) {
	src, err := goClassifier()
	require.NoError(t, err)
	defer src.Close()
	require.NoError(t, src.Build())
	randomizeGo(t, src, 3)
	gb := 4096.0 / (1 << 30)
	good := filepath.Join(t.TempDir(), "m.weights.json")
	require.NoError(t, src.SaveWeightsH5WithOptions(good, SaveWeightsOptions{MaxShardSize: gb}))
	goodJSON, err := os.ReadFile(good)
	require.NoError(t, err)
	names, _ := shardNames(t, good)

	m, err := goClassifier()
	require.NoError(t, err)
	defer m.Close()
	before, err := m.GetWeights()
	require.NoError(t, err)
	defer closeTensors(before)

	long := strings.Repeat("../", 5000) + "etc/passwd"
	cases := []struct {
		name, index, want string
		prepare           func(dir string)
	}{
		{"not JSON", `{"weight_map": {`, "not a sharded weights index", nil},
		{"no weight_map", `{"metadata": {}}`, `no "weight_map"`, nil},
		{"weight_map not an object", `{"weight_map": [1, 2]}`, "want an object", nil},
		{"entry not a name", `{"weight_map": {"/layers/dense/vars": 7}}`, "want a shard name", nil},
		{"traversal", strings.Replace(string(goodJSON), names[0], "../"+names[0], 1), "only files in the index's directory", nil},
		{"absolute", strings.Replace(string(goodJSON), names[1], "/etc/passwd", 1), "only files in the index's directory", nil},
		{"dot dot", strings.Replace(string(goodJSON), names[1], "..", 1), "not a file name", nil},
		{"long hostile name", strings.Replace(string(goodJSON), names[1], long, 1), "longer than 255 bytes", nil},
		{"missing shard", string(goodJSON), "is missing", func(dir string) { os.Remove(filepath.Join(dir, names[len(names)-1])) }},
		{"unknown weights", strings.Replace(string(goodJSON), `"weight_map": {`, `"weight_map": {"/layers/extra/vars": "`+names[0]+`",`, 1), "does not have", nil},
		{"group in the wrong shard", strings.ReplaceAll(string(goodJSON), names[len(names)-1], names[0]), "has no such group", nil},
		{"not HDF5", string(goodJSON), "not an HDF5 file", func(dir string) {
			os.WriteFile(filepath.Join(dir, names[1]), []byte("not hdf5"), 0o644)
		}},
		{"no entry for a layer", `{"weight_map": {}}`, "has no entry", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, n := range names {
				b, err := os.ReadFile(filepath.Join(filepath.Dir(good), n))
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(dir, n), b, 0o644))
			}
			if c.prepare != nil {
				c.prepare(dir)
			}
			index := filepath.Join(dir, "m.weights.json")
			require.NoError(t, os.WriteFile(index, []byte(c.index), 0o644))
			err := m.LoadWeightsH5(index)
			require.Error(t, err)
			t.Log(err)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), index)
			assert.Less(t, len(err.Error()), 700, "error too long: %s", err)
		})
	}
	t.Run("oversized index", func(t *testing.T) {
		index := filepath.Join(t.TempDir(), "big.weights.json")
		f, err := os.Create(index)
		require.NoError(t, err)
		require.NoError(t, f.Truncate(maxShardIndexBytes+1))
		f.Close()
		err = m.LoadWeightsH5(index)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "more than")
	})
	unchanged(t, m, before)

	// Saving: what Keras refuses, and names that would mislabel a file.
	dir := t.TempDir()
	err = src.SaveWeightsH5WithOptions(filepath.Join(dir, "s.weights.json"), SaveWeightsOptions{MaxShardSize: 100.0 / (1 << 30)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more than MaxShardSize")
	err = src.SaveWeightsH5(filepath.Join(dir, "s.weights.json"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MaxShardSize")
	err = src.SaveWeightsH5WithOptions(filepath.Join(dir, "s.weights.h5"), SaveWeightsOptions{MaxShardSize: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), ".weights.json")
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "failed saves leave nothing behind")
}

// TestShardedWeightsMismatch: shards of a model with other shapes are
// refused before any weight changes, naming the weight and the index.
func TestShardedWeightsMismatch(t *testing.T) {
	stack := func(units int) *Model {
		return NewSequential("stack", InputSpec{Shape: []int64{4}},
			NewDense(8, DenseOptions{Name: "a"}), NewDense(units, DenseOptions{Name: "b"}))
	}
	src, dst := stack(3), stack(5)
	defer src.Close()
	defer dst.Close()
	require.NoError(t, src.Build())
	index := filepath.Join(t.TempDir(), "s.weights.json")
	require.NoError(t, src.SaveWeightsH5WithOptions(index, SaveWeightsOptions{MaxShardSize: 140.0 / (1 << 30)}))
	names, _ := shardNames(t, index)
	require.GreaterOrEqual(t, len(names), 2)

	before, err := dst.GetWeights()
	require.NoError(t, err)
	defer closeTensors(before)
	err = dst.LoadWeightsH5(index)
	require.Error(t, err)
	t.Log(err)
	assert.Contains(t, err.Error(), index)
	assert.Contains(t, err.Error(), "b/kernel")
	unchanged(t, dst, before)
}

// The kill harness's sharded writer (kill_test.go): 10 MiB in three
// shards.
func init() {
	killWriters["weights.json"] = struct {
		file string
		save func(m *Model, c *ModelCheckpoint, path string, gen int) error
		load func(m *Model, path string) error
	}{"m.weights.json",
		func(m *Model, _ *ModelCheckpoint, path string, _ int) error {
			return m.SaveWeightsH5WithOptions(path, SaveWeightsOptions{MaxShardSize: 5.0 / 1024})
		},
		(*Model).LoadWeightsH5}
}

// TestShardedWeightsKilledAtTemporary: a sharded save killed the moment
// its temporary directory appears leaves the previous save loadable, and
// the next save removes the temporary.
func TestShardedWeightsKilledAtTemporary(t *testing.T) {
	w := kerasKillWriter(t, "weights.json")
	w.Own = func(name string) bool {
		return name == "m.weights.json" || strings.HasPrefix(name, "m_") && strings.HasSuffix(name, ".weights.h5")
	}
	w.Trigger = func(name string) bool { return strings.HasPrefix(name, ".") }
	killtest.Run(t, w, killtest.Kills(t, 3))
}
