package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
	fnpb "github.com/wamuir/graft/tensorflow/core/framework/function_go_proto"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	ndpb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// TestRunOptionsReachTheSession: LoadOptions.RunOptions are what every Run
// hands the session (an inter-op pool the session does not have is
// refused by TensorFlow), and a context deadline amends a copy of them,
// never the model's.
func TestRunOptionsReachTheSession(t *testing.T) {
	b := newBlock(t)
	dir := filepath.Join(t.TempDir(), "block")
	require.NoError(t, Export(dir, b.s.Graph(), b.sess, b.signatures(), ExportOptions{}))
	in := map[string]any{"x": b.randomInput(1, 1)}

	bad := &cpb.RunOptions{InterOpThreadPool: 7}
	m, err := LoadWithOptions(dir, LoadOptions{RunOptions: bad})
	require.NoError(t, err)
	defer m.Close()
	bad.InterOpThreadPool = 0 // the model keeps its own copy
	_, err = m.Run(context.Background(), "serving_default", in)
	require.ErrorContains(t, err, "inter_op_thread_pool")

	ok := &cpb.RunOptions{InterOpThreadPool: -1} // the caller's thread
	m2, err := LoadWithOptions(dir, LoadOptions{RunOptions: ok})
	require.NoError(t, err)
	defer m2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := m2.Run(ctx, "serving_default", in)
	require.NoError(t, err)
	out["y"].Close()
	require.Zero(t, m2.runOpts.GetTimeoutInMs(), "the deadline's timeout went into the model's RunOptions")
}

// TestXLA: Session.XLA is refused where TensorFlow would ignore it (this
// test process made plain sessions first); in a process started with the
// CPU auto-jit flag, the signature runs as XLA clusters and gives the
// outputs of the default session, which the other tests compare with
// Python's.
func TestXLA(t *testing.T) {
	b := newBlock(t)
	dir := filepath.Join(t.TempDir(), "block")
	require.NoError(t, Export(dir, b.s.Graph(), b.sess, b.signatures(), ExportOptions{}))
	xla := LoadOptions{Session: tfgo.SessionOptions{XLA: true}}
	if os.Getenv("GOTF_TEST_XLA_CHILD") == "" {
		_, err := LoadWithOptions(dir, xla)
		require.ErrorIs(t, err, ErrUnsupported)
		require.ErrorContains(t, err, "TF_XLA_FLAGS")
		cmd := exec.Command(os.Args[0], "-test.run=^TestXLA$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "GOTF_TEST_XLA_CHILD=1", "TF_XLA_FLAGS=--tf_xla_cpu_global_jit")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "the child with TF_XLA_FLAGS:\n%s", out)
		require.Contains(t, string(out), "XLA vs default session")
		return
	}
	in := map[string]any{"x": b.randomInput(3, 2)}
	run := func(opts LoadOptions) (*tfgo.Tensor, map[string]int) {
		m, err := LoadWithOptions(dir, opts)
		require.NoError(t, err)
		defer m.Close()
		s := m.sigs["serving_default"]
		outs, tr, err := m.Session().RunTraced(map[tfgo.Output]any{s.inputs["x"]: in["x"]}, s.outputs)
		require.NoError(t, err)
		return outs[0], tr.ExecutedOpTypes()
	}
	want, ops := run(LoadOptions{})
	defer want.Close()
	require.Zero(t, ops["_XlaRun"], "XLA clusters in the default session")
	got, ops := run(xla)
	defer got.Close()
	require.NotZero(t, ops["_XlaRun"], "no XLA cluster ran: %v", ops)
	closeTo(t, "XLA vs default session", want, got, 1e-5)
}

// TestSingleThreadedExecutor: the option gives the default session's
// outputs, and is refused where TensorFlow's single-threaded executor
// cannot run the model.
func TestSingleThreadedExecutor(t *testing.T) {
	b := newBlock(t)
	dir := filepath.Join(t.TempDir(), "block")
	require.NoError(t, Export(dir, b.s.Graph(), b.sess, b.signatures(), ExportOptions{}))
	in := map[string]any{"x": b.randomInput(3, 4)}
	run := func(opts LoadOptions) (*tfgo.Tensor, int) {
		m, err := LoadWithOptions(dir, opts)
		require.NoError(t, err)
		defer m.Close()
		out, err := m.Run(context.Background(), "serving_default", in)
		require.NoError(t, err)
		s := m.sigs["serving_default"]
		traced, tr, err := m.Session().RunTraced(map[tfgo.Output]any{s.inputs["x"]: in["x"]}, s.outputs)
		require.NoError(t, err)
		traced[0].Close()
		return out["y"], len(tr.Ops)
	}
	want, stats := run(LoadOptions{})
	defer want.Close()
	require.NotZero(t, stats)
	got, stats := run(LoadOptions{SingleThreadedExecutor: true})
	defer got.Close()
	// The executor that collects no step stats is the single-threaded one.
	require.Zero(t, stats, "the option's session ran the default executor")
	closeTo(t, "single-threaded vs default executor", want, got, 1e-6)

	_, err := LoadWithOptions(dir, LoadOptions{SingleThreadedExecutor: true, Session: tfgo.SessionOptions{DeviceCount: map[string]int32{"CPU": 2}}})
	require.ErrorIs(t, err, ErrUnsupported)
	require.ErrorContains(t, err, "device count")

	// A graph with TF1 control flow, as a tf.compat.v1 cond exports it.
	meta := &cpb.MetaGraphDef{GraphDef: &graphpb.GraphDef{Node: []*ndpb.NodeDef{{Name: "x", Op: "Placeholder"}, {Name: "s", Op: "Switch", Input: []string{"x", "x"}}}}}
	_, err = withExecutor(tfgo.SessionOptions{}, true, meta)
	require.ErrorIs(t, err, ErrUnsupported)
	require.ErrorContains(t, err, "control flow")
	// The same in a function of the library.
	meta = &cpb.MetaGraphDef{GraphDef: &graphpb.GraphDef{Library: &fnpb.FunctionDefLibrary{Function: []*fnpb.FunctionDef{{NodeDef: []*ndpb.NodeDef{{Name: "w", Op: "StatelessWhile"}}}}}}}
	_, err = withExecutor(tfgo.SessionOptions{}, true, meta)
	require.ErrorIs(t, err, ErrUnsupported)
}
