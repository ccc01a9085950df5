package h5

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { interop.Main(m) }

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func pathTensor(t *testing.T, p string) map[string]*tfgo.Tensor {
	s, err := tfgo.NewStringTensor(nil, [][]byte{[]byte(p)})
	require.NoError(t, err)
	return map[string]*tfgo.Tensor{"path": s}
}

// writeSample writes a file with what Keras files hold.
func writeSample(t testing.TB, path string) {
	f, err := Create(path)
	require.NoError(t, err)
	root := f.Root()
	require.NoError(t, root.SetStringAttr("backend", "tensorflow"))
	require.NoError(t, root.SetStringsAttr("layer_names", []string{"dense", "multi_head_attention"}))
	require.NoError(t, root.SetStringsAttr("empty", nil))
	g, err := root.CreateGroup("layers/dense/vars")
	require.NoError(t, err)
	require.NoError(t, g.SetStringAttr("name", "dense"))
	require.NoError(t, g.Write("0", Float32, []int64{2, 3}, f32bytes(1, 2, 3, 4, 5, 6.5)))
	g.Close()
	require.NoError(t, root.Write("deep/er/scalar", Int64, nil, []byte{7, 0, 0, 0, 0, 0, 0, 0}))
	require.NoError(t, f.Close())
}

func TestRoundTripGo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.h5")
	writeSample(t, path)
	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	root := f.Root()
	s, err := root.StringAttr("backend")
	require.NoError(t, err)
	assert.Equal(t, "tensorflow", s)
	names, err := root.StringsAttr("layer_names")
	require.NoError(t, err)
	assert.Equal(t, []string{"dense", "multi_head_attention"}, names)
	empty, err := root.StringsAttr("empty")
	require.NoError(t, err)
	assert.Empty(t, empty)
	_, err = root.StringAttr("missing")
	assert.ErrorIs(t, err, ErrNotFound)

	ms, err := root.Members()
	require.NoError(t, err)
	assert.Equal(t, []Member{{"deep", GroupKind}, {"layers", GroupKind}}, ms)
	assert.True(t, root.Has("layers/dense/vars/0"))
	assert.False(t, root.Has("layers/nothing/vars/0"))

	g, err := root.Group("layers/dense/vars")
	require.NoError(t, err)
	defer g.Close()
	assert.Equal(t, "/layers/dense/vars", g.Path())
	info, err := g.Stat("0")
	require.NoError(t, err)
	assert.Equal(t, Info{DType: Float32, Shape: []int64{2, 3}}, info)
	a, err := g.Read("0", nil, 0)
	require.NoError(t, err)
	assert.Equal(t, f32bytes(1, 2, 3, 4, 5, 6.5), a.Data)
	sc, err := root.Read("deep/er/scalar", nil, 0)
	require.NoError(t, err)
	assert.Equal(t, Int64, sc.DType)
	assert.Empty(t, sc.Shape)
	assert.Equal(t, byte(7), sc.Data[0])

	// A check refuses before allocation, and the error names file and path.
	_, err = g.Read("0", func(i Info) error { return errors.New("wrong shape") }, 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "/layers/dense/vars/0")
	assert.Contains(t, err.Error(), "wrong shape")
	_, err = g.Read("0", nil, 8)
	assert.ErrorContains(t, err, "more than the limit")
	_, err = g.Read("1", nil, 0)
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = g.Group("../x")
	assert.ErrorContains(t, err, "invalid path")
}

