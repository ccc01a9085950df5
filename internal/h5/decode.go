package h5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// errTruncated is what a decoder reports when a structure runs past the
// bytes it was given.
var errTruncated = errors.New("truncated structure")

// dec reads little-endian fields from one block of metadata. The first
// error sticks, so a parser can read a whole structure and check once;
// every read past the end yields zeros and errTruncated, never a panic.
type dec struct {
	b   []byte
	off int
	err error
	o   int // size of offsets (addresses) in bytes
	l   int // size of lengths in bytes
}

func (d *dec) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *dec) failf(format string, args ...any) { d.fail(fmt.Errorf(format, args...)) }

func (d *dec) rest() int { return len(d.b) - d.off }

func (d *dec) bytes(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.b)-d.off {
		d.fail(errTruncated)
		return nil
	}
	s := d.b[d.off : d.off+n]
	d.off += n
	return s
}

func (d *dec) skip(n int) { d.bytes(n) }

func (d *dec) u8() uint8 {
	b := d.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (d *dec) u16() uint16 {
	b := d.bytes(2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (d *dec) u32() uint32 {
	b := d.bytes(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// uvar reads an n-byte little-endian unsigned integer (n <= 8).
func (d *dec) uvar(n int) uint64 {
	if n > 8 {
		d.failf("unsupported %d-byte integer field", n)
		return 0
	}
	b := d.bytes(n)
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// addr reads an address; the undefined address (all ones) becomes undef.
func (d *dec) addr() uint64 {
	v := d.uvar(d.o)
	if d.o < 8 && v == (uint64(1)<<(8*d.o))-1 {
		return undef
	}
	return v
}

func (d *dec) length() uint64 { return d.uvar(d.l) }

func (d *dec) sig(s string) {
	b := d.bytes(len(s))
	if b != nil && string(b) != s {
		d.failf("bad signature %q (want %q)", b, s)
	}
}

// undef is HDF5's undefined address.
const undef = ^uint64(0)

// reader reads the metadata of one file with every range checked against
// the file's size before anything is allocated.
type reader struct {
	r    io.ReaderAt
	size int64  // file size
	base uint64 // absolute offset of address 0 (the superblock's position)
	o, l int    // sizes of offsets and lengths
	// caches of parsed structures, keyed by address
	objects map[uint64]*object
	links   map[uint64][]link
	gheaps  map[uint64]*gheap
	cached  int64 // bytes held by gheaps, bounded by maxMetaBytes
}

// maxMetaBytes bounds one metadata block read (a heap's data segment, a
// global heap collection holding a large string).
const maxMetaBytes = MaxAttrBytes + 1<<20

// abs checks that n bytes at address addr lie inside the file and returns
// the absolute offset.
func (r *reader) abs(addr uint64, n uint64) (int64, error) {
	if addr == undef {
		return 0, errors.New("undefined address")
	}
	a := addr + r.base
	if a < addr || a > uint64(r.size) || n > uint64(r.size)-a {
		return 0, fmt.Errorf("address %#x (+%d bytes) outside the file (%d bytes)", addr, n, r.size)
	}
	return int64(a), nil
}

// read returns n bytes at addr (n bounded by maxMetaBytes).
func (r *reader) read(addr uint64, n uint64) ([]byte, error) {
	if n > maxMetaBytes {
		return nil, fmt.Errorf("metadata block of %d bytes at %#x is larger than the limit %d", n, addr, maxMetaBytes)
	}
	off, err := r.abs(addr, n)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := r.r.ReadAt(b, off); err != nil && !(err == io.EOF && int64(len(b)) == int64(n)) {
		return nil, fmt.Errorf("reading %d bytes at %#x: %v", n, addr, err)
	}
	return b, nil
}

// readUpTo reads at most n bytes at addr, fewer at the end of the file
// (for structures whose size is known only after parsing their start).
func (r *reader) readUpTo(addr uint64, n uint64) ([]byte, error) {
	if addr == undef {
		return nil, errors.New("undefined address")
	}
	a := addr + r.base
	if a < addr || a >= uint64(r.size) {
		return nil, fmt.Errorf("address %#x outside the file (%d bytes)", addr, r.size)
	}
	if left := uint64(r.size) - a; n > left {
		n = left
	}
	return r.read(addr, n)
}

func (r *reader) dec(b []byte) *dec { return &dec{b: b, o: r.o, l: r.l} }

// checksum verifies the Jenkins lookup3 checksum that ends a v2 structure
// (b holds the structure, its last 4 bytes the checksum).
func checksum(b []byte, what string) error {
	if len(b) < 4 {
		return fmt.Errorf("%s: %w", what, errTruncated)
	}
	n := len(b) - 4
	if got, want := lookup3(b[:n], 0), binary.LittleEndian.Uint32(b[n:]); got != want {
		return fmt.Errorf("%s: checksum mismatch (corrupt metadata)", what)
	}
	return nil
}

// lookup3 is Bob Jenkins' hashlittle, the checksum of HDF5's version 2
// metadata.
func lookup3(k []byte, initval uint32) uint32 {
	rot := func(x uint32, n uint) uint32 { return x<<n | x>>(32-n) }
	length := len(k)
	a := 0xdeadbeef + uint32(length) + initval
	b, c := a, a
	for len(k) > 12 {
		a += binary.LittleEndian.Uint32(k)
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		a -= c
		a ^= rot(c, 4)
		c += b
		b -= a
		b ^= rot(a, 6)
		a += c
		c -= b
		c ^= rot(b, 8)
		b += a
		a -= c
		a ^= rot(c, 16)
		c += b
		b -= a
		b ^= rot(a, 19)
		a += c
		c -= b
		c ^= rot(b, 4)
		b += a
		k = k[12:]
	}
	if len(k) == 0 {
		return c
	}
	var last [12]byte
	copy(last[:], k)
	a += binary.LittleEndian.Uint32(last[:])
	b += binary.LittleEndian.Uint32(last[4:])
	c += binary.LittleEndian.Uint32(last[8:])
	c ^= b
	c -= rot(b, 14)
	a ^= c
	a -= rot(c, 11)
	b ^= a
	b -= rot(a, 25)
	c ^= b
	c -= rot(b, 16)
	a ^= c
	a -= rot(c, 4)
	b ^= a
	b -= rot(a, 14)
	c ^= b
	c -= rot(b, 24)
	return c
}
