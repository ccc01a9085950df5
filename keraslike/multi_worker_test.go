package keraslike

import (
	"bufio"
	"context"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotf/gotf/distribute"
	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A started TensorFlow server cannot be stopped in its process, so each
// worker of these tests is this test binary again, running
// TestMultiWorkerMirroredStrategy with its job in mwChildEnv and its task
// in TF_CONFIG, as a cluster manager would start it.
const mwChildEnv = "GOTF_KERASLIKE_MW_CHILD"

// mwJob is what a worker process does.
type mwJob struct {
	Devices int    // logical CPUs, one replica each
	Init    string // gob of the initial weights, which the chief sets
	Out     string // where the worker writes its training state (gob)
	Backup  string // BackupAndRestore's directory ("" none)
	Ckpt    string // ModelCheckpoint's directory, one per task
	Epochs  int
	Chief   bool // task 0 is the cluster's "chief" job, the others "worker" 0, 1, ...
}

const mwSteps = 20 // batches per epoch (mirrorDenseData)

func mwOptimizer() Optimizer {
	// Clipped every step by the global norm: the norm of the all-reduced
	// gradient, the same on every worker.
	return NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01, GlobalClipNorm: 0.5}})
}

// mwWorker is a worker process: it trains the MLP of the mirrored tests
// on mirrorDenseData with a multi-worker strategy from TF_CONFIG, the
// chief starting from the initial weights and the others from what the
// strategy broadcasts, then writes its state and says DONE. A failed Fit
// is reported as "FITERROR <error>" and the process exits without closing
// its session (which waits for a dead peer).
func mwWorker(t *testing.T, spec string) {
	var job mwJob
	require.NoError(t, json.Unmarshal([]byte(spec), &job))
	var devs []string
	for k := range job.Devices {
		devs = append(devs, fmt.Sprintf("/device:CPU:%d", k))
	}
	st, err := distribute.NewMultiWorkerMirroredStrategy(distribute.MultiWorkerOptions{Devices: devs, CollectiveTimeout: 30 * time.Second, HealthCheckInterval: time.Second})
	require.NoError(t, err)
	m := mirrorDenseModel(t)
	require.NoError(t, m.Compile(CompileOptions{Optimizer: mwOptimizer(), Loss: MeanSquaredError{}, Strategy: st}))
	if st.IsChief() {
		f, err := os.Open(job.Init)
		require.NoError(t, err)
		var raw [][]byte
		require.NoError(t, gob.NewDecoder(f).Decode(&raw))
		f.Close()
		ws := m.Weights()
		init := make([]*tfgo.Tensor, len(ws))
		for i, w := range ws {
			init[i], err = tfgo.NewTensorFromBytes(w.DType(), w.Shape(), raw[i])
			require.NoError(t, err)
		}
		require.NoError(t, m.SetWeights(init))
	}
	cbs := []Callback{progress{}}
	if job.Backup != "" {
		cbs = append(cbs, &BackupAndRestore{BackupDir: job.Backup, SaveFreq: 3})
	}
	if job.Ckpt != "" {
		cbs = append(cbs, &ModelCheckpoint{Path: filepath.Join(job.Ckpt, "ckpt-{epoch}"), WeightsOnly: true})
	}
	fmt.Printf("REPLICAS %d IN SYNC %d WORKER %d CHIEF %v\n", st.NumReplicas(), st.NumReplicasInSync(), st.WorkerIndex(), st.IsChief())
	_, err = m.Fit(context.Background(), mirrorDenseData(), FitOptions{Epochs: job.Epochs, StepsPerEpoch: mwSteps, Callbacks: cbs})
	if err != nil {
		fmt.Println("FITERROR", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
	state := trainingState(t, m)
	ws, err := m.GetWeights()
	require.NoError(t, err)
	for i, w := range ws {
		state[fmt.Sprintf("weight %d", i)] = w.Data()
	}
	f, err := os.Create(job.Out)
	require.NoError(t, err)
	require.NoError(t, gob.NewEncoder(f).Encode(state))
	require.NoError(t, f.Close())
	fmt.Println("DONE")
	os.Exit(0)
}

// mwProc is a running worker.
type mwProc struct {
	cmd   *exec.Cmd
	lines chan string // its stdout, closed when it ends
	mu    sync.Mutex
	out   []string
}

// startWorker starts process index of a cluster at addrs with job: task
// index of the workers, or with job.Chief the chief (0) and the workers.
func startWorker(t *testing.T, addrs []string, index int, job mwJob) *mwProc {
	t.Helper()
	spec, err := json.Marshal(job)
	require.NoError(t, err)
	cluster := map[string]any{"worker": addrs}
	task := map[string]any{"type": "worker", "index": index}
	if job.Chief {
		cluster = map[string]any{"chief": addrs[:1], "worker": addrs[1:]}
		if task["index"] = index - 1; index == 0 {
			task = map[string]any{"type": "chief", "index": 0}
		}
	}
	tfConfig, err := json.Marshal(map[string]any{"cluster": cluster, "task": task})
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMultiWorkerMirroredStrategy$", "-test.count=1")
	cmd.Env = append(os.Environ(), mwChildEnv+"="+string(spec), "TF_CONFIG="+string(tfConfig))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &mwProc{cmd: cmd, lines: make(chan string, 1000)}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	return p
}

// waitFor reads p's lines until one satisfies ok, returning it; it fails
// the test if p ends first or d passes.
func (p *mwProc) waitFor(t *testing.T, d time.Duration, ok func(string) bool) string {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l, open := <-p.lines:
			if !open {
				p.mu.Lock()
				defer p.mu.Unlock()
				t.Fatalf("worker ended without the line awaited; its output:\n%s", strings.Join(p.out, "\n"))
			}
			if ok(l) {
				return l
			}
		case <-deadline:
			t.Fatalf("no line awaited from the worker within %v", d)
		}
	}
}

