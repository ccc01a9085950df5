package savedmodel

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"slices"
	"sync"

	"github.com/gotf/gotf/dtypes"

	fcpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// ObjectGraphKey is the bundle key under which object-based checkpoints
// (tf.train.Checkpoint) store their serialized TrackableObjectGraph, as a
// scalar DT_STRING tensor.
const ObjectGraphKey = "_CHECKPOINTABLE_OBJECT_GRAPH"

// Bundle format version that this package reads and writes
// (kTensorBundleVersion and kTensorBundleMinProducer in tensor_bundle.cc).
const (
	bundleVersion     = 1
	bundleMinProducer = 0
)

// IndexFilename returns the path of the .index file of the bundle prefix.
func IndexFilename(prefix string) string { return prefix + ".index" }

// DataFilename returns the path of data shard shard of a bundle of
// numShards shards: PREFIX.data-00000-of-00001 and so on.
func DataFilename(prefix string, shard, numShards int) string {
	return fmt.Sprintf("%s.data-%05d-of-%05d", prefix, shard, numShards)
}

// Entry describes one tensor of a bundle, as its index entry records it.
type Entry struct {
	// Name is the tensor's key in the bundle.
	Name string
	// DType and Shape are the tensor's element type and dimensions.
	DType DataType
	Shape []int64
	// ShardID, Offset and Size locate the tensor's bytes: Size bytes at
	// Offset in data shard ShardID. They are zero for a partitioned
	// tensor, whose bytes are in its slices' entries.
	ShardID int32
	Offset  int64
	Size    int64
	// CRC32C is the masked crc32c of the stored bytes, as stored.
	CRC32C uint32
	// Slices lists the slices of a partitioned tensor (each stored under
	// SliceKey(Name, slice)); it is nil for a tensor stored whole.
	Slices [][]Extent
}

// BundleReader reads a TensorBundle: a checkpoint or a SavedModel's
// variables. Open one with OpenBundle. Its methods may be called
// concurrently.
type BundleReader struct {
	prefix    string
	indexPath string
	header    *fcpb.BundleHeaderProto
	keys      []string // every key but the header's, sorted
	entries   map[string]*fcpb.BundleEntryProto
	names     []string // keys that are not slices of a partitioned tensor

	io IOMode // ReadOptions.IO

	mu     sync.Mutex
	shards map[int32]*shardFile
	closed bool
}

type shardFile struct {
	path   string
	f      *os.File
	direct *directFile // for DirectIO reads, or nil
	size   int64
}

// ReadOptions configures OpenBundleWith. The zero value (or nil) reads as
// OpenBundle does.
type ReadOptions struct {
	// IO selects how tensors of 1 MiB and more are read (see IOMode): by
	// default (AutoIO) through the page cache, with DirectIO what the page
	// cache holds of them through it and the rest around it. String
	// tensors are always read buffered.
	IO IOMode
	// MaxIndexBytes bounds the size of the .index file, which is read
	// whole: a larger one is an error wrapping ErrTooLarge. 0 means
	// DefaultMaxIndexBytes (1 GiB); negative, no bound.
	MaxIndexBytes int64
}

func (o ReadOptions) maxIndexBytes() int64 {
	if o.MaxIndexBytes == 0 {
		return DefaultMaxIndexBytes
	}
	return o.MaxIndexBytes
}

// OpenBundle opens the bundle at prefix (the path without ".index"), reads
// and checks its whole index, and returns a reader. Data shards are opened
// when a tensor in them is first read.
//
// It fails, with an *Error naming the index file, if the index is missing,
// is not a sorted table (wrong magic, truncated, a block checksum
// mismatch), has no BundleHeaderProto under the empty key, has an entry
// that is not a BundleEntryProto, or needs a newer reader.
func OpenBundle(prefix string) (*BundleReader, error) {
	return OpenBundleWithOptions(prefix, ReadOptions{})
}

