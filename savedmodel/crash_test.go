package savedmodel

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotf/gotf/dtypes"
)

// The crash test re-executes the test binary: with crashChildEnv set to a
// prefix (and crashModeEnv to the writer to use), TestMain runs crashChild
// instead of the tests, which starts overwriting the bundle at that prefix
// and is killed with SIGKILL half-way.
const (
	crashChildEnv = "GOTF_SAVEDMODEL_CRASH_PREFIX"
	crashModeEnv  = "GOTF_SAVEDMODEL_CRASH_MODE"
	crashTensors  = 32
	crashTensorMB = 4 // 32 tensors of 4 MiB: a 128 MiB checkpoint
)

// crashTensor is tensor i of the large checkpoint, filled from seed.
func crashTensor(seed uint64, i int) *Tensor {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	data := make([]byte, crashTensorMB<<20)
	for j := 0; j < len(data); j += 8 {
		v := rng.Uint64()
		for k := range 8 {
			data[j+k] = byte(v >> (8 * k))
		}
	}
	return &Tensor{DType: dtypes.Float, Shape: []int64{crashTensorMB << 18}, Data: data}
}

// crashChild overwrites the bundle at the prefix with other values and
// reports its progress on stdout; the parent kills it part-way.
func crashChild() {
	prefix := os.Getenv(crashChildEnv)
	fail := func(err error) {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	switch os.Getenv(crashModeEnv) {
	case "stream":
		w, err := NewBundleWriter(prefix, WriteOptions{NumShards: 2})
		if err != nil {
			fail(err)
		}
		for i := range crashTensors {
			if err := w.Add(fmt.Sprintf("t%02d", i), crashTensor(2, i)); err != nil {
				fail(err)
			}
			if i == crashTensors/2 {
				fmt.Println("HALF")
			}
			if i >= crashTensors/2 {
				time.Sleep(50 * time.Millisecond) // stay mid-write until killed
			}
		}
		if err := w.Close(); err != nil {
			fail(err)
		}
	case "parallel":
		ts := map[string]*Tensor{}
		for i := range crashTensors {
			ts[fmt.Sprintf("t%02d", i)] = crashTensor(2, i)
		}
		fmt.Println("WRITING")
		if err := WriteBundle(prefix, ts, WriteOptions{NumShards: 3}); err != nil {
			fail(err)
		}
	}
	fmt.Println("DONE")
	os.Exit(0)
}

// TestCrashWhileWriting: a process killed with SIGKILL while it overwrites
// a large checkpoint (with the streaming writer, and with WriteBundle's
// parallel shards) leaves the previous checkpoint at the same prefix fully
// readable, every tensor passing its checksum.
func TestCrashWhileWriting(t *testing.T) {
	for _, mode := range []string{"stream", "parallel"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			prefix := filepath.Join(dir, "ckpt")
			old := map[string]*Tensor{}
			for i := range crashTensors {
				old[fmt.Sprintf("t%02d", i)] = crashTensor(1, i)
			}
			if err := WriteBundle(prefix, old, WriteOptions{NumShards: 2}); err != nil {
				t.Fatal(err)
			}

			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+prefix, crashModeEnv+"="+mode)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(stdout)
			if !lines.Scan() {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatal("the child said nothing")
			}
			switch first := lines.Text(); first {
			case "HALF":
			case "WRITING":
				// Kill once a temporary data file holds some data.
				deadline := time.Now().Add(20 * time.Second)
				for !tempDataOver(t, dir, 8<<20) {
					if time.Now().After(deadline) {
						cmd.Process.Kill()
						cmd.Wait()
						t.Fatal("no temporary data file grew")
					}
					time.Sleep(time.Millisecond)
				}
			default:
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child: %s", first)
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			var rest strings.Builder
			for lines.Scan() {
				rest.WriteString(lines.Text())
			}
			cmd.Wait()
			if strings.Contains(rest.String(), "DONE") {
				t.Fatal("the child finished before it was killed; the test proves nothing")
			}
			if !tempDataOver(t, dir, 1) {
				t.Error("no temporary file left: the child was not mid-write")
			}

			r, err := OpenBundle(prefix)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := len(r.Names()); got != crashTensors {
				t.Fatalf("%d tensors, want %d", got, crashTensors)
			}
			for n, want := range old {
				got, err := r.Read(n)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Data, want.Data) {
					t.Fatalf("%s differs from the previous checkpoint", n)
				}
			}
		})
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
