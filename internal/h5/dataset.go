package h5

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// Data layout classes and chunk index types.
const (
	layoutCompact    = 0
	layoutContiguous = 1
	layoutChunked    = 2
	layoutVirtual    = 3

	indexBTree1     = 0 // layout version 3
	indexSingle     = 1
	indexImplicit   = 2
	indexFixedArray = 3
	indexExtensible = 4
	indexBTree2     = 5
)

// minChunkCap is the chunk size always accepted: chunks larger than the
// dataset (allowed by HDF5 for resizable datasets) are refused above
// max(dataset size, minChunkCap), so a tiny dataset cannot make the
// reader inflate gigabytes. h5py's automatic chunks stay under 1 MiB.
const minChunkCap = 4 << 20

// dataset is a decoded dataset header.
type dataset struct {
	dt       DType
	dtype    *datatype
	space    *dataspace
	layout   uint8
	compact  []byte
	addr     uint64 // contiguous data, or the chunk index
	size     uint64 // contiguous data size
	chunk    []uint64
	index    uint8
	idxFlags uint8
	single   struct {
		size uint64
		mask uint32
	}
	filters []filter
	fill    []byte // the fill value of data never written (nil: zeros)
}

type filter struct {
	id    uint16
	name  string
	flags uint16
	data  []uint32
}

func (r *reader) parseDataset(o *object) (*dataset, error) {
	if o.find(msgExternal) != nil {
		return nil, errors.New("refused: the dataset's data is in external files (HDF5 external storage)")
	}
	ds := &dataset{}
	m := o.find(msgDatatype)
	if m == nil {
		return nil, errors.New("dataset without a datatype")
	}
	if m.flags&0x02 != 0 {
		return nil, errors.New("unsupported element type (a committed, shared datatype)")
	}
	t, _, err := parseDatatype(m.data, 0)
	if err != nil {
		return nil, fmt.Errorf("unsupported element type: %v", err)
	}
	ds.dtype, ds.dt = t, t.dtype()
	m = o.find(msgDataspace)
	if m == nil {
		return nil, errors.New("dataset without a dataspace")
	}
	if ds.space, err = r.parseDataspace(m.data); err != nil {
		return nil, err
	}
	m = o.find(msgLayout)
	if m == nil {
		return nil, errors.New("dataset without a data layout")
	}
	if err := r.parseLayout(ds, m.data); err != nil {
		return nil, fmt.Errorf("data layout: %v", err)
	}
	if m := o.find(msgFilters); m != nil {
		if ds.filters, err = r.parseFilters(m.data); err != nil {
			return nil, fmt.Errorf("filter pipeline: %v", err)
		}
	}
	if ds.fill, err = parseFill(o); err != nil {
		return nil, fmt.Errorf("fill value: %v", err)
	}
	return ds, nil
}

// parseFill returns the user-defined fill value of a dataset, if any and
// not all zeros: what h5py returns for data never written.
func parseFill(o *object) ([]byte, error) {
	var value []byte
	if m := o.find(msgFill); m != nil {
		d := &dec{b: m.data}
		switch v := d.u8(); v {
		case 1, 2:
			d.skip(2) // allocation and write times
			defined := d.u8()
			if v == 1 || defined != 0 {
				value = d.bytes(int(d.u32()))
			}
		case 3:
			if d.u8()&0x20 != 0 {
				value = d.bytes(int(d.u32()))
			}
		default:
			if d.err == nil {
				return nil, fmt.Errorf("fill value message version %d", v)
			}
		}
		if d.err != nil {
			return nil, d.err
		}
	} else if m := o.find(msgFillOld); m != nil {
		d := &dec{b: m.data}
		value = d.bytes(int(d.u32()))
		if d.err != nil {
			return nil, d.err
		}
	}
	for _, c := range value {
		if c != 0 {
			return value, nil
		}
	}
	return nil, nil
}

// prefill sets out to the fill value where data may be missing.
func (ds *dataset) prefill(out []byte) error {
	if ds.fill == nil {
		return nil
	}
	if len(ds.fill) != ds.dt.Size() {
		return fmt.Errorf("fill value of %d bytes for %d-byte elements", len(ds.fill), ds.dt.Size())
	}
	for i := 0; i < len(out); i += len(ds.fill) {
		copy(out[i:], ds.fill)
	}
	return nil
}

