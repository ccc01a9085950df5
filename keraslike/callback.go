package keraslike

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// FitInfo tells callbacks what Fit is about to do.
type FitInfo struct {
	Epochs int
	Steps  int // batches per epoch, -1 if unknown
	// Start is where Fit begins: FitOptions.InitialEpoch, or the position
	// a Resumer restored.
	Start FitPosition
}

// FitPosition is a point in a Fit run: the epoch (from 0) and how many of
// its batches are done.
type FitPosition struct {
	Epoch, Batch int
}

// Resumer is a callback that restores an interrupted run
// (BackupAndRestore). Fit calls Resume on each callback that implements
// it, in order, after opening the session and before OnTrainBegin: the
// Resumer restores the model's state and returns where the run stopped,
// or nil when there is nothing to resume. Fit then starts there instead
// of at FitOptions.InitialEpoch (as Keras' fit prefers the
// model._initial_epoch BackupAndRestore sets), skipping the epoch's done
// batches without running them. An error stops Fit before any step.
type Resumer interface {
	Resume(m *Model) (*FitPosition, error)
}

// Callback hooks into Fit, as keras.callbacks.Callback. Embed
// NopCallback to implement only some methods.
type Callback interface {
	OnTrainBegin(m *Model, info FitInfo)
	OnEpochBegin(m *Model, epoch int)
	OnBatchEnd(m *Model, batch int, logs Logs)
	// OnEpochEnd may fail (a checkpoint that cannot be written): Fit stops
	// and returns the error.
	OnEpochEnd(m *Model, epoch int, logs Logs) error
	OnTrainEnd(m *Model)
}

// nilCallback is the error of a nil callback's OnEpochEnd (Fit refuses
// nil callbacks before it starts).
func nilCallback(class string) error {
	return fmt.Errorf("keraslike: nil *%s callback (declare one: &keraslike.%s{...})", class, class)
}

// NopCallback does nothing; embed it in callbacks.
type NopCallback struct{}

func (NopCallback) OnTrainBegin(*Model, FitInfo)       {}
func (NopCallback) OnEpochBegin(*Model, int)           {}
func (NopCallback) OnBatchEnd(*Model, int, Logs)       {}
func (NopCallback) OnEpochEnd(*Model, int, Logs) error { return nil }
func (NopCallback) OnTrainEnd(*Model)                  {}

type callbackList []Callback

// chiefOnly marks the callbacks that write files where the chief's go
// (checkpoints, TensorBoard events, CSV logs). Under a multi-worker
// strategy only the chief calls them: Python's have the other workers
// write to temporary directories they then delete, which leaves the same
// files; writing nothing does it without the I/O.
type chiefOnly interface{ chiefOnly() }

func (*ModelCheckpoint) chiefOnly() {}
func (*TensorBoard) chiefOnly()     {}
func (*CSVLogger) chiefOnly()       {}
func (*Profile) chiefOnly()         {}

// workerCallbacks are the callbacks this process calls: all of them but
// the chiefOnly ones on a worker that is not the chief.
func (m *Model) workerCallbacks(cbs []Callback) callbackList {
	if m.Strategy().IsChief() {
		return cbs
	}
	var l callbackList
	for _, c := range cbs {
		if _, ok := c.(chiefOnly); !ok {
			l = append(l, c)
		}
	}
	return l
}

// checkCallbacks refuses nil callbacks before Fit starts: their methods
// without an error result could only panic.
func checkCallbacks(cbs []Callback) error {
	for i, c := range cbs {
		if v := reflect.ValueOf(c); c == nil || v.Kind() == reflect.Pointer && v.IsNil() {
			return fmt.Errorf("callback %d is nil", i)
		}
	}
	return nil
}

func (l callbackList) onTrainBegin(m *Model, i FitInfo) {
	for _, c := range l {
		c.OnTrainBegin(m, i)
	}
}
func (l callbackList) onEpochBegin(m *Model, e int) {
	for _, c := range l {
		c.OnEpochBegin(m, e)
	}
}
func (l callbackList) onBatchEnd(m *Model, b int, logs Logs) {
	for _, c := range l {
		c.OnBatchEnd(m, b, logs)
	}
}
func (l callbackList) onEpochEnd(m *Model, e int, logs Logs) error {
	for _, c := range l {
		if err := c.OnEpochEnd(m, e, logs); err != nil {
			return err
		}
	}
	return nil
}
func (l callbackList) onTrainEnd(m *Model) {
	for _, c := range l {
		c.OnTrainEnd(m)
	}
}

// sortedKeys lists logs in Keras' order: loss first, then the rest sorted.
func sortedKeys(logs Logs) []string {
	var keys []string
	for k := range logs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := rank(keys[i]), rank(keys[j])
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	return keys
}

func rank(k string) int {
	switch {
	case k == "loss":
		return 0
	case strings.HasPrefix(k, "val_"):
		return 2
	}
	return 1
}

// ProgressBar prints Keras' progress line: "12/50 ━━━━━━━━━━━━━━━━━━━━ 3s 61ms/step - loss: 4.1234",
// redrawn in place on a terminal, once per epoch elsewhere (Keras' verbose=2).
type ProgressBar struct {
	NopCallback
	W        io.Writer // default os.Stdout
	steps    int
	epochs   int
	start    time.Time
	lastDraw time.Time
	tty      bool
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *ProgressBar) out() io.Writer {
	if p.W == nil {
		return os.Stdout
	}
	return p.W
}

