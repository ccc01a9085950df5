package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const fixture = `package fixture

import (
	"fmt"
	"testing"
)

func TestPass(t *testing.T) { t.Log("not shown") }

func TestFail(t *testing.T) {
	t.Log("shown: the test failed")
	t.Run("ok", func(t *testing.T) {})
	t.Run("bad", func(t *testing.T) { t.Error("sub failed") })
}

func TestSkip(t *testing.T) { t.Skip("O_DIRECT is refused here") }

func TestSubSkip(t *testing.T) {
	t.Run("direct", func(t *testing.T) { t.Skipf("refused: %v", "EINVAL") })
}

func TestPrint(t *testing.T) { fmt.Println("printed by a passing test") }
`

// goTest runs go test with args on a module holding the fixture and
// returns its standard output and error, merged.
func goTest(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"test"}, append(args, "./...")...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	out, _ := cmd.CombinedOutput() // the fixture fails on purpose
	return string(out)
}

// TestReportIsPlainGoTestPlusSkips: the report of go test -json is what
// plain go test prints (but the timings), followed by the skipped tests
// with their messages.
func TestReportIsPlainGoTestPlusSkips(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command in PATH")
	}
	dir := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":            "module example.com/fixture\n\ngo 1.22\n",
		"fixture_test.go":   fixture,
		"empty/empty.go":    "package empty\n",
		"passing/a_test.go": "package passing\n\nimport (\n\t\"fmt\"\n\t\"testing\"\n)\n\nfunc TestA(t *testing.T) { fmt.Println(\"not shown either\"); t.Skip(\"later\") }\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plain := goTest(t, dir, "-count=1")
	var rep bytes.Buffer
	if err := run(strings.NewReader(goTest(t, dir, "-count=1", "-json")), &rep); err != nil {
		t.Fatal(err)
	}
	got, skips, ok := strings.Cut(rep.String(), "\nskipped tests (")
	if !ok {
		t.Fatalf("no list of skipped tests:\n%s", rep.String())
	}
	// Timings differ, and packages end in any order: compare the lines
	// of package results as a set, and all else in order.
	times := regexp.MustCompile(`\d+\.\d+s`)
	norm := func(s string) string {
		var results, rest []string
		for _, l := range strings.SplitAfter(times.ReplaceAllString(s, "T"), "\n") {
			if strings.HasPrefix(l, "ok  \t") || strings.HasPrefix(l, "FAIL\t") || strings.HasPrefix(l, "?   \t") {
				results = append(results, l)
			} else {
				rest = append(rest, l)
			}
		}
		sort.Strings(results)
		return strings.Join(rest, "") + "\n" + strings.Join(results, "")
	}
	if norm(got) != norm(plain) {
		t.Errorf("the report differs from plain go test:\n--- report\n%s\n--- go test\n%s", got, plain)
	}
	for _, s := range []string{
		"3):\n",
		"SKIP\texample.com/fixture/passing\tTestA: a_test.go:8: later\n",
		"SKIP\texample.com/fixture\tTestSkip: fixture_test.go:16: O_DIRECT is refused here\n",
		"SKIP\texample.com/fixture\tTestSubSkip/direct: fixture_test.go:19: refused: EINVAL\n",
	} {
		if !strings.Contains(skips, s) {
			t.Errorf("the skipped tests lack %q:\n%s", s, skips)
		}
	}
	for _, s := range []string{"FAIL\texample.com/fixture", "ok  \texample.com/fixture/passing", "sub failed", "shown: the test failed", "printed by a passing test"} {
		if !strings.Contains(got, s) {
			t.Errorf("the report lacks %q", s)
		}
	}
	if strings.Contains(got, "not shown") || strings.Contains(got, "=== RUN") || strings.Contains(got, "PASS\n") {
		t.Errorf("the report shows what plain go test does not:\n%s", got)
	}
}
