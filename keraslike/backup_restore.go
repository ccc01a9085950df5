package keraslike

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
)

// The backup's training metadata, int64 scalars: the epoch to continue
// (Keras' "epoch") and the batches of it already done (Keras stores
// "batch", the index of the last batch seen, and does not use it on
// restore). Keras keeps them in training_metadata.json next to the
// weights; here they are in the bundle itself, so that the position and
// the state it belongs to are committed together.
const (
	backupEpochKey = "_training_metadata/epoch"
	backupBatchKey = "_training_metadata/step_in_epoch"
)

// BackupAndRestore backs up the whole training state during Fit and, when
// a Fit is started again after an interruption (a crash, a kill, a
// cancelled context), restores it and continues where the backup was taken
// (keras.callbacks.BackupAndRestore(backup_dir, save_freq,
// double_checkpoint, delete_checkpoint)). The model must be built and
// compiled the same way as the interrupted one, as in Keras.
//
// A backup holds every variable of the model's graph: the weights under
// their Keras paths and the optimizer's variables under their names (the
// keys SaveCheckpoint writes, so LoadCheckpoint reads a backup), and every
// other variable under its graph name (Dropout's seed_generator_state,
// gradient-accumulation sums, a loss scale when present); and the position,
// the epoch and the batches of it done. With a Dataset that yields the same
// batches for an epoch each time it is asked (ArrayDataset does), a resumed
// run continues bit for bit as the uninterrupted one would have: the same
// weights, optimizer slots and iteration counter, dropout masks and data.
//
// Keras restores only the epoch and runs a partly done epoch again from its
// first batch; here Fit skips the batches the backup covers, so that a
// backup every SaveFreq batches loses nothing.
//
// Each backup is a TensorFlow checkpoint "ckpt-<n>" in BackupDir, named by
// the directory's "checkpoint" state file (tf.train.latest_checkpoint finds
// it). A new one is written under a new name and becomes the latest only
// once complete; the previous one is deleted after that, so a crash at any
// point leaves a readable backup (a torn file at worst leaves temporary
// files, cleaned up by the next save). BackupDir is the callback's own, as
// in Keras: no other callback or run may use it.
//
// Between Go and Python: a backup is a name-keyed TensorFlow checkpoint,
// not Keras' backup (latest.weights.h5 and training_metadata.json), so
// keras.callbacks.BackupAndRestore does not resume it, nor does this
// callback resume Keras'. Python reads it with tf.train.load_checkpoint and
// restores a Keras twin by variable path: the weights and the optimizer's
// iteration and slots have Keras' paths as keys; Dropout's seed generator
// state has Go's key (Keras names that variable with a process-wide
// counter), and Keras' learning_rate variable is not in it (Go's rate is
// a constant, or a schedule of the iteration). A checkpoint written back
// under the same keys, with the position advanced (tf.raw_ops.SaveV2 and
// the state file), resumes here; TestBackupAndRestoreThroughPython does
// both ways, bit-identical today for Dense, Dropout and Adam. Keras alone
// cannot resume bit for bit with dropout: its .weights.h5 holds the
// optimizer's variables but no seed generator state, and its
// BackupAndRestore runs a partly done epoch again from its start.
type BackupAndRestore struct {
	NopCallback
	// BackupDir is the directory of the backups (required).
	BackupDir string
	// SaveFreq > 0 backs up every SaveFreq batches; 0 at every epoch's end
	// (Keras' save_freq="epoch").
	SaveFreq int
	// DoubleCheckpoint keeps the previous backup too, and restores it when
	// the latest cannot be read (Keras' double_checkpoint).
	DoubleCheckpoint bool
	// KeepCheckpoint keeps the backup after a Fit that ends normally
	// (Keras' delete_checkpoint=False); by default it is deleted.
	KeepCheckpoint bool

	epoch   int
	since   int      // batches since the last backup
	next    int      // the number of the next backup
	kept    []string // prefixes of the backups the state file lists, oldest first
	pending error    // a failed batch-level backup, returned at the epoch's end
	// hook, when set (tests), is called with "writing" half-way through a
	// backup's tensors and with "written" once the bundle is complete but
	// not yet the latest.
	hook func(stage string)
}

// backupFile matches what the callback writes in BackupDir: bundles
// "ckpt-<n>", their temporary files and the state file's.
var backupFile = regexp.MustCompile(`^(?:ckpt-(\d+)\.(?:index|data-\d+-of-\d+)(?:\.tempstate\d*)?|checkpoint(?:\.tmp\d*)?)$`)

// tempFile matches a bundle file not yet renamed into place.
var tempFile = regexp.MustCompile(`\.tempstate\d*$`)

