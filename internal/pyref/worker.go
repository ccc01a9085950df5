package pyref

import (
	"github.com/gotf/gotf/internal/setup"

	"bufio"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

//go:embed worker.py
var workerSource []byte

const (
	// stderrTailSize bounds the worker's standard error kept for error messages.
	stderrTailSize = 64 << 10
	// exitTimeout bounds how long the worker may take to exit on its own,
	// after stdin is closed or its stdout has ended, before it is killed.
	exitTimeout = 10 * time.Second
	// syncTimeout bounds how long Run waits for the worker's stderr output
	// to catch up with its response.
	syncTimeout = 2 * time.Second
)

// Worker is a Python process that runs code on request. Its methods are
// safe for concurrent use; requests are served one at a time.
type Worker struct {
	mu       sync.Mutex // serializes requests and Close
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	stdout   *bufio.Reader
	stdoutF  *os.File
	stderr   *tailWriter
	replies  int           // lines the worker has written to stdout
	done     chan struct{} // closed when the process has exited
	waitErr  error         // result of cmd.Wait, set before done is closed
	err      error         // if non-nil, the worker is unusable
	closed   bool
	closeErr error
}

type request struct {
	Code   string            `json:"code"`
	Inputs map[string]*Array `json:"inputs"`
}

type response struct {
	Ready   bool              `json:"ready"`
	Outputs map[string]*Array `json:"outputs"`
	Error   string            `json:"error"`
}

// PythonError is the error [Worker.Run] returns when the Python code raises
// an exception. The worker stays usable.
type PythonError struct {
	// Traceback is the Python traceback, ending with the exception type
	// and message.
	Traceback string
}

// Error returns the traceback.
func (e *PythonError) Error() string {
	return "pyref: Python code raised an exception:\n" + strings.TrimRight(e.Traceback, "\n")
}

// Start starts a Python worker and waits until it has imported TensorFlow.
//
// The interpreter is $GOTF_PYTHON if that is set (a bare name is looked up
// in $PATH), else .venv/bin/python in the module root: the nearest ancestor
// of the current directory that holds a go.mod file. The worker runs with
// PYTHONDONTWRITEBYTECODE=1 and, unless set already, TF_CPP_MIN_LOG_LEVEL=3.
//
// The worker's standard error is kept (its last 64 KiB) for error messages
// and [Worker.Stderr]. Once start-up is over, it is also copied to the
// standard error of the Go process, so that what the Python code prints is
// visible, while TensorFlow's start-up messages are not.
func Start() (*Worker, error) {
	python, err := pythonPath()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(python); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("pyref: Python reference environment not found at %s: "+
				"run 'make setup' (it installs tensorflow==2.21.0 into .venv)", python)
		}
		return nil, fmt.Errorf("pyref: Python reference environment: %w", err)
	}

	script, err := writeScript()
	if err != nil {
		return nil, err
	}
	// The interpreter has read the whole script by the time it reports
	// ready, so the file is not needed after Start returns.
	defer os.Remove(script)

	cmd := exec.Command(python, "-u", script)
	cmd.Env = workerEnv()
	cmd.WaitDelay = exitTimeout
	w := &Worker{
		cmd:    cmd,
		stderr: newTailWriter(stderrTailSize, os.Stderr),
		done:   make(chan struct{}),
	}
	cmd.Stderr = w.stderr
	if w.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("pyref: %w", err)
	}
	// A pipe of our own rather than cmd.StdoutPipe, which cmd.Wait would
	// close under a concurrent read.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pyref: %w", err)
	}
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("pyref: starting %s: %w", python, err)
	}
	pw.Close()
	w.stdoutF = pr
	w.stdout = bufio.NewReader(pr)
	go func() {
		w.waitErr = cmd.Wait()
		close(w.done)
	}()

	line, err := w.stdout.ReadBytes('\n')
	if err != nil {
		return nil, w.fail(fmt.Errorf("pyref: starting worker %s: %w", python, err), false)
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil || !resp.Ready {
		return nil, w.fail(fmt.Errorf("pyref: starting worker %s: unexpected first line %.200q", python, line), true)
	}
	w.replies = 1
	return w, nil
}

