// Command benchckpt times saving and restoring a large set of variables
// from Go: float32 resource variables of the given total size live in
// TensorFlow's runtime; a save fetches one variable at a time and streams it
// into a TensorFlow checkpoint (savedmodel.BundleWriter, shards written in
// parallel; -io picks savedmodel.IOMode), so memory beyond the variables
// stays at about one variable per shard; a restore reads each variable
// (crc-checked, in the same IOMode) straight into a TensorFlow tensor and
// assigns it. It saves -saves times in a row, each save removing the one
// before, and reports every save's time. It
// prints one JSON line with the times and the peak RSS. With -in-graph it
// uses tfgo.Saver instead: TensorFlow's SaveV2/RestoreV2 kernels write and
// read the variables' buffers directly. scripts/bench_checkpoint.py runs
// both beside Python's tf.train.Checkpoint.
//
//	go run ./cmd/benchckpt -gb 1 -dir /tmp/ckpt
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gotf/gotf/cgo"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	"github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
)

// removeBundle removes the files of the bundle at prefix.
func removeBundle(prefix string) {
	files, _ := filepath.Glob(prefix + ".*")
	for _, f := range files {
		os.Remove(f)
	}
}

// fill is an io.Writer into a fixed buffer.
type fill struct{ b []byte }

func (f *fill) Write(p []byte) (int, error) {
	if len(p) > len(f.b) {
		return 0, fmt.Errorf("%d bytes more than the tensor holds", len(p)-len(f.b))
	}
	f.b = f.b[copy(f.b, p):]
	return len(p), nil
}

type result struct {
	GB            float64   `json:"gb"`
	Sync          bool      `json:"sync"`
	IO            string    `json:"io"`
	InGraph       bool      `json:"in_graph"`
	Variables     int       `json:"variables"`
	SaveSeconds   float64   `json:"save_s,omitempty"` // -in-graph
	Saves         []float64 `json:"saves_s,omitempty"`
	RestoreSecond float64   `json:"restore_s"`
	RSSBeforeGB   float64   `json:"rss_before_save_gb"`
	PeakRSSGB     float64   `json:"peak_rss_gb"`
}

// statusGB reads a field of /proc/self/status (kB) in GB.
func statusGB(field string) float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / (1 << 20)
		}
	}
	return 0
}

