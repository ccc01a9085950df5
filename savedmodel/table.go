package savedmodel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/golang/snappy"
)

// This file implements the LevelDB sorted-table format that TensorFlow uses
// for a bundle's .index file (tsl/lib/io/table_builder.cc, block_builder.cc,
// format.cc, table.cc).
//
// A table is a sequence of blocks followed by a 48-byte footer:
//
//	data block 0 .. data block N-1   sorted key/value entries
//	metaindex block                  empty in TensorFlow's tables
//	index block                      one entry per data block: a key >= the
//	                                 block's last key and < the next block's
//	                                 first key, and the block's handle
//	footer                           metaindex handle, index handle (varint64
//	                                 offset and size each), zero padding to
//	                                 40 bytes, magic 0xdb4775248b80fb57 as
//	                                 two little-endian uint32 (low word first)
//
// Every block is followed by a 5-byte trailer: the compression type (0 none,
// 1 snappy) and the masked crc32c of the block contents and the type byte.
// A block's entries are prefix-compressed against the previous key:
// varint32 shared, varint32 unshared, varint32 value length, the unshared
// key bytes and the value. Every restartInterval-th entry stores its whole
// key (a restart point); the block ends with the uint32 offsets of its
// restart points and their uint32 count.

const (
	tableMagic        = 0xdb4775248b80fb57
	footerLen         = 48 // 2 * maxBlockHandleLen + 8
	maxBlockHandleLen = 20 // two varint64
	blockTrailerLen   = 5
	defaultBlockSize  = 262144 // TensorFlow's table::Options default
	defaultRestarts   = 16     // TensorFlow's block_restart_interval default
)

// Compression selects how the blocks of a written .index file are stored.
type Compression int

const (
	// NoCompression stores index blocks uncompressed, as TensorFlow's own
	// BundleWriter does (TensorFlow releases before 1.1 cannot read
	// compressed index files).
	NoCompression Compression = 0
	// SnappyCompression stores each index block snappy-compressed when that
	// saves at least 12.5% of its size (LevelDB's rule); TensorFlow reads
	// such files.
	SnappyCompression Compression = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const crcMaskDelta = 0xa282ead8

// maskCRC returns the masked form of a crc32c that LevelDB and TensorFlow
// store in files (crc32c::Mask): rotated right by 15 bits plus a constant.
func maskCRC(crc uint32) uint32 {
	return ((crc >> 15) | (crc << 17)) + crcMaskDelta
}

// unmaskCRC inverts maskCRC.
func unmaskCRC(masked uint32) uint32 {
	rot := masked - crcMaskDelta
	return (rot >> 17) | (rot << 15)
}

// blockHandle locates a block (without its trailer) in a table file.
type blockHandle struct {
	offset, size uint64
}

func (h blockHandle) appendTo(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, h.offset)
	return binary.AppendUvarint(dst, h.size)
}

// decodeBlockHandle decodes a handle from the front of src and returns the
// remaining bytes.
func decodeBlockHandle(src []byte) (blockHandle, []byte, error) {
	off, n := binary.Uvarint(src)
	if n <= 0 {
		return blockHandle{}, nil, errors.New("bad block handle")
	}
	src = src[n:]
	size, n := binary.Uvarint(src)
	if n <= 0 {
		return blockHandle{}, nil, errors.New("bad block handle")
	}
	return blockHandle{off, size}, src[n:], nil
}

// blockBuilder accumulates the entries of one block.
type blockBuilder struct {
	restartInterval int
	buf             []byte
	restarts        []uint32
	counter         int
	lastKey         []byte
	entries         int
}

func newBlockBuilder(restartInterval int) *blockBuilder {
	return &blockBuilder{restartInterval: restartInterval, restarts: []uint32{0}}
}

func (b *blockBuilder) reset() {
	b.buf = b.buf[:0]
	b.restarts = append(b.restarts[:0], 0)
	b.counter = 0
	b.lastKey = b.lastKey[:0]
	b.entries = 0
}

