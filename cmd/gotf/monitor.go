package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gotf/gotf/keraslike"
	"github.com/spf13/cobra"
	spb "github.com/wamuir/graft/tensorflow/core/framework/summary_go_proto"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	epb "github.com/wamuir/graft/tensorflow/core/util/event_go_proto"
)

type monitorOptions struct {
	interval time.Duration
	format   string
	logdir   string
	count    int
	nvml     string
}

func newMonitorCmd() *cobra.Command {
	var o monitorOptions
	var seconds float64
	var millis int
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Print GPU, host and training-run figures every interval (nvidia-smi -l)",
		Long: `Prints a line every interval, as nvidia-smi -l does, until interrupted
(SIGINT, SIGTERM) or --count lines are printed:

  host       CPU busy since the previous line (/proc/stat) and memory in use
             (MemTotal - MemAvailable of /proc/meminfo)
  GPUs       per GPU, through NVML (loaded at run time from the NVIDIA
             driver's libnvidia-ml.so.1): utilization, memory used/total,
             temperature, power; without NVML there are no GPU columns
  --logdir   the latest step of each run (directory of event files) below
             a training run's TensorBoard log directory, and its scalars:
             the figures keraslike's Monitor callback writes (step time,
             examples/s, tokens/s, memory, GPUs), or any other scalars

--format csv prints a header and then one row per interval. Its columns are
fixed by the first row: a run or tag that appears later is left out (start
monitor again to see it).`,
		Example: `  gotf monitor                     # every second, like nvidia-smi -l 1
  gotf monitor -l 5 --logdir runs/gpt
  gotf monitor --lms 500 --format csv --count 120 > hw.csv`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case cmd.Flags().Changed("lms") && cmd.Flags().Changed("loop"):
				return usagef("give -l or --lms, not both")
			case cmd.Flags().Changed("lms"):
				o.interval = time.Duration(millis) * time.Millisecond
			default:
				o.interval = time.Duration(seconds * float64(time.Second))
			}
			if o.interval <= 0 || math.IsNaN(seconds) {
				return usagef("the interval must be positive")
			}
			if o.format != "text" && o.format != "csv" {
				return usagef("--format %q: want text or csv", o.format)
			}
			if o.count < 0 {
				return usagef("--count must not be negative")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return monitor(ctx, cmd.OutOrStdout(), o)
		},
	}
	cmd.Flags().Float64VarP(&seconds, "loop", "l", 1, "seconds between lines")
	cmd.Flags().IntVar(&millis, "lms", 0, "milliseconds between lines (instead of -l)")
	cmd.Flags().StringVar(&o.format, "format", "text", "text or csv")
	cmd.Flags().StringVar(&o.logdir, "logdir", "", "a training run's TensorBoard log directory")
	cmd.Flags().IntVarP(&o.count, "count", "c", 0, "stop after this many lines (0: until interrupted)")
	cmd.Flags().StringVar(&o.nvml, "nvml", "", "the NVML library to load (default libnvidia-ml.so.1)")
	return cmd
}

