package savedmodel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/internal/testutil"
)

// directWorks tells whether O_DIRECT works in dir: on Linux it should on
// the usual disk file systems, and only there. The package's own probe
// (openDirect) must agree with the test's (directRefusal).
func directWorks(t *testing.T, dir string) bool {
	t.Helper()
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(probe)
	f := openDirect(probe)
	if f != nil {
		f.Close()
	}
	if why := directRefusal(t, dir); (why == "") != (f != nil) {
		t.Errorf("openDirect works: %v; the test's probe: %q", f != nil, why)
	}
	return f != nil
}

// skipUnlessDirect skips t, saying why, where O_DIRECT is refused in dir:
// there the DirectIO paths fall back to the page cache, and only the
// fallback is tested. (make test lists the skipped tests.)
func skipUnlessDirect(t *testing.T, dir string) {
	t.Helper()
	if !directWorks(t, dir) {
		testutil.Skip(t, "O_DIRECT path not tested, only the buffered fallback: %s", directRefusal(t, dir))
	}
}

// ioFixtures are sized to end mid-block, to fill a chunk exactly, and to
// span several chunks.
func ioFixtures() ([]string, map[string]*Tensor) {
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"a_small", "b_odd", "c_exact", "d_big", "e_str", "f_tail"}
	return names, map[string]*Tensor{
		"a_small": randTensor(rng, dtypes.Float, 3, 5),
		"b_odd":   randTensor(rng, dtypes.Int8, 4097),
		"c_exact": randTensor(rng, dtypes.Uint8, chunkSize-60-4097),
		"d_big":   randTensor(rng, dtypes.Double, 5, chunkSize/8/2+3),
		"e_str":   randTensor(rng, dtypes.String, 7),
		"f_tail":  randTensor(rng, dtypes.BFloat16, 33),
	}
}

// TestIOModes writes the same tensors in the same order in every IOMode,
// synced and not, and expects identical files; DirectIO, and AutoIO in a
// durable save, must have written all their whole chunks around the page
// cache where O_DIRECT works, AutoIO without sync each of them one way or
// the other.
func TestIOModes(t *testing.T) {
	names, ts := ioFixtures()
	type run struct {
		mode   IOMode
		noSync bool
	}
	runs := []run{{BufferedIO, false}, {DirectIO, false}, {DirectIO, true}, {AutoIO, false}, {AutoIO, true}}
	files := map[run][2][]byte{}
	var directDir string     // where DirectIO wrote
	ways := map[run][2]int{} // chunks written buffered and direct
	for _, r := range runs {
		prefix := filepath.Join(t.TempDir(), "ckpt")
		w, err := NewBundleWriter(prefix, WriteOptions{IO: r.mode, NoSync: r.noSync})
		if err != nil {
			t.Fatal(err)
		}
		cw := w.shards[0].bw
		for _, n := range names {
			if err := w.Add(n, ts[n]); err != nil {
				t.Fatal(err)
			}
		}
		ways[r] = cw.ways
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if r.mode == DirectIO {
			directDir = filepath.Dir(prefix)
		}
		checkBundle(t, prefix, ts)
		noTempFiles(t, filepath.Dir(prefix))
		data, _ := os.ReadFile(DataFilename(prefix, 0, 1))
		index, _ := os.ReadFile(IndexFilename(prefix))
		files[r] = [2][]byte{data, index}
	}
	b := files[runs[0]]
	for _, r := range runs[1:] {
		if d := files[r]; !bytes.Equal(d[0], b[0]) || !bytes.Equal(d[1], b[1]) {
			t.Errorf("%v (NoSync %v): files differ from the buffered ones (%d data bytes, buffered %d)", r.mode, r.noSync, len(d[0]), len(b[0]))
		}
	}
	t.Run("O_DIRECT", func(t *testing.T) {
		skipUnlessDirect(t, directDir)
		// The fixtures fill 3 chunks and part of a fourth.
		for r, want := range map[run][2]int{{DirectIO, false}: {0, 3}, {DirectIO, true}: {0, 3}, {AutoIO, false}: {0, 3}} {
			if ways[r] != want {
				t.Errorf("%v (NoSync %v): %v chunks written buffered and direct, want %v", r.mode, r.noSync, ways[r], want)
			}
		}
		if w := ways[run{AutoIO, true}]; w[0]+w[1] != 3 {
			t.Errorf("AutoIO (NoSync): %v chunks written buffered and direct, want 3 in all", w)
		}
	})
}

