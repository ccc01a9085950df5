package keraslike

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gotf/gotf/savedmodel"
	spb "github.com/wamuir/graft/tensorflow/core/framework/summary_go_proto"
	epb "github.com/wamuir/graft/tensorflow/core/util/event_go_proto"
	"google.golang.org/protobuf/proto"
)

// EventWriter appends TensorBoard events to a file: TFRecord framing
// (length, masked crc32c of the length, payload, masked crc32c of the
// payload) of Event protos, starting with the "brain.Event:2" version event.
type EventWriter struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// NewEventWriter creates dir and a new events.out.tfevents.* file in it.
func NewEventWriter(dir string) (*EventWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("TensorBoard log dir: %w", err)
	}
	host, _ := os.Hostname()
	now := time.Now()
	path := filepath.Join(dir, fmt.Sprintf("events.out.tfevents.%d.%s.%d.v2", now.Unix(), host, os.Getpid()))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("TensorBoard event file: %w", err)
	}
	w := &EventWriter{f: f, path: path}
	if err := w.Write(&epb.Event{What: &epb.Event_FileVersion{FileVersion: "brain.Event:2"}}); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// Path is the event file's path.
func (w *EventWriter) Path() string { return w.path }

// file is the open event file, or why there is none. w.mu must be held.
func (w *EventWriter) file() (*os.File, error) {
	if w.f == nil {
		if w.path == "" {
			return nil, errZeroEventWriter
		}
		return nil, fmt.Errorf("keraslike: EventWriter %s is closed", w.path)
	}
	return w.f, nil
}

// errZeroEventWriter is the error of a nil or zero EventWriter.
var errZeroEventWriter = errors.New("keraslike: nil or zero EventWriter (make one with NewEventWriter)")

// Write appends one event (its wall time set to now if zero).
func (w *EventWriter) Write(e *epb.Event) error {
	if w == nil {
		return errZeroEventWriter
	}
	if e == nil {
		return fmt.Errorf("writing %s: nil event", w.path)
	}
	if e.WallTime == 0 {
		e.WallTime = float64(time.Now().UnixNano()) / 1e9
	}
	data, err := proto.Marshal(e)
	if err != nil {
		return err
	}
	rec := savedmodel.AppendRecord(make([]byte, 0, 16+len(data)), data)
	w.mu.Lock()
	defer w.mu.Unlock()
	f, err := w.file()
	if err != nil {
		return err
	}
	if _, err := f.Write(rec); err != nil {
		return fmt.Errorf("writing %s: %w", w.path, err)
	}
	return nil
}

// Scalar writes a scalar summary (tag, value) at step.
func (w *EventWriter) Scalar(tag string, value float64, step int64) error {
	return w.Write(&epb.Event{Step: step, What: &epb.Event_Summary{Summary: &spb.Summary{
		Value: []*spb.Summary_Value{{Tag: tag, Value: &spb.Summary_Value_SimpleValue{SimpleValue: float32(value)}}},
	}}})
}

// Graph writes a serialized GraphDef, which TensorBoard's Graphs tab shows.
func (w *EventWriter) Graph(graphDef []byte) error {
	return w.Write(&epb.Event{What: &epb.Event_GraphDef{GraphDef: graphDef}})
}

// Flush syncs the file.
func (w *EventWriter) Flush() error {
	if w == nil {
		return errZeroEventWriter
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	f, err := w.file()
	if err != nil {
		return err
	}
	return f.Sync()
}

// Close closes the file; later writes fail, and closing again does nothing.
func (w *EventWriter) Close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// TensorBoard is keras.callbacks.TensorBoard: scalars per epoch (and every
// UpdateFreq batches) under LogDir/train and LogDir/validation, and the
// model's graph.
type TensorBoard struct {
	NopCallback
	LogDir string
	// UpdateFreq writes batch-level scalars every that many batches (0: epochs only).
	UpdateFreq int

	train, val *EventWriter
	step       int64
	Err        error // the first write error; training goes on without logs
}

func (t *TensorBoard) OnTrainBegin(m *Model, _ FitInfo) {
	var err error
	if t.train, err = NewEventWriter(filepath.Join(t.LogDir, "train")); err != nil {
		t.Err = err
		return
	}
	if t.val, err = NewEventWriter(filepath.Join(t.LogDir, "validation")); err != nil {
		t.Err = err
		return
	}
	if m == nil {
		return // no graph to show
	}
	if gd, err := m.Scope().Graph().GraphDef(); err == nil {
		b, _ := proto.Marshal(gd)
		t.note(t.train.Graph(b))
	}
}

func (t *TensorBoard) note(err error) {
	if err != nil && t.Err == nil {
		t.Err = err
	}
}

func (t *TensorBoard) OnBatchEnd(_ *Model, _ int, logs Logs) {
	t.step++
	if t.train == nil || t.UpdateFreq <= 0 || t.step%int64(t.UpdateFreq) != 0 {
		return
	}
	for _, k := range sortedKeys(logs) {
		t.note(t.train.Scalar("batch_"+k, logs[k], t.step))
	}
}

func (t *TensorBoard) OnEpochEnd(_ *Model, epoch int, logs Logs) error {
	if t == nil {
		return nilCallback("TensorBoard")
	}
	if t.train == nil {
		return nil
	}
	for _, k := range sortedKeys(logs) {
		if len(k) > 4 && k[:4] == "val_" {
			t.note(t.val.Scalar("epoch_"+k[4:], logs[k], int64(epoch)))
		} else {
			t.note(t.train.Scalar("epoch_"+k, logs[k], int64(epoch)))
		}
	}
	t.note(t.train.Flush())
	return nil
}

func (t *TensorBoard) OnTrainEnd(*Model) {
	for _, w := range []*EventWriter{t.train, t.val} {
		if w != nil {
			t.note(w.Close())
		}
	}
}