func (b *blockBuilder) empty() bool { return b.entries == 0 }

// sizeEstimate is the size of the finished block if it were finished now.
func (b *blockBuilder) sizeEstimate() int {
	return len(b.buf) + 4*len(b.restarts) + 4
}

func (b *blockBuilder) add(key, value []byte) {
	shared := 0
	if b.counter < b.restartInterval {
		n := min(len(b.lastKey), len(key))
		for shared < n && b.lastKey[shared] == key[shared] {
			shared++
		}
	} else {
		b.restarts = append(b.restarts, uint32(len(b.buf)))
		b.counter = 0
	}
	b.buf = binary.AppendUvarint(b.buf, uint64(shared))
	b.buf = binary.AppendUvarint(b.buf, uint64(len(key)-shared))
	b.buf = binary.AppendUvarint(b.buf, uint64(len(value)))
	b.buf = append(b.buf, key[shared:]...)
	b.buf = append(b.buf, value...)
	b.lastKey = append(b.lastKey[:0], key...)
	b.counter++
	b.entries++
}

// finish appends the restart array and returns the block contents, which
// stay valid until the next reset.
func (b *blockBuilder) finish() []byte {
	for _, r := range b.restarts {
		b.buf = binary.LittleEndian.AppendUint32(b.buf, r)
	}
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(len(b.restarts)))
	return b.buf
}

// tableWriter writes a sorted table, byte for byte as TensorFlow's
// table::TableBuilder does with the same options.
type tableWriter struct {
	w            io.Writer
	compression  Compression
	blockSize    int
	offset       uint64
	data         *blockBuilder
	index        *blockBuilder
	lastKey      []byte
	numEntries   int
	pendingIndex bool
	pendingH     blockHandle
	err          error
}

func newTableWriter(w io.Writer, compression Compression, blockSize int) *tableWriter {
	if blockSize <= 0 {
		blockSize = defaultBlockSize
	}
	return &tableWriter{
		w:           w,
		compression: compression,
		blockSize:   blockSize,
		data:        newBlockBuilder(defaultRestarts),
		index:       newBlockBuilder(1),
	}
}

// add appends an entry; keys must be added in strictly increasing order.
func (t *tableWriter) add(key, value []byte) error {
	if t.err != nil {
		return t.err
	}
	if t.numEntries > 0 {
		if bytes.Compare(key, t.lastKey) <= 0 {
			t.err = fmt.Errorf("table keys out of order: %q after %q", key, t.lastKey)
			return t.err
		}
		// TensorFlow starts a new block before an entry at least twice the
		// block size.
		if len(key)+len(value) >= 2*t.blockSize {
			t.flush()
		}
	}
	if t.pendingIndex {
		sep := shortestSeparator(t.lastKey, key)
		t.index.add(sep, t.pendingH.appendTo(nil))
		t.pendingIndex = false
	}
	t.lastKey = append(t.lastKey[:0], key...)
	t.numEntries++
	t.data.add(key, value)
	if t.data.sizeEstimate() >= t.blockSize {
		t.flush()
	}
	return t.err
}

func (t *tableWriter) flush() {
	if t.err != nil || t.data.empty() {
		return
	}
	t.pendingH = t.writeBlock(t.data)
	if t.err == nil {
		t.pendingIndex = true
	}
}

func (t *tableWriter) writeBlock(b *blockBuilder) blockHandle {
	raw := b.finish()
	contents, typ := raw, byte(NoCompression)
	if t.compression == SnappyCompression {
		c := snappy.Encode(nil, raw)
		if len(c) < len(raw)-len(raw)/8 {
			contents, typ = c, byte(SnappyCompression)
		}
	}
	h := t.writeRaw(contents, typ)
	b.reset()
	return h
}

