package keraslike

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The resume tests train a model whose every step depends on more than the
// weights: Dropout (its seed generator's state decides the masks), Adam
// (slots and the iteration counter) and a dataset shuffled per epoch.
const (
	resumeExamples = 64
	resumeBatch    = 8 // 8 batches per epoch
	resumeEpochs   = 3 // n = 24 steps
)

// resumeSetup is everything a run needs that does not change between
// processes: initial weights and data from fixed seeds.
type resumeSetup struct {
	w    []*tfgo.Tensor
	x    [][]float32
	y    []int32
	seed int64
	// accumulation is CompileOptions.AccumulationSteps.
	accumulation int
}

func newResumeSetup(t *testing.T) *resumeSetup {
	r := rand.New(rand.NewSource(21))
	w := []*tfgo.Tensor{randTensor(t, r, 8, 16), randTensor(t, r, 16), randTensor(t, r, 16, 4), randTensor(t, r, 4)}
	x, y := mlpData(r, resumeExamples)
	return &resumeSetup{w: w, x: x, y: y, seed: 11}
}

// model builds a new model, as a restarted program would: a new graph and
// session, built and compiled the same way.
func (s *resumeSetup) model(t *testing.T) *Model {
	t.Helper()
	ResetNames()
	seed := int64(7)
	m := NewSequential("resume", InputSpec{Shape: []int64{8}},
		NewDense(16, DenseOptions{Activation: "relu", KernelInitializer: tfgo.InitialValue(s.w[0]), BiasInitializer: tfgo.InitialValue(s.w[1])}),
		NewDropout(0.5, DropoutOptions{Seed: &seed}),
		NewDense(4, DenseOptions{KernelInitializer: tfgo.InitialValue(s.w[2]), BiasInitializer: tfgo.InitialValue(s.w[3])}),
	)
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}}),
		Loss: SparseCategoricalCrossentropy{FromLogits: true}, AccumulationSteps: s.accumulation}))
	return m
}

func (s *resumeSetup) data() *ArrayDataset[[]float32, int32] {
	return &ArrayDataset[[]float32, int32]{X: s.x, Y: s.y, BatchSize: resumeBatch, Shuffle: true, Seed: s.seed}
}

// trainingState is every variable of m's graph (weights, optimizer slots
// and iteration, seed generator states) as raw bytes, by backup key.
func trainingState(t *testing.T, m *Model) map[string][]byte {
	t.Helper()
	keys, vars, err := m.backupVars()
	require.NoError(t, err)
	sess, err := m.Session()
	require.NoError(t, err)
	outs := make([]tfgo.Output, len(vars))
	for i, v := range vars {
		outs[i] = v.Value()
	}
	ts, err := sess.Run(nil, outs)
	require.NoError(t, err)
	st := map[string][]byte{}
	for i, tn := range ts {
		st[keys[i]] = append([]byte{}, tn.Data()...)
		tn.Close()
	}
	return st
}

// requireSameState requires bit-identical states, naming the first
// variable that differs.
func requireSameState(t *testing.T, want, got map[string][]byte) {
	t.Helper()
	require.Equal(t, len(want), len(got), "number of variables")
	for k, w := range want {
		g, ok := got[k]
		require.True(t, ok, "variable %s missing", k)
		require.Equal(t, w, g, "variable %s differs", k)
	}
}

func sameState(want, got map[string][]byte) bool {
	if len(want) != len(got) {
		return false
	}
	for k, w := range want {
		if string(got[k]) != string(w) {
			return false
		}
	}
	return true
}

// stopAfter cancels Fit's context once `steps` batches have run in this
// Fit: an interruption that, unlike StopTraining, ends Fit without its
// epoch and train ends, as a crash would.
type stopAfter struct {
	NopCallback
	steps  int
	cancel context.CancelFunc
	ran    int
	start  FitPosition
}

func (s *stopAfter) OnTrainBegin(_ *Model, i FitInfo) { s.start = i.Start }
func (s *stopAfter) OnBatchEnd(*Model, int, Logs) {
	s.ran++
	if s.steps > 0 && s.ran == s.steps {
		s.cancel()
	}
}

// uninterrupted trains a fresh model for all the steps and returns its state.
func (s *resumeSetup) uninterrupted(t *testing.T) map[string][]byte {
	t.Helper()
	m := s.model(t)
	defer m.Close()
	_, err := m.Fit(context.Background(), s.data(), FitOptions{Epochs: resumeEpochs})
	require.NoError(t, err)
	return trainingState(t, m)
}

