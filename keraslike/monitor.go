package keraslike

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	spb "github.com/wamuir/graft/tensorflow/core/framework/summary_go_proto"
	epb "github.com/wamuir/graft/tensorflow/core/util/event_go_proto"
)

// MonitorSample is one sampled training step's figures.
type MonitorSample struct {
	// Step counts the Fit's steps from 1; Epoch and Batch count from 0.
	Step         int64
	Epoch, Batch int
	// StepSeconds is the mean time of the steps since the previous sample
	// that ran untraced (batch end to batch end: the data, the session run
	// and the callbacks), so that the sampled step's own tracing does not
	// count; the sampled step's time when every step is sampled.
	StepSeconds float64
	// ExamplesPerSecond and TokensPerSecond follow from StepSeconds and
	// Monitor's BatchSize and TokensPerExample (0 when those are unset).
	ExamplesPerSecond, TokensPerSecond float64
	// RSSBytes is the process' resident set (VmRSS) after the step.
	RSSBytes int64
	// TFInUseBytes is the most TensorFlow's allocators held in all during
	// the step (allocator_bytes_in_use at kernel ends, summed over the
	// allocators: variables, optimizer slots and the step's tensors); 0
	// where the allocator keeps no statistics. TFPeakBytes is the step's
	// own peak (MemoryStats.StepPeakBytes).
	TFInUseBytes, TFPeakBytes int64
	// GPUs is one NVML reading per GPU; none without NVML.
	GPUs []GPUReading
}

// Figures are the sample's values under the names Monitor writes them with
// (TensorBoard tags, CSV columns, log keys), memory in MiB, in a fixed
// order; a GPU figure NVML did not report is left out.
func (s MonitorSample) Figures() ([]string, []float64) {
	names := []string{"step_time_s", "examples_per_s", "tokens_per_s", "host_rss_mib", "tf_mem_in_use_mib", "tf_step_peak_mib"}
	vals := []float64{s.StepSeconds, s.ExamplesPerSecond, s.TokensPerSecond, toMiB(s.RSSBytes), toMiB(s.TFInUseBytes), toMiB(s.TFPeakBytes)}
	for _, g := range s.GPUs {
		p := fmt.Sprintf("gpu%d_", g.Index)
		add := func(name string, v float64, ok bool) {
			if ok && !math.IsNaN(v) {
				names, vals = append(names, p+name), append(vals, v)
			}
		}
		add("util_pct", g.UtilizationPercent, true)
		add("mem_used_mib", toMiB(g.MemoryUsedBytes), g.MemoryUsedBytes >= 0)
		add("mem_total_mib", toMiB(g.MemoryTotalBytes), g.MemoryTotalBytes >= 0)
		add("temp_c", g.TemperatureC, true)
		add("power_w", g.PowerWatts, true)
	}
	return names, vals
}

func toMiB(b int64) float64 { return float64(b) / (1 << 20) }

