package keraslike

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gotf/gotf/internal/atomicfile"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
)

// checkpointVars lists what a checkpoint of the model holds, by key: the
// weights by their Keras paths and, unless weightsOnly, the optimizer's
// variables (iteration counter and slots) by their graph names.
func (m *Model) checkpointVars(weightsOnly bool) ([]string, []*tfgo.Variable) {
	var keys []string
	var vars []*tfgo.Variable
	for _, w := range m.Weights() {
		keys, vars = append(keys, w.Path), append(vars, w.Variable)
	}
	if !weightsOnly && m.train != nil {
		for _, v := range m.train.opts.Optimizer.Variables() {
			keys, vars = append(keys, v.Name()), append(vars, v)
		}
	}
	return keys, vars
}

// CheckpointOptions are SaveCheckpoint's options; the zero value saves
// the weights and the optimizer's state.
type CheckpointOptions struct {
	// WeightsOnly leaves the optimizer's state (iteration counter and
	// slots) out: LoadCheckpoint then restores the weights, and the
	// optimizer starts afresh.
	WeightsOnly bool
}

// SaveCheckpoint writes the model's weights (and, unless opts.WeightsOnly,
// the optimizer's state) as a TensorFlow checkpoint at prefix
// (prefix.index + prefix.data-0000S-of-0000N). Keys are the Keras weight
// paths and the optimizer's variable names, which tf.train.load_checkpoint
// and LoadCheckpoint read; beside them are the object graph and the keys
// tf.train.Checkpoint(model=..., optimizer=...).write(prefix) would write
// for the model's Keras twin (each an alias of a name key, so the data is
// stored once; the learning rate, which Go's graph holds as a constant,
// under its object key only), so that Python's
// tf.train.Checkpoint(model=twin, optimizer=opt).read(prefix) restores the
// weights and, for Adam, AdamW and SGD, the optimizer (iterations, learning
// rate, slots), and LoadObjectCheckpoint reads it too. The twin is a
// Sequential or a functional model of the same layers in the same order
// (whose custom layers assign their sublayers and weights to attributes of
// their names); as write() does, no save_counter is saved. A process
// killed at any instant of the save leaves at prefix the previous
// checkpoint or the new one, complete, and the next save removes what it
// left (the data shards alternate between one and two: see
// savedmodel.ReplaceBundle). (Keras' save_weights format, .weights.h5, is
// SaveWeightsH5's.)
func (m *Model) SaveCheckpoint(prefix string, opts CheckpointOptions) error {
	sess, err := m.session()
	if err != nil {
		return err
	}
	if !opts.WeightsOnly {
		if err := m.checkShardedSave(); err != nil {
			return err
		}
	}
	keys, vars := m.checkpointVars(opts.WeightsOnly)
	extra, aliases, err := m.checkpointObjects(keys, vars, opts.WeightsOnly)
	if err != nil {
		return fmt.Errorf("saving %q: %w", m.name, err)
	}
	// Streamed one variable at a time: a large model is not copied whole.
	// ReplaceBundle syncs before the renames: with DirectIO the bytes are
	// on the device already then, where the page cache's would be written
	// back by the sync.
	err = savedmodel.ReplaceBundle(prefix, func(tmp string, numShards int) error {
		w, err := savedmodel.NewBundleWriter(tmp, savedmodel.WriteOptions{NumShards: numShards, NoSync: true, IO: savedmodel.DirectIO})
		if err != nil {
			return err
		}
		for i, v := range vars {
			if err := addVariable(sess, w, keys[i], v); err != nil {
				w.Abort()
				return err
			}
		}
		for _, k := range slices.Sorted(maps.Keys(extra)) {
			if err := w.Add(k, extra[k]); err != nil {
				w.Abort()
				return err
			}
		}
		for _, k := range slices.Sorted(maps.Keys(aliases)) {
			if err := w.AddAlias(k, aliases[k]); err != nil {
				w.Abort()
				return err
			}
		}
		return w.Close()
	})
	if err != nil {
		return fmt.Errorf("saving %q: %w", m.name, err)
	}
	return nil
}