// monitor prints a line every o.interval until ctx is done or o.count
// lines are out. A stop by ctx is a normal end.
func monitor(ctx context.Context, w io.Writer, o monitorOptions) error {
	var runs *runReader
	if o.logdir != "" {
		fi, err := os.Stat(o.logdir)
		if err != nil {
			return fmt.Errorf("--logdir: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("--logdir %s: not a directory", o.logdir)
		}
		runs = &runReader{dir: o.logdir, files: map[string]*eventFile{}}
		// A log directory that cannot be read fails now, not after a line.
		if err := runs.refresh(); err != nil {
			return err
		}
	}
	cpu, err := readCPU()
	if err != nil {
		return err
	}
	gpus := keraslike.OpenGPUs(o.nvml)
	defer gpus.Close()
	var cw *csv.Writer
	var header []string
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for n := 0; o.count == 0 || n < o.count; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := time.Now()
		next, err := readCPU()
		if err != nil {
			return err
		}
		busy := cpu.busySince(next)
		cpu = next
		memUsed, memTotal, err := readMeminfo()
		if err != nil {
			return err
		}
		var latest []runStep
		if runs != nil {
			if err := runs.refresh(); err != nil {
				return err
			}
			latest = runs.latest()
		}
		readings := gpus.Read()
		if o.format == "text" {
			fmt.Fprintln(w, textLine(now, busy, memUsed, memTotal, readings, latest))
			continue
		}
		names, vals := csvFigures(busy, memUsed, memTotal, readings, latest)
		if cw == nil {
			cw = csv.NewWriter(w)
			header = names
			cw.Write(append([]string{"timestamp"}, names...))
		}
		row := []string{now.UTC().Format(time.RFC3339Nano)}
		for _, h := range header {
			cell := ""
			for i, n := range names {
				if n == h {
					cell = strconv.FormatFloat(vals[i], 'g', -1, 64)
					break
				}
			}
			row = append(row, cell)
		}
		cw.Write(row)
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	}
	return nil
}

func textLine(now time.Time, busy float64, memUsed, memTotal int64, gpus []keraslike.GPUReading, runs []runStep) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  cpu %5.1f%%  mem %.1f/%.1f GiB", now.Format("2006-01-02 15:04:05.000"), busy, gib(memUsed), gib(memTotal))
	for _, g := range gpus {
		fmt.Fprintf(&b, "  | gpu%d %s util %s mem %.1f/%.1f GiB temp %sC power %sW", g.Index, g.Name, num(g.UtilizationPercent, "%.0f%%"),
			gib(g.MemoryUsedBytes), gib(g.MemoryTotalBytes), num(g.TemperatureC, "%.0f"), num(g.PowerWatts, "%.1f"))
	}
	for _, r := range runs {
		fmt.Fprintf(&b, "  | %s step %d:", r.run, r.step)
		for _, k := range r.tags {
			fmt.Fprintf(&b, " %s %s", k, strconv.FormatFloat(r.vals[k], 'g', 5, 64))
		}
	}
	return b.String()
}

func num(v float64, format string) string {
	if math.IsNaN(v) {
		return "N/A"
	}
	return fmt.Sprintf(format, v)
}

func gib(b int64) float64 { return float64(b) / (1 << 30) }

func csvFigures(busy float64, memUsed, memTotal int64, gpus []keraslike.GPUReading, runs []runStep) ([]string, []float64) {
	names := []string{"cpu_pct", "mem_used_mib", "mem_total_mib"}
	vals := []float64{busy, float64(memUsed) / (1 << 20), float64(memTotal) / (1 << 20)}
	// The GPU columns are the Monitor callback's, so that the two CSVs
	// read alike.
	gn, gv := keraslike.MonitorSample{GPUs: gpus}.Figures()
	for i, n := range gn {
		if strings.HasPrefix(n, "gpu") {
			names, vals = append(names, n), append(vals, gv[i])
		}
	}
	for _, r := range runs {
		names, vals = append(names, r.run+"/step"), append(vals, float64(r.step))
		for _, k := range r.tags {
			names, vals = append(names, r.run+"/"+k), append(vals, r.vals[k])
		}
	}
	return names, vals
}

// cpuTimes is the "cpu" line of /proc/stat, in clock ticks.
type cpuTimes struct{ idle, total uint64 }

func readCPU() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, fmt.Errorf("host CPU: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("host CPU: /proc/stat starts with %q, not the cpu line", excerptOf(line))
	}
	var c cpuTimes
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("host CPU: /proc/stat field %d: %w", i+1, err)
		}
		// guest and guest_nice (fields 9, 10) are already in user and nice.
		if i >= 8 {
			break
		}
		c.total += v
		if i == 3 || i == 4 { // idle, iowait
			c.idle += v
		}
	}
	return c, nil
}

