// Command benchserve load-tests the model server (package serve, as
// gotf-serve runs it) on loopback with the main job's model: it takes the
// main job's SavedModel export (out/transformer/saved_model when it holds a
// loadable version, else a short training run of examples/transformer/job
// into a temporary directory), starts the server in a process of its own
// (this binary run again), and sends it predict requests of batch 1 at a
// fixed rate for a fixed time, open loop (a request is sent on schedule
// whether or not the earlier ones have been answered; its latency counts
// from when it was due), over REST and then gRPC. It reports errors,
// p50/p99 latency, throughput and the server's RSS at the start and end of
// each run, then times the same number of calls of the same model's
// serving_default signature in Python (tf.saved_model.load, in process) on
// the same input, and checks the server's answer against Python's.
//
// It prints the machine and one markdown report, and writes it to
// bench/<date>-serve-<cpu>.md. Run it with
//
//	make bench-serve                 # ARGS="-rate 50" to change flags
//	go run ./cmd/benchserve -rate 20 -duration 60s
//
// (after `eval "$(make -s env)"` for plain go run). The machine may be
// shared: the report says how many cores Go saw.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gotf/gotf/internal/cpuinfo"
	"github.com/gotf/gotf/internal/setup"
)

type options struct {
	rate      float64
	duration  time.Duration
	maxFlight int
	apis      string
	model     string
	steps     int
	out       string
	threads   int
}

func main() {
	if os.Getenv(childEnv) != "" {
		serveAsChild()
		return
	}
	var o options
	flag.Float64Var(&o.rate, "rate", 20, "requests per second, sent on a fixed schedule")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "length of each API's run")
	flag.IntVar(&o.maxFlight, "max-in-flight", 64, "requests under way at once; one due beyond it is counted as an error, not sent")
	flag.StringVar(&o.apis, "api", "rest,grpc", "APIs to load, in order: rest, grpc or both")
	flag.StringVar(&o.model, "model", "", "base path of the model's numeric versions (default: out/transformer/saved_model if it holds one that loads, else a short training run)")
	flag.IntVar(&o.steps, "steps", 30, "training steps of the main job when it has to be trained")
	flag.StringVar(&o.out, "out", "bench", "directory of the report (\"\" prints only)")
	flag.IntVar(&o.threads, "threads", 0, "the server's --tensorflow_intra_op_parallelism (0: TensorFlow's choice)")
	flag.Parse()
	res, err := run(o)
	if res != nil {
		fmt.Print(res.report)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// result is what run measured, and its report.
type result struct {
	runs   []*loadRun
	python *pyRun
	diff   float64 // max |REST answer - Python's logits|
	report string
}

// run measures, writes the report under ROOT/o.out unless o.out is "",
// and returns it; an error after the measurements comes with them (a
// failed request is one).
func run(o options) (*result, error) {
	if o.rate <= 0 || o.duration <= 0 || o.maxFlight <= 0 {
		return nil, errors.New("-rate, -duration and -max-in-flight must be positive")
	}
	apis := strings.Split(o.apis, ",")
	for _, a := range apis {
		if a != "rest" && a != "grpc" {
			return nil, fmt.Errorf("-api %q: give rest, grpc or rest,grpc", o.apis)
		}
	}
	root, err := setup.ModuleRoot()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "benchserve")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	m, err := mainJobModel(root, tmp, o)
	if err != nil {
		return nil, err
	}
	log.Printf("model: %s (%s: %s [1, %d] -> %s)", m.dir, m.sig, m.input, m.seq, m.output)
	ids := tokenIDs(m.seq)

	srv, err := startServer(m.base, o.threads)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	var runs []*loadRun
	for _, api := range apis {
		send, closeSender, err := newSender(api, srv, m, ids)
		if err != nil {
			return nil, err
		}
		log.Printf("%s: %.0f requests/s for %s", api, o.rate, o.duration)
		r, err := loadTest(api, send, srv, o)
		closeSender()
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	served, err := restLogits(srv, m, ids)
	if err != nil {
		return nil, err
	}
	if err := srv.stop(); err != nil {
		return nil, fmt.Errorf("stopping the server: %w", err)
	}

	calls := int(o.rate * o.duration.Seconds())
	log.Printf("Python: %d calls of serving_default", calls)
	py, err := pythonLatency(m, ids, calls)
	if err != nil {
		return nil, err
	}
	res := &result{runs: runs, python: py, diff: maxAbsDiff(served, py.logits)}
	res.report = format(o, m, runs, py, res.diff)
	if o.out != "" {
		model := cpuinfo.Read().Model
		path := filepath.Join(root, o.out, fmt.Sprintf("%s-serve-%s.md", time.Now().UTC().Format("2006-01-02"), cpuinfo.FileName(model)))
		if err := os.WriteFile(path, []byte(res.report), 0o644); err != nil {
			return res, err
		}
		log.Printf("wrote %s", path)
	}
	for _, r := range runs {
		if r.errors > 0 {
			return res, fmt.Errorf("%s: %d of %d requests failed (first: %s)", r.api, r.errors, r.sent, r.firstError)
		}
	}
	return res, nil
}
