package keraslike

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logRecorder keeps copies of the batch and epoch logs it sees.
type logRecorder struct {
	NopCallback
	batches, epochs []Logs
}

func (r *logRecorder) OnBatchEnd(_ *Model, _ int, logs Logs) {
	r.batches = append(r.batches, copyLogs(logs))
}
func (r *logRecorder) OnEpochEnd(_ *Model, _ int, logs Logs) error {
	r.epochs = append(r.epochs, copyLogs(logs))
	return nil
}

func copyLogs(l Logs) Logs {
	c := Logs{}
	for k, v := range l {
		c[k] = v
	}
	return c
}

// The Monitor's samples read back with TensorFlow's summary_iterator: one
// event per sampled step, at the Fit's step, with the figures the CSV has
// (the float32 of them) and that reach the logs of the callbacks after it.
func TestMonitorEventsCSVAndLogs(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "monitor.csv")
	mon := &Monitor{LogDir: filepath.Join(dir, "monitor"), CSVPath: csvPath, Every: 2, BatchSize: 32, TokensPerExample: 64}
	rec := &logRecorder{}
	var bar strings.Builder
	fitWithMonitor(t, 64, 2, mon, rec, &ProgressBar{W: &bar})
	require.NoError(t, mon.Err)
	assert.Equal(t, 4, mon.Samples, "2 epochs of 4 batches, batches 0 and 2 sampled")

	files, _ := filepath.Glob(filepath.Join(dir, "monitor", "events.out.tfevents.*"))
	require.Len(t, files, 1)
	path, err := tfgo.NewStringTensor(nil, [][]byte{[]byte(files[0])})
	require.NoError(t, err)
	ref := interop.Python(t, `
tags, steps, vals = [], [], []
for e in tf.compat.v1.train.summary_iterator(inputs["path"].item().decode()):
    for v in e.summary.value:
        tags.append(v.tag.encode()); steps.append(e.step); vals.append(v.simple_value)
outputs["tags"] = np.array(tags, dtype=object)
outputs["steps"] = np.array(steps, np.int64)
outputs["vals"] = np.array(vals, np.float64)
`, map[string]*tfgo.Tensor{"path": path})
	tagBytes, err := ref["tags"].Strings()
	require.NoError(t, err)
	tags, steps, vals := stringsOf(tagBytes), floats64(t, ref["steps"]), floats64(t, ref["vals"])
	events := map[float64]map[string]float64{}
	for i, tag := range tags {
		if events[steps[i]] == nil {
			events[steps[i]] = map[string]float64{}
		}
		events[steps[i]][tag] = vals[i]
	}
	assert.Len(t, events, 4)
	for _, step := range []float64{1, 3, 5, 7} {
		require.Contains(t, events, step)
	}

	// Without NVML (this machine) there are no GPU figures and no error; on
	// a GPU machine, each GPU's five figures.
	gpus := OpenGPUs("")
	nGPU := gpus.Count()
	require.NoError(t, gpus.Close())
	if nGPU == 0 {
		assert.Error(t, mon.GPUsUnavailable)
	}
	for step, figs := range events {
		for tag := range figs {
			if strings.HasPrefix(tag, "gpu") {
				assert.Positive(t, nGPU, "GPU figure %s at step %v without a GPU", tag, step)
			}
		}
		for g := 0; g < nGPU; g++ {
			assert.Contains(t, figs, "gpu"+strconv.Itoa(g)+"_mem_total_mib")
		}
		st := figs["step_time_s"]
		assert.Positive(t, st, "step %v", step)
		assert.InDelta(t, 32/st, figs["examples_per_s"], 32/st*1e-6, "step %v", step)
		assert.InDelta(t, 64*figs["examples_per_s"], figs["tokens_per_s"], figs["tokens_per_s"]*1e-6, "step %v", step)
		assert.Positive(t, figs["host_rss_mib"], "step %v", step)
		assert.Positive(t, figs["tf_step_peak_mib"], "step %v", step)
		assert.GreaterOrEqual(t, figs["tf_mem_in_use_mib"], 0.0, "step %v", step)
		assert.Greater(t, figs["host_rss_mib"], figs["tf_step_peak_mib"], "step %v", step)
	}

	// The CSV has the same rows: step, epoch, batch, wall time, figures.
	f, err := os.Open(csvPath)
	require.NoError(t, err)
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	require.NoError(t, err)
	require.Len(t, rows, 5)
	header := rows[0]
	assert.Equal(t, []string{"step", "epoch", "batch", "wall_time", "step_time_s"}, header[:5])
	wantPos := [][2]string{{"0", "0"}, {"0", "2"}, {"1", "0"}, {"1", "2"}}
	for r, row := range rows[1:] {
		step, err := strconv.ParseFloat(row[0], 64)
		require.NoError(t, err)
		assert.Equal(t, wantPos[r], [2]string{row[1], row[2]}, "row %d", r+1)
		require.Len(t, row, len(header))
		for c := 4; c < len(header); c++ {
			v, err := strconv.ParseFloat(row[c], 64)
			require.NoError(t, err, "%s of row %d", header[c], r+1)
			assert.Equal(t, float64(float32(v)), events[step][header[c]], "%s at step %v", header[c], step)
		}
		assert.Len(t, events[step], len(header)-4, "step %v", step)
	}

	// Every batch's logs carry the latest sample; the epoch's, its mean
	// step time and throughput, which the progress bar prints.
	require.Len(t, rec.batches, 8)
	for b, logs := range rec.batches {
		assert.Contains(t, logs, "loss", "batch %d", b)
		assert.Contains(t, logs, "host_rss_mib", "batch %d", b)
	}
	assert.Equal(t, float64(float32(rec.batches[3]["step_time_s"])), events[3]["step_time_s"])
	require.Len(t, rec.epochs, 2)
	for e, logs := range rec.epochs {
		assert.Positive(t, logs["step_time_s"], "epoch %d", e+1)
		assert.InDelta(t, 32/logs["step_time_s"], logs["examples_per_s"], 1e-6*logs["examples_per_s"])
	}
	assert.Contains(t, bar.String(), "step_time_s: ")
	assert.Contains(t, bar.String(), "examples_per_s: ")
}

