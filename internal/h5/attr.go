package h5

import (
	"errors"
	"fmt"
	"strings"
)

// attribute is a decoded attribute message.
type attribute struct {
	name  string
	dt    *datatype
	space *dataspace
	data  []byte
}

func (r *reader) parseAttribute(b []byte) (*attribute, error) {
	d := r.dec(b)
	version := d.u8()
	flags := d.u8()
	nameLen, dtLen, dsLen := int(d.u16()), int(d.u16()), int(d.u16())
	pad := func(n int) int { return n }
	switch version {
	case 1:
		pad = func(n int) int { return (n + 7) &^ 7 }
	case 2:
	case 3:
		d.skip(1) // name encoding
	default:
		if d.err == nil {
			return nil, fmt.Errorf("attribute message version %d", version)
		}
	}
	if flags&3 != 0 {
		return nil, errors.New("attribute with a shared datatype or dataspace (not supported)")
	}
	name := d.bytes(pad(nameLen))
	dtb := d.bytes(pad(dtLen))
	dsb := d.bytes(pad(dsLen))
	if d.err != nil || nameLen == 0 || nameLen > len(name) || dtLen > len(dtb) || dsLen > len(dsb) {
		return nil, errors.New("truncated attribute message")
	}
	a := &attribute{name: strings.TrimRight(string(name[:nameLen]), "\x00")}
	dt, _, err := parseDatatype(dtb[:dtLen], 0)
	if err != nil {
		return a, err
	}
	a.dt = dt
	if a.space, err = r.parseDataspace(dsb[:dsLen]); err != nil {
		return a, err
	}
	a.data = b[d.off:]
	return a, nil
}

// attrs lists an object's attributes: messages in its header, and dense
// storage (a fractal heap indexed by a v2 B-tree) when an attribute info
// message points at one. Attributes whose message cannot be decoded are
// kept with their name and error, so that asking for another attribute
// still works.
func (r *reader) attrs(o *object) ([]*attribute, []error, error) {
	var out []*attribute
	var errs []error
	add := func(b []byte) {
		a, err := r.parseAttribute(b)
		if a == nil {
			a = &attribute{}
		}
		out = append(out, a)
		errs = append(errs, err)
	}
	for _, m := range o.msgs {
		if m.typ == msgAttribute {
			if m.flags&0x02 != 0 {
				out = append(out, &attribute{})
				errs = append(errs, errors.New("shared attribute message (not supported)"))
				continue
			}
			add(m.data)
		}
	}
	if m := o.find(msgAttrInfo); m != nil {
		d := r.dec(m.data)
		if v := d.u8(); v != 0 && d.err == nil {
			return nil, nil, fmt.Errorf("attribute info message version %d", v)
		}
		if d.u8()&1 != 0 {
			d.skip(2)
		}
		heapAddr, nameIndex := d.addr(), d.addr()
		if d.err != nil {
			return nil, nil, fmt.Errorf("attribute info message: %v", d.err)
		}
		if heapAddr != undef {
			h, err := r.fractalHeap(heapAddr)
			if err != nil {
				return nil, nil, fmt.Errorf("dense attribute storage: %v", err)
			}
			err = r.walkBTree2(nameIndex, 8, func(rec []byte) error {
				if len(rec) < h.idLen+1 {
					return errors.New("short attribute name record")
				}
				if len(out) >= MaxAttrElems {
					return errors.New("too many attributes")
				}
				if rec[h.idLen]&0x02 != 0 {
					out = append(out, &attribute{})
					errs = append(errs, errors.New("shared attribute message (not supported)"))
					return nil
				}
				b, err := h.get(rec[:h.idLen])
				if err != nil {
					return err
				}
				add(b)
				return nil
			})
			if err != nil {
				return nil, nil, fmt.Errorf("dense attribute storage: %v", err)
			}
		}
	}
	return out, errs, nil
}

// gheap is a global heap collection: the objects of variable-length data.
type gheap struct{ objs map[uint16][]byte }

