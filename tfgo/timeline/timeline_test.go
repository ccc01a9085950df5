package timeline

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/pyref"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	adpb "github.com/wamuir/graft/tensorflow/core/framework/allocation_description_go_proto"
	sspb "github.com/wamuir/graft/tensorflow/core/framework/step_stats_go_proto"
	tdpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_description_go_proto"
	tspb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { interop.Main(m) }

// tracedStepStats runs a graph over two CPU devices with a full trace and
// returns its step stats, serialized: ops on both devices, tensors sent
// between them, several ops at once on a device (lanes).
func tracedStepStats(t *testing.T) []byte {
	s := tfgo.NewScope()
	x := tfgo.Placeholder(s.SubScope("x"), tfgo.Float, 64, 64)
	d0, d1 := s.WithDevice("/device:CPU:0"), s.WithDevice("/device:CPU:1")
	a := tfgo.MatMul(d0.SubScope("a"), x, x)
	b := tfgo.Tanh(d0.SubScope("b"), a)
	a2 := tfgo.MatMul(d0.SubScope("a2"), x, x, tfgo.MatMulTransposeA(true))
	c := tfgo.MatMul(d1.SubScope("c"), b, x)
	d := tfgo.Relu(d1.SubScope("d"), c)
	e := tfgo.AddV2(d0.SubScope("e"), tfgo.AddV2(d0.SubScope("sum"), a, a2), d)
	require.NoError(t, s.Err())
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{DeviceCount: map[string]int32{"CPU": 2}})
	require.NoError(t, err)
	defer sess.Close()
	vals := make([][]float32, 64)
	for i := range vals {
		vals[i] = make([]float32, 64)
		for j := range vals[i] {
			vals[i][j] = float32((i*7+j*3)%11) / 11
		}
	}
	outs, tr, err := sess.RunTraced(map[tfgo.Output]any{x: vals}, []tfgo.Output{e})
	require.NoError(t, err)
	for _, o := range outs {
		o.Close()
	}
	devices := map[string]bool{}
	for _, ds := range tr.Metadata.GetStepStats().GetDevStats() {
		if len(ds.GetNodeStats()) > 0 {
			devices[ds.GetDevice()] = true
		}
	}
	require.GreaterOrEqual(t, len(devices), 2, "the run should use both devices: %v", devices)
	raw, err := proto.Marshal(tr.Metadata.GetStepStats())
	require.NoError(t, err)
	return raw
}

// For the step stats of a Go run, ChromeTrace writes the document
// Python's timeline.Timeline(step_stats).generate_chrome_trace_format()
// writes for them, byte for byte, with each set of options; and its events
// are ops with names, devices, start and duration.
func TestChromeTraceIsPythons(t *testing.T) {
	raw := tracedStepStats(t)
	w, err := pyref.Shared()
	require.NoError(t, err)
	py, err := w.Run(`
from tensorflow.core.framework import step_stats_pb2
from tensorflow.python.client import timeline
def trace(**kw):
    ss = step_stats_pb2.StepStats()
    ss.ParseFromString(inputs["ss"].item())
    return timeline.Timeline(ss).generate_chrome_trace_format(**kw)
outputs["default"] = trace()
outputs["memory"] = trace(show_memory=True)
outputs["noflow"] = trace(show_dataflow=False)
outputs["gpu"] = trace(op_time="gpu", show_memory=True)
`, map[string]*pyref.Array{"ss": {DType: "string", Shape: []int64{}, Strings: [][]byte{raw}}})
	require.NoError(t, err)

	stats := new(sspb.StepStats)
	require.NoError(t, proto.Unmarshal(raw, stats))
	before := proto.Clone(stats)
	for name, opts := range map[string]Options{
		"default": {},
		"memory":  {ShowMemory: true},
		"noflow":  {NoDataflow: true},
		"gpu":     {OpTime: "gpu", ShowMemory: true},
	} {
		got, err := ChromeTrace(stats, opts)
		require.NoError(t, err)
		want := string(py[name].Strings[0])
		if !assert.Equal(t, want, string(got), name) {
			continue
		}
		var doc struct {
			TraceEvents []struct {
				Ph   string         `json:"ph"`
				Name string         `json:"name"`
				Pid  int64          `json:"pid"`
				Ts   int64          `json:"ts"`
				Dur  int64          `json:"dur"`
				Args map[string]any `json:"args"`
			} `json:"traceEvents"`
		}
		require.NoError(t, json.Unmarshal(got, &doc), name)
		procs := map[int64]string{}
		ops := map[string]int64{}
		flows := 0
		phases := map[string]int{}
		for _, e := range doc.TraceEvents {
			phases[e.Ph]++
			switch e.Ph {
			case "M":
				procs[e.Pid] = e.Args["name"].(string)
			case "X":
				ops[e.Args["name"].(string)] = e.Pid
				assert.GreaterOrEqual(t, e.Dur, int64(0))
				assert.Positive(t, e.Ts)
			case "s":
				flows++
			}
		}
		assert.True(t, strings.HasSuffix(procs[ops["a/MatMul"]], "CPU:0 Compute"), "%s: a/MatMul on %s", name, procs[ops["a/MatMul"]])
		assert.True(t, strings.HasSuffix(procs[ops["c/MatMul"]], "CPU:1 Compute"), "%s: c/MatMul on %s", name, procs[ops["c/MatMul"]])
		t.Logf("%s: %d bytes, events by phase %v", name, len(got), phases)
		if opts.ShowMemory {
			assert.Positive(t, phases["O"], "%s: tensor snapshots", name)
			assert.Positive(t, phases["C"], "%s: memory counters", name)
		}
		if name == "noflow" {
			assert.Zero(t, flows)
		} else {
			assert.Positive(t, flows, "%s: data flows between devices", name)
		}
	}
	assert.True(t, proto.Equal(before, stats), "ChromeTrace changed its argument")

	_, err = ChromeTrace(nil, Options{})
	assert.Error(t, err)
	_, err = ChromeTrace(stats, Options{OpTime: "wall"})
	assert.Error(t, err)
}

