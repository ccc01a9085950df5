// Command gotf does for the formats this module reads what TensorFlow's
// own tools do for Python users: `gotf inspect` is saved_model_cli show
// --all (and tf.train.list_variables, and model.summary() for Keras files),
// `gotf run` is saved_model_cli run, `gotf convert` moves a model between
// the Keras and TensorFlow formats, `gotf quantize` is Keras'
// model.quantize("int8") with a report, `gotf train` runs the main job,
// `gotf monitor` is nvidia-smi -l with the host's and a training run's
// figures, `gotf version` names the linked runtime. The model server is
// cmd/gotf-serve.
//
//	go install github.com/gotf/gotf/cmd/gotf@latest
//	gotf inspect /models/half_plus_two/1
//	gotf run /models/half_plus_two/1 --input_exprs 'x=[[1.0],[2.0]]'
//
// Exit codes, so that scripts can rely on them: 0 success; 1 the work
// failed (a file in a format gotf cannot read, a run that fails); 2 bad
// usage (unknown flag, wrong arguments, malformed --inputs, --input_exprs
// or --input_json); 3 a path that does not exist. Every failure is one line
// on stderr, "gotf <command>: <what went wrong>".
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes (see the package doc).
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitNotFound = 3
)

// usageError marks an error as the caller's: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs the command line args and returns the exit code; tests call
// it in-process.
func execute(args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	name := "gotf"
	if cmd != nil && cmd != root {
		name = cmd.CommandPath()
	}
	// One line whatever the error wraps (a runtime status can span lines),
	// so that `2>err; head -1 err` tells the whole story.
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	fmt.Fprintf(stderr, "%s: %s\n", name, msg)
	var ue usageError
	switch {
	case errors.As(err, &ue), strings.HasPrefix(err.Error(), "unknown command"):
		return exitUsage
	case errors.Is(err, fs.ErrNotExist):
		return exitNotFound
	}
	return exitFailure
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "gotf",
		Short: "Inspect and run TensorFlow and Keras models from Go",
		Long: `gotf inspects SavedModels, TensorFlow checkpoints and Keras files, and runs
SavedModel signatures on TensorFlow's own runtime, as saved_model_cli does,
and monitors GPUs, the host and training runs, as nvidia-smi -l does.

Exit codes: 0 success, 1 failure, 2 bad usage or malformed input, 3 a path
that does not exist. Errors are one line on stderr.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newVersionCmd(), newInspectCmd(), newRunCmd(), newConvertCmd(), newMonitorCmd(), newQuantizeCmd(), newTrainCmd(), newServeCmd())
	// cobra's own "completion" command is left out: it adds a subcommand
	// the list does not have, and scripts get nothing from it here.
	root.CompletionOptions.DisableDefaultCmd = true
	return root
}

// exactArgs is cobra.ExactArgs with the usage exit code and the argument named.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("want %s, got %d argument(s)", what, len(args))
		}
		return nil
	}
}
