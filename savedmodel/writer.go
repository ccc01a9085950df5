package savedmodel

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/internal/atomicfile"

	"github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	"github.com/wamuir/graft/tensorflow/core/framework/versions_go_proto"
	fcpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// WriteOptions configures BundleWriter and WriteBundle. The zero value (or
// a nil *WriteOptions) writes what TensorFlow's own BundleWriter writes: one
// data shard and an uncompressed index.
type WriteOptions struct {
	// NumShards is the number of .data shards (at least 1; 0 means 1).
	// WriteBundle writes them in parallel; a BundleWriter adds each tensor
	// to the shard with the fewest bytes so far.
	NumShards int
	// Compression selects how the index blocks are stored.
	Compression Compression
	// IndexBlockSize is the approximate size of an index data block, 0
	// for TensorFlow's 256 KiB.
	IndexBlockSize int
	// Partitions lists tensors that WriteBundle stores partitioned, as
	// tf.compat.v1 partitioned variables are saved: one entry per slice
	// and a full entry listing the slices. BundleWriter ignores it (use
	// AddSlice).
	Partitions map[string]Partition
	// NoSync skips the fsyncs before the renames. The new bundle still
	// replaces the old one only once completely written, so a crash of the
	// process leaves a readable checkpoint, but a power loss may not;
	// TensorFlow's own writer does not sync either.
	NoSync bool
	// IO selects how the data shards are written (see IOMode): by
	// default (AutoIO) in 16 MiB chunks, each through the page cache or
	// around it, whichever is measured faster, and all around it when the
	// save is synced; around the page cache with two 16 MiB staging
	// buffers per shard (DirectIO); or through it as TensorFlow does
	// (BufferedIO).
	IO IOMode
}

// Partition describes how WriteBundle splits a tensor: into Parts slices
// along dimension Axis, the first dim%Parts of them one element longer,
// as tf.compat.v1.fixed_size_partitioner does.
type Partition struct {
	Axis  int
	Parts int
}

func (o WriteOptions) numShards() int {
	if o.NumShards <= 0 {
		return 1
	}
	return o.NumShards
}

// BundleWriter writes a TensorBundle in a streaming fashion: each Add
// writes the tensor's bytes to its data shard at once, so the writer holds
// no tensor data beyond the one being added, only the index entries. Close
// sorts the entries, writes the index and commits the bundle.
//
// Everything is written to temporary files next to the prefix
// (NAME.tempstate*) that Close renames into place, data shards first and
// the index last, after syncing them to disk: until then an existing
// bundle at the same prefix stays intact and readable, and a crash leaves
// at worst stray temporary files, which the next writer of the prefix
// removes.
//
// Overwriting a bundle keeps the old one readable until the new one's
// index is renamed over it, the one atomic step of the commit: data files
// are named after the prefix and the shard count only, so new data
// renamed over the names the old index references would make a kill
// between those renames and the index's leave the old index over new
// data. When the prefix already holds a bundle of opts.NumShards shards,
// the writer therefore writes one more, empty, shard (the index then
// says NumShards+1; the next overwrite goes back to NumShards), so that
// its data files never take the old index's names. Once the new index is
// in place, the prefix's data files of other shard counts (the old
// bundle's, a killed save's) are removed.
//
// Add and AddSlice may be called concurrently.
type BundleWriter struct {
	prefix string
	opts   WriteOptions
	// shards holds opts.NumShards shards that Add fills, and one more,
	// left empty, when the prefix held a bundle of opts.NumShards shards.
	shards []*shardWriter

	mu      sync.Mutex
	entries map[string]*fcpb.BundleEntryProto // nil while being written
	full    map[string]*fcpb.BundleEntryProto // partitioned tensors
	err     error
	done    bool
}

type shardWriter struct {
	mu       sync.Mutex
	tmp      string
	lock     *os.File // lockTemp's, while tmp exists
	final    string
	f        *os.File
	bw       *chunkWriter
	size     int64
	reserved int64 // bytes assigned to this shard, for balancing
}

