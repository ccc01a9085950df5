package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bad input to every subcommand is one line on stderr, naming the command,
// and an exit code a script can tell apart; nothing goes to stdout.
func TestBadInputOneLineAndExitCode(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	garbage := write("model.keras", "this is not a zip nor HDF5")
	badIndex := write("bad.weights.json", `{"weight_map": {"/layers/d/vars": [`)
	escaping := write("esc.weights.json", `{"weight_map": {"/layers/d/vars": "../../etc/passwd"}}`)
	fakeCkpt := write("ckpt-1.index", "not a table")
	fakeSM := filepath.Join(dir, "sm")
	require.NoError(t, os.MkdirAll(fakeSM, 0o755))
	write("sm/saved_model.pb", "\xff\xff\xff garbage")
	emptyDir := filepath.Join(dir, "empty")
	require.NoError(t, os.MkdirAll(emptyDir, 0o755))
	npy := write("x.npy", "\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',}")
	missing := filepath.Join(dir, "nope")
	sm := exportPythonSavedModel(t)

	cases := []struct {
		args []string
		code int
		msg  string // a part of the message
	}{
		{[]string{"version", "extra"}, exitUsage, "no arguments"},
		{[]string{"bogus"}, exitUsage, "unknown command"},
		{[]string{"inspect"}, exitUsage, "one PATH"},
		{[]string{"inspect", "--nope", missing}, exitUsage, "unknown flag"},
		{[]string{"inspect", missing}, exitNotFound, "no such file or directory"},
		{[]string{"inspect", garbage}, exitFailure, "not a format gotf reads"},
		{[]string{"inspect", emptyDir}, exitFailure, "neither a saved_model.pb"},
		{[]string{"inspect", fakeSM}, exitFailure, "not a SavedModel proto"},
		{[]string{"inspect", fakeCkpt}, exitFailure, "ckpt-1.index"},
		{[]string{"inspect", badIndex}, exitFailure, "malformed JSON"},
		{[]string{"inspect", escaping}, exitFailure, "not a file beside the index"},
		{[]string{"run", missing, "--input_exprs", "x=[1]"}, exitNotFound, "no such file or directory"},
		{[]string{"run", garbage, "--input_exprs", "x=[1]"}, exitFailure, "not a format gotf reads"},
		{[]string{"run", sm}, exitUsage, "no inputs"},
		{[]string{"run", sm, "--input_json", `{"x": [[1, 2, 3]`}, exitUsage, "malformed JSON"},
		{[]string{"run", sm, "--input_json", `[1, 2]`}, exitUsage, "want an object"},
		{[]string{"run", sm, "--input_json", `{"x": [[1, 2], [3]]}`}, exitUsage, "ragged"},
		{[]string{"run", sm, "--input_exprs", "x=np.ones((1, 3))"}, exitUsage, "not a literal"},
		{[]string{"run", sm, "--input_exprs", "x=[[1, 2, 3]"}, exitUsage, "not a Python literal"},
		{[]string{"run", sm, "--inputs", "x"}, exitUsage, "want <key>=<file>"},
		{[]string{"run", sm, "--inputs", "x=" + missing + ".npy"}, exitNotFound, "no such file"},
		{[]string{"run", sm, "--inputs", "x=" + garbage}, exitFailure, "neither a .npy nor a .npz"},
		{[]string{"run", sm, "--inputs", "x=" + npy}, exitFailure, "fortran_order"},
		{[]string{"run", sm, "--input_exprs", "nope=[1]"}, exitUsage, "has no input \"nope\""},
		{[]string{"run", sm, "--input_exprs", "x=[[1, 2]]"}, exitFailure, "wrong shape"},
		{[]string{"run", sm, "--input_exprs", "x=[['a', 'b', 'c']]"}, exitFailure, "got strings"},
		{[]string{"run", sm, "--signature_def", "nope", "--input_exprs", "x=[[1, 2, 3]]"}, exitFailure, "no signature \"nope\""},
		{[]string{"run", sm, "--tag_set", "train", "--input_exprs", "x=[[1, 2, 3]]"}, exitFailure, "train"},
	}
	for _, c := range cases {
		name := strings.Join(c.args, " ")
		out, errs, code := gotf(t, c.args...)
		assert.Equal(t, c.code, code, "%s: %s", name, errs)
		assert.Empty(t, out, name)
		lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
		if assert.Len(t, lines, 1, "%s: %q", name, errs) {
			assert.True(t, strings.HasPrefix(lines[0], "gotf"), "%s: %s", name, lines[0])
			assert.Contains(t, lines[0], c.msg, name)
		}
	}
}

// --help of every subcommand has examples.
func TestHelpHasExamples(t *testing.T) {
	for _, c := range newRoot().Commands() {
		out := mustGotf(t, c.Name(), "--help")
		assert.Contains(t, out, "Examples:\n  gotf "+c.Name(), c.Name())
	}
}

// version names the linked runtime's TensorFlow version, the one Python
// TensorFlow in the same environment reports.
func TestVersionIsTheRuntimes(t *testing.T) {
	py := python(t, `outputs["v"] = tf.version.VERSION`, nil)
	out := mustGotf(t, "version")
	assert.Contains(t, out, "TensorFlow: "+string(py["v"].Strings[0])+"\n")
	assert.Contains(t, out, "Go:         go")
	js := mustGotf(t, "version", "--json")
	assert.Contains(t, js, `"tensorflow": "`+string(py["v"].Strings[0])+`"`)
}
