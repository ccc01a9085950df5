// Command multiworker trains a small GPT on several worker processes with
// distribute.NewMultiWorkerMirroredStrategy, the way a cluster manager
// runs a multi-worker job: every process runs this same program with its
// own TF_CONFIG.
//
// Without TF_CONFIG it is a launcher for trying this on one machine: it
// picks free 127.0.0.1 ports, starts -workers copies of itself with a
// TF_CONFIG each, prefixes their output with the task, and stops them all
// when one fails:
//
//	go run ./examples/multiworker -workers 2 -steps 40 -dir /tmp/mw
//
// On real hosts, start the same binary on every host with the cluster's
// TF_CONFIG and the same flags (here two hosts, the second one's task):
//
//	TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]},
//	            "task": {"type": "worker", "index": 1}}' ./multiworker -steps 40 -dir /shared/mw
//
// Worker 0 (the chief) writes the checkpoint and model.keras under -dir,
// and every worker resumes from the chief's backup in -dir/backup when the
// job is started again after a failure, so -dir must be one directory all
// workers see (a shared file system), as Keras' BackupAndRestore expects.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/gotf/gotf/distribute"
	"github.com/gotf/gotf/keraslike"
)

// options are the job's flags, the same for every worker.
type options struct {
	Workers int    // processes the launcher starts
	Devices int    // replicas (logical CPUs) per worker
	Steps   int    // training steps (global batches)
	Batch   int    // global batch
	Dir     string // the chief's outputs and the shared backups
}

// optionsEnv passes the options to workers that cannot take flags (the
// workers of this example's test).
const optionsEnv = "GOTF_MULTIWORKER_OPTIONS"

func main() {
	var o options
	flag.IntVar(&o.Workers, "workers", 2, "worker processes to start on 127.0.0.1 (launcher only)")
	flag.IntVar(&o.Devices, "devices", 1, "replicas per worker, one per logical CPU")
	flag.IntVar(&o.Steps, "steps", 40, "training steps")
	flag.IntVar(&o.Batch, "batch", 16, "global batch, split between every replica of every worker")
	flag.StringVar(&o.Dir, "dir", "multiworker-out", "where the chief writes, and every worker finds the backups")
	flag.Parse()
	var err error
	if os.Getenv("TF_CONFIG") != "" {
		err = worker(o, os.Stdout)
	} else {
		err = launch(o, os.Args, os.Stdout)
	}
	if err != nil {
		// A worker that lost a peer cannot close its session (TensorFlow
		// waits for the dead task): exit without it.
		log.Fatal(err)
	}
}

// worker trains this process' part of the job.
func worker(o options, out io.Writer) error {
	if s := os.Getenv(optionsEnv); s != "" {
		if err := json.Unmarshal([]byte(s), &o); err != nil {
			return fmt.Errorf("%s: %w", optionsEnv, err)
		}
	}
	var devs []string
	for k := range max(o.Devices, 1) {
		devs = append(devs, fmt.Sprintf("/device:CPU:%d", k))
	}
	st, err := distribute.NewMultiWorkerMirroredStrategy(distribute.MultiWorkerOptions{Devices: devs})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "worker %d of %d, %d replicas in sync, chief: %v\n", st.WorkerIndex(), st.NumWorkers(), st.NumReplicasInSync(), st.IsChief())
	// Every worker builds the same model; the strategy starts them all
	// from the chief's weights.
	keraslike.ResetNames()
	m, err := keraslike.NewGPT("gpt", keraslike.GPTConfig{Vocab: 64, SeqLen: 32, DModel: 64, Heads: 2, Layers: 2})
	if err != nil {
		return err
	}
	opt := keraslike.NewAdam(keraslike.AdamOptions{OptimizerOptions: keraslike.OptimizerOptions{LearningRate: 3e-3, GlobalClipNorm: 1}})
	if err := m.Compile(keraslike.CompileOptions{Optimizer: opt, Loss: keraslike.SparseCategoricalCrossentropy{FromLogits: true},
		Metrics: []string{"perplexity"}, BatchSize: o.Batch, Strategy: st}); err != nil {
		return err
	}
	// The same token stream on every worker: each trains on its part of
	// every global batch.
	data, err := keraslike.NextTokenDataset(corpus(o.Steps*o.Batch*33+1), 32, o.Batch, 1)
	if err != nil {
		return err
	}
	cbs := []keraslike.Callback{
		&keraslike.BackupAndRestore{BackupDir: filepath.Join(o.Dir, "backup"), SaveFreq: 10},
		&keraslike.ModelCheckpoint{Path: filepath.Join(o.Dir, "ckpt")}, // the chief's only
	}
	hist, err := m.Fit(context.Background(), data, keraslike.FitOptions{Epochs: 1, StepsPerEpoch: o.Steps, Callbacks: cbs})
	if err != nil {
		return err
	}
	logs := hist.Epochs[len(hist.Epochs)-1]
	fmt.Fprintf(out, "trained: loss %.4f, perplexity %.2f\n", logs["loss"], logs["perplexity"])
	if st.IsChief() {
		path := filepath.Join(o.Dir, "model.keras")
		if err := m.SaveKeras(path); err != nil {
			return err
		}
		fmt.Fprintf(out, "saved %s\n", path)
	}
	return m.Close()
}

// corpus is n tokens of a stream with structure to learn: counting runs
// with a stride that changes every 32 tokens.
func corpus(n int) []int32 {
	toks := make([]int32, n)
	for i := range toks {
		stride := (i/32)%7 + 1
		toks[i] = int32((i * stride) % 64)
	}
	return toks
}

// launch starts o.Workers copies of self (the command line to run a
// worker) with a TF_CONFIG each, on free 127.0.0.1 ports, copies their
// output to out prefixed with the task, and waits for all of them. When
// one fails the others are stopped.
func launch(o options, self []string, out io.Writer) error {
	if o.Workers < 1 {
		return fmt.Errorf("-workers must be at least 1, got %d", o.Workers)
	}
	var addrs []string
	var ls []net.Listener
	for range o.Workers {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls { // freed for the workers' servers to bind
		l.Close()
	}
	spec, _ := json.Marshal(o)
	var mu sync.Mutex
	var wg sync.WaitGroup
	cmds := make([]*exec.Cmd, o.Workers)
	errs := make(chan error, o.Workers)
	for i := range cmds {
		cfg, _ := json.Marshal(map[string]any{"cluster": map[string]any{"worker": addrs}, "task": map[string]any{"type": "worker", "index": i}})
		cmd := exec.Command(self[0], self[1:]...)
		cmd.Env = append(os.Environ(), "TF_CONFIG="+string(cfg), optionsEnv+"="+string(spec))
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			return err
		}
		cmds[i] = cmd
		defer cmd.Process.Kill()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(pipe)
			for sc.Scan() {
				mu.Lock()
				fmt.Fprintf(out, "[worker %d] %s\n", i, sc.Text())
				mu.Unlock()
			}
			if err := cmd.Wait(); err != nil {
				errs <- fmt.Errorf("worker %d: %w", i, err)
				return
			}
			errs <- nil
		}()
	}
	var first error
	for range cmds {
		if err := <-errs; err != nil && first == nil {
			first = err
			for _, c := range cmds { // the others would wait for it
				c.Process.Kill()
			}
		}
	}
	wg.Wait()
	return first
}
