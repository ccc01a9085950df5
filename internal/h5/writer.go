package h5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
)

// The writer streams each dataset's data to the file as it is written and
// lays out all metadata after it at Close: libhdf5's default format
// (superblock 0, v1 object headers, symbol-table groups, contiguous
// datasets), which every HDF5 reader since 1.6 reads.

const (
	superblockSize = 96
	groupLeafK     = 4  // entries per symbol table node: 2K
	groupInternalK = 16 // children per group B-tree node: 2K
	// maxMessage is the largest object header message a v1 header holds
	// (its size field is 16 bits, messages are 8-byte aligned).
	maxMessage = 65528
	// gheapMin is libhdf5's smallest global heap collection.
	gheapMin = 4096
)

type writer struct {
	f    *os.File
	eof  uint64
	root *wnode
}

// wnode is a group or dataset being written.
type wnode struct {
	name     string
	group    bool
	children map[string]*wnode
	attrs    []*wattr
	// datasets
	dtype DType
	shape []int64
	addr  uint64
	size  uint64
}

type wattr struct {
	name   string
	values []string
	scalar bool
	heap   []heapRef // variable-length strings: where each value went
}

type heapRef struct {
	coll uint64
	idx  uint32
}

func newWriter(f *os.File) *writer {
	return &writer{f: f, eof: superblockSize, root: &wnode{group: true, children: map[string]*wnode{}}}
}

func (n *wnode) lookup(parts []string) *wnode {
	for _, p := range parts {
		if n == nil || !n.group {
			return nil
		}
		n = n.children[p]
	}
	return n
}

func (n *wnode) mkdirs(parts []string) (*wnode, error) {
	for _, p := range parts {
		c := n.children[p]
		if c == nil {
			if len(n.children) >= MaxMembers {
				return nil, fmt.Errorf("more than %d members", MaxMembers)
			}
			c = &wnode{name: p, group: true, children: map[string]*wnode{}}
			n.children[p] = c
		} else if !c.group {
			return nil, fmt.Errorf("%q is a dataset", p)
		}
		n = c
	}
	return n, nil
}

func (n *wnode) members() []Member {
	ms := make([]Member, 0, len(n.children))
	for name, c := range n.children {
		k := DatasetKind
		if c.group {
			k = GroupKind
		}
		ms = append(ms, Member{Name: name, Kind: k})
	}
	return ms
}

func (n *wnode) attr(name string) *wattr {
	for _, a := range n.attrs {
		if a.name == name {
			return a
		}
	}
	return nil
}

func (n *wnode) setAttr(name string, values []string, scalar bool) error {
	a := &wattr{name: name, values: values, scalar: scalar}
	if _, err := a.message(); err != nil {
		return err
	}
	for i, old := range n.attrs {
		if old.name == name {
			n.attrs[i] = a
			return nil
		}
	}
	n.attrs = append(n.attrs, a)
	return nil
}

// dataset finds the dataset at name below n, for Stat and Read of a file
// being written.
func (n *wnode) dataset(g *Group, name string) (*wnode, string, error) {
	parts, err := splitPath(name)
	if err != nil {
		return nil, g.path, g.errf(g.path, "%v", err)
	}
	full := g.child(name)
	c := n.lookup(parts)
	if c == nil {
		return nil, full, g.notFound(full, "dataset")
	}
	if c.group {
		return nil, full, g.errf(full, "not a dataset")
	}
	return c, full, nil
}

func (w *writer) writeDataset(parent *wnode, parts []string, dtype DType, shape []int64, data []byte) error {
	dir, err := parent.mkdirs(parts[:len(parts)-1])
	if err != nil {
		return err
	}
	name := parts[len(parts)-1]
	if dir.children[name] != nil {
		return errors.New("already exists")
	}
	n := &wnode{name: name, dtype: dtype, shape: append([]int64{}, shape...), addr: undef, size: uint64(len(data))}
	if len(data) > 0 {
		w.eof = align8(w.eof)
		if _, err := w.f.WriteAt(data, int64(w.eof)); err != nil {
			return fmt.Errorf("cannot write data: %v", err)
		}
		n.addr = w.eof
		w.eof += uint64(len(data))
	}
	dir.children[name] = n
	return nil
}

func (w *writer) readBack(n *wnode, data []byte) error {
	if n.addr == undef {
		clear(data)
		return nil
	}
	_, err := w.f.ReadAt(data, int64(n.addr))
	return err
}

func align8(x uint64) uint64 { return (x + 7) &^ 7 }

// meta is the metadata being laid out after the data.
type meta struct {
	base uint64
	b    []byte
}

