package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

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
// sees is complete. Then the latest version loads and runs, and old
// versions are retired.
func TestServingLayout(t *testing.T) {
	b := newBlock(t)
	base := filepath.Join(t.TempDir(), "models", "block")
	const versions = 12

	var stop atomic.Bool
	var scans, sightings atomic.Int64
	var mu sync.Mutex
	var bad []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			seen, incomplete := scanVersions(base)
			scans.Add(1)
			sightings.Add(int64(len(seen)))
			if len(incomplete) > 0 {
				mu.Lock()
				bad = append(bad, incomplete...)
				mu.Unlock()
			}
		}
	}()
	for v := int64(1); v <= versions; v++ {
		dir, err := ExportVersion(base, v, b.s.Graph(), b.sess, b.signatures(), ExportOptions{})
		require.NoError(t, err)
		require.Equal(t, filepath.Join(base, strconv.FormatInt(v, 10)), dir)
		// Each version has other weights, as after more training.
		_, err = b.sess.Run(nil, nil, b.train)
		require.NoError(t, err)
	}
	stop.Store(true)
	<-done
	require.Empty(t, bad, "a scanner saw incomplete versions")
	require.Greater(t, sightings.Load(), int64(0))
	t.Logf("%d versions published; the scanner made %d scans, saw %d version directories, none incomplete",
		versions, scans.Load(), sightings.Load())

	// Publishing an existing version is refused and changes nothing.
	_, err := ExportVersion(base, 2, b.s.Graph(), b.sess, b.signatures(), ExportOptions{})
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
	m, err := Load(dir)
	require.NoError(t, err)
	x := b.randomInput(2, 5)
	out, err := m.Run(context.Background(), "serving_default", map[string]any{"x": x})
	require.NoError(t, err)
	m.Close()
	// An update ran between the exports of versions 11 and 12.
	m11, err := Load(filepath.Join(base, "11"))
	require.NoError(t, err)
	out11, err := m11.Run(context.Background(), "serving_default", map[string]any{"x": x})
	require.NoError(t, err)
	m11.Close()
	a, _ := tfgo.Float32s(out["y"])
	c, _ := tfgo.Float32s(out11["y"])
	require.NotEqual(t, a, c, "versions hold the weights of their time")

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
// can see a version written in place (not published): it watches a
// version directory filled by WriteContents directly.
func TestScannerCatchesPartialWrites(t *testing.T) {
	b := newBlock(t)
	d, err := prepareExport(b.s.Graph(), b.sess, b.signatures(), ExportOptions{})
	require.NoError(t, err)
	base := t.TempDir()
	caught := 0
	for attempt := 0; attempt < 20 && caught == 0; attempt++ {
		dir := filepath.Join(base, strconv.Itoa(attempt))
		var stop atomic.Bool
		found := make(chan int)
		go func() {
			n := 0
			for !stop.Load() {
				if _, incomplete := scanVersions(base); len(incomplete) > 0 {
					n++
				}
			}
			found <- n
		}()
		require.NoError(t, os.Mkdir(dir, 0o755))
		require.NoError(t, savedmodel.WriteContents(dir, d))
		stop.Store(true)
		caught = <-found
	}
	require.Greater(t, caught, 0, "the scanner never saw a partial version written in place")
	t.Logf("a version written in place was seen incomplete in %d scans", caught)
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
	for i := range inputs {
		inputs[i] = b.randomInput(i+1, uint64(i))
		out, err := m.Run(ctx, "serving_default", map[string]any{"x": inputs[i]})
		require.NoError(t, err)
		want[i], _ = tfgo.Float32s(out["y"])
	}
	var wg sync.WaitGroup
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
				got, _ := tfgo.Float32s(out["y"])
				out["y"].Close()
				if fmt.Sprint(got) != fmt.Sprint(want[i]) {
					errs <- fmt.Errorf("worker %d: another result", i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
