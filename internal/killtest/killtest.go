// Package killtest is the harness of the kill tests of the module's
// writers (tfgo's Saver and StreamingSaver, keraslike's Keras files and
// checkpoints, savedmodel's bundle writers, CheckpointManager and
// SavedModel export and publication). It is pure Go, so that savedmodel's
// tests stay free of cgo. A child
// process, the test binary re-run on one test function, saves an artifact
// over and over with the weights of a new generation each time; the parent
// kills it with SIGKILL, at a random time or at a file event it watches
// for, and checks that the artifact then loads and holds exactly one
// generation the child saved or was saving (never a mix, never an older
// one), and that a save that completes leaves no temporary files.
package killtest

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Environment of the child.
const (
	envDir   = "GOTF_KILLTEST_DIR"   // the directory to save in
	envGen   = "GOTF_KILLTEST_GEN"   // the first generation to save
	envSaves = "GOTF_KILLTEST_SAVES" // how many saves before exiting
	envPause = "GOTF_KILLTEST_PAUSE" // "1": wait for a line on stdin after the first save
	// KillsEnv sets how many kills each writer's harness makes.
	KillsEnv = "GOTF_KILLS"
)

const linePrefix = "KILLTEST "

// gensPerChild bounds the generations a child saves, so that generation
// numbers stay small (Values stores them exactly in float32).
const gensPerChild = 100

// Kills is the number of kills a writer's harness makes: $GOTF_KILLS, or
// def.
func Kills(t testing.TB, def int) int {
	s := os.Getenv(KillsEnv)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", KillsEnv, s)
	}
	return n
}

// Values is weight k of generation gen, n elements: gen itself first (so
// the generation of a loaded weight can be read off it), then values drawn
// from a generator seeded with gen and k, exact in float32.
func Values(gen, k, n int) []float32 {
	v := make([]float32, n)
	r := rand.New(rand.NewPCG(uint64(gen), uint64(k)))
	for i := range v {
		v[i] = float32(r.IntN(1<<20)) / (1 << 10)
	}
	if n > 0 {
		v[0] = float32(gen)
	}
	return v
}

// GenOf returns the generation whose Values the weights hold, exactly:
// weight k of generation g for every k. An error says which weight differs.
func GenOf(weights [][]float32) (int, error) {
	if len(weights) == 0 || len(weights[0]) == 0 {
		return 0, fmt.Errorf("no weights")
	}
	gen := int(weights[0][0])
	for k, w := range weights {
		if !slices.Equal(w, Values(gen, k, len(w))) {
			return 0, fmt.Errorf("weight %d does not hold generation %d's values (it starts with %v): a mix of generations", k, gen, w[0])
		}
	}
	return gen, nil
}

// Child reports whether this process is a kill-test child. If so, it
// saves with save (which writes generation gen in dir) the number of times
// the parent asked, reporting each save and, after its first, the files in
// dir, and then returns true; the caller's test function returns.
func Child(t *testing.T, setup func(dir string) (save func(gen int) error)) bool {
	dir := os.Getenv(envDir)
	if dir == "" {
		return false
	}
	gen, _ := strconv.Atoi(os.Getenv(envGen))
	saves, _ := strconv.Atoi(os.Getenv(envSaves))
	say := func(format string, args ...any) { fmt.Printf(linePrefix+format+"\n", args...) }
	save := setup(dir)
	say("READY")
	for i := range saves {
		say("SAVING %d", gen+i)
		start := time.Now()
		if err := save(gen + i); err != nil {
			say("ERROR %v", strings.ReplaceAll(err.Error(), "\n", " "))
			t.Fatal(err)
		}
		say("SAVED %d %d", gen+i, time.Since(start).Microseconds())
		if i == 0 {
			say("FILES %s", strings.Join(DirNames(t, dir), "/"))
			if os.Getenv(envPause) == "1" {
				say("PAUSED")
				bufio.NewReader(os.Stdin).ReadString('\n')
			}
		}
	}
	return true
}

// Writer is a writer under test.
type Writer struct {
	// Child is the test function that calls Child for this writer.
	Child string
	// Env is added to the child's environment (to select the writer).
	Env []string
	// Load loads the latest artifact in dir and returns its generation
	// (see GenOf); ok is false when there is none yet.
	Load func(dir string) (gen int, ok bool, err error)
	// Own reports whether a file in dir belongs to the saved artifacts
	// (anything else left after a completed save is a leftover).
	Own func(name string) bool
	// Trigger, if set, kills the child at the first file event in dir
	// (inotify: a creation or a rename into dir) whose name it accepts,
	// instead of at a random time, in its second save (so that there is a
	// previous artifact to lose, its first).
	Trigger func(name string) bool
}

// Stats are a harness run's figures.
type Stats struct {
	Kills        int // children killed
	MidSave      int // of which while saving (after SAVING, before SAVED)
	Failures     int // artifacts that did not load, held a mix, or an old generation
	Leftovers    int // completed saves that left files not Own
	EndLeftovers int // files not Own after the final save
}

func (s Stats) String() string {
	return fmt.Sprintf("%d kills (%d mid-save), %d failures, %d saves leaving temporaries, %d files left at the end",
		s.Kills, s.MidSave, s.Failures, s.Leftovers, s.EndLeftovers)
}

type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func start(t *testing.T, w Writer, dir string, gen, saves int, pause bool) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+w.Child+"$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), w.Env...),
		envDir+"="+dir, envGen+"="+strconv.Itoa(gen), envSaves+"="+strconv.Itoa(saves))
	if pause {
		cmd.Env = append(cmd.Env, envPause+"=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 64)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), linePrefix); ok {
				c.lines <- l
			}
		}
		close(c.lines)
	}()
	return c
}

