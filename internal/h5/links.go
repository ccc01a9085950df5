package h5

import (
	"errors"
	"fmt"
)

type linkKind int

const (
	hardLink linkKind = iota
	softLink
	externalLink
	otherLink
)

// link is a named link of a group.
type link struct {
	name   string
	kind   linkKind
	addr   uint64 // hard links
	target string // soft links: the path; external links: "file:path"
}

// parseLink decodes a link message.
func (r *reader) parseLink(b []byte) (link, error) {
	d := r.dec(b)
	if v := d.u8(); v != 1 && d.err == nil {
		return link{}, fmt.Errorf("link message version %d", v)
	}
	flags := d.u8()
	typ := uint8(0)
	if flags&0x08 != 0 {
		typ = d.u8()
	}
	if flags&0x04 != 0 {
		d.skip(8) // creation order
	}
	if flags&0x10 != 0 {
		d.skip(1) // character set
	}
	n := d.uvar(1 << (flags & 3))
	if n == 0 || n > uint64(d.rest()) {
		d.fail(errors.New("bad link name length"))
	}
	name := string(d.bytes(int(n)))
	l := link{name: name}
	switch typ {
	case 0:
		l.kind = hardLink
		l.addr = d.addr()
	case 1:
		l.kind = softLink
		l.target = string(d.bytes(int(d.u16())))
	case 64:
		l.kind = externalLink
		v := d.bytes(int(d.u16()))
		if len(v) > 1 {
			// flags byte, then file name and object path, NUL-terminated
			parts := splitNUL(v[1:])
			if len(parts) >= 2 {
				l.target = parts[0] + ":" + parts[1]
			}
		}
	default:
		l.kind = otherLink
	}
	if d.err != nil {
		return link{}, fmt.Errorf("link message: %v", d.err)
	}
	return l, nil
}

func splitNUL(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return out
}

// links lists a group's links, from whichever storage it uses: a symbol
// table (libver earliest), link messages in the header (compact), or a
// fractal heap indexed by a v2 B-tree (dense).
func (r *reader) groupLinks(o *object) ([]link, error) {
	if ls, ok := r.links[o.addr]; ok {
		return ls, nil
	}
	var links []link
	if m := o.find(msgSymbolTable); m != nil {
		ls, err := r.symbolTableLinks(m)
		if err != nil {
			return nil, err
		}
		links = ls
	} else {
		for _, m := range o.msgs {
			if m.typ != msgLink {
				continue
			}
			l, err := r.parseLink(m.data)
			if err != nil {
				return nil, err
			}
			links = append(links, l)
		}
		if m := o.find(msgLinkInfo); m != nil {
			d := r.dec(m.data)
			if v := d.u8(); v != 0 && d.err == nil {
				return nil, fmt.Errorf("link info message version %d", v)
			}
			flags := d.u8()
			if flags&1 != 0 {
				d.skip(8)
			}
			heapAddr, nameIndex := d.addr(), d.addr()
			if d.err != nil {
				return nil, fmt.Errorf("link info message: %v", d.err)
			}
			if heapAddr != undef {
				h, err := r.fractalHeap(heapAddr)
				if err != nil {
					return nil, fmt.Errorf("dense link storage: %v", err)
				}
				err = r.walkBTree2(nameIndex, 5, func(rec []byte) error {
					if len(rec) < 4 {
						return errors.New("short link name record")
					}
					obj, err := h.get(rec[4:])
					if err != nil {
						return err
					}
					l, err := r.parseLink(obj)
					if err != nil {
						return err
					}
					if len(links) >= MaxMembers {
						return fmt.Errorf("more than %d members", MaxMembers)
					}
					links = append(links, l)
					return nil
				})
				if err != nil {
					return nil, fmt.Errorf("dense link storage: %v", err)
				}
			}
		}
	}
	if len(links) > MaxMembers {
		return nil, fmt.Errorf("declares %d members, more than the limit %d", len(links), MaxMembers)
	}
	seen := make(map[string]bool, len(links))
	for _, l := range links {
		if seen[l.name] {
			return nil, fmt.Errorf("two links named %q", l.name)
		}
		seen[l.name] = true
	}
	r.links[o.addr] = links
	return links, nil
}
