package h5

import (
	"bytes"
	"fmt"
	"github.com/gotf/gotf/internal/testutil"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The mutation campaign: GOTF_H5_CAMPAIGN=5000 go test -run TestCampaign
// ./internal/h5 walks that many mutated files (mutate of the seeds, one
// deterministic mutant per index) in child processes of this test binary,
// a batch per child, each input under a time limit and each child under an
// RSS limit; it reports crashes (a panic, recovered or not, or a signal),
// hangs and the children's peak RSS, and saves each failing input under
// GOTF_H5_CAMPAIGN_DIR (default: a temporary directory) as a regression
// seed. Not in the default suite: it takes minutes.
const (
	campaignBatch    = 250
	campaignHang     = 5 * time.Second
	campaignRSSLimit = 3 << 30
)

func campaignMutant(ss [][]byte, seed int64, i int) []byte {
	rng := rand.New(rand.NewSource(seed*1_000_003 + int64(i)))
	b := mutate(rng, ss[i%len(ss)])
	if rng.Intn(3) == 0 {
		b = mutate(rng, b)
	}
	return b
}

func TestCampaign(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GOTF_H5_CAMPAIGN"))
	if n <= 0 {
		testutil.Skip(t, "the mutation campaign runs with GOTF_H5_CAMPAIGN=<inputs> (make h5-campaign)")
	}
	seed := int64(1)
	if s, err := strconv.ParseInt(os.Getenv("GOTF_H5_CAMPAIGN_SEED"), 10, 64); err == nil {
		seed = s
	}
	out := os.Getenv("GOTF_H5_CAMPAIGN_DIR")
	if out == "" {
		out = t.TempDir()
	}
	ss := seeds(t)
	progress := filepath.Join(t.TempDir(), "progress")
	var crashes, hangs, children int
	var peakKB int64
	// The RSS of a child walking no input: the test binary's own baseline.
	base := exec.Command(os.Args[0], "-test.run=^TestCampaignChild$")
	base.Env = append(os.Environ(), fmt.Sprintf("GOTF_H5_CHILD=0:0:%d:%s", seed, progress))
	if err := base.Run(); err != nil {
		t.Fatal(err)
	}
	baseKB := base.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	start := time.Now()
	for next := 0; next < n; {
		end := min(next+campaignBatch, n)
		os.Remove(progress)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCampaignChild$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("GOTF_H5_CHILD=%d:%d:%d:%s", next, end, seed, progress))
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children++
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		last, lastChange, reason := -1, time.Now(), ""
		var err error
	wait:
		for {
			select {
			case err = <-done:
				break wait
			case <-time.After(20 * time.Millisecond):
			}
			if i := readProgress(progress); i != last {
				last, lastChange = i, time.Now()
			} else if time.Since(lastChange) > campaignHang && reason == "" {
				reason = "hang"
				cmd.Process.Kill()
			}
			if rss := rssKB(cmd.Process.Pid); rss > campaignRSSLimit>>10 && reason == "" {
				reason = fmt.Sprintf("RSS %d MB over the limit", rss>>10)
				cmd.Process.Kill()
			}
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			peakKB = max(peakKB, ru.Maxrss)
		}
		if err == nil && reason == "" {
			next = end
			continue
		}
		i := readProgress(progress)
		if i < next {
			t.Fatalf("child for %d..%d failed before its first input: %v\n%s", next, end, err, stderr.String())
		}
		if reason == "" {
			reason = "crash"
		}
		if reason == "hang" {
			hangs++
		} else {
			crashes++
		}
		p := filepath.Join(out, fmt.Sprintf("%s-%d.h5", strings.Fields(reason)[0], i))
		os.WriteFile(p, campaignMutant(ss, seed, i), 0o644)
		msg := stderr.String()
		if len(msg) > 4000 {
			msg = msg[:4000]
		}
		t.Errorf("input %d: %s (%v), saved as %s\n%s", i, reason, err, p, msg)
		next = i + 1
	}
	t.Logf("campaign: %d inputs in %v, %d child processes, %d crashes, %d hangs, peak child RSS %d MB (%d MB for a child walking nothing)",
		n, time.Since(start).Round(time.Second), children, crashes, hangs, peakKB>>10, baseKB>>10)
}

func readProgress(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	i, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return i
}

func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return 0
}

// TestCampaignChild is the campaign's child process (GOTF_H5_CHILD =
// first:end:seed:progress-file).
func TestCampaignChild(t *testing.T) {
	spec := os.Getenv("GOTF_H5_CHILD")
	if spec == "" {
		t.Skip("a child of TestCampaign")
	}
	parts := strings.SplitN(spec, ":", 4)
	first, _ := strconv.Atoi(parts[0])
	end, _ := strconv.Atoi(parts[1])
	seed, _ := strconv.ParseInt(parts[2], 10, 64)
	ss := seeds(t)
	for i := first; i < end; i++ {
		os.WriteFile(parts[3], []byte(strconv.Itoa(i)), 0o644)
		if err := walkAll(campaignMutant(ss, seed, i)); err != nil {
			fmt.Fprintf(os.Stderr, "input %d: %v\n", i, err)
			os.Exit(3)
		}
	}
}
