package savedmodel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strings"

	"github.com/wamuir/graft/tensorflow/core/framework/tensor_slice_go_proto"
)

// Extent is one dimension of a slice of a partitioned tensor: the elements
// [Start, Start+Length) of that dimension. Length -1 (with Start 0) means
// the whole dimension, as TensorFlow's TensorSlice writes an extent without
// a length.
type Extent struct {
	Start, Length int64
}

// FullExtent is the extent that covers a whole dimension.
var FullExtent = Extent{Start: 0, Length: -1}

// isFull reports whether e is the "whole dimension" extent.
func (e Extent) isFull() bool { return e.Length < 0 }

// length returns the number of elements e covers in a dimension of size dim.
func (e Extent) length(dim int64) int64 {
	if e.isFull() {
		return dim
	}
	return e.Length
}

// sliceString formats a slice like TensorFlow's TensorSlice::DebugString
// ("0,5:-"), for error messages.
func sliceString(slice []Extent) string {
	parts := make([]string, len(slice))
	for i, e := range slice {
		if e.isFull() {
			parts[i] = "-"
		} else {
			parts[i] = fmt.Sprintf("%d,%d", e.Start, e.Length)
		}
	}
	return strings.Join(parts, ":")
}

// extentsFromProto converts a TensorSliceProto to extents.
func extentsFromProto(p *tensor_slice_go_proto.TensorSliceProto) []Extent {
	out := make([]Extent, len(p.GetExtent()))
	for i, e := range p.GetExtent() {
		if l, ok := e.GetHasLength().(*tensor_slice_go_proto.TensorSliceProto_Extent_Length); ok {
			out[i] = Extent{Start: e.GetStart(), Length: l.Length}
		} else {
			out[i] = Extent{Start: e.GetStart(), Length: -1}
		}
	}
	return out
}

// extentsToProto converts extents to a TensorSliceProto as TensorFlow's
// TensorSlice::AsProto does: a whole-dimension extent is an empty Extent.
func extentsToProto(slice []Extent) *tensor_slice_go_proto.TensorSliceProto {
	p := &tensor_slice_go_proto.TensorSliceProto{}
	for _, e := range slice {
		pe := &tensor_slice_go_proto.TensorSliceProto_Extent{}
		if !e.isFull() {
			pe.Start = e.Start
			pe.HasLength = &tensor_slice_go_proto.TensorSliceProto_Extent_Length{Length: e.Length}
		}
		p.Extent = append(p.Extent, pe)
	}
	return p
}

// checkSlice validates slice against a full shape and returns the shape of
// the slice.
func checkSlice(fullShape []int64, slice []Extent) ([]int64, error) {
	if len(slice) != len(fullShape) {
		return nil, fmt.Errorf("slice %s has %d dimensions, the full shape %v has %d", sliceString(slice), len(slice), fullShape, len(fullShape))
	}
	shape := make([]int64, len(slice))
	for i, e := range slice {
		d := fullShape[i]
		if e.isFull() {
			if e.Start != 0 || e.Length != -1 {
				return nil, fmt.Errorf("slice %s: dimension %d: a whole-dimension extent must be {0, -1}", sliceString(slice), i)
			}
			shape[i] = d
			continue
		}
		if e.Start < 0 || e.Start > d || e.Length > d-e.Start {
			return nil, fmt.Errorf("slice %s: dimension %d: [%d, %d+%d) is outside [0, %d)", sliceString(slice), i, e.Start, e.Start, e.Length, d)
		}
		shape[i] = e.Length
	}
	return shape, nil
}

// isFullSlice reports whether slice covers the whole of fullShape (what
// TensorFlow's IsFullSlice checks before storing a slice as a plain entry).
func isFullSlice(fullShape []int64, slice []Extent) bool {
	for i, e := range slice {
		if !e.isFull() && (e.Start != 0 || e.Length != fullShape[i]) {
			return false
		}
	}
	return true
}

