package h5

import (
	"errors"
	"fmt"
	"math/bits"
)

// extensibleArray visits the chunk entries of an extensible array index
// (a chunked dataset with one unlimited dimension under libver 'latest').
// Entry i is chunk i in row-major order of the chunk grid with the
// unlimited dimension moved first; elements sit in the index block, then
// in data blocks of super blocks whose data block addresses are in the
// index block (the first super blocks) or in secondary blocks.
func (r *reader) extensibleArray(ds *dataset, nchunks uint64, fn func(uint64, chunkInfo) error) error {
	hb, err := r.read(ds.addr, uint64(4+1+1+6+6*r.l+r.o+4))
	if err != nil {
		return fmt.Errorf("extensible array header: %v", err)
	}
	if err := checksum(hb, "extensible array header"); err != nil {
		return err
	}
	d := r.dec(hb)
	d.sig("EAHD")
	d.skip(1)
	client := d.u8()
	entry := int(d.u8())
	maxBits := int(d.u8())
	idxElems := uint64(d.u8())
	minElems := uint64(d.u8())
	minPtrs := uint64(d.u8())
	pageBits := int(d.u8())
	d.skip(6 * r.l) // statistics
	iblock := d.addr()
	if d.err != nil {
		return fmt.Errorf("extensible array header: %v", d.err)
	}
	pow2 := func(x uint64) bool { return x != 0 && x&(x-1) == 0 }
	filtered := client == 1
	minEntry := r.o
	if filtered {
		minEntry += 1 + 4
	}
	if entry < minEntry || entry > r.o+8+4 || maxBits < 1 || maxBits > 64 || !pow2(minElems) || !pow2(minPtrs) ||
		bits.Len64(minElems)-1 > maxBits || pageBits > 32 {
		return fmt.Errorf("extensible array with %d-byte entries, %d bits, %d/%d/%d block parameters", entry, maxBits, idxElems, minElems, minPtrs)
	}
	if iblock == undef {
		return nil
	}
	decode := func(i uint64, b []byte) error {
		c, err := r.arrayEntry(b, entry, filtered)
		if err != nil {
			return err
		}
		if i >= nchunks {
			return nil
		}
		return fn(i, c)
	}
	nsblks := 1 + maxBits - (bits.Len64(minElems) - 1)
	ibSblks := 2 * (bits.Len64(minPtrs) - 1) // super blocks with data blocks in the index block
	ibDblks := 2 * (minPtrs - 1)
	ibSecondary := max(nsblks-ibSblks, 0)
	offBytes := (maxBits + 7) / 8
	prefix := uint64(4 + 1 + 1 + r.o)
	ib, err := r.read(iblock, prefix+idxElems*uint64(entry)+(ibDblks+uint64(ibSecondary))*uint64(r.o)+4)
	if err != nil {
		return fmt.Errorf("extensible array index block: %v", err)
	}
	if err := checksum(ib, "extensible array index block"); err != nil {
		return err
	}
	if string(ib[:4]) != "EAIB" {
		return errors.New("extensible array index block without its EAIB signature")
	}
	for i := uint64(0); i < idxElems; i++ {
		if err := decode(i, ib[prefix+i*uint64(entry):]); err != nil {
			return err
		}
	}
	id := r.dec(ib[prefix+idxElems*uint64(entry):])
	dblkAddrs := make([]uint64, ibDblks)
	for i := range dblkAddrs {
		dblkAddrs[i] = id.addr()
	}
	sblkAddrs := make([]uint64, ibSecondary)
	for i := range sblkAddrs {
		sblkAddrs[i] = id.addr()
	}
	if id.err != nil {
		return id.err
	}
	pageElems := uint64(1) << pageBits
	// dblock visits one data block of n elements starting at element first.
	dblock := func(addr, first, n uint64) error {
		if addr == undef {
			return nil
		}
		if n > pageElems {
			return errors.New("paged extensible array data blocks are not supported")
		}
		b, err := r.read(addr, prefix+uint64(offBytes)+n*uint64(entry)+4)
		if err != nil {
			return fmt.Errorf("extensible array data block: %v", err)
		}
		if err := checksum(b, "extensible array data block"); err != nil {
			return err
		}
		if string(b[:4]) != "EADB" {
			return errors.New("extensible array data block without its EADB signature")
		}
		at := prefix + uint64(offBytes)
		for k := uint64(0); k < n; k++ {
			if err := decode(first+k, b[at+k*uint64(entry):]); err != nil {
				return err
			}
		}
		return nil
	}
	start, dblk := idxElems, uint64(0)
	for u := 0; u < nsblks && start < nchunks; u++ {
		ndblks := uint64(1) << (u / 2)
		nelems := (uint64(1) << ((u + 1) / 2)) * minElems
		if u < ibSblks {
			for j := uint64(0); j < ndblks; j++ {
				if dblk+j >= uint64(len(dblkAddrs)) {
					return errors.New("extensible array index block too short")
				}
				if err := dblock(dblkAddrs[dblk+j], start+j*nelems, nelems); err != nil {
					return err
				}
			}
		} else if a := sblkAddrs[u-ibSblks]; a != undef {
			sb, err := r.read(a, prefix+uint64(offBytes)+ndblks*uint64(r.o)+4)
			if err != nil {
				return fmt.Errorf("extensible array secondary block: %v", err)
			}
			if nelems > pageElems {
				return errors.New("paged extensible array data blocks are not supported")
			}
			if err := checksum(sb, "extensible array secondary block"); err != nil {
				return err
			}
			if string(sb[:4]) != "EASB" {
				return errors.New("extensible array secondary block without its EASB signature")
			}
			sd := r.dec(sb[prefix+uint64(offBytes):])
			for j := uint64(0); j < ndblks; j++ {
				if err := dblock(sd.addr(), start+j*nelems, nelems); err != nil {
					return err
				}
			}
			if sd.err != nil {
				return sd.err
			}
		}
		start += ndblks * nelems
		dblk += ndblks
	}
	return nil
}