// TestAutoIOFollowsRates writes a shard under AutoIO while the recorded
// speed of each way is made up (the disk's is not steady enough to test
// with): the page cache fast, then slow, then fast again, the disk steady.
// AutoIO must take the page cache, try the disk, leave the page cache
// within two chunks after it slowed down and come back to it, and write
// the bytes given.
func TestAutoIOFollowsRates(t *testing.T) {
	dir := t.TempDir()
	skipUnlessDirect(t, dir)
	name := filepath.Join(dir, "shard")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := newShardWriter(f, AutoIO, false)
	defer w.Close()
	if !w.auto {
		t.Fatal("AutoIO without sync does not choose")
	}
	var slowCache atomic.Bool
	w.timing = func(direct bool, n int, _ time.Duration) time.Duration {
		rate := 5e9 // bytes/s
		if direct {
			rate = 1e9
		} else if slowCache.Load() {
			rate = 0.2e9
		}
		return time.Duration(float64(n) / rate * float64(time.Second))
	}
	phases := []int{10, 10, 24} // chunks each
	chunk := make([]byte, chunkSize)
	var ways []string // per phase, the chunks' ways: B buffered, D direct
	for i, n := range phases {
		slowCache.Store(i == 1)
		var s []byte
		for range n {
			for j := range chunk {
				chunk[j] = byte(j*7 + int(w.off/chunkSize)) // each chunk its own bytes
			}
			before := w.ways
			// In pieces, one small, so that the chunk is also staged.
			for _, p := range [][]byte{chunk[:100], chunk[100 : chunkSize/3], chunk[chunkSize/3:]} {
				if _, err := w.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			// Waits for the direct write and so its rate: the choices
			// do not depend on the goroutine's timing.
			if err := w.settle(); err != nil {
				t.Fatal(err)
			}
			switch {
			case w.ways[0] == before[0]+1 && w.ways[1] == before[1]:
				s = append(s, 'B')
			case w.ways[1] == before[1]+1 && w.ways[0] == before[0]:
				s = append(s, 'D')
			default:
				t.Fatalf("a chunk changed the ways' counts from %v to %v", before, w.ways)
			}
		}
		ways = append(ways, string(s))
	}
	t.Logf("ways by phase (cache fast, slow, fast): %q", ways)
	count := func(s string, c byte) int { return strings.Count(s, string(c)) }
	if ways[0][0] != 'B' || count(ways[0], 'D') < 1 || count(ways[0], 'B') < 7 {
		t.Errorf("cache fast: ways %s, want mostly the page cache and a trial of the disk", ways[0])
	}
	// The first slow chunk shows the change; one more may go the same
	// way while the estimate, smoothed, catches up.
	if i := strings.IndexByte(ways[1], 'D'); i < 0 || i > 2 || count(ways[1], 'B') > 4 {
		t.Errorf("cache slow: ways %s, want the disk from the third chunk on but for a few trials", ways[1])
	}
	if i := strings.Index(ways[2], "BBB"); i < 0 || i > maxProbe || count(ways[2][i:], 'D') > 2 {
		t.Errorf("cache fast again: ways %s, want back to the page cache within %d chunks", ways[2], maxProbe)
	}
	tail := []byte("tail")
	if _, err := w.Write(tail); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range phases {
		total += n
	}
	if len(got) != total*chunkSize+len(tail) || !bytes.Equal(got[total*chunkSize:], tail) {
		t.Fatalf("%d bytes read back, want %d ending in %q", len(got), total*chunkSize+len(tail), tail)
	}
	for k := range total {
		for j := range chunk {
			chunk[j] = byte(j*7 + k)
		}
		if !bytes.Equal(got[k*chunkSize:(k+1)*chunkSize], chunk) {
			t.Fatalf("chunk %d (%c) read back other bytes", k, strings.Join(ways, "")[k])
		}
	}
}

// TestAutoIODurable: a synced save under AutoIO writes every whole chunk
// around the page cache, whatever the rates.
func TestAutoIODurable(t *testing.T) {
	dir := t.TempDir()
	skipUnlessDirect(t, dir)
	f, err := os.Create(filepath.Join(dir, "shard"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := newShardWriter(f, AutoIO, true)
	defer w.Close()
	w.timing = func(direct bool, n int, d time.Duration) time.Duration {
		if direct {
			return time.Hour
		}
		return time.Nanosecond
	}
	if _, err := w.Write(make([]byte, 3*chunkSize+5)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.ways != [2]int{0, 3} {
		t.Errorf("%v chunks written buffered and direct, want [0 3]", w.ways)
	}
}

// TestDirectRead reads a bundle back with DirectIO, all of it cached and
// then half of it dropped from the page cache: every tensor equal, a
// flipped byte in a large tensor a crc32c mismatch, a shard cut while open
// an error naming the file, through Read and ReadInto.
func TestDirectRead(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ts := map[string]*Tensor{
		"a_small": randTensor(rng, dtypes.Float, 7),
		"b_big":   randTensor(rng, dtypes.Int8, chunkSize+5*directAlign+3),
		"c_mid":   randTensor(rng, dtypes.Half, chunkSize/16+1),
		"d_str":   randTensor(rng, dtypes.String, 4),
		"e_end":   randTensor(rng, dtypes.Int32, chunkSize/32+13),
	}
	dir := t.TempDir()
	prefix := filepath.Join(dir, "ckpt")
	if err := WriteBundle(prefix, ts, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	data := DataFilename(prefix, 0, 1)
	orig, _ := os.ReadFile(data)
	for _, drop := range []int64{0, int64(len(orig)) / 2} {
		mode := fmt.Sprintf("%d bytes not cached", drop)
		dropCache(t, data, drop)
		r, err := OpenBundleWithOptions(prefix, ReadOptions{IO: DirectIO})
		if err != nil {
			t.Fatal(err)
		}
		// (tmpfs keeps its pages in the page cache: nothing drops them.)
		if sh, _ := r.shard(0); sh != nil && sh.direct != nil && runtime.GOOS == "linux" {
			if c := sh.direct.cached(0, directAlign); (drop > 0 && !memoryFS(dir)) != (c == 0) {
				t.Errorf("%s: the first page reads as %d bytes cached", mode, c)
			}
		}
		for name, want := range ts {
			got, err := r.Read(name)
			if err != nil {
				t.Fatal(err)
			}
			if !equalTensor(got, want) {
				t.Errorf("%v: %s: read back other values", mode, name)
			}
			if want.DType != dtypes.String {
				var buf bytes.Buffer
				if err := r.ReadInto(name, &buf); err != nil || !bytes.Equal(buf.Bytes(), want.Data) {
					t.Errorf("%v: %s: ReadInto: %v", mode, name, err)
				}
			}
		}
		sh, err := r.shard(0)
		if err != nil {
			t.Fatal(err)
		}
		if (sh.direct != nil) != directWorks(t, dir) {
			t.Errorf("%v: shard opened with O_DIRECT: %v", mode, sh.direct != nil)
		}
		r.Close()
	}

	t.Run("O_DIRECT", func(t *testing.T) {
		skipUnlessDirect(t, dir)
		r, err := OpenBundleWithOptions(prefix, ReadOptions{IO: DirectIO})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.Read("b_big"); err != nil {
			t.Fatal(err)
		}
		if sh, err := r.shard(0); err != nil || sh.direct == nil {
			t.Errorf("the shard was not opened with O_DIRECT (%v)", err)
		}
	})

	e, _ := func() (*Entry, error) { r, _ := OpenBundle(prefix); defer r.Close(); return r.Entry("b_big") }()
	bad := bytes.Clone(orig)
	bad[e.Offset+e.Size-1] ^= 1
	os.WriteFile(data, bad, 0o644)
	r, _ := OpenBundleWithOptions(prefix, ReadOptions{IO: DirectIO})
	if _, err := r.Read("b_big"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped byte: Read gave %v", err)
	}
	if err := r.ReadInto("b_big", io.Discard); !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped byte: ReadInto gave %v", err)
	}
	r.Close()

	// Cut after the reader checked the shard's size: the short read
	// itself must fail.
	os.WriteFile(data, orig, 0o644)
	r, _ = OpenBundleWithOptions(prefix, ReadOptions{IO: DirectIO})
	if _, err := r.Read("a_small"); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(data, int64(len(orig)-100)); err != nil {
		t.Fatal(err)
	}
	_, err := r.Read("e_end")
	wantErr(t, "shard cut while open", err, data, "e_end", "unexpected EOF")
	if _, err := r.Read("b_big"); err != nil {
		t.Errorf("b_big, before the cut: %v", err)
	}
	r.Close()
}

// TestChunkWriterTail: every tail length round-trips.
func TestChunkWriterTail(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 1, directAlign - 1, chunkSize, chunkSize + 1, 2*chunkSize + 3*directAlign + 17} {
		name := filepath.Join(dir, "f")
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w := newShardWriter(f, DirectIO, false)
		want := bytes.Repeat([]byte{0xab, 0xcd, 0xef}, n/3+1)[:n]
		if _, err := w.Write(want); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		f.Close()
		if got, _ := os.ReadFile(name); !bytes.Equal(got, want) {
			t.Errorf("%d bytes written, %d read back", n, len(got))
		}
	}
}

// TestDirectWriteError: a failing O_DIRECT write (its handle closed under
// the writer) fails the Add that staged the chunk, and the bundle.
func TestDirectWriteError(t *testing.T) {
	dir := t.TempDir()
	skipUnlessDirect(t, dir)
	w, err := NewBundleWriter(filepath.Join(dir, "broken"), WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.shards[0].bw.df.Close()
	big := &Tensor{DType: dtypes.Uint8, Shape: []int64{3 * chunkSize}, Data: make([]byte, 3*chunkSize)}
	if err := w.Add("big", big); err == nil {
		t.Fatal("a direct write to a closed file succeeded")
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failed Add succeeded")
	}
	if _, err := os.Stat(IndexFilename(filepath.Join(dir, "broken"))); err == nil {
		t.Error("an index was written")
	}
}

// An IOMode this package does not know is refused, not taken for another.
func TestUnknownIOModeRefused(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "ckpt")
	_, err := NewBundleWriter(prefix, WriteOptions{IO: IOMode(7)})
	if err == nil || !strings.Contains(err.Error(), "unknown IOMode 7") {
		t.Fatalf("NewBundleWriter with IOMode(7): %v", err)
	}
	if _, err := os.Stat(DataFilename(prefix, 0, 1)); !os.IsNotExist(err) {
		t.Fatalf("a refused writer left files: %v", err)
	}
	_, err = OpenBundleWithOptions(prefix, ReadOptions{IO: IOMode(-1)})
	if err == nil || !strings.Contains(err.Error(), "unknown IOMode -1") {
		t.Fatalf("OpenBundleWithOptions with IOMode(-1): %v", err)
	}
}