func (r *reader) parseLayout(ds *dataset, b []byte) error {
	d := r.dec(b)
	version := d.u8()
	if d.err == nil && (version < 3 || version > 4) {
		return fmt.Errorf("unsupported layout message version %d", version)
	}
	ds.layout = d.u8()
	switch ds.layout {
	case layoutCompact:
		ds.compact = d.bytes(int(d.u16()))
	case layoutContiguous:
		ds.addr, ds.size = d.addr(), d.length()
	case layoutChunked:
		if version == 3 {
			n := int(d.u8())
			ds.addr = d.addr()
			if n < 2 || n > MaxRank+1 {
				return fmt.Errorf("chunk rank %d", n-1)
			}
			ds.chunk = make([]uint64, n)
			for i := range ds.chunk {
				ds.chunk[i] = uint64(d.u32())
			}
			ds.index = indexBTree1
		} else {
			ds.idxFlags = d.u8()
			// Bit 0 stores partial edge chunks unfiltered, which the
			// reader does not implement; bit 1 is the single chunk's
			// filtered size and mask; other bits are undefined.
			if ds.idxFlags&^0x02 != 0 {
				return fmt.Errorf("unsupported chunked layout flags %#x", ds.idxFlags)
			}
			n := int(d.u8())
			w := int(d.u8())
			if n < 2 || n > MaxRank+1 || w < 1 || w > 8 {
				return fmt.Errorf("chunk rank %d, dimension width %d", n-1, w)
			}
			ds.chunk = make([]uint64, n)
			for i := range ds.chunk {
				ds.chunk[i] = d.uvar(w)
			}
			ds.index = d.u8()
			switch ds.index {
			case indexSingle:
				if ds.idxFlags&0x02 != 0 {
					ds.single.size = d.length()
					ds.single.mask = d.u32()
				}
			case indexImplicit:
			case indexFixedArray:
				d.skip(1)
			case indexExtensible:
				d.skip(5)
			case indexBTree2:
				d.skip(6)
			default:
				if d.err == nil {
					return fmt.Errorf("unknown chunk index type %d", ds.index)
				}
			}
			ds.addr = d.addr()
		}
	case layoutVirtual:
		return errors.New("refused: a virtual dataset (its data comes from other datasets or files)")
	default:
		return fmt.Errorf("unknown layout class %d", ds.layout)
	}
	return d.err
}

