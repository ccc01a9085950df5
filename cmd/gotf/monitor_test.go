package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotf/gotf/keraslike"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer the monitor writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fitMonitored trains a small model with keraslike's Monitor writing to
// logdir/monitor and returns the callback.
func fitMonitored(t *testing.T, logdir string) *keraslike.Monitor {
	r := rand.New(rand.NewSource(5))
	x := make([][]float32, 64)
	y := make([]int32, len(x))
	for i := range x {
		x[i] = make([]float32, 8)
		for j := range x[i] {
			x[i][j] = float32(r.NormFloat64())
		}
		y[i] = int32(r.Intn(3))
	}
	keraslike.ResetNames()
	m := keraslike.NewSequential("mon", keraslike.InputSpec{Shape: []int64{8}}, keraslike.NewDense(3, keraslike.DenseOptions{}))
	defer m.Close()
	require.NoError(t, m.Compile(keraslike.CompileOptions{Optimizer: keraslike.NewSGD(keraslike.SGDOptions{}), Loss: keraslike.SparseCategoricalCrossentropy{FromLogits: true}}))
	mon := &keraslike.Monitor{LogDir: filepath.Join(logdir, "monitor"), BatchSize: 16, TokensPerExample: 8}
	_, err := m.Fit(context.Background(), &keraslike.ArrayDataset[[]float32, int32]{X: x, Y: y, BatchSize: 16}, keraslike.FitOptions{Callbacks: []keraslike.Callback{mon}})
	require.NoError(t, err)
	require.NoError(t, mon.Err)
	return mon
}

// gotf monitor prints a line per interval with the host's figures and the
// latest step of a training run's log directory, whose values are the
// ones the run's Monitor callback took (as float32, TensorBoard's).
func TestMonitorLinesAtTheInterval(t *testing.T) {
	logdir := t.TempDir()
	mon := fitMonitored(t, logdir)

	start := time.Now()
	out := mustGotf(t, "monitor", "--lms", "100", "--count", "3", "--logdir", logdir)
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, 300*time.Millisecond, "3 lines at 100ms")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3, out)
	var stamps []time.Time
	for _, l := range lines {
		assert.Regexp(t, `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  cpu +\d+\.\d%  mem \d+\.\d/\d+\.\d GiB  \| monitor step 4: `, l)
		assert.Contains(t, l, " step_time_s "+strconv.FormatFloat(float64(float32(mon.Last.StepSeconds)), 'g', 5, 64))
		assert.NotContains(t, l, "gpu", "no NVML here")
		ts, err := time.ParseInLocation("2006-01-02 15:04:05.000", l[:23], time.Local)
		require.NoError(t, err)
		stamps = append(stamps, ts)
	}
	for i := 1; i < len(stamps); i++ {
		d := stamps[i].Sub(stamps[i-1])
		assert.InDelta(t, 100, float64(d.Milliseconds()), 60, "line %d came %v after the previous", i+1, d)
	}

	// CSV: a header, then rows with the run's figures exactly.
	csvOut := mustGotf(t, "monitor", "--lms", "100", "--count", "2", "--format", "csv", "--logdir", logdir)
	rows, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 3)
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	assert.Equal(t, 0, col["timestamp"])
	for _, row := range rows[1:] {
		_, err := time.Parse(time.RFC3339Nano, row[0])
		require.NoError(t, err)
		assert.Equal(t, "4", row[col["monitor/step"]])
		names, vals := mon.Last.Figures()
		for i, n := range names {
			got, err := strconv.ParseFloat(row[col["monitor/"+n]], 64)
			require.NoError(t, err, n)
			assert.Equal(t, float64(float32(vals[i])), got, n)
		}
		cpu, err := strconv.ParseFloat(row[col["cpu_pct"]], 64)
		require.NoError(t, err)
		assert.True(t, cpu >= 0 && cpu <= 100, "cpu %v", cpu)
		used, _ := strconv.ParseFloat(row[col["mem_used_mib"]], 64)
		total, _ := strconv.ParseFloat(row[col["mem_total_mib"]], 64)
		assert.True(t, used > 0 && used < total, "mem %v of %v", used, total)
	}
}