// NewBundleWriter creates the directory of prefix if needed and starts a
// bundle there. Call Close to commit it, or Abort to drop it.
func NewBundleWriter(prefix string, opts WriteOptions) (*BundleWriter, error) {
	w := &BundleWriter{
		prefix:  prefix,
		entries: map[string]*fcpb.BundleEntryProto{},
		full:    map[string]*fcpb.BundleEntryProto{},
	}
	w.opts = opts
	n := opts.numShards()
	w.opts.NumShards = n
	if w.opts.Compression != NoCompression && w.opts.Compression != SnappyCompression {
		return nil, &Error{Op: "write", File: IndexFilename(prefix), Err: fmt.Errorf("unknown compression %d", w.opts.Compression)}
	}
	if !w.opts.IO.valid() {
		return nil, &Error{Op: "write", File: IndexFilename(prefix), Err: fmt.Errorf("unknown IOMode %d", int(w.opts.IO))}
	}
	dir := filepath.Dir(prefix)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &Error{Op: "write", File: dir, Err: err}
	}
	base := filepath.Base(prefix)
	removeStaleBundleTemps(dir, func(b string) bool { return b == base })
	total := n
	if currentShards(prefix) == n {
		total = n + 1 // see BundleWriter: names the old index does not use
	}
	for i := range total {
		final := DataFilename(prefix, i, total)
		f, err := os.CreateTemp(dir, filepath.Base(final)+".tempstate*")
		if err != nil {
			w.abort()
			return nil, &Error{Op: "write", File: final, Err: err}
		}
		f.Chmod(0o644) // CreateTemp makes 0600; TensorFlow's files are 0644 (less umask)
		w.shards = append(w.shards, &shardWriter{tmp: f.Name(), lock: lockTemp(f.Name()), final: final, f: f, bw: newShardWriter(f, w.opts.IO, !w.opts.NoSync)})
	}
	return w, nil
}

// Add writes the tensor t under name. Names must be unique and non-empty
// (the empty key holds the bundle header); any order is fine.
func (w *BundleWriter) Add(name string, t *Tensor) error {
	if err := w.made(); err != nil {
		return err
	}
	return w.add(name, -1, t)
}

// AddSlice writes part, the slice of the partitioned tensor name (of shape
// fullShape) given by slice, as TensorFlow's BundleWriter::AddSlice does:
// the part is stored under SliceKey(name, slice) and the slice is recorded
// in the entry of name. A slice that covers the whole tensor is stored as
// a plain entry. Together the slices must cover the tensor without
// overlapping for the bundle to be readable.
func (w *BundleWriter) AddSlice(name string, fullShape []int64, slice []Extent, part *Tensor) error {
	if err := w.made(); err != nil {
		return err
	}
	return w.addSlice(name, fullShape, slice, part, -1)
}

func (w *BundleWriter) addSlice(name string, fullShape []int64, slice []Extent, part *Tensor, shard int) error {
	bad := func(err error) error {
		return &Error{Op: "write", File: IndexFilename(w.prefix), Tensor: name, Err: err}
	}
	if name == "" {
		return bad(errors.New("empty tensor name (the empty key holds the bundle header)"))
	}
	if _, err := dtypes.NumElements(fullShape); err != nil {
		return bad(err)
	}
	sshape, err := checkSlice(fullShape, slice)
	if err != nil {
		return bad(err)
	}
	if err := part.Validate(); err != nil {
		return bad(err)
	}
	if !slices.Equal(part.Shape, sshape) && !(len(part.Shape) == 0 && len(sshape) == 0) {
		return bad(fmt.Errorf("slice %s of shape %v has a part of shape %v", sliceString(slice), sshape, part.Shape))
	}
	if isFullSlice(fullShape, slice) {
		return w.add(name, shard, part)
	}
	w.mu.Lock()
	if err := w.usable(); err != nil {
		w.mu.Unlock()
		return err
	}
	if _, ok := w.entries[name]; ok {
		w.mu.Unlock()
		return bad(errors.New("added twice: already stored whole"))
	}
	fe := w.full[name]
	if fe == nil {
		fe = &fcpb.BundleEntryProto{Dtype: part.DType.Proto(), Shape: shapeProto(fullShape)}
		w.full[name] = fe
	} else if dtypes.FromProto(fe.GetDtype()) != part.DType || !slices.Equal(shapeOf(fe), fullShape) {
		w.mu.Unlock()
		return bad(fmt.Errorf("slice of a %v tensor of shape %v, earlier slices were %v of shape %v", part.DType, fullShape, dtypes.FromProto(fe.GetDtype()), shapeOf(fe)))
	}
	fe.Slices = append(fe.Slices, extentsToProto(slice))
	w.mu.Unlock()
	return w.add(SliceKey(name, slice), shard, part)
}