// interrupt trains a fresh model with the callback bk and cancels it after
// k steps, as a crash would end it.
func (s *resumeSetup) interrupt(t *testing.T, bk *BackupAndRestore, k int) {
	t.Helper()
	m := s.model(t)
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := m.Fit(ctx, s.data(), FitOptions{Epochs: resumeEpochs, Callbacks: []Callback{bk, &stopAfter{steps: k, cancel: cancel}}})
	require.ErrorIs(t, err, context.Canceled)
}

// resume trains a fresh model with bk to the end and returns its state,
// where it started, how many steps it ran and its history.
func (s *resumeSetup) resume(t *testing.T, bk *BackupAndRestore, data Dataset) (map[string][]byte, *stopAfter, *History) {
	t.Helper()
	m := s.model(t)
	defer m.Close()
	count := &stopAfter{}
	hist, err := m.Fit(context.Background(), data, FitOptions{Epochs: resumeEpochs, Callbacks: []Callback{bk, count}})
	require.NoError(t, err)
	return trainingState(t, m), count, hist
}

// batchesOnly hides ArrayDataset's BatchesFrom: Fit must skip by taking
// and dropping batches.
type batchesOnly struct {
	d *ArrayDataset[[]float32, int32]
}

func (b batchesOnly) Batches(epoch int, fn func(Batch) bool) error { return b.d.Batches(epoch, fn) }
func (b batchesOnly) Len() int                                     { return b.d.Len() }

// A run interrupted after k steps and resumed by a new model (a new graph
// and session) from its backup ends with the state of an uninterrupted
// run, bit for bit: weights, Adam's slots and iteration counter, Dropout's
// seed generator state. The resumed run starts at the backup's position
// and runs only the remaining steps; with SaveFreq that position is inside
// an epoch, whose done batches are skipped (with and without
// BatchesFrom). Restoring the same backup without the seed generator's
// state (LoadCheckpoint: weights and optimizer) ends elsewhere, so Dropout
// makes the check sensitive to the RNG state; and without the backup the
// run starts over.
func TestBackupAndRestoreResumesExactly(t *testing.T) {
	s := newResumeSetup(t)
	want := s.uninterrupted(t)
	const n = resumeEpochs * resumeExamples / resumeBatch
	cases := []struct {
		name      string
		saveFreq  int
		k         int         // steps before the interruption
		start     FitPosition // where the backup resumes
		skipBatch bool        // resume through batchesOnly
	}{
		{"epoch", 0, 13, FitPosition{Epoch: 1}, false},
		{"every_3_batches", 3, 13, FitPosition{Epoch: 1, Batch: 4}, false},
		{"every_3_batches_no_BatchesFrom", 3, 13, FitPosition{Epoch: 1, Batch: 4}, true},
		{"every_5_batches", 5, 17, FitPosition{Epoch: 1, Batch: 7}, false},
		{"every_8_batches_at_epoch_end", 8, 17, FitPosition{Epoch: 2}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "backup")
			s.interrupt(t, &BackupAndRestore{BackupDir: dir, SaveFreq: c.saveFreq}, c.k)
			_, err := os.Stat(filepath.Join(dir, "checkpoint"))
			require.NoError(t, err, "the interrupted run left a backup")

			var data Dataset = s.data()
			if c.skipBatch {
				data = batchesOnly{s.data()}
			}
			got, count, hist := s.resume(t, &BackupAndRestore{BackupDir: dir, SaveFreq: c.saveFreq}, data)
			assert.Equal(t, c.start, count.start, "resumed position")
			done := c.start.Epoch*resumeExamples/resumeBatch + c.start.Batch
			assert.Equal(t, n-done, count.ran, "steps run after resuming")
			assert.Len(t, hist.Epochs, resumeEpochs-c.start.Epoch)
			requireSameState(t, want, got)
			_, err = os.Stat(dir)
			assert.True(t, errors.Is(err, os.ErrNotExist), "the backup is deleted at the end: %v", err)
		})
	}

	// Backups every 3 batches with updates every 2: half of them are
	// taken between the two micro-batches of an update, and hold the
	// gradient sums (graph variables too).
	t.Run("gradient_accumulation", func(t *testing.T) {
		acc := *s
		acc.accumulation = 2
		want := acc.uninterrupted(t)
		dir := filepath.Join(t.TempDir(), "backup")
		acc.interrupt(t, &BackupAndRestore{BackupDir: dir, SaveFreq: 3}, 10) // the last backup: after 9 batches
		got, count, _ := acc.resume(t, &BackupAndRestore{BackupDir: dir, SaveFreq: 3}, acc.data())
		assert.Equal(t, FitPosition{Epoch: 1, Batch: 1}, count.start)
		requireSameState(t, want, got)
		assert.Equal(t, want["adam/iteration"], binary.LittleEndian.AppendUint64(nil, n/2), "one update per two batches")
	})

	t.Run("rng_state_matters", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "backup")
		s.interrupt(t, &BackupAndRestore{BackupDir: dir}, 13)
		latest := filepath.Join(dir, "ckpt-0")
		m := s.model(t)
		defer m.Close()
		require.NoError(t, m.LoadCheckpoint(latest), "a backup is a checkpoint LoadCheckpoint reads")
		_, err := m.Fit(context.Background(), s.data(), FitOptions{Epochs: resumeEpochs, InitialEpoch: 1})
		require.NoError(t, err)
		got := trainingState(t, m)
		assert.False(t, sameState(want, got), "resuming without the seed generator's state must change the result")
	})

	t.Run("no_backup_starts_over", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "backup")
		s.interrupt(t, &BackupAndRestore{BackupDir: dir, SaveFreq: 3}, 13)
		require.NoError(t, os.RemoveAll(dir))
		got, count, _ := s.resume(t, &BackupAndRestore{BackupDir: dir, SaveFreq: 3}, s.data())
		assert.Equal(t, FitPosition{}, count.start)
		assert.Equal(t, n, count.ran, "every step runs again")
		requireSameState(t, want, got)
	})
}