func main() {
	gb := flag.Float64("gb", 1, "total size of the variables (GiB)")
	perVar := flag.Int("var-mb", 64, "size of each variable (MiB)")
	shards := flag.Int("shards", 2, "data shards written in parallel")
	dir := flag.String("dir", os.TempDir(), "where the checkpoint goes")
	doSync := flag.Bool("sync", false, "fsync the files before committing (TensorFlow's writer does not)")
	ioName := flag.String("io", "direct", "how shards are written and read: buffered or direct (savedmodel.IOMode)")
	saves := flag.Int("saves", 5, "saves in a row, each removing the one before")
	inGraph := flag.Bool("in-graph", false, "save and restore with tfgo.Saver (SaveV2/RestoreV2 kernels, no copy through Go)")
	flag.Parse()
	mode, ok := map[string]savedmodel.IOMode{"buffered": savedmodel.BufferedIO, "direct": savedmodel.DirectIO}[*ioName]
	if !ok {
		log.Fatalf("-io %q: want buffered or direct", *ioName)
	}
	n := int(*gb * 1024 / float64(*perVar))
	rows := int64(*perVar) * (1 << 20) / 4 / 1024

	s := tfgo.NewScope()
	var vars []*tfgo.Variable
	for i := 0; i < n; i++ {
		vars = append(vars, tfgo.NewVariable(s, fmt.Sprintf("layer_%03d/kernel", i), cgo.Float, []int64{rows, 1024}, tfgo.RandomNormal(0, 1, int64(i))))
	}
	saver := tfgo.NewSaver(s, vars)
	// One placeholder + assign per variable for the restore.
	var holders []tfgo.Output
	var assigns []*cgo.Operation
	for _, v := range vars {
		p := tfgo.Placeholder(s.SubScope("restore"), cgo.Float, rows, 1024)
		holders = append(holders, p)
		assigns = append(assigns, v.Assign(s.SubScope("restore"), p))
	}
	sess, err := tfgo.NewSession(s, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	// One variable at a time, as Python creates them eagerly: running every
	// initializer at once would hold all the initial values at the same time.
	for _, v := range vars {
		if _, err := sess.Run(nil, nil, v.Initializer()); err != nil {
			log.Fatal(err)
		}
	}
	prefix := filepath.Join(*dir, "go_ckpt")
	res := result{GB: *gb, Sync: *doSync, IO: mode.String(), InGraph: *inGraph, Variables: n, RSSBeforeGB: statusGB("VmRSS")}
	if *inGraph {
		start := time.Now()
		if err := saver.Save(sess, prefix); err != nil {
			log.Fatal(err)
		}
		res.SaveSeconds = time.Since(start).Seconds()
		start = time.Now()
		if err := saver.Restore(sess, prefix); err != nil {
			log.Fatal(err)
		}
		res.RestoreSecond = time.Since(start).Seconds()
		res.PeakRSSGB = statusGB("VmHWM")
		out, _ := json.Marshal(res)
		fmt.Println(string(out))
		return
	}

	// Each save goes to a new prefix and then removes the one before, as a
	// CheckpointManager with max_to_keep=1 does during training: the first
	// save of a process and the steady state are reported apart.
	save := func(prefix string) {
		w, err := savedmodel.NewBundleWriter(prefix, &savedmodel.WriteOptions{NumShards: *shards, NoSync: !*doSync, IO: mode})
		if err != nil {
			log.Fatal(err)
		}
		// One goroutine per shard: each fetches a variable and streams it into
		// the writer, which puts concurrent adds on different shards.
		next := make(chan *tfgo.Variable)
		var wg sync.WaitGroup
		for g := 0; g < *shards; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for v := range next {
					out, err := sess.Run(nil, []tfgo.Output{v.Value()})
					if err != nil {
						log.Fatal(err)
					}
					t := out[0]
					// Written straight from TensorFlow's buffer, then freed.
					err = w.Add(v.Name(), &savedmodel.Tensor{DType: types_go_proto.DataType_DT_FLOAT, Shape: t.Shape(), Data: t.Data()})
					t.Close()
					if err != nil {
						log.Fatal(err)
					}
				}
			}()
		}
		for _, v := range vars {
			next <- v
		}
		close(next)
		wg.Wait()
		if err := w.Close(); err != nil {
			log.Fatal(err)
		}
	}
	var prev string
	for k := range *saves {
		p := fmt.Sprintf("%s-%d", prefix, k+1)
		start := time.Now()
		save(p)
		res.Saves = append(res.Saves, time.Since(start).Seconds())
		if prev != "" {
			removeBundle(prev)
		}
		prefix, prev = p, p
	}

	start := time.Now()
	r, err := savedmodel.OpenBundleWith(prefix, &savedmodel.ReadOptions{IO: mode})
	if err != nil {
		log.Fatal(err)
	}
	// Each goroutine reads variables straight into one TensorFlow tensor of
	// its own (crc-checked) and feeds it to the variable's assign. The
	// tensor stays referenced from Go, so AssignVariableOp copies it into
	// the variable's existing buffer instead of adopting it: no memory is
	// allocated per variable, on either side.
	idx := make(chan int)
	var wg sync.WaitGroup
	for g := 0; g < *shards; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t, err := cgo.AllocateTensor(cgo.Float, []int64{rows, 1024})
			if err != nil {
				log.Fatal(err)
			}
			defer t.Close()
			for i := range idx {
				if err := r.ReadInto(vars[i].Name(), &fill{b: t.Data()}); err != nil {
					log.Fatal(err)
				}
				if _, err := sess.Run(map[tfgo.Output]any{holders[i]: t}, nil, assigns[i]); err != nil {
					log.Fatal(err)
				}
			}
		}()
	}
	for i := range vars {
		idx <- i
	}
	close(idx)
	wg.Wait()
	r.Close()
	res.RestoreSecond = time.Since(start).Seconds()
	res.PeakRSSGB = statusGB("VmHWM")
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}