// SliceKey returns the key under which a bundle stores one slice of the
// partitioned tensor name (checkpoint::EncodeTensorNameSlice): TensorFlow's
// OrderedCode encoding of the number 0, the name, the rank, and the start
// and length of each dimension (0 and -1 for a whole dimension).
func SliceKey(name string, slice []Extent) string {
	var b []byte
	b = appendNumIncreasing(b, 0)
	b = appendOrderedString(b, name)
	b = appendNumIncreasing(b, uint64(len(slice)))
	for _, e := range slice {
		if e.isFull() {
			b = appendSignedNumIncreasing(b, e.Start)
			b = appendSignedNumIncreasing(b, -1)
		} else {
			b = appendSignedNumIncreasing(b, e.Start)
			b = appendSignedNumIncreasing(b, e.Length)
		}
	}
	return string(b)
}

// ParseSliceKey decodes a key made by SliceKey into the tensor name and the
// slice.
func ParseSliceKey(key string) (string, []Extent, error) {
	src := []byte(key)
	x, src, ok := readNumIncreasing(src)
	if !ok || x != 0 {
		return "", nil, errors.New("not a tensor slice key: bad leading number")
	}
	name, src, ok := readOrderedString(src)
	if !ok {
		return "", nil, errors.New("tensor slice key: bad name")
	}
	rank, src, ok := readNumIncreasing(src)
	if !ok || rank == 0 || rank > uint64(len(src))/2 {
		return "", nil, errors.New("tensor slice key: bad rank")
	}
	slice := make([]Extent, rank)
	for i := range slice {
		var start, length int64
		if start, src, ok = readSignedNumIncreasing(src); !ok {
			return "", nil, fmt.Errorf("tensor slice key: bad start of dimension %d", i)
		}
		if length, src, ok = readSignedNumIncreasing(src); !ok {
			return "", nil, fmt.Errorf("tensor slice key: bad length of dimension %d", i)
		}
		if length < 0 {
			slice[i] = FullExtent
		} else {
			slice[i] = Extent{Start: start, Length: length}
		}
	}
	if len(src) != 0 {
		return "", nil, errors.New("tensor slice key: trailing bytes")
	}
	return name, slice, nil
}

// appendNumIncreasing appends OrderedCode's encoding of an unsigned number:
// a length byte and the big-endian bytes without leading zeros.
func appendNumIncreasing(b []byte, v uint64) []byte {
	n := (bits.Len64(v) + 7) / 8
	b = append(b, byte(n))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func readNumIncreasing(src []byte) (uint64, []byte, bool) {
	if len(src) == 0 {
		return 0, nil, false
	}
	n := int(src[0])
	if n > 8 || n+1 > len(src) {
		return 0, nil, false
	}
	var v uint64
	for _, c := range src[1 : n+1] {
		v = v<<8 | uint64(c)
	}
	return v, src[n+1:], true
}

// appendOrderedString appends OrderedCode's encoding of a string: 0x00 is
// escaped as 00 ff, 0xff as ff 00, and the string ends with 00 01.
func appendOrderedString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0x00:
			b = append(b, 0x00, 0xff)
		case 0xff:
			b = append(b, 0xff, 0x00)
		default:
			b = append(b, c)
		}
	}
	return append(b, 0x00, 0x01)
}

func readOrderedString(src []byte) (string, []byte, bool) {
	var out []byte
	for i := 0; i+1 < len(src); i++ {
		switch c := src[i]; c {
		case 0x00:
			switch src[i+1] {
			case 0x01:
				return string(out), src[i+2:], true
			case 0xff:
				out = append(out, 0x00)
				i++
			default:
				return "", nil, false
			}
		case 0xff:
			if src[i+1] != 0x00 {
				return "", nil, false
			}
			out = append(out, 0xff)
			i++
		default:
			out = append(out, c)
		}
	}
	return "", nil, false
}