// sabotage puts a file where the backup directory is, after the first batch.
type sabotage struct {
	NopCallback
	dir string
}

func (s sabotage) OnBatchEnd(_ *Model, b int, _ Logs) {
	if b == 0 {
		os.RemoveAll(s.dir)
		os.WriteFile(s.dir, nil, 0o644)
	}
}

// Bad arguments, a backup of another model and a backup that cannot be
// written are errors naming the problem; none trains on silently.
func TestBackupAndRestoreErrors(t *testing.T) {
	s := newResumeSetup(t)
	m := s.model(t)
	defer m.Close()
	fit := func(bk *BackupAndRestore) (*stopAfter, error) {
		count := &stopAfter{}
		_, err := m.Fit(context.Background(), s.data(), FitOptions{Epochs: 1, Callbacks: []Callback{bk, count}})
		return count, err
	}
	_, err := fit(&BackupAndRestore{})
	require.ErrorContains(t, err, "empty BackupDir")
	_, err = fit(&BackupAndRestore{BackupDir: t.TempDir(), SaveFreq: -1})
	require.ErrorContains(t, err, "SaveFreq")

	// A file where the directory should be: an error before any step.
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	count, err := fit(&BackupAndRestore{BackupDir: file, SaveFreq: 2})
	require.ErrorContains(t, err, file)
	assert.Zero(t, count.ran)

	// The directory replaced by a file during the run: the first backup
	// fails, Fit stops after that batch and returns the error.
	dir := filepath.Join(t.TempDir(), "backup")
	count = &stopAfter{}
	_, err = m.Fit(context.Background(), s.data(), FitOptions{Epochs: 1, Callbacks: []Callback{
		sabotage{dir: dir}, &BackupAndRestore{BackupDir: dir, SaveFreq: 2}, count}})
	require.ErrorContains(t, err, dir)
	assert.Equal(t, 2, count.ran, "stopped after the batch whose backup failed")

	// A backup of a model with other layers names the variable.
	dir = filepath.Join(t.TempDir(), "backup")
	ResetNames()
	other := NewSequential("resume", InputSpec{Shape: []int64{8}}, NewDense(16, DenseOptions{}), NewDense(4, DenseOptions{}))
	defer other.Close()
	require.NoError(t, other.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
	_, err = other.Fit(context.Background(), s.data(), FitOptions{Epochs: 1, Callbacks: []Callback{&BackupAndRestore{BackupDir: dir, KeepCheckpoint: true}}})
	require.NoError(t, err)
	count, err = fit(&BackupAndRestore{BackupDir: dir})
	require.ErrorContains(t, err, "ckpt-0")
	require.ErrorContains(t, err, "seed_generator_state")
	assert.Zero(t, count.ran)
}

// corrupt flips bytes in the middle of the bundle's data file, which its
// checksums catch on reading.
func corrupt(t *testing.T, prefix string) {
	t.Helper()
	path := prefix + ".data-00000-of-00001"
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for i := len(b) / 3; i < len(b)/3+16; i++ {
		b[i] ^= 0xff
	}
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// A corrupt latest backup is an error naming it, before any step; with
// DoubleCheckpoint the previous backup is restored instead, and the run
// still ends bit-identical (it redoes the steps since that backup). Either
// way the result depends on what the backup holds, not on a fresh start.
func TestBackupAndRestoreCorruptBackup(t *testing.T) {
	s := newResumeSetup(t)
	want := s.uninterrupted(t)

	t.Run("single", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "backup")
		s.interrupt(t, &BackupAndRestore{BackupDir: dir, SaveFreq: 3}, 13)
		corrupt(t, filepath.Join(dir, "ckpt-3"))
		m := s.model(t)
		defer m.Close()
		count := &stopAfter{}
		_, err := m.Fit(context.Background(), s.data(), FitOptions{Epochs: resumeEpochs,
			Callbacks: []Callback{&BackupAndRestore{BackupDir: dir, SaveFreq: 3}, count}})
		require.Error(t, err)
		assert.ErrorContains(t, err, "ckpt-3")
		assert.ErrorContains(t, err, "corrupt")
		assert.Zero(t, count.ran, "no step runs")
	})

	t.Run("double", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "backup")
		s.interrupt(t, &BackupAndRestore{BackupDir: dir, SaveFreq: 3, DoubleCheckpoint: true}, 13)
		for _, p := range []string{"ckpt-2", "ckpt-3"} {
			_, err := os.Stat(filepath.Join(dir, p+".index"))
			require.NoError(t, err, "DoubleCheckpoint keeps the latest two backups")
		}
		_, err := os.Stat(filepath.Join(dir, "ckpt-1.index"))
		require.True(t, errors.Is(err, os.ErrNotExist), "older backups are deleted")
		corrupt(t, filepath.Join(dir, "ckpt-3"))
		got, count, _ := s.resume(t, &BackupAndRestore{BackupDir: dir, SaveFreq: 3, DoubleCheckpoint: true, KeepCheckpoint: true}, s.data())
		assert.Equal(t, FitPosition{Epoch: 1, Batch: 1}, count.start, "the previous backup, after 9 steps")
		assert.Equal(t, 24-9, count.ran)
		requireSameState(t, want, got)
		names, err := filepath.Glob(filepath.Join(dir, "*"))
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"checkpoint", "ckpt-7.index", "ckpt-7.data-00000-of-00001", "ckpt-8.index", "ckpt-8.data-00000-of-00001"},
			baseNames(names), "KeepCheckpoint keeps the last two; the corrupt one went with the first new backup")
	})
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// The kill test re-executes the test binary: with backupChildEnv set to a
// backup directory, TestBackupAndRestoreSurvivesKill trains as a restarted
// program would (a new process, model and session, BackupAndRestore every
// 3 batches), reports "START <epoch> <batch>" and "STEP <epoch> <batch>"
// on stdout, and at the end writes its training state to
// backupResultEnv's file and says "DONE". With backupHookEnv "<stage>:<n>"
// it says "HOOK" at that stage of its n-th backup ("writing": half-way
// through the tensors; "written": the bundle complete, not yet the latest)
// and waits on stdin, where the parent kills it.
const (
	backupChildEnv  = "GOTF_KERASLIKE_BACKUP_DIR"
	backupResultEnv = "GOTF_KERASLIKE_BACKUP_RESULT"
	backupHookEnv   = "GOTF_KERASLIKE_BACKUP_HOOK"
)

