package distribute

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/setup"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pyTaskScript is a Python TensorFlow worker written the TF1 way, as a
// Python user with no Go in sight would: its own tf.distribute.Server,
// configured as MultiWorkerMirroredStrategy configures one (Python's own
// collective_leader and a device filter naming its task), and a
// tf.compat.v1.Session on that server running CollectiveReduceV2 on its own
// device. It prints "READY" once its server serves, then "RESULT" with what
// the collective gave and the mean of every task's input as numpy computes
// it, and exits when its stdin closes. os._exit, because a started server
// cannot be shut down and would keep the interpreter from exiting.
const pyTaskScript = `
import json, os, sys, traceback
p = json.loads(sys.argv[1])
try:
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.distribute import multi_worker_util
    cluster = tf.train.ClusterSpec(p['cluster'])
    task = p['task']
    config = tf.compat.v1.ConfigProto()
    config.experimental.collective_group_leader = multi_worker_util.collective_leader(cluster, 'worker', task)
    server = tf.distribute.Server(cluster, job_name='worker', task_index=task, config=config)
    print('READY', server.target, flush=True)
    graph = tf.Graph()
    with graph.as_default(), tf.device('/job:worker/replica:0/task:%d/device:CPU:0' % task):
        reduced = tf.raw_ops.CollectiveReduceV2(
            input=tf.constant(np.array(p['inputs'][task], np.float32)),
            group_size=len(p['inputs']), group_key=p['group_key'], instance_key=p['instance_key'],
            ordering_token=[], merge_op='Add', final_op='Div', timeout_seconds=p['timeout_seconds'])
    session_config = tf.compat.v1.ConfigProto()
    session_config.CopyFrom(config)
    session_config.device_filters.append('/job:worker/task:%d' % task)
    with tf.compat.v1.Session(server.target, graph=graph, config=session_config) as sess:
        got = sess.run(reduced, options=tf.compat.v1.RunOptions(timeout_in_ms=int(p['timeout_seconds'] * 2000)))
    mean = np.mean(np.array(p['inputs'], np.float32), axis=0)
    print('RESULT', json.dumps({'reduced': got.tolist(), 'mean': mean.tolist()}), flush=True)
except BaseException:
    print('ERROR', json.dumps(traceback.format_exc()), flush=True)
    os._exit(1)
sys.stdin.read()
os._exit(0)
`

// venvPython is the interpreter pyref runs: $GOTF_PYTHON, else the module's
// .venv. The Python task needs a process of its own, not pyref's shared
// worker, since the server it starts outlives any request.
func venvPython(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GOTF_PYTHON"); p != "" {
		return p
	}
	root, err := setup.ModuleRoot()
	require.NoError(t, err)
	require.NoError(t, setup.CheckPython(root))
	return filepath.Join(root, ".venv", "bin", "python")
}

// lockedBuffer is a child's stderr, written by exec's copying goroutine
// while a failing test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// pyTask is a running pyTaskScript.
type pyTask struct {
	lines  chan string // its READY, RESULT and ERROR lines; closed at EOF
	stderr *lockedBuffer
}

type pyTaskParams struct {
	Cluster        ClusterSpec `json:"cluster"`
	Task           int         `json:"task"`
	Inputs         [][]float32 `json:"inputs"`
	GroupKey       int32       `json:"group_key"`
	InstanceKey    int32       `json:"instance_key"`
	TimeoutSeconds float32     `json:"timeout_seconds"`
}