// h5py reads what Go writes; Go reads what h5py writes (variable-length
// string lists, fixed-length bytes), and refuses big-endian data and
// external links.
func TestPythonInterop(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "go.h5")
	writeSample(t, path)
	out := interop.Python(t, `
import h5py
f = h5py.File(inputs["path"].item().decode(), "r")
outputs["backend"] = np.array(f.attrs["backend"].encode())
outputs["names"] = np.array([n.decode() if hasattr(n, "decode") else n for n in f.attrs["layer_names"]], dtype=object)
outputs["empty"] = np.int64(len(f.attrs["empty"]))
outputs["dense"] = f["layers/dense/vars/0"][()]
outputs["vname"] = np.array(f["layers/dense/vars"].attrs["name"].encode())
`, pathTensor(t, path))
	b, _ := out["backend"].Strings()
	assert.Equal(t, "tensorflow", string(b[0]))
	names, _ := out["names"].Strings()
	require.Len(t, names, 2)
	assert.Equal(t, "multi_head_attention", string(names[1]))
	assert.Equal(t, f32bytes(1, 2, 3, 4, 5, 6.5), out["dense"].Data())
	assert.Equal(t, []int64{2, 3}, out["dense"].Shape())

	py := filepath.Join(dir, "py.h5")
	other := filepath.Join(dir, "other.h5")
	interop.Python(t, `
import h5py
p = inputs["path"].item().decode()
with h5py.File(p.replace("py.h5", "other.h5"), "w") as o:
    o["secret"] = np.arange(4, dtype="float32")
with h5py.File(p, "w") as f:
    f.attrs["vlen_list"] = ["alpha", "beta", "γ"]
    f.attrs["vlen"] = "a str"
    f.attrs["fixed"] = np.bytes_(b"tensorflow")
    f.attrs["fixed_list"] = np.array([b"a", b"bcd"])
    f.attrs["empty"] = np.array([])
    f["be"] = np.arange(3, dtype=">f4")
    f["f64"] = np.arange(3, dtype="<f8")
    f["strs"] = np.array([b"x"])
    f["ext"] = h5py.ExternalLink("other.h5", "/secret")
    f["soft"] = h5py.SoftLink("/f64")
`, pathTensor(t, py))
	_ = other
	f, err := Open(py)
	require.NoError(t, err)
	defer f.Close()
	root := f.Root()
	list, err := root.StringsAttr("vlen_list")
	require.NoError(t, err)
	assert.Equal(t, []string{"alpha", "beta", "γ"}, list)
	s, err := root.StringAttr("vlen")
	require.NoError(t, err)
	assert.Equal(t, "a str", s)
	s, err = root.StringAttr("fixed")
	require.NoError(t, err)
	assert.Equal(t, "tensorflow", s)
	list, err = root.StringsAttr("fixed_list")
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "bcd"}, list)
	list, err = root.StringsAttr("empty")
	require.NoError(t, err)
	assert.Empty(t, list)
	_, err = root.Read("be", nil, 0)
	assert.ErrorContains(t, err, "unsupported element type")
	a, err := root.Read("f64", nil, 0)
	require.NoError(t, err)
	assert.Equal(t, Float64, a.DType)
	_, err = root.Read("strs", nil, 0)
	assert.ErrorContains(t, err, "unsupported element type")
	_, err = root.Read("ext", nil, 0)
	assert.ErrorContains(t, err, "external link")
}

// Truncated and corrupt files give errors, never a crash.
func TestCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.h5")
	writeSample(t, good)
	data, err := os.ReadFile(good)
	require.NoError(t, err)
	try := func(name string, b []byte) {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		f, err := Open(p)
		if err != nil {
			assert.Contains(t, err.Error(), p)
			return
		}
		defer f.Close()
		root := f.Root()
		root.StringAttr("backend")
		root.StringsAttr("layer_names")
		root.Members()
		if g, err := root.Group("layers/dense/vars"); err == nil {
			g.Read("0", nil, 1<<20)
			g.Close()
		}
		root.Read("deep/er/scalar", nil, 1<<20)
	}
	// Every truncation point (a file cut short by a crashed copy or a
	// partial download).
	for n := 0; n < len(data); n += 61 {
		try("trunc.h5", data[:n])
	}
	try("trunc.h5", data[:len(data)-1])
	// A zeroed tail and a zeroed middle.
	zeroed := append([]byte(nil), data...)
	clear(zeroed[len(zeroed)/2:])
	try("zero.h5", zeroed)
	zeroed = append([]byte(nil), data...)
	clear(zeroed[len(zeroed)/4 : len(zeroed)/2])
	try("zero.h5", zeroed)
	_, err = Open(filepath.Join(dir, "none.h5"))
	assert.Error(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "text.h5"), []byte(strings.Repeat("x", 100)), 0o644))
	_, err = Open(filepath.Join(dir, "text.h5"))
	assert.ErrorContains(t, err, "not an HDF5 file")
}
