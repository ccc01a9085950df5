package h5

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Datatype classes.
const (
	classFixed  = 0
	classFloat  = 1
	classString = 3
	classOpaque = 5
	classVlen   = 9
)

var classNames = map[uint8]string{0: "integer", 1: "float", 2: "time", 3: "string", 4: "bitfield", 5: "opaque",
	6: "compound", 7: "reference", 8: "enum", 9: "variable-length", 10: "array", 11: "complex"}

// datatype is a decoded datatype message, for the classes used here.
type datatype struct {
	class   uint8
	bits    [3]byte
	size    uint32
	props   []byte
	base    *datatype // variable-length types
	vstring bool      // variable-length string (not sequence)
}

func parseDatatype(b []byte, depth int) (*datatype, int, error) {
	if depth > 4 {
		return nil, 0, errors.New("datatype nested too deeply")
	}
	if len(b) < 8 {
		return nil, 0, errors.New("truncated datatype")
	}
	t := &datatype{class: b[0] & 0x0F, size: binary.LittleEndian.Uint32(b[4:])}
	copy(t.bits[:], b[1:4])
	n := 8
	switch t.class {
	case classFixed:
		n += 4
	case classFloat:
		n += 12
	case classString:
	case classOpaque:
		n += int(t.bits[0]) // the ASCII tag, NUL-padded
	case classVlen:
		base, m, err := parseDatatype(b[8:], depth+1)
		if err != nil {
			return nil, 0, err
		}
		t.base = base
		t.vstring = t.bits[0]&0x0F == 1
		n += m
		return t, n, nil
	default:
		name := classNames[t.class]
		if name == "" {
			name = fmt.Sprintf("class %d", t.class)
		}
		return nil, 0, fmt.Errorf("unsupported datatype (%s)", name)
	}
	if len(b) < n {
		return nil, 0, errors.New("truncated datatype")
	}
	t.props = b[8:n]
	return t, n, nil
}

func (t *datatype) String() string {
	name := classNames[t.class]
	if t.class == classFixed || t.class == classFloat {
		order := "little-endian"
		if t.bits[0]&1 != 0 {
			order = "big-endian"
		}
		return fmt.Sprintf("%s %s of %d bytes", order, name, t.size)
	}
	return fmt.Sprintf("%s of %d bytes", name, t.size)
}

// dtype is the DType equal to t, or Invalid: only little-endian integers
// using all their bits, IEEE binary16/binary32/binary64 floats and 2-byte
// opaque elements.
func (t *datatype) dtype() DType {
	switch t.class {
	case classFixed:
		if t.bits[0]&1 != 0 || len(t.props) < 4 {
			return Invalid
		}
		offset, prec := binary.LittleEndian.Uint16(t.props), binary.LittleEndian.Uint16(t.props[2:])
		if offset != 0 || uint32(prec) != 8*t.size {
			return Invalid
		}
		signed := t.bits[0]&0x08 != 0
		switch t.size {
		case 1:
			return pick(signed, Int8, Uint8)
		case 2:
			return pick(signed, Int16, Uint16)
		case 4:
			return pick(signed, Int32, Uint32)
		case 8:
			return pick(signed, Int64, Uint64)
		}
	case classFloat:
		// Little-endian (bits 0 and 6 clear), implied mantissa
		// normalization (bits 4-5 equal to 2) as in IEEE formats.
		if t.bits[0]&0x41 != 0 || (t.bits[0]>>4)&3 != 2 || len(t.props) < 12 {
			return Invalid
		}
		p := t.props
		offset, prec := binary.LittleEndian.Uint16(p), binary.LittleEndian.Uint16(p[2:])
		expLoc, expSize, manLoc, manSize := p[4], p[5], p[6], p[7]
		bias := binary.LittleEndian.Uint32(p[8:])
		if offset != 0 || manLoc != 0 {
			return Invalid
		}
		switch {
		case t.size == 4 && prec == 32 && expLoc == 23 && expSize == 8 && manSize == 23 && bias == 127 && t.bits[1] == 31:
			return Float32
		case t.size == 8 && prec == 64 && expLoc == 52 && expSize == 11 && manSize == 52 && bias == 1023 && t.bits[1] == 63:
			return Float64
		case t.size == 2 && prec == 16 && expLoc == 10 && expSize == 5 && manSize == 10 && bias == 15 && t.bits[1] == 15:
			return Float16
		}
	case classOpaque:
		if t.size == 2 {
			return Opaque2
		}
	}
	return Invalid
}

func pick(signed bool, s, u DType) DType {
	if signed {
		return s
	}
	return u
}

// dataspace is a decoded dataspace message.
type dataspace struct {
	null    bool
	shape   []int64 // empty: scalar
	maxDims []uint64
}

func (r *reader) parseDataspace(b []byte) (*dataspace, error) {
	d := r.dec(b)
	version := d.u8()
	rank := int(d.u8())
	flags := d.u8()
	sp := &dataspace{}
	switch version {
	case 1:
		d.skip(5)
	case 2:
		switch d.u8() {
		case 0:
			rank = 0
		case 1:
		case 2:
			sp.null = true
			return sp, d.err
		default:
			return nil, errors.New("dataspace of unknown type")
		}
	default:
		if d.err == nil {
			return nil, fmt.Errorf("dataspace version %d", version)
		}
	}
	if rank > MaxRank {
		return nil, fmt.Errorf("declares rank %d (allowed 0 to %d)", rank, MaxRank)
	}
	sp.shape = make([]int64, rank)
	total := uint64(1)
	for i := range sp.shape {
		v := d.length()
		if v > 1<<62 {
			return nil, fmt.Errorf("declares dimension %d of size %d", i, v)
		}
		if v != 0 && total > (1<<62)/v {
			return nil, errors.New("declares too many elements")
		}
		total *= v
		sp.shape[i] = int64(v)
	}
	if flags&1 != 0 {
		sp.maxDims = make([]uint64, rank)
		for i := range sp.maxDims {
			sp.maxDims[i] = d.length()
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("dataspace: %v", d.err)
	}
	return sp, nil
}

func (sp *dataspace) elems() int64 {
	n := int64(1)
	for _, v := range sp.shape {
		n *= v
	}
	return n
}
