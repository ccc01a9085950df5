// Command benchshards measures what Keras-format sharded weights cost in
// memory: it builds a Sequential model of -layers Dense(-units) layers
// (-units² float32 kernels, ~1 GiB by default), saves it with
// SaveWeightsH5WithOptions at -shard-gb, then loads the files into a
// second model of other initial values. Around the save and the load it
// resets the process's peak RSS (/proc/self/clear_refs) and reports how far
// the peak rose above the RSS before, next to the largest shard: streaming
// keeps that rise near one weight, whatever the model's size. It prints one
// JSON line; the load is checked by comparing both models' predictions.
//
//	go run ./cmd/benchshards -dir /tmp/shards
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/gotf/gotf/internal/cpuinfo"
	"github.com/gotf/gotf/internal/procstat"
	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/tfgo"
)

type result struct {
	CPU             string  `json:"cpu"`
	ModelGiB        float64 `json:"model_gib"`
	Layers          int     `json:"layers"`
	ShardGB         float64 `json:"max_shard_size_gb"`
	Shards          int     `json:"shards"`
	LargestShardMiB float64 `json:"largest_shard_mib"`
	LargestWeight   float64 `json:"largest_weight_mib"`
	SaveSeconds     float64 `json:"save_s"`
	LoadSeconds     float64 `json:"load_s"`
	SaveRSSMiB      float64 `json:"rss_before_save_mib"`
	SavePeakMiB     float64 `json:"peak_rss_save_mib"`
	SaveRiseMiB     float64 `json:"save_peak_rise_mib"`
	LoadRSSMiB      float64 `json:"rss_before_load_mib"`
	LoadPeakMiB     float64 `json:"peak_rss_load_mib"`
	LoadRiseMiB     float64 `json:"load_peak_rise_mib"`
	PredictionsSame bool    `json:"predictions_equal"`
}

// statusMiB is a field of /proc/self/status in MiB.
func statusMiB(field string) float64 { return float64(procstat.Status(field)[0]) / (1 << 20) }

// resetPeak makes VmHWM the current RSS (Linux 4.0+), so that the next
// reading is the peak of what follows only.
func resetPeak() {
	runtime.GC()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		log.Fatalf("resetting the peak RSS: %v", err)
	}
}

// model is the Dense stack, its kernels drawn with seed (scaled so that
// activations stay finite through the stack).
func model(layers, units int, seed int64) *keraslike.Model {
	var ls []keraslike.Layer
	for i := range layers {
		ls = append(ls, keraslike.NewDense(units, keraslike.DenseOptions{
			Name:              fmt.Sprintf("dense_%d", i),
			KernelInitializer: tfgo.RandomNormal(0, 1/float64(units), seed+int64(i)),
		}))
	}
	return keraslike.NewSequential("stack", keraslike.InputSpec{Shape: []int64{int64(units)}}, ls...)
}

func predict(m *keraslike.Model, x *tfgo.Tensor) []byte {
	y, err := m.Predict(x)
	if err != nil {
		log.Fatal(err)
	}
	defer y.Close()
	return append([]byte(nil), y.Data()...)
}

func main() {
	layers := flag.Int("layers", 16, "Dense layers")
	units := flag.Int("units", 4096, "units of each Dense layer (kernels are units x units float32)")
	shardGB := flag.Float64("shard-gb", 0.25, "MaxShardSize (GB of 2^30 bytes)")
	dir := flag.String("dir", os.TempDir(), "where the files go")
	keep := flag.Bool("keep", false, "keep the files")
	flag.Parse()

	x := make([]float32, *units)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	in, err := tfgo.NewTensor([][]float32{x})
	if err != nil {
		log.Fatal(err)
	}
	res := result{CPU: cpuinfo.Read().Model, Layers: *layers, ShardGB: *shardGB}
	res.ModelGiB = float64(*layers) * float64(*units) * float64(*units+1) * 4 / (1 << 30)
	res.LargestWeight = float64(*units) * float64(*units) * 4 / (1 << 20)
	index := filepath.Join(*dir, "bench.weights.json")

	src := model(*layers, *units, 1)
	want := predict(src, in) // builds and initializes
	res.SaveRSSMiB = statusMiB("VmRSS")
	resetPeak()
	start := time.Now()
	if err := src.SaveWeightsH5WithOptions(index, keraslike.SaveWeightsOptions{MaxShardSize: *shardGB}); err != nil {
		log.Fatal(err)
	}
	res.SaveSeconds = time.Since(start).Seconds()
	res.SavePeakMiB = statusMiB("VmHWM")
	res.SaveRiseMiB = res.SavePeakMiB - res.SaveRSSMiB
	src.Close()

	shards, _ := filepath.Glob(filepath.Join(*dir, "bench_*.weights.h5"))
	res.Shards = len(shards)
	for _, s := range shards {
		if st, err := os.Stat(s); err == nil {
			res.LargestShardMiB = max(res.LargestShardMiB, float64(st.Size())/(1<<20))
		}
	}

	dst := model(*layers, *units, 1000)
	before := predict(dst, in)
	if bytes.Equal(before, want) {
		log.Fatal("the two models start equal: the load would prove nothing")
	}
	res.LoadRSSMiB = statusMiB("VmRSS")
	resetPeak()
	start = time.Now()
	if err := dst.LoadWeightsH5(index); err != nil {
		log.Fatal(err)
	}
	res.LoadSeconds = time.Since(start).Seconds()
	res.LoadPeakMiB = statusMiB("VmHWM")
	res.LoadRiseMiB = res.LoadPeakMiB - res.LoadRSSMiB
	res.PredictionsSame = bytes.Equal(predict(dst, in), want)
	dst.Close()
	if !*keep {
		os.Remove(index)
		for _, s := range shards {
			os.Remove(s)
		}
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if !res.PredictionsSame {
		os.Exit(1)
	}
}
