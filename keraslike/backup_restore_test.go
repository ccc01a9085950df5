package keraslike

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

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
		Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
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