func excerptOf(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

// busySince is the percentage of the CPU time between c and next not
// spent idle, over all CPUs, as top's %Cpu line counts it.
func (c cpuTimes) busySince(next cpuTimes) float64 {
	dt := float64(next.total - c.total)
	if next.total <= c.total {
		return 0
	}
	return 100 * (dt - float64(next.idle-c.idle)) / dt
}

// readMeminfo is the memory in use (MemTotal - MemAvailable, what free
// calls used plus what the kernel cannot reclaim) and MemTotal, in bytes.
func readMeminfo() (used, total int64, err error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0, fmt.Errorf("host memory: %w", err)
	}
	var avail int64 = -1
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "MemTotal:":
			total = v << 10
		case "MemAvailable:":
			avail = v << 10
		}
	}
	if total == 0 || avail < 0 {
		return 0, 0, errors.New("host memory: /proc/meminfo has no MemTotal or MemAvailable")
	}
	return total - avail, total, nil
}

// runReader follows the event files below a log directory, rereading a
// file when it has grown.
type runReader struct {
	dir   string
	files map[string]*eventFile
}

type eventFile struct {
	size int64
	step runStep
}

// runStep is a run's latest step and the scalars written at it.
type runStep struct {
	run  string
	step int64
	tags []string
	vals map[string]float64
}

func (r *runReader) refresh() error {
	return filepath.WalkDir(r.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("--logdir: %w", err)
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), "events.out.tfevents.") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("--logdir: %w", err)
		}
		ef := r.files[path]
		if ef != nil && ef.size == fi.Size() {
			return nil
		}
		run, _ := filepath.Rel(r.dir, filepath.Dir(path))
		st := runStep{run: filepath.ToSlash(run), step: -1}
		err = keraslike.ReadEvents(path, func(e *epb.Event) error {
			vals := e.GetSummary().GetValue()
			if len(vals) == 0 || e.Step < st.step {
				return nil
			}
			if e.Step > st.step {
				st.step, st.vals = e.Step, map[string]float64{}
			}
			for _, v := range vals {
				if x, ok := scalarOf(v); ok {
					st.vals[v.GetTag()] = x
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		st.tags = make([]string, 0, len(st.vals))
		for k := range st.vals {
			st.tags = append(st.tags, k)
		}
		sort.Strings(st.tags)
		r.files[path] = &eventFile{size: fi.Size(), step: st}
		return nil
	})
}

// scalarOf is a summary value's number: a simple_value (tf.compat.v1,
// keraslike) or a scalar tensor (tf.summary.scalar in TF 2, Keras 3's
// TensorBoard callback).
func scalarOf(v *spb.Summary_Value) (float64, bool) {
	if sv, ok := v.GetValue().(*spb.Summary_Value_SimpleValue); ok {
		return float64(sv.SimpleValue), true
	}
	t := v.GetTensor()
	if t == nil || len(t.GetTensorShape().GetDim()) != 0 {
		return 0, false
	}
	c := t.GetTensorContent()
	switch t.GetDtype() {
	case tpb.DataType_DT_FLOAT:
		if len(t.GetFloatVal()) == 1 {
			return float64(t.GetFloatVal()[0]), true
		}
		if len(c) == 4 {
			return float64(math.Float32frombits(binary.LittleEndian.Uint32(c))), true
		}
	case tpb.DataType_DT_DOUBLE:
		if len(t.GetDoubleVal()) == 1 {
			return t.GetDoubleVal()[0], true
		}
		if len(c) == 8 {
			return math.Float64frombits(binary.LittleEndian.Uint64(c)), true
		}
	}
	return 0, false
}

// latest is each run's latest step over its event files, runs in order.
func (r *runReader) latest() []runStep {
	byRun := map[string]runStep{}
	for _, f := range r.files {
		if f.step.step < 0 {
			continue
		}
		if cur, ok := byRun[f.step.run]; !ok || f.step.step > cur.step {
			byRun[f.step.run] = f.step
		}
	}
	out := make([]runStep, 0, len(byRun))
	for _, s := range byRun {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].run < out[j].run })
	return out
}