// put appends b 8-byte aligned and returns its address.
func (m *meta) put(b []byte) uint64 {
	for len(m.b)%8 != 0 {
		m.b = append(m.b, 0)
	}
	a := m.base + uint64(len(m.b))
	m.b = append(m.b, b...)
	return a
}

func (m *meta) next() uint64 { return m.base + align8(uint64(len(m.b))) }

type enc struct{ b []byte }

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) raw(b []byte) { e.b = append(e.b, b...) }
func (e *enc) pad8() {
	for len(e.b)%8 != 0 {
		e.b = append(e.b, 0)
	}
}

// finish lays out the metadata after the data and writes the superblock.
func (w *writer) finish() error {
	m := &meta{base: align8(w.eof)}
	if err := w.globalHeaps(m); err != nil {
		return err
	}
	root, btree, heap, err := w.emit(m, w.root)
	if err != nil {
		return err
	}
	if _, err := w.f.WriteAt(m.b, int64(m.base)); err != nil {
		return err
	}
	eof := m.base + uint64(len(m.b))
	var e enc
	e.raw([]byte(signature))
	e.raw([]byte{0, 0, 0, 0, 0, 8, 8, 0})
	e.u16(groupLeafK)
	e.u16(groupInternalK)
	e.u32(0)
	e.u64(0)     // base address
	e.u64(undef) // free space
	e.u64(eof)
	e.u64(undef) // driver info
	e.u64(0)     // root link name offset
	e.u64(root)
	e.u32(1) // cache type: a group, its B-tree and heap follow
	e.u32(0)
	e.u64(btree)
	e.u64(heap)
	if _, err := w.f.WriteAt(e.b, 0); err != nil {
		return err
	}
	return w.f.Sync()
}

// vlen reports whether a is written as variable-length strings.
func (a *wattr) vlen() bool {
	if a.scalar {
		return true
	}
	if len(a.values) == 0 {
		return false
	}
	return a.fixedSize() > maxMessage
}

func (a *wattr) fixedSize() int {
	size := 1
	for _, v := range a.values {
		size = max(size, len(v))
	}
	return 16 + len(a.name) + 8 + 16 + 16 + len(a.values)*size
}

// globalHeaps stores every variable-length string in global heap
// collections, before the headers that refer to them.
func (w *writer) globalHeaps(m *meta) error {
	var coll enc
	var refs []*heapRef
	var count int
	flush := func() {
		if count == 0 {
			return
		}
		size := 16 + uint64(len(coll.b)) + 16 // header, objects, free space
		if size < gheapMin {
			size = gheapMin
		}
		var h enc
		h.raw([]byte("GCOL"))
		h.raw([]byte{1, 0, 0, 0})
		h.u64(size)
		h.raw(coll.b)
		// The free space, as an object of index 0 spanning the rest.
		free := size - uint64(len(h.b))
		h.u16(0)
		h.u16(0)
		h.u32(0)
		h.u64(free)
		h.raw(make([]byte, free-16))
		addr := m.put(h.b)
		for _, r := range refs {
			r.coll = addr
		}
		coll, refs, count = enc{}, nil, 0
	}
	var walk func(n *wnode)
	walk = func(n *wnode) {
		for _, a := range n.attrs {
			if !a.vlen() {
				continue
			}
			a.heap = make([]heapRef, len(a.values))
			for i, v := range a.values {
				if count == 0xFFFF || len(coll.b) > 1<<24 {
					flush()
				}
				count++
				coll.u16(uint16(count))
				coll.u16(0)
				coll.u32(0)
				coll.u64(uint64(len(v)))
				coll.raw([]byte(v))
				coll.pad8()
				a.heap[i].idx = uint32(count)
				refs = append(refs, &a.heap[i])
			}
		}
		for _, name := range sortedNames(n) {
			walk(n.children[name])
		}
	}
	walk(w.root)
	flush()
	return nil
}

func sortedNames(n *wnode) []string {
	names := make([]string, 0, len(n.children))
	for k := range n.children {
		names = append(names, k)
	}
	sort.Strings(names) // libhdf5 orders symbol table entries by strcmp
	return names
}

type wmsg struct {
	typ  uint16
	data []byte
}

