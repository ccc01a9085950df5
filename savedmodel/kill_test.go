package savedmodel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/savedmodel/internal/killtest"
)

// The kill harness of the bundle writers and the CheckpointManager: a
// child saves in a loop and is killed with SIGKILL at a random moment,
// GOTF_KILLS times per writer (5 by default). After each kill the latest
// artifact must restore, holding exactly what one complete save wrote, and
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

// killChild runs a child of the kill harness; it never returns.
func killChild(writer, dir string) {
	fail := func(err error) {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	switch writer {
	case "bundle":
		// Overwrites one prefix, alternating WriteBundle and the
		// streaming BundleWriter, with two data shards.
		prefix := filepath.Join(dir, "bundle")
		fmt.Println("READY")
		for g := time.Now().UnixNano(); ; g++ {
			ts := killGeneration(g)
			if g%2 == 0 {
				if err := WriteBundle(prefix, ts, WriteOptions{NumShards: 2}); err != nil {
					fail(err)
				}
			} else {
				w, err := NewBundleWriter(prefix, WriteOptions{NumShards: 2})
				if err != nil {
					fail(err)
				}
				for _, name := range sortedNames(ts) {
					if err := w.Add(name, ts[name]); err != nil {
						fail(err)
					}
				}
				if err := w.Close(); err != nil {
					fail(err)
				}
			}
			fmt.Println("SAVED", g)
		}
	case "manager":
		m, err := NewCheckpointManager(dir, ManagerOptions{MaxToKeep: 3})
		if err != nil {
			fail(err)
		}
		fmt.Println("READY")
		for {
			step := int64(0)
			if sub := ckptNumber.FindStringSubmatch(m.Latest()); sub != nil {
				n, _ := strconv.ParseInt(sub[1], 10, 64)
				step = n + 1
			}
			p, err := m.Save(killGeneration(step), int(step))
			if err != nil {
				fail(err)
			}
			fmt.Println("SAVED", p)
		}
	}
	fail(fmt.Errorf("unknown writer %q", writer))
}

func TestKillBundleWriter(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "bundle")
	if err := WriteBundle(prefix, killGeneration(0), WriteOptions{NumShards: 2}); err != nil {
		t.Fatal(err)
	}
	st := killtest.Run(t, "bundle", dir, killtest.Kills(t, 5), 300*time.Millisecond, func(kill int, last string) error {
		// The old bundle or the new one, whole, at every instant: a kill
		// inside the commit may not leave the prefix without a bundle.
		if _, err := checkGeneration(prefix); err != nil {
			return fmt.Errorf("the bundle left by the kill: %w", err)
		}
		// The next save at the prefix completes and removes the killed
		// save's temporaries.
		g := int64(kill + 1)
		if err := WriteBundle(prefix, killGeneration(g), WriteOptions{NumShards: 2}); err != nil {
			return err
		}
		if got, err := checkGeneration(prefix); err != nil || got != g {
			return fmt.Errorf("after the next save: save %d, %v", got, err)
		}
		if tmps, err := killtest.Temporaries(dir, ".tempstate"); err != nil || len(tmps) > 0 {
			return fmt.Errorf("temporaries after the next save: %q (%v)", tmps, err)
		}
		return nil
	})
	t.Logf("bundle writer: %v", st)
}

func TestKillCheckpointManager(t *testing.T) {
	dir := t.TempDir()
	st := killtest.Run(t, "manager", dir, killtest.Kills(t, 5), 300*time.Millisecond, func(kill int, last string) error {
		m, err := NewCheckpointManager(dir, ManagerOptions{MaxToKeep: 3})
		if err != nil {
			return err
		}
		latest := m.Latest()
		if latest == "" {
			if last != "" {
				return fmt.Errorf("no latest checkpoint, though the child reported %q", last)
			}
		} else {
			if got, err := LatestCheckpoint(dir); err != nil || got != latest {
				return fmt.Errorf("LatestCheckpoint %q (%v), the manager %q", got, err, latest)
			}
			for _, p := range m.Checkpoints() {
				g, err := checkGeneration(p)
				if err != nil {
					return fmt.Errorf("kept checkpoint: %w", err)
				}
				if want := filepath.Join(dir, fmt.Sprintf("ckpt-%d", g)); want != p {
					return fmt.Errorf("%s holds save %d", p, g)
				}
			}
		}
		p, err := m.Save(killGeneration(int64(1_000_000+kill)), 1_000_000+kill)
		if err != nil {
			return err
		}
		if m.Latest() != p {
			return fmt.Errorf("latest %q after saving %q", m.Latest(), p)
		}
		if tmps, err := killtest.Temporaries(dir, ".tempstate", CheckpointStateFilename+".tmp"); err != nil || len(tmps) > 0 {
			return fmt.Errorf("temporaries after the next save: %q (%v)", tmps, err)
		}
		// The children continue from the parent's save; start them again
		// from small numbers so that checkpoints stay few.
		for _, c := range m.Checkpoints() {
			removeBundleFiles(c)
		}
		return os.Remove(filepath.Join(dir, CheckpointStateFilename))
	})
	t.Logf("checkpoint manager: %v", st)
}
