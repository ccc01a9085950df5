package runner

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gotf/gotf/internal/killtest"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
)

// The kill test of SavedModel export and version publication, on the
// module's harness (internal/killtest): a child exports version after
// version of a model to a TensorFlow Serving base directory (ExportVersion,
// and Export straight to BASE/<version>), removing all but the newest two,
// and is killed with SIGKILL at a random moment, GOTF_KILLS times (5 by
// default). After each kill every visible version must be complete, the
// newest must load and compute what its export held (the version saved
// last or the one under way), and the next export must leave no temporary
// directory behind.

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

func TestExportKillChild(t *testing.T) {
	killtest.Child(t, func(base string) func(int) error {
		m, err := newKillModel()
		if err != nil {
			t.Fatal(err)
		}
		return func(v int) error {
			// Odd versions (every child's first, which the harness
			// checks for leftovers) go through ExportVersion, whose
			// Publish removes the dead temporaries of every version;
			// Export to BASE/<v> removes only those of its own name.
			if err := m.export(base, int64(v), v%2 == 0); err != nil {
				return err
			}
			_, err := savedmodel.RemoveOldVersions(base, 2)
			return err
		}
	})
}

func TestKillExport(t *testing.T) {
	killtest.Run(t, killtest.Writer{
		Child: "TestExportKillChild",
		Load: func(base string) (int, bool, error) {
			vs, err := savedmodel.Versions(base)
			if err != nil || len(vs) == 0 {
				return 0, false, err
			}
			// Every visible version is whole; the newest serves.
			for _, v := range vs {
				dir := filepath.Join(base, strconv.FormatInt(v, 10))
				if _, err := savedmodel.ReadMetaGraph(dir, savedmodel.TagServe); err != nil {
					return 0, true, fmt.Errorf("visible version %d: %w", v, err)
				}
				if _, err := savedmodel.ReadFingerprint(dir); err != nil {
					return 0, true, fmt.Errorf("visible version %d: %w", v, err)
				}
			}
			newest := vs[len(vs)-1]
			if err := checkVersion(filepath.Join(base, strconv.FormatInt(newest, 10)), newest); err != nil {
				return 0, true, fmt.Errorf("newest version: %w", err)
			}
			return int(newest), true, nil
		},
		// Versions only: a temporary (.N.tmp-M, .N.removing-M) left after
		// a completed export is a leftover.
		Own: func(name string) bool {
			_, err := strconv.ParseUint(name, 10, 63)
			return err == nil
		},
	}, killtest.Kills(t, 5))
}
