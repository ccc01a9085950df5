package savedmodel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/internal/testutil"
)

// fuzzTensors is the bundle whose index the fuzzer mutates; its data shard
// stays in place under every mutated index.
func fuzzTensors() (map[string]*Tensor, WriteOptions) {
	rng := rand.New(rand.NewPCG(10, 10))
	return map[string]*Tensor{
			"f32":          randTensor(rng, dtypes.Float, 3, 2),
			"i64":          randTensor(rng, dtypes.Int64),
			"str":          randTensor(rng, dtypes.String, 3),
			"bf16":         randTensor(rng, dtypes.BFloat16, 0),
			"part":         randTensor(rng, dtypes.Int32, 4, 3),
			"pstr":         randTensor(rng, dtypes.String, 2, 2),
			ObjectGraphKey: {DType: dtypes.String, Strings: [][]byte{[]byte("graph")}},
		}, WriteOptions{Partitions: map[string]Partition{
			"part": {Axis: 1, Parts: 3}, "pstr": {Axis: 0, Parts: 2},
		}}
}

// FuzzOpenBundle feeds arbitrary .index bytes (next to a genuine data
// shard) to OpenBundle and reads every tensor it lists: nothing may panic
// or allocate what the files cannot hold. The seed corpus holds indexes
// written by Go (plain and snappy, multi-block) and by Python TensorFlow
// (testdata/fuzz/FuzzOpenBundle).
func FuzzOpenBundle(f *testing.F) {
	dir := f.TempDir()
	ts, opts := fuzzTensors()
	seed := filepath.Join(dir, "seed")
	if err := WriteBundle(seed, ts, opts); err != nil {
		f.Fatal(err)
	}
	index, err := os.ReadFile(IndexFilename(seed))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(index)
	snappyOpts := opts
	snappyOpts.Compression, snappyOpts.IndexBlockSize = SnappyCompression, 32
	if err := WriteBundle(seed+"2", ts, snappyOpts); err != nil {
		f.Fatal(err)
	}
	if index, err = os.ReadFile(IndexFilename(seed + "2")); err != nil {
		f.Fatal(err)
	}
	f.Add(index)
	data := DataFilename(seed, 0, 1)

	f.Fuzz(func(t *testing.T, index []byte) {
		openAndReadAll(t, dir, data, index)
	})
}

var fuzzN atomic.Int64

// openAndReadAll opens a bundle made of index and the data shard data (in
// dir) and reads everything it lists.
func openAndReadAll(t *testing.T, dir, data string, index []byte) {
	prefix := filepath.Join(dir, strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(fuzzN.Add(1), 10))
	if err := os.WriteFile(IndexFilename(prefix), index, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(IndexFilename(prefix))
	if err := os.Link(data, DataFilename(prefix, 0, 1)); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(DataFilename(prefix, 0, 1))
	r, err := OpenBundle(prefix)
	if err != nil {
		if _, ok := err.(*Error); !ok {
			t.Fatalf("error of type %T: %v", err, err)
		}
		return
	}
	defer r.Close()
	r.Header()
	r.Names()
	for _, k := range r.Keys() {
		r.Entry(k)
		r.EntryProto(k)
		if x, err := r.Read(k); err == nil {
			if err := x.Validate(); err != nil {
				t.Fatalf("%q: Read returned an invalid tensor: %v", k, err)
			}
		} else if _, ok := err.(*Error); !ok {
			t.Fatalf("%q: error of type %T: %v", k, err, err)
		}
		r.ReadInto(k, io.Discard)
		ParseSliceKey(k)
	}
	r.ObjectGraph()
}

// FuzzBundleEntries fuzzes below the table layer, where block checksums
// stop most mutations of FuzzOpenBundle: the input is a list of key/value
// pairs (uvarint length, bytes, uvarint length, bytes, ...), made into a
// well-formed table; the first value is the header. Entries with
// arbitrary dtypes, shapes, offsets, sizes, checksums and slices must be
// refused cleanly against the genuine data shard.
func FuzzBundleEntries(f *testing.F) {
	dir := f.TempDir()
	ts, opts := fuzzTensors()
	seed := filepath.Join(dir, "seed")
	if err := WriteBundle(seed, ts, opts); err != nil {
		f.Fatal(err)
	}
	index, err := os.ReadFile(IndexFilename(seed))
	if err != nil {
		f.Fatal(err)
	}
	kvs, err := readTable(index)
	if err != nil {
		f.Fatal(err)
	}
	var enc []byte
	for _, kv := range kvs {
		enc = binary.AppendUvarint(enc, uint64(len(kv.key)))
		enc = append(enc, kv.key...)
		enc = binary.AppendUvarint(enc, uint64(len(kv.value)))
		enc = append(enc, kv.value...)
	}
	f.Add(enc)
	data := DataFilename(seed, 0, 1)
	f.Fuzz(func(t *testing.T, in []byte) {
		pairs := map[string][]byte{}
		for len(in) > 0 {
			var kv [2][]byte
			for i := range kv {
				l, n := binary.Uvarint(in)
				if n <= 0 || l > uint64(len(in)-n) {
					in = nil
					break
				}
				kv[i], in = in[n:n+int(l)], in[n+int(l):]
			}
			pairs[string(kv[0])] = kv[1]
		}
		var buf bytes.Buffer
		tw := newTableWriter(&buf, NoCompression, 128)
		for _, k := range sortedNames(pairs) {
			if err := tw.add([]byte(k), pairs[k]); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.finish(); err != nil {
			t.Fatal(err)
		}
		openAndReadAll(t, dir, data, buf.Bytes())
	})
}

// TestWriteFuzzCorpus regenerates the committed seed corpus when
// GOTF_SAVEDMODEL_WRITE_CORPUS=1: Go's indexes and the ones Python wrote in
// this run.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("GOTF_SAVEDMODEL_WRITE_CORPUS") != "1" {
		testutil.Skip(t, "set GOTF_SAVEDMODEL_WRITE_CORPUS=1 to regenerate testdata/fuzz/FuzzOpenBundle")
	}
	out := python(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzOpenBundle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, prefix string) {
		b, err := os.ReadFile(IndexFilename(prefix))
		if err != nil {
			t.Fatal(err)
		}
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"saver", "saver_sharded", "object"} {
		write("python_"+name, out.Py[name].Prefix)
	}
	for _, name := range []string{"single", "sliced", "snappy"} {
		write("go_"+name, interop.goCkpts[name])
	}
}
