package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/gotf/gotf/internal/cpuinfo"
	"github.com/gotf/gotf/tfgo"
)

func format(o options, m *served, runs []*loadRun, py *pyRun, diff float64) string {
	var b strings.Builder
	cpu := cpuinfo.Read()
	model, flags := cpu.Model, cpu.Flags("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile")
	fmt.Fprintf(&b, "# Load test of the model server with the main job's model\n\n`go run ./cmd/benchserve -rate %g -duration %s -api %s` (make bench-serve)\n\n", o.rate, o.duration, o.apis)
	fmt.Fprintf(&b, "CPU: %s (%s); %d cores seen by Go, shared with other work (the load generator and the server run on the same cores); TensorFlow %s; Go %s\n",
		model, flags, runtime.NumCPU(), tfgo.Version(), runtime.Version())
	fmt.Fprintf(&b, "Model: the main job's GPT export %s (%s), %s: %s int32 [1, %d] -> %s float32, %d values\n\n",
		m.dir, m.trained, m.sig, m.input, m.seq, m.output, m.outputLen)
	b.WriteString("| client | requests | errors | p50 ms | p99 ms | throughput req/s | server RSS start MiB | server RSS end MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		fmt.Fprintf(&b, "| %s on loopback, %g req/s for %s, batch 1 | %d | %d | %.2f | %.2f | %.1f | %.0f | %.0f |\n",
			apiName(r.api), r.rate, o.duration, r.sent, r.errors, ms(percentile(r.latencies, 0.5)), ms(percentile(r.latencies, 0.99)),
			float64(len(r.latencies))/r.elapsed.Seconds(), mib(r.rssStart), mib(r.rssEnd))
	}
	fmt.Fprintf(&b, "| Python in process: tf.saved_model.load(dir).signatures[%q], back to back | %d | | %.2f | %.2f | | | |\n",
		m.sig, py.calls, ms(percentile(py.latencies, 0.5)), ms(percentile(py.latencies, 0.99)))
	fmt.Fprintf(&b, `
Latency of a request: from when it was due on the fixed schedule (open loop: sent then whatever the earlier ones were doing, up to %d under way) to its whole answer read; REST answers are checked for a predictions object, gRPC ones for %d output values. Throughput: answered requests over the time from the first due to the last answer.
Server: this binary run again as the server (serve.Main, as gotf-serve), REST and gRPC on 127.0.0.1; RSS: its VmRSS after 5 warm-up requests and after the run. TensorFlow's oneDNN allocator, for the server and Python alike: TF_ONEDNN_USE_SYSTEM_ALLOCATOR=%s.
Python: the same number of calls of the signature on the same token ids in one process, each with its output fetched to numpy, after 5 warm-up calls; no network or encoding.
The server's REST answer for these ids against Python's logits: max |difference| %.3g.
`, o.maxFlight, m.outputLen, allocatorSetting(), diff)
	return b.String()
}

// allocatorSetting is how the environment sets TensorFlow's oneDNN
// allocator (malloc, or its own BFC arena by default).
func allocatorSetting() string {
	if v, ok := os.LookupEnv("TF_ONEDNN_USE_SYSTEM_ALLOCATOR"); ok {
		return v
	}
	return "unset (BFC arena)"
}

func apiName(api string) string {
	if api == "grpc" {
		return "gRPC Predict"
	}
	return "REST :predict (JSON)"
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func mib(n int64) float64 { return float64(n) / (1 << 20) }
