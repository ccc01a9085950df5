package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// scanVersions looks at base as TensorFlow Serving's file system source
// does: every child whose name is a version number. It returns the
// versions it saw and a description of every incomplete one (no
// saved_model.pb, no variables bundle, no fingerprint.pb).
func scanVersions(base string) (seen []int64, incomplete []string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, nil
	}
	for _, e := range entries {
		v, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || v < 0 {
			continue
		}
		seen = append(seen, v)
		dir := filepath.Join(base, e.Name())
		for _, f := range []string{
			filepath.Join(dir, savedmodel.SavedModelFilename),
			savedmodel.IndexFilename(savedmodel.VariablesPrefix(dir)),
			savedmodel.DataFilename(savedmodel.VariablesPrefix(dir), 0, 1),
			filepath.Join(dir, savedmodel.FingerprintFilename),
		} {
			if _, err := os.Stat(f); err != nil {
				// A version removed meanwhile is not incomplete.
				if _, derr := os.Stat(dir); derr == nil {
					incomplete = append(incomplete, fmt.Sprintf("version %d: %v", v, err))
				}
			}
		}
	}
	return seen, incomplete
}

// TestServingLayout publishes versions 1..N of a model under BASE while a
// scanner watches BASE as TensorFlow Serving would: every version it ever
// sees is complete. Each export is held in the middle (its asset is a
// FIFO: the copy waits for the test to write it) until the scanner has
// scanned BASE twice, and the next export waits until the scanner has
// seen the version, so the scanner looks at every version while it is
// written and after. Then the latest versions load and compute what the
// session computed when they were exported, and old versions are retired.
func TestServingLayout(t *testing.T) {
	b := newBlock(t)
	base := filepath.Join(t.TempDir(), "models", "block")
	const versions = 12
	// waitTimeout bounds every wait for the exporter or the scanner.
	const waitTimeout = 30 * time.Second
	fifo := filepath.Join(t.TempDir(), "vocab.txt")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	opts := ExportOptions{Assets: []tfgo.Output{tfgo.Const(b.s.SubScope("vocab"), fifo)}}

	var stop atomic.Bool
	var scans, sightings atomic.Int64
	var seenVersions [versions + 1]atomic.Bool
	var mu sync.Mutex
	var bad []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			seen, incomplete := scanVersions(base)
			if len(incomplete) > 0 {
				mu.Lock()
				bad = append(bad, incomplete...)
				mu.Unlock()
			}
			for _, v := range seen {
				if v >= 1 && v <= versions {
					seenVersions[v].Store(true)
				}
			}
			sightings.Add(int64(len(seen)))
			scans.Add(1)
		}
	}()
	defer func() { stop.Store(true); <-done }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(waitTimeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	// What the session computes for x when each version is exported: what
	// the loaded versions must compute.
	x := b.randomInput(2, 5)
	atExport := map[int64]*tfgo.Tensor{}
	for v := int64(1); v <= versions; v++ {
		out, err := b.sess.Run(map[tfgo.Output]any{b.x: x}, []tfgo.Output{b.y})
		require.NoError(t, err)
		atExport[v] = out[0]
		exported := make(chan error, 1)
		go func() {
			dir, err := ExportVersion(base, v, b.s.Graph(), b.sess, b.signatures(), opts)
			if err == nil && dir != filepath.Join(base, strconv.FormatInt(v, 10)) {
				err = fmt.Errorf("exported to %s", dir)
			}
			exported <- err
		}()
		// The exporter opens the FIFO to copy it once the variables are
		// written; a writer can open it without blocking only then.
		var w *os.File
		waitFor(fmt.Sprintf("version %d is being written", v), func() bool {
			select {
			case err := <-exported:
				t.Fatalf("version %d: the export ended (%v) without copying its asset", v, err)
			default:
			}
			w, err = os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			return err == nil
		})
		n := scans.Load()
		waitFor(fmt.Sprintf("the scanner has scanned version %d being written", v), func() bool { return scans.Load() >= n+2 })
		_, err = w.WriteString("a\nb\n")
		require.NoError(t, err)
		require.NoError(t, w.Close())
		require.NoError(t, <-exported)
		waitFor(fmt.Sprintf("the scanner has seen version %d", v), seenVersions[v].Load)
		// Each version has other weights, as after more training.
		_, err = b.sess.Run(nil, nil, b.train)
		require.NoError(t, err)
	}
	stop.Store(true)
	<-done
	require.Empty(t, bad, "a scanner saw incomplete versions")
	require.GreaterOrEqual(t, scans.Load(), int64(2*versions))
	t.Logf("%d versions published; the scanner made %d scans, saw %d version directories, every version, none incomplete",
		versions, scans.Load(), sightings.Load())
	vocab, err := os.ReadFile(filepath.Join(base, "12", savedmodel.AssetsDirectory, "vocab.txt"))
	require.NoError(t, err)
	require.Equal(t, "a\nb\n", string(vocab))

	// Publishing an existing version is refused and changes nothing.
	_, err = ExportVersion(base, 2, b.s.Graph(), b.sess, b.signatures(), ExportOptions{})
	require.ErrorIs(t, err, os.ErrExist)
	entries, err := os.ReadDir(base)
	require.NoError(t, err)
	require.Len(t, entries, versions, "no temporary directories are left")

	vs, err := savedmodel.Versions(base)
	require.NoError(t, err)
	require.Len(t, vs, versions)
	latest, dir, err := savedmodel.LatestVersion(base)
	require.NoError(t, err)
	require.Equal(t, int64(versions), latest)
	require.Equal(t, filepath.Join(base, strconv.FormatInt(versions, 10)), dir)
	// Versions hold the weights of their time: each computes what the
	// session computed when it was exported. Same graph, same kernels,
	// same weights and input on the same runtime: the same bits.
	got := map[int64][]float32{}
	for _, v := range []int64{versions - 1, versions} {
		m, err := Load(filepath.Join(base, strconv.FormatInt(v, 10)))
		require.NoError(t, err)
		out, err := m.Run(context.Background(), "serving_default", map[string]any{"x": x})
		require.NoError(t, err)
		require.NoError(t, m.Close())
		want, err := tfgo.Float32s(atExport[v])
		require.NoError(t, err)
		got[v], err = tfgo.Float32s(out["y"])
		require.NoError(t, err)
		require.NotEmpty(t, want)
		testutil.AllCloseShape(t, fmt.Sprintf("version %d", v), atExport[v].Shape(), want, out["y"].Shape(), got[v], 0, 0)
	}
	// An update ran between the exports of versions 11 and 12.
	require.NotEqual(t, got[versions-1], got[versions], "versions 11 and 12 compute the same")

	removed, err := savedmodel.RemoveOldVersions(base, 3)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}, removed)
	vs, err = savedmodel.Versions(base)
	require.NoError(t, err)
	require.Equal(t, []int64{10, 11, 12}, vs)
	entries, err = os.ReadDir(base)
	require.NoError(t, err)
	require.Len(t, entries, 3)
}