// OpenBundleWithOptions is OpenBundle with options.
func OpenBundleWithOptions(prefix string, opts ReadOptions) (*BundleReader, error) {
	path := IndexFilename(prefix)
	if !opts.IO.valid() {
		return nil, &Error{Op: "open", File: path, Err: fmt.Errorf("unknown IOMode %d", int(opts.IO))}
	}
	data, err := readFileLimited(path, opts.maxIndexBytes())
	if err != nil {
		return nil, &Error{Op: "open", File: path, Err: err}
	}
	r, tensor, err := parseIndex(data)
	if err != nil {
		return nil, &Error{Op: "open", File: path, Tensor: tensor, Err: err}
	}
	r.prefix = prefix
	r.indexPath = path
	r.io = opts.IO
	return r, nil
}

// parseIndex decodes the contents of an .index file. On failure it returns
// the tensor whose entry was bad, if any.
func parseIndex(data []byte) (*BundleReader, string, error) {
	kvs, err := readTable(data)
	if err != nil {
		return nil, "", corruptf("%v", err)
	}
	if len(kvs) == 0 || len(kvs[0].key) != 0 {
		return nil, "", corruptf("no bundle header (the table has no entry with the empty key)")
	}
	header := &fcpb.BundleHeaderProto{}
	if err := proto.Unmarshal(kvs[0].value, header); err != nil {
		return nil, "", corruptf("bundle header is not a BundleHeaderProto: %v", err)
	}
	if header.GetNumShards() < 1 {
		return nil, "", corruptf("bundle header has %d shards", header.GetNumShards())
	}
	if header.GetEndianness() != fcpb.BundleHeaderProto_LITTLE {
		return nil, "", fmt.Errorf("%w: big-endian bundle", ErrUnsupported)
	}
	v := header.GetVersion()
	if v.GetProducer() < bundleMinProducer {
		return nil, "", fmt.Errorf("%w: bundle producer version %d is older than the oldest supported, %d", ErrUnsupported, v.GetProducer(), bundleMinProducer)
	}
	if v.GetMinConsumer() > bundleVersion {
		return nil, "", fmt.Errorf("%w: bundle needs a reader of version %d or newer, this one is %d", ErrUnsupported, v.GetMinConsumer(), bundleVersion)
	}
	if slices.Contains(v.GetBadConsumers(), bundleVersion) {
		return nil, "", fmt.Errorf("%w: bundle disallows readers of version %d", ErrUnsupported, bundleVersion)
	}
	r := &BundleReader{
		header:  header,
		entries: make(map[string]*fcpb.BundleEntryProto, len(kvs)-1),
		shards:  map[int32]*shardFile{},
	}
	for _, kv := range kvs[1:] {
		e := &fcpb.BundleEntryProto{}
		if err := proto.Unmarshal(kv.value, e); err != nil {
			return nil, string(kv.key), corruptf("index entry is not a BundleEntryProto: %v", err)
		}
		k := string(kv.key)
		r.keys = append(r.keys, k)
		r.entries[k] = e
	}
	parts := map[string]bool{}
	for _, k := range r.keys {
		for _, s := range r.entries[k].GetSlices() {
			parts[SliceKey(k, extentsFromProto(s))] = true
		}
	}
	for _, k := range r.keys {
		if !parts[k] {
			r.names = append(r.names, k)
		}
	}
	return r, "", nil
}

// Prefix returns the bundle's prefix.
func (r *BundleReader) Prefix() string { return r.prefix }

// Header returns a copy of the bundle's header (number of shards,
// endianness, format version).
func (r *BundleReader) Header() *fcpb.BundleHeaderProto {
	return proto.Clone(r.header).(*fcpb.BundleHeaderProto)
}

// Names returns the names of the bundle's tensors in sorted order: every
// key of the index but the header's and those of the slices of partitioned
// tensors (the names tf.train.list_variables lists). It includes
// ObjectGraphKey for an object-based checkpoint.
func (r *BundleReader) Names() []string { return slices.Clone(r.names) }

// Keys returns every key of the index but the header's, in sorted order,
// including the encoded keys of the slices of partitioned tensors (see
// ParseSliceKey).
func (r *BundleReader) Keys() []string { return slices.Clone(r.keys) }

// Has reports whether the bundle has a key name.
func (r *BundleReader) Has(name string) bool {
	_, ok := r.entries[name]
	return ok
}

// EntryProto returns a copy of the index entry stored under key.
func (r *BundleReader) EntryProto(key string) (*fcpb.BundleEntryProto, error) {
	e, err := r.entry(key)
	if err != nil {
		return nil, err
	}
	return proto.Clone(e).(*fcpb.BundleEntryProto), nil
}