// Monitor records what the hardware does during training: step time,
// examples and tokens per second, the host's resident set, TensorFlow's
// allocator memory and, where NVML is present (an NVIDIA driver), each
// GPU's utilization, memory, temperature and power. Every Every-th batch
// of an epoch is a sample, written as TensorBoard scalars under LogDir
// (TensorFlow's summary_iterator and `gotf monitor --logdir` read them)
// and as a CSV row to CSVPath.
//
// Its figures also go into the logs of each batch (the latest sample's)
// and of each epoch (the epoch's mean step time and throughput, the latest
// readings), so that a ProgressBar, TensorBoard or CSVLogger listed after
// it in FitOptions.Callbacks shows them.
//
// Steps that are not samples cost two clock readings and the log entries;
// a sample runs its step with a software trace (for the allocator
// figures, as MemoryMonitor does), reads /proc/self/status and NVML, and
// writes one event and one row.
type Monitor struct {
	NopCallback
	// LogDir receives the TensorBoard event file ("" writes none); give
	// it a directory of its own (runs/x/monitor beside the TensorBoard
	// callback's runs/x/train), which TensorBoard shows as a run.
	LogDir string
	// CSVPath receives a row per sample ("" writes none).
	CSVPath string
	// Every samples every Every-th batch of an epoch (0: every batch).
	Every int
	// BatchSize is the examples per step and TokensPerExample the tokens
	// per example (the sequence length), for the throughputs; 0 leaves
	// them out.
	BatchSize, TokensPerExample int
	// NVMLLibrary is the NVML library to load ("": libnvidia-ml.so.1).
	NVMLLibrary string
	// NoLogs keeps the figures out of the batch and epoch logs.
	NoLogs bool

	// Last is the latest sample and Samples the number taken in this Fit.
	Last    MonitorSample
	Samples int
	// GPUsUnavailable says why there are no GPU figures (nil when NVML
	// was loaded).
	GPUsUnavailable error
	// Err is the first failure to write the events or the CSV; training
	// goes on without them.
	Err error

	gpus    *GPUs
	events  *EventWriter
	csvFile *os.File
	csv     *csv.Writer
	header  []string

	step       int64
	epoch      int
	last       time.Time
	mem        *MemoryStats
	sumU, sumT time.Duration // untraced and traced steps since the last sample
	nU, nT     int
	epochSum   time.Duration // untraced steps of the epoch
	epochN     int
	latest     Logs
}

func (*Monitor) chiefOnly() {}

// MemoryEvery implements MemoryCallback.
func (mo *Monitor) MemoryEvery() int {
	if mo == nil {
		return 0
	}
	return max(mo.Every, 1)
}

// OnStepMemory implements MemoryCallback.
func (mo *Monitor) OnStepMemory(_ *Model, _, _ int, s MemoryStats) {
	if mo != nil {
		mo.mem = &s
	}
}

func (mo *Monitor) note(err error) {
	if err != nil && mo.Err == nil {
		mo.Err = err
	}
}

func (mo *Monitor) OnTrainBegin(*Model, FitInfo) {
	if mo == nil {
		return
	}
	mo.closeOutputs()
	mo.Last, mo.Samples, mo.Err, mo.step, mo.latest, mo.header = MonitorSample{}, 0, nil, 0, nil, nil
	mo.gpus = OpenGPUs(mo.NVMLLibrary)
	mo.GPUsUnavailable = mo.gpus.Unavailable
	if mo.LogDir != "" {
		w, err := NewEventWriter(mo.LogDir)
		mo.note(err)
		mo.events = w
	}
	if mo.CSVPath != "" {
		f, err := os.Create(mo.CSVPath)
		if err != nil {
			mo.note(fmt.Errorf("Monitor CSV: %w", err))
		} else {
			mo.csvFile, mo.csv = f, csv.NewWriter(f)
		}
	}
}

func (mo *Monitor) OnEpochBegin(_ *Model, epoch int) {
	if mo == nil {
		return
	}
	mo.epoch = epoch
	mo.last = time.Now()
	mo.sumU, mo.sumT, mo.nU, mo.nT, mo.epochSum, mo.epochN = 0, 0, 0, 0, 0, 0
	mo.mem = nil
}

func (mo *Monitor) OnBatchEnd(_ *Model, batch int, logs Logs) {
	if mo == nil {
		return
	}
	now := time.Now()
	d := now.Sub(mo.last)
	mo.last = now
	mo.step++
	if mo.mem != nil {
		mo.sumT += d
		mo.nT++
	} else {
		mo.sumU += d
		mo.nU++
		mo.epochSum += d
		mo.epochN++
	}
	if batch%mo.MemoryEvery() == 0 {
		mo.sample(batch, now)
	}
	if !mo.NoLogs && logs != nil {
		for k, v := range mo.latest {
			logs[k] = v
		}
	}
}

