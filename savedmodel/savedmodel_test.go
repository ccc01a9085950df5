package savedmodel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotf/gotf/dtypes"
	"github.com/stretchr/testify/require"
	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	ndpb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	tspb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// testSavedModel is a small SavedModel proto: a graph, a SaverDef, a
// signature and an asset.
func testSavedModel() *cpb.SavedModel {
	ti := func(name string, dims ...int64) *cpb.TensorInfo {
		sp := &tspb.TensorShapeProto{}
		for _, d := range dims {
			sp.Dim = append(sp.Dim, &tspb.TensorShapeProto_Dim{Size: d})
		}
		return &cpb.TensorInfo{Encoding: &cpb.TensorInfo_Name{Name: name}, Dtype: tpb.DataType_DT_FLOAT, TensorShape: sp}
	}
	return &cpb.SavedModel{SavedModelSchemaVersion: SchemaVersion, MetaGraphs: []*cpb.MetaGraphDef{{
		MetaInfoDef: &cpb.MetaGraphDef_MetaInfoDef{Tags: []string{TagServe}},
		GraphDef: &graphpb.GraphDef{Node: []*ndpb.NodeDef{
			{Name: "x", Op: "Placeholder", Attr: map[string]*attrpb.AttrValue{"dtype": {Value: &attrpb.AttrValue_Type{Type: tpb.DataType_DT_FLOAT}}}},
			{Name: "vocab", Op: "Const", Attr: map[string]*attrpb.AttrValue{"dtype": {Value: &attrpb.AttrValue_Type{Type: tpb.DataType_DT_STRING}}}},
		}},
		SaverDef: &cpb.SaverDef{FilenameTensorName: "save/Const:0", RestoreOpName: "save/restore_all", Version: cpb.SaverDef_V2},
		SignatureDef: map[string]*cpb.SignatureDef{
			DefaultServingSignature: {Inputs: map[string]*cpb.TensorInfo{"x": ti("x:0", -1, 3)}, Outputs: map[string]*cpb.TensorInfo{"y": ti("y:0", -1)}, MethodName: PredictMethodName},
			"other":                 {Outputs: map[string]*cpb.TensorInfo{"b": ti("b:0"), "a": ti("a:0", 2)}},
		},
		AssetFileDef: []*cpb.AssetFileDef{{TensorInfo: &cpb.TensorInfo{Encoding: &cpb.TensorInfo_Name{Name: "vocab:0"}}, Filename: "vocab.txt"}},
	}}}
}

func testDirectory(t *testing.T) *Directory {
	src := filepath.Join(t.TempDir(), "vocab.txt")
	require.NoError(t, os.WriteFile(src, []byte("a\nb\n"), 0o644))
	w := make([]byte, 8)
	binary.LittleEndian.PutUint32(w, math.Float32bits(1.5))
	binary.LittleEndian.PutUint32(w[4:], math.Float32bits(-2))
	return &Directory{
		SavedModel: testSavedModel(),
		Variables:  map[string]*Tensor{"w": {DType: dtypes.Float, Shape: []int64{2}, Data: w}},
		Assets:     []Asset{{Filename: "vocab.txt", Source: src}},
	}
}

func TestWriteAndRead(t *testing.T) {
	d := testDirectory(t)
	dir := filepath.Join(t.TempDir(), "export", "m")
	require.NoError(t, Write(dir, d))

	sm, err := ReadSavedModel(dir)
	require.NoError(t, err)
	require.True(t, proto.Equal(d.SavedModel, sm))
	raw, err := os.ReadFile(filepath.Join(dir, SavedModelFilename))
	require.NoError(t, err)
	canon, err := MarshalCanonical(d.SavedModel)
	require.NoError(t, err)
	require.Equal(t, canon, raw, "saved_model.pb is the canonical serialization")

	mg, err := ReadMetaGraph(dir, TagServe)
	require.NoError(t, err)
	require.Equal(t, PredictMethodName, mg.GetSignatureDef()[DefaultServingSignature].GetMethodName())
	r, err := OpenBundle(VariablesPrefix(dir))
	require.NoError(t, err)
	got, err := r.Read("w")
	require.NoError(t, err)
	require.Equal(t, d.Variables["w"].Data, got.Data)
	r.Close()
	b, err := os.ReadFile(filepath.Join(dir, AssetsDirectory, "vocab.txt"))
	require.NoError(t, err)
	require.Equal(t, "a\nb\n", string(b))

	// fingerprint.pb holds what Fingerprint computes (but the uuid).
	written, err := ReadFingerprint(dir)
	require.NoError(t, err)
	again, err := Fingerprint(dir)
	require.NoError(t, err)
	require.NotEqual(t, FingerprintUUID(written), FingerprintUUID(again))
	again.ProtoReflect().SetUnknown(written.ProtoReflect().GetUnknown())
	require.True(t, proto.Equal(written, again))
	require.NotZero(t, written.GetCheckpointHash())
	require.Equal(t, strings.Count(Singleprint(written), "/"), 3)

	// Only the final directory exists: no temporary directory is left.
	entries, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	require.Len(t, entries, 1)

	// An existing directory is refused.
	err = Write(dir, d)
	require.ErrorIs(t, err, fs.ErrExist)
	require.Contains(t, err.Error(), dir)
}