// runWorkers runs one training job on n workers to its end and returns
// each worker's state.
func runWorkers(t *testing.T, n int, job mwJob, dir string) []map[string][]byte {
	t.Helper()
	addrs := testutil.FreeAddrs(t, n)
	procs := make([]*mwProc, n)
	for i := range procs {
		j := job
		j.Out = filepath.Join(dir, fmt.Sprintf("state-%d.gob", i))
		if job.Ckpt != "" {
			j.Ckpt = filepath.Join(job.Ckpt, fmt.Sprintf("task-%d", i))
		}
		procs[i] = startWorker(t, addrs, i, j)
	}
	states := make([]map[string][]byte, n)
	for i, p := range procs {
		l := p.waitFor(t, 3*time.Minute, func(l string) bool { return l == "DONE" || strings.HasPrefix(l, "FITERROR") })
		require.Equal(t, "DONE", l, "worker %d", i)
		require.NoError(t, p.cmd.Wait())
		states[i] = readState(t, filepath.Join(dir, fmt.Sprintf("state-%d.gob", i)))
	}
	return states
}

// mwInit writes the initial weights of the MLP to a file and returns them.
func mwInit(t *testing.T, dir string) (string, []*tfgo.Tensor) {
	fresh := mirrorDenseModel(t)
	require.NoError(t, fresh.Build())
	init, err := fresh.GetWeights()
	require.NoError(t, err)
	fresh.Close()
	raw := make([][]byte, len(init))
	for i, w := range init {
		raw[i] = w.Data()
	}
	path := filepath.Join(dir, "init.gob")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, gob.NewEncoder(f).Encode(raw))
	require.NoError(t, f.Close())
	return path, init
}

