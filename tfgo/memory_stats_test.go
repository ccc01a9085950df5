package tfgo

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// chainGraph is x·x, then its square, then the sum: two n×n float32
// intermediates (MatMul never reuses an input's buffer) that are both
// live while the second MatMul runs, so the step's peak is 2·4n² bytes.
func chainGraph(t *testing.T, n int) (*Session, map[Output]any, []Output) {
	t.Helper()
	s := NewScope()
	x := Placeholder(s, Float, int64(n), int64(n))
	y := MatMul(s, x, x)
	z := MatMul(s, y, y)
	o := Sum(s, z, Const(s, []int32{0, 1}))
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { sess.Close() })
	data := make([][]float32, n)
	for i := range data {
		data[i] = make([]float32, n)
		data[i][i] = 1
	}
	return sess, map[Output]any{x: data}, []Output{o}
}

func stepPeak(t *testing.T, n int) StepMemory {
	t.Helper()
	sess, feeds, fetches := chainGraph(t, n)
	outs, mem, err := sess.RunWithMemory(feeds, fetches)
	require.NoError(t, err)
	for _, o := range outs {
		o.Close()
	}
	return mem
}

// The peak counts the live intermediates, and grows with them: 4x the
// elements gives ~4x the peak.
func TestRunWithMemoryPeakFollowsIntermediates(t *testing.T) {
	small, large := stepPeak(t, 256), stepPeak(t, 512)
	n := int64(256 * 256 * 4)
	t.Logf("256x256: %+v", small)
	t.Logf("512x512: %+v", large)
	assert.GreaterOrEqual(t, small.PeakBytes, 2*n, "two live 256x256 float32 intermediates")
	assert.GreaterOrEqual(t, small.AllocatedBytes, small.PeakBytes)
	ratio := float64(large.PeakBytes) / float64(small.PeakBytes)
	assert.InDelta(t, 4, ratio, 0.5, "peak ratio for 4x larger intermediates")
	require.Len(t, small.Devices, 1)
	d := small.Devices[0]
	assert.Contains(t, d.Device, "CPU:0")
	assert.Equal(t, small.PeakBytes, d.PeakBytes, "one device: its peak is the step's")
	assert.Equal(t, d, small.Device(d.Device))
	require.NotEmpty(t, d.Allocators)
	for _, a := range d.Allocators {
		t.Logf("allocator %s: peak %d, allocated %d, max in use %d", a.Name, a.PeakBytes, a.AllocatedBytes, a.MaxBytesInUse)
		if a.MaxBytesInUse > 0 {
			// In use counts the fed tensor too, and is sampled at kernel ends
			// only: at least the largest single output, not necessarily the peak.
			assert.GreaterOrEqual(t, a.MaxBytesInUse, n)
		}
	}
}

// The same graph in Python TensorFlow, its RunMetadata's allocation
// records replayed the same way, gives the same peak; TensorFlow's own
// timeline (tensor lifetimes from the output descriptions) agrees within
// the few bytes of small tensors it counts differently.
func TestMemoryPeakMatchesPython(t *testing.T) {
	for _, n := range []int{256, 512} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			mem := stepPeak(t, n)
			ref := python(t, fmt.Sprintf(`
import collections
import numpy as np
from tensorflow.python.client import timeline
n = %d
g = tf.Graph()
with g.as_default():
    x = tf.compat.v1.placeholder(tf.float32, [n, n])
    y = tf.matmul(x, x)
    z = tf.matmul(y, y)
    o = tf.reduce_sum(z, [0, 1])
with tf.compat.v1.Session(graph=g) as s:
    md = tf.compat.v1.RunMetadata()
    s.run(o, {x: np.eye(n, dtype=np.float32)},
          options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.SOFTWARE_TRACE),
          run_metadata=md)
by_time = collections.defaultdict(int)
for dev in md.step_stats.dev_stats:
    for node in dev.node_stats:
        for mem in node.memory:
            for r in mem.allocation_records:
                by_time[r.alloc_micros] += r.alloc_bytes
cur = peak = 0
for t in sorted(by_time):
    cur += by_time[t]
    peak = max(peak, cur)
outputs["peak"] = np.int64(peak)
tl = timeline.Timeline(md.step_stats, graph=g).analyze_step_stats(show_memory=True)
outputs["timeline"] = np.int64(sum(m.num_bytes for m in tl.allocator_maximums.values()))
`, n), nil)
			peak, err := Value(ref["peak"])
			require.NoError(t, err)
			tlPeak, err := Value(ref["timeline"])
			require.NoError(t, err)
			t.Logf("n=%d: Go %d, Python replay %v, Python timeline %v", n, mem.PeakBytes, peak, tlPeak)
			assert.Equal(t, peak, mem.PeakBytes)
			assert.InDelta(t, float64(tlPeak.(int64)), float64(mem.PeakBytes), 64)
		})
	}
}