// Run executes code in the worker with the given inputs and returns the
// arrays the code stored in outputs. If the code raises an exception, the
// error is a [*PythonError]. If the worker has died, the error includes the
// tail of its standard error, and the worker is unusable from then on.
//
// Run returns after what the code printed has been copied to standard
// error.
func (w *Worker) Run(code string, inputs map[string]*Array) (map[string]*Array, error) {
	for name, a := range inputs {
		if err := a.validate(); err != nil {
			return nil, fmt.Errorf("pyref: input %q: %w", name, err)
		}
	}
	req, err := json.Marshal(request{Code: code, Inputs: inputs})
	if err != nil {
		return nil, fmt.Errorf("pyref: encoding request: %w", err)
	}
	req = append(req, '\n')

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return nil, w.err
	}
	if _, err := w.stdin.Write(req); err != nil {
		return nil, w.fail(fmt.Errorf("pyref: sending request: %w", err), false)
	}
	line, err := w.stdout.ReadBytes('\n')
	if err != nil {
		return nil, w.fail(fmt.Errorf("pyref: reading response: %w", err), false)
	}
	// Let what the code wrote to stderr reach the Go side first, so that it
	// shows up in the right place of the test log.
	w.replies++
	w.stderr.waitSynced(w.replies, syncTimeout)
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, w.fail(fmt.Errorf("pyref: decoding response %.200q: %w", line, err), true)
	}
	if resp.Error != "" {
		return nil, &PythonError{Traceback: resp.Error}
	}
	outputs := resp.Outputs
	if outputs == nil {
		outputs = map[string]*Array{}
	}
	for name, a := range outputs {
		if err := a.validate(); err != nil {
			return nil, fmt.Errorf("pyref: output %q: %w", name, err)
		}
		if a.Shape == nil {
			a.Shape = []int64{}
		}
	}
	return outputs, nil
}

// Stderr returns the last 64 KiB the worker wrote to its standard error.
func (w *Worker) Stderr() string {
	return w.stderr.String()
}

// Close closes the worker's standard input, which makes it exit, and waits
// for it to exit; a worker that does not exit within 10 seconds is killed.
// Close returns an error if the worker exits abnormally. Calling Close again
// returns the same result.
func (w *Worker) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.closeErr
	}
	w.closed = true
	failed := w.err != nil
	w.stdin.Close()
	w.wait()
	w.stdoutF.Close()
	if !failed && w.waitErr != nil {
		w.closeErr = fmt.Errorf("pyref: worker exited: %w%s", w.waitErr, w.stderrSuffix())
	}
	if !failed {
		w.err = errors.New("pyref: worker is closed")
	}
	return w.closeErr
}

// fail marks the worker unusable after err, making sure the process is gone
// (killing it at once if kill is set, when the protocol is out of step),
// and returns err with the process's exit status and stderr tail added.
// The caller holds w.mu or has not yet published w.
func (w *Worker) fail(err error, kill bool) error {
	w.stdin.Close()
	if kill {
		w.cmd.Process.Kill()
	}
	w.wait()
	w.stdoutF.Close()
	w.err = fmt.Errorf("%w (worker: %v)%s", err, w.waitErr, w.stderrSuffix())
	return w.err
}

// wait waits for the process to exit, killing it if it takes too long.
func (w *Worker) wait() {
	t := time.NewTimer(exitTimeout)
	defer t.Stop()
	select {
	case <-w.done:
		return
	case <-t.C:
	}
	w.cmd.Process.Kill()
	<-w.done
}

// stderrSuffix returns the tail of the worker's stderr, formatted to end an
// error message.
func (w *Worker) stderrSuffix() string {
	tail := strings.TrimRight(w.stderr.String(), "\n")
	if tail == "" {
		return ""
	}
	return "\nworker stderr (tail):\n" + tail
}

// pythonPath returns the Python interpreter to run.
func pythonPath() (string, error) {
	if p := os.Getenv("GOTF_PYTHON"); p != "" {
		if !strings.ContainsRune(p, filepath.Separator) {
			if lp, err := exec.LookPath(p); err == nil {
				return lp, nil
			}
		}
		return p, nil
	}
	root, err := setup.ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("pyref: %w; set GOTF_PYTHON", err)
	}
	return filepath.Join(root, ".venv", "bin", "python"), nil
}

// writeScript writes the embedded worker script to a temporary file and
// returns its name.
func writeScript() (string, error) {
	f, err := os.CreateTemp("", "pyref-worker-*.py")
	if err != nil {
		return "", fmt.Errorf("pyref: writing worker script: %w", err)
	}
	_, err = f.Write(workerSource)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("pyref: writing worker script: %w", err)
	}
	return f.Name(), nil
}

// workerEnv returns the environment of the worker process.
func workerEnv() []string {
	env := append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if _, ok := os.LookupEnv("TF_CPP_MIN_LOG_LEVEL"); !ok {
		env = append(env, "TF_CPP_MIN_LOG_LEVEL=3")
	}
	return env
}
