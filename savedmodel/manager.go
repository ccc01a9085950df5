package savedmodel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ManagerOptions configure a CheckpointManager, with the arguments of
// tf.train.CheckpointManager.
type ManagerOptions struct {
	// Name is the checkpoints' file name before "-<number>"; default "ckpt".
	Name string
	// MaxToKeep keeps the newest checkpoints (0 or less: keep all).
	MaxToKeep int
	// KeepEveryNHours also keeps, for good, one checkpoint every that many
	// hours among those MaxToKeep would delete (0: off).
	KeepEveryNHours float64
	// Write sets how bundles are written (shards, compression).
	Write WriteOptions
	// now is the clock (tests).
	now func() time.Time
}

// CheckpointManager saves numbered checkpoints in a directory, keeps the
// newest few and records them in the directory's "checkpoint" file, as
// tf.train.CheckpointManager does; Python's tf.train.latest_checkpoint and
// CheckpointManager read what it writes and it continues what they wrote.
// Each save is atomic: until the new bundle is complete the previous one
// stays the latest and readable.
//
// Paths are those a caller in the current working directory can open: a
// relative directory gives relative prefixes ("runs/ckpt-3"), as
// tf.train.CheckpointManager's do. The state file stores paths inside the
// directory relative to it (TensorFlow's save_relative_paths), so the
// directory can be moved and Python reads it from anywhere.
//
// One manager (of this package or TensorFlow's) saves into a directory at
// a time, as TensorFlow requires.
type CheckpointManager struct {
	dir   string
	opts  ManagerOptions
	state *CheckpointState // paths as ReadCheckpointState gives them
	next  int
}

var ckptNumber = regexp.MustCompile(`-(\d+)$`)

// NewCheckpointManager manages dir (created if needed), picking up the
// checkpoints its state file already lists.
func NewCheckpointManager(dir string, opts ManagerOptions) (*CheckpointManager, error) {
	if opts.Name == "" {
		opts.Name = "ckpt"
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint directory: %w", err)
	}
	m := &CheckpointManager{dir: dir, opts: opts, state: &CheckpointState{}}
	if st, err := ReadCheckpointState(dir); err == nil {
		m.state = st
	} else if !os.IsNotExist(unwrapAll(err)) {
		return nil, err
	}
	for _, p := range m.state.AllModelCheckpointPaths {
		if sub := ckptNumber.FindStringSubmatch(p); sub != nil {
			if n, _ := strconv.Atoi(sub[1]); n >= m.next {
				m.next = n + 1
			}
		}
	}
	if m.state.LastPreservedTimestamp == 0 {
		m.state.LastPreservedTimestamp = float64(opts.now().UnixNano()) / 1e9
	}
	return m, nil
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		next := u.Unwrap()
		if next == nil {
			return err
		}
		err = next
	}
}

// Directory is the managed directory.
func (m *CheckpointManager) Directory() string { return m.dir }

// Latest is the newest checkpoint's prefix, or "" when there is none (as
// tf.train.CheckpointManager.latest_checkpoint).
func (m *CheckpointManager) Latest() string {
	if m.made() != nil {
		return ""
	}
	return m.state.ModelCheckpointPath
}

// Checkpoints lists the kept checkpoints' prefixes, oldest first.
func (m *CheckpointManager) Checkpoints() []string {
	if m.made() != nil {
		return nil
	}
	return append([]string(nil), m.state.AllModelCheckpointPaths...)
}

// made is the first check of the manager's methods: a nil or zero manager
// has no directory, name or state.
func (m *CheckpointManager) made() error {
	if m == nil || m.state == nil {
		return errors.New("savedmodel: nil or zero CheckpointManager (make one with NewCheckpointManager)")
	}
	return nil
}

// stored is p as the state file records it: relative to the directory
// when it is inside it, else as it is.
func (m *CheckpointManager) stored(p string) string {
	absDir, err1 := filepath.Abs(m.dir)
	absP, err2 := filepath.Abs(p)
	if err1 != nil || err2 != nil {
		return p
	}
	rel, err := filepath.Rel(absDir, absP)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return p
	}
	return rel
}

// samePath reports whether two prefixes name the same file path.
func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// Save writes tensors as checkpoint number step (the next number when step
// is negative), makes it the latest, and deletes the checkpoints beyond
// MaxToKeep that KeepEveryNHours does not preserve. It returns the prefix.
func (m *CheckpointManager) Save(tensors map[string]*Tensor, step int) (string, error) {
	if err := m.made(); err != nil {
		return "", err
	}
	if step < 0 {
		step = m.next
	}
	m.next = step + 1
	prefix := filepath.Join(m.dir, fmt.Sprintf("%s-%d", m.opts.Name, step))
	m.removeStale()
	if err := WriteBundle(prefix, tensors, m.opts.Write); err != nil {
		return "", err
	}
	now := float64(m.opts.now().UnixNano()) / 1e9
	st := m.state
	var paths []string
	var stamps []float64
	for i, p := range st.AllModelCheckpointPaths {
		if samePath(p, prefix) {
			continue
		}
		paths = append(paths, p)
		if i < len(st.AllModelCheckpointTimestamps) {
			stamps = append(stamps, st.AllModelCheckpointTimestamps[i])
		} else {
			stamps = append(stamps, now)
		}
	}
	paths, stamps = append(paths, prefix), append(stamps, now)
	var doomed []string
	if m.opts.MaxToKeep > 0 {
		for len(paths) > m.opts.MaxToKeep {
			old, at := paths[0], stamps[0]
			paths, stamps = paths[1:], stamps[1:]
			// Preserved for good: it leaves the list but stays on disk.
			if m.opts.KeepEveryNHours > 0 && at-st.LastPreservedTimestamp >= m.opts.KeepEveryNHours*3600 {
				st.LastPreservedTimestamp = at
				continue
			}
			doomed = append(doomed, old)
		}
	}
	next := &CheckpointState{ModelCheckpointPath: prefix, AllModelCheckpointPaths: paths,
		AllModelCheckpointTimestamps: stamps, LastPreservedTimestamp: st.LastPreservedTimestamp}
	onDisk := *next
	onDisk.ModelCheckpointPath = m.stored(prefix)
	onDisk.AllModelCheckpointPaths = make([]string, len(paths))
	for i, p := range paths {
		onDisk.AllModelCheckpointPaths[i] = m.stored(p)
	}
	if err := WriteCheckpointState(m.dir, &onDisk); err != nil {
		return "", err
	}
	m.state = next
	// Deleted only once the state no longer names them.
	for _, old := range doomed {
		removeBundleFiles(old)
	}
	return prefix, nil
}

// removeStale removes what saves of this manager's checkpoints killed
// before their commit left in the directory (see removeStale).
func (m *CheckpointManager) removeStale() {
	own := regexp.MustCompile(`^` + regexp.QuoteMeta(m.opts.Name) + `-\d+$`)
	removeStaleBundleTemps(m.dir, own.MatchString)
}

func removeBundleFiles(prefix string) {
	shards, _ := filepath.Glob(prefix + ".data-*-of-*")
	for _, f := range append(shards, prefix+".index") {
		os.Remove(f)
	}
}
