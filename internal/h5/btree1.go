package h5

import (
	"errors"
	"fmt"
)

// maxBTreeDepth bounds the levels of any B-tree (real trees have a few).
const maxBTreeDepth = 32

// walkBTree1 visits the leaf entries of a version 1 B-tree of nodeType (0:
// group nodes, whose children are symbol table nodes; 1: raw data chunks)
// in order: fn gets the key before each child and the child's address.
// Each child must sit one level below its parent, so the walk ends; a node
// reached twice is an error (a loop or a shared subtree).
func (r *reader) walkBTree1(addr uint64, nodeType uint8, keySize int, fn func(key []byte, child uint64) error) error {
	seen := map[uint64]bool{}
	var walk func(addr uint64, wantLevel int) error
	walk = func(addr uint64, wantLevel int) error {
		if seen[addr] {
			return fmt.Errorf("B-tree node %#x reached twice (a loop?)", addr)
		}
		seen[addr] = true
		head, err := r.read(addr, uint64(8+2*r.o))
		if err != nil {
			return fmt.Errorf("B-tree node: %v", err)
		}
		d := r.dec(head)
		d.sig("TREE")
		typ, level, n := d.u8(), int(d.u8()), int(d.u16())
		if d.err != nil {
			return fmt.Errorf("B-tree node %#x: %v", addr, d.err)
		}
		if typ != nodeType {
			return fmt.Errorf("B-tree node %#x has type %d, want %d", addr, typ, nodeType)
		}
		if wantLevel >= 0 && level != wantLevel {
			return fmt.Errorf("B-tree node %#x at level %d, want %d", addr, level, wantLevel)
		}
		if level > maxBTreeDepth {
			return fmt.Errorf("B-tree node %#x claims level %d", addr, level)
		}
		entry := keySize + r.o
		body, err := r.read(addr+uint64(len(head)), uint64(n)*uint64(entry)+uint64(keySize))
		if err != nil {
			return fmt.Errorf("B-tree node %#x with %d entries: %v", addr, n, err)
		}
		bd := r.dec(body)
		for i := 0; i < n; i++ {
			key := bd.bytes(keySize)
			child := bd.addr()
			if bd.err != nil {
				return bd.err
			}
			if level == 0 {
				if err := fn(key, child); err != nil {
					return err
				}
			} else if err := walk(child, level-1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(addr, -1)
}

// localHeap is a group's local heap: the data segment holding link names.
type localHeap struct{ data []byte }

func (r *reader) localHeap(addr uint64) (*localHeap, error) {
	b, err := r.read(addr, uint64(8+2*r.l+r.o))
	if err != nil {
		return nil, fmt.Errorf("local heap: %v", err)
	}
	d := r.dec(b)
	d.sig("HEAP")
	if v := d.u8(); v != 0 && d.err == nil {
		return nil, fmt.Errorf("local heap version %d", v)
	}
	d.skip(3)
	size := d.length()
	d.length() // free list
	data := d.addr()
	if d.err != nil {
		return nil, fmt.Errorf("local heap: %v", d.err)
	}
	seg, err := r.read(data, size)
	if err != nil {
		return nil, fmt.Errorf("local heap data: %v", err)
	}
	return &localHeap{seg}, nil
}

// str is the NUL-terminated string at offset off.
func (h *localHeap) str(off uint64) (string, error) {
	if off >= uint64(len(h.data)) {
		return "", fmt.Errorf("name offset %d outside the local heap (%d bytes)", off, len(h.data))
	}
	s := h.data[off:]
	for i, c := range s {
		if c == 0 {
			return string(s[:i]), nil
		}
	}
	return "", errors.New("unterminated name in the local heap")
}

// symbolTableLinks lists a symbol-table group's links (B-tree of symbol
// table nodes, names in the local heap).
func (r *reader) symbolTableLinks(m *message) ([]link, error) {
	d := r.dec(m.data)
	bt, heapAddr := d.addr(), d.addr()
	if d.err != nil {
		return nil, fmt.Errorf("symbol table message: %v", d.err)
	}
	heap, err := r.localHeap(heapAddr)
	if err != nil {
		return nil, err
	}
	var links []link
	entrySize := 2*r.o + 24
	seen := map[uint64]bool{}
	err = r.walkBTree1(bt, 0, r.l, func(_ []byte, snod uint64) error {
		if seen[snod] {
			return fmt.Errorf("symbol table node %#x listed twice", snod)
		}
		seen[snod] = true
		head, err := r.read(snod, 8)
		if err != nil {
			return fmt.Errorf("symbol table node: %v", err)
		}
		hd := r.dec(head)
		hd.sig("SNOD")
		if v := hd.u8(); v != 1 && hd.err == nil {
			return fmt.Errorf("symbol table node version %d", v)
		}
		hd.skip(1)
		n := int(hd.u16())
		if hd.err != nil {
			return fmt.Errorf("symbol table node %#x: %v", snod, hd.err)
		}
		if len(links)+n > MaxMembers {
			return fmt.Errorf("more than %d members", MaxMembers)
		}
		body, err := r.read(snod+8, uint64(n*entrySize))
		if err != nil {
			return fmt.Errorf("symbol table node %#x with %d entries: %v", snod, n, err)
		}
		bd := r.dec(body)
		for i := 0; i < n; i++ {
			nameOff := bd.length()
			obj := bd.addr()
			cache := bd.u32()
			bd.skip(4)
			scratch := bd.bytes(16)
			if bd.err != nil {
				return bd.err
			}
			name, err := heap.str(nameOff)
			if err != nil {
				return err
			}
			l := link{name: name, kind: hardLink, addr: obj}
			if cache == 2 { // a soft link: its value is in the local heap
				sd := r.dec(scratch)
				l.kind = softLink
				l.target, err = heap.str(uint64(sd.u32()))
				if err != nil {
					return err
				}
			}
			links = append(links, l)
		}
		return nil
	})
	return links, err
}
