package h5

import (
	"errors"
	"fmt"
	"math/bits"
)

// fheap is a fractal heap (dense link and attribute storage): objects are
// found by heap IDs through a doubling table of direct blocks.
type fheap struct {
	r          *reader
	addr       uint64
	idLen      int
	maxManaged uint64
	hugeBT     uint64
	width      uint64
	start      uint64 // starting block size
	maxDirect  uint64
	heapBits   int
	root       uint64
	rows       int // rows of the root indirect block (0: the root is a direct block)
	offBytes   int // bytes of a heap offset
	lenBytes   int // bytes of a managed object's length in a heap ID
	hugeIDLen  int
	hugeDirect bool
}

func (r *reader) fractalHeap(addr uint64) (*fheap, error) {
	n := 4 + 1 + 2 + 2 + 1 + 4 + 12*r.l + 3*r.o + 2 + 2 + 2 + 2 + 4
	b, err := r.read(addr, uint64(n))
	if err != nil {
		return nil, fmt.Errorf("fractal heap header: %v", err)
	}
	d := r.dec(b)
	d.sig("FRHP")
	if v := d.u8(); v != 0 && d.err == nil {
		return nil, fmt.Errorf("fractal heap version %d", v)
	}
	h := &fheap{r: r, addr: addr}
	h.idLen = int(d.u16())
	filterLen := d.u16()
	d.u8() // flags: direct block checksums are not verified
	h.maxManaged = uint64(d.u32())
	d.length() // next huge ID
	h.hugeBT = d.addr()
	d.length() // free space
	d.addr()   // free space manager
	d.length() // managed space
	d.length() // allocated managed space
	d.length() // direct block allocation iterator
	d.length() // managed objects
	d.length() // huge objects size
	d.length() // huge objects
	d.length() // tiny objects size
	d.length() // tiny objects
	h.width = uint64(d.u16())
	h.start = d.length()
	h.maxDirect = d.length()
	h.heapBits = int(d.u16())
	d.u16() // starting rows
	h.root = d.addr()
	h.rows = int(d.u16())
	if d.err != nil {
		return nil, fmt.Errorf("fractal heap header: %v", d.err)
	}
	if filterLen != 0 {
		return nil, errors.New("filtered fractal heaps are not supported")
	}
	if err := checksum(b[:d.off+4], "fractal heap header"); err != nil {
		return nil, err
	}
	pow2 := func(x uint64) bool { return x != 0 && x&(x-1) == 0 }
	if !pow2(h.width) || !pow2(h.start) || !pow2(h.maxDirect) || h.maxDirect < h.start ||
		h.heapBits < 1 || h.heapBits > 64 || h.idLen < 2 || h.idLen > 1<<10 || h.rows > 64 || h.maxDirect > 1<<40 {
		return nil, fmt.Errorf("fractal heap with width %d, block sizes %d..%d, %d offset bits, ID length %d, %d rows",
			h.width, h.start, h.maxDirect, h.heapBits, h.idLen, h.rows)
	}
	h.offBytes = (h.heapBits + 7) / 8
	h.lenBytes = min((bits.Len64(h.maxDirect)-1+7)/8, encSize(h.maxManaged))
	if h.idLen >= 1+r.o+r.l {
		h.hugeDirect = true
	} else {
		h.hugeIDLen = min(h.idLen-1, 8)
	}
	return h, nil
}

// rowSize is the size of the blocks of row i of the doubling table.
func (h *fheap) rowSize(i int) uint64 {
	if i == 0 {
		return h.start
	}
	if i-1 >= 64-bits.Len64(h.start) {
		return 0
	}
	return h.start << (i - 1)
}

// maxDirectRows is the number of table rows holding direct blocks.
func (h *fheap) maxDirectRows() int {
	return bits.Len64(h.maxDirect) - bits.Len64(h.start) + 2
}

