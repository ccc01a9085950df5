// Package savedmodel reads and writes TensorFlow's checkpoint files in pure
// Go: the TensorBundle format of checkpoints and of a SavedModel's
// variables/ directory, and the "checkpoint" state file. It does not need
// the TensorFlow runtime (it does not import package cgo); the files it
// writes are the ones TensorFlow 2.21 writes, byte for byte for the same
// tensors written in the same order, and it reads what TensorFlow writes.
//
// # Bundles
//
// A bundle at a prefix (e.g. "train/ckpt-3") is
//
//	PREFIX.index                  a LevelDB sorted table: the empty key
//	                              holds a BundleHeaderProto (number of
//	                              shards, endianness, version), every other
//	                              key a tensor name and its BundleEntryProto
//	                              (dtype, shape, shard, offset, size, masked
//	                              crc32c, slices)
//	PREFIX.data-00000-of-0000N    the tensors' bytes: raw little-endian
//	                              elements; a string tensor as the varint64
//	                              length of every element, the masked crc32c
//	                              of those lengths, then the bytes
//
// Write one with WriteBundle (a map of tensors, N shards written in
// parallel) or, to hold no more than one tensor at a time, with a
// BundleWriter (Add in any order, Close sorts and writes the index). Both
// write temporary files and rename them into place only when everything is
// synced to disk, so a bundle already at the prefix stays readable while
// the new one is written, and a crash leaves it intact. Overwriting a
// bundle keeps the old one readable through the commit too: the new data
// shards are renamed in under names the old index does not reference (when
// the old bundle has as many shards as asked for, the new one gets one
// more, empty: its index says NumShards+1), and renaming the index is the
// one step that switches bundles, so the prefix holds the old complete
// bundle or the new complete one at every instant. The next writer of a
// prefix removes what a killed one left behind.
//
// Read one with OpenBundle: Names lists the tensors (as
// tf.train.list_variables does), Entry describes one, Read returns it as a
// Tensor after checking its crc32c, and ReadInto streams its bytes to an
// io.Writer. Errors are *Error values naming the file and the tensor;
// errors.Is finds ErrCorrupt, ErrNotFound, ErrUnsupported and ErrTooLarge
// through them. Nothing is allocated from a size read from a file before
// that size is checked against the file's, and the files read whole (the
// .index, saved_model.pb, fingerprint.pb, the checkpoint state) are
// refused over a bound (ReadOptions.MaxIndexBytes, MaxSavedModelBytes,
// MaxFingerprintBytes, MaxCheckpointStateBytes) before they are read.
//
// Object-based checkpoints (tf.train.Checkpoint) name their variables by
// their path in the object graph, e.g.
// "model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE", and store
// the serialized TrackableObjectGraph under ObjectGraphKey
// ("_CHECKPOINTABLE_OBJECT_GRAPH"); ObjectGraph returns its bytes.
//
// # Large checkpoints
//
// A BundleWriter with several shards takes concurrent Adds, one goroutine
// per shard, and holds no tensor data beyond the staging buffers; ReadInto
// streams a tensor into any io.Writer, such as a runtime tensor's buffer.
// WriteOptions.IO and ReadOptions.IO choose between O_DIRECT (DirectIO),
// the page cache (BufferedIO, as TensorFlow) and, by default (AutoIO, the
// zero value), writes that take each 16 MiB chunk the way measured faster
// (O_DIRECT throughout for a synced save) with reads through the page
// cache; IOMode says when each is faster.
//
// # Partitioned tensors
//
// tf.compat.v1 partitioned variables are saved as one entry per slice, under
// a key that encodes the name and the slice (SliceKey), plus an entry under
// the name that lists the slices. Read assembles such a tensor whole;
// BundleWriter.AddSlice and WriteOptions.Partitions write them the same
// way. (TensorFlow itself cannot assemble a partitioned string tensor;
// this package can.)
//
// # Checkpoint state
//
// ReadCheckpointState, WriteCheckpointState and LatestCheckpoint handle the
// text "checkpoint" file (a CheckpointState proto in text format) through
// which tf.train.latest_checkpoint finds the newest checkpoint.
//
// Not implemented: DT_VARIANT and DT_RESOURCE tensors, the 4-bit integer
// types, big-endian bundles (refused with ErrUnsupported), and data
// alignment padding on write (TensorFlow's default is none; readers
// ignore padding).
//
// SavedModel directories: ReadMetaGraph reads and checks one (saved_model.pb,
// variables, assets), Write writes one atomically, Publish adds a version to
// a TF Serving base directory without a server ever seeing half of it, and
// Fingerprint computes fingerprint.pb as TensorFlow does. Loading a
// SavedModel into the runtime, running its signatures and exporting a Go
// graph live in package savedmodel/runner (which needs libtensorflow).
package savedmodel