// entry is the index entry stored under key: every lookup starts here, so
// that a nil or zero reader is an error rather than an empty bundle.
func (r *BundleReader) entry(key string) (*fcpb.BundleEntryProto, error) {
	if r == nil || r.entries == nil {
		return nil, errors.New("savedmodel: nil or zero BundleReader (open one with OpenBundle)")
	}
	e, ok := r.entries[key]
	if !ok {
		return nil, r.notFound(key)
	}
	return e, nil
}

func (r *BundleReader) notFound(name string) error {
	return &Error{Op: "read", File: r.indexPath, Tensor: name, Err: fmt.Errorf("%w in bundle %s", ErrNotFound, r.prefix)}
}

// Entry returns the description of the tensor stored under name. It fails
// if there is none or if its shape is invalid.
func (r *BundleReader) Entry(name string) (*Entry, error) {
	e, err := r.entry(name)
	if err != nil {
		return nil, err
	}
	shape, err := entryShape(e)
	if err != nil {
		return nil, &Error{Op: "read", File: r.indexPath, Tensor: name, Err: err}
	}
	out := &Entry{
		Name: name, DType: dtypes.FromProto(e.GetDtype()), Shape: shape,
		ShardID: e.GetShardId(), Offset: e.GetOffset(), Size: e.GetSize(), CRC32C: e.GetCrc32C(),
	}
	for _, s := range e.GetSlices() {
		out.Slices = append(out.Slices, extentsFromProto(s))
	}
	return out, nil
}

// entryShape returns the shape of an entry after checking it is a valid,
// fully known shape.
func entryShape(e *fcpb.BundleEntryProto) ([]int64, error) {
	sp := e.GetShape()
	if sp.GetUnknownRank() {
		return nil, corruptf("entry has a shape of unknown rank")
	}
	shape := make([]int64, len(sp.GetDim()))
	for i, d := range sp.GetDim() {
		shape[i] = d.GetSize()
	}
	if _, err := dtypes.NumElements(shape); err != nil {
		return nil, corruptf("%v", err)
	}
	return shape, nil
}

// Read reads the tensor stored under name, checking the crc32c of its
// bytes. A partitioned tensor is assembled from its slices. The key of one
// slice (see SliceKey) reads that slice alone.
func (r *BundleReader) Read(name string) (*Tensor, error) {
	e, err := r.entry(name)
	if err != nil {
		return nil, err
	}
	if len(e.GetSlices()) > 0 {
		return r.readSliced(name, e)
	}
	return r.readEntry(name, e)
}

// ReadInto streams the bytes of the tensor stored under name to w, in the
// layout of Tensor.Data, without holding the whole tensor in memory (for a
// tensor stored whole; a partitioned one is assembled in memory first). The
// crc32c is checked when the last byte has been read: on a mismatch the
// bytes have already been written to w and ReadInto returns an error
// wrapping ErrCorrupt. String tensors have no such layout; use Read.
func (r *BundleReader) ReadInto(name string, w io.Writer) error {
	e, err := r.entry(name)
	if err != nil {
		return err
	}
	if dtypes.FromProto(e.GetDtype()) == dtypes.String {
		return &Error{Op: "read", File: r.indexPath, Tensor: name, Err: fmt.Errorf("%w: ReadInto of a string tensor (use Read)", ErrUnsupported)}
	}
	if len(e.GetSlices()) > 0 {
		t, err := r.readSliced(name, e)
		if err != nil {
			return err
		}
		if _, err := w.Write(t.Data); err != nil {
			return &Error{Op: "read", File: r.indexPath, Tensor: name, Err: err}
		}
		return nil
	}
	_, sh, size, err := r.locate(name, e)
	if err != nil {
		return err
	}
	if size == 0 {
		return r.checkCRC(name, sh.path, e, crc32.Checksum(nil, castagnoli))
	}
	h := crc32.New(castagnoli)
	if r.useDirect(sh, size) {
		err = readDirect(sh, e.GetOffset(), size, func(b []byte) error {
			h.Write(b)
			_, err := w.Write(b)
			return err
		})
	} else {
		sec := io.NewSectionReader(sh.f, e.GetOffset(), size)
		_, err = io.CopyBuffer(io.MultiWriter(h, w), sec, make([]byte, min(size, 1<<20)))
	}
	if err != nil {
		return &Error{Op: "read", File: sh.path, Tensor: name, Err: err}
	}
	return r.checkCRC(name, sh.path, e, h.Sum32())
}