// LoadCheckpoint restores what SaveCheckpoint wrote at prefix: every weight
// (an error naming any weight missing or of another shape or dtype, before
// anything changes) and the optimizer's state when the checkpoint has it.
// Weights are streamed one at a time (tfgo.StreamingSaver). A checkpoint
// keyed by object paths only (Python's tf.train.Checkpoint) is read as
// LoadObjectCheckpoint reads it.
func (m *Model) LoadCheckpoint(prefix string) error {
	sess, err := m.session()
	if err != nil {
		return err
	}
	r, err := savedmodel.OpenBundle(prefix)
	if err != nil {
		return err
	}
	defer r.Close()
	if ws := m.Weights(); len(ws) > 0 && !r.Has(ws[0].Path) && r.Has(savedmodel.ObjectGraphKey) {
		return m.loadObjects(sess, r, prefix)
	}
	return m.loadNamed(sess, r, prefix)
}

// loadNamed restores the variables of checkpointVars by their keys.
func (m *Model) loadNamed(sess *tfgo.Session, r *savedmodel.BundleReader, prefix string) error {
	keys, vars := m.checkpointVars(false)
	var ks []string
	var vs []*tfgo.Variable
	for i, key := range keys {
		if !r.Has(key) {
			if i < len(m.Weights()) {
				return fmt.Errorf("checkpoint %s has no weight %q", prefix, key)
			}
			continue // a weights-only checkpoint: the optimizer starts afresh
		}
		ks, vs = append(ks, key), append(vs, vars[i])
	}
	return m.restore(sess, r, ks, vs)
}

// restore streams the tensors under keys of the open bundle r into vars;
// every key's dtype and shape is checked before anything is assigned. The
// savers are kept per key list, so loading again adds nothing to the graph.
func (m *Model) restore(sess *tfgo.Session, r *savedmodel.BundleReader, keys []string, vars []*tfgo.Variable) error {
	id := strings.Join(keys, "\x00")
	sv := m.restorers[id]
	if sv == nil {
		sv = tfgo.NewStreamingSaver(m.Scope().SubScope("restore"), vars, keys)
		if err := m.Scope().Err(); err != nil {
			return err
		}
		if m.restorers == nil {
			m.restorers = map[string]*tfgo.StreamingSaver{}
		}
		m.restorers[id] = sv
	}
	return sv.RestoreFrom(sess, r)
}

// ModelCheckpoint saves the model during Fit (keras.callbacks.ModelCheckpoint):
// at every epoch end, or every SaveFreq batches, to a path made from a
// template such as "ckpt/model_shard_{epoch}.weights.h5" or
// "ckpt/model-{epoch:02d}-{val_loss:.2f}.keras" ({epoch} counts from 1, as
// in Keras). The path's extension picks the format, by Keras' rules:
//   - WeightsOnly: ".weights.h5" writes Keras' weights file
//     (SaveWeightsH5, which model.load_weights reads); ".keras", ".h5" or
//     ".hdf5" is the error Keras gives, since they name whole models.
//   - otherwise ".keras", ".h5" or ".hdf5" writes the whole model
//     (SaveKeras); ".weights.h5" is an error, since it names a weights file.
//   - ".weights.json" (sharded weights, which Keras' ModelCheckpoint does
//     not write) is an error.
//   - any other path (which Keras refuses) is a TensorFlow checkpoint
//     prefix (SaveCheckpoint), as tf.keras 2 wrote: the directory's
//     "checkpoint" state file names the latest.
//
// MaxToKeep keeps the newest few: checkpoints by the state file, Keras
// files among those this callback saved.
type ModelCheckpoint struct {
	NopCallback
	Path string
	// WeightsOnly leaves the optimizer's state out.
	WeightsOnly bool
	// SaveBestOnly saves only when Monitor improved (Mode "min", or "max").
	SaveBestOnly bool
	Monitor      string // default "val_loss"
	Mode         string
	// SaveFreq > 0 saves every SaveFreq batches instead of every epoch.
	SaveFreq int
	// MaxToKeep > 0 deletes older checkpoints beyond the newest MaxToKeep.
	MaxToKeep int

	best    float64
	hasBest bool
	epoch   int
	batches int
	// Saved lists the files (or checkpoint prefixes) written, in order.
	Saved   []string
	pending error // a failed batch-level save, reported at the epoch's end
}

