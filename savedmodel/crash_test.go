package savedmodel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gotf/gotf/dtypes"
)

// The crash test re-executes the test binary: with crashChildEnv set to a
// prefix (and crashModeEnv to the writer to use), TestMain runs crashChild
// instead of the tests, which overwrites the bundle at that prefix. In the
// "stream" and "parallel" modes the child stops half-way through the data,
// prints "WRITING" and waits on its standard input: the parent kills it
// there with SIGKILL, deterministically mid-write (or, to show the child
// does overwrite the bundle when left alone, answers "GO"). WriteBundle
// offers no such point to stop at, so in the "writebundle" mode the parent
// freezes the child with SIGSTOP while it writes and checks the frozen
// state before killing it (see crash_linux_test.go).
const (
	crashChildEnv = "GOTF_SAVEDMODEL_CRASH_PREFIX"
	crashModeEnv  = "GOTF_SAVEDMODEL_CRASH_MODE"
	crashTensors  = 32
	crashTensorMB = 4 // 32 tensors of 4 MiB: a 128 MiB checkpoint
	crashShards   = 3 // shards the child writes in the parallel modes
)

// crashTensor is tensor i of the large checkpoint, random bytes from seed
// (ChaCha8 fills them in bulk: quick even under the race detector).
func crashTensor(seed uint64, i int) *Tensor {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(i))
	data := make([]byte, crashTensorMB<<20)
	rand.NewChaCha8(key).Read(data)
	return &Tensor{DType: dtypes.Float, Shape: []int64{crashTensorMB << 18}, Data: data}
}

func crashName(i int) string { return fmt.Sprintf("t%02d", i) }

// crashChild overwrites the bundle at the prefix with the tensors of seed
// 2 and reports its progress on stdout.
func crashChild() {
	prefix := os.Getenv(crashChildEnv)
	var outMu sync.Mutex
	say := func(s string) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Println(s)
	}
	fail := func(err error) {
		say("ERROR " + err.Error())
		os.Exit(2)
	}
	// halfway says WRITING and blocks until the parent answers GO; the
	// parent normally kills the child here. At the end of its input (the
	// parent is gone) the child gives up without finishing.
	halfway := func() {
		say("WRITING")
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "GO" {
			say("ABANDONED")
			os.Exit(3)
		}
	}
	switch mode := os.Getenv(crashModeEnv); mode {
	case "stream":
		w, err := NewBundleWriter(prefix, WriteOptions{NumShards: 2})
		if err != nil {
			fail(err)
		}
		for i := range crashTensors {
			if i == crashTensors/2 {
				halfway()
			}
			if err := w.Add(crashName(i), crashTensor(2, i)); err != nil {
				fail(err)
			}
		}
		if err := w.Close(); err != nil {
			fail(err)
		}
	case "parallel":
		// WriteBundle's parallel shards, through the calls it makes (one
		// goroutine per shard adding its tensors to its shard), every
		// goroutine stopping half-way through its tensors.
		w, err := NewBundleWriter(prefix, WriteOptions{NumShards: crashShards})
		if err != nil {
			fail(err)
		}
		var half, all sync.WaitGroup
		release := make(chan struct{})
		for s := range crashShards {
			var mine []int
			for i := s; i < crashTensors; i += crashShards {
				mine = append(mine, i)
			}
			half.Add(1)
			all.Add(1)
			go func() {
				defer all.Done()
				for j, i := range mine {
					if j == len(mine)/2 {
						half.Done()
						<-release
					}
					if err := w.add(crashName(i), s, crashTensor(2, i)); err != nil {
						fail(err)
					}
				}
			}()
		}
		half.Wait()
		halfway()
		close(release)
		all.Wait()
		if err := w.Close(); err != nil {
			fail(err)
		}
	case "writebundle":
		ts := map[string]*Tensor{}
		for i := range crashTensors {
			ts[crashName(i)] = crashTensor(2, i)
		}
		say("WRITING")
		if err := WriteBundle(prefix, ts, WriteOptions{NumShards: crashShards}); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
	say("DONE")
	os.Exit(0)
}

// crashProc is a running child of the crash test.
type crashProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

// startCrashChild starts a child overwriting the bundle at prefix in mode
// and waits for its first line, which must be WRITING.
func startCrashChild(t *testing.T, prefix, mode string) *crashProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+prefix, crashModeEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &crashProc{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	t.Cleanup(func() { c.kill() })
	if first := c.next(); first != "WRITING" {
		c.kill()
		t.Fatalf("the child's first line is %q, want WRITING", first)
	}
	return c
}

// next returns the child's next line, "" at the end of its output.
func (c *crashProc) next() string {
	if c.lines.Scan() {
		return c.lines.Text()
	}
	return ""
}