// ObjectGraph returns the serialized TrackableObjectGraph proto of an
// object-based checkpoint (the bytes stored under ObjectGraphKey); decode
// it with for_core_protos_go_proto.TrackableObjectGraph.
func (r *BundleReader) ObjectGraph() ([]byte, error) {
	t, err := r.Read(ObjectGraphKey)
	if err != nil {
		return nil, err
	}
	if t.DType != dtypes.String || len(t.Strings) != 1 {
		return nil, &Error{Op: "read", File: r.indexPath, Tensor: ObjectGraphKey, Err: corruptf("object graph is a %v tensor of shape %v, not a string scalar", t.DType, t.Shape)}
	}
	return t.Strings[0], nil
}

// Close closes the data shards opened so far. Reads of tensor data fail
// afterwards; closing again does nothing.
func (r *BundleReader) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	var first error
	for _, s := range r.shards {
		if err := s.f.Close(); err != nil && first == nil {
			first = err
		}
		if s.direct != nil {
			s.direct.Close()
		}
	}
	r.shards = nil
	return first
}

// shard returns data shard id, opening it on first use.
func (r *BundleReader) shard(id int32) (*shardFile, error) {
	n := r.header.GetNumShards()
	if id < 0 || id >= n {
		return nil, corruptf("shard id %d is outside [0, %d)", id, n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("bundle reader is closed")
	}
	if s := r.shards[id]; s != nil {
		return s, nil
	}
	path := DataFilename(r.prefix, int(id), int(n))
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &shardFile{path: path, f: f, size: fi.Size()}
	if r.io == DirectIO {
		s.direct = openDirectRead(path, s.size)
	}
	r.shards[id] = s
	return s, nil
}

// locate validates an unsliced entry against its data shard and returns
// its element count, shard and size. Errors are *Error naming the file.
func (r *BundleReader) locate(name string, e *fcpb.BundleEntryProto) (int64, *shardFile, int64, error) {
	fail := func(file string, err error) (int64, *shardFile, int64, error) {
		return 0, nil, 0, &Error{Op: "read", File: file, Tensor: name, Err: err}
	}
	shape, err := entryShape(e)
	if err != nil {
		return fail(r.indexPath, err)
	}
	n, _ := dtypes.NumElements(shape)
	if !supported(dtypes.FromProto(e.GetDtype())) {
		return fail(r.indexPath, fmt.Errorf("%w: dtype %v", ErrUnsupported, dtypes.FromProto(e.GetDtype())))
	}
	sh, err := r.shard(e.GetShardId())
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return fail(r.indexPath, err)
		}
		return fail(DataFilename(r.prefix, int(e.GetShardId()), int(r.header.GetNumShards())), err)
	}
	off, size := e.GetOffset(), e.GetSize()
	if off < 0 || size < 0 || off > sh.size || size > sh.size-off {
		return fail(sh.path, corruptf("entry's %d bytes at offset %d are outside the %d-byte data file", size, off, sh.size))
	}
	if es := dtypes.FromProto(e.GetDtype()).Size(); es > 0 {
		if n > math.MaxInt64/int64(es) || n*int64(es) != size {
			return fail(sh.path, corruptf("entry has %d bytes, a %v tensor of shape %v has %d", size, dtypes.FromProto(e.GetDtype()), shape, n*int64(es)))
		}
	} else if n > size {
		// Every string takes at least its one-byte length.
		return fail(sh.path, corruptf("entry has %d bytes, too few for %d strings", size, n))
	}
	return n, sh, size, nil
}

func (r *BundleReader) checkCRC(name, path string, e *fcpb.BundleEntryProto, got uint32) error {
	if want := unmaskCRC(e.GetCrc32C()); got != want {
		return &Error{Op: "read", File: path, Tensor: name, Err: corruptf("crc32c mismatch: the index records %#08x, the %d bytes at offset %d have %#08x", want, e.GetSize(), e.GetOffset(), got)}
	}
	return nil
}

