// Package docker holds the container recipes; its test checks that every
// command and path they name exists, since no Docker engine runs where the
// tests run: a recipe's steps are the Makefile targets CI runs, so a
// renamed target, script, command or flag fails here rather than in
// someone's docker build.
package docker

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	makeTarget = regexp.MustCompile(`\bmake ([a-z][a-z-]*)`)
	binary     = regexp.MustCompile(`/src/out/([a-z-]+)`)
	flagName   = regexp.MustCompile(`"--([a-z_]+)=`)
	copySrc    = regexp.MustCompile(`(?m)^COPY (?:--chown=\S+ )?(\S+) `)
	fromStage  = regexp.MustCompile(`(?m)^FROM \S+(?: AS (\S+))?`)
	copyFrom   = regexp.MustCompile(`(?m)^COPY --from=(\S+) `)
	libPath    = regexp.MustCompile(`\.libtensorflow/lib/(\S+)`)
)

func TestRecipesNameWhatExists(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	setup, err := os.ReadFile(filepath.Join(root, "scripts", "setup.sh"))
	if err != nil {
		t.Fatal(err)
	}
	// gotf-serve's flags are defined by serve.Main.
	var serveMain []byte
	for _, dir := range []string{filepath.Join(root, "cmd", "gotf-serve"), filepath.Join(root, "serve")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && !strings.HasSuffix(f, "_test.go") {
				serveMain = append(serveMain, b...)
			}
		}
	}
	recipes, _ := filepath.Glob("Dockerfile.*")
	if len(recipes) < 2 {
		t.Fatalf("want the CPU and GPU recipes, found %v", recipes)
	}
	for _, r := range recipes {
		b, err := os.ReadFile(r)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, m := range makeTarget.FindAllStringSubmatch(text, -1) {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m[1]) + `:`).Match(makefile) {
				t.Errorf("%s: make %s: no such Makefile target", r, m[1])
			}
		}
		for _, m := range binary.FindAllStringSubmatch(text, -1) {
			if _, err := os.Stat(filepath.Join(root, "cmd", m[1])); err != nil {
				t.Errorf("%s: out/%s: no cmd/%s to build it from", r, m[1], m[1])
			}
			if !strings.Contains(string(makefile), "-o out/"+m[1]+" ") {
				t.Errorf("%s: out/%s: no Makefile target builds it", r, m[1])
			}
		}
		for _, m := range flagName.FindAllStringSubmatch(text, -1) {
			if !strings.Contains(string(serveMain), `"`+m[1]+`"`) {
				t.Errorf("%s: gotf-serve has no flag --%s", r, m[1])
			}
		}
		for _, m := range copySrc.FindAllStringSubmatch(text, -1) {
			if strings.HasPrefix(m[0], "COPY --from") {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
				t.Errorf("%s: COPY %s: not in the build context (the repository)", r, m[1])
			}
		}
		stages := map[string]bool{}
		for _, m := range fromStage.FindAllStringSubmatch(text, -1) {
			if m[1] != "" {
				stages[m[1]] = true
			}
		}
		for _, m := range copyFrom.FindAllStringSubmatch(text, -1) {
			if !stages[m[1]] {
				t.Errorf("%s: COPY --from=%s: no such stage", r, m[1])
			}
		}
		// The run stage copies the libraries setup.sh links into the prefix.
		for _, m := range libPath.FindAllStringSubmatch(text, -1) {
			lib := strings.TrimPrefix(strings.TrimSuffix(m[1], ".so.2"), "lib")
			if !strings.Contains(string(setup), lib) {
				t.Errorf("%s: .libtensorflow/lib/%s: setup.sh does not make it", r, m[1])
			}
		}
		if !strings.Contains(text, "\nUSER ") {
			t.Errorf("%s: the image runs as root (no USER)", r)
		}
	}
}