// Resume restores the latest backup in BackupDir, if there is one, and
// returns the position it was taken at (Fit calls it; see Resumer). When
// the latest cannot be read and DoubleCheckpoint kept the previous one, it
// restores that instead; otherwise the error names the backup.
func (b *BackupAndRestore) Resume(m *Model) (*FitPosition, error) {
	if b == nil {
		return nil, nilCallback("BackupAndRestore")
	}
	if err := m.usable(); err != nil {
		return nil, fmt.Errorf("BackupAndRestore: %w", err)
	}
	if b.BackupDir == "" {
		return nil, errors.New("BackupAndRestore: empty BackupDir")
	}
	if b.SaveFreq < 0 {
		return nil, fmt.Errorf("BackupAndRestore: SaveFreq must be 0 (every epoch) or positive, got %d", b.SaveFreq)
	}
	if m.train == nil {
		return nil, fmt.Errorf("BackupAndRestore: model %q must be compiled first", m.name)
	}
	b.epoch, b.since, b.next, b.kept, b.pending = 0, 0, 0, nil, nil
	// The next number follows every backup on disk, listed or not (one
	// complete but never made the latest), so none is overwritten in place.
	if entries, err := os.ReadDir(b.BackupDir); err == nil {
		for _, e := range entries {
			if sub := backupFile.FindStringSubmatch(e.Name()); sub != nil && sub[1] != "" {
				if n, err := strconv.Atoi(sub[1]); err == nil && n >= b.next {
					b.next = n + 1
				}
			}
		}
	}
	st, err := savedmodel.ReadCheckpointState(b.BackupDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing backed up: a fresh start
	}
	if err != nil {
		return nil, fmt.Errorf("BackupAndRestore: %w", err)
	}
	// The latest first, then (DoubleCheckpoint) the one before it.
	candidates := []string{st.ModelCheckpointPath}
	if b.DoubleCheckpoint {
		for i := len(st.AllModelCheckpointPaths) - 1; i >= 0; i-- {
			if p := st.AllModelCheckpointPaths[i]; !slices.Contains(candidates, p) {
				candidates = append(candidates, p)
			}
		}
	}
	var errs []error
	for _, prefix := range candidates {
		pos, err := b.restore(m, prefix)
		if err == nil {
			// The next backup keeps this one as the previous: a
			// corrupt latest is the one dropped.
			b.kept = []string{prefix}
			return pos, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("BackupAndRestore: %w", errors.Join(errs...))
}

// restore loads the backup at prefix into m and returns its position.
func (b *BackupAndRestore) restore(m *Model, prefix string) (*FitPosition, error) {
	sess, err := m.session()
	if err != nil {
		return nil, err
	}
	r, err := savedmodel.OpenBundle(prefix)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var pos [2]int
	for i, key := range []string{backupEpochKey, backupBatchKey} {
		t, err := r.Read(key)
		if err != nil {
			return nil, fmt.Errorf("backup %s: %w", prefix, err)
		}
		if t.DType != tfgo.Int64 || len(t.Shape) != 0 || len(t.Data) != 8 {
			return nil, fmt.Errorf("backup %s: %q is %s%v, want an int64 scalar", prefix, key, t.DType, t.Shape)
		}
		v := int64(binary.LittleEndian.Uint64(t.Data))
		if v < 0 || v > 1<<40 {
			return nil, fmt.Errorf("backup %s: %q is %d", prefix, key, v)
		}
		pos[i] = int(v)
	}
	keys, vars, err := m.backupVars()
	if err != nil {
		return nil, err
	}
	for _, key := range keys {
		if !r.Has(key) {
			return nil, fmt.Errorf("backup %s has no variable %q: was it written by another model?", prefix, key)
		}
	}
	if err := m.restore(sess, r, keys, vars); err != nil {
		return nil, fmt.Errorf("restoring backup %s: %w", prefix, err)
	}
	return &FitPosition{Epoch: pos[0], Batch: pos[1]}, nil
}

// backupVars lists every variable of m's graph with its key in a backup:
// first the checkpoint's (weights by Keras path, optimizer variables by
// name), then the others by their graph names.
func (m *Model) backupVars() ([]string, []*tfgo.Variable, error) {
	keys, vars := m.checkpointVars(false)
	listed := map[*tfgo.Variable]bool{}
	for _, v := range vars {
		listed[v] = true
	}
	for _, v := range tfgo.Variables(m.Scope()) {
		if !listed[v] {
			keys, vars = append(keys, v.Name()), append(vars, v)
		}
	}
	seen := map[string]bool{backupEpochKey: true, backupBatchKey: true}
	for _, k := range keys {
		if seen[k] {
			return nil, nil, fmt.Errorf("model %q: two variables would be backed up as %q", m.name, k)
		}
		seen[k] = true
	}
	return keys, vars, nil
}

func (b *BackupAndRestore) OnEpochBegin(_ *Model, epoch int) { b.epoch = epoch }

func (b *BackupAndRestore) OnBatchEnd(m *Model, batch int, _ Logs) {
	if b.SaveFreq <= 0 || b.pending != nil {
		return
	}
	b.since++
	if b.since < b.SaveFreq {
		return
	}
	b.since = 0
	if err := b.save(m, FitPosition{Epoch: b.epoch, Batch: batch + 1}); err != nil {
		// Training on without a backup would defeat the callback: stop
		// after this batch and report at the epoch's end.
		b.pending = err
		m.StopTraining()
	}
}

func (b *BackupAndRestore) OnEpochEnd(m *Model, epoch int, _ Logs) error {
	if b == nil {
		return nilCallback("BackupAndRestore")
	}
	if b.pending != nil {
		err := b.pending
		b.pending = nil
		return err
	}
	if b.SaveFreq > 0 {
		return nil
	}
	return b.save(m, FitPosition{Epoch: epoch + 1})
}

// OnTrainEnd deletes the backups after a Fit that ended normally, unless
// KeepCheckpoint. Only the callback's files are removed, then BackupDir if
// that leaves it empty (Keras removes the directory whole).
func (b *BackupAndRestore) OnTrainEnd(m *Model) {
	if b.KeepCheckpoint || !m.Strategy().IsChief() {
		return
	}
	b.removeExcept(nil)
	os.Remove(b.BackupDir)
}

// save writes the training state at pos as the next backup, makes it the
// latest, and deletes the backups no longer kept.
func (b *BackupAndRestore) save(m *Model, pos FitPosition) error {
	if !m.Strategy().IsChief() {
		// Under a multi-worker strategy the chief backs up for every
		// worker (they hold the same state), and every worker resumes
		// from the chief's backup: BackupDir is shared, as Keras'
		// callback expects it to be.
		return nil
	}
	sess, err := m.session()
	if err != nil {
		return err
	}
	keys, vars, err := m.backupVars()
	if err != nil {
		return err
	}
	prefix := filepath.Join(b.BackupDir, fmt.Sprintf("ckpt-%d", b.next))
	w, err := savedmodel.NewBundleWriter(prefix, savedmodel.WriteOptions{})
	if err != nil {
		return fmt.Errorf("BackupAndRestore: %w", err)
	}
	b.next++
	for i, v := range vars {
		if err := addVariable(sess, w, keys[i], v); err != nil {
			w.Abort()
			return fmt.Errorf("BackupAndRestore: writing %s: %w", prefix, err)
		}
		if b.hook != nil && i == len(vars)/2 {
			b.hook("writing")
		}
	}
	for key, v := range map[string]int{backupEpochKey: pos.Epoch, backupBatchKey: pos.Batch} {
		t := &savedmodel.Tensor{DType: tfgo.Int64, Data: binary.LittleEndian.AppendUint64(nil, uint64(v))}
		if err := w.Add(key, t); err != nil {
			w.Abort()
			return fmt.Errorf("BackupAndRestore: writing %s: %w", prefix, err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("BackupAndRestore: %w", err)
	}
	if b.hook != nil {
		b.hook("written")
	}
	kept := []string{prefix}
	if b.DoubleCheckpoint && len(b.kept) > 0 {
		kept = []string{b.kept[len(b.kept)-1], prefix}
	}
	rel := make([]string, len(kept))
	for i, p := range kept {
		rel[i] = filepath.Base(p)
	}
	st := &savedmodel.CheckpointState{ModelCheckpointPath: rel[len(rel)-1], AllModelCheckpointPaths: rel}
	if err := savedmodel.WriteCheckpointState(b.BackupDir, st); err != nil {
		return fmt.Errorf("BackupAndRestore: %w", err)
	}
	b.kept = kept
	// Only now that the state names the new backup.
	b.removeExcept(kept)
	return nil
}

// addVariable reads v's value from the session and adds it to w as key;
// one variable at a time, so a backup holds at most one in Go memory.
func addVariable(sess *tfgo.Session, w *savedmodel.BundleWriter, key string, v *tfgo.Variable) error {
	out, err := sess.Run(nil, []tfgo.Output{v.Value()})
	if err != nil {
		return fmt.Errorf("reading %s: %w", v.Name(), err)
	}
	t := out[0]
	defer t.Close()
	bt := &savedmodel.Tensor{DType: t.DataType(), Shape: t.Shape()}
	if t.DataType() == tfgo.String {
		if bt.Strings, err = t.Strings(); err != nil {
			return fmt.Errorf("reading %s: %w", v.Name(), err)
		}
	} else {
		bt.Data = t.Data()
	}
	return w.Add(key, bt)
}

// removeExcept deletes the callback's files in BackupDir other than the
// bundles at the prefixes kept (the state file goes when none is kept).
func (b *BackupAndRestore) removeExcept(kept []string) {
	entries, err := os.ReadDir(b.BackupDir)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, p := range kept {
		keep[filepath.Base(p)] = true
	}
	for _, e := range entries {
		sub := backupFile.FindStringSubmatch(e.Name())
		if sub == nil {
			continue
		}
		if sub[1] == "" { // the state file, or a torn write of it
			if len(kept) > 0 && e.Name() == savedmodel.CheckpointStateFilename {
				continue
			}
		} else if keep["ckpt-"+sub[1]] && !tempFile.MatchString(e.Name()) {
			continue
		}
		os.Remove(filepath.Join(b.BackupDir, e.Name()))
	}
}