// readEntry reads an entry stored whole.
func (r *BundleReader) readEntry(name string, e *fcpb.BundleEntryProto) (*Tensor, error) {
	n, sh, size, err := r.locate(name, e)
	if err != nil {
		return nil, err
	}
	shape, _ := entryShape(e)
	t := &Tensor{DType: dtypes.FromProto(e.GetDtype()), Shape: shape}
	if t.DType != dtypes.String {
		t.Data = make([]byte, size)
		if r.useDirect(sh, size) {
			rest := t.Data
			err = readDirect(sh, e.GetOffset(), size, func(b []byte) error {
				rest = rest[copy(rest, b):]
				return nil
			})
		} else {
			_, err = sh.f.ReadAt(t.Data, e.GetOffset())
		}
		if err != nil {
			return nil, &Error{Op: "read", File: sh.path, Tensor: name, Err: err}
		}
		if err := r.checkCRC(name, sh.path, e, crc32.Checksum(t.Data, castagnoli)); err != nil {
			return nil, err
		}
		return t, nil
	}
	strs, crc, err := readStrings(io.NewSectionReader(sh.f, e.GetOffset(), size), n, size)
	if err != nil {
		return nil, &Error{Op: "read", File: sh.path, Tensor: name, Err: err}
	}
	if err := r.checkCRC(name, sh.path, e, crc); err != nil {
		return nil, err
	}
	t.Strings = strs
	return t, nil
}

// readStrings decodes n strings stored in size bytes: the varint64 length
// of every element, the masked crc32c of those lengths (each as a
// little-endian uint32, or uint64 if it does not fit), then the bytes of
// every element. It returns the strings and the crc32c of the lengths, the
// stored length checksum and the bytes, which the entry's crc32c covers.
func readStrings(src io.Reader, n, size int64) ([][]byte, uint32, error) {
	br := bufio.NewReaderSize(src, int(min(max(size, 16), 64<<10)))
	lengths := make([]uint64, n)
	var crc uint32
	var scratch [8]byte
	used := int64(0)
	total := uint64(0)
	for i := range lengths {
		l, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, 0, corruptf("length of string %d: %v", i, noEOF(err))
		}
		lengths[i] = l
		used += int64(uvarintLen(l))
		if l <= math.MaxUint32 {
			binary.LittleEndian.PutUint32(scratch[:4], uint32(l))
			crc = crc32.Update(crc, castagnoli, scratch[:4])
		} else {
			binary.LittleEndian.PutUint64(scratch[:], l)
			crc = crc32.Update(crc, castagnoli, scratch[:])
		}
		total += l
		if l > uint64(size) || total > uint64(size) {
			return nil, 0, corruptf("string lengths add up to more than the entry's %d bytes", size)
		}
	}
	if n == 0 && size == 0 {
		return [][]byte{}, 0, nil
	}
	if _, err := io.ReadFull(br, scratch[:4]); err != nil {
		return nil, 0, corruptf("length checksum: %v", noEOF(err))
	}
	used += 4
	if stored := unmaskCRC(binary.LittleEndian.Uint32(scratch[:4])); stored != crc {
		return nil, 0, corruptf("string lengths checksum mismatch: stored %#08x, computed %#08x", stored, crc)
	}
	crc = crc32.Update(crc, castagnoli, scratch[:4])
	if used+int64(total) != size {
		return nil, 0, corruptf("entry has %d bytes, its strings take %d", size, used+int64(total))
	}
	out := make([][]byte, n)
	for i, l := range lengths {
		out[i] = make([]byte, l)
		if _, err := io.ReadFull(br, out[i]); err != nil {
			return nil, 0, corruptf("string %d: %v", i, noEOF(err))
		}
		crc = crc32.Update(crc, castagnoli, out[i])
	}
	return out, crc, nil
}