func (mo *Monitor) sample(batch int, now time.Time) {
	s := MonitorSample{Step: mo.step, Epoch: mo.epoch, Batch: batch}
	if mo.nU > 0 {
		s.StepSeconds = mo.sumU.Seconds() / float64(mo.nU)
	} else if mo.nT > 0 {
		s.StepSeconds = mo.sumT.Seconds() / float64(mo.nT)
	}
	mo.sumU, mo.sumT, mo.nU, mo.nT = 0, 0, 0, 0
	s.ExamplesPerSecond, s.TokensPerSecond = mo.throughput(s.StepSeconds)
	s.RSSBytes, _ = processRSS()
	if mo.mem != nil {
		s.TFPeakBytes = mo.mem.StepPeakBytes
		for _, d := range mo.mem.Step.Devices {
			for _, a := range d.Allocators {
				s.TFInUseBytes += a.MaxBytesInUse
			}
		}
		mo.mem = nil
	}
	s.GPUs = mo.gpus.Read()
	mo.Last = s
	mo.Samples++
	names, vals := s.Figures()
	if mo.latest == nil {
		mo.latest = Logs{}
	}
	for i, n := range names {
		mo.latest[n] = vals[i]
	}
	if mo.events != nil {
		e := &epb.Event{Step: s.Step, WallTime: float64(now.UnixNano()) / 1e9}
		sum := &spb.Summary{}
		for i, n := range names {
			sum.Value = append(sum.Value, &spb.Summary_Value{Tag: n, Value: &spb.Summary_Value_SimpleValue{SimpleValue: float32(vals[i])}})
		}
		e.What = &epb.Event_Summary{Summary: sum}
		mo.note(mo.events.Write(e))
	}
	if mo.csv != nil {
		if mo.header == nil {
			// The columns are the first sample's: GPUs do not come and go
			// during a Fit, and a figure a GPU stops reporting is an empty cell.
			mo.header = names
			mo.csv.Write(append([]string{"step", "epoch", "batch", "wall_time"}, names...))
		}
		row := []string{strconv.FormatInt(s.Step, 10), strconv.Itoa(s.Epoch), strconv.Itoa(batch),
			strconv.FormatFloat(float64(now.UnixNano())/1e9, 'f', 3, 64)}
		for _, h := range mo.header {
			cell := ""
			for i, n := range names {
				if n == h {
					cell = strconv.FormatFloat(vals[i], 'g', -1, 64)
					break
				}
			}
			row = append(row, cell)
		}
		mo.csv.Write(row)
		mo.csv.Flush()
		mo.note(mo.csv.Error())
	}
}

func (mo *Monitor) throughput(stepSeconds float64) (examples, tokens float64) {
	if stepSeconds <= 0 || mo.BatchSize <= 0 {
		return 0, 0
	}
	examples = float64(mo.BatchSize) / stepSeconds
	return examples, examples * float64(mo.TokensPerExample)
}

func (mo *Monitor) OnEpochEnd(_ *Model, _ int, logs Logs) error {
	if mo == nil {
		return nilCallback("Monitor")
	}
	if mo.events != nil {
		mo.note(mo.events.Flush())
	}
	if mo.NoLogs || logs == nil {
		return nil
	}
	for k, v := range mo.latest {
		logs[k] = v
	}
	if mo.epochN > 0 {
		st := mo.epochSum.Seconds() / float64(mo.epochN)
		logs["step_time_s"] = st
		logs["examples_per_s"], logs["tokens_per_s"] = mo.throughput(st)
	}
	return nil
}

func (mo *Monitor) OnTrainEnd(*Model) {
	if mo != nil {
		mo.closeOutputs()
	}
}

func (mo *Monitor) closeOutputs() {
	if mo.events != nil {
		mo.note(mo.events.Close())
		mo.events = nil
	}
	if mo.csvFile != nil {
		mo.csv.Flush()
		mo.note(mo.csv.Error())
		mo.note(mo.csvFile.Close())
		mo.csvFile, mo.csv = nil, nil
	}
	if mo.gpus != nil {
		mo.note(mo.gpus.Close())
		mo.gpus = nil
	}
}
