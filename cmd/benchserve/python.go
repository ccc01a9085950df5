package main

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/gotf/gotf/internal/pyref"
)

// pyRun is Python's in-process timing of the same model and input.
type pyRun struct {
	calls     int
	latencies []time.Duration // sorted
	logits    []float32
}

// pyServe times calls of serving_default after 5 warm-up calls, each with
// the output fetched to numpy, as a server would before answering.
const pyServe = `
import time
import numpy as np
import tensorflow as tf
sig = tf.saved_model.load(inputs["dir"].item().decode()).signatures[inputs["sig"].item().decode()]
name, out_name = inputs["input"].item().decode(), inputs["output"].item().decode()
x = tf.constant(inputs["ids"])
for _ in range(5):
    sig(**{name: x})[out_name].numpy()
seconds = []
for _ in range(int(inputs["calls"])):
    t0 = time.perf_counter()
    logits = sig(**{name: x})[out_name].numpy()
    seconds.append(time.perf_counter() - t0)
outputs["seconds"] = np.array(seconds, dtype=np.float64)
outputs["logits"] = logits.astype(np.float32)
`

func pythonLatency(m *served, ids []int32, calls int) (*pyRun, error) {
	w, err := pyref.Start()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	str := func(s string) *pyref.Array {
		return &pyref.Array{DType: "string", Shape: []int64{}, Strings: [][]byte{[]byte(s)}}
	}
	out, err := w.Run(pyServe, map[string]*pyref.Array{
		"dir": str(m.dir), "sig": str(m.sig), "input": str(m.input), "output": str(m.output),
		"ids": pyref.Int32s([]int64{1, int64(len(ids))}, ids), "calls": pyref.Int64s([]int64{}, []int64{int64(calls)}),
	})
	if err != nil {
		return nil, fmt.Errorf("Python's timing: %w", err)
	}
	secs, err := out["seconds"].Float64s()
	if err != nil {
		return nil, err
	}
	r := &pyRun{calls: len(secs)}
	for _, s := range secs {
		r.latencies = append(r.latencies, time.Duration(s*float64(time.Second)))
	}
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	if r.logits, err = out["logits"].Float32s(); err != nil {
		return nil, err
	}
	return r, nil
}

// maxAbsDiff is the largest |a-b| of two equally long vectors, or +Inf
// when their lengths differ.
func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}
