package h5

import (
	"errors"
	"fmt"
	"math/bits"
)

// encSize is the number of bytes HDF5 uses to encode counts up to n.
func encSize(n uint64) int { return (bits.Len64(n)-1)/8 + 1 }

// walkBTree2 visits every record of a version 2 B-tree of the given type.
func (r *reader) walkBTree2(addr uint64, wantType uint8, fn func(rec []byte) error) error {
	b, err := r.read(addr, uint64(4+1+1+4+2+2+1+1+r.o+2+r.l+4))
	if err != nil {
		return fmt.Errorf("v2 B-tree header: %v", err)
	}
	if err := checksum(b, "v2 B-tree header"); err != nil {
		return err
	}
	d := r.dec(b)
	d.sig("BTHD")
	if v := d.u8(); v != 0 && d.err == nil {
		return fmt.Errorf("v2 B-tree version %d", v)
	}
	typ := d.u8()
	nodeSize := uint64(d.u32())
	recSize := int(d.u16())
	depth := int(d.u16())
	d.skip(2)
	root := d.addr()
	rootN := int(d.u16())
	d.length()
	if d.err != nil {
		return fmt.Errorf("v2 B-tree header: %v", d.err)
	}
	if typ != wantType {
		return fmt.Errorf("v2 B-tree of type %d, want %d", typ, wantType)
	}
	if recSize == 0 || nodeSize < 10 || nodeSize > 1<<24 || depth > maxBTreeDepth {
		return fmt.Errorf("v2 B-tree with node size %d, record size %d, depth %d", nodeSize, recSize, depth)
	}
	if root == undef {
		return nil
	}
	// Per level: the most records a node holds, the bytes encoding that
	// count, and the same for all records below a node.
	maxN := make([]uint64, depth+1)
	nSize := make([]int, depth+1)
	cum := make([]uint64, depth+1)
	cumSize := make([]int, depth+1)
	maxN[0] = (nodeSize - 10) / uint64(recSize)
	if maxN[0] == 0 {
		return errors.New("v2 B-tree nodes hold no record")
	}
	nSize[0] = encSize(maxN[0])
	cum[0], cumSize[0] = maxN[0], nSize[0]
	for u := 1; u <= depth; u++ {
		ptr := uint64(r.o + nSize[u-1])
		if u > 1 {
			ptr += uint64(cumSize[u-1])
		}
		maxN[u] = (nodeSize - 10) / (uint64(recSize) + ptr)
		if maxN[u] == 0 {
			return errors.New("v2 B-tree internal nodes hold no record")
		}
		nSize[u] = encSize(maxN[u])
		c := (maxN[u]+1)*cum[u-1] + maxN[u]
		if c < cum[u-1] || cum[u-1] > 1<<56 {
			c = 1 << 62
		}
		cum[u], cumSize[u] = c, min(encSize(c), 8)
	}
	seen := map[uint64]bool{}
	var walk func(addr uint64, level, n int) error
	walk = func(addr uint64, level, n int) error {
		if seen[addr] {
			return fmt.Errorf("v2 B-tree node %#x reached twice (a loop?)", addr)
		}
		seen[addr] = true
		if uint64(n) > maxN[level] {
			return fmt.Errorf("v2 B-tree node with %d records (at most %d)", n, maxN[level])
		}
		size := 6 + n*recSize + 4
		if level > 0 {
			ptr := r.o + nSize[level-1]
			if level > 1 {
				ptr += cumSize[level-1]
			}
			size += (n + 1) * ptr
		}
		b, err := r.read(addr, uint64(size))
		if err != nil {
			return fmt.Errorf("v2 B-tree node: %v", err)
		}
		if err := checksum(b, "v2 B-tree node"); err != nil {
			return err
		}
		d := r.dec(b)
		if level == 0 {
			d.sig("BTLF")
		} else {
			d.sig("BTIN")
		}
		d.skip(1)
		if t := d.u8(); t != typ && d.err == nil {
			return fmt.Errorf("v2 B-tree node of type %d in a tree of type %d", t, typ)
		}
		recs := d.bytes(n * recSize)
		if d.err != nil {
			return d.err
		}
		if level == 0 {
			for i := 0; i < n; i++ {
				if err := fn(recs[i*recSize : (i+1)*recSize]); err != nil {
					return err
				}
			}
			return nil
		}
		for i := 0; i <= n; i++ {
			child := d.addr()
			cn := d.uvar(nSize[level-1])
			if level > 1 {
				d.uvar(cumSize[level-1])
			}
			if d.err != nil {
				return d.err
			}
			if cn > maxN[level-1] {
				return fmt.Errorf("v2 B-tree child with %d records", cn)
			}
			if err := walk(child, level-1, int(cn)); err != nil {
				return err
			}
			if i < n {
				if err := fn(recs[i*recSize : (i+1)*recSize]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(root, depth, rootN)
}
