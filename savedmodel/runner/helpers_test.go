package runner

import (
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/setup"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
	"github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
)

func TestMain(m *testing.M) {
	interop.Main(m)
}

// block is a small transformer block built op by op with tfgo: causal
// single-head self-attention with a residual and LayerNorm, then a GELU
// MLP with a residual and LayerNorm. Its graph also holds what an export
// must leave out: variable initializers, a label placeholder, a loss and
// an update op.
type block struct {
	s       *tfgo.Scope
	sess    *tfgo.Session
	x       tfgo.Output // [batch, T, D] float32
	labels  tfgo.Output // [batch, T, D], training only
	y       tfgo.Output // the block's output
	probs   tfgo.Output // the attention probabilities [batch, T, T]
	loss    tfgo.Output
	train   *tfgo.Operation
	wq      *tfgo.Variable
	T, D, F int64
}

func newBlock(t *testing.T) *block {
	t.Helper()
	b := &block{s: tfgo.NewScope(), T: 8, D: 16, F: 32}
	s := b.s
	b.x = tfgo.Placeholder(s.SubScope("x"), tfgo.Float, -1, b.T, b.D)
	v := func(ss *tfgo.Scope, name string, init tfgo.Initializer, shape ...int64) *tfgo.Variable {
		return tfgo.NewVariable(ss, name, tfgo.Float, shape, init)
	}
	att := s.SubScope("attention")
	b.wq = v(att, "query", tfgo.GlorotUniform(1), b.D, b.D)
	wk := v(att, "key", tfgo.GlorotUniform(2), b.D, b.D)
	wv := v(att, "value", tfgo.GlorotUniform(3), b.D, b.D)
	wo := v(att, "output", tfgo.GlorotUniform(4), b.D, b.D)
	ln1g := v(s.SubScope("ln1"), "gamma", tfgo.RandomNormal(1, 0.1, 5), b.D)
	ln1b := v(s.SubScope("ln1"), "beta", tfgo.RandomNormal(0, 0.1, 6), b.D)
	mlp := s.SubScope("mlp")
	w1 := v(mlp, "w1", tfgo.GlorotUniform(7), b.D, b.F)
	b1 := v(mlp, "b1", tfgo.RandomNormal(0, 0.1, 8), b.F)
	w2 := v(mlp, "w2", tfgo.GlorotUniform(9), b.F, b.D)
	ln2g := v(s.SubScope("ln2"), "gamma", tfgo.RandomNormal(1, 0.1, 10), b.D)
	ln2b := v(s.SubScope("ln2"), "beta", tfgo.RandomNormal(0, 0.1, 11), b.D)

	proj := func(ss *tfgo.Scope, x tfgo.Output, w *tfgo.Variable) tfgo.Output {
		return tfgo.BatchMatMulV2(ss, x, w.Value())
	}
	q := proj(att.SubScope("q"), b.x, b.wq)
	k := proj(att.SubScope("k"), b.x, wk)
	val := proj(att.SubScope("v"), b.x, wv)
	scores := tfgo.BatchMatMulV2(att, q, k, tfgo.BatchMatMulV2AdjY(true))
	scores = tfgo.Mul(att, scores, tfgo.Const(att, float32(1/math.Sqrt(float64(b.D)))))
	mask := tfgo.CausalMask(att, tfgo.Const(att, int32(b.T)))
	b.probs = tfgo.MaskedSoftmax(att, scores, mask, -1)
	ctx := tfgo.BatchMatMulV2(att, b.probs, val)
	h := tfgo.AddV2(s, b.x, proj(att.SubScope("o"), ctx, wo))
	h = tfgo.LayerNormalize(s.SubScope("ln1"), h, ln1g.Value(), ln1b.Value(), -1, 1e-6)
	f := tfgo.AddV2(mlp, proj(mlp.SubScope("up"), h, w1), b1.Value())
	f = tfgo.Gelu(mlp, f, false)
	f = proj(mlp.SubScope("down"), f, w2)
	b.y = tfgo.LayerNormalize(s.SubScope("ln2"), tfgo.AddV2(s, h, f), ln2g.Value(), ln2b.Value(), -1, 1e-6)
	b.y = tfgo.Identity(s.SubScope("output"), b.y)

	// Training-only parts.
	b.labels = tfgo.Placeholder(s.SubScope("labels"), tfgo.Float, -1, b.T, b.D)
	diff := tfgo.Sub(s, b.y, b.labels)
	b.loss = tfgo.L2Loss(s.SubScope("loss"), diff)
	b.train = b.wq.AssignSub(s.SubScope("train"), tfgo.Mul(s, b.wq.Value(), tfgo.Const(s, float32(1e-3))))

	init := tfgo.GlobalVariablesInitializer(s)
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { sess.Close() })
	_, err = sess.Run(nil, nil, init)
	require.NoError(t, err)
	b.sess = sess
	return b
}

func (b *block) signatures() map[string]Signature {
	return map[string]Signature{
		"serving_default": {Inputs: map[string]tfgo.Output{"x": b.x}, Outputs: map[string]tfgo.Output{"y": b.y}},
		"attention":       {Inputs: map[string]tfgo.Output{"x": b.x}, Outputs: map[string]tfgo.Output{"probs": b.probs, "y": b.y}},
	}
}

