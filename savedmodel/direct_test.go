package savedmodel

import (
	"bytes"
	"errors"
	"io"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	tpb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
)

// TestDirectIO writes the same tensors in the same order with and without
// DirectIO and expects identical files: sizes chosen to end mid-block,
// to fill the staging buffer exactly, and to span it several times.
func TestDirectIO(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"a_small", "b_odd", "c_exact", "d_big", "e_str", "f_tail"}
	ts := map[string]*Tensor{
		"a_small": randTensor(rng, tpb.DataType_DT_FLOAT, 3, 5),
		"b_odd":   randTensor(rng, tpb.DataType_DT_INT8, 4097),
		"c_exact": randTensor(rng, tpb.DataType_DT_UINT8, directStage-60-4097),
		"d_big":   randTensor(rng, tpb.DataType_DT_DOUBLE, 5, directStage/8/2+3),
		"e_str":   randTensor(rng, tpb.DataType_DT_STRING, 7),
		"f_tail":  randTensor(rng, tpb.DataType_DT_BFLOAT16, 33),
	}
	write := func(direct bool) string {
		prefix := filepath.Join(t.TempDir(), "ckpt")
		w, err := NewBundleWriter(prefix, &WriteOptions{DirectIO: direct})
		if err != nil {
			t.Fatal(err)
		}
		if _, used := w.shards[0].bw.(*directWriter); used != (direct && directWorks(t, filepath.Dir(prefix))) {
			t.Errorf("DirectIO %v: shard written through %T", direct, w.shards[0].bw)
		}
		for _, n := range names {
			if err := w.Add(n, ts[n]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		checkBundle(t, prefix, ts)
		noTempFiles(t, filepath.Dir(prefix))
		return prefix
	}
	buffered, direct := write(false), write(true)
	for _, f := range []string{DataFilename("", 0, 1), IndexFilename("")} {
		a, err := os.ReadFile(buffered + f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(direct + f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: %d bytes with DirectIO, %d buffered, not the same", f, len(b), len(a))
		}
	}
}

// TestDirectRead reads a bundle back with ReadOptions.DirectIO: every
// tensor equal, a flipped byte in a large tensor a crc32c mismatch, a
// truncated shard an error naming the file, both through Read and ReadInto.
func TestDirectRead(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ts := map[string]*Tensor{
		"a_small": randTensor(rng, tpb.DataType_DT_FLOAT, 7),
		"b_big":   randTensor(rng, tpb.DataType_DT_INT8, directStage+5*directAlign+3),
		"c_mid":   randTensor(rng, tpb.DataType_DT_HALF, minDirectRead/2+1),
		"d_str":   randTensor(rng, tpb.DataType_DT_STRING, 4),
		"e_end":   randTensor(rng, tpb.DataType_DT_INT32, minDirectRead/4+13),
	}
	dir := t.TempDir()
	prefix := filepath.Join(dir, "ckpt")
	w, err := NewBundleWriter(prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range sortedNames(ts) {
		if err := w.Add(n, ts[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	open := func() *BundleReader {
		r, err := OpenBundleWith(prefix, &ReadOptions{DirectIO: true})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open()
	for name, want := range ts {
		got, err := r.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		if !equalTensor(got, want) {
			t.Errorf("%s: read back other values", name)
		}
		if want.DType != tpb.DataType_DT_STRING {
			var buf bytes.Buffer
			if err := r.ReadInto(name, &buf); err != nil || !bytes.Equal(buf.Bytes(), want.Data) {
				t.Errorf("%s: ReadInto: %v", name, err)
			}
		}
	}
	sh, err := r.shard(0)
	if err != nil {
		t.Fatal(err)
	}
	if (sh.direct != nil) != directWorks(t, dir) {
		t.Errorf("shard opened with O_DIRECT: %v", sh.direct != nil)
	}
	r.Close()

	data := DataFilename(prefix, 0, 1)
	e, _ := open().Entry("b_big")
	orig, _ := os.ReadFile(data)
	bad := bytes.Clone(orig)
	bad[e.Offset+e.Size-1] ^= 1
	os.WriteFile(data, bad, 0o644)
	r = open()
	if _, err := r.Read("b_big"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped byte: Read gave %v", err)
	}
	if err := r.ReadInto("b_big", io.Discard); !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped byte: ReadInto gave %v", err)
	}
	r.Close()

	// Truncated after the reader checked the shard's size: the short
	// direct read itself must fail.
	os.WriteFile(data, orig, 0o644)
	r = open()
	if _, err := r.Read("a_small"); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(data, int64(len(orig)-100)); err != nil {
		t.Fatal(err)
	}
	_, err = r.Read("e_end")
	wantErr(t, "shard truncated while open", err, data, "e_end", "unexpected EOF")
	if _, err := r.Read("b_big"); err != nil {
		t.Errorf("b_big, before the cut: %v", err)
	}
	r.Close()
}

// directWorks tells whether O_DIRECT works in dir: on Linux it should on
// the usual disk file systems, and only there.
func directWorks(t *testing.T, dir string) bool {
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(probe)
	f, ok := openDirect(probe)
	if ok {
		f.Close()
	}
	if runtime.GOOS == "linux" && !ok {
		t.Logf("O_DIRECT is refused in %s: testing the fallback only", dir)
	}
	return ok
}

// TestDirectWriterTail: every tail length round-trips, padding is cut off.
func TestDirectWriterTail(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 1, directAlign - 1, directAlign, directAlign + 1, 3*directAlign + 17} {
		name := filepath.Join(dir, fmt.Sprint(n))
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f, bw := newShardBuffer(f, true)
		want := bytes.Repeat([]byte{0xab}, n)
		if _, err := bw.Write(want); err != nil {
			t.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if got, _ := os.ReadFile(name); !bytes.Equal(got, want) {
			t.Errorf("%d bytes written, %d read back", n, len(got))
		}
	}
}
