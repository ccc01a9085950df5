// Command benchckpt times saving and restoring a large set of variables
// from Go: float32 resource variables of the given total size live in
// TensorFlow's runtime; a save fetches one variable at a time and streams it
// into a TensorFlow checkpoint (savedmodel.BundleWriter, shards written in
// parallel), so memory beyond the variables stays at about one variable; a
// restore reads the checkpoint (crc-checked) and assigns each variable. It
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

type result struct {
	GB            float64 `json:"gb"`
	Sync          bool    `json:"sync"`
	InGraph       bool    `json:"in_graph"`
	Variables     int     `json:"variables"`
	SaveSeconds   float64 `json:"save_s"`
	RestoreSecond float64 `json:"restore_s"`
	RSSBeforeGB   float64 `json:"rss_before_save_gb"`
	PeakRSSGB     float64 `json:"peak_rss_gb"`
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
	inGraph := flag.Bool("in-graph", false, "save and restore with tfgo.Saver (SaveV2/RestoreV2 kernels, no copy through Go)")
	flag.Parse()
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
	res := result{GB: *gb, Sync: *doSync, InGraph: *inGraph, Variables: n, RSSBeforeGB: statusGB("VmRSS")}
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

	start := time.Now()
	w, err := savedmodel.NewBundleWriter(prefix, &savedmodel.WriteOptions{NumShards: *shards, NoSync: !*doSync})
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
	res.SaveSeconds = time.Since(start).Seconds()

	start = time.Now()
	r, err := savedmodel.OpenBundle(prefix)
	if err != nil {
		log.Fatal(err)
	}
	for i, v := range vars {
		bt, err := r.Read(v.Name())
		if err != nil {
			log.Fatal(err)
		}
		t, err := cgo.NewTensor(cgo.Float, bt.Shape, bt.Data)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := sess.Run(map[tfgo.Output]any{holders[i]: t}, nil, assigns[i]); err != nil {
			log.Fatal(err)
		}
		t.Close()
	}
	r.Close()
	res.RestoreSecond = time.Since(start).Seconds()
	res.PeakRSSGB = statusGB("VmHWM")
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}