func (p *ProgressBar) OnTrainBegin(_ *Model, i FitInfo) {
	p.steps, p.epochs = i.Steps, i.Epochs
	p.tty = isTerminal(p.out())
}

func (p *ProgressBar) OnEpochBegin(_ *Model, e int) {
	fmt.Fprintf(p.out(), "Epoch %d/%d\n", e+1, p.epochs)
	p.start = time.Now()
	p.lastDraw = time.Time{}
}

func (p *ProgressBar) OnBatchEnd(_ *Model, b int, logs Logs) {
	if !p.tty || (time.Since(p.lastDraw) < 100*time.Millisecond && b+1 != p.steps) {
		return
	}
	p.lastDraw = time.Now()
	p.draw(b+1, logs, "\r")
}

func (p *ProgressBar) draw(done int, logs Logs, prefix string) {
	elapsed := time.Since(p.start)
	per := elapsed / time.Duration(max(done, 1))
	bar, eta := "", ""
	if p.steps > 0 {
		const width = 20
		filled := width * done / p.steps
		bar = strings.Repeat("━", filled) + strings.Repeat("─", width-filled)
		if done < p.steps {
			eta = fmt.Sprintf(" ETA %s", (per * time.Duration(p.steps-done)).Round(time.Second))
		}
	}
	var ms []string
	for _, k := range sortedKeys(logs) {
		ms = append(ms, fmt.Sprintf("%s: %.4f", k, logs[k]))
	}
	clear := ""
	if p.tty {
		clear = "\033[K"
	} else {
		prefix = ""
	}
	fmt.Fprintf(p.out(), "%s%d/%d %s %s%s %s/step - %s%s", prefix, done, p.steps, bar,
		elapsed.Round(time.Second), eta, per.Round(time.Millisecond), strings.Join(ms, " - "), clear)
}

func (p *ProgressBar) OnEpochEnd(_ *Model, e int, logs Logs) error {
	if p == nil {
		return nilCallback("ProgressBar")
	}
	p.draw(p.steps, logs, "\r")
	fmt.Fprintln(p.out())
	return nil
}

// EarlyStopping stops Fit when a monitored metric stops improving
// (keras.callbacks.EarlyStopping: monitor "val_loss", patience, min_delta).
type EarlyStopping struct {
	NopCallback
	Monitor  string // default "val_loss"
	Patience int
	MinDelta float64
	// Mode "min" (default) or "max" (for accuracy-like metrics).
	Mode string

	best  float64
	wait  int
	begun bool
}

func (e *EarlyStopping) OnTrainBegin(*Model, FitInfo) { e.begun, e.wait = false, 0 }

func (e *EarlyStopping) OnEpochEnd(m *Model, _ int, logs Logs) error {
	if e == nil {
		return nilCallback("EarlyStopping")
	}
	if err := m.usable(); err != nil { // the model it would stop
		return fmt.Errorf("EarlyStopping: %w", err)
	}
	key := e.Monitor
	if key == "" {
		key = "val_loss"
	}
	v, ok := logs[key]
	if !ok {
		return fmt.Errorf("EarlyStopping: metric %q is not in the logs (%s)", key, strings.Join(sortedKeys(logs), ", "))
	}
	better := v < e.best-e.MinDelta
	if e.Mode == "max" {
		better = v > e.best+e.MinDelta
	}
	if !e.begun || better {
		e.best, e.wait, e.begun = v, 0, true
		return nil
	}
	e.wait++
	if e.wait > e.Patience {
		m.StopTraining()
	}
	return nil
}

// CSVLogger writes one row of logs per epoch (keras.callbacks.CSVLogger).
type CSVLogger struct {
	NopCallback
	Path string
	keys []string
	f    *os.File
	w    *csv.Writer
	err  error
}

func (c *CSVLogger) OnTrainBegin(*Model, FitInfo) {
	c.f, c.err = os.Create(c.Path)
	if c.err == nil {
		c.w = csv.NewWriter(c.f)
	}
	c.keys = nil
}

func (c *CSVLogger) OnEpochEnd(_ *Model, epoch int, logs Logs) error {
	if c == nil {
		return nilCallback("CSVLogger")
	}
	if c.err != nil {
		return fmt.Errorf("CSVLogger %s: %w", c.Path, c.err)
	}
	if c.w == nil {
		return fmt.Errorf("CSVLogger %s: OnEpochEnd before OnTrainBegin, which opens the file", c.Path)
	}
	if c.keys == nil {
		c.keys = sortedKeys(logs)
		c.w.Write(append([]string{"epoch"}, c.keys...))
	}
	row := []string{strconv.Itoa(epoch)}
	for _, k := range c.keys {
		v, ok := logs[k]
		if !ok {
			v = math.NaN()
		}
		row = append(row, strconv.FormatFloat(v, 'g', -1, 64))
	}
	c.w.Write(row)
	c.w.Flush()
	return c.w.Error()
}

func (c *CSVLogger) OnTrainEnd(*Model) {
	if c.f != nil {
		c.f.Close()
	}
}
