package h5

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pyManifest has h5py open every object of path (as h5dump would) and
// returns what it read (testdata/h5files.py's manifest).
func pyManifest(t *testing.T, path string) manifest {
	script, err := filepath.Abs("testdata/h5files.py")
	require.NoError(t, err)
	interop.Python(t, `
import h5py, json
p, script = inputs["path"].item().decode().split("\n")
ns = {"__name__": "h5files"}
exec(compile(open(script).read(), script, "exec"), ns)
m = ns["manifest"](p)
with h5py.File(p, "r") as f:
    # Open every object and attribute through the low-level API too.
    def visit(name, obj):
        for k in obj.attrs:
            obj.attrs[k]
        h5py.h5o.get_info(obj.id)
    f.visititems(visit)
with open(p + ".json", "w") as fh:
    json.dump(m, fh)
`, pathTensor(t, path+"\n"+script))
	raw, err := os.ReadFile(path + ".json")
	require.NoError(t, err)
	var m manifest
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

// Files Go writes read in h5py with every value and attribute equal: all
// dtypes, scalars, empty datasets, deep paths, a group of 700 members (a
// multi-level B-tree), scalar, empty and Unicode strings, a > 64 KiB
// string (a legacy model_config), a list too large for fixed-length
// strings in a header message, and a replaced attribute.
func TestWriteReadByH5py(t *testing.T) {
	path := filepath.Join(t.TempDir(), "go.h5")
	f, err := Create(path)
	require.NoError(t, err)
	root := f.Root()
	rng := rand.New(rand.NewSource(1))
	type ds struct {
		dt    DType
		shape []int64
		data  []byte
	}
	want := map[string]ds{}
	write := func(g *Group, name string, dt DType, shape ...int64) {
		n := int64(dt.Size())
		for _, d := range shape {
			n *= d
		}
		b := make([]byte, n)
		rng.Read(b)
		require.NoError(t, g.Write(name, dt, shape, b))
		want[strings.TrimPrefix(g.child(name), "")] = ds{dt, shape, b}
	}
	for dt := Float32; dt <= Uint64; dt++ {
		write(root, "types/"+dt.String(), dt, 3, 5)
		write(root, "scalars/"+dt.String(), dt)
	}
	write(root, "empty", Float32, 0, 4)
	write(root, "a/b/c/d/e", Float64, 2, 1, 3)
	wide, err := root.CreateGroup("wide")
	require.NoError(t, err)
	for i := 0; i < 700; i++ {
		write(wide, fmt.Sprintf("w%04d", i), Int8, 1)
	}
	attrs := map[string][]string{}
	scalars := map[string]bool{}
	setS := func(g *Group, name, v string) {
		require.NoError(t, g.SetStringAttr(name, v))
		attrs[g.path+"@"+name] = []string{v}
		scalars[g.path+"@"+name] = true
	}
	setL := func(g *Group, name string, v []string) {
		require.NoError(t, g.SetStringsAttr(name, v))
		attrs[g.path+"@"+name] = v
	}
	setS(root, "backend", "tensorflow")
	setS(root, "backend", "jax") // replaced
	setS(root, "empty_string", "")
	setS(root, "unicode", "γλώσσα ✓")
	setS(root, "model_config", `{"config": "`+strings.Repeat("x", 200_000)+`"}`)
	setL(root, "layer_names", []string{"dense", "multi_head_attention", ""})
	setL(root, "none", nil)
	var long []string
	for i := 0; i < 3000; i++ {
		long = append(long, fmt.Sprintf("layer_%05d/dense/kernel:0", i))
	}
	// 75 KB as fixed-length strings: written as variable-length ones.
	setL(wide, "weight_names", long)
	huge := make([]string, 5000)
	for i := range huge {
		huge[i] = strings.Repeat("n", 30)
	}
	assert.ErrorContains(t, wide.SetStringsAttr("too_large", huge), "too large for an object header")
	require.NoError(t, f.Close())

	m := pyManifest(t, path)
	for p, w := range want {
		got, ok := m.Datasets[p]
		if !assert.True(t, ok, p) {
			continue
		}
		assert.Equal(t, w.dt.String(), got.DType, p)
		if len(w.shape) == 0 {
			assert.Empty(t, got.Shape, p)
		} else {
			assert.Equal(t, w.shape, got.Shape, p)
		}
		data, err := base64.StdEncoding.DecodeString(got.Data)
		require.NoError(t, err)
		assert.Equal(t, len(w.data), len(data), p)
		if len(w.data) > 0 {
			assert.Equal(t, w.data, data, p)
		}
	}
	assert.Len(t, m.Datasets, len(want))
	for k, v := range attrs {
		gp, name, _ := strings.Cut(k, "@")
		got, ok := m.Groups[gp].Attrs[name]
		if !assert.True(t, ok, k) {
			continue
		}
		if len(v) == 0 {
			assert.Empty(t, got.Values, k)
		} else {
			assert.Equal(t, v, got.Values, k)
		}
		assert.Equal(t, scalars[k], got.Scalar, k)
	}
	assert.Len(t, m.Groups["/wide"].Members, 700)

	// And Go reads its own file back the same way.
	require.NoError(t, os.WriteFile(path+".json", mustJSON(t, m), 0o644))
	checkAgainstManifest(t, path)
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// A file being written answers the read-side calls from what was written.
func TestWriteModeReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.h5")
	f, err := Create(path)
	require.NoError(t, err)
	defer f.Abort()
	root := f.Root()
	require.NoError(t, root.Write("g/x", Int32, []int64{2}, []byte{1, 0, 0, 0, 2, 0, 0, 0}))
	assert.ErrorContains(t, root.Write("g/x", Int32, []int64{1}, []byte{1, 0, 0, 0}), "already exists")
	assert.ErrorContains(t, root.Write("g/y", Int32, []int64{2}, []byte{1}), "bytes of data")
	assert.ErrorContains(t, root.Write("g/x/z", Int32, nil, []byte{1, 0, 0, 0}), "is a dataset")
	assert.True(t, root.Has("g/x"))
	assert.False(t, root.Has("g/z"))
	a, err := root.Read("g/x", nil, 0)
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 0, 0, 0, 2, 0, 0, 0}, a.Data)
	g, err := root.Group("g")
	require.NoError(t, err)
	ms, err := g.Members()
	require.NoError(t, err)
	assert.Equal(t, []Member{{"x", DatasetKind}}, ms)
	_, err = root.Group("g/x")
	assert.ErrorContains(t, err, "not a group")
	assert.ErrorContains(t, root.SetStringAttr("bad", "a\x00b"), "NUL")
	f.Abort()
	_, err = os.Stat(path)
	assert.True(t, os.IsNotExist(err))
}

