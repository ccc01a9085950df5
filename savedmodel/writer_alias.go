package savedmodel

import (
	"errors"
	"fmt"

	fcpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// AddAlias adds name as a second key of the tensor already added under
// target: both index entries locate the same bytes, so readers find the
// tensor under either key (TensorFlow's BundleReader, RestoreV2 and
// tf.train.list_variables see two tensors) while its data is stored once.
// A checkpoint keyed both by variable name and by object path uses it.
// target must have been added by Add (and completed); a partitioned
// tensor cannot be aliased.
func (w *BundleWriter) AddAlias(name, target string) error {
	if err := w.made(); err != nil {
		return err
	}
	bad := func(err error) error {
		return &Error{Op: "write", File: IndexFilename(w.prefix), Tensor: name, Err: err}
	}
	if name == "" {
		return bad(errors.New("empty tensor name (the empty key holds the bundle header)"))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	e := w.entries[target]
	if e == nil {
		return bad(fmt.Errorf("alias of %q, which has not been added (or is partitioned, or still being written)", target))
	}
	_, dup := w.entries[name]
	if _, part := w.full[name]; dup || part {
		return bad(errors.New("added twice"))
	}
	w.entries[name] = proto.Clone(e).(*fcpb.BundleEntryProto)
	return nil
}