// progress is what a child said about its saves.
type progress struct {
	saving, saved int // the last generation begun and completed, -1 if none
	files         []string
	maxMicros     float64 // the longest save
	n             int
	err           string
}

func (p *progress) add(line string) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return
	}
	switch f[0] {
	case "SAVING":
		p.saving, _ = strconv.Atoi(f[1])
	case "SAVED":
		p.saved, _ = strconv.Atoi(f[1])
		us, _ := strconv.ParseFloat(f[2], 64)
		p.n++
		p.maxMicros = max(p.maxMicros, us)
	case "FILES":
		p.files = nil
		if len(f) > 1 {
			p.files = strings.Split(f[1], "/")
		}
	case "ERROR":
		p.err = line
	}
}

// runToEnd runs a child that saves saves generations from gen and exits.
func runToEnd(t *testing.T, w Writer, dir string, gen, saves int) *progress {
	t.Helper()
	c := start(t, w, dir, gen, saves, false)
	p := &progress{saving: -1, saved: -1}
	for l := range c.lines {
		p.add(l)
	}
	if err := c.cmd.Wait(); err != nil || p.saved != gen+saves-1 {
		t.Fatalf("the child saving generations %d..%d: %v %s", gen, gen+saves-1, err, p.err)
	}
	return p
}

// Run kills kills children of writer w saving in a new directory and
// checks every artifact they leave (see the package comment); it returns
// the figures, and fails t on any failure.
func Run(t *testing.T, w Writer, kills int) Stats {
	t.Helper()
	dir := t.TempDir()
	var st Stats
	committed := -1 // the newest generation known complete
	var watch *watcher
	if w.Trigger != nil {
		var err error
		if watch, err = newWatcher(dir); err != nil {
			t.Fatalf("watching %s: %v", dir, err)
		}
		defer watch.close()
	}
	leftovers := func(files []string) []string {
		var bad []string
		for _, f := range files {
			if !w.Own(f) {
				bad = append(bad, f)
			}
		}
		return bad
	}
	longest := 0.0 // the longest save so far, µs
	for i := range kills {
		gen := 1 + i*gensPerChild
		// With a trigger, the child's first save makes a complete artifact
		// that the save it is killed in must not lose; the trigger is
		// armed while the child waits after that first save.
		c := start(t, w, dir, gen, gensPerChild-2, w.Trigger != nil)
		p := &progress{saving: -1, saved: -1}
		wait := "READY"
		if w.Trigger != nil {
			wait = "PAUSED"
		}
		for {
			l, ok := <-c.lines
			if !ok {
				c.cmd.Wait()
				t.Fatalf("kill %d: the child ended before it was %s: %s", i, wait, p.err)
			}
			p.add(l)
			if l == wait {
				break
			}
		}
		if p.saved > committed {
			committed = p.saved
		}
		if w.Trigger != nil {
			marker := fmt.Sprintf(".killtest-arm-%d", i)
			watch.arm(c.cmd.Process.Pid, w.Trigger, marker)
			mp := filepath.Join(dir, marker)
			if err := os.WriteFile(mp, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Remove(mp)
			io.WriteString(c.stdin, "GO\n")
		} else {
			// Uniform over three times the longest save (a child's first,
			// which warms the runtime up, is the longest): kills land in the
			// first save and in later ones, in every phase of a save.
			d := 3 * longest
			if d == 0 {
				d = 300_000
			}
			time.AfterFunc(time.Duration(rand.Float64()*d)*time.Microsecond, func() { c.cmd.Process.Kill() })
		}
		for l := range c.lines {
			p.add(l)
		}
		err := c.cmd.Wait()
		if w.Trigger != nil {
			watch.disarm()
		}
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("kill %d: the child ended by itself (%v) %s", i, err, p.err)
		}
		st.Kills++
		if p.saving > p.saved {
			st.MidSave++
		}
		longest = max(longest, p.maxMicros)
		if p.saved > committed {
			committed = p.saved
		}
		if p.files != nil {
			if bad := leftovers(p.files); len(bad) > 0 {
				st.Leftovers++
				t.Errorf("kill %d: after a completed save the directory also holds %v", i, bad)
			}
		}
		got, ok, err := w.Load(dir)
		switch {
		case err != nil:
			st.Failures++
			t.Errorf("kill %d (saving %d, saved %d): the latest artifact does not load: %v", i, p.saving, committed, err)
		case !ok && committed >= 0:
			st.Failures++
			t.Errorf("kill %d: no artifact, but generation %d was saved", i, committed)
		case ok && got != committed && got != p.saving:
			st.Failures++
			t.Errorf("kill %d: the latest artifact holds generation %d, want %d (saved) or %d (being saved)", i, got, committed, p.saving)
		case ok:
			committed = got
		}
	}
	// One more save, to the end: it must clean up what the kills left.
	gen := 1 + kills*gensPerChild
	p := runToEnd(t, w, dir, gen, 1)
	if bad := leftovers(p.files); len(bad) > 0 {
		st.Leftovers++
		t.Errorf("after the final save the directory also holds %v", bad)
	}
	st.EndLeftovers = len(leftovers(DirNames(t, dir)))
	if got, ok, err := w.Load(dir); err != nil || !ok || got != gen {
		st.Failures++
		t.Errorf("after the final save: generation %d (found %v), %v; want %d", got, ok, err, gen)
	}
	t.Logf("%s: %s", t.Name(), st)
	return st
}

// DirNames lists the names in dir, sorted, failing t if dir does not read:
// what the kill tests, and the tests of what writers leave, compare.
func DirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