// randomInput returns a [batch, T, D] float32 input.
func (b *block) randomInput(batch int, seed uint64) [][][]float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	x := make([][][]float32, batch)
	for i := range x {
		x[i] = make([][]float32, b.T)
		for j := range x[i] {
			x[i][j] = make([]float32, b.D)
			for k := range x[i][j] {
				x[i][j][k] = float32(r.NormFloat64())
			}
		}
	}
	return x
}

// closeTo checks two float32 tensors have the same shape and agree to tol
// (absolute plus relative).
func closeTo(t *testing.T, what string, want, got *tfgo.Tensor, tol float64) {
	t.Helper()
	require.Equal(t, want.Shape(), got.Shape(), what)
	w, err := tfgo.Float32s(want)
	require.NoError(t, err, what)
	g, err := tfgo.Float32s(got)
	require.NoError(t, err, what)
	worst := 0.0
	for i := range w {
		d := math.Abs(float64(w[i]) - float64(g[i]))
		if d > tol*(1+math.Abs(float64(w[i]))) {
			t.Fatalf("%s: element %d: want %v, got %v", what, i, w[i], g[i])
		}
		worst = math.Max(worst, d)
	}
	t.Logf("%s: %d values agree (max |diff| %.2g)", what, len(w), worst)
}

func str(t *testing.T, s string) *tfgo.Tensor {
	t.Helper()
	tn, err := tfgo.NewTensor(s)
	require.NoError(t, err)
	return tn
}

func tensor(t *testing.T, v any) *tfgo.Tensor {
	t.Helper()
	tn, err := tfgo.NewTensor(v)
	require.NoError(t, err)
	return tn
}

// venvTool is the path of a tool of the Python reference environment.
func venvTool(t *testing.T, name string) string {
	t.Helper()
	root, err := setup.ModuleRoot()
	require.NoError(t, err)
	return filepath.Join(root, ".venv", "bin", name)
}

// savedModelCLI runs saved_model_cli with args and returns its output.
func savedModelCLI(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(venvTool(t, "saved_model_cli"), args...)
	cmd.Env = append(cmd.Environ(), "TF_CPP_MIN_LOG_LEVEL=3")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "saved_model_cli %v:\n%s%s", args, out, stderr.String())
	return string(out)
}

// parseCLI reads what "saved_model_cli show --all" prints about a meta
// graph: one line per signature tensor, "signature|input or
// output|key|dtype|shape|name" (sorted), and the set of op types.
func parseCLI(t *testing.T, out string) (tensors []string, ops []string) {
	t.Helper()
	sigRe := regexp.MustCompile(`^signature_def\['(.*)'\]:$`)
	tiRe := regexp.MustCompile(`^\s+(input|output)s\['(.*)'\] tensor_info:$`)
	fieldRe := regexp.MustCompile(`^\s+(dtype|shape|name): (.*)$`)
	opsRe := regexp.MustCompile(`contains the following ops: \{(.*)\}`)
	var sig, kind, key string
	fields := map[string]string{}
	flush := func() {
		if key != "" {
			tensors = append(tensors, strings.Join([]string{sig, kind, key, fields["dtype"], fields["shape"], fields["name"]}, "|"))
		}
		key, fields = "", map[string]string{}
	}
	for _, line := range strings.Split(out, "\n") {
		if m := sigRe.FindStringSubmatch(line); m != nil {
			flush()
			sig = m[1]
		} else if m := tiRe.FindStringSubmatch(line); m != nil {
			flush()
			kind, key = m[1], m[2]
		} else if m := fieldRe.FindStringSubmatch(line); m != nil && key != "" {
			fields[m[1]] = m[2]
		} else if m := opsRe.FindStringSubmatch(line); m != nil {
			for _, op := range strings.Split(m[1], ", ") {
				ops = append(ops, strings.Trim(op, "'"))
			}
		} else if strings.TrimSpace(line) == "" || strings.Contains(line, "Method name") {
			flush()
		}
	}
	flush()
	sort.Strings(tensors)
	sort.Strings(ops)
	return tensors, ops
}

// cliLines formats a model's signatures as parseCLI returns them.
func cliLines(m *Model) []string {
	var lines []string
	shape := func(s tfgo.Shape) string {
		if s.UnknownRank {
			return "unknown_rank"
		}
		return strings.ReplaceAll(strings.ReplaceAll(s.String(), "None", "-1"), ",)", ")")
	}
	for _, s := range m.Signatures() {
		for k, ti := range s.Inputs {
			lines = append(lines, strings.Join([]string{s.Name, "input", k, types_go_proto.DataType(ti.DType).String(), shape(ti.Shape), ti.Name}, "|"))
		}
		for k, ti := range s.Outputs {
			lines = append(lines, strings.Join([]string{s.Name, "output", k, types_go_proto.DataType(ti.DType).String(), shape(ti.Shape), ti.Name}, "|"))
		}
	}
	sort.Strings(lines)
	return lines
}
