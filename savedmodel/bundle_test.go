package savedmodel

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/internal/killtest"
	"github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	tsp "github.com/wamuir/graft/tensorflow/core/framework/tensor_slice_go_proto"
	"github.com/wamuir/graft/tensorflow/core/framework/versions_go_proto"
	fcpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

func equalTensor(a, b *Tensor) bool {
	sa, sb := a.Shape, b.Shape
	if len(sa) == 0 && len(sb) == 0 {
		sa, sb = nil, nil
	}
	if a.DType != b.DType || !slices.Equal(sa, sb) || !bytes.Equal(a.Data, b.Data) || len(a.Strings) != len(b.Strings) {
		return false
	}
	for i := range a.Strings {
		if !bytes.Equal(a.Strings[i], b.Strings[i]) {
			return false
		}
	}
	return true
}

// checkBundle reads every tensor of want back from prefix (Read, and
// ReadInto for the numeric ones) and checks Names and Entry.
func checkBundle(t *testing.T, prefix string, want map[string]*Tensor) {
	t.Helper()
	r, err := OpenBundle(prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Names(); !slices.Equal(got, sortedNames(want)) {
		t.Fatalf("Names %q, want %q", got, sortedNames(want))
	}
	for name, w := range want {
		got, err := r.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		if !equalTensor(got, w) {
			t.Errorf("%s: read back %v %v, wrote %v %v", name, got.DType, got.Shape, w.DType, w.Shape)
		}
		e, err := r.Entry(name)
		if err != nil {
			t.Fatal(err)
		}
		if e.DType != w.DType || !slices.Equal(e.Shape, w.Shape) && len(w.Shape) > 0 {
			t.Errorf("%s: entry %v %v", name, e.DType, e.Shape)
		}
		if w.DType != dtypes.String {
			var buf bytes.Buffer
			if err := r.ReadInto(name, &buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), w.Data) {
				t.Errorf("%s: ReadInto streamed other bytes", name)
			}
		} else if err := r.ReadInto(name, &bytes.Buffer{}); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: ReadInto of strings: %v", name, err)
		}
	}
}

// TestRoundTrip writes and reads back every dtype, scalars, empty tensors,
// odd strings and partitioned tensors (strings too), with 1 and 4 shards,
// with and without a compressed multi-block index.
func TestRoundTrip(t *testing.T) {
	ts := fixtures()
	sliced, parts := slicedFixtures()
	for k, v := range sliced {
		ts[k] = v
	}
	rng := rand.New(rand.NewPCG(7, 7))
	ts["pstr"] = randTensor(rng, dtypes.String, 5, 2)
	ts["pstr_empty"] = randTensor(rng, dtypes.String, 3, 0)
	parts["pstr"] = Partition{Axis: 0, Parts: 2}
	parts["pstr_empty"] = Partition{Axis: 0, Parts: 3}
	for _, opts := range []WriteOptions{
		{},
		{NumShards: 4, Partitions: parts},
		{NumShards: 2, Partitions: parts, Compression: SnappyCompression, IndexBlockSize: 64},
		{NumShards: 3, Partitions: parts, IO: DirectIO},
	} {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			prefix := filepath.Join(t.TempDir(), "sub", "dir", "ckpt")
			if err := WriteBundle(prefix, ts, opts); err != nil {
				t.Fatal(err)
			}
			checkBundle(t, prefix, ts)
			r, err := OpenBundle(prefix)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got, want := int(r.Header().GetNumShards()), opts.numShards(); got != want {
				t.Errorf("%d shards, want %d", got, want)
			}
			for i := range opts.numShards() {
				if _, err := os.Stat(DataFilename(prefix, i, opts.numShards())); err != nil {
					t.Error(err)
				}
			}
			if opts.Partitions != nil {
				e, _ := r.Entry("pstr")
				if len(e.Slices) != 2 {
					t.Errorf("pstr stored with %d slices", len(e.Slices))
				}
				// One slice read alone by its key.
				s, err := r.Read(SliceKey("pstr", e.Slices[1]))
				if err != nil {
					t.Fatal(err)
				}
				if want := cut(ts["pstr"], e.Slices[1]); !equalTensor(s, want) {
					t.Error("slice read by key differs")
				}
			}
			noTempFiles(t, filepath.Dir(prefix))
		})
	}
}