// made is the first check of the writer's methods: a nil or zero writer
// has no prefix, no shards and no index to commit.
func (w *BundleWriter) made() error {
	if w == nil || w.entries == nil {
		return errors.New("savedmodel: nil or zero BundleWriter (make one with NewBundleWriter)")
	}
	return nil
}

// usable returns the reason the writer can take no more tensors, if any.
// w.mu must be held.
func (w *BundleWriter) usable() error {
	if w.done {
		return &Error{Op: "write", File: IndexFilename(w.prefix), Err: errors.New("bundle writer is closed")}
	}
	return w.err
}

// add writes t under key to shard (or to the least filled shard if shard
// is negative).
func (w *BundleWriter) add(key string, shard int, t *Tensor) error {
	bad := func(err error) error {
		return &Error{Op: "write", File: IndexFilename(w.prefix), Tensor: key, Err: err}
	}
	if key == "" {
		return bad(errors.New("empty tensor name (the empty key holds the bundle header)"))
	}
	if _, err := t.check(); err != nil {
		return bad(err)
	}
	w.mu.Lock()
	if err := w.usable(); err != nil {
		w.mu.Unlock()
		return err
	}
	_, dup := w.entries[key]
	if _, part := w.full[key]; dup || part {
		w.mu.Unlock()
		return bad(errors.New("added twice"))
	}
	w.entries[key] = nil // reserved
	if shard < 0 {
		shard = 0
		for i, s := range w.shards[:w.opts.NumShards] {
			if s.reserved < w.shards[shard].reserved {
				shard = i
			}
		}
	}
	sw := w.shards[shard]
	sw.reserved += approxSize(t)
	w.mu.Unlock()

	sw.mu.Lock()
	e, err := sw.write(t)
	sw.mu.Unlock()
	if err == nil {
		e.ShardId = int32(shard)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		err = &Error{Op: "write", File: sw.tmp, Tensor: key, Err: err}
		if w.err == nil {
			w.err = err
		}
		delete(w.entries, key)
		return err
	}
	w.entries[key] = e
	return nil
}

func approxSize(t *Tensor) int64 {
	n := int64(len(t.Data))
	for _, s := range t.Strings {
		n += int64(len(s)) + 1
	}
	return n
}

func shapeProto(shape []int64) *tensor_shape_go_proto.TensorShapeProto {
	p := &tensor_shape_go_proto.TensorShapeProto{}
	for _, d := range shape {
		p.Dim = append(p.Dim, &tensor_shape_go_proto.TensorShapeProto_Dim{Size: d})
	}
	return p
}

func shapeOf(e *fcpb.BundleEntryProto) []int64 {
	s := make([]int64, len(e.GetShape().GetDim()))
	for i, d := range e.GetShape().GetDim() {
		s[i] = d.GetSize()
	}
	return s
}

// crcPiece is the size of the pieces a tensor is checksummed and copied
// in: a quarter of the smallest L2 cache of current x86 and Arm servers.
const crcPiece = 256 << 10

