package h5

import (
	"errors"
	"fmt"
)

const signature = "\x89HDF\r\n\x1a\n"

// findSuperblock looks for the signature at 0, 512, 1024, 2048 ... (a user
// block may precede the superblock) and returns its offset.
func findSuperblock(r *reader) (int64, error) {
	var sig [8]byte
	for off := int64(0); off+8 <= r.size; off = max(512, 2*off) {
		if _, err := r.r.ReadAt(sig[:], off); err != nil {
			return 0, err
		}
		if string(sig[:]) == signature {
			return off, nil
		}
	}
	return 0, errors.New("not an HDF5 file (no HDF5 signature)")
}

// readSuperblock reads the superblock (versions 0 to 3) and returns the
// root group's object header address.
func readSuperblock(r *reader) (uint64, error) {
	at, err := findSuperblock(r)
	if err != nil {
		return 0, err
	}
	r.base = uint64(at)
	b, err := r.readUpTo(0, 256)
	if err != nil {
		return 0, fmt.Errorf("superblock: %v", err)
	}
	d := &dec{b: b}
	d.skip(8)
	version := d.u8()
	switch version {
	case 0, 1:
		d.skip(4) // free-space, root symbol table, reserved, shared header versions
		r.o, r.l = int(d.u8()), int(d.u8())
		if err := checkSizes(r.o, r.l); err != nil {
			return 0, err
		}
		d.o, d.l = r.o, r.l
		d.skip(1)
		leafK, internalK := d.u16(), d.u16()
		d.skip(4) // file consistency flags
		if version == 1 {
			d.skip(4) // indexed storage K, reserved
		}
		if leafK == 0 || internalK == 0 {
			d.fail(errors.New("superblock: B-tree K of 0"))
		}
		d.addr() // base address: the superblock's position is used instead
		d.addr() // free-space info
		d.addr() // end of file
		d.addr() // driver info
		// The root group's symbol table entry.
		d.addr() // link name offset
		root := d.addr()
		if d.err != nil {
			return 0, fmt.Errorf("superblock: %v", d.err)
		}
		return root, nil
	case 2, 3:
		r.o, r.l = int(d.u8()), int(d.u8())
		if err := checkSizes(r.o, r.l); err != nil {
			return 0, err
		}
		d.o, d.l = r.o, r.l
		d.skip(1) // flags
		d.addr()  // base address
		d.addr()  // superblock extension (shared messages, file space info: not needed)
		d.addr()  // end of file
		root := d.addr()
		end := d.off
		d.skip(4)
		if d.err != nil {
			return 0, fmt.Errorf("superblock: %v", d.err)
		}
		if err := checksum(b[:end+4], "superblock"); err != nil {
			return 0, err
		}
		return root, nil
	}
	return 0, fmt.Errorf("unsupported superblock version %d", version)
}

func checkSizes(o, l int) error {
	for _, n := range []int{o, l} {
		if n != 2 && n != 4 && n != 8 {
			return fmt.Errorf("superblock: unsupported offset/length size %d", n)
		}
	}
	return nil
}