func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "tempstate") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// TestIndexBlocks: a small block size makes many index blocks, snappy
// compresses them, and the table reader reads back every key either way.
func TestIndexBlocks(t *testing.T) {
	ts := manyTensors()
	sizes := map[Compression]int64{}
	for _, c := range []Compression{NoCompression, SnappyCompression} {
		prefix := filepath.Join(t.TempDir(), "ckpt")
		if err := WriteBundle(prefix, ts, WriteOptions{Compression: c, IndexBlockSize: 256}); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(IndexFilename(prefix))
		if err != nil {
			t.Fatal(err)
		}
		kvs, err := readTable(data)
		if err != nil {
			t.Fatal(err)
		}
		if len(kvs) != len(ts)+1 {
			t.Errorf("%d table entries, want %d", len(kvs), len(ts)+1)
		}
		sizes[c] = int64(len(data))
		checkBundle(t, prefix, ts)
	}
	if sizes[SnappyCompression] >= sizes[NoCompression] {
		t.Errorf("snappy index %d bytes, uncompressed %d", sizes[SnappyCompression], sizes[NoCompression])
	}
}

// TestStreamingWriter: tensors added in any order, from several
// goroutines, with slices added one by one.
func TestStreamingWriter(t *testing.T) {
	ts := fixtures()
	prefix := filepath.Join(t.TempDir(), "ckpt")
	w, err := NewBundleWriter(prefix, WriteOptions{NumShards: 3})
	if err != nil {
		t.Fatal(err)
	}
	names := sortedNames(ts)
	var wg sync.WaitGroup
	errs := make(chan error, len(names)+3)
	for i := len(names) - 1; i >= 0; i-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.Add(names[i], ts[names[i]])
		}()
	}
	grid := randTensor(rand.New(rand.NewPCG(1, 1)), dtypes.Int16, 4, 6)
	for _, sl := range gridSlices() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.AddSlice("grid", grid.Shape, sl, cut(grid, sl))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ts["grid"] = grid
	checkBundle(t, prefix, ts)
	if err := w.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	if err := w.Add("late", ts["f32"]); err == nil {
		t.Error("Add after Close succeeded")
	}
}