// TestScannerCatchesPartialWrites shows the scanner of TestServingLayout
// sees a version written in place (not published) as incomplete: the
// writer is stopped half-way (in the middle of the variables) while the
// scanner looks, then released; the finished version scans complete.
func TestScannerCatchesPartialWrites(t *testing.T) {
	b := newBlock(t)
	d, err := prepareExport(b.s.Graph(), b.sess, b.signatures(), ExportOptions{})
	require.NoError(t, err)
	base := t.TempDir()
	dir := filepath.Join(base, "1")
	require.NoError(t, os.Mkdir(dir, 0o755))

	halfway, release := make(chan struct{}), make(chan struct{})
	dd := *d
	dd.WriteVariables = func(w *savedmodel.BundleWriter) error {
		if d.WriteVariables != nil {
			if err := d.WriteVariables(w); err != nil {
				return err
			}
		}
		close(halfway)
		<-release
		return nil
	}
	written := make(chan error, 1)
	go func() { written <- savedmodel.WriteContents(dir, &dd) }()
	select {
	case <-halfway:
	case err := <-written:
		t.Fatalf("WriteContents returned (%v) without writing the variables", err)
	}
	seen, incomplete := scanVersions(base)
	close(release)
	require.NoError(t, <-written)
	require.Equal(t, []int64{1}, seen)
	require.NotEmpty(t, incomplete, "the scanner did not see that version 1 was half written")
	t.Logf("half written, version 1 scans as: %s", strings.Join(incomplete, "; "))
	seen, incomplete = scanVersions(base)
	require.Equal(t, []int64{1}, seen)
	require.Empty(t, incomplete, "the finished version scans incomplete")
}

// TestConcurrentRuns runs a loaded model from several goroutines at once,
// as a server does, and gets what sequential runs give.
func TestConcurrentRuns(t *testing.T) {
	b := newBlock(t)
	dir := filepath.Join(t.TempDir(), "block")
	require.NoError(t, Export(dir, b.s.Graph(), b.sess, b.signatures(), ExportOptions{}))
	m, err := Load(dir)
	require.NoError(t, err)
	defer m.Close()
	ctx := context.Background()
	const workers, runs = 6, 15
	inputs := make([][][][]float32, workers)
	want := make([][]float32, workers)
	wantShape := make([][]int64, workers)
	for i := range inputs {
		inputs[i] = b.randomInput(i+1, uint64(i))
		out, err := m.Run(ctx, "serving_default", map[string]any{"x": inputs[i]})
		require.NoError(t, err)
		want[i], err = tfgo.Float32s(out["y"])
		require.NoError(t, err)
		require.Len(t, want[i], (i+1)*int(b.T*b.D))
		wantShape[i] = out["y"].Shape()
		out["y"].Close()
	}
	var wg sync.WaitGroup
	var matched atomic.Int64
	errs := make(chan error, workers*runs)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range runs {
				out, err := m.Run(ctx, "serving_default", map[string]any{"x": inputs[i]})
				if err != nil {
					errs <- err
					return
				}
				got, err := tfgo.Float32s(out["y"])
				shape := out["y"].Shape()
				out["y"].Close()
				if err != nil {
					errs <- fmt.Errorf("worker %d: %v", i, err)
					return
				}
				// The same bits as the sequential run.
				if !testutil.AllCloseShape(t, fmt.Sprintf("worker %d", i), wantShape[i], want[i], shape, got, 0, 0) {
					return
				}
				matched.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.Equal(t, int64(workers*runs), matched.Load(), "concurrent runs that completed and matched")
}
