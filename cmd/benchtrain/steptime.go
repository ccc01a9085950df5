package main

import (
	"slices"
	"time"

	"github.com/gotf/gotf/keraslike"
)

// stepTimer records each step's wall time, from the end of the previous
// batch (or the epoch's start) to the end of this one: the session run and
// Fit's host work around it, what a user waits for.
type stepTimer struct {
	keraslike.NopCallback
	last  time.Time
	steps map[int]time.Duration
}

func (t *stepTimer) OnEpochBegin(*keraslike.Model, int) {
	t.last = time.Now()
	if t.steps == nil {
		t.steps = map[int]time.Duration{}
	}
}

func (t *stepTimer) OnBatchEnd(_ *keraslike.Model, batch int, _ keraslike.Logs) {
	now := time.Now()
	t.steps[batch] = now.Sub(t.last)
	t.last = now
}

// drop forgets a step (the traced one).
func (t *stepTimer) drop(batch int) { delete(t.steps, batch) }

// list is the recorded steps' times in milliseconds, in batch order.
func (t *stepTimer) list() []float64 {
	batches := make([]int, 0, len(t.steps))
	for b := range t.steps {
		batches = append(batches, b)
	}
	slices.Sort(batches)
	ms := make([]float64, len(batches))
	for i, b := range batches {
		ms[i] = float64(t.steps[b].Microseconds()) / 1e3
	}
	return ms
}

// summary is the median and the mean step time in milliseconds.
func (t *stepTimer) summary() (median, mean float64) {
	if len(t.steps) == 0 {
		return 0, 0
	}
	ms := t.list()
	sum := 0.0
	for _, v := range ms {
		sum += v
	}
	slices.Sort(ms)
	n := len(ms)
	median = ms[n/2]
	if n%2 == 0 {
		median = (ms[n/2-1] + ms[n/2]) / 2
	}
	return median, sum / float64(n)
}