// kill kills the child with SIGKILL (if it is still running), reaps it
// and returns the rest of its output.
func (c *crashProc) kill() string {
	if c.cmd.ProcessState != nil {
		return ""
	}
	c.cmd.Process.Kill()
	var rest []string
	for l := c.next(); l != ""; l = c.next() {
		rest = append(rest, l)
	}
	c.stdin.Close()
	c.cmd.Wait()
	return strings.Join(rest, "\n")
}

// writeOld writes the previous checkpoint (seed 1) at dir/ckpt and returns
// the prefix, its tensors and its index bytes.
func writeOld(t *testing.T, dir string) (string, map[string]*Tensor, []byte) {
	t.Helper()
	prefix := filepath.Join(dir, "ckpt")
	old := map[string]*Tensor{}
	for i := range crashTensors {
		old[crashName(i)] = crashTensor(1, i)
	}
	if err := WriteBundle(prefix, old, WriteOptions{NumShards: 2}); err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(IndexFilename(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return prefix, old, index
}

// checkBundleHolds checks that the bundle at prefix reads, every tensor
// passing its checksum, and holds exactly want.
func checkBundleHolds(t *testing.T, prefix string, want map[string]*Tensor, what string) {
	t.Helper()
	r, err := OpenBundle(prefix)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer r.Close()
	if got := len(r.Names()); got != len(want) {
		t.Fatalf("%s: %d tensors, want %d", what, got, len(want))
	}
	for n, w := range want {
		got, err := r.Read(n)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !bytes.Equal(got.Data, w.Data) {
			t.Fatalf("%s: %s holds other values", what, n)
		}
	}
}

// tempFiles describes the temporary files of bundles being written in
// dir: how many data shards there are, how many of them hold data, and
// how many index files.
type tempFiles struct {
	data, withData, index int
	desc                  string
}

func tempFilesIn(t *testing.T, dir string) tempFiles {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tf tempFiles
	var desc []string
	for _, e := range ents {
		if !strings.Contains(e.Name(), ".tempstate") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		desc = append(desc, fmt.Sprintf("%s (%d bytes)", e.Name(), fi.Size()))
		switch {
		case strings.Contains(e.Name(), ".data-"):
			tf.data++
			if fi.Size() > 0 {
				tf.withData++
			}
		case strings.Contains(e.Name(), ".index"):
			tf.index++
		}
	}
	tf.desc = strings.Join(desc, ", ")
	if tf.desc == "" {
		tf.desc = "none"
	}
	return tf
}

// TestCrashWhileWriting: a process killed with SIGKILL while it overwrites
// a large checkpoint (with the streaming writer, and with WriteBundle's
// parallel shards) leaves the previous checkpoint at the same prefix fully
// readable, every tensor passing its checksum. The child is killed while
// it waits half-way through the data; the same child left to go on
// replaces the checkpoint, so the kill is what kept it.
func TestCrashWhileWriting(t *testing.T) {
	for _, c := range []struct {
		mode   string
		shards int
	}{{"stream", 2}, {"parallel", crashShards}} {
		t.Run(c.mode, func(t *testing.T) {
			dir := t.TempDir()
			prefix, old, oldIndex := writeOld(t, dir)

			// Over a bundle of as many shards, the writer adds one more,
			// empty (see BundleWriter).
			extra := 0
			if bundleShards(prefix) == c.shards {
				extra = 1
			}
			child := startCrashChild(t, prefix, c.mode)
			// The child waits half-way: every shard it writes holds data,
			// there is no new index yet, and the old one is in place.
			files := tempFilesIn(t, dir)
			if files.data != c.shards+extra || files.withData != c.shards || files.index != 0 {
				t.Errorf("the child waits, but its temporary files are not those of a bundle half written: %s", files.desc)
			}
			if index, _ := os.ReadFile(IndexFilename(prefix)); !bytes.Equal(index, oldIndex) {
				t.Error("the index changed before the child's commit")
			}
			if rest := child.kill(); rest != "" {
				t.Fatalf("the child said %q after WRITING", rest)
			}
			if after := tempFilesIn(t, dir); after.desc != files.desc {
				t.Errorf("the files changed between the check and the kill: %s, then %s", files.desc, after.desc)
			}
			checkBundleHolds(t, prefix, old, "after the kill")
			t.Logf("killed mid-write with %s", files.desc)

			// Control: released, the same child replaces the checkpoint.
			child = startCrashChild(t, prefix, c.mode)
			if _, err := io.WriteString(child.stdin, "GO\n"); err != nil {
				t.Fatal(err)
			}
			if last := child.next(); last != "DONE" {
				t.Fatalf("the released child said %q, want DONE", last)
			}
			if err := child.cmd.Wait(); err != nil {
				t.Fatalf("the released child: %v", err)
			}
			want := map[string]*Tensor{}
			for i := range crashTensors {
				want[crashName(i)] = crashTensor(2, i)
			}
			checkBundleHolds(t, prefix, want, "after the released child")
		})
	}
	t.Run("writebundle", testCrashWriteBundle)
}