// write appends t to the shard and returns its entry (without shard id).
func (s *shardWriter) write(t *Tensor) (*fcpb.BundleEntryProto, error) {
	e := &fcpb.BundleEntryProto{Dtype: t.DType.Proto(), Shape: shapeProto(t.Shape), Offset: s.size}
	var crc uint32
	put := func(b []byte) error {
		// In pieces that stay in the CPU cache between the checksum's
		// read and the copy's: one pass over memory instead of two.
		for len(b) > 0 {
			piece := b[:min(len(b), crcPiece)]
			crc = crc32.Update(crc, castagnoli, piece)
			_, err := s.bw.Write(piece)
			s.size += int64(len(piece))
			if err != nil {
				return err
			}
			b = b[len(piece):]
		}
		return nil
	}
	if t.DType != dtypes.String {
		if err := put(t.Data); err != nil {
			return nil, err
		}
	} else {
		// The varint64 lengths, the masked crc32c of the lengths (each as
		// a little-endian uint32, or uint64 if it does not fit), then the
		// bytes; the entry's crc32c covers the lengths as checksummed, the
		// length checksum and the bytes.
		lengths := make([]byte, 0, len(t.Strings))
		var scratch [8]byte
		for _, str := range t.Strings {
			l := uint64(len(str))
			lengths = binary.AppendUvarint(lengths, l)
			if l <= math.MaxUint32 {
				binary.LittleEndian.PutUint32(scratch[:4], uint32(l))
				crc = crc32.Update(crc, castagnoli, scratch[:4])
			} else {
				binary.LittleEndian.PutUint64(scratch[:], l)
				crc = crc32.Update(crc, castagnoli, scratch[:])
			}
		}
		if _, err := s.bw.Write(lengths); err != nil {
			return nil, err
		}
		s.size += int64(len(lengths))
		binary.LittleEndian.PutUint32(scratch[:4], maskCRC(crc))
		if err := put(scratch[:4]); err != nil {
			return nil, err
		}
		for _, str := range t.Strings {
			if err := put(str); err != nil {
				return nil, err
			}
		}
	}
	if err := s.bw.settle(); err != nil {
		return nil, err
	}
	e.Size = s.size - e.Offset
	e.Crc32C = maskCRC(crc)
	return e, nil
}

// Close writes the index and commits the bundle (see BundleWriter). After
// a failed Add, Close drops the bundle and returns that failure. A second
// Close, or one after Abort, is an error: the bundle was committed or
// dropped already.
func (w *BundleWriter) Close() error {
	if err := w.made(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return &Error{Op: "commit", File: IndexFilename(w.prefix), Err: errors.New("bundle writer is closed")}
	}
	w.done = true
	if w.err != nil {
		w.abort()
		return w.err
	}
	if err := w.commit(); err != nil {
		w.abort()
		return err
	}
	return nil
}

