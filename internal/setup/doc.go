// Package setup checks, without cgo, that the project's set-up has run: the
// libtensorflow prefix that cgo builds against and the Python reference
// environment. Its tests fail, never skip, naming the command that fixes it,
// so a broken install is reported even where the cgo packages cannot build.
package setup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	ex "github.com/gotf/gotf/internal/excerpt"
)

// Fix is what a user runs to get a working set-up.
const Fix = "run 'make setup' then eval \"$(make -s env)\" (or just 'make test')"

// ModuleRoot is the nearest ancestor of the working directory with a go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// CheckRuntime reports whether pkg-config finds tensorflow.pc, as cgo will.
func CheckRuntime() error {
	out, err := exec.Command("pkg-config", "--modversion", "tensorflow").CombinedOutput()
	if err != nil {
		return fmt.Errorf("libtensorflow not found by pkg-config (PKG_CONFIG_PATH=%q): %s\n%s",
			os.Getenv("PKG_CONFIG_PATH"), Fix, out)
	}
	return nil
}

// CheckPython reports whether the Python reference environment exists,
// with the repository's own package python/ (gotf.keraslike) installed in
// it: the Keras references of Go's TransformerBlock and PositionalEmbedding
// come from there, and a venv made before the package was added lacks it.
func CheckPython(root string) error {
	py := filepath.Join(root, ".venv", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		return fmt.Errorf("Python reference environment not found at %s: %s", py, Fix)
	}
	// find_spec imports the package's empty parent only, not Keras.
	cmd := exec.Command(py, "-c", "import importlib.util as u, sys; sys.exit(u.find_spec('gotf') is None or u.find_spec('gotf.keraslike') is None)")
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		if out = bytes.TrimSpace(out); len(out) > 0 {
			err = fmt.Errorf("%v: %s", err, ex.Of(out))
		}
		return fmt.Errorf("the package python/ (gotf.keraslike) is not installed in %s (%v): %s", filepath.Join(root, ".venv"), err, Fix)
	}
	return nil
}