func (t *tableWriter) writeRaw(contents []byte, typ byte) blockHandle {
	h := blockHandle{offset: t.offset, size: uint64(len(contents))}
	if t.err != nil {
		return h
	}
	var trailer [blockTrailerLen]byte
	trailer[0] = typ
	crc := crc32.Update(crc32.Checksum(contents, castagnoli), castagnoli, trailer[:1])
	binary.LittleEndian.PutUint32(trailer[1:], maskCRC(crc))
	if _, err := t.w.Write(contents); err != nil {
		t.err = err
		return h
	}
	if _, err := t.w.Write(trailer[:]); err != nil {
		t.err = err
		return h
	}
	t.offset += uint64(len(contents)) + blockTrailerLen
	return h
}

// finish writes the last data block, the metaindex and index blocks and
// the footer.
func (t *tableWriter) finish() error {
	t.flush()
	meta := t.writeBlock(newBlockBuilder(defaultRestarts))
	if t.pendingIndex {
		t.index.add(shortSuccessor(t.lastKey), t.pendingH.appendTo(nil))
		t.pendingIndex = false
	}
	idx := t.writeBlock(t.index)
	if t.err != nil {
		return t.err
	}
	footer := meta.appendTo(make([]byte, 0, footerLen))
	footer = idx.appendTo(footer)
	footer = footer[:2*maxBlockHandleLen]
	footer = binary.LittleEndian.AppendUint32(footer, uint32(tableMagic&0xffffffff))
	footer = binary.LittleEndian.AppendUint32(footer, uint32(tableMagic>>32))
	if _, err := t.w.Write(footer); err != nil {
		t.err = err
	}
	return t.err
}

// shortestSeparator returns a short key k with start <= k < limit, as
// LevelDB's bytewise comparator computes it.
func shortestSeparator(start, limit []byte) []byte {
	out := append([]byte(nil), start...)
	n := min(len(start), len(limit))
	i := 0
	for i < n && start[i] == limit[i] {
		i++
	}
	if i >= n {
		return out // one is a prefix of the other
	}
	if c := start[i]; c < 0xff && c+1 < limit[i] {
		out[i]++
		return out[:i+1]
	}
	return out
}

// shortSuccessor returns a short key >= key.
func shortSuccessor(key []byte) []byte {
	out := append([]byte(nil), key...)
	for i, c := range out {
		if c != 0xff {
			out[i]++
			return out[:i+1]
		}
	}
	return out
}

// tableEntry is one key/value pair read from a table.
type tableEntry struct {
	key, value []byte
}