// header encodes a v1 object header.
func header(msgs []wmsg) ([]byte, error) {
	var body enc
	for _, m := range msgs {
		size := align8(uint64(len(m.data)))
		if size > maxMessage {
			return nil, fmt.Errorf("header message of %d bytes, more than the %d a v1 object header holds", size, maxMessage)
		}
		body.u16(m.typ)
		body.u16(uint16(size))
		body.raw([]byte{0, 0, 0, 0})
		body.raw(m.data)
		body.pad8()
	}
	var e enc
	e.u8(1)
	e.u8(0)
	e.u16(uint16(len(msgs)))
	e.u32(1)
	e.u32(uint32(len(body.b)))
	e.u32(0)
	e.raw(body.b)
	return e.b, nil
}

func dataspaceMsg(shape []int64) []byte {
	var e enc
	e.raw([]byte{1, byte(len(shape)), 0, 0, 0, 0, 0, 0})
	for _, d := range shape {
		e.u64(uint64(d))
	}
	return e.b
}

func datatypeMsg(dt DType) []byte {
	var e enc
	switch dt {
	case Float16, Float32, Float64:
		e.u8(0x11)
		switch dt {
		case Float16:
			e.raw([]byte{0x20, 15, 0})
			e.u32(2)
			e.raw([]byte{0, 0, 16, 0, 10, 5, 0, 10})
			e.u32(15)
		case Float32:
			e.raw([]byte{0x20, 31, 0})
			e.u32(4)
			e.raw([]byte{0, 0, 32, 0, 23, 8, 0, 23})
			e.u32(127)
		default:
			e.raw([]byte{0x20, 63, 0})
			e.u32(8)
			e.raw([]byte{0, 0, 64, 0, 52, 11, 0, 52})
			e.u32(1023)
		}
	default:
		e.u8(0x10)
		var bits byte
		if dt == Int8 || dt == Int16 || dt == Int32 || dt == Int64 {
			bits = 0x08
		}
		e.raw([]byte{bits, 0, 0})
		e.u32(uint32(dt.Size()))
		e.u16(0)
		e.u16(uint16(8 * dt.Size()))
	}
	return e.b
}

// message encodes the attribute message (v1) of a; heap references must
// be set for variable-length strings.
func (a *wattr) message() ([]byte, error) {
	var dt, ds, data []byte
	switch {
	case a.vlen():
		var t enc
		t.u8(0x19)
		t.raw([]byte{0x01, 0x01, 0}) // string, NUL-terminated, UTF-8
		t.u32(uint32(4 + 8 + 4))
		t.u8(0x10) // base type: unsigned 8-bit integer
		t.raw([]byte{0, 0, 0})
		t.u32(1)
		t.u16(0)
		t.u16(8)
		dt = t.b
		if a.scalar {
			ds = dataspaceMsg(nil)
		} else {
			ds = dataspaceMsg([]int64{int64(len(a.values))})
		}
		var d enc
		for i, v := range a.values {
			d.u32(uint32(len(v)))
			var ref heapRef
			if a.heap != nil {
				ref = a.heap[i]
			}
			d.u64(ref.coll)
			d.u32(ref.idx)
		}
		data = d.b
		if len(data) > maxMessage {
			return nil, fmt.Errorf("attribute of %d strings is too large for an object header (split it, as Keras does)", len(a.values))
		}
	case len(a.values) == 0:
		dt = datatypeMsg(Float64)
		ds = dataspaceMsg([]int64{0})
	default:
		size := 1
		for _, v := range a.values {
			size = max(size, len(v))
		}
		var t enc
		t.u8(0x13)
		t.raw([]byte{0x01, 0, 0}) // NUL-padded ASCII, as numpy's bytes
		t.u32(uint32(size))
		dt = t.b
		ds = dataspaceMsg([]int64{int64(len(a.values))})
		data = make([]byte, len(a.values)*size)
		for i, v := range a.values {
			copy(data[i*size:], v)
		}
	}
	if len(a.name)+1 > math.MaxUint16 {
		return nil, errors.New("attribute name too long")
	}
	var e enc
	e.u8(1)
	e.u8(0)
	e.u16(uint16(len(a.name) + 1))
	e.u16(uint16(len(dt)))
	e.u16(uint16(len(ds)))
	e.raw([]byte(a.name))
	e.u8(0)
	e.pad8()
	e.raw(dt)
	e.pad8()
	e.raw(ds)
	e.pad8()
	e.raw(data)
	if len(e.b) > maxMessage {
		return nil, fmt.Errorf("attribute of %d bytes is too large for an object header", len(e.b))
	}
	return e.b, nil
}