// get returns the object a heap ID names.
func (h *fheap) get(id []byte) ([]byte, error) {
	if len(id) < 1 {
		return nil, errors.New("empty heap ID")
	}
	if id[0]>>6 != 0 {
		return nil, fmt.Errorf("heap ID version %d", id[0]>>6)
	}
	d := h.r.dec(id[1:])
	switch (id[0] >> 4) & 3 {
	case 0: // managed
		off := d.uvar(h.offBytes)
		n := d.uvar(h.lenBytes)
		if d.err != nil {
			return nil, fmt.Errorf("heap ID: %v", d.err)
		}
		return h.managed(off, n)
	case 1: // huge
		if h.hugeDirect {
			a, n := d.addr(), d.length()
			if d.err != nil {
				return nil, fmt.Errorf("heap ID: %v", d.err)
			}
			return h.r.read(a, n)
		}
		key := d.uvar(h.hugeIDLen)
		if d.err != nil {
			return nil, fmt.Errorf("heap ID: %v", d.err)
		}
		var obj []byte
		var found bool
		err := h.r.walkBTree2(h.hugeBT, 1, func(rec []byte) error {
			rd := h.r.dec(rec)
			a, n, k := rd.addr(), rd.length(), rd.length()
			if rd.err != nil {
				return rd.err
			}
			if k != key || found {
				return nil
			}
			found = true
			var err error
			obj, err = h.r.read(a, n)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("huge object: %v", err)
		}
		if !found {
			return nil, fmt.Errorf("huge object %d not found", key)
		}
		return obj, nil
	case 2: // tiny: the object is in the ID
		n := int(id[0]&0x0F) + 1
		if n > len(id)-1 {
			return nil, errors.New("tiny heap object longer than its ID")
		}
		return id[1 : 1+n], nil
	}
	return nil, fmt.Errorf("heap ID of unknown type %d", (id[0]>>4)&3)
}

// managed finds a managed object by its offset in the heap's address
// space: the root is a direct block or an indirect block whose rows of
// children double in size.
func (h *fheap) managed(off, n uint64) ([]byte, error) {
	if h.rows == 0 {
		return h.fromDirect(h.root, 0, h.start, off, n)
	}
	addr, rows, base := h.root, h.rows, uint64(0)
	for depth := 0; depth < 64; depth++ {
		dirRows := h.maxDirectRows()
		nDirect := min(rows, dirRows) * int(h.width)
		nIndirect := max(rows-dirRows, 0) * int(h.width)
		size := 5 + h.r.o + h.offBytes + (nDirect+nIndirect)*h.r.o + 4
		b, err := h.r.read(addr, uint64(size))
		if err != nil {
			return nil, fmt.Errorf("fractal heap indirect block: %v", err)
		}
		if err := checksum(b, "fractal heap indirect block"); err != nil {
			return nil, err
		}
		d := h.r.dec(b)
		d.sig("FHIB")
		d.skip(1 + h.r.o + h.offBytes)
		if d.err != nil {
			return nil, d.err
		}
		rel := off - base
		if off < base {
			return nil, errors.New("heap offset outside its block")
		}
		found := false
		for row := 0; row < rows; row++ {
			rs := h.rowSize(row)
			if rs == 0 {
				return nil, errors.New("fractal heap row overflows")
			}
			span := rs * h.width
			if rel >= span {
				rel -= span
				continue
			}
			col := rel / rs
			blockBase := off - rel + col*rs
			entry := row*int(h.width) + int(col)
			ed := h.r.dec(b[5+h.r.o+h.offBytes+entry*h.r.o:])
			child := ed.addr()
			if ed.err != nil {
				return nil, ed.err
			}
			if child == undef {
				return nil, fmt.Errorf("heap offset %d in an unallocated block", off)
			}
			if row < dirRows {
				return h.fromDirect(child, blockBase, rs, off, n)
			}
			childRows := bits.Len64(rs) - bits.Len64(h.start*h.width) + 1
			if childRows <= 0 || childRows >= rows {
				return nil, errors.New("fractal heap indirect block rows do not shrink")
			}
			addr, rows, base = child, childRows, blockBase
			found = true
			break
		}
		if !found {
			return nil, fmt.Errorf("heap offset %d beyond the heap", off)
		}
	}
	return nil, errors.New("fractal heap too deep")
}

func (h *fheap) fromDirect(addr, blockOff, blockSize, off, n uint64) ([]byte, error) {
	rel := off - blockOff
	hdr := uint64(5 + h.r.o + h.offBytes)
	if off < blockOff || rel < hdr || rel > blockSize || n > blockSize-rel {
		return nil, fmt.Errorf("heap object (offset %d, %d bytes) outside its direct block", off, n)
	}
	b, err := h.r.read(addr, 4)
	if err != nil {
		return nil, fmt.Errorf("fractal heap direct block: %v", err)
	}
	if string(b) != "FHDB" {
		return nil, errors.New("fractal heap direct block without its FHDB signature")
	}
	return h.r.read(addr+rel, n)
}