// gotf monitor runs until SIGINT or SIGTERM and then ends normally.
func TestMonitorStopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		var out, errs syncBuffer
		done := make(chan int)
		go func() { done <- execute([]string{"monitor", "--lms", "100"}, &out, &errs) }()
		require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") >= 2 }, 10*time.Second, 20*time.Millisecond)
		require.NoError(t, syscall.Kill(os.Getpid(), sig))
		select {
		case code := <-done:
			assert.Equal(t, 0, code, "%s: %s", sig, errs.String())
		case <-time.After(5 * time.Second):
			t.Fatalf("gotf monitor still running 5s after %s", sig)
		}
		n := strings.Count(out.String(), "\n")
		time.Sleep(250 * time.Millisecond)
		assert.Equal(t, n, strings.Count(out.String(), "\n"), "lines after %s", sig)
		assert.Empty(t, errs.String())
	}
}

// Bad input to monitor: one line on stderr, the exit codes of the others.
func TestMonitorBadInput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.MkdirAll(bad, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bad, "events.out.tfevents.1.h.1.v2"), bytes.Repeat([]byte{0xff}, 64), 0o644))
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"monitor", "--logdir", filepath.Join(dir, "nope")}, exitNotFound, "no such file or directory"},
		{[]string{"monitor", "--logdir", file}, exitFailure, "not a directory"},
		{[]string{"monitor", "--logdir", bad}, exitFailure, "events.out.tfevents.1.h.1.v2"},
		{[]string{"monitor", "-l", "0"}, exitUsage, "positive"},
		{[]string{"monitor", "-l", "x"}, exitUsage, "invalid argument"},
		{[]string{"monitor", "--format", "json"}, exitUsage, "want text or csv"},
		{[]string{"monitor", "extra"}, exitUsage, "no arguments"},
	}
	for _, c := range cases {
		name := strings.Join(c.args, " ")
		out, errs, code := gotf(t, c.args...)
		assert.Equal(t, c.code, code, "%s: %s", name, errs)
		assert.Empty(t, out, name)
		lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
		if assert.Len(t, lines, 1, "%s: %q", name, errs) {
			assert.True(t, strings.HasPrefix(lines[0], "gotf monitor: "), "%s: %s", name, lines[0])
			assert.Contains(t, lines[0], c.msg, name)
		}
	}
}

// The scalars TensorFlow 2 writes (tf.summary.write, which tf.summary.scalar
// calls: tensors, not simple_value) read as well: each run's latest step,
// with its values.
func TestMonitorReadsTensorFlowSummaries(t *testing.T) {
	logdir := t.TempDir()
	py := python(t, `
import json
d = inputs["dir"].item().decode()
vals = {}
for run in ("train", "validation"):
    w = tf.summary.create_file_writer(d + "/" + run)
    with w.as_default():
        for step in range(3):
            v = np.float32(1.0 / (step + 1) + len(run))
            tf.summary.write("epoch_loss", tf.constant(v), step=step)
            vals[run] = float(v)
    w.close()
outputs["vals"] = json.dumps(vals)
`, map[string]string{"dir": logdir})
	var want map[string]float64
	pyJSON(t, py["vals"], &want)
	out := mustGotf(t, "monitor", "--lms", "50", "--count", "1", "--format", "csv", "--logdir", logdir)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 2)
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for run, v := range want {
		require.Contains(t, col, run+"/epoch_loss")
		assert.Equal(t, "2", rows[1][col[run+"/step"]], run)
		got, err := strconv.ParseFloat(rows[1][col[run+"/epoch_loss"]], 64)
		require.NoError(t, err)
		assert.Equal(t, float64(float32(v)), got, run)
	}
}