func TestWriteFailureLeavesNothing(t *testing.T) {
	d := testDirectory(t)
	d.Assets = append(d.Assets, Asset{Filename: "missing.txt", Source: filepath.Join(t.TempDir(), "missing.txt")})
	parent := t.TempDir()
	err := Write(filepath.Join(parent, "m"), d)
	require.Error(t, err)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Contains(t, err.Error(), "missing.txt")
	entries, _ := os.ReadDir(parent)
	require.Empty(t, entries)

	d = testDirectory(t)
	d.Assets[0].Filename = "../escape.txt"
	require.ErrorContains(t, Write(filepath.Join(parent, "m"), d), "plain file name")
	d = testDirectory(t)
	d.Variables["bad"] = &Tensor{DType: dtypes.FromProto(tpb.DataType_DT_FLOAT), Shape: []int64{3}, Data: []byte{1}}
	require.Error(t, Write(filepath.Join(parent, "m"), d))
	entries, _ = os.ReadDir(parent)
	require.Empty(t, entries)
}

func TestReadSavedModelErrors(t *testing.T) {
	good := filepath.Join(t.TempDir(), "m")
	require.NoError(t, Write(good, testDirectory(t)))
	pb := func(d string) string { return filepath.Join(d, SavedModelFilename) }
	fresh := func() string {
		d := filepath.Join(t.TempDir(), "m")
		require.NoError(t, Write(d, testDirectory(t)))
		return d
	}

	_, err := ReadSavedModel(filepath.Join(t.TempDir(), "nope"))
	require.ErrorIs(t, err, fs.ErrNotExist)

	d := fresh()
	require.NoError(t, os.Remove(pb(d)))
	_, err = ReadSavedModel(d)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, pb(d))

	// The text format is read when there is no binary file.
	text, err := prototext.Marshal(testSavedModel())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(d, SavedModelFilenameText), text, 0o644))
	sm, err := ReadSavedModel(d)
	require.NoError(t, err)
	require.True(t, proto.Equal(testSavedModel(), sm))

	d = fresh()
	require.NoError(t, os.Remove(pb(d)))
	require.NoError(t, os.WriteFile(filepath.Join(d, SavedModelFilenameChunked), []byte("x"), 0o644))
	_, err = ReadSavedModel(d)
	require.ErrorIs(t, err, ErrUnsupported)

	for name, content := range map[string][]byte{
		"truncated": func() []byte { b, _ := os.ReadFile(pb(good)); return b[:len(b)-7] }(),
		"garbage":   []byte("\xff\xfe not a proto"),
		"empty":     nil,
	} {
		d := fresh()
		require.NoError(t, os.WriteFile(pb(d), content, 0o644))
		_, err := ReadSavedModel(d)
		require.ErrorIs(t, err, ErrCorrupt, name)
		require.ErrorContains(t, err, pb(d), name)
		_, err = Fingerprint(d)
		require.ErrorIs(t, err, ErrCorrupt, name)
	}

	sm, err = ReadSavedModel(good)
	require.NoError(t, err)
	_, err = FindMetaGraph(sm, "serve", "tpu")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, "{serve}")
	mg, err := FindMetaGraph(sm, "serve", "serve")
	require.NoError(t, err)
	require.NotNil(t, mg)

	d = fresh()
	require.NoError(t, os.RemoveAll(filepath.Join(d, VariablesDirectory)))
	_, err = ReadMetaGraph(d, TagServe)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, IndexFilename(VariablesPrefix(d)))
	d = fresh()
	require.NoError(t, os.Remove(filepath.Join(d, AssetsDirectory, "vocab.txt")))
	_, err = ReadMetaGraph(d, TagServe)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, filepath.Join(d, AssetsDirectory, "vocab.txt"))
}