// readTable decodes a whole table held in memory and returns its entries in
// file order, checking every block checksum, every bound and that keys are
// strictly increasing. Errors describe the problem; the caller names the file.
func readTable(file []byte) ([]tableEntry, error) {
	if len(file) < footerLen {
		return nil, fmt.Errorf("file is too short for a table (%d bytes, the footer alone is %d)", len(file), footerLen)
	}
	footer := file[len(file)-footerLen:]
	magic := uint64(binary.LittleEndian.Uint32(footer[40:])) | uint64(binary.LittleEndian.Uint32(footer[44:]))<<32
	if magic != tableMagic {
		return nil, fmt.Errorf("not a table: bad magic number %#016x (want %#016x)", magic, uint64(tableMagic))
	}
	metaH, rest, err := decodeBlockHandle(footer[:40])
	if err != nil {
		return nil, fmt.Errorf("footer: metaindex %v", err)
	}
	indexH, _, err := decodeBlockHandle(rest)
	if err != nil {
		return nil, fmt.Errorf("footer: index %v", err)
	}
	limit := uint64(len(file) - footerLen)
	if _, err := readBlock(file, metaH, limit); err != nil {
		return nil, fmt.Errorf("metaindex block: %w", err)
	}
	indexBlock, err := readBlock(file, indexH, limit)
	if err != nil {
		return nil, fmt.Errorf("index block: %w", err)
	}
	// Prefix compression lets a few bytes of file stand for a long key; the
	// budget bounds the memory that all materialized keys may take.
	budget := keyBudgetRatio*uint64(len(file)) + keyBudgetSlack
	var out []tableEntry
	idx, err := blockEntries(indexBlock, &budget)
	if err != nil {
		return nil, fmt.Errorf("index block: %w", err)
	}
	for i, ie := range idx {
		h, _, err := decodeBlockHandle(ie.value)
		if err != nil {
			return nil, fmt.Errorf("index entry %d: %w", i, err)
		}
		b, err := readBlock(file, h, limit)
		if err != nil {
			return nil, fmt.Errorf("data block %d (offset %d): %w", i, h.offset, err)
		}
		es, err := blockEntries(b, &budget)
		if err != nil {
			return nil, fmt.Errorf("data block %d (offset %d): %w", i, h.offset, err)
		}
		for _, e := range es {
			if bytes.Compare(e.key, ie.key) > 0 {
				return nil, fmt.Errorf("data block %d: key %q is past its index key %q", i, e.key, ie.key)
			}
			if n := len(out); n > 0 && bytes.Compare(out[n-1].key, e.key) >= 0 {
				return nil, fmt.Errorf("keys out of order: %q after %q", e.key, out[n-1].key)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// maxSnappyRatio bounds how much a snappy block can expand: the densest
// snappy element, a 3-byte copy, produces at most 64 bytes.
const maxSnappyRatio = 22

// readBlock returns the contents of the block at h, which must end (with
// its trailer) at or before limit, after checking its crc and
// decompressing it.
func readBlock(file []byte, h blockHandle, limit uint64) ([]byte, error) {
	if h.offset > limit || h.size > limit-h.offset || blockTrailerLen > limit-h.offset-h.size {
		return nil, fmt.Errorf("block handle (offset %d, size %d) is outside the %d bytes before the footer", h.offset, h.size, limit)
	}
	data := file[h.offset : h.offset+h.size+blockTrailerLen]
	n := h.size
	want := unmaskCRC(binary.LittleEndian.Uint32(data[n+1:]))
	if got := crc32.Checksum(data[:n+1], castagnoli); got != want {
		return nil, fmt.Errorf("block checksum mismatch (stored %#08x, computed %#08x)", want, got)
	}
	switch data[n] {
	case byte(NoCompression):
		return data[:n], nil
	case byte(SnappyCompression):
		dlen, err := snappy.DecodedLen(data[:n])
		if err != nil {
			return nil, fmt.Errorf("corrupted snappy block: %v", err)
		}
		if uint64(dlen) > maxSnappyRatio*n+16 {
			return nil, fmt.Errorf("corrupted snappy block: claims %d bytes from %d", dlen, n)
		}
		out, err := snappy.Decode(nil, data[:n])
		if err != nil {
			return nil, fmt.Errorf("corrupted snappy block: %v", err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("bad block compression type %d", data[n])
	}
}

// keyBudgetRatio and keyBudgetSlack bound the total size of the keys
// decoded from one table: keyBudgetRatio times the file size plus
// keyBudgetSlack. Genuine tables stay far below it (tensor names share
// prefixes of tens of bytes, not thousands).
const (
	keyBudgetRatio = 64
	keyBudgetSlack = 1 << 20
)

// blockEntries decodes all entries of a block, charging the size of every
// decoded key to *budget and failing when it runs out.
func blockEntries(b []byte, budget *uint64) ([]tableEntry, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("block of %d bytes has no restart count", len(b))
	}
	numRestarts := uint64(binary.LittleEndian.Uint32(b[len(b)-4:]))
	if numRestarts == 0 || numRestarts > uint64(len(b)-4)/4 {
		return nil, fmt.Errorf("block of %d bytes claims %d restart points", len(b), numRestarts)
	}
	end := uint64(len(b)) - 4 - 4*numRestarts
	restarts := b[end : len(b)-4]
	for i := uint64(0); i < numRestarts; i++ {
		if r := uint64(binary.LittleEndian.Uint32(restarts[4*i:])); r > end || (i == 0 && r != 0) {
			return nil, fmt.Errorf("restart point %d at %d is outside the %d entry bytes", i, r, end)
		}
	}
	var out []tableEntry
	var last []byte
	p := b[:end]
	for len(p) > 0 {
		shared, n1 := binary.Uvarint(p)
		if n1 <= 0 {
			return nil, errors.New("bad entry header")
		}
		unshared, n2 := binary.Uvarint(p[n1:])
		if n2 <= 0 {
			return nil, errors.New("bad entry header")
		}
		vlen, n3 := binary.Uvarint(p[n1+n2:])
		if n3 <= 0 {
			return nil, errors.New("bad entry header")
		}
		p = p[n1+n2+n3:]
		if shared > uint64(len(last)) {
			return nil, fmt.Errorf("entry shares %d bytes with a previous key of %d", shared, len(last))
		}
		if unshared > uint64(len(p)) || vlen > uint64(len(p))-unshared {
			return nil, fmt.Errorf("entry of %d+%d bytes overruns the block", unshared, vlen)
		}
		if shared+unshared > *budget {
			return nil, errors.New("decoded keys exceed the size this table could plausibly hold (corrupt prefix compression)")
		}
		*budget -= shared + unshared
		key := make([]byte, 0, int(shared+unshared))
		key = append(key, last[:shared]...)
		key = append(key, p[:unshared]...)
		out = append(out, tableEntry{key: key, value: p[unshared : unshared+vlen]})
		p = p[unshared+vlen:]
		last = key
	}
	return out, nil
}

// readFirstEntry returns the first entry of the table in f (size bytes),
// reading only the footer, the index block and the first data block, each
// bounds-checked against size before it is read.
func readFirstEntry(f io.ReaderAt, size int64) (tableEntry, error) {
	if size < footerLen {
		return tableEntry{}, fmt.Errorf("file is too short for a table (%d bytes)", size)
	}
	limit := uint64(size - footerLen)
	footer := make([]byte, footerLen)
	if _, err := f.ReadAt(footer, int64(limit)); err != nil {
		return tableEntry{}, err
	}
	magic := uint64(binary.LittleEndian.Uint32(footer[40:])) | uint64(binary.LittleEndian.Uint32(footer[44:]))<<32
	if magic != tableMagic {
		return tableEntry{}, fmt.Errorf("not a table: bad magic number %#016x", magic)
	}
	_, rest, err := decodeBlockHandle(footer[:40])
	if err != nil {
		return tableEntry{}, fmt.Errorf("footer: metaindex %v", err)
	}
	indexH, _, err := decodeBlockHandle(rest)
	if err != nil {
		return tableEntry{}, fmt.Errorf("footer: index %v", err)
	}
	block := func(h blockHandle) ([]byte, error) {
		if h.offset > limit || h.size > limit-h.offset || blockTrailerLen > limit-h.offset-h.size {
			return nil, fmt.Errorf("block handle (offset %d, size %d) is outside the %d bytes before the footer", h.offset, h.size, limit)
		}
		buf := make([]byte, h.size+blockTrailerLen)
		if _, err := f.ReadAt(buf, int64(h.offset)); err != nil {
			return nil, err
		}
		return readBlock(buf, blockHandle{size: h.size}, uint64(len(buf)))
	}
	budget := keyBudgetRatio*uint64(size) + keyBudgetSlack
	ib, err := block(indexH)
	if err != nil {
		return tableEntry{}, fmt.Errorf("index block: %w", err)
	}
	idx, err := blockEntries(ib, &budget)
	if err != nil || len(idx) == 0 {
		return tableEntry{}, fmt.Errorf("index block: no first data block (%v)", err)
	}
	h, _, err := decodeBlockHandle(idx[0].value)
	if err != nil {
		return tableEntry{}, fmt.Errorf("index entry 0: %w", err)
	}
	db, err := block(h)
	if err != nil {
		return tableEntry{}, fmt.Errorf("data block 0: %w", err)
	}
	es, err := blockEntries(db, &budget)
	if err != nil || len(es) == 0 {
		return tableEntry{}, fmt.Errorf("data block 0: no entry (%v)", err)
	}
	return es[0], nil
}
