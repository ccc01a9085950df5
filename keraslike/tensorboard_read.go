package keraslike

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gotf/gotf/savedmodel"
	epb "github.com/wamuir/graft/tensorflow/core/util/event_go_proto"
	"google.golang.org/protobuf/proto"
)

// MaxEventBytes bounds one event read from an event file: TensorBoard's
// largest events are serialized graphs, which protobuf caps at 2 GiB, but
// a reader of scalars has no use for more than this.
const MaxEventBytes = 256 << 20

// ReadEvents calls fn for each event of a TensorBoard event file (ours,
// or one written by tf.summary or Keras' TensorBoard callback), in order,
// as tf.compat.v1.train.summary_iterator does. It stops at fn's first
// error and returns it. A file that ends inside a record (a writer still
// appending) ends the events without an error, as TensorBoard reads it; a
// bad checksum or an event that is not an Event proto is an error naming
// the file and the record's offset.
func ReadEvents(path string, fn func(*epb.Event) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading events: %w", err)
	}
	defer f.Close()
	rr := savedmodel.NewRecordReader(bufio.NewReader(f), savedmodel.RecordReaderOptions{Name: path, MaxRecordBytes: MaxEventBytes})
	for i := 0; ; i++ {
		rec, err := rr.Next()
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
		e := &epb.Event{}
		if err := proto.Unmarshal(rec, e); err != nil {
			return fmt.Errorf("%s: event %d is not an Event proto: %w", path, i, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}
