package setup

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestRuntimeIsSetUp(t *testing.T) {
	if err := CheckRuntime(); err != nil {
		t.Fatal(err)
	}
}

func TestPythonReferenceIsSetUp(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPython(root); err != nil {
		t.Fatal(err)
	}
}

// After a set-up, running it again changes nothing and says nothing.
func TestSecondSetupIsANoOp(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	pc := filepath.Join(root, ".libtensorflow", "lib", "pkgconfig", "tensorflow.pc")
	before, err := os.Stat(pc)
	if err != nil {
		t.Fatalf("%v: %s", err, Fix)
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "setup.sh"), "all")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("setup.sh: %v\n%s", err, out.String())
	}
	if out.Len() != 0 {
		t.Errorf("a second set-up did work:\n%s", out.String())
	}
	after, err := os.Stat(pc)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("a second set-up rewrote %s", pc)
	}
}
