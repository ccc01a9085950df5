// Package killtest is the kill harness of savedmodel's writers: it starts
// the test binary again as a child that saves in a loop, kills it with
// SIGKILL at a random moment, and lets the test check what the kill left
// on disk, N times.
package killtest

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The child's environment: which writer to run, and where.
const (
	WriterEnv = "GOTF_KILLTEST_WRITER"
	DirEnv    = "GOTF_KILLTEST_DIR"
	// KillsEnv sets the number of kills per writer (GOTF_KILLS=100).
	KillsEnv = "GOTF_KILLS"
)

// Kills is the number of kills per writer: GOTF_KILLS, or def.
func Kills(t *testing.T, def int) int {
	if s := os.Getenv(KillsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", KillsEnv, s)
		}
		return n
	}
	return def
}

// Child returns the writer this process runs as a kill-test child, or "".
func Child() (writer, dir string) { return os.Getenv(WriterEnv), os.Getenv(DirEnv) }

// Stats sums up one writer's kills.
type Stats struct {
	Kills    int // children killed
	Saves    int // saves the children reported complete before their kill
	Failures int // checks that failed
}

func (s Stats) String() string {
	return fmt.Sprintf("%d kills, %d saves completed in between, %d failed checks", s.Kills, s.Saves, s.Failures)
}

// Run kills n children running writer in dir. Each child must print
// READY once set up and "SAVED ..." after each complete save; it is
// killed a random time under maxDelay after READY. check runs after each
// kill, with the child's last SAVED line (or ""), and reports what is
// wrong on disk.
func Run(t *testing.T, writer, dir string, n int, maxDelay time.Duration, check func(kill int, lastSaved string) error) Stats {
	t.Helper()
	var st Stats
	for i := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), WriterEnv+"="+writer, DirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		var last string
		saves := 0
		take := func(l string) {
			if strings.HasPrefix(l, "SAVED") {
				last = l
				saves++
			} else if l != "READY" {
				t.Errorf("kill %d: the child said %q", i, l)
			}
		}
		ready := false
		timeout := time.After(2 * time.Minute)
		for !ready {
			select {
			case l, ok := <-lines:
				if !ok {
					cmd.Wait()
					t.Fatalf("kill %d: the child ended before READY", i)
				}
				ready = l == "READY"
				if !ready {
					take(l)
				}
			case <-timeout:
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("kill %d: the child was not READY within 2 minutes", i)
			}
		}
		time.Sleep(time.Duration(rand.Int64N(int64(maxDelay))))
		cmd.Process.Kill()
		for l := range lines {
			take(l)
		}
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("kill %d: the child ended by itself (%v)", i, err)
		}
		st.Kills++
		st.Saves += saves
		if err := check(i, last); err != nil {
			st.Failures++
			t.Errorf("kill %d (after %d saves, the last %q): %v", i, saves, last, err)
		}
	}
	return st
}

// Temporaries lists the entries of dir whose names contain one of marks.
// Only Linux builds can tell a dead writer's temporaries from a live
// one's and remove them (savedmodel's flocks): elsewhere it lists none.
func Temporaries(dir string, marks ...string) ([]string, error) {
	if runtime.GOOS != "linux" {
		return nil, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		for _, m := range marks {
			if strings.Contains(e.Name(), m) {
				out = append(out, e.Name())
				break
			}
		}
	}
	return out, nil
}
