package savedmodel

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testCrashWriteBundle kills a child in the middle of WriteBundle itself.
// WriteBundle has no point to stop at, so the parent freezes the child
// with SIGSTOP (every thread at once) as soon as a data shard holds 8 MiB
// of the 128, and checks the frozen state: all the data shards still
// temporary, no index written, the old index in place. Only then is the
// child killed. If the child got past its data before it froze (it would
// have to write 120 MiB in the time the parent takes to notice 8), the
// attempt proves nothing, is logged and made again; the test fails if no
// attempt in five froze the child mid-write.
func testCrashWriteBundle(t *testing.T) {
	const attempts = 5
	for attempt := 1; attempt <= attempts; attempt++ {
		dir := t.TempDir()
		prefix, old, oldIndex := writeOld(t, dir)
		child := startCrashChild(t, prefix, "writebundle")
		deadline := time.Now().Add(30 * time.Second)
		for !tempDataOver(t, dir, 8<<20) {
			if index, _ := os.ReadFile(IndexFilename(prefix)); !bytes.Equal(index, oldIndex) {
				child.kill()
				t.Fatalf("the child committed a new index, and no temporary data file ever held 8 MiB (temporary files: %s)", tempFilesIn(t, dir).desc)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no temporary data file grew to 8 MiB: %s", tempFilesIn(t, dir).desc)
			}
			time.Sleep(200 * time.Microsecond)
		}
		pid := child.cmd.Process.Pid
		if err := unix.Kill(pid, unix.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		waitStopped(t, pid)
		files := tempFilesIn(t, dir)
		index, _ := os.ReadFile(IndexFilename(prefix))
		if files.data != crashShards || files.withData == 0 || files.index != 0 || !bytes.Equal(index, oldIndex) {
			child.kill()
			t.Logf("attempt %d: the child was past its data when it froze (%s); again", attempt, files.desc)
			continue
		}
		if rest := child.kill(); rest != "" {
			t.Fatalf("the child said %q after WRITING", rest)
		}
		checkBundleHolds(t, prefix, old, "after the kill")
		t.Logf("attempt %d: frozen and killed mid-write with %s", attempt, files.desc)
		return
	}
	t.Fatalf("in %d attempts the child never froze in the middle of its data", attempts)
}

// waitStopped waits until every thread of process pid is stopped.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tasks, _ := filepath.Glob(filepath.Join("/proc", itoa(pid), "task", "*", "stat"))
		stopped := len(tasks) > 0
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue // the thread exited
			}
			// pid (comm) state ...: comm may hold spaces and parentheses.
			s := string(b[bytes.LastIndexByte(b, ')')+1:])
			if st := strings.Fields(s); len(st) == 0 || (st[0] != "T" && st[0] != "t") {
				stopped = false
			}
		}
		if stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not stop", pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// tempDataOver reports whether dir holds a temporary data file of more
// than n bytes.
func tempDataOver(t *testing.T, dir string, n int64) bool {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".data-") && strings.Contains(e.Name(), ".tempstate") {
			if fi, err := e.Info(); err == nil && fi.Size() > n {
				return true
			}
		}
	}
	return false
}