// appendSignedNumIncreasing appends OrderedCode's order-preserving encoding
// of a signed number: the sign bit, then as many further copies of it as
// bytes follow the first, a delimiting opposite bit, and the two's
// complement value in the remaining bits, big-endian; 1 to 10 bytes.
func appendSignedNumIncreasing(b []byte, v int64) []byte {
	x := uint64(v)
	if v < 0 {
		x = ^x
	}
	// Bytes needed: n bytes hold 7n-1 value bits (plus the sign), except
	// that 10 bytes are needed for 63 bits.
	nbits := bits.Len64(x) + 1 // value bits plus a sign bit
	n := (nbits + 6) / 7
	if n > 10 {
		n = 10
	}
	var buf [10]byte
	sign := byte(0)
	if v < 0 {
		sign = 0xff
	}
	buf[0], buf[1] = sign, sign
	binary.BigEndian.PutUint64(buf[2:], uint64(v))
	out := buf[10-n:]
	// Header bits: n leading ones (for a non-negative number; the XOR with
	// the sign-extended value turns them into zeros for a negative one).
	hdr := [11][2]byte{{0, 0}, {0x80, 0}, {0xc0, 0}, {0xe0, 0}, {0xf0, 0}, {0xf8, 0}, {0xfc, 0}, {0xfe, 0}, {0xff, 0}, {0xff, 0x80}, {0xff, 0xc0}}
	out[0] ^= hdr[n][0]
	if n > 1 {
		out[1] ^= hdr[n][1]
	}
	return append(b, out...)
}

func readSignedNumIncreasing(src []byte) (int64, []byte, bool) {
	if len(src) == 0 {
		return 0, nil, false
	}
	var xorMask uint64
	if src[0]&0x80 == 0 {
		xorMask = ^uint64(0)
	}
	first := src[0] ^ byte(xorMask)
	var n int
	var x uint64
	if first != 0xff {
		n = bits.LeadingZeros8(^first) // leading ones, the sign bit included
		if len(src) < n {
			return 0, nil, false
		}
		x = xorMask
		for _, c := range src[:n] {
			x = x<<8 | uint64(c)
		}
	} else {
		n = 8
		if len(src) < 8 {
			return 0, nil, false
		}
		second := src[1] ^ byte(xorMask)
		if second >= 0x80 {
			if second < 0xc0 {
				n = 9
			} else if second == 0xc0 && len(src) > 2 && src[2]^byte(xorMask) < 0x80 {
				n = 10
			} else {
				return 0, nil, false
			}
			if len(src) < n {
				return 0, nil, false
			}
		}
		x = binary.BigEndian.Uint64(src[n-8 : n])
	}
	masks := [11]uint64{0, 0x80, 0xc000, 0xe00000, 0xf0000000, 0xf800000000, 0xfc0000000000, 0xfe000000000000, 0xff00000000000000, 0x8000000000000000, 0}
	x ^= masks[n]
	return int64(x), src[n:], true
}

// assembler copies slices of a row-major tensor into the whole tensor.
type assembler struct {
	full    []int64
	strides []int64 // elements per step of each dimension of the full tensor
}

func newAssembler(full []int64) *assembler {
	s := make([]int64, len(full))
	acc := int64(1)
	for i := len(full) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= full[i]
	}
	return &assembler{full: full, strides: s}
}

// runs calls fn(dst, src, n) for each contiguous run of n elements of the
// slice (with shape sliceShape, starting at starts): elements src.. of the
// slice's own row-major data go to elements dst.. of the full tensor.
func (a *assembler) runs(starts, sliceShape []int64, fn func(dst, src, n int64)) {
	rank := len(sliceShape)
	if rank == 0 {
		fn(0, 0, 1)
		return
	}
	for _, d := range sliceShape {
		if d == 0 {
			return
		}
	}
	run := sliceShape[rank-1]
	idx := make([]int64, rank-1)
	src := int64(0)
	for {
		dst := starts[rank-1]
		for i := 0; i < rank-1; i++ {
			dst += (starts[i] + idx[i]) * a.strides[i]
		}
		fn(dst, src, run)
		src += run
		i := rank - 2
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < sliceShape[i] {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return
		}
	}
}

// overlaps reports whether two slices of the same full shape share an
// element.
func overlaps(full []int64, a, b []Extent) bool {
	for i := range full {
		as, al := a[i].Start, a[i].length(full[i])
		bs, bl := b[i].Start, b[i].length(full[i])
		if al == 0 || bl == 0 || as+al <= bs || bs+bl <= as {
			return false
		}
	}
	return true
}