// noEOF turns the EOF of a short read into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// readSliced assembles a partitioned tensor from its slices.
func (r *BundleReader) readSliced(name string, full *fcpb.BundleEntryProto) (*Tensor, error) {
	fail := func(file, tensor string, err error) (*Tensor, error) {
		return nil, &Error{Op: "read", File: file, Tensor: tensor, Err: err}
	}
	shape, err := entryShape(full)
	if err != nil {
		return fail(r.indexPath, name, err)
	}
	dt := dtypes.FromProto(full.GetDtype())
	if !supported(dt) {
		return fail(r.indexPath, name, fmt.Errorf("%w: dtype %v", ErrUnsupported, dt))
	}
	n, _ := dtypes.NumElements(shape)

	// Check every slice before allocating anything: the slices must not
	// overlap and must cover the tensor, and their bytes must lie in their
	// data files, which bounds what the full tensor can take.
	type part struct {
		label  string
		ext    []Extent
		starts []int64
		shape  []int64
		entry  *fcpb.BundleEntryProto
	}
	var parts []part
	covered := int64(0)
	var stored int64
	files := map[int32]int64{}
	for _, sp := range full.GetSlices() {
		ext := extentsFromProto(sp)
		label := name + "[" + sliceString(ext) + "]"
		sshape, err := checkSlice(shape, ext)
		if err != nil {
			return fail(r.indexPath, name, corruptf("%v", err))
		}
		key := SliceKey(name, ext)
		e, ok := r.entries[key]
		if !ok {
			return fail(r.indexPath, label, corruptf("the entry of this slice is missing"))
		}
		if len(e.GetSlices()) > 0 {
			return fail(r.indexPath, label, corruptf("a slice is itself partitioned"))
		}
		if dtypes.FromProto(e.GetDtype()) != dt {
			return fail(r.indexPath, label, corruptf("slice is %v, the partitioned tensor %v", dtypes.FromProto(e.GetDtype()), dt))
		}
		eshape, err := entryShape(e)
		if err != nil {
			return fail(r.indexPath, label, err)
		}
		if !slices.Equal(eshape, sshape) {
			return fail(r.indexPath, label, corruptf("slice entry has shape %v, the slice is %v", eshape, sshape))
		}
		if _, sh, _, err := r.locate(label, e); err != nil {
			return nil, err
		} else {
			files[e.GetShardId()] = sh.size
		}
		m, _ := dtypes.NumElements(sshape)
		covered += m
		stored += e.GetSize()
		starts := make([]int64, len(ext))
		for i, x := range ext {
			starts[i] = x.Start
		}
		parts = append(parts, part{label, ext, starts, sshape, e})
	}
	if covered != n {
		return fail(r.indexPath, name, corruptf("slices cover %d of the tensor's %d elements", covered, n))
	}
	var onDisk int64
	for _, s := range files {
		onDisk += s
	}
	if stored > onDisk {
		return fail(r.indexPath, name, corruptf("slices claim %d bytes, their data files hold %d", stored, onDisk))
	}

	a := newAssembler(shape)
	if len(parts) <= 64 {
		for i := range parts {
			for j := range i {
				if overlaps(shape, parts[j].ext, parts[i].ext) {
					return fail(r.indexPath, name, corruptf("slices %s and %s overlap", sliceString(parts[j].ext), sliceString(parts[i].ext)))
				}
			}
		}
	} else {
		// Many slices: mark the elements each one covers (n bits, and n is
		// bounded by the bytes on disk, checked above).
		seen := make([]uint64, (n+63)/64)
		for _, p := range parts {
			dup := false
			a.runs(p.starts, p.shape, func(dst, _, cnt int64) {
				for k := dst; k < dst+cnt; k++ {
					if seen[k/64]&(1<<(k%64)) != 0 {
						dup = true
					}
					seen[k/64] |= 1 << (k % 64)
				}
			})
			if dup {
				return fail(r.indexPath, name, corruptf("slice %s overlaps another", sliceString(p.ext)))
			}
		}
	}

	t := &Tensor{DType: dt, Shape: shape}
	es := dt.Size()
	if dt == dtypes.String {
		t.Strings = make([][]byte, n)
	} else {
		t.Data = make([]byte, n*int64(es))
	}
	for _, p := range parts {
		st, err := r.readEntry(p.label, p.entry)
		if err != nil {
			return nil, err
		}
		a.runs(p.starts, p.shape, func(dst, src, cnt int64) {
			if dt == dtypes.String {
				copy(t.Strings[dst:dst+cnt], st.Strings[src:src+cnt])
			} else {
				b := int64(es)
				copy(t.Data[dst*b:(dst+cnt)*b], st.Data[src*b:(src+cnt)*b])
			}
		})
	}
	return t, nil
}
