package savedmodel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/internal/killtest"
)

// The kill tests of the bundle writers and the CheckpointManager, on the
// module's harness (internal/killtest, pure Go): a child saves generation
// after generation and is killed with SIGKILL at a random moment or when a
// data file appears under its final name, GOTF_KILLS times per writer (5
// by default). After each kill the latest artifact must restore, holding
// exactly what the save completed last or the one under way wrote, and
// the next save must leave no temporary file behind.

const (
	killTensors     = 4
	killTensorBytes = 1 << 20
)

// killGeneration is what save number g writes: killTensors tensors of
// random bytes from g, and g itself under "gen".
func killGeneration(g int64) map[string]*Tensor {
	ts := map[string]*Tensor{}
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], uint64(g))
	for i := range killTensors {
		key[8] = byte(i)
		data := make([]byte, killTensorBytes)
		rand.NewChaCha8(key).Read(data)
		ts[fmt.Sprintf("t%d", i)] = &Tensor{DType: dtypes.Float, Shape: []int64{killTensorBytes / 4}, Data: data}
	}
	ts["gen"] = &Tensor{DType: dtypes.Int64, Data: binary.LittleEndian.AppendUint64(nil, uint64(g))}
	return ts
}

// checkGeneration opens the bundle at prefix and checks that it holds
// exactly one save's tensors, every checksum passing; it returns that
// save's number.
func checkGeneration(prefix string) (int64, error) {
	r, err := OpenBundle(prefix)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	gt, err := r.Read("gen")
	if err != nil {
		return 0, err
	}
	if len(gt.Data) != 8 {
		return 0, fmt.Errorf("%s: gen holds %d bytes", prefix, len(gt.Data))
	}
	g := int64(binary.LittleEndian.Uint64(gt.Data))
	want := killGeneration(g)
	if names := r.Names(); len(names) != len(want) {
		return g, fmt.Errorf("%s: %d tensors, save %d wrote %d", prefix, len(names), g, len(want))
	}
	for name, w := range want {
		got, err := r.Read(name)
		if err != nil {
			return g, err
		}
		if !bytes.Equal(got.Data, w.Data) {
			return g, fmt.Errorf("%s: %s is not what save %d wrote", prefix, name, g)
		}
	}
	return g, nil
}

// writeKillBundle overwrites prefix with save g, with two data shards,
// alternating WriteBundle (even g) and the streaming BundleWriter (odd g).
func writeKillBundle(prefix string, g int64) error {
	ts := killGeneration(g)
	if g%2 == 0 {
		return WriteBundle(prefix, ts, WriteOptions{NumShards: 2})
	}
	w, err := NewBundleWriter(prefix, WriteOptions{NumShards: 2})
	if err != nil {
		return err
	}
	for _, name := range sortedNames(ts) {
		if err := w.Add(name, ts[name]); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Close()
}

// ownFile reports whether a file left in a kill test's directory is an
// artifact, given isArtifact for the writer's own names. Only Linux builds
// can tell a dead writer's temporaries from a live one's (flocks) and
// remove them: elsewhere they may stay.
func ownFile(name string, isArtifact func(string) bool) bool {
	if strings.Contains(name, ".tempstate") || strings.HasPrefix(name, CheckpointStateFilename+".tmp") {
		return runtime.GOOS != "linux"
	}
	return isArtifact(name)
}

func TestBundleKillChild(t *testing.T) {
	killtest.Child(t, func(dir string) func(int) error {
		prefix := filepath.Join(dir, "bundle")
		return func(gen int) error { return writeKillBundle(prefix, int64(gen)) }
	})
}

func bundleKillWriter() killtest.Writer {
	return killtest.Writer{
		Child: "TestBundleKillChild",
		Load: func(dir string) (int, bool, error) {
			prefix := filepath.Join(dir, "bundle")
			if _, err := os.Stat(IndexFilename(prefix)); errors.Is(err, fs.ErrNotExist) {
				return 0, false, nil
			}
			g, err := checkGeneration(prefix)
			return int(g), true, err
		},
		Own: func(name string) bool {
			return ownFile(name, func(n string) bool {
				return n == "bundle.index" || strings.HasPrefix(n, "bundle.data-")
			})
		},
	}
}

// WriteBundle and BundleWriter killed at random times while overwriting
// one prefix: the old bundle or the new one, whole, at every instant (a
// kill inside the commit may not leave the prefix without a bundle).
func TestKillBundleWriter(t *testing.T) {
	killtest.Run(t, bundleKillWriter(), killtest.Kills(t, 5))
}

// The bundle writers killed the moment a data file appears under its
// final name, between the data renames and the index's: the previous
// bundle must still read. The BundleWriter that removed the old index
// before renaming the data left no bundle here.
func TestBundleWriterKilledAtDataRename(t *testing.T) {
	w := bundleKillWriter()
	w.Trigger = func(name string) bool {
		return strings.HasPrefix(name, "bundle.data-") && !strings.Contains(name, "tempstate")
	}
	killtest.Run(t, w, killtest.Kills(t, 3))
}

func TestManagerKillChild(t *testing.T) {
	killtest.Child(t, func(dir string) func(int) error {
		m, err := NewCheckpointManager(dir, ManagerOptions{MaxToKeep: 3})
		if err != nil {
			t.Fatal(err)
		}
		return func(gen int) error {
			_, err := m.Save(killGeneration(int64(gen)), gen)
			return err
		}
	})
}

// CheckpointManager.Save killed at random times: the latest checkpoint
// the state file names restores, every kept one holds the save of its
// number, and a completed save leaves no temporaries.
func TestKillCheckpointManager(t *testing.T) {
	killtest.Run(t, killtest.Writer{
		Child: "TestManagerKillChild",
		Load: func(dir string) (int, bool, error) {
			m, err := NewCheckpointManager(dir, ManagerOptions{MaxToKeep: 3})
			if err != nil {
				return 0, false, err
			}
			latest := m.Latest()
			if latest == "" {
				return 0, false, nil
			}
			if got, err := LatestCheckpoint(dir); err != nil || got != latest {
				return 0, true, fmt.Errorf("LatestCheckpoint %q (%v), the manager %q", got, err, latest)
			}
			gen := int64(-1)
			for _, p := range m.Checkpoints() {
				g, err := checkGeneration(p)
				if err != nil {
					return 0, true, fmt.Errorf("kept checkpoint: %w", err)
				}
				if want := filepath.Join(dir, fmt.Sprintf("ckpt-%d", g)); want != p {
					return 0, true, fmt.Errorf("%s holds save %d", p, g)
				}
				if p == latest {
					gen = g
				}
			}
			if gen < 0 {
				return 0, true, fmt.Errorf("the latest checkpoint %q is not among the kept ones", latest)
			}
			return int(gen), true, nil
		},
		Own: func(name string) bool {
			return ownFile(name, func(n string) bool {
				if n == CheckpointStateFilename {
					return true
				}
				num, rest, ok := strings.Cut(strings.TrimPrefix(n, "ckpt-"), ".")
				_, err := strconv.Atoi(num)
				return ok && err == nil && strings.HasPrefix(n, "ckpt-") && (rest == "index" || strings.HasPrefix(rest, "data-"))
			})
		},
	}, killtest.Kills(t, 5))
}