// startPyTask starts pyTaskScript; the test's cleanup closes its stdin and
// kills it.
func startPyTask(t *testing.T, p pyTaskParams) *pyTask {
	t.Helper()
	arg, err := json.Marshal(p)
	require.NoError(t, err)
	cmd := exec.Command(venvPython(t), "-u", "-c", pyTaskScript, string(arg))
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if _, ok := os.LookupEnv("TF_CPP_MIN_LOG_LEVEL"); !ok {
		cmd.Env = append(cmd.Env, "TF_CPP_MIN_LOG_LEVEL=1")
	}
	cmd.WaitDelay = 5 * time.Second
	task := &pyTask{lines: make(chan string, 4), stderr: &lockedBuffer{}}
	cmd.Stderr = task.stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	go func() {
		defer close(task.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			l := sc.Text()
			if strings.HasPrefix(l, "READY ") || strings.HasPrefix(l, "RESULT ") || strings.HasPrefix(l, "ERROR ") {
				task.lines <- l
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	return task
}

// next is the task's next line, which must start with prefix, within d.
func (p *pyTask) next(t *testing.T, prefix string, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		require.True(t, ok, "Python task exited before %s:\n%s", prefix, p.stderr.String())
		if strings.HasPrefix(l, "ERROR ") {
			var tb string
			json.Unmarshal([]byte(strings.TrimPrefix(l, "ERROR ")), &tb)
			t.Fatalf("Python task failed before %s:\n%s", prefix, tb)
		}
		require.True(t, strings.HasPrefix(l, prefix+" "), "Python task: %s", l)
		return strings.TrimPrefix(l, prefix+" ")
	case <-time.After(d):
		t.Fatalf("Python task: no %s within %v:\n%s", prefix, d, p.stderr.String())
		return ""
	}
}

// TestClusterMixedPythonGo: a Go worker and a Python TF1-graph worker of one
// cluster, each running its own graph in a session on its own server as
// MultiWorkerMirroredStrategy's workers do, all-reduce together: the wire,
// the group resolution by the leader (the Go task) and the ring are
// TensorFlow's on both sides, so only the keys have to agree.
func TestClusterMixedPythonGo(t *testing.T) {
	addrs := testutil.FreeAddrs(t, 2)
	cluster := ClusterSpec{"worker": addrs}
	rng := rand.New(rand.NewPCG(16, 2))
	inputs := make([][]float32, 2)
	for i := range inputs {
		for range 7 {
			inputs[i] = append(inputs[i], rng.Float32()*10-5)
		}
	}
	p := pyTaskParams{Cluster: cluster, Task: 1, Inputs: inputs, GroupKey: 3, InstanceKey: 5, TimeoutSeconds: 30}

	start := time.Now()
	// Python's start-up (importing TensorFlow) is the slow part: it runs
	// while the Go task starts.
	py := startPyTask(t, p)
	target, _ := startTask(t, cluster, "worker", 0)
	pyTarget := py.next(t, "READY", 2*time.Minute)
	assert.Equal(t, "grpc://"+addrs[1], pyTarget)
	t.Logf("both tasks serve after %v", time.Since(start))

	cfg := TFConfig{Cluster: cluster}
	cfg.Task.Type = "worker"
	s := tfgo.NewScope().WithDevice("/job:worker/replica:0/task:0/device:CPU:0")
	r := tfgo.CollectiveReduceV2(s, tfgo.Const(s, inputs[0]),
		tfgo.Const(s, int32(len(inputs))), tfgo.Const(s, p.GroupKey), tfgo.Const(s, p.InstanceKey), nil,
		"Add", "Div", tfgo.CollectiveReduceV2TimeoutSeconds(p.TimeoutSeconds))
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{Target: target, Config: cfg.SessionConfig(nil)})
	require.NoError(t, err)
	t.Cleanup(func() { closeWithin(t, sess, 5*time.Second) })
	// The device filter keeps the Go session to its own task: the Python
	// task's devices are reached only by the collective, not by the graph.
	devs, err := sess.ListDevices()
	require.NoError(t, err)
	for _, d := range devs {
		assert.NotContains(t, d.Name, "/task:1/", "device filter")
	}

	runStart := time.Now()
	out, err := runWithin(t, sess, 2*time.Duration(p.TimeoutSeconds)*time.Second, r)
	require.NoError(t, err)
	got, err := tfgo.Float32s(out[0])
	require.NoError(t, err)
	out[0].Close()
	var res struct{ Reduced, Mean []float32 }
	require.NoError(t, json.Unmarshal([]byte(py.next(t, "RESULT", time.Minute)), &res))
	t.Logf("all-reduce across Go and Python: %v (%v in all)", time.Since(runStart), time.Since(start))

	// (a+b)/2 is the same float32 whichever task adds: equality is exact.
	assert.Equal(t, res.Mean, got, "Go's result vs the mean numpy computes")
	assert.Equal(t, res.Reduced, got, "Go's result vs Python's")
}

// TestStartServerPortInUse: a task whose port is taken fails with an error
// naming the task and its address before TensorFlow tries the port
// (TensorFlow's own error, "Could not start gRPC server", names neither).
// TensorFlow binds the port on every interface, so a listener on another
// local address than the task's takes it too; one on an IPv6 address only
// does not, and StartServer must not refuse what TensorFlow accepts.
func TestStartServerPortInUse(t *testing.T) {
	for _, held := range []string{"127.0.0.1", "0.0.0.0"} {
		l, err := net.Listen("tcp4", net.JoinHostPort(held, "0"))
		require.NoError(t, err)
		_, port, err := net.SplitHostPort(l.Addr().String())
		require.NoError(t, err)
		addr := net.JoinHostPort("127.0.0.1", port)
		cfg, err := ParseTFConfig(fmt.Appendf(nil, `{"cluster": {"worker": ["127.0.0.1:1", %q]}, "task": {"type": "worker", "index": 1}}`, addr))
		require.NoError(t, err)
		_, err = StartServer(cfg)
		assert.EqualError(t, err, fmt.Sprintf("starting the server of /job:worker/task:1: address %q is in use: port %s is taken on this machine", addr, port), "port held on %s", held)
		l.Close()
	}

	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Logf("no IPv6 loopback (%v): the IPv6-only case is not tried", err)
		return
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// A server that starts cannot be stopped: it runs in a child.
	target, _ := startTask(t, ClusterSpec{"worker": {addr}}, "worker", 0)
	assert.Equal(t, "grpc://"+addr, target)
	// It serves on IPv4 only, as it would without the check.
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	require.NoError(t, err)
	c.Close()
}