// Abort drops the bundle: it removes the temporary files and leaves any
// bundle already at the prefix as it was.
func (w *BundleWriter) Abort() {
	if w.made() != nil {
		return // nothing started
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	w.abort()
}

func (w *BundleWriter) abort() {
	for _, s := range w.shards {
		if s.f != nil {
			s.f.Close()
			s.bw.Close()
			s.f = nil
		}
		if s.tmp != "" {
			os.Remove(s.tmp)
			s.tmp = ""
		}
		unlockTemp(s.lock)
		s.lock = nil
	}
}

func (w *BundleWriter) commit() error {
	for _, s := range w.shards {
		err := s.bw.Flush()
		if err == nil && !w.opts.NoSync {
			err = s.f.Sync()
		}
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
		s.bw.Close()
		s.f = nil
		if err != nil {
			return &Error{Op: "commit", File: s.tmp, Err: err}
		}
	}
	index := IndexFilename(w.prefix)
	tmp, lock, err := w.writeIndex(index)
	if err != nil {
		return err
	}
	defer unlockTemp(lock)
	// The data files go in under names the current index does not
	// reference (NewBundleWriter chose the shard count so), unless
	// another writer replaced the bundle since: then renaming them would
	// break that writer's bundle.
	if currentShards(w.prefix) == len(w.shards) {
		os.Remove(tmp)
		return &Error{Op: "commit", File: index, Err: fmt.Errorf("another writer committed a bundle of %d shards at the prefix meanwhile", len(w.shards))}
	}
	for _, s := range w.shards {
		if err := os.Rename(s.tmp, s.final); err != nil {
			os.Remove(tmp)
			return &Error{Op: "commit", File: s.final, Err: err}
		}
		s.tmp = ""
		unlockTemp(s.lock)
		s.lock = nil
	}
	// The data files' entries must be durable before the index naming
	// them.
	if !w.opts.NoSync {
		syncDir(filepath.Dir(w.prefix))
	}
	if err := os.Rename(tmp, index); err != nil {
		os.Remove(tmp)
		return &Error{Op: "commit", File: index, Err: err}
	}
	syncDir(filepath.Dir(w.prefix))
	removeOtherShards(w.prefix, len(w.shards))
	return nil
}

// bundleShards is the shard count of the bundle at prefix, 0 when there
// is none or its index does not read (then no data file is in use).
func bundleShards(prefix string) int {
	r, err := OpenBundle(prefix)
	if err != nil {
		return 0
	}
	defer r.Close()
	return int(r.Header().GetNumShards())
}

// currentShards is the shard count in the header of the bundle at
// prefix, 0 when there is none or its header does not read. It reads the
// index's first data block only, not the whole index: the writers call it
// on every save, on the bundle they are about to replace.
func currentShards(prefix string) int {
	path := IndexFilename(prefix)
	// Stat before opening, as readFileLimited does: a FIFO would block.
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	e, err := readFirstEntry(f, fi.Size())
	if err != nil || len(e.key) != 0 {
		return 0
	}
	h := &fcpb.BundleHeaderProto{}
	if proto.Unmarshal(e.value, h) != nil || h.GetNumShards() < 1 {
		return 0
	}
	return int(h.GetNumShards())
}

// removeOtherShards removes the data files of prefix that a bundle of n
// shards does not use: the previous bundle's, and those a killed save
// renamed into place before its index. Best effort: a file left now is
// removed by the next save.
func removeOtherShards(prefix string, n int) {
	dir, base := filepath.Split(prefix)
	if dir == "" {
		dir = "."
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if of, ok := dataShardCount(e.Name(), base); ok && of != n && !e.IsDir() {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// dataShardCount parses a data file name of the bundle base,
// "<base>.data-SSSSS-of-NNNNN", returning NNNNN.
func dataShardCount(name, base string) (int, bool) {
	rest, ok := strings.CutPrefix(name, base+".data-")
	if !ok {
		return 0, false
	}
	shard, of, ok := strings.Cut(rest, "-of-")
	if !ok || len(shard) < 5 || len(of) < 5 || !allDigits(shard) || !allDigits(of) {
		return 0, false
	}
	n, err := strconv.Atoi(of)
	if err != nil {
		return 0, false
	}
	return n, true
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// writeIndex writes the sorted index to a temporary file and returns its
// name and the lock that marks it as this writer's.
func (w *BundleWriter) writeIndex(index string) (string, *os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(index), filepath.Base(index)+".tempstate*")
	if err != nil {
		return "", nil, &Error{Op: "commit", File: index, Err: err}
	}
	lock := lockTemp(f.Name())
	f.Chmod(0o644)
	fail := func(err error) (string, *os.File, error) {
		f.Close()
		os.Remove(f.Name())
		unlockTemp(lock)
		return "", nil, &Error{Op: "commit", File: f.Name(), Err: err}
	}
	keys := make([]string, 0, len(w.entries)+len(w.full))
	for k := range w.entries {
		keys = append(keys, k)
	}
	for k := range w.full {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bw := bufio.NewWriter(f)
	tw := newTableWriter(bw, w.opts.Compression, w.opts.IndexBlockSize)
	header := &fcpb.BundleHeaderProto{
		NumShards:  int32(len(w.shards)),
		Endianness: fcpb.BundleHeaderProto_LITTLE,
		Version:    &versions_go_proto.VersionDef{Producer: bundleVersion},
	}
	hb, err := proto.MarshalOptions{Deterministic: true}.Marshal(header)
	if err != nil {
		return fail(err)
	}
	if err := tw.add(nil, hb); err != nil {
		return fail(err)
	}
	for _, k := range keys {
		e := w.entries[k]
		if e == nil {
			e = w.full[k]
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
		if err != nil {
			return fail(err)
		}
		if err := tw.add([]byte(k), b); err != nil {
			return fail(err)
		}
	}
	if err := tw.finish(); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if !w.opts.NoSync {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		unlockTemp(lock)
		return "", nil, &Error{Op: "commit", File: f.Name(), Err: err}
	}
	return f.Name(), lock, nil
}

// syncDir makes the renames in dir durable (best effort: not every
// platform can sync a directory).
func syncDir(dir string) { _ = atomicfile.SyncDir(dir) }

// WriteBundle writes tensors as a bundle at prefix (creating its
// directory), with opts.NumShards data shards written in parallel and the
// tensors named in opts.Partitions stored partitioned. Like BundleWriter it
// writes temporary files and renames them into place only once everything
// is on disk, so an existing bundle at prefix stays readable until the new
// one is complete.
func WriteBundle(prefix string, tensors map[string]*Tensor, opts WriteOptions) error {
	type item struct {
		key       string // the entry's key (the slice key for a slice)
		name      string // the tensor's name
		t         *Tensor
		fullShape []int64
		slice     []Extent // nil for a tensor stored whole
		size      int64
	}
	var items []item
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t := tensors[name]
		bad := func(err error) error {
			return &Error{Op: "write", File: IndexFilename(prefix), Tensor: name, Err: err}
		}
		if name == "" {
			return bad(errors.New("empty tensor name (the empty key holds the bundle header)"))
		}
		if err := t.Validate(); err != nil {
			return bad(err)
		}
		p, ok := opts.Partitions[name]
		if !ok {
			items = append(items, item{key: name, name: name, t: t, size: approxSize(t)})
			continue
		}
		parts, err := split(t, p)
		if err != nil {
			return bad(err)
		}
		for _, pt := range parts {
			items = append(items, item{key: SliceKey(name, pt.slice), name: name, t: pt.t, fullShape: t.Shape, slice: pt.slice, size: approxSize(pt.t)})
		}
	}

	// Balance the shards: largest first, each to the emptiest shard.
	n := opts.numShards()
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return items[order[a]].size > items[order[b]].size })
	load := make([]int64, n)
	perShard := make([][]int, n)
	for _, i := range order {
		s := 0
		for j := range load {
			if load[j] < load[s] {
				s = j
			}
		}
		load[s] += items[i].size
		perShard[s] = append(perShard[s], i)
	}

	w, err := NewBundleWriter(prefix, opts)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for s := range n {
		sort.Ints(perShard[s]) // write each shard in key order
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, i := range perShard[s] {
				it := items[i]
				var err error
				if it.slice == nil {
					err = w.add(it.key, s, it.t)
				} else {
					err = w.addSlice(it.name, it.fullShape, it.slice, it.t, s)
				}
				if err != nil {
					errs[s] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			w.Abort()
			return err
		}
	}
	return w.Close()
}

type slicePart struct {
	slice []Extent
	t     *Tensor
}

// split cuts t into p.Parts slices along p.Axis, the first dim%Parts one
// element longer, every dimension's extent explicit (as the save-slice
// specs of tf.compat.v1 partitioned variables are).
func split(t *Tensor, p Partition) ([]slicePart, error) {
	rank := len(t.Shape)
	if p.Axis < 0 || p.Axis >= rank {
		return nil, fmt.Errorf("partition axis %d is outside the %d dimensions", p.Axis, rank)
	}
	dim := t.Shape[p.Axis]
	if p.Parts < 1 || int64(p.Parts) > dim {
		return nil, fmt.Errorf("cannot split dimension %d of size %d into %d parts", p.Axis, dim, p.Parts)
	}
	elem := int64(1) // bytes (or strings) per element
	if t.DType != dtypes.String {
		es := t.DType.Size()
		elem = int64(es)
	}
	outer := int64(1)
	for _, d := range t.Shape[:p.Axis] {
		outer *= d
	}
	inner := elem
	for _, d := range t.Shape[p.Axis+1:] {
		inner *= d
	}
	base, extra := dim/int64(p.Parts), dim%int64(p.Parts)
	var out []slicePart
	start := int64(0)
	for i := range int64(p.Parts) {
		l := base
		if i < extra {
			l++
		}
		slice := make([]Extent, rank)
		shape := slices.Clone(t.Shape)
		for d := range slice {
			slice[d] = Extent{Start: 0, Length: t.Shape[d]}
		}
		slice[p.Axis] = Extent{Start: start, Length: l}
		shape[p.Axis] = l
		part := &Tensor{DType: t.DType, Shape: shape}
		for o := range outer {
			lo, hi := (o*dim+start)*inner, (o*dim+start+l)*inner
			if t.DType == dtypes.String {
				part.Strings = append(part.Strings, t.Strings[lo:hi]...)
			} else {
				part.Data = append(part.Data, t.Data[lo:hi]...)
			}
		}
		if part.DType == dtypes.String && part.Strings == nil {
			part.Strings = [][]byte{}
		}
		if part.DType != dtypes.String && part.Data == nil {
			part.Data = []byte{}
		}
		out = append(out, slicePart{slice: slice, t: part})
		start += l
	}
	return out, nil
}