func (r *reader) globalHeap(addr uint64) (*gheap, error) {
	if h, ok := r.gheaps[addr]; ok {
		return h, nil
	}
	head, err := r.read(addr, uint64(8+r.l))
	if err != nil {
		return nil, fmt.Errorf("global heap: %v", err)
	}
	d := r.dec(head)
	d.sig("GCOL")
	if v := d.u8(); v != 1 && d.err == nil {
		return nil, fmt.Errorf("global heap version %d", v)
	}
	d.skip(3)
	size := d.length()
	if d.err != nil {
		return nil, fmt.Errorf("global heap: %v", d.err)
	}
	b, err := r.read(addr, size)
	if err != nil {
		return nil, fmt.Errorf("global heap collection: %v", err)
	}
	h := &gheap{objs: map[uint16][]byte{}}
	d = r.dec(b)
	d.skip(len(head))
	for d.rest() >= 8+r.l {
		idx := d.u16()
		d.skip(6)
		n := d.length()
		if idx == 0 { // free space: the end of the objects
			break
		}
		if n > uint64(d.rest()) {
			return nil, errors.New("global heap object runs past its collection")
		}
		h.objs[idx] = d.bytes(int(n))
		d.skip(min(int((n+7)&^7-n), d.rest()))
	}
	// Every collection read is kept, and the total is bounded: without the
	// cache a file could make each of millions of string elements re-read a
	// large collection. Keras' strings (names, a config of at most 64 MiB)
	// stay far below the bound.
	if r.cached+int64(len(b)) > maxMetaBytes {
		return nil, fmt.Errorf("global heap collections of more than %d bytes in total", maxMetaBytes)
	}
	r.cached += int64(len(b))
	r.gheaps[addr] = h
	return h, nil
}

// strings decodes a string attribute's values.
func (r *reader) attrStrings(a *attribute) ([]string, error) {
	n := a.space.elems()
	if n > MaxAttrElems {
		return nil, fmt.Errorf("declares %d elements, more than the limit %d", n, MaxAttrElems)
	}
	t := a.dt
	switch {
	case t.class == classString:
		size := int64(t.size)
		if size <= 0 || size > MaxAttrBytes || n*size > MaxAttrBytes {
			return nil, fmt.Errorf("declares %d strings of %d bytes, more than the limit of %d bytes", n, size, MaxAttrBytes)
		}
		if int64(len(a.data)) < n*size {
			return nil, errors.New("attribute data shorter than its type and shape")
		}
		out := make([]string, n)
		for i := range out {
			s := a.data[int64(i)*size : int64(i+1)*size]
			if j := strings.IndexByte(string(s), 0); j >= 0 {
				s = s[:j]
			}
			out[i] = strings.TrimRight(string(s), " ")
		}
		return out, nil
	case t.class == classVlen && (t.vstring || (t.base != nil && t.base.class == classFixed && t.base.size == 1)):
		elem := int64(4 + r.o + 4)
		if int64(len(a.data)) < n*elem {
			return nil, errors.New("attribute data shorter than its type and shape")
		}
		out := make([]string, n)
		var total int64
		d := r.dec(a.data)
		for i := range out {
			length := uint64(d.u32())
			coll := d.addr()
			idx := d.u32()
			if d.err != nil {
				return nil, d.err
			}
			if length == 0 {
				continue
			}
			if total += int64(length); total > MaxAttrBytes || length > MaxAttrBytes {
				return nil, fmt.Errorf("strings longer than the limit of %d bytes", MaxAttrBytes)
			}
			h, err := r.globalHeap(coll)
			if err != nil {
				return nil, fmt.Errorf("element %d: %v", i, err)
			}
			obj, ok := h.objs[uint16(idx)]
			if !ok || idx > 0xFFFF {
				return nil, fmt.Errorf("element %d: global heap object %d not found", i, idx)
			}
			if uint64(len(obj)) < length {
				return nil, fmt.Errorf("element %d: global heap object shorter than the string", i)
			}
			out[i] = string(obj[:length])
		}
		return out, nil
	}
	return nil, fmt.Errorf("is not a string attribute (%s)", t)
}
