package h5

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// manifest is what h5py and numpy read from a file (testdata/h5files.py).
type manifest struct {
	Groups map[string]struct {
		Members [][2]string
		Attrs   map[string]struct {
			Values []string
			Scalar bool
		}
	}
	Datasets map[string]struct {
		Shape   []int64
		DType   string
		Data    string
		Chunked bool
	}
}

// pyWrite runs testdata/h5files.py's fn(dir) in the shared Python worker
// and writes the manifests of the files it made.
func pyWrite(t *testing.T, dir, call string) []string {
	script, err := filepath.Abs("testdata/h5files.py")
	require.NoError(t, err)
	out := interop.Python(t, `
import sys
p = inputs["path"].item().decode()
d, script = p.split("\n")
ns = {"__name__": "h5files"}
exec(compile(open(script).read(), script, "exec"), ns)
names = ns["`+call+`"](d)
ns["write_manifests"](d, names)
outputs["names"] = np.array([n.encode() for n in names], dtype=object)
`, pathTensor(t, dir+"\n"+script))
	names, err := out["names"].Strings()
	require.NoError(t, err)
	var res []string
	for _, n := range names {
		res = append(res, string(n))
	}
	return res
}

// wantFail lists what Go refuses and h5py reads, with the reason.
var wantFail = map[string]string{}

// checkAgainstManifest opens path with package h5 and compares every group,
// member, string attribute and dataset with what h5py read.
func checkAgainstManifest(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path + ".json")
	require.NoError(t, err)
	var m manifest
	require.NoError(t, json.Unmarshal(raw, &m))
	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	base := filepath.Base(path)
	sub := func(p string) *Group {
		if p == "/" {
			return f.Root()
		}
		g, err := f.Root().Group(strings.TrimPrefix(p, "/"))
		require.NoError(t, err, p)
		return g
	}
	for gp, want := range m.Groups {
		g := sub(gp)
		ms, err := g.Members()
		require.NoError(t, err, gp)
		var got [][2]string
		for _, x := range ms {
			got = append(got, [2]string{x.Name, map[Kind]string{GroupKind: "group", DatasetKind: "dataset", Other: "other"}[x.Kind]})
		}
		if len(want.Members) == 0 {
			assert.Empty(t, got, gp)
		} else {
			assert.ElementsMatch(t, want.Members, got, "%s %s members", base, gp)
		}
		for name, a := range want.Attrs {
			assert.True(t, g.HasAttr(name), "%s %s@%s", base, gp, name)
			vals, err := g.StringsAttr(name)
			if assert.NoError(t, err, "%s %s@%s", base, gp, name) {
				if len(a.Values) == 0 {
					assert.Empty(t, vals)
				} else {
					assert.Equal(t, a.Values, vals, "%s %s@%s", base, gp, name)
				}
			}
			if a.Scalar {
				s, err := g.StringAttr(name)
				assert.NoError(t, err)
				assert.Equal(t, a.Values[0], s)
			}
		}
		assert.False(t, g.HasAttr("no such attribute"))
	}
	for dp, want := range m.Datasets {
		a, err := f.Root().Read(strings.TrimPrefix(dp, "/"), nil, 0)
		if reason, ok := wantFail[base+":"+dp]; ok {
			assert.ErrorContains(t, err, reason, dp)
			continue
		}
		if strings.HasPrefix(want.DType, "unsupported:") {
			assert.ErrorContains(t, err, "unsupported element type", "%s %s", base, dp)
			continue
		}
		if !assert.NoError(t, err, "%s %s", base, dp) {
			continue
		}
		assert.Equal(t, want.DType, a.DType.String(), dp)
		if len(want.Shape) == 0 {
			assert.Empty(t, a.Shape, dp)
		} else {
			assert.Equal(t, want.Shape, a.Shape, dp)
		}
		data, err := base64.StdEncoding.DecodeString(want.Data)
		require.NoError(t, err)
		if len(data) == 0 {
			assert.Empty(t, a.Data, dp)
		} else {
			assert.Equal(t, data, a.Data, "%s %s", base, dp)
		}
		info, err := f.Root().Stat(strings.TrimPrefix(dp, "/"))
		require.NoError(t, err)
		assert.Equal(t, a.Info, info)
	}
}

// Files h5py writes (libver earliest and latest, a user block; chunked,
// compressed, compact datasets; fixed and variable-length strings; dense
// groups and attributes; a > 64 KiB attribute) read as numpy reads them.
func TestReadH5pyFiles(t *testing.T) {
	dir := t.TempDir()
	names := pyWrite(t, dir, "write_all")
	require.Len(t, names, 3)
	for _, n := range names {
		t.Run(n, func(t *testing.T) { checkAgainstManifest(t, filepath.Join(dir, n)) })
	}
	// Links that are not followed.
	f, err := Open(filepath.Join(dir, "h5py_earliest.h5"))
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Root().Read("soft", nil, 0)
	assert.ErrorContains(t, err, "soft link")
	assert.True(t, f.Root().Has("soft"))
}

// Keras' own save_weights and legacy model.save files read as h5py reads
// them.
func TestReadKerasFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range pyWrite(t, dir, "write_keras") {
		t.Run(n, func(t *testing.T) { checkAgainstManifest(t, filepath.Join(dir, n)) })
	}
}
