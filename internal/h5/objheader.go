package h5

import (
	"errors"
	"fmt"
)

// Header message types used here.
const (
	msgNil          = 0x00
	msgDataspace    = 0x01
	msgLinkInfo     = 0x02
	msgDatatype     = 0x03
	msgFillOld      = 0x04
	msgFill         = 0x05
	msgLink         = 0x06
	msgExternal     = 0x07
	msgLayout       = 0x08
	msgGroupInfo    = 0x0A
	msgFilters      = 0x0B
	msgAttribute    = 0x0C
	msgContinuation = 0x10
	msgSymbolTable  = 0x11
	msgAttrInfo     = 0x15
)

// Bounds on one object header: chunks (continuations) and messages.
const (
	maxHeaderChunks   = 1 << 12
	maxHeaderMessages = 1 << 16
)

type message struct {
	typ   uint16
	flags uint8
	data  []byte
}

// object is a parsed object header.
type object struct {
	addr uint64
	msgs []message
}

func (o *object) find(typ uint16) *message {
	for i := range o.msgs {
		if o.msgs[i].typ == typ {
			return &o.msgs[i]
		}
	}
	return nil
}

func (o *object) kind() Kind {
	switch {
	case o.find(msgLayout) != nil:
		return DatasetKind
	case o.find(msgSymbolTable) != nil, o.find(msgLinkInfo) != nil, o.find(msgGroupInfo) != nil, o.find(msgLink) != nil:
		return GroupKind
	}
	return Other
}

// object reads (or returns the cached) object header at addr.
func (r *reader) object(addr uint64) (*object, error) {
	if o, ok := r.objects[addr]; ok {
		return o, nil
	}
	o, err := r.parseObject(addr)
	if err != nil {
		return nil, fmt.Errorf("object header at %#x: %v", addr, err)
	}
	if len(r.objects) < 1<<16 {
		r.objects[addr] = o
	}
	return o, nil
}

type chunkRef struct{ addr, size uint64 }

func (r *reader) parseObject(addr uint64) (*object, error) {
	head, err := r.readUpTo(addr, 16)
	if err != nil {
		return nil, err
	}
	o := &object{addr: addr}
	seen := map[uint64]bool{}
	var queue []chunkRef
	if len(head) >= 4 && string(head[:4]) == "OHDR" {
		first, err := r.readUpTo(addr, 6+16+4+8)
		if err != nil {
			return nil, err
		}
		d := r.dec(first)
		d.sig("OHDR")
		if v := d.u8(); v != 2 && d.err == nil {
			return nil, fmt.Errorf("unsupported object header version %d", v)
		}
		flags := d.u8()
		if flags&0x20 != 0 {
			d.skip(16) // times
		}
		if flags&0x10 != 0 {
			d.skip(4) // attribute phase change values
		}
		size := d.uvar(1 << (flags & 3))
		if d.err != nil {
			return nil, d.err
		}
		prefix := uint64(d.off)
		if size > maxMetaBytes {
			return nil, fmt.Errorf("chunk of %d bytes", size)
		}
		b, err := r.read(addr, prefix+size+4)
		if err != nil {
			return nil, err
		}
		if err := checksum(b, "object header"); err != nil {
			return nil, err
		}
		seen[addr] = true
		if err := r.parseMessages(o, b[prefix:prefix+size], true, flags&0x04 != 0, &queue); err != nil {
			return nil, err
		}
		for len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			if seen[c.addr] || len(seen) >= maxHeaderChunks {
				return nil, errors.New("continuation chunks form a loop or are too many")
			}
			seen[c.addr] = true
			if c.size < 8 {
				return nil, fmt.Errorf("continuation chunk of %d bytes", c.size)
			}
			b, err := r.read(c.addr, c.size)
			if err != nil {
				return nil, err
			}
			if string(b[:4]) != "OCHK" {
				return nil, errors.New("continuation chunk without its OCHK signature")
			}
			if err := checksum(b, "object header continuation"); err != nil {
				return nil, err
			}
			if err := r.parseMessages(o, b[4:len(b)-4], true, flags&0x04 != 0, &queue); err != nil {
				return nil, err
			}
		}
		return o, nil
	}
	d := r.dec(head)
	if v := d.u8(); v != 1 {
		return nil, fmt.Errorf("unsupported object header version %d (corrupt?)", v)
	}
	d.skip(1)
	d.u16() // number of messages: counted by parsing instead
	d.u32() // reference count
	size := uint64(d.u32())
	if d.err != nil {
		return nil, d.err
	}
	queue = append(queue, chunkRef{addr + 16, size})
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if seen[c.addr] || len(seen) >= maxHeaderChunks {
			return nil, errors.New("continuation chunks form a loop or are too many")
		}
		seen[c.addr] = true
		b, err := r.read(c.addr, c.size)
		if err != nil {
			return nil, err
		}
		if err := r.parseMessages(o, b, false, false, &queue); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// parseMessages appends the messages of one header chunk and queues its
// continuation chunks.
func (r *reader) parseMessages(o *object, b []byte, v2, crtOrder bool, queue *[]chunkRef) error {
	d := r.dec(b)
	hdr := 8
	if v2 {
		hdr = 4
		if crtOrder {
			hdr = 6
		}
	}
	for d.rest() >= hdr {
		var m message
		if v2 {
			m.typ = uint16(d.u8())
			size := int(d.u16())
			m.flags = d.u8()
			if crtOrder {
				d.skip(2)
			}
			m.data = d.bytes(size)
		} else {
			m.typ = d.u16()
			size := int(d.u16())
			m.flags = d.u8()
			d.skip(3)
			m.data = d.bytes(size)
		}
		if d.err != nil {
			return fmt.Errorf("message of type %#x runs past its header chunk", m.typ)
		}
		if len(o.msgs) >= maxHeaderMessages {
			return errors.New("too many header messages")
		}
		switch m.typ {
		case msgNil:
			continue
		case msgContinuation:
			md := r.dec(m.data)
			c := chunkRef{md.addr(), md.length()}
			if md.err != nil {
				return fmt.Errorf("continuation message: %v", md.err)
			}
			*queue = append(*queue, c)
			continue
		}
		o.msgs = append(o.msgs, m)
	}
	return nil
}