func (c *ModelCheckpoint) OnEpochBegin(_ *Model, epoch int) { c.epoch = epoch }

func (c *ModelCheckpoint) OnBatchEnd(m *Model, _ int, logs Logs) {
	c.batches++
	if c.SaveFreq > 0 && c.batches%c.SaveFreq == 0 {
		// Errors at batch level surface at the epoch's end.
		if err := c.save(m, logs); err != nil && c.pending == nil {
			c.pending = err
		}
	}
}

func (c *ModelCheckpoint) OnEpochEnd(m *Model, epoch int, logs Logs) error {
	if c == nil {
		return nilCallback("ModelCheckpoint")
	}
	if c.pending != nil {
		err := c.pending
		c.pending = nil
		return err
	}
	if c.SaveFreq > 0 {
		return nil
	}
	return c.save(m, logs)
}

func (c *ModelCheckpoint) save(m *Model, logs Logs) error {
	keras, err := c.kerasFile()
	if err != nil {
		return err
	}
	if c.SaveBestOnly {
		key := c.Monitor
		if key == "" {
			key = "val_loss"
		}
		v, ok := logs[key]
		if !ok {
			return fmt.Errorf("ModelCheckpoint: metric %q is not in the logs (%s)", key, strings.Join(sortedKeys(logs), ", "))
		}
		better := !c.hasBest || v < c.best
		if c.Mode == "max" {
			better = !c.hasBest || v > c.best
		}
		if !better {
			return nil
		}
		c.best, c.hasBest = v, true
	}
	prefix, err := formatPath(c.Path, c.epoch+1, c.batches, logs)
	if err != nil {
		return err
	}
	if keras {
		if c.WeightsOnly {
			err = m.SaveWeightsH5(prefix)
		} else {
			err = m.SaveKeras(prefix)
		}
		if err != nil {
			return err
		}
		c.removeStale()
		c.Saved = append(c.Saved, prefix)
		c.dropOldFiles()
		return nil
	}
	if err := m.SaveCheckpoint(prefix, CheckpointOptions{WeightsOnly: c.WeightsOnly}); err != nil {
		return err
	}
	c.removeStale()
	c.Saved = append(c.Saved, prefix)
	return c.updateState(prefix)
}

// kerasFile reports whether Path names a Keras file rather than a
// TensorFlow checkpoint prefix, and refuses the extensions Keras'
// ModelCheckpoint refuses for what is saved (the template's own
// extension: a formatted metric such as {val_loss:.2f} adds a dot).
func (c *ModelCheckpoint) kerasFile() (bool, error) {
	weightsFile := strings.HasSuffix(c.Path, ".weights.h5")
	modelFile := !weightsFile && (strings.HasSuffix(c.Path, ".keras") || strings.HasSuffix(c.Path, ".h5") || strings.HasSuffix(c.Path, ".hdf5"))
	switch {
	case strings.HasSuffix(c.Path, ".weights.json"):
		// Not a checkpoint prefix either: its files would be mislabelled.
		return false, fmt.Errorf("ModelCheckpoint: sharded weights (.weights.json) are not written by ModelCheckpoint, as by Keras': end the path in .weights.h5 with WeightsOnly. Received: path=%s", c.Path)
	case c.WeightsOnly && modelFile:
		return false, fmt.Errorf("ModelCheckpoint: with WeightsOnly the path must end in .weights.h5 (Keras weights format); a .keras or .h5 path saves the whole model. Received: path=%s", c.Path)
	case !c.WeightsOnly && weightsFile:
		return false, fmt.Errorf("ModelCheckpoint: a path ending in .weights.h5 is a weights file: set WeightsOnly, or end the path in .keras (Keras model format). Received: path=%s", c.Path)
	}
	return weightsFile || modelFile, nil
}

// dropOldFiles removes the Keras files saved before the newest MaxToKeep
// (the checkpoint state file does this for TensorFlow checkpoints); a
// path saved again is kept.
func (c *ModelCheckpoint) dropOldFiles() {
	if c.MaxToKeep <= 0 {
		return
	}
	keep := map[string]bool{}
	for i := len(c.Saved) - 1; i >= 0 && len(keep) < c.MaxToKeep; i-- {
		keep[c.Saved[i]] = true
	}
	for _, p := range c.Saved {
		if !keep[p] {
			os.Remove(p)
		}
	}
}