// Two worker processes with TF_CONFIG, one or two logical CPUs each, train
// 20 steps and end with the same state bit for bit (weights, Adam's slots
// and counters, the hidden replica copies), equal (1e-5) to one process
// training on the same global batches; only the chief's ModelCheckpoint
// writes, and its checkpoint reads in Python and in one-process Go.
func TestMultiWorkerMirroredStrategy(t *testing.T) {
	if spec := os.Getenv(mwChildEnv); spec != "" {
		mwWorker(t, spec)
		return
	}
	dir := t.TempDir()
	initPath, init := mwInit(t, dir)
	ref, _ := trainMirrored(t, mirrorCase{model: mirrorDenseModel, opt: mwOptimizer, loss: MeanSquaredError{}, data: mirrorDenseData()}, 0, init)
	defer ref.Close()
	for _, c := range []struct {
		name    string
		devices int
		chief   bool
	}{{"2x1", 1, false}, {"2x2", 2, false}, {"chief+worker", 1, true}} {
		t.Run(c.name, func(t *testing.T) {
			sub := t.TempDir()
			ckpt := filepath.Join(sub, "ckpt")
			states := runWorkers(t, 2, mwJob{Devices: c.devices, Init: initPath, Epochs: 1, Ckpt: ckpt, Chief: c.chief}, sub)
			requireSameState(t, states[0], states[1])
			want, err := ref.GetWeights()
			require.NoError(t, err)
			for i, w := range ref.Weights() {
				got, ok := states[0][fmt.Sprintf("weight %d", i)]
				require.True(t, ok, "no weight %d in the workers' state", i)
				gt, err := tfgo.NewTensorFromBytes(w.DType(), w.Shape(), got)
				require.NoError(t, err)
				allClose(t, w.Path, want[i], gt, 1e-5, 1e-5)
			}
			_, err = os.Stat(filepath.Join(ckpt, "task-1"))
			assert.ErrorIs(t, err, os.ErrNotExist, "worker 1 wrote checkpoints")
			// The chief's checkpoint holds the trained weights for Python's
			// tf.train.load_checkpoint and for a one-process Go model.
			prefix := filepath.Join(ckpt, "task-0", "ckpt-1")
			var code strings.Builder
			fmt.Fprintf(&code, "r = tf.train.load_checkpoint(%q)\n", prefix)
			for i, w := range ref.Weights() {
				fmt.Fprintf(&code, "outputs['w%d'] = r.get_tensor(%q)\n", i, w.Path)
			}
			py := interop.Python(t, code.String(), nil)
			one := mirrorDenseModel(t)
			defer one.Close()
			require.NoError(t, one.LoadCheckpoint(prefix))
			loaded, err := one.GetWeights()
			require.NoError(t, err)
			for i, w := range ref.Weights() {
				chief := states[0][fmt.Sprintf("weight %d", i)]
				assert.Equal(t, chief, py[fmt.Sprintf("w%d", i)].Data(), "Python's read of %s", w.Path)
				assert.Equal(t, chief, loaded[i].Data(), "Go's read of %s", w.Path)
			}
		})
	}
}

// Killing one worker in the middle of a run fails the other's step with
// an error naming the lost task, well inside the collective timeout;
// starting both again resumes every worker from the chief's latest
// backup (BackupAndRestore every 3 steps), and the run ends in the state
// of a run never interrupted, bit for bit: the data order is fixed and
// the collectives add in the same order every run.
func TestMultiWorkerSurvivesKill(t *testing.T) {
	if os.Getenv(mwChildEnv) != "" {
		t.Skip("a worker of TestMultiWorkerMirroredStrategy")
	}
	dir := t.TempDir()
	initPath, _ := mwInit(t, dir)
	job := mwJob{Devices: 1, Init: initPath, Epochs: 2}

	whole := filepath.Join(dir, "whole")
	require.NoError(t, os.Mkdir(whole, 0o755))
	j := job
	j.Backup = filepath.Join(whole, "backup")
	want := runWorkers(t, 2, j, whole)
	requireSameState(t, want[0], want[1])

	j.Backup = filepath.Join(dir, "backup")
	addrs := testutil.FreeAddrs(t, 2)
	procs := make([]*mwProc, 2)
	for i := range procs {
		w := j
		w.Out = filepath.Join(dir, fmt.Sprintf("killed-%d.gob", i))
		procs[i] = startWorker(t, addrs, i, w)
	}
	steps := 0
	procs[1].waitFor(t, 3*time.Minute, func(l string) bool {
		if strings.HasPrefix(l, "STEP ") {
			steps++
		}
		return steps == 8
	})
	require.NoError(t, procs[1].cmd.Process.Kill())
	killed := time.Now()
	l := procs[0].waitFor(t, time.Minute, func(l string) bool { return l == "DONE" || strings.HasPrefix(l, "FITERROR") })
	elapsed := time.Since(killed)
	t.Logf("the chief failed %v after worker 1 was killed: %s", elapsed, l)
	require.True(t, strings.HasPrefix(l, "FITERROR"), "the chief finished without its peer: %s", l)
	assert.Contains(t, l, "/job:worker/replica:0/task:1")
	assert.Less(t, elapsed, 20*time.Second, "slower than the collective timeout")
	procs[0].cmd.Wait()

	got := runWorkers(t, 2, j, dir)
	requireSameState(t, want[0], got[0])
	requireSameState(t, want[0], got[1])
}