// progress reports Fit's position on stdout, slowly enough (2 ms a step)
// that a kill lands in the middle of the run.
type progress struct{ NopCallback }

func (progress) OnTrainBegin(_ *Model, i FitInfo) {
	fmt.Printf("START %d %d\n", i.Start.Epoch, i.Start.Batch)
}
func (progress) OnEpochBegin(_ *Model, e int) { progressEpoch = e }
func (progress) OnBatchEnd(_ *Model, b int, _ Logs) {
	fmt.Printf("STEP %d %d\n", progressEpoch, b+1)
	time.Sleep(2 * time.Millisecond)
}

var progressEpoch int

func backupChild(t *testing.T, dir string) {
	s := newResumeSetup(t)
	bk := &BackupAndRestore{BackupDir: dir, SaveFreq: 3}
	if h := os.Getenv(backupHookEnv); h != "" {
		var stage string
		var n, saves int
		_, err := fmt.Sscanf(strings.Replace(h, ":", " ", 1), "%s %d", &stage, &n)
		require.NoError(t, err, "hook %q", h)
		bk.hook = func(at string) {
			if at == "writing" {
				saves++
			}
			if at == stage && saves == n {
				fmt.Println("HOOK " + at)
				bufio.NewReader(os.Stdin).ReadString('\n')
				fmt.Println("ABANDONED") // the parent is gone
				os.Exit(3)
			}
		}
	}
	m := s.model(t)
	defer m.Close()
	_, err := m.Fit(context.Background(), s.data(), FitOptions{Epochs: resumeEpochs, Callbacks: []Callback{bk, progress{}}})
	require.NoError(t, err)
	f, err := os.Create(os.Getenv(backupResultEnv))
	require.NoError(t, err)
	require.NoError(t, gob.NewEncoder(f).Encode(trainingState(t, m)))
	require.NoError(t, f.Close())
	fmt.Println("DONE")
}