// removeStale removes what saves killed before their end left next to the
// checkpoints: each save cleans up after its own prefix, but a template
// such as "ckpt/model-{epoch}" gives every save another one.
func (c *ModelCheckpoint) removeStale() {
	dir, tmpl := filepath.Split(c.Path)
	if fieldRE.MatchString(dir) {
		return
	}
	var re strings.Builder
	last := 0
	for _, loc := range fieldRE.FindAllStringIndex(tmpl, -1) {
		re.WriteString(regexp.QuoteMeta(tmpl[last:loc[0]]) + ".+")
		last = loc[1]
	}
	re.WriteString(regexp.QuoteMeta(tmpl[last:]))
	match := regexp.MustCompile("^" + re.String() + "$")
	atomicfile.RemoveStaleIn(dir, match.MatchString)
}

// updateState records prefix as the latest in its directory's "checkpoint"
// file and drops checkpoints beyond MaxToKeep.
func (c *ModelCheckpoint) updateState(prefix string) error {
	dir := filepath.Dir(prefix)
	st, err := savedmodel.ReadCheckpointState(dir)
	if err != nil {
		st = &savedmodel.CheckpointState{}
	}
	rel := filepath.Base(prefix)
	var all []string
	var stamps []float64
	for i, p := range st.AllModelCheckpointPaths {
		if filepath.Base(p) != rel {
			all = append(all, filepath.Base(p))
			if i < len(st.AllModelCheckpointTimestamps) {
				stamps = append(stamps, st.AllModelCheckpointTimestamps[i])
			}
		}
	}
	all = append(all, rel)
	stamps = append(stamps, float64(time.Now().UnixNano())/1e9)
	var doomed []string
	if c.MaxToKeep > 0 && len(all) > c.MaxToKeep {
		doomed = all[:len(all)-c.MaxToKeep]
		all, stamps = all[len(all)-c.MaxToKeep:], stamps[len(stamps)-c.MaxToKeep:]
	}
	if len(stamps) != len(all) {
		stamps = nil
	}
	err = savedmodel.WriteCheckpointState(dir, &savedmodel.CheckpointState{
		ModelCheckpointPath: rel, AllModelCheckpointPaths: all, AllModelCheckpointTimestamps: stamps})
	if err != nil {
		return err
	}
	// Deleted only once the state no longer names them: killed before,
	// the state would list checkpoints that are gone.
	for _, old := range doomed {
		removeBundle(filepath.Join(dir, old))
	}
	return nil
}

func removeBundle(prefix string) {
	files, _ := filepath.Glob(prefix + ".data-*-of-*")
	for _, f := range append(files, prefix+".index") {
		os.Remove(f)
	}
}

var fieldRE = regexp.MustCompile(`\{([a-z_]+)(?::([^}]*))?\}`)

// formatPath fills a Keras filepath template: {epoch}, {batch} and any
// metric, with Python format specs such as 02d or .2f.
func formatPath(tmpl string, epoch, batch int, logs Logs) (string, error) {
	var err error
	out := fieldRE.ReplaceAllStringFunc(tmpl, func(f string) string {
		m := fieldRE.FindStringSubmatch(f)
		name, spec := m[1], m[2]
		var v float64
		isInt := false
		switch name {
		case "epoch":
			v, isInt = float64(epoch), true
		case "batch":
			v, isInt = float64(batch), true
		default:
			lv, ok := logs[name]
			if !ok {
				err = fmt.Errorf("ModelCheckpoint path %q: no metric %q in the logs", tmpl, name)
				return f
			}
			v = lv
		}
		switch {
		case spec == "":
			if isInt {
				return strconv.Itoa(int(v))
			}
			return strconv.FormatFloat(v, 'g', -1, 64)
		case strings.HasSuffix(spec, "d"):
			return fmt.Sprintf("%"+spec, int(math.Round(v)))
		case strings.HasSuffix(spec, "f"), strings.HasSuffix(spec, "e"), strings.HasSuffix(spec, "g"):
			return fmt.Sprintf("%"+spec, v)
		}
		err = fmt.Errorf("ModelCheckpoint path %q: unsupported format %q", tmpl, spec)
		return f
	})
	return out, err
}
