package tfgo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/killtest"
	"github.com/gotf/gotf/savedmodel"
)

// The kill tests of Saver.Save: a child saves the checkpoint dir/ckpt over
// and over (killtest.Child), the parent kills it and restores what is left
// with TensorFlow's RestoreV2.
const (
	saverKillEnv = "GOTF_KILLTEST_SAVER"      // the child's variables: "big" or "many"
	saverKindEnv = "GOTF_KILLTEST_SAVER_KIND" // "stream": StreamingSaver.Save; else Saver.Save
)

// killGraph is the graph of the kill tests: variables of float32 and
// their assigns from placeholders (to set a generation), and a Saver.
type killGraph struct {
	sess    *Session
	vars    []*Variable
	holders []Output
	assign  []*Operation
	saver   *Saver
	stream  *StreamingSaver
}

// newKillGraph builds the variables of mode (see killShape).
func newKillGraph(t *testing.T, mode string) *killGraph {
	t.Helper()
	count, size := killShape(mode)
	s := NewScope()
	g := &killGraph{}
	for i := range count {
		v := NewVariable(s, fmt.Sprintf("layer_%d/kernel", i), Float, []int64{int64(size)}, Zeros())
		p := Placeholder(s, Float, int64(size))
		g.vars, g.holders, g.assign = append(g.vars, v), append(g.holders, p), append(g.assign, v.Assign(s, p))
	}
	g.saver = NewSaver(s, g.vars)
	g.stream = NewStreamingSaver(s, g.vars, nil)
	init := GlobalVariablesInitializer(s)
	sess, err := NewSession(s, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	if _, err := sess.Run(nil, nil, init); err != nil {
		t.Fatal(err)
	}
	g.sess = sess
	return g
}

// set assigns generation gen's values to the variables.
func (g *killGraph) set(gen int) error {
	feeds := map[Output]any{}
	for k, p := range g.holders {
		feeds[p] = killtest.Values(gen, k, int(g.vars[k].Shape()[0]))
	}
	_, err := g.sess.Run(feeds, nil, g.assign...)
	return err
}

// gen restores the checkpoint at prefix and returns its generation.
func (g *killGraph) gen(prefix string) (int, error) {
	if err := g.saver.Restore(g.sess, prefix); err != nil {
		return 0, err
	}
	var outs []Output
	for _, v := range g.vars {
		outs = append(outs, v.Value())
	}
	vals, err := g.sess.Run(nil, outs)
	if err != nil {
		return 0, err
	}
	ws := make([][]float32, len(vals))
	for i, v := range vals {
		ws[i], err = Float32s(v)
		v.Close()
		if err != nil {
			return 0, err
		}
	}
	return killtest.GenOf(ws)
}

func killShape(mode string) (count, size int) {
	if mode == "many" {
		// Many small variables: a large index, so that TensorFlow takes a
		// while between renaming a data file and renaming the index.
		return 400, 4
	}
	return 8, 1 << 20 // 32 MiB
}

func TestSaverKillChild(t *testing.T) {
	killtest.Child(t, func(dir string) func(int) error {
		g := newKillGraph(t, os.Getenv(saverKillEnv))
		return func(gen int) error {
			if err := g.set(gen); err != nil {
				return err
			}
			prefix := filepath.Join(dir, "ckpt")
			if os.Getenv(saverKindEnv) == "stream" {
				// Two shards written in parallel, as many as the
				// checkpoint it overwrites: the shard-name alternation
				// of savedmodel.BundleWriter is what keeps that one
				// readable through the commit.
				return g.stream.Save(g.sess, prefix, savedmodel.WriteOptions{NumShards: 2})
			}
			return g.saver.Save(g.sess, prefix)
		}
	})
}

// saverKillWriter is Saver.Save (kind "") or StreamingSaver.Save (kind
// "stream") of the variables of mode; either way the parent restores with
// TensorFlow's RestoreV2.
func saverKillWriter(t *testing.T, mode, kind string) killtest.Writer {
	g := newKillGraph(t, mode)
	return killtest.Writer{
		Child: "TestSaverKillChild",
		Env:   []string{saverKillEnv + "=" + mode, saverKindEnv + "=" + kind},
		Load: func(dir string) (int, bool, error) {
			prefix := filepath.Join(dir, "ckpt")
			if _, err := os.Stat(prefix + ".index"); os.IsNotExist(err) {
				return 0, false, nil
			}
			gen, err := g.gen(prefix)
			return gen, true, err
		},
		Own: func(name string) bool {
			return name == "ckpt.index" || strings.HasPrefix(name, "ckpt.data-") && !strings.Contains(name, "tempstate")
		},
	}
}

// ckptDataRenamed is the trigger of the kills at a data file's rename: a
// data file of ckpt appearing under its final name (not a temporary).
func ckptDataRenamed(name string) bool {
	return strings.HasPrefix(name, "ckpt.data-") && !strings.Contains(name, "tempstate")
}

// Saver.Save killed at random times (GOTF_KILLS of them, default 4): the
// checkpoint always restores, holding the generation saved last or the one
// being saved, and a completed save leaves no temporary files.
func TestSaverSurvivesKills(t *testing.T) {
	killtest.Run(t, saverKillWriter(t, "big", ""), killtest.Kills(t, 4))
}

// Saver.Save killed the moment a data file appears under its final name
// (the checkpoint having 3000 variables, so that the index takes a while to
// follow): the previous checkpoint must still restore. TensorFlow's own
// SaveV2 at the prefix (the old Save) renamed the new data file over the
// one the old index referenced and lost the checkpoint here.
func TestSaverKilledAtDataRename(t *testing.T) {
	w := saverKillWriter(t, "many", "")
	w.Trigger = ckptDataRenamed
	killtest.Run(t, w, killtest.Kills(t, 3))
}

// StreamingSaver.Save (savedmodel.BundleWriter underneath) killed at
// random times while overwriting its checkpoint: the checkpoint always
// restores with TensorFlow's RestoreV2, holding the generation saved last
// or the one being saved, and a completed save leaves no temporary files.
func TestStreamingSaverSurvivesKills(t *testing.T) {
	killtest.Run(t, saverKillWriter(t, "big", "stream"), killtest.Kills(t, 4))
}

// StreamingSaver.Save killed the moment a data file appears under its
// final name: the previous checkpoint must still restore. The old
// BundleWriter removed the old index before renaming the data in and left
// no checkpoint here.
func TestStreamingSaverKilledAtDataRename(t *testing.T) {
	w := saverKillWriter(t, "many", "stream")
	w.Trigger = ckptDataRenamed
	killtest.Run(t, w, killtest.Kills(t, 3))
}