// backupProc is a child's run: where it started, the steps it reported,
// whether it said DONE, and its last line.
type backupProc struct {
	start, steps int // start in steps from the beginning
	done         bool
	last         string
}

// runBackupChild runs a child on dir; it kills it (SIGKILL) once stop
// returns true for a line of its output, else waits for it to finish.
func runBackupChild(t *testing.T, dir, result, hook string, stop func(line string, p *backupProc) bool) *backupProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBackupAndRestoreSurvivesKill$")
	cmd.Env = append(os.Environ(), backupChildEnv+"="+dir, backupResultEnv+"="+result, backupHookEnv+"="+hook)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
		}
	}()
	p := &backupProc{start: -1}
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		line := lines.Text()
		p.last = line
		var e, b int
		if _, err := fmt.Sscanf(line, "START %d %d", &e, &b); err == nil {
			p.start = e*resumeExamples/resumeBatch + b
		}
		if strings.HasPrefix(line, "STEP ") {
			p.steps++
		}
		p.done = p.done || line == "DONE"
		if stop != nil && stop(line, p) {
			require.NoError(t, cmd.Process.Kill())
			killed = true
			break
		}
	}
	err = cmd.Wait()
	if killed {
		require.ErrorContains(t, err, "killed")
	} else {
		require.NoError(t, err, "child ended with %q", p.last)
		killed = true
	}
	return p
}

func readState(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var st map[string][]byte
	require.NoError(t, gob.NewDecoder(f).Decode(&st))
	return st
}

// A training process SIGKILLed at any point (between steps, half-way
// through writing a backup, after a backup's bundle is complete but before
// it is the latest) and started again resumes from the latest complete
// backup and ends with the state of a process that ran uninterrupted, bit
// for bit.
func TestBackupAndRestoreSurvivesKill(t *testing.T) {
	if dir := os.Getenv(backupChildEnv); dir != "" {
		backupChild(t, dir)
		return
	}
	tmp := t.TempDir()
	const n = resumeEpochs * resumeExamples / resumeBatch
	whole := runBackupChild(t, filepath.Join(tmp, "whole"), filepath.Join(tmp, "whole.gob"), "", nil)
	require.Equal(t, 0, whole.start)
	require.Equal(t, n, whole.steps)
	require.True(t, whole.done)
	want := readState(t, filepath.Join(tmp, "whole.gob"))

	dir, result := filepath.Join(tmp, "backup"), filepath.Join(tmp, "resumed.gob")
	// 1. Killed between steps, after at least 7 (backups every 3).
	p1 := runBackupChild(t, dir, result, "", func(line string, p *backupProc) bool { return p.steps >= 7 })
	require.Equal(t, 0, p1.start)
	// 2. Killed half-way through writing its second backup: the temporary
	// files show the kill landed there.
	p2 := runBackupChild(t, dir, result, "writing:2", func(line string, _ *backupProc) bool { return line == "HOOK writing" })
	require.GreaterOrEqual(t, p2.start, 6, "resumed from the first child's backups")
	require.Equal(t, 5, p2.steps, "killed in the backup after its sixth step; the fifth was reported")
	torn, err := filepath.Glob(filepath.Join(dir, "*.tempstate*"))
	require.NoError(t, err)
	require.NotEmpty(t, torn, "the kill left a torn backup")
	// 3. Killed once its first backup is complete but not the latest.
	p3 := runBackupChild(t, dir, result, "written:1", func(line string, _ *backupProc) bool { return line == "HOOK written" })
	require.Equal(t, p2.start+3, p3.start, "resumed from the second child's first backup, not its torn second")
	// 4. Runs to the end from the third child's start: its complete
	// backup was never made the latest.
	p4 := runBackupChild(t, dir, result, "", nil)
	require.True(t, p4.done, "the last child finished")
	require.Equal(t, p3.start, p4.start)
	require.Equal(t, n-p4.start, p4.steps)
	requireSameState(t, want, readState(t, result))
	_, err = os.Stat(dir)
	require.True(t, errors.Is(err, os.ErrNotExist), "the backup is deleted at the end: %v", err)
}