// GPU step stats, as a GPU run records them, cannot come from this
// machine: they are made here from a CPU run's by adding what the GPU
// tracer adds (a /stream:all device and a stream and memcpy device whose
// kernels are labelled "kernel@@node:Op#...#"), and Go's trace of them is
// compared with Python's for each op_time.
func TestChromeTraceGPUStatsIsPythons(t *testing.T) {
	stats := new(sspb.StepStats)
	require.NoError(t, proto.Unmarshal(tracedStepStats(t), stats))
	var host *sspb.DeviceStepStats
	for _, ds := range stats.GetDevStats() {
		if strings.HasSuffix(ds.GetDevice(), "CPU:0") && len(ds.GetNodeStats()) > 0 {
			host = ds
		}
	}
	require.NotNil(t, host)
	const gpu = "/job:localhost/replica:0/task:0/device:GPU:0"
	all := &sspb.DeviceStepStats{Device: gpu + "/stream:all"}
	stream := &sspb.DeviceStepStats{Device: gpu + "/stream:7"}
	memcpy := &sspb.DeviceStepStats{Device: gpu + "/memcpy"}
	for i, ns := range host.GetNodeStats() {
		_, op, _ := parseOpLabel(ns.GetTimelineLabel())
		for k := 0; k < 2; k++ { // two kernels per op, the second later
			kernel := &sspb.NodeExecStats{
				NodeName:        ns.GetNodeName(),
				AllStartMicros:  ns.GetAllStartMicros() + int64(3+5*k+i),
				AllEndRelMicros: ns.GetAllEndRelMicros() + int64(2*k+1),
				TimelineLabel:   "volta_sgemm@@" + ns.GetNodeName() + ":" + op + "#id=" + string(rune('0'+k)) + "#",
			}
			all.NodeStats = append(all.NodeStats, kernel)
			stream.NodeStats = append(stream.NodeStats, proto.Clone(kernel).(*sspb.NodeExecStats))
		}
		if i%3 == 0 {
			memcpy.NodeStats = append(memcpy.NodeStats, &sspb.NodeExecStats{
				NodeName: ns.GetNodeName(), AllStartMicros: ns.GetAllStartMicros() + 1, AllEndRelMicros: 4,
				TimelineLabel: "MEMCPYHtoD"})
		}
	}
	stats.DevStats = append(stats.DevStats, all, stream, memcpy)
	raw, err := proto.Marshal(stats)
	require.NoError(t, err)

	w, err := pyref.Shared()
	require.NoError(t, err)
	py, err := w.Run(`
from tensorflow.core.framework import step_stats_pb2
from tensorflow.python.client import timeline
for op_time in ["schedule", "gpu", "all"]:
    ss = step_stats_pb2.StepStats()
    ss.ParseFromString(inputs["ss"].item())
    outputs[op_time] = timeline.Timeline(ss).generate_chrome_trace_format(show_memory=True, op_time=op_time)
`, map[string]*pyref.Array{"ss": {DType: "string", Shape: []int64{}, Strings: [][]byte{raw}}})
	require.NoError(t, err)
	for _, opTime := range []string{"schedule", "gpu", "all"} {
		got, err := ChromeTrace(stats, Options{ShowMemory: true, OpTime: opTime})
		require.NoError(t, err)
		assert.Equal(t, string(py[opTime].Strings[0]), string(got), opTime)
	}
	// The op times differ between the modes, or the test shows nothing.
	assert.NotEqual(t, string(py["schedule"].Strings[0]), string(py["gpu"].Strings[0]))
}

// The two Python formats the trace is written in, on values the traced
// runs above do not have: str() of a tensor description with an odd
// allocator name, and json.dumps of strings needing escapes.
func TestPythonFormats(t *testing.T) {
	odd := "é\x01\x7f'\"\\\n\t😀"
	td := &tdpb.TensorDescription{
		Dtype: tpb.DataType_DT_BFLOAT16,
		Shape: &tspb.TensorShapeProto{Dim: []*tspb.TensorShapeProto_Dim{{Size: 3}, {Size: -1, Name: "batch"}}},
		AllocationDescription: &adpb.AllocationDescription{
			RequestedBytes: 12, AllocatedBytes: 16, AllocatorName: odd, AllocationId: 7, HasSingleReference: true, Ptr: 1 << 40,
		},
	}
	raw, err := proto.Marshal(td)
	require.NoError(t, err)
	w, err := pyref.Shared()
	require.NoError(t, err)
	py, err := w.Run(`
import json
from tensorflow.core.framework import tensor_description_pb2
td = tensor_description_pb2.TensorDescription()
td.ParseFromString(inputs["td"].item())
outputs["text"] = str(td)
outputs["json"] = json.dumps({"s": [td.allocation_description.allocator_name, "plain", {}], "n": -3, "e": []}, indent=4, separators=(",", ": "))
`, map[string]*pyref.Array{"td": {DType: "string", Shape: []int64{}, Strings: [][]byte{raw}}})
	require.NoError(t, err)
	assert.Equal(t, string(py["text"].Strings[0]), pyTextFormat(td))

	var b strings.Builder
	writePyJSON(&b, object{{"s", []any{odd, "plain", object{}}}, {"n", int64(-3)}, {"e", []any{}}}, 0)
	assert.Equal(t, string(py["json"].Strings[0]), b.String())
}