// TestOverwrite: a new bundle at the same prefix replaces the old one.
func TestOverwrite(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "ckpt")
	rng := rand.New(rand.NewPCG(2, 2))
	a := map[string]*Tensor{"x": randTensor(rng, dtypes.Float, 8), "y": randTensor(rng, dtypes.String, 2)}
	b := map[string]*Tensor{"x": randTensor(rng, dtypes.Float, 3), "z": randTensor(rng, dtypes.Int64, 2)}
	if err := WriteBundle(prefix, a, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkBundle(t, prefix, a)
	if err := WriteBundle(prefix, b, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkBundle(t, prefix, b)
	noTempFiles(t, filepath.Dir(prefix))
	// An aborted writer leaves the bundle as it was.
	w, err := NewBundleWriter(prefix, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("x", a["x"]); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	checkBundle(t, prefix, b)
	noTempFiles(t, filepath.Dir(prefix))
}

// TestEmptyBundle: a bundle without tensors is a header and an empty shard.
func TestEmptyBundle(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "ckpt")
	if err := WriteBundle(prefix, nil, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkBundle(t, prefix, map[string]*Tensor{})
	if fi, err := os.Stat(DataFilename(prefix, 0, 1)); err != nil || fi.Size() != 0 {
		t.Errorf("data shard: %v %v", fi, err)
	}
	r, _ := OpenBundle(prefix)
	defer r.Close()
	if _, err := r.ObjectGraph(); !errors.Is(err, ErrNotFound) {
		t.Errorf("ObjectGraph of a name-based bundle: %v", err)
	}
}

// TestWriterErrors: bad input is refused with an error naming the tensor;
// a writer with a failed Add commits nothing.
func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	f32 := func(shape ...int64) *Tensor {
		return randTensor(rand.New(rand.NewPCG(1, 1)), dtypes.Float, shape...)
	}
	cases := map[string]struct {
		name string
		t    *Tensor
		opts WriteOptions
	}{
		"empty name":      {"", f32(2), WriteOptions{}},
		"nil tensor":      {"n", nil, WriteOptions{}},
		"short data":      {"short", &Tensor{DType: dtypes.Float, Shape: []int64{3}, Data: make([]byte, 8)}, WriteOptions{}},
		"negative dim":    {"neg", &Tensor{DType: dtypes.Float, Shape: []int64{-1}}, WriteOptions{}},
		"overflow":        {"big", &Tensor{DType: dtypes.Float, Shape: []int64{math.MaxInt64, 2}}, WriteOptions{}},
		"string count":    {"s", &Tensor{DType: dtypes.String, Shape: []int64{2}, Strings: [][]byte{{1}}}, WriteOptions{}},
		"string and data": {"sd", &Tensor{DType: dtypes.String, Shape: []int64{1}, Strings: [][]byte{{1}}, Data: []byte{1}}, WriteOptions{}},
		"variant":         {"v", &Tensor{DType: dtypes.Variant, Shape: []int64{}}, WriteOptions{}},
		"bad axis":        {"p", f32(4), WriteOptions{Partitions: map[string]Partition{"p": {Axis: 1, Parts: 2}}}},
		"too many parts":  {"p", f32(2), WriteOptions{Partitions: map[string]Partition{"p": {Axis: 0, Parts: 3}}}},
	}
	for what, c := range cases {
		prefix := filepath.Join(dir, strings.ReplaceAll(what, " ", "_"))
		err := WriteBundle(prefix, map[string]*Tensor{c.name: c.t}, c.opts)
		var e *Error
		if !errors.As(err, &e) || e.Tensor != c.name {
			t.Errorf("%s: %v", what, err)
		}
		if _, err := os.Stat(IndexFilename(prefix)); err == nil {
			t.Errorf("%s: an index was written", what)
		}
	}

	prefix := filepath.Join(dir, "dups")
	w, err := NewBundleWriter(prefix, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("a", f32(2)); err != nil {
		t.Fatal(err)
	}
	if err := w.Add("a", f32(2)); err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("duplicate: %v", err)
	}
	if err := w.AddSlice("a", []int64{4}, []Extent{{0, 2}}, f32(2)); err == nil {
		t.Error("a slice of a tensor stored whole was accepted")
	}
	if err := w.AddSlice("b", []int64{4}, []Extent{{0, 3}}, f32(2)); err == nil {
		t.Error("a part of the wrong shape was accepted")
	}
	if err := w.AddSlice("b", []int64{4}, []Extent{{3, 2}}, f32(2)); err == nil {
		t.Error("a slice outside the tensor was accepted")
	}
	if err := w.AddSlice("c", []int64{4}, []Extent{{0, 2}}, f32(2)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddSlice("c", []int64{4, 1}, []Extent{{2, 2}, FullExtent}, f32(2, 1)); err == nil {
		t.Error("slices of different full shapes were accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err) // rejected input does not spoil the writer
	}
	if _, err := NewBundleWriter(prefix, WriteOptions{Compression: 7}); err == nil {
		t.Error("unknown compression accepted")
	}
	// A failing shard (its file closed under the writer) spoils the bundle.
	// BufferedIO: under DirectIO a tensor smaller than a chunk reaches the
	// buffered file only at Close.
	w, err = NewBundleWriter(filepath.Join(dir, "broken"), WriteOptions{IO: BufferedIO})
	if err != nil {
		t.Fatal(err)
	}
	w.shards[0].f.Close()
	big := f32(1 << 19) // more than the 1 MiB buffer, so the write reaches the file
	if err := w.Add("big", big); err == nil {
		t.Fatal("write to a closed file succeeded")
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failed Add succeeded")
	}
	if _, err := os.Stat(IndexFilename(filepath.Join(dir, "broken"))); err == nil {
		t.Error("an index was committed after a failed Add")
	}
	noTempFiles(t, dir)
}

// TestOrderedCode: the slice-key number encodings round-trip and preserve
// order, around every length boundary; slice keys round-trip.
func TestOrderedCode(t *testing.T) {
	var nums []int64
	for s := range 64 {
		b := int64(1) << s
		nums = append(nums, b-1, b, b+1, -b-1, -b, -b+1)
	}
	nums = append(nums, 0, math.MaxInt64, math.MinInt64, math.MinInt64+1)
	rng := rand.New(rand.NewPCG(4, 4))
	for range 1000 {
		nums = append(nums, int64(rng.Uint64())>>rng.IntN(64))
	}
	slices.Sort(nums)
	nums = slices.Compact(nums)
	var prev []byte
	for i, v := range nums {
		enc := appendSignedNumIncreasing(nil, v)
		got, rest, ok := readSignedNumIncreasing(append(enc, 0x55))
		if !ok || got != v || !bytes.Equal(rest, []byte{0x55}) {
			t.Fatalf("signed %d: encoded %x, decoded %d %v", v, enc, got, ok)
		}
		if i > 0 && bytes.Compare(prev, enc) >= 0 {
			t.Fatalf("signed %d encodes to %x, not after %d's %x", v, enc, nums[i-1], prev)
		}
		prev = enc
		u := uint64(v)
		ue := appendNumIncreasing(nil, u)
		if got, rest, ok := readNumIncreasing(ue); !ok || got != u || len(rest) != 0 {
			t.Fatalf("unsigned %d: %x", u, ue)
		}
	}
	for _, name := range []string{"w", "a/b/.ATTRIBUTES/VARIABLE_VALUE", "nul\x00and\xffff", "\xff\x00", ""} {
		for _, sl := range [][]Extent{{{0, 5}}, {{3, 0}, FullExtent}, {FullExtent, {7, 1 << 40}, {1, 1}}} {
			key := SliceKey(name, sl)
			n, got, err := ParseSliceKey(key)
			if err != nil || n != name || !slices.Equal(got, sl) {
				t.Errorf("%q %v: parsed %q %v %v", name, sl, n, got, err)
			}
			for cut := range len(key) {
				if _, _, err := ParseSliceKey(key[:cut]); err == nil {
					t.Errorf("%q %v: a truncated key parsed", name, sl)
				}
			}
		}
	}
}

// craft writes an index from raw header and entries (for inputs no writer
// produces) and a data file of the given bytes.
func craft(t *testing.T, header *fcpb.BundleHeaderProto, entries map[string]*fcpb.BundleEntryProto, data []byte) string {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "ckpt")
	var buf bytes.Buffer
	tw := newTableWriter(&buf, NoCompression, 0)
	hb, _ := proto.Marshal(header)
	if err := tw.add(nil, hb); err != nil {
		t.Fatal(err)
	}
	for _, k := range sortedNames(entries) {
		b, _ := proto.Marshal(entries[k])
		if err := tw.add([]byte(k), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.finish(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(IndexFilename(prefix), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	n := max(int(header.GetNumShards()), 1)
	if err := os.WriteFile(DataFilename(prefix, 0, n), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return prefix
}

func shp(dims ...int64) *tensor_shape_go_proto.TensorShapeProto {
	return shapeProto(dims)
}

// wantErr checks that err is an *Error naming file and tensor whose
// message contains every piece of text.
func wantErr(t *testing.T, what string, err error, file, tensor string, text ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("%s: got %v, want an *Error", what, err)
		return
	}
	if e.File != file || e.Tensor != tensor {
		t.Errorf("%s: error names file %q tensor %q, want %q %q: %v", what, e.File, e.Tensor, file, tensor, err)
	}
	for _, s := range text {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: %q lacks %q", what, err, s)
		}
	}
}

// TestCorruptFiles: damaged files give errors naming the file and the
// tensor: a flipped byte in a data shard, a truncated or damaged index,
// wrong magic, a missing shard or index, a truncated shard.
func TestCorruptFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	ts := map[string]*Tensor{
		"a": randTensor(rng, dtypes.Float, 64),
		"b": randTensor(rng, dtypes.Double, 16),
		"s": randTensor(rng, dtypes.String, 6),
		"p": randTensor(rng, dtypes.Int32, 6, 2),
	}
	fresh := func(t *testing.T) (string, *BundleReader) {
		prefix := filepath.Join(t.TempDir(), "ckpt")
		if err := WriteBundle(prefix, ts, WriteOptions{Partitions: map[string]Partition{"p": {Axis: 0, Parts: 2}}}); err != nil {
			t.Fatal(err)
		}
		r, err := OpenBundle(prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return prefix, r
	}
	flip := func(t *testing.T, path string, off int64) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[off] ^= 0x10
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("flipped data byte", func(t *testing.T) {
		prefix, r := fresh(t)
		data := DataFilename(prefix, 0, 1)
		for _, name := range []string{"a", "b", "s"} {
			e, _ := r.Entry(name)
			flip(t, data, e.Offset+e.Size-1)
			_, err := r.Read(name)
			wantErr(t, name, err, data, name, "crc32c mismatch")
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: not ErrCorrupt: %v", name, err)
			}
			if name != "s" {
				err = r.ReadInto(name, &bytes.Buffer{})
				wantErr(t, name+" ReadInto", err, data, name, "crc32c mismatch")
			}
		}
		// A string length: its own checksum catches it.
		e, _ := r.Entry("s")
		flip(t, data, e.Offset)
		_, err := r.Read("s")
		wantErr(t, "string length", err, data, "s")
		// A slice of a partitioned tensor: the slice is named.
		pe, _ := r.Entry("p")
		se, _ := r.Entry(SliceKey("p", pe.Slices[1]))
		flip(t, data, se.Offset)
		_, err = r.Read("p")
		wantErr(t, "slice", err, data, "p[3,3:0,2]", "crc32c mismatch")
		// The other tensors are still fine.
		if _, err := r.Read(SliceKey("p", pe.Slices[0])); err != nil {
			t.Error(err)
		}
	})

	t.Run("missing shard", func(t *testing.T) {
		prefix, r := fresh(t)
		data := DataFilename(prefix, 0, 1)
		os.Remove(data)
		_, err := r.Read("a")
		wantErr(t, "missing shard", err, data, "a")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("not ErrNotExist: %v", err)
		}
	})

	t.Run("truncated shard", func(t *testing.T) {
		prefix, r := fresh(t)
		data := DataFilename(prefix, 0, 1)
		os.Truncate(data, 100)
		for _, n := range []string{"a", "b", "s", "p"} {
			_, err := r.Read(n)
			if n == "p" {
				var e *Error
				if !errors.As(err, &e) || e.File != data || !strings.HasPrefix(e.Tensor, "p[") {
					t.Errorf("p: %v", err)
				}
				continue
			}
			wantErr(t, n, err, data, n, "outside the 100-byte data file")
		}
	})

	t.Run("index", func(t *testing.T) {
		prefix, _ := fresh(t)
		index := IndexFilename(prefix)
		good, _ := os.ReadFile(index)
		check := func(what string, content []byte, text string) {
			t.Helper()
			os.WriteFile(index, content, 0o644)
			r, err := OpenBundle(prefix)
			if err == nil {
				r.Close()
			}
			wantErr(t, what, err, index, "", text)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: not ErrCorrupt: %v", what, err)
			}
		}
		for _, n := range []int{0, 1, 47, 48, len(good) / 2, len(good) - 1} {
			check(fmt.Sprintf("truncated to %d", n), good[:n], "")
		}
		bad := slices.Clone(good)
		bad[len(bad)-1] ^= 1
		check("wrong magic", bad, "bad magic number")
		bad = slices.Clone(good)
		bad[3] ^= 1
		check("flipped byte", bad, "block checksum mismatch")
		os.Remove(index)
		_, err := OpenBundle(prefix)
		wantErr(t, "missing index", err, index, "")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing index: not ErrNotExist: %v", err)
		}
	})

	t.Run("not found", func(t *testing.T) {
		prefix, r := fresh(t)
		_, err := r.Read("nope")
		wantErr(t, "not found", err, IndexFilename(prefix), "nope", "not found")
		if !errors.Is(err, ErrNotFound) {
			t.Error(err)
		}
	})
}

// TestMalformedEntries: index entries no writer produces are refused with
// errors naming the tensor, before anything is allocated from them.
func TestMalformedEntries(t *testing.T) {
	hdr := func(n int32) *fcpb.BundleHeaderProto {
		return &fcpb.BundleHeaderProto{NumShards: n, Version: &versions_go_proto.VersionDef{Producer: 1}}
	}
	data := make([]byte, 64)
	bigData := make([]byte, 4096)
	f32 := dtypes.Float
	entry := func(dt DataType, shape *tensor_shape_go_proto.TensorShapeProto, off, size int64) *fcpb.BundleEntryProto {
		return &fcpb.BundleEntryProto{Dtype: dt.Proto(), Shape: shape, Offset: off, Size: size}
	}
	readCases := map[string]struct {
		e    *fcpb.BundleEntryProto
		text string
	}{
		"size mismatch":   {entry(f32, shp(4), 0, 12), "float32 tensor of shape [4] has 16"},
		"huge":            {entry(f32, shp(1<<40), 0, 1<<42), "outside the 64-byte data file"},
		"overflow":        {entry(f32, shp(1<<40, 1<<40), 0, 16), "too many elements"},
		"negative dim":    {entry(f32, shp(-1), 0, 0), "negative dimension"},
		"negative offset": {entry(f32, shp(1), -4, 4), "outside"},
		"unknown rank":    {entry(f32, &tensor_shape_go_proto.TensorShapeProto{UnknownRank: true}, 0, 0), "unknown rank"},
		"shard id":        {&fcpb.BundleEntryProto{Dtype: f32.Proto(), Shape: shp(1), ShardId: 3, Size: 4}, "shard id 3"},
		"variant":         {entry(dtypes.Variant, shp(), 0, 4), "unsupported"},
		"many strings":    {entry(dtypes.String, shp(1<<50), 0, 64), "too few for"},
		"string lengths":  {entry(dtypes.String, shp(2), 0, 64), "length"},
		"slice missing": {&fcpb.BundleEntryProto{Dtype: f32.Proto(), Shape: shp(4), Slices: []*tsp.TensorSliceProto{
			extentsToProto([]Extent{{0, 2}}), extentsToProto([]Extent{{2, 2}})}}, "entry of this slice is missing"},
		"slices short": {&fcpb.BundleEntryProto{Dtype: f32.Proto(), Shape: shp(4), Slices: []*tsp.TensorSliceProto{
			extentsToProto([]Extent{{0, 2}})}}, ""},
		"slice outside": {&fcpb.BundleEntryProto{Dtype: f32.Proto(), Shape: shp(4), Slices: []*tsp.TensorSliceProto{
			extentsToProto([]Extent{{3, 2}})}}, "outside"},
		"slice rank": {&fcpb.BundleEntryProto{Dtype: f32.Proto(), Shape: shp(4), Slices: []*tsp.TensorSliceProto{
			extentsToProto([]Extent{{0, 2}, {0, 1}})}}, "dimensions"},
	}
	for what, c := range readCases {
		entries := map[string]*fcpb.BundleEntryProto{"x": c.e}
		// Slices that exist where the case needs them.
		if what == "slices short" {
			entries[SliceKey("x", []Extent{{0, 2}})] = entry(f32, shp(2), 0, 8)
		}
		prefix := craft(t, hdr(1), entries, data)
		r, err := OpenBundle(prefix)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		_, err = r.Read("x")
		var e *Error
		if !errors.As(err, &e) || !strings.HasPrefix(e.Tensor, "x") || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v", what, err)
		}
		if what == "slices short" && !strings.Contains(err.Error(), "cover 2 of the tensor's 4") {
			t.Errorf("%s: %v", what, err)
		}
		r.Close()
	}

	// Overlapping slices, few and many (the bitmap check).
	for _, n := range []int{2, 100} {
		entries := map[string]*fcpb.BundleEntryProto{}
		full := &fcpb.BundleEntryProto{Dtype: f32.Proto(), Shape: shp(int64(n))}
		for i := range n {
			sl := []Extent{{int64(i), 1}}
			if i == n-1 {
				sl = []Extent{{0, 1}} // the first element again
			}
			full.Slices = append(full.Slices, extentsToProto(sl))
			entries[SliceKey("x", sl)] = entry(f32, shp(1), 0, 4)
		}
		entries["x"] = full
		r, err := OpenBundle(craft(t, hdr(1), entries, bigData))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read("x"); err == nil || !strings.Contains(err.Error(), "overlap") {
			t.Errorf("%d overlapping slices: %v", n, err)
		}
		r.Close()
	}

	// Bad headers.
	openCases := map[string]*fcpb.BundleHeaderProto{
		"no shards":  hdr(0),
		"big endian": {NumShards: 1, Endianness: fcpb.BundleHeaderProto_BIG},
		"too new":    {NumShards: 1, Version: &versions_go_proto.VersionDef{Producer: 9, MinConsumer: 2}},
		"bad reader": {NumShards: 1, Version: &versions_go_proto.VersionDef{Producer: 1, BadConsumers: []int32{1}}},
	}
	for what, h := range openCases {
		prefix := craft(t, h, nil, data)
		_, err := OpenBundle(prefix)
		wantErr(t, what, err, IndexFilename(prefix), "")
	}
	// An entry that is not a BundleEntryProto, and a table without header.
	prefix := filepath.Join(t.TempDir(), "ckpt")
	hb, _ := proto.Marshal(hdr(1))
	for what, kvs := range map[string][][2]string{
		"bad entry": {{"", string(hb)}, {"x", "\xff\xff\xff"}},
		"no header": {{"x", ""}},
		"empty":     {},
	} {
		var buf bytes.Buffer
		tw := newTableWriter(&buf, NoCompression, 0)
		for _, kv := range kvs {
			tw.add([]byte(kv[0]), []byte(kv[1]))
		}
		tw.finish()
		os.WriteFile(IndexFilename(prefix), buf.Bytes(), 0o644)
		_, err := OpenBundle(prefix)
		tensor := ""
		if what == "bad entry" {
			tensor = "x"
		}
		wantErr(t, what, err, IndexFilename(prefix), tensor)
	}
}