// emit lays out n (children first) and returns its object header address
// and, for groups, its B-tree and local heap addresses.
func (w *writer) emit(m *meta, n *wnode) (addr, btree, heap uint64, err error) {
	var msgs []wmsg
	if n.group {
		names := sortedNames(n)
		addrs := make([]uint64, len(names))
		btrees := make([]uint64, len(names))
		heaps := make([]uint64, len(names))
		for i, name := range names {
			if addrs[i], btrees[i], heaps[i], err = w.emit(m, n.children[name]); err != nil {
				return 0, 0, 0, err
			}
		}
		// The local heap: "" at offset 0, then the names.
		var data enc
		data.raw(make([]byte, 8))
		offs := make([]uint64, len(names))
		for i, name := range names {
			offs[i] = uint64(len(data.b))
			data.raw([]byte(name))
			data.u8(0)
			data.pad8()
		}
		var h enc
		h.raw([]byte("HEAP"))
		h.raw([]byte{0, 0, 0, 0})
		h.u64(uint64(len(data.b)))
		h.u64(1) // no free block (libhdf5's H5HL_FREE_NULL)
		h.u64(m.next() + 32)
		h.raw(data.b)
		heap = m.put(h.b)
		// Symbol table nodes of up to 2K entries, allocated full size.
		const snodSize = 8 + 2*groupLeafK*40
		var children, keys []uint64
		keys = append(keys, 0)
		for i := 0; i < len(names); i += 2 * groupLeafK {
			end := min(i+2*groupLeafK, len(names))
			var s enc
			s.raw([]byte("SNOD"))
			s.u8(1)
			s.u8(0)
			s.u16(uint16(end - i))
			for j := i; j < end; j++ {
				s.u64(offs[j])
				s.u64(addrs[j])
				if n.children[names[j]].group {
					s.u32(1)
					s.u32(0)
					s.u64(btrees[j])
					s.u64(heaps[j])
				} else {
					s.u32(0)
					s.u32(0)
					s.u64(0)
					s.u64(0)
				}
			}
			s.raw(make([]byte, snodSize-len(s.b)))
			children = append(children, m.put(s.b))
			keys = append(keys, offs[end-1])
		}
		btree = w.groupBTree(m, children, keys)
		var st enc
		st.u64(btree)
		st.u64(heap)
		msgs = append(msgs, wmsg{msgSymbolTable, st.b})
	} else {
		var fill enc
		fill.raw([]byte{2, 2, 2, 0}) // version 2: late allocation, fill if set, undefined
		var layout enc
		layout.raw([]byte{3, layoutContiguous})
		layout.u64(n.addr)
		layout.u64(n.size)
		msgs = append(msgs,
			wmsg{msgDataspace, dataspaceMsg(n.shape)},
			wmsg{msgDatatype, datatypeMsg(n.dtype)},
			wmsg{msgFill, fill.b},
			wmsg{msgLayout, layout.b})
	}
	for _, a := range n.attrs {
		b, err := a.message()
		if err != nil {
			return 0, 0, 0, fmt.Errorf("attribute %q: %v", a.name, err)
		}
		msgs = append(msgs, wmsg{msgAttribute, b})
	}
	hb, err := header(msgs)
	if err != nil {
		return 0, 0, 0, err
	}
	return m.put(hb), btree, heap, nil
}

// groupBTree builds the v1 B-tree over symbol table nodes, level by level,
// and returns its root. keys has one more entry than children: key i+1 is
// the name offset of the last entry of child i.
func (w *writer) groupBTree(m *meta, children, keys []uint64) uint64 {
	const fan = 2 * groupInternalK
	const nodeSize = 24 + (2*fan+1)*8
	level := 0
	for {
		nnodes := max(1, (len(children)+fan-1)/fan)
		first := m.next()
		var nextChildren, nextKeys []uint64
		nextKeys = append(nextKeys, keys[0])
		for i := 0; i < nnodes; i++ {
			lo, hi := i*fan, min((i+1)*fan, len(children))
			var e enc
			e.raw([]byte("TREE"))
			e.u8(0)
			e.u8(uint8(level))
			e.u16(uint16(hi - lo))
			left, right := undef, undef
			if i > 0 {
				left = first + uint64(i-1)*nodeSize
			}
			if i < nnodes-1 {
				right = first + uint64(i+1)*nodeSize
			}
			e.u64(left)
			e.u64(right)
			e.u64(keys[lo])
			for j := lo; j < hi; j++ {
				e.u64(children[j])
				e.u64(keys[j+1])
			}
			e.raw(make([]byte, nodeSize-len(e.b)))
			a := m.put(e.b)
			nextChildren = append(nextChildren, a)
			nextKeys = append(nextKeys, keys[hi])
		}
		if nnodes == 1 {
			return nextChildren[0]
		}
		children, keys = nextChildren, nextKeys
		level++
	}
}