// External storage (a dataset whose bytes live in another file) and
// external links are refused, and the other file's bytes never come back.
func TestExternalRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ext.h5")
	secret := filepath.Join(dir, "secret.bin")
	require.NoError(t, os.WriteFile(secret, []byte("TOPSECRETTOPSECRET"), 0o600))
	interop.Python(t, `
import h5py
p, secret = inputs["path"].item().decode().split("\n")
with h5py.File(p, "w") as f:
    f.create_dataset("ext", shape=(16,), dtype="u1", external=[(secret, 0, 16)])
    f["link"] = h5py.ExternalLink(secret, "/x")
    f["g/link"] = h5py.ExternalLink(secret, "/x")
    assert bytes(f["ext"][()]) == b"TOPSECRETTOPSECR"
`, pathTensor(t, path+"\n"+secret))
	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	a, err := f.Root().Read("ext", nil, 0)
	assert.Nil(t, a)
	require.ErrorContains(t, err, "external storage")
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "/ext")
	assert.NotContains(t, err.Error(), "TOPSECRET")
	_, err = f.Root().Stat("ext")
	assert.ErrorContains(t, err, "external storage")
	_, err = f.Root().Read("link", nil, 0)
	assert.ErrorContains(t, err, "external link")
	_, err = f.Root().Group("g/link")
	assert.ErrorContains(t, err, "external link")
	assert.Contains(t, err.Error(), "/g/link")
}

// An empty file (Create, then Close) opens in h5py and in Go.
func TestEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.h5")
	f, err := Create(path)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	m := pyManifest(t, path)
	assert.Empty(t, m.Datasets)
	assert.Empty(t, m.Groups["/"].Members)
	g, err := Open(path)
	require.NoError(t, err)
	defer g.Close()
	ms, err := g.Root().Members()
	require.NoError(t, err)
	assert.Empty(t, ms)
}