// TestCheckpointState: the text format round-trips odd paths; comments,
// single quotes, adjacent strings, escapes and unknown fields parse;
// syntax errors are reported with their line.
func TestCheckpointState(t *testing.T) {
	dir := t.TempDir()
	st := &CheckpointState{
		ModelCheckpointPath:          "ck\"pt\\-ü\n\t\x01\x7f€\xff",
		AllModelCheckpointPaths:      []string{"a", "ck\"pt\\-ü\n\t\x01\x7f€\xff"},
		AllModelCheckpointTimestamps: []float64{1e-7, 1.5, 1e20, 1795735842.037829},
		LastPreservedTimestamp:       12,
	}
	if err := WriteCheckpointState(dir, st); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, CheckpointStateFilename))
	back, err := ParseCheckpointState(raw)
	if err != nil {
		t.Fatal(err)
	}
	if back.ModelCheckpointPath != st.ModelCheckpointPath || !slices.Equal(back.AllModelCheckpointPaths, st.AllModelCheckpointPaths) ||
		!slices.Equal(back.AllModelCheckpointTimestamps, st.AllModelCheckpointTimestamps) || back.LastPreservedTimestamp != 12 {
		t.Errorf("round trip: %+v\n%s", back, raw)
	}
	abs, err := ReadCheckpointState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if abs.ModelCheckpointPath != filepath.Join(dir, st.ModelCheckpointPath) {
		t.Errorf("ReadCheckpointState did not join the relative path: %q", abs.ModelCheckpointPath)
	}

	text := "# comment\nmodel_checkpoint_path: 'a' \"b\\x41\\101\\u00fc\" ;\nsome_future_field: 3\nother: \"x\"\nall_model_checkpoint_timestamps: inf, last_preserved_timestamp: 2.5f\n"
	got, err := ParseCheckpointState([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if got.ModelCheckpointPath != "abAAü" || !math.IsInf(got.AllModelCheckpointTimestamps[0], 1) || got.LastPreservedTimestamp != 2.5 {
		t.Errorf("parsed %+v", got)
	}
	for _, bad := range []string{"model_checkpoint_path \"a\"", "model_checkpoint_path: \"a", "model_checkpoint_path: 3", "all_model_checkpoint_timestamps: x", ": 1", "model_checkpoint_path: \"\\q\"", "a: \"\\400\""} {
		if _, err := ParseCheckpointState([]byte("\n" + bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := ReadCheckpointState(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing state file: %v", err)
	}
}

// TestSplit: WriteBundle's partitioning gives fixed_size_partitioner's
// sizes and the cut test helper's contents.
func TestSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, c := range []struct {
		shape []int64
		p     Partition
	}{{[]int64{10, 4}, Partition{0, 3}}, {[]int64{3, 7}, Partition{1, 2}}, {[]int64{2, 5, 3}, Partition{1, 5}}, {[]int64{4}, Partition{0, 4}}} {
		for _, dt := range []DataType{dtypes.Float, dtypes.String, dtypes.Complex128} {
			x := randTensor(rng, dt, c.shape...)
			parts, err := split(x, c.p)
			if err != nil {
				t.Fatal(err)
			}
			var lens []int64
			for _, pt := range parts {
				lens = append(lens, pt.slice[c.p.Axis].Length)
				if !equalTensor(pt.t, cut(x, pt.slice)) {
					t.Errorf("%v %v: part %v differs", c, dt, pt.slice)
				}
			}
			dim := c.shape[c.p.Axis]
			for i, l := range lens {
				want := dim / int64(c.p.Parts)
				if int64(i) < dim%int64(c.p.Parts) {
					want++
				}
				if l != want {
					t.Errorf("%v: part sizes %v", c, lens)
				}
			}
			if !sort.SliceIsSorted(lens, func(i, j int) bool { return lens[i] > lens[j] }) {
				t.Errorf("%v: part sizes %v", c, lens)
			}
		}
	}
}

// Overwriting a bundle of as many shards as asked for adds one empty shard,
// so that the new data files never take the names the old index
// references; the next overwrite goes back. Only the committed bundle's
// data files remain, and leftovers of other shard counts go.
func TestOverwriteAlternatesShardNames(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "ckpt")
	// A killed save's data file renamed in before its index.
	if err := os.WriteFile(DataFilename(prefix, 0, 5), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{2, 3, 2, 3} {
		ts := scalarF32(float32(i))
		var err error
		if i%2 == 0 {
			err = WriteBundle(prefix, ts, WriteOptions{NumShards: 2})
		} else {
			w, werr := NewBundleWriter(prefix, WriteOptions{NumShards: 2})
			if werr != nil {
				t.Fatal(werr)
			}
			if err := w.Add("w", ts["w"]); err != nil {
				t.Fatal(err)
			}
			err = w.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		checkBundleHolds(t, prefix, ts, fmt.Sprintf("save %d", i))
		if got := bundleShards(prefix); got != want {
			t.Errorf("save %d: %d shards, want %d", i, got, want)
		}
		if got := currentShards(prefix); got != want {
			t.Errorf("save %d: currentShards (header only) says %d shards, want %d", i, got, want)
		}
		names := killtest.DirNames(t, dir)
		wantNames := []string{"ckpt.index"}
		for s := range want {
			wantNames = append(wantNames, filepath.Base(DataFilename(prefix, s, want)))
		}
		slices.Sort(wantNames)
		if !slices.Equal(names, wantNames) {
			t.Errorf("save %d: the directory holds %v, want %v", i, names, wantNames)
		}
		if want == 3 {
			// The extra shard stays empty: the tensors go where asked.
			if fi, err := os.Stat(DataFilename(prefix, 2, 3)); err != nil || fi.Size() != 0 {
				t.Errorf("save %d: the extra shard: %v, %v", i, fi, err)
			}
		}
	}
}

func TestCurrentShardsUnreadable(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "ckpt")
	if got := currentShards(prefix); got != 0 {
		t.Errorf("no bundle: %d shards, want 0", got)
	}
	for _, data := range [][]byte{nil, []byte("not a table"), make([]byte, 100)} {
		if err := os.WriteFile(IndexFilename(prefix), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if got := currentShards(prefix); got != 0 {
			t.Errorf("index %q: %d shards, want 0", data, got)
		}
	}
}