func TestMemoryFromMetadataEmpty(t *testing.T) {
	assert.Equal(t, StepMemory{}, MemoryFromMetadata(nil))
	assert.Equal(t, StepMemory{}, MemoryFromMetadata(&cpb.RunMetadata{}))
	assert.Equal(t, DeviceMemory{Device: "x"}, StepMemory{}.Device("x"))
	var sess *Session
	_, _, err := sess.RunWithMemory(nil, nil)
	assert.Error(t, err)
}

// An untraced run's metadata has no step stats: zeros, as for nil.
func TestMemoryFromUntracedRun(t *testing.T) {
	sess, feeds, fetches := chainGraph(t, 64)
	_, md, err := sess.RunWithOptions(nil, feeds, fetches)
	require.NoError(t, err)
	assert.Equal(t, StepMemory{}, MemoryFromMetadata(md))
}

// Logs what tracing one step costs: a few big kernels (the 512 chain)
// and many small ones (a chain of 200 adds), where per-kernel bookkeeping
// dominates.
func TestMemoryTraceOverhead(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	s := NewScope()
	x := Placeholder(s, Float, 64)
	v := x
	for i := 0; i < 200; i++ {
		v = AddV2(s, v, x)
	}
	adds, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer adds.Close()
	chain, chainFeeds, chainFetches := chainGraph(t, 512)
	cases := []struct {
		name    string
		sess    *Session
		feeds   map[Output]any
		fetches []Output
	}{
		{"512x512 matmul chain", chain, chainFeeds, chainFetches},
		{"200 adds", adds, map[Output]any{x: make([]float32, 64)}, []Output{v}},
	}
	for _, c := range cases {
		const runs = 30
		timeRuns := func(traced bool) time.Duration {
			best := time.Duration(1 << 62)
			for i := 0; i < runs; i++ {
				start := time.Now()
				var outs []*Tensor
				var err error
				if traced {
					outs, _, err = c.sess.RunWithMemory(c.feeds, c.fetches)
				} else {
					outs, err = c.sess.Run(c.feeds, c.fetches)
				}
				best = min(best, time.Since(start))
				require.NoError(t, err)
				for _, o := range outs {
					o.Close()
				}
			}
			return best
		}
		timeRuns(false)
		plain, traced := timeRuns(false), timeRuns(true)
		t.Logf("%s: untraced %v, traced %v (best of %d): +%v per step", c.name, plain, traced, runs, traced-plain)
	}
}

// With two logical CPU devices, each device's peak is its own
// intermediates', and the step's is taken over the merged timeline: at
// least the larger device's, at most their sum.
func TestMemoryPerDevice(t *testing.T) {
	s := NewScope()
	x := Placeholder(s, Float, 256, 256)
	d0, d1 := s.WithDevice("/device:CPU:0"), s.WithDevice("/device:CPU:1")
	a := MatMul(d0, x, x)                                               // 256 KiB on CPU:0
	b := MatMul(d1, Concat(d1, Const(d1, int32(0)), []Output{x, x}), x) // 512x256: 512 KiB on CPU:1
	o := AddN(s, []Output{Sum(d0, a, Const(d0, []int32{0, 1})), Sum(d1, b, Const(d1, []int32{0, 1}))})
	sess, err := NewSession(s, SessionOptions{DeviceCount: map[string]int32{"CPU": 2}})
	require.NoError(t, err)
	defer sess.Close()
	data := make([][]float32, 256)
	for i := range data {
		data[i] = make([]float32, 256)
	}
	outs, mem, err := sess.RunWithMemory(map[Output]any{x: data}, []Output{o})
	require.NoError(t, err)
	for _, o := range outs {
		o.Close()
	}
	for _, d := range mem.Devices {
		t.Logf("%s: peak %d, allocated %d", d.Device, d.PeakBytes, d.AllocatedBytes)
	}
	t.Logf("step: peak %d", mem.PeakBytes)
	require.Len(t, mem.Devices, 2)
	p0 := mem.Device("/job:localhost/replica:0/task:0/device:CPU:0").PeakBytes
	p1 := mem.Device("/job:localhost/replica:0/task:0/device:CPU:1").PeakBytes
	assert.GreaterOrEqual(t, p0, int64(256*256*4))
	assert.GreaterOrEqual(t, p1, int64(2*512*256*4), "the concatenation and the product")
	assert.GreaterOrEqual(t, mem.PeakBytes, max(p0, p1))
	assert.LessOrEqual(t, mem.PeakBytes, p0+p1)
}