func (r *reader) parseFilters(b []byte) ([]filter, error) {
	d := r.dec(b)
	version := d.u8()
	n := int(d.u8())
	if version == 1 {
		d.skip(6)
	} else if version != 2 && d.err == nil {
		return nil, fmt.Errorf("version %d", version)
	}
	if n > 32 {
		return nil, fmt.Errorf("%d filters", n)
	}
	var fs []filter
	for i := 0; i < n; i++ {
		var f filter
		f.id = d.u16()
		nameLen := 0
		if version == 1 || f.id >= 256 {
			nameLen = int(d.u16())
		}
		f.flags = d.u16()
		nd := int(d.u16())
		if nameLen > 0 {
			if version == 1 {
				nameLen = (nameLen + 7) &^ 7
			}
			f.name = string(bytes.TrimRight(d.bytes(nameLen), "\x00"))
		}
		if nd > 256 {
			return nil, fmt.Errorf("filter with %d parameters", nd)
		}
		for j := 0; j < nd; j++ {
			f.data = append(f.data, d.u32())
		}
		if version == 1 && nd%2 == 1 {
			d.skip(4)
		}
		if d.err != nil {
			return nil, d.err
		}
		switch f.id {
		case 1, 2, 3:
		default:
			name := f.name
			if name == "" {
				name = map[uint16]string{4: "szip", 5: "nbit", 6: "scaleoffset", 32000: "lzf", 32001: "blosc", 32004: "lz4", 32015: "zstd"}[f.id]
			}
			return nil, fmt.Errorf("unsupported filter %d (%s)", f.id, name)
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// readData reads a dataset's elements into out (len = elements*size).
func (r *reader) readData(ds *dataset, out []byte) error {
	switch ds.layout {
	case layoutCompact:
		if len(ds.compact) < len(out) {
			return fmt.Errorf("compact data of %d bytes for %d expected", len(ds.compact), len(out))
		}
		copy(out, ds.compact)
		return nil
	case layoutContiguous:
		if ds.addr == undef {
			return ds.prefill(out) // never written
		}
		if ds.size < uint64(len(out)) {
			return fmt.Errorf("contiguous data of %d bytes for %d expected", ds.size, len(out))
		}
		off, err := r.abs(ds.addr, uint64(len(out)))
		if err != nil {
			return err
		}
		if _, err := r.r.ReadAt(out, off); err != nil && !(err == io.EOF) {
			return err
		}
		return nil
	case layoutChunked:
		if err := ds.prefill(out); err != nil {
			return err
		}
		return r.readChunked(ds, out)
	}
	return fmt.Errorf("unknown layout class %d", ds.layout)
}

type chunkInfo struct {
	offset []uint64 // element offsets of the chunk's first element
	addr   uint64
	size   uint64 // stored (filtered) size
	mask   uint32
}

func (r *reader) readChunked(ds *dataset, out []byte) error {
	rank := len(ds.space.shape)
	if len(ds.chunk) != rank+1 {
		return fmt.Errorf("chunks of rank %d for a dataset of rank %d", len(ds.chunk)-1, rank)
	}
	elem := uint64(ds.dt.Size())
	if ds.chunk[rank] != elem {
		return fmt.Errorf("chunk element size %d for %d-byte elements", ds.chunk[rank], elem)
	}
	cbytes := elem
	for _, c := range ds.chunk[:rank] {
		if c == 0 {
			return errors.New("chunk dimension of 0")
		}
		if cbytes > (1<<62)/c {
			return errors.New("chunk too large")
		}
		cbytes *= c
	}
	if limit := max(uint64(len(out)), minChunkCap); cbytes > limit {
		return fmt.Errorf("chunks of %d bytes, more than the limit of %d bytes for this dataset", cbytes, limit)
	}
	// The chunk grid: chunks along each dimension.
	grid := make([]uint64, rank)
	gdims := make([]uint64, rank) // dims the index is built over
	for i, n := range ds.space.shape {
		gdims[i] = uint64(n)
		if ds.space.maxDims != nil && (ds.index == indexFixedArray || ds.index == indexImplicit) && ds.space.maxDims[i] != undef {
			gdims[i] = max(gdims[i], ds.space.maxDims[i])
		}
		grid[i] = (gdims[i] + ds.chunk[i] - 1) / ds.chunk[i]
	}
	buf := make([]byte, cbytes)
	seen := map[string]bool{}
	put := func(c chunkInfo) error {
		if len(c.offset) < rank {
			return errors.New("chunk key of the wrong rank")
		}
		for i := 0; i < rank; i++ {
			if c.offset[i]%ds.chunk[i] != 0 {
				return fmt.Errorf("chunk offset %v not on the chunk grid", c.offset[:rank])
			}
			if c.offset[i] >= uint64(ds.space.shape[i]) {
				return nil // beyond the current extent
			}
		}
		if c.addr == undef {
			return nil
		}
		key := fmt.Sprint(c.offset[:rank])
		if seen[key] {
			return fmt.Errorf("chunk %v listed twice", c.offset[:rank])
		}
		seen[key] = true
		if err := r.readChunk(ds, c, buf); err != nil {
			return fmt.Errorf("chunk %v: %v", c.offset[:rank], err)
		}
		copyChunk(out, buf, ds.space.shape, ds.chunk[:rank], c.offset[:rank], elem)
		return nil
	}
	nchunks := uint64(1)
	for _, g := range grid {
		if g != 0 && nchunks > (1<<62)/g {
			return errors.New("too many chunks")
		}
		nchunks *= g
	}
	scaled := func(i uint64) []uint64 {
		off := make([]uint64, rank)
		for d := rank - 1; d >= 0; d-- {
			off[d] = (i % grid[d]) * ds.chunk[d]
			i /= grid[d]
		}
		return off
	}
	switch ds.index {
	case indexBTree1:
		keySize := 8 + 8*(rank+1)
		return r.walkBTree1(ds.addr, 1, keySize, func(key []byte, child uint64) error {
			kd := r.dec(key)
			size, mask := kd.u32(), kd.u32()
			off := make([]uint64, rank+1)
			for i := range off {
				off[i] = kd.uvar(8)
			}
			return put(chunkInfo{offset: off, addr: child, size: uint64(size), mask: mask})
		})
	case indexSingle:
		size := cbytes
		if ds.idxFlags&0x02 != 0 {
			size = ds.single.size
		}
		return put(chunkInfo{offset: make([]uint64, rank), addr: ds.addr, size: size, mask: ds.single.mask})
	case indexImplicit:
		if len(ds.filters) > 0 {
			return errors.New("implicit chunk index with filters")
		}
		if ds.addr == undef {
			return nil
		}
		if nchunks > uint64(r.size)/cbytes+1 {
			return errors.New("implicit chunk index larger than the file")
		}
		for i := uint64(0); i < nchunks; i++ {
			if err := put(chunkInfo{offset: scaled(i), addr: ds.addr + i*cbytes, size: cbytes}); err != nil {
				return err
			}
		}
		return nil
	case indexFixedArray:
		if ds.addr == undef {
			return nil
		}
		return r.fixedArray(ds, nchunks, func(i uint64, c chunkInfo) error {
			c.offset = scaled(i)
			if c.size == 0 {
				c.size = cbytes
			}
			return put(c)
		})
	case indexBTree2:
		if ds.addr == undef {
			return nil
		}
		filtered := len(ds.filters) > 0
		typ := uint8(10)
		if filtered {
			typ = 11
		}
		sizeLen := chunkSizeLen(cbytes)
		return r.walkBTree2(ds.addr, typ, func(rec []byte) error {
			d := r.dec(rec)
			c := chunkInfo{addr: d.addr(), size: cbytes}
			if filtered {
				c.size = d.uvar(sizeLen)
				c.mask = d.u32()
			}
			c.offset = make([]uint64, rank)
			for i := range c.offset {
				s := d.uvar(8)
				if s > grid[i] {
					return errors.New("chunk offset beyond the dataset")
				}
				c.offset[i] = s * ds.chunk[i]
			}
			if d.err != nil {
				return d.err
			}
			return put(c)
		})
	case indexExtensible:
		if ds.addr == undef {
			return nil
		}
		// Entries run over the grid with the unlimited dimension first.
		unlim := -1
		for i, m := range ds.space.maxDims {
			if m == undef {
				unlim = i
			}
		}
		if unlim < 0 {
			return errors.New("extensible array index without an unlimited dimension")
		}
		order := append([]int{unlim}, make([]int, 0, rank-1)...)
		egrid := make([]uint64, rank)
		for i := 0; i < rank; i++ {
			if i != unlim {
				order = append(order, i)
			}
			egrid[i] = grid[i]
			if i != unlim && ds.space.maxDims[i] != undef {
				egrid[i] = max(grid[i], (ds.space.maxDims[i]+ds.chunk[i]-1)/ds.chunk[i])
			}
		}
		total := uint64(1)
		for _, g := range egrid {
			if g != 0 && total > (1<<62)/g {
				return errors.New("too many chunks")
			}
			total *= g
		}
		return r.extensibleArray(ds, total, func(i uint64, c chunkInfo) error {
			c.offset = make([]uint64, rank)
			for k := rank - 1; k >= 0; k-- {
				dim := order[k]
				c.offset[dim] = (i % egrid[dim]) * ds.chunk[dim]
				i /= egrid[dim]
			}
			if c.size == 0 {
				c.size = cbytes
			}
			return put(c)
		})
	}
	return fmt.Errorf("unknown chunk index type %d", ds.index)
}

// chunkSizeLen is the width of a filtered chunk's size in index records.
func chunkSizeLen(cbytes uint64) int {
	n := 1 + (bits.Len64(cbytes)-1+8)/8
	return min(n, 8)
}

// fixedArray visits the entries of a fixed array chunk index.
func (r *reader) fixedArray(ds *dataset, nchunks uint64, fn func(uint64, chunkInfo) error) error {
	hb, err := r.read(ds.addr, uint64(4+1+1+1+1+r.l+r.o+4))
	if err != nil {
		return fmt.Errorf("fixed array header: %v", err)
	}
	if err := checksum(hb, "fixed array header"); err != nil {
		return err
	}
	d := r.dec(hb)
	d.sig("FAHD")
	d.skip(1)
	client := d.u8()
	entry := int(d.u8())
	pageBits := int(d.u8())
	n := d.length()
	dblk := d.addr()
	if d.err != nil {
		return fmt.Errorf("fixed array header: %v", d.err)
	}
	filtered := client == 1
	if n != nchunks {
		return fmt.Errorf("fixed array of %d entries for %d chunks", n, nchunks)
	}
	minEntry := r.o
	if filtered {
		minEntry += 1 + 4
	}
	if entry < minEntry || entry > r.o+8+4 || pageBits > 32 || n > uint64(r.size) {
		return fmt.Errorf("fixed array with %d-byte entries, %d page bits", entry, pageBits)
	}
	prefix := uint64(4 + 1 + 1 + r.o)
	decode := func(i uint64, b []byte) error {
		c, err := r.arrayEntry(b, entry, filtered)
		if err != nil {
			return err
		}
		return fn(i, c)
	}
	pageSize := uint64(1) << pageBits
	if n <= pageSize {
		b, err := r.read(dblk, prefix+n*uint64(entry)+4)
		if err != nil {
			return fmt.Errorf("fixed array data block: %v", err)
		}
		if err := checksum(b, "fixed array data block"); err != nil {
			return err
		}
		if string(b[:4]) != "FADB" {
			return errors.New("fixed array data block without its FADB signature")
		}
		for i := uint64(0); i < n; i++ {
			if err := decode(i, b[prefix+i*uint64(entry):]); err != nil {
				return err
			}
		}
		return nil
	}
	npages := (n + pageSize - 1) / pageSize
	bitmap := (npages + 7) / 8
	b, err := r.read(dblk, prefix+bitmap+4)
	if err != nil {
		return fmt.Errorf("fixed array data block: %v", err)
	}
	if err := checksum(b, "fixed array data block"); err != nil {
		return err
	}
	if string(b[:4]) != "FADB" {
		return errors.New("fixed array data block without its FADB signature")
	}
	at := dblk + uint64(len(b))
	for p := uint64(0); p < npages; p++ {
		cnt := min(pageSize, n-p*pageSize)
		size := cnt*uint64(entry) + 4
		if b[prefix+p/8]&(0x80>>(p%8)) == 0 {
			at += size
			continue
		}
		pb, err := r.read(at, size)
		if err != nil {
			return fmt.Errorf("fixed array page: %v", err)
		}
		if err := checksum(pb, "fixed array page"); err != nil {
			return err
		}
		for i := uint64(0); i < cnt; i++ {
			if err := decode(p*pageSize+i, pb[i*uint64(entry):]); err != nil {
				return err
			}
		}
		at += size
	}
	return nil
}

// arrayEntry decodes one entry of a fixed or extensible array chunk
// index: the chunk's address, then for filtered chunks its stored size
// (entry-o-4 bytes) and filter mask.
func (r *reader) arrayEntry(b []byte, entry int, filtered bool) (chunkInfo, error) {
	d := r.dec(b)
	c := chunkInfo{addr: d.addr()}
	if filtered {
		c.size = d.uvar(entry - r.o - 4)
		c.mask = d.u32()
	}
	return c, d.err
}

// readChunk reads one chunk and undoes its filters into buf (the chunk's
// full uncompressed size).
func (r *reader) readChunk(ds *dataset, c chunkInfo, buf []byte) error {
	if len(ds.filters) == 0 {
		if c.size < uint64(len(buf)) {
			return fmt.Errorf("chunk of %d bytes, want %d", c.size, len(buf))
		}
		off, err := r.abs(c.addr, uint64(len(buf)))
		if err != nil {
			return err
		}
		_, err = r.r.ReadAt(buf, off)
		if err == io.EOF {
			err = nil
		}
		return err
	}
	// The filtered size is bounded by the uncompressed size plus what
	// the filters add (a fletcher32 checksum), or zlib's worst case.
	if c.size > uint64(len(buf))+uint64(len(buf))/8+1024 {
		return fmt.Errorf("filtered chunk of %d bytes for %d uncompressed", c.size, len(buf))
	}
	data, err := r.read(c.addr, c.size)
	if err != nil {
		return err
	}
	for i := len(ds.filters) - 1; i >= 0; i-- {
		f := ds.filters[i]
		if c.mask&(1<<i) != 0 {
			continue // the filter was skipped when writing
		}
		switch f.id {
		case 1:
			zr, err := zlib.NewReader(bytes.NewReader(data))
			if err != nil {
				return fmt.Errorf("deflate: %v", err)
			}
			out := make([]byte, 0, len(buf)+8)
			w := bytes.NewBuffer(out)
			n, err := io.Copy(w, io.LimitReader(zr, int64(len(buf))+8))
			if err != nil {
				return fmt.Errorf("deflate: %v", err)
			}
			if n > int64(len(buf))+4 {
				return errors.New("deflate: chunk inflates beyond its size")
			}
			data = w.Bytes()
		case 2:
			size := int(ds.dt.Size())
			if len(f.data) > 0 {
				size = int(f.data[0])
			}
			data = unshuffle(data, size)
		case 3:
			if len(data) < 4 {
				return errors.New("fletcher32: chunk shorter than its checksum")
			}
			if err := checkFletcher32(data); err != nil {
				return err
			}
			data = data[:len(data)-4]
		}
	}
	if len(data) != len(buf) {
		return fmt.Errorf("chunk unfilters to %d bytes, want %d", len(data), len(buf))
	}
	copy(buf, data)
	return nil
}

func unshuffle(b []byte, size int) []byte {
	if size <= 1 || len(b) < size {
		return b
	}
	n := len(b) / size
	out := make([]byte, len(b))
	for j := 0; j < size; j++ {
		src := b[j*n : (j+1)*n]
		for i, v := range src {
			out[i*size+j] = v
		}
	}
	copy(out[n*size:], b[n*size:])
	return out
}

// checkFletcher32 verifies HDF5's Fletcher-32 checksum (16-bit words taken
// big-endian, an odd last byte as the high byte), stored after the data.
func checkFletcher32(b []byte) error {
	data := b[:len(b)-4]
	var s1, s2 uint32
	for len(data) > 0 {
		n := min(len(data)/2, 360)
		if n == 0 {
			break
		}
		for i := 0; i < n; i++ {
			s1 += uint32(data[2*i])<<8 | uint32(data[2*i+1])
			s2 += s1
		}
		data = data[2*n:]
		s1 = (s1 & 0xffff) + (s1 >> 16)
		s2 = (s2 & 0xffff) + (s2 >> 16)
	}
	if len(data) == 1 {
		s1 += uint32(data[0]) << 8
		s2 += s1
		s1 = (s1 & 0xffff) + (s1 >> 16)
		s2 = (s2 & 0xffff) + (s2 >> 16)
	}
	s1 = (s1 & 0xffff) + (s1 >> 16)
	s2 = (s2 & 0xffff) + (s2 >> 16)
	sum := s2<<16 | s1
	stored := binary.LittleEndian.Uint32(b[len(b)-4:])
	if sum != stored && sum != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return errors.New("fletcher32 checksum mismatch (corrupt chunk)")
	}
	return nil
}

// copyChunk copies the part of a chunk inside the dataset into out.
func copyChunk(out, chunk []byte, shape []int64, cdims, off []uint64, elem uint64) {
	rank := len(shape)
	ext := make([]uint64, rank) // extent of the chunk inside the dataset
	for i := range ext {
		ext[i] = min(cdims[i], uint64(shape[i])-off[i])
	}
	row := ext[rank-1] * elem
	idx := make([]uint64, rank) // position inside the chunk, last dim fixed at 0
	for {
		var src, dst uint64
		for i := 0; i < rank; i++ {
			src = src*cdims[i] + idx[i]
			dst = dst*uint64(shape[i]) + off[i] + idx[i]
		}
		copy(out[dst*elem:dst*elem+row], chunk[src*elem:src*elem+row])
		i := rank - 2
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < ext[i] {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return
		}
	}
}