// pyContinue is the Python half of the Go -> Python -> Go resume: it builds
// the Keras twin of resumeSetup.model, restores Go's backup into it by
// name (weights and Adam's variables by their Keras paths, the Dropout
// layer's seed generator state by Go's key; Keras' learning_rate variable
// is not in Go's backup and keeps the value both sides are built with),
// trains on the batches Go would have run next (train_on_batch) and writes
// the state back as the next backup in the same directory (a name-keyed
// checkpoint through SaveV2, the position advanced, the state file
// pointing at it), outputting the values it wrote.
const pyContinue = `
import os
import keras
keras.backend.clear_session()
d = inputs["dir"].item().decode()
latest = tf.train.latest_checkpoint(d)
r = tf.train.load_checkpoint(latest)
keys = sorted(n for n, _ in tf.train.list_variables(latest))
m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
    keras.layers.Dropout(0.5, seed=7), keras.layers.Dense(4)], name="resume")
opt = keras.optimizers.Adam(learning_rate=0.01)
m.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
opt.build(m.trainable_variables)
by_key = {v.path: v for v in m.weights + opt.variables}
seed_key = [k for k in keys if k.endswith("/seed_generator_state")]
assert len(seed_key) == 1, keys
by_key[seed_key[0]] = m.layers[1].seed_generator.state
meta = {"_training_metadata/epoch", "_training_metadata/step_in_epoch"}
missing = [k for k in keys if k not in by_key and k not in meta]
assert not missing, missing
for k in keys:
    if k not in meta:
        by_key[k].assign(r.get_tensor(k))
x, y = inputs["x"], inputs["y"]
for i in range(x.shape[0]):
    m.train_on_batch(x[i], y[i])
values = {k: by_key[k].numpy() for k in keys if k not in meta}
values["_training_metadata/epoch"] = np.array(inputs["epoch"].item(), np.int64)
values["_training_metadata/step_in_epoch"] = np.array(inputs["step"].item(), np.int64)
prefix = os.path.join(d, "ckpt-100")
tf.raw_ops.SaveV2(prefix=prefix, tensor_names=keys, shape_and_slices=[""] * len(keys),
    tensors=[tf.constant(values[k]) for k in keys])
tf.compat.v1.train.update_checkpoint_state(d, prefix)
outputs["keys"] = np.array([k.encode() for k in keys], dtype=object)
for i, k in enumerate(keys):
    outputs["v%02d" % i] = values[k]
`

// compareStates requires got to equal want within tol for float32
// variables and exactly for the others (counters, seed states), and
// reports how many float elements differ in their bits and the largest
// differences.
func compareStates(t *testing.T, what string, want, got map[string][]byte, tol testutil.Tol) {
	t.Helper()
	require.Equal(t, len(want), len(got), "%s: number of variables", what)
	var differ, total int
	var maxAbs, maxRel float64
	for k, w := range want {
		g := got[k]
		require.Len(t, g, len(w), "%s: %s", what, k)
		if strings.HasSuffix(k, "iteration") || strings.HasSuffix(k, "seed_generator_state") {
			require.Equal(t, w, g, "%s: %s must be equal", what, k)
			continue
		}
		wf, gf := make([]float32, len(w)/4), make([]float32, len(g)/4)
		for i := range wf {
			wf[i] = math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:]))
			gf[i] = math.Float32frombits(binary.LittleEndian.Uint32(g[4*i:]))
			total++
			if wf[i] != gf[i] {
				differ++
				d := math.Abs(float64(wf[i]) - float64(gf[i]))
				maxAbs = max(maxAbs, d)
				maxRel = max(maxRel, d/math.Abs(float64(wf[i])))
			}
		}
		testutil.AllCloseTol(t, what+": "+k, wf, gf, tol)
	}
	t.Logf("%s: %d of %d float elements differ in their bits; max |diff| %.3g, max relative %.3g", what, differ, total, maxAbs, maxRel)
}

