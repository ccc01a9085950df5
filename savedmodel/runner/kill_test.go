package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/savedmodel/internal/killtest"
	"github.com/gotf/gotf/tfgo"
)

// The kill harness of SavedModel export and version publication: a child
// exports version after version of a model to a TensorFlow Serving base
// directory (ExportVersion, and Export straight to BASE/<version>) and is
// killed with SIGKILL at a random moment, GOTF_KILLS times (5 by
// default). After each kill every visible version must be complete, the
// newest must load and compute what its export held, and the next export
// must leave no temporary directory behind.

const killIn, killOut = 64, 512 // a 128 KiB variable

// killModel is y = x·w, with w set to the version number before each
// export so that a loaded version shows which export wrote it.
type killModel struct {
	s      *tfgo.Scope
	sess   *tfgo.Session
	x, y   tfgo.Output
	val    tfgo.Output
	assign *tfgo.Operation
}

func newKillModel() (*killModel, error) {
	s := tfgo.NewScope()
	m := &killModel{s: s}
	m.x = tfgo.Placeholder(s.SubScope("x"), tfgo.Float, -1, killIn)
	w := tfgo.NewVariable(s, "w", tfgo.Float, []int64{killIn, killOut}, tfgo.Constant(0))
	m.val = tfgo.Placeholder(s.SubScope("val"), tfgo.Float, killIn, killOut)
	m.assign = w.Assign(s.SubScope("set"), m.val)
	m.y = tfgo.Identity(s.SubScope("y"), tfgo.MatMul(s, m.x, w.Value()))
	init := tfgo.GlobalVariablesInitializer(s)
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	if err != nil {
		return nil, err
	}
	if _, err := sess.Run(nil, nil, init); err != nil {
		return nil, err
	}
	m.sess = sess
	return m, nil
}

// export sets w to v and exports version v to base, with ExportVersion
// or, when direct, with Export to BASE/<v>.
func (m *killModel) export(base string, v int64, direct bool) error {
	vals := make([][]float32, killIn)
	for i := range vals {
		vals[i] = make([]float32, killOut)
		for j := range vals[i] {
			vals[i][j] = float32(v)
		}
	}
	if _, err := m.sess.Run(map[tfgo.Output]any{m.val: vals}, nil, m.assign); err != nil {
		return err
	}
	sigs := map[string]Signature{"serving_default": {Inputs: map[string]tfgo.Output{"x": m.x}, Outputs: map[string]tfgo.Output{"y": m.y}}}
	if direct {
		return Export(filepath.Join(base, strconv.FormatInt(v, 10)), m.s.Graph(), m.sess, sigs, ExportOptions{})
	}
	_, err := ExportVersion(base, v, m.s.Graph(), m.sess, sigs, ExportOptions{})
	return err
}

func nextVersion(base string) int64 {
	if v, _, err := savedmodel.LatestVersion(base); err == nil {
		return v + 1
	}
	return 1
}

// killChild exports versions until it is killed; it never returns.
func killChild(base string) {
	fail := func(err error) {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	m, err := newKillModel()
	if err != nil {
		fail(err)
	}
	fmt.Println("READY")
	for {
		v := nextVersion(base)
		if err := m.export(base, v, v%2 == 1); err != nil {
			fail(err)
		}
		fmt.Println("SAVED", v)
	}
}

// checkVersion loads dir and checks that it computes x·w with w = v.
func checkVersion(dir string, v int64) error {
	m, err := Load(dir)
	if err != nil {
		return err
	}
	defer m.Close()
	ones := make([][]float32, 1)
	ones[0] = make([]float32, killIn)
	for i := range ones[0] {
		ones[0][i] = 1
	}
	out, err := m.Run(context.Background(), "serving_default", map[string]any{"x": ones})
	if err != nil {
		return err
	}
	y, err := tfgo.Float32s(out["y"])
	if err != nil {
		return err
	}
	for i, got := range y {
		if want := float32(killIn * v); got != want {
			return fmt.Errorf("version %d computes y[%d] = %v, want %v", v, i, got, want)
		}
	}
	return nil
}

func TestKillExport(t *testing.T) {
	base := t.TempDir()
	parent, err := newKillModel()
	if err != nil {
		t.Fatal(err)
	}
	defer parent.sess.Close()
	st := killtest.Run(t, "export", base, killtest.Kills(t, 5), 1500*time.Millisecond, func(kill int, last string) error {
		vs, err := savedmodel.Versions(base)
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			if last != "" {
				return fmt.Errorf("no version, though the child reported %q", last)
			}
		} else {
			// Every visible version is whole; the newest serves.
			for _, v := range vs {
				dir := filepath.Join(base, strconv.FormatInt(v, 10))
				if _, err := savedmodel.ReadMetaGraph(dir, savedmodel.TagServe); err != nil {
					return fmt.Errorf("visible version %d: %w", v, err)
				}
				if _, err := savedmodel.ReadFingerprint(dir); err != nil {
					return fmt.Errorf("visible version %d: %w", v, err)
				}
			}
			newest := vs[len(vs)-1]
			if err := checkVersion(filepath.Join(base, strconv.FormatInt(newest, 10)), newest); err != nil {
				return fmt.Errorf("newest version: %w", err)
			}
		}
		v := nextVersion(base)
		if err := parent.export(base, v, false); err != nil {
			return fmt.Errorf("the next export: %w", err)
		}
		if err := checkVersion(filepath.Join(base, strconv.FormatInt(v, 10)), v); err != nil {
			return fmt.Errorf("the next export: %w", err)
		}
		if tmps, err := killtest.Temporaries(base, ".tmp-", ".removing-"); err != nil || len(tmps) > 0 {
			return fmt.Errorf("temporaries after the next export: %q (%v)", tmps, err)
		}
		_, err = savedmodel.RemoveOldVersions(base, 2)
		return err
	})
	t.Logf("export and publication: %v", st)
}