// TestPublishVersions publishes versions while scanners list base as a
// server does, and counts what they saw. Each Publish waits, part-way
// through writing the version, until every scanner has made a whole scan
// of base (so every scanner looks at every version while it is being
// written), and after Publish until every scanner has read the new version
// complete. Nothing removes versions meanwhile, so every listing must
// succeed and every version a scanner lists must read: an error, or a
// version listed but incomplete or missing, fails.
func TestPublishVersions(t *testing.T) {
	d := testDirectory(t)
	base := filepath.Join(t.TempDir(), "model")
	const versions, scanners = 8, 2
	// waitTimeout bounds each wait for the scanners, which normally takes
	// microseconds: a scanner that stops seeing versions fails the test
	// instead of hanging it.
	const waitTimeout = 20 * time.Second
	type scanner struct {
		scans atomic.Int64              // whole scans of base made
		seen  [versions + 1]atomic.Bool // versions read complete
		reads atomic.Int64              // versions read complete, all scans
	}
	sc := make([]*scanner, scanners)
	var stop atomic.Bool
	var mu sync.Mutex
	var bad []string
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(bad) < 20 {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	// base exists from the start, so that every listing must succeed.
	require.NoError(t, os.MkdirAll(base, 0o755))
	var wg sync.WaitGroup
	for i := range sc {
		s := &scanner{}
		sc[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				vs, err := Versions(base)
				if err != nil {
					report("scanner %d: %v", i, err)
				}
				for _, v := range vs {
					dir := filepath.Join(base, strconv.FormatInt(v, 10))
					if _, err := ReadMetaGraph(dir, TagServe); err != nil {
						report("scanner %d: version %d listed but does not read: %v", i, v, err)
					} else if v < 1 || v > versions {
						report("scanner %d: version %d was never published", i, v)
					} else {
						s.seen[v].Store(true)
						s.reads.Add(1)
					}
				}
				s.scans.Add(1)
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	// waitFor waits until cond holds for every scanner.
	waitFor := func(what string, cond func(i int, s *scanner) bool) error {
		deadline := time.Now().Add(waitTimeout)
		for i, s := range sc {
			for !cond(i, s) {
				if time.Now().After(deadline) {
					return fmt.Errorf("the scanners did not %s within %v", what, waitTimeout)
				}
				runtime.Gosched()
			}
		}
		return nil
	}
	// wholeScans waits until every scanner has made a scan that started
	// after the call: two more completed scans than when it was called.
	wholeScans := func(what string) error {
		start := make([]int64, len(sc))
		for i, s := range sc {
			start[i] = s.scans.Load()
		}
		return waitFor("scan base while "+what, func(i int, s *scanner) bool {
			return s.scans.Load() >= start[i]+2
		})
	}
	for v := int64(1); v <= versions; v++ {
		dv := *d
		dv.WriteVariables = func(*BundleWriter) error {
			// Half-way: variables/ exists, nothing else does yet.
			return wholeScans(fmt.Sprintf("version %d was being written", v))
		}
		dir, err := Publish(base, v, &dv)
		require.NoError(t, err)
		require.Equal(t, filepath.Join(base, strconv.FormatInt(v, 10)), dir)
		require.NoError(t, waitFor(fmt.Sprintf("read version %d", v), func(_ int, s *scanner) bool { return s.seen[v].Load() }))
	}
	stop.Store(true)
	wg.Wait()
	require.Empty(t, bad, "scanners saw incomplete or missing versions")
	for i, s := range sc {
		for v := 1; v <= versions; v++ {
			require.True(t, s.seen[v].Load(), "scanner %d never read version %d", i, v)
		}
		// Each scanner scanned at least twice per version while it was
		// being written, and once after.
		require.GreaterOrEqual(t, s.scans.Load(), int64(3*versions), "scanner %d", i)
		t.Logf("scanner %d: %d scans, %d complete versions read, all %d versions seen", i, s.scans.Load(), s.reads.Load(), versions)
	}

	// Temporary or non-numeric entries are not versions.
	require.NoError(t, os.Mkdir(filepath.Join(base, ".9.tmp-123"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(base, "assets.extra"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(base, "10"), nil, 0o644))
	vs, err := Versions(base)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7, 8}, vs)
	v, dir, err := LatestVersion(base)
	require.NoError(t, err)
	require.Equal(t, int64(8), v)
	require.Equal(t, filepath.Join(base, "8"), dir)

	_, err = Publish(base, 8, d)
	require.ErrorIs(t, err, fs.ErrExist)
	_, err = Publish(base, -1, d)
	require.Error(t, err)

	removed, err := RemoveOldVersions(base, 2)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6}, removed)
	vs, err = Versions(base)
	require.NoError(t, err)
	require.Equal(t, []int64{7, 8}, vs)

	_, _, err = LatestVersion(t.TempDir())
	require.ErrorIs(t, err, ErrNotFound)

	// A failing fill publishes nothing.
	_, err = PublishFunc(base, 20, func(string) error { return errors.New("disk on fire") })
	require.ErrorContains(t, err, "disk on fire")
	vs, _ = Versions(base)
	require.Equal(t, []int64{7, 8}, vs)
}

// TestMarshalCanonical: the canonical serialization parses back to the
// same message, orders oneof fields by number (TensorInfo's name, field
// 1, first) and agrees with proto.Marshal where Go's order is already the
// field order.
func TestMarshalCanonical(t *testing.T) {
	sm := testSavedModel()
	b, err := MarshalCanonical(sm)
	require.NoError(t, err)
	back := new(cpb.SavedModel)
	require.NoError(t, proto.Unmarshal(b, back))
	require.True(t, proto.Equal(sm, back))

	ti := &cpb.TensorInfo{Encoding: &cpb.TensorInfo_Name{Name: "x:0"}, Dtype: tpb.DataType_DT_FLOAT}
	b, err = MarshalCanonical(ti)
	require.NoError(t, err)
	require.Equal(t, byte(1<<3|2), b[0], "field 1 (name) first")

	gd := sm.GetMetaGraphs()[0].GetGraphDef()
	b, err = MarshalCanonical(gd)
	require.NoError(t, err)
	g, err := proto.MarshalOptions{Deterministic: true}.Marshal(gd)
	require.NoError(t, err)
	require.Equal(t, g, b)
	// Packed repeated scalars and negative numbers.
	sp := &tspb.TensorShapeProto{Dim: []*tspb.TensorShapeProto_Dim{{Size: -1}, {Size: 7, Name: "n"}}}
	b, err = MarshalCanonical(sp)
	require.NoError(t, err)
	g, err = proto.MarshalOptions{Deterministic: true}.Marshal(sp)
	require.NoError(t, err)
	require.Equal(t, g, b)
	lv := &attrpb.AttrValue{Value: &attrpb.AttrValue_List{List: &attrpb.AttrValue_ListValue{I: []int64{-3, 0, 5}, F: []float32{1.5}, B: []bool{true}}}}
	b, err = MarshalCanonical(lv)
	require.NoError(t, err)
	g, err = proto.MarshalOptions{Deterministic: true}.Marshal(lv)
	require.NoError(t, err)
	require.Equal(t, g, b)
}

// An asset file name from the file that leaves assets/ is refused: the
// loader would feed that path to the graph, which would read it.
func TestReadMetaGraphRefusesAssetOutsideAssets(t *testing.T) {
	for _, name := range []string{"../variables/variables.index", "/etc/hostname", "..", "sub/vocab.txt"} {
		dir := filepath.Join(t.TempDir(), "m")
		require.NoError(t, Write(dir, testDirectory(t)))
		sm, err := ReadSavedModel(dir)
		require.NoError(t, err)
		sm.MetaGraphs[0].AssetFileDef[0].Filename = name
		b, err := MarshalCanonical(sm)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, SavedModelFilename), b, 0o644))
		_, err = ReadMetaGraph(dir, TagServe)
		require.ErrorContains(t, err, fmt.Sprintf("file name %q, not a plain file name under assets/", name), name)
	}
}