// No NVML library is no GPU figures, not an error: training and the other
// figures go on.
func TestMonitorWithoutNVML(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libnvidia-ml.so.1")
	g := OpenGPUs(missing)
	assert.Zero(t, g.Count())
	assert.Empty(t, g.Read())
	require.Error(t, g.Unavailable)
	assert.Contains(t, g.Unavailable.Error(), missing)
	require.NoError(t, g.Close())

	mon := &Monitor{NVMLLibrary: missing, BatchSize: 32}
	fitWithMonitor(t, 16, 1, mon)
	require.NoError(t, mon.Err)
	require.Error(t, mon.GPUsUnavailable)
	assert.Equal(t, 4, mon.Samples)
	assert.Empty(t, mon.Last.GPUs)
	names, vals := mon.Last.Figures()
	for i, n := range names {
		assert.False(t, strings.HasPrefix(n, "gpu"), n)
		assert.False(t, math.IsNaN(vals[i]), n)
	}
	assert.Positive(t, mon.Last.RSSBytes)
	t.Logf("last sample: %+v (%v)", mon.Last, mon.GPUsUnavailable)
}

func TestMonitorNil(t *testing.T) {
	var mo *Monitor
	assert.Zero(t, mo.MemoryEvery())
	mo.OnTrainBegin(nil, FitInfo{})
	mo.OnEpochBegin(nil, 0)
	mo.OnStepMemory(nil, 0, 0, MemoryStats{})
	mo.OnBatchEnd(nil, 0, Logs{})
	assert.Error(t, mo.OnEpochEnd(nil, 0, nil))
	mo.OnTrainEnd(nil)
}

// A step that is not sampled reads the clock and sets the logs' entries:
// no allocation, no file, no trace.
func TestMonitorUnsampledStepAllocatesNothing(t *testing.T) {
	mo := &Monitor{Every: 1 << 30, BatchSize: 8}
	mo.OnTrainBegin(nil, FitInfo{})
	defer mo.OnTrainEnd(nil)
	mo.OnEpochBegin(nil, 0)
	logs := Logs{"loss": 1}
	mo.OnBatchEnd(nil, 0, logs) // batch 0 is a sample
	require.Equal(t, 1, mo.Samples)
	require.Contains(t, logs, "step_time_s")
	allocs := testing.AllocsPerRun(100, func() { mo.OnBatchEnd(nil, 1, logs) })
	assert.Zero(t, allocs)
	assert.Equal(t, 1, mo.Samples)
}
