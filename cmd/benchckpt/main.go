// Command benchckpt times saving and restoring a large set of variables
// from Go: float32 resource variables of the given total size live in
// TensorFlow's runtime, and tfgo.StreamingSaver saves them one variable at
// a time per shard into a TensorFlow checkpoint (shards written in
// parallel; -io picks savedmodel.IOMode, by default the zero value that
// users get), so memory beyond the variables
// stays at about one variable per shard, and restores them the same way.
// It saves -saves times in a row, each save removing the one before, and
// prints one JSON line with every save's time, the restore's and the peak
// RSS. With -in-graph it uses tfgo.Saver instead: TensorFlow's
// SaveV2/RestoreV2 kernels write and read the variables' buffers directly.
// scripts/bench_checkpoint.py runs both beside Python's tf.train.Checkpoint.
//
//	go run ./cmd/benchckpt -gb 1 -dir /tmp/ckpt
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"hash/crc32"
	"log"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/gotf/gotf/internal/procstat"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
)

// removeBundle removes the files of the bundle at prefix.
func removeBundle(prefix string) {
	files, _ := filepath.Glob(prefix + ".*")
	for _, f := range files {
		os.Remove(f)
	}
}

type result struct {
	GB            float64   `json:"gb"`
	Sync          bool      `json:"sync"`
	IO            string    `json:"io"`
	RestoreIO     string    `json:"restore_io,omitempty"`
	InGraph       bool      `json:"in_graph"`
	Variables     int       `json:"variables"`
	SaveSeconds   float64   `json:"save_s,omitempty"` // -in-graph
	Saves         []float64 `json:"saves_s,omitempty"`
	RestoreSecond float64   `json:"restore_s"`
	RSSBeforeGB   float64   `json:"rss_before_save_gb"`
	PeakRSSGB     float64   `json:"peak_rss_gb"`
}

// statusGB is a field of /proc/self/status in GB.
func statusGB(field string) float64 { return float64(procstat.Status(field)[0]) / (1 << 30) }

func main() {
	gb := flag.Float64("gb", 1, "total size of the variables (GiB)")
	perVar := flag.Int("var-mb", 64, "size of each variable (MiB)")
	shards := flag.Int("shards", 2, "data shards written in parallel")
	dir := flag.String("dir", os.TempDir(), "where the checkpoint goes")
	doSync := flag.Bool("sync", false, "fsync the files before committing (TensorFlow's writer does not)")
	ioName := flag.String("io", "default", "how shards are written and read: default (the zero savedmodel.IOMode), auto, buffered or direct")
	restoreIO := flag.String("restore-io", "", "how the restore reads, if not as -io says")
	saves := flag.Int("saves", 5, "saves in a row, each removing the one before")
	inGraph := flag.Bool("in-graph", false, "save and restore with tfgo.Saver (SaveV2/RestoreV2 kernels, no copy through Go)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the saves and the restore to this file")
	flag.Parse()
	var zero savedmodel.IOMode
	modes := map[string]savedmodel.IOMode{"default": zero, "auto": savedmodel.AutoIO, "buffered": savedmodel.BufferedIO, "direct": savedmodel.DirectIO}
	mode, ok := modes[*ioName]
	if !ok {
		log.Fatalf("-io %q: want default, auto, buffered or direct", *ioName)
	}
	readMode := mode
	if *restoreIO != "" {
		if readMode, ok = modes[*restoreIO]; !ok {
			log.Fatalf("-restore-io %q: want default, auto, buffered or direct", *restoreIO)
		}
	}
	n := int(*gb * 1024 / float64(*perVar))
	rows := int64(*perVar) * (1 << 20) / 4 / 1024

	s := tfgo.NewScope()
	var vars []*tfgo.Variable
	for i := 0; i < n; i++ {
		vars = append(vars, tfgo.NewVariable(s, fmt.Sprintf("layer_%03d/kernel", i), tfgo.Float, []int64{rows, 1024}, tfgo.RandomNormal(0, 1, int64(i))))
	}
	saver := tfgo.NewSaver(s, vars)
	streaming := tfgo.NewStreamingSaver(s, vars, nil)
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
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
	want := checksums(sess, vars)
	res := result{GB: *gb, Sync: *doSync, IO: mode.String(), InGraph: *inGraph, Variables: n, RSSBeforeGB: statusGB("VmRSS")}
	if readMode != mode {
		res.RestoreIO = readMode.String()
	}
	if *cpuProfile != "" {
		// Only the timed part: the variables' random initialization would
		// hide the checkpoint's share.
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
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
		verify(sess, vars, want)
		out, _ := json.Marshal(res)
		fmt.Println(string(out))
		return
	}

	// Each save goes to a new prefix and then removes the one before, as a
	// CheckpointManager with max_to_keep=1 does during training: the first
	// save of a process and the steady state are reported apart.
	var prev string
	for k := range *saves {
		p := fmt.Sprintf("%s-%d", prefix, k+1)
		start := time.Now()
		if err := streaming.Save(sess, p, savedmodel.WriteOptions{NumShards: *shards, NoSync: !*doSync, IO: mode}); err != nil {
			log.Fatal(err)
		}
		res.Saves = append(res.Saves, time.Since(start).Seconds())
		if prev != "" {
			removeBundle(prev)
		}
		prefix, prev = p, p
	}

	start := time.Now()
	if err := streaming.Restore(sess, prefix, savedmodel.ReadOptions{IO: readMode}); err != nil {
		log.Fatal(err)
	}
	res.RestoreSecond = time.Since(start).Seconds()
	res.PeakRSSGB = statusGB("VmHWM")
	verify(sess, vars, want)
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// checksums returns the crc32c of every variable's bytes, read one at a
// time (ReadVariableOp shares the variable's buffer: nothing is copied).
func checksums(sess *tfgo.Session, vars []*tfgo.Variable) []uint32 {
	table := crc32.MakeTable(crc32.Castagnoli)
	sums := make([]uint32, len(vars))
	for i, v := range vars {
		out, err := sess.Run(nil, []tfgo.Output{v.Value()})
		if err != nil {
			log.Fatal(err)
		}
		sums[i] = crc32.Checksum(out[0].Data(), table)
		out[0].Close()
	}
	return sums
}

// verify stops the benchmark if a restore left any variable with other
// values than were saved: a fast restore must also be a correct one.
func verify(sess *tfgo.Session, vars []*tfgo.Variable, want []uint32) {
	for i, got := range checksums(sess, vars) {
		if got != want[i] {
			log.Fatalf("%s holds other values after the restore (crc32c %#08x, saved %#08x)", vars[i].Name(), got, want[i])
		}
	}
}