// Go -> Python -> Go: Go trains 12 steps and is interrupted; Keras restores
// Go's backup (weights, Adam's slots and iteration, Dropout's seed state),
// trains the next 6 steps on the batches Go would have run, and writes the
// state back as a backup; Go resumes from it and finishes. Keras' steps
// end where Go's own would (counters and seed state exactly, floats within
// tolerance), and so does the whole run. See the package's resume notes
// (BackupAndRestore) for what cannot be carried across.
//
// Tolerance: the same float32 kernels on the same inputs and masks; the
// order of a few reductions differs between Keras' traced step and Go's
// graph (see TestOptimizerStepsMatchKeras), and 6 to 12 Adam steps carry
// such ulps forward: rtol 1e-5 with atol 1e-7 for elements near zero.
func TestBackupAndRestoreThroughPython(t *testing.T) {
	s := newResumeSetup(t)
	want := s.uninterrupted(t)
	const pyFrom, pyTo = 12, 18 // steps
	perEpoch := resumeExamples / resumeBatch

	// Go's own state after pyTo steps, to compare Keras' steps with.
	m := s.model(t)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := m.Fit(ctx, s.data(), FitOptions{Epochs: resumeEpochs, Callbacks: []Callback{&stopAfter{steps: pyTo, cancel: cancel}}})
	require.ErrorIs(t, err, context.Canceled)
	goAt18 := trainingState(t, m)
	m.Close()

	dir := filepath.Join(t.TempDir(), "backup")
	s.interrupt(t, &BackupAndRestore{BackupDir: dir, SaveFreq: 3}, pyFrom+1) // the last backup: after step 12

	// The batches of steps 13..18, as the dataset yields them.
	var xs [][][]float32
	var ys [][]int32
	data := s.data()
	for e := pyFrom / perEpoch; len(xs) < pyTo-pyFrom; e++ {
		first := 0
		if e == pyFrom/perEpoch {
			first = pyFrom % perEpoch
		}
		require.NoError(t, data.BatchesFrom(e, first, func(bt Batch) bool {
			xs, ys = append(xs, bt.X.([][]float32)), append(ys, bt.Y.([]int32))
			return len(xs) < pyTo-pyFrom
		}))
	}
	in := map[string]*tfgo.Tensor{}
	for k, v := range map[string]any{"x": xs, "y": ys, "epoch": int64(pyTo / perEpoch), "step": int64(pyTo % perEpoch)} {
		in[k], err = tfgo.NewTensor(v)
		require.NoError(t, err)
	}
	in["dir"], err = tfgo.NewStringTensor(nil, [][]byte{[]byte(dir)})
	require.NoError(t, err)
	ref := interop.Python(t, pyContinue, in)
	names, err := ref["keys"].Strings()
	require.NoError(t, err)
	pyAt18 := map[string][]byte{}
	for i, k := range names {
		if !strings.HasPrefix(string(k), "_training_metadata/") {
			pyAt18[string(k)] = append([]byte{}, ref[fmt.Sprintf("v%02d", i)].Data()...)
		}
	}
	tol := testutil.Tol{Rtol: 1e-5, Atol: 1e-7}
	compareStates(t, "Keras' 6 steps vs Go's", goAt18, pyAt18, tol)

	got, count, _ := s.resume(t, &BackupAndRestore{BackupDir: dir, SaveFreq: 3}, s.data())
	require.Equal(t, FitPosition{Epoch: pyTo / perEpoch, Batch: pyTo % perEpoch}, count.start, "Go resumed from Keras' backup")
	require.Equal(t, resumeEpochs*perEpoch-pyTo, count.ran)
	compareStates(t, "Go -> Keras -> Go vs Go alone", want, got, tol)
}
