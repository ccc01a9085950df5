// Package h5 is the project's small door to HDF5 (Debian's libhdf5 through
// gonum.org/v1/hdf5): files, groups, numeric datasets and string attributes,
// enough for Keras' .weights.h5, .keras and legacy .h5 layouts. No HDF5
// handle leaves the package.
//
// Reading is defensive, since files come from elsewhere: every rank, shape,
// element count and attribute size read from a file is checked against
// limits (and, for datasets, against what the caller expects) before any
// buffer is allocated; datatypes are accepted only when they equal a known
// little-endian type; objects reached through an external link (another
// file) are refused; HDF5's own error stack printing is off, and every
// error names the file and the object's path.
// A truncated file, or one whose tail or middle was zeroed, gives an error
// and no crash (tested at every 61st byte). The HDF5 C library itself is
// the limit beyond that: random byte flips in a file's metadata made
// libhdf5 1.10.8 crash (SIGSEGV in H5Aread of a variable-length string)
// or loop forever in a few percent of the mutated files tried, which no
// check on this side of the library can prevent; a file from an untrusted
// source is best opened in a separate process with a time limit.
//
// Every call into HDF5 holds one package-wide lock (the serial library is
// not thread-safe) on one locked OS thread.
//
// Known gaps, all from what gonum exposes: soft links inside the file are
// followed (Keras refuses them; they cannot leave the file); reading an
// array attribute of variable-length strings leaks the C strings HDF5
// allocates for it (gonum has no H5Dvlen_reclaim), bounded by the attribute
// size limit and small for Keras files (layer and weight names).
package h5

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unsafe"

	"github.com/gotf/gotf/dtypes"
	"gonum.org/v1/hdf5"
)

// Limits on what a file may declare before anything is allocated.
const (
	// MaxRank is the largest dataset rank accepted.
	MaxRank = 32
	// MaxAttrBytes bounds an attribute's data (a JSON model config, name lists).
	MaxAttrBytes = 256 << 20
	// MaxAttrElems bounds the number of elements of an array attribute.
	MaxAttrElems = 1 << 22
	// MaxMembers bounds the number of links in one group.
	MaxMembers = 1 << 20
)

// DefaultMaxDatasetBytes bounds one dataset read when the caller gives no limit.
const DefaultMaxDatasetBytes = int64(16) << 30

var mu hdf5Lock // every HDF5 call

// hdf5Lock serializes HDF5 calls and keeps them on one OS thread while
// they run, with HDF5's automatic error printing off on that thread:
// Debian's libhdf5 keeps that setting per thread, and gonum turns it off
// only on the thread that loads it.
type hdf5Lock struct{ m sync.Mutex }

func (l *hdf5Lock) Lock() {
	l.m.Lock()
	runtime.LockOSThread()
	hdf5.DisplayErrors(false)
}

func (l *hdf5Lock) Unlock() {
	runtime.UnlockOSThread()
	l.m.Unlock()
}

// DType is a dataset element type.
type DType int

// Element types of numeric datasets (all little-endian in the file).
const (
	Invalid DType = iota
	Float32
	Float64
	Int8
	Int16
	Int32
	Int64
	Uint8
	Uint16
	Uint32
	Uint64
)

var dtypeNames = [...]string{"invalid", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}

func (d DType) String() string {
	if d < 0 || int(d) >= len(dtypeNames) {
		return fmt.Sprintf("DType(%d)", int(d))
	}
	return dtypeNames[d]
}

// Size is the element size in bytes.
func (d DType) Size() int {
	switch d {
	case Int8, Uint8:
		return 1
	case Int16, Uint16:
		return 2
	case Float32, Int32, Uint32:
		return 4
	case Float64, Int64, Uint64:
		return 8
	}
	return 0
}

func (d DType) h5type() *hdf5.Datatype {
	switch d {
	case Float32:
		return hdf5.T_IEEE_F32LE
	case Float64:
		return hdf5.T_IEEE_F64LE
	case Int8:
		return hdf5.T_STD_I8LE
	case Int16:
		return hdf5.T_STD_I16LE
	case Int32:
		return hdf5.T_STD_I32LE
	case Int64:
		return hdf5.T_STD_I64LE
	case Uint8:
		return hdf5.T_STD_U8LE
	case Uint16:
		return hdf5.T_STD_U16LE
	case Uint32:
		return hdf5.T_STD_U32LE
	case Uint64:
		return hdf5.T_STD_U64LE
	}
	return nil
}

// dtypeOf is the DType equal to an HDF5 type, or Invalid.
func dtypeOf(t *hdf5.Datatype) DType {
	for d := Float32; d <= Uint64; d++ {
		if t.Equal(d.h5type()) {
			return d
		}
	}
	return Invalid
}

// Error is an error about one object of one file.
type Error struct {
	File string // the file's path
	Path string // the object's path in the file ("/layers/dense/vars/0")
	Err  error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.File, e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrNotFound is wrapped by the errors for a missing group, dataset or attribute.
var ErrNotFound = errors.New("not found")

// File is an open HDF5 file.
type File struct {
	f        *hdf5.File
	path     string
	realName string // the name HDF5 reports, to recognize objects of other files
	root     *Group
	tmp      string // Create: the temporary file renamed to path on Close
}

// IsHDF5 reports whether the file at path starts with HDF5's signature
// (at offset 0; HDF5 also allows 512, 1024 ... which Keras never writes).
func IsHDF5(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var sig [8]byte
	if _, err := f.ReadAt(sig[:], 0); err != nil {
		return false
	}
	return string(sig[:]) == "\x89HDF\r\n\x1a\n"
}

// Open opens an existing file read-only.
func Open(path string) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &Error{File: path, Err: errors.New("not a regular file")}
	}
	if !IsHDF5(path) {
		return nil, &Error{File: path, Err: errors.New("not an HDF5 file (no HDF5 signature at its start)")}
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := hdf5.OpenFile(path, hdf5.F_ACC_RDONLY)
	if err != nil {
		return nil, &Error{File: path, Err: fmt.Errorf("cannot open as HDF5 (corrupt or truncated?): %v", err)}
	}
	file := &File{f: f, path: path, realName: f.FileName()}
	g, err := f.OpenGroup("/")
	if err != nil {
		f.Close()
		return nil, &Error{File: path, Path: "/", Err: fmt.Errorf("cannot open the root group (corrupt or truncated?): %v", err)}
	}
	file.root = &Group{file: file, g: g, path: "/"}
	return file, nil
}

// Create creates a file to be written at path; it is written to a temporary
// file beside path and renamed to path by Close, so that a failed write
// leaves any previous file untouched.
func Create(path string) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tf, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return nil, err
	}
	tmp := tf.Name()
	tf.Close()
	mu.Lock()
	defer mu.Unlock()
	f, err := hdf5.CreateFile(tmp, hdf5.F_ACC_TRUNC)
	if err != nil {
		os.Remove(tmp)
		return nil, &Error{File: path, Err: err}
	}
	file := &File{f: f, path: path, tmp: tmp, realName: f.FileName()}
	g, err := f.OpenGroup("/")
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, &Error{File: path, Path: "/", Err: err}
	}
	file.root = &Group{file: file, g: g, path: "/"}
	return file, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Root is the root group "/" (closed with the file).
func (f *File) Root() *Group { return f.root }

// Close closes the file; a file from Create is then renamed into place.
func (f *File) Close() error {
	if f.f == nil {
		return nil
	}
	mu.Lock()
	f.root.g.Close()
	err := f.f.Close()
	f.f = nil
	mu.Unlock()
	if f.tmp != "" {
		if err != nil {
			os.Remove(f.tmp)
			return &Error{File: f.path, Err: err}
		}
		// CreateTemp made it 0600; Keras' files are 0644 under the usual umask.
		os.Chmod(f.tmp, 0o644)
		if err := os.Rename(f.tmp, f.path); err != nil {
			os.Remove(f.tmp)
			return err
		}
		return nil
	}
	if err != nil {
		return &Error{File: f.path, Err: err}
	}
	return nil
}

// Abort closes a file from Create without renaming it into place.
func (f *File) Abort() {
	if f.f != nil {
		mu.Lock()
		f.root.g.Close()
		f.f.Close()
		f.f = nil
		mu.Unlock()
	}
	if f.tmp != "" {
		os.Remove(f.tmp)
	}
}

// Group is a group of an open file.
type Group struct {
	file *File
	g    *hdf5.Group
	path string
}

// Path is the group's path in the file ("/" or "/layers/dense").
func (g *Group) Path() string { return g.path }

func (g *Group) child(name string) string {
	if g.path == "/" {
		return "/" + name
	}
	return g.path + "/" + name
}

func (g *Group) err(path string, format string, args ...any) error {
	return &Error{File: g.file.path, Path: path, Err: fmt.Errorf(format, args...)}
}

func (g *Group) notFound(path, what string) error {
	return &Error{File: g.file.path, Path: path, Err: fmt.Errorf("%s %w", what, ErrNotFound)}
}

// splitPath checks a relative path ("a/b/c") and returns its components.
func splitPath(name string) ([]string, error) {
	if name == "" || strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("invalid path %q (want a relative path)", name)
	}
	parts := strings.Split(name, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return nil, fmt.Errorf("invalid path %q", name)
		}
	}
	return parts, nil
}

// sameFile checks that an object opened from g is in g's file (not reached
// through an external link). Call with mu held.
func (g *Group) sameFile(id hdf5.Identifier) bool {
	f := id.File()
	if f == nil {
		return false
	}
	defer f.Close()
	return f.FileName() == g.file.realName
}

// Close releases the group (the root group is closed with its file).
func (g *Group) Close() {
	if g == nil || g == g.file.root || g.g == nil {
		return
	}
	mu.Lock()
	g.g.Close()
	g.g = nil
	mu.Unlock()
}

// Kind is what a group member is.
type Kind int

// Member kinds.
const (
	Other Kind = iota
	GroupKind
	DatasetKind
)

// Member is a link in a group.
type Member struct {
	Name string
	Kind Kind
}

// Members lists the group's links in name order.
func (g *Group) Members() ([]Member, error) {
	mu.Lock()
	defer mu.Unlock()
	n, err := g.g.NumObjects()
	if err != nil {
		return nil, g.err(g.path, "cannot count members: %v", err)
	}
	if n > MaxMembers {
		return nil, g.err(g.path, "declares %d members, more than the limit %d", n, MaxMembers)
	}
	ms := make([]Member, 0, n)
	for i := uint(0); i < n; i++ {
		name, err := g.g.ObjectNameByIndex(i)
		if err != nil {
			return nil, g.err(g.path, "cannot read the name of member %d: %v", i, err)
		}
		m := Member{Name: name}
		if t, err := g.g.ObjectTypeByIndex(i); err == nil {
			switch t {
			case hdf5.H5G_GROUP:
				m.Kind = GroupKind
			case hdf5.H5G_DATASET:
				m.Kind = DatasetKind
			}
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return ms, nil
}

// Has reports whether the group has a link at the relative path name
// (each component is checked, so a missing parent is no error).
func (g *Group) Has(name string) bool {
	parts, err := splitPath(name)
	if err != nil {
		return false
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range parts {
		if !g.g.LinkExists(strings.Join(parts[:i+1], "/")) {
			return false
		}
	}
	return true
}

// Group opens the group at the relative path name ("layers/dense/vars").
func (g *Group) Group(name string) (*Group, error) {
	parts, err := splitPath(name)
	if err != nil {
		return nil, g.err(g.path, "%v", err)
	}
	full := g.child(name)
	if !g.Has(name) {
		return nil, g.notFound(full, "group")
	}
	mu.Lock()
	defer mu.Unlock()
	sub, err := g.g.OpenGroup(strings.Join(parts, "/"))
	if err != nil {
		return nil, g.err(full, "not a group, or unreadable: %v", err)
	}
	if !g.sameFile(sub.Identifier) {
		sub.Close()
		return nil, g.err(full, "refused: reached through an external link to another file")
	}
	return &Group{file: g.file, g: sub, path: full}, nil
}

// CreateGroup creates the group at the relative path name, with any
// missing parents; an existing group is opened.
func (g *Group) CreateGroup(name string) (*Group, error) {
	parts, err := splitPath(name)
	if err != nil {
		return nil, g.err(g.path, "%v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		if g.g.LinkExists(p) {
			continue
		}
		sub, err := g.g.CreateGroup(p)
		if err != nil {
			return nil, g.err(g.child(p), "cannot create group: %v", err)
		}
		sub.Close()
	}
	sub, err := g.g.OpenGroup(name)
	if err != nil {
		return nil, g.err(g.child(name), "cannot open group: %v", err)
	}
	return &Group{file: g.file, g: sub, path: g.child(name)}, nil
}

// Info is a dataset's element type and shape.
type Info struct {
	DType DType
	Shape []int64 // empty for a scalar
}

// Array is a dataset's contents: little-endian element bytes in row-major order.
type Array struct {
	Info
	Data []byte
}

// dataspaceShape reads a dataspace's shape, checking rank and sizes.
// Call with mu held.
func dataspaceShape(sp *hdf5.Dataspace) ([]int64, error) {
	switch sp.SimpleExtentType() {
	case hdf5.S_SCALAR:
		return []int64{}, nil
	case hdf5.S_SIMPLE:
	case hdf5.S_NULL:
		return nil, errors.New("has a null dataspace (no data)")
	default:
		return nil, errors.New("has an unreadable dataspace")
	}
	rank := sp.SimpleExtentNDims()
	if rank < 0 || rank > MaxRank {
		return nil, fmt.Errorf("declares rank %d (allowed 0 to %d)", rank, MaxRank)
	}
	if rank == 0 {
		return []int64{}, nil
	}
	dims, _, err := sp.SimpleExtentDims()
	if err != nil {
		return nil, fmt.Errorf("unreadable shape: %v", err)
	}
	shape := make([]int64, rank)
	total := uint64(1)
	for i, d := range dims {
		if uint64(d) > 1<<62 {
			return nil, fmt.Errorf("declares dimension %d of size %d", i, uint64(d))
		}
		shape[i] = int64(d)
		if d != 0 && total > (1<<62)/uint64(d) {
			return nil, fmt.Errorf("declares shape %v: too many elements", dims)
		}
		total *= uint64(d)
	}
	return shape, nil
}

// Stat returns the element type and shape of the dataset at the relative
// path name, without reading it.
func (g *Group) Stat(name string) (Info, error) {
	ds, full, err := g.openDataset(name)
	if err != nil {
		return Info{}, err
	}
	mu.Lock()
	defer mu.Unlock()
	defer ds.Close()
	return g.statLocked(ds, full)
}

func (g *Group) openDataset(name string) (*hdf5.Dataset, string, error) {
	parts, err := splitPath(name)
	if err != nil {
		return nil, "", g.err(g.path, "%v", err)
	}
	full := g.child(name)
	if !g.Has(name) {
		return nil, full, g.notFound(full, "dataset")
	}
	mu.Lock()
	defer mu.Unlock()
	ds, err := g.g.OpenDataset(strings.Join(parts, "/"))
	if err != nil {
		return nil, full, g.err(full, "not a dataset, or unreadable: %v", err)
	}
	if !g.sameFile(ds.Identifier) {
		ds.Close()
		return nil, full, g.err(full, "refused: reached through an external link to another file")
	}
	return ds, full, nil
}

func (g *Group) statLocked(ds *hdf5.Dataset, full string) (Info, error) {
	t, err := ds.Datatype()
	if err != nil {
		return Info{}, g.err(full, "unreadable datatype: %v", err)
	}
	dt := dtypeOf(t)
	class, size := t.Class(), t.Size()
	t.Close()
	if dt == Invalid {
		return Info{}, g.err(full, "unsupported element type (HDF5 class %d, %d bytes): want a little-endian float or integer type", class, size)
	}
	sp := ds.Space()
	if sp == nil {
		return Info{}, g.err(full, "unreadable dataspace")
	}
	defer sp.Close()
	shape, err := dataspaceShape(sp)
	if err != nil {
		return Info{}, g.err(full, "%v", err)
	}
	return Info{DType: dt, Shape: shape}, nil
}

// Read reads the dataset at the relative path name. check, if not nil,
// sees its type and shape before anything is allocated and may refuse
// them; maxBytes (0: DefaultMaxDatasetBytes) bounds its size.
func (g *Group) Read(name string, check func(Info) error, maxBytes int64) (*Array, error) {
	ds, full, err := g.openDataset(name)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	defer ds.Close()
	info, err := g.statLocked(ds, full)
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(info); err != nil {
			return nil, g.err(full, "%v", err)
		}
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxDatasetBytes
	}
	n, err := dtypes.NumElements(info.Shape)
	if err != nil {
		return nil, g.err(full, "%v", err)
	}
	if n > maxBytes/int64(info.DType.Size()) {
		return nil, g.err(full, "%s%v is %d elements, more than the limit of %d bytes", info.DType, info.Shape, n, maxBytes)
	}
	data := make([]byte, n*int64(info.DType.Size()))
	if n > 0 {
		// gonum reads in the dataset's own (file) type, which is one of
		// the little-endian types above: the bytes are the values.
		if err := ds.Read(&data); err != nil {
			return nil, g.err(full, "cannot read data (corrupt or truncated?): %v", err)
		}
	}
	return &Array{Info: info, Data: data}, nil
}

// Write creates the dataset at the relative path name (creating missing
// parent groups) holding data, little-endian elements of dtype in
// row-major order.
func (g *Group) Write(name string, dtype DType, shape []int64, data []byte) error {
	parts, err := splitPath(name)
	if err != nil {
		return g.err(g.path, "%v", err)
	}
	full := g.child(name)
	t := dtype.h5type()
	if t == nil {
		return g.err(full, "unsupported dtype %s", dtype)
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return g.err(full, "negative dimension in shape %v", shape)
		}
		n *= d
	}
	if int64(len(data)) != n*int64(dtype.Size()) {
		return g.err(full, "%d bytes of data for %s%v (want %d)", len(data), dtype, shape, n*int64(dtype.Size()))
	}
	parent := g
	if len(parts) > 1 {
		p, err := g.CreateGroup(strings.Join(parts[:len(parts)-1], "/"))
		if err != nil {
			return err
		}
		defer p.Close()
		parent = p
	}
	mu.Lock()
	defer mu.Unlock()
	var sp *hdf5.Dataspace
	if len(shape) == 0 {
		sp, err = hdf5.CreateDataspace(hdf5.S_SCALAR)
	} else {
		dims := make([]uint, len(shape))
		for i, d := range shape {
			dims[i] = uint(d)
		}
		sp, err = hdf5.CreateSimpleDataspace(dims, nil)
	}
	if err != nil {
		return g.err(full, "cannot create dataspace: %v", err)
	}
	defer sp.Close()
	ds, err := parent.g.CreateDataset(parts[len(parts)-1], t, sp)
	if err != nil {
		return g.err(full, "cannot create dataset: %v", err)
	}
	defer ds.Close()
	if n > 0 {
		if err := ds.Write(&data); err != nil {
			return g.err(full, "cannot write data: %v", err)
		}
	}
	return nil
}

// attrType is the datatype of an attribute (to be closed). Call with mu held.
func attrType(a *hdf5.Attribute) *hdf5.Datatype {
	return &hdf5.Datatype{Identifier: a.GetType()}
}

// HasAttr reports whether the group has the attribute.
func (g *Group) HasAttr(name string) bool {
	mu.Lock()
	defer mu.Unlock()
	a, err := g.g.OpenAttribute(name)
	if err != nil {
		return false
	}
	a.Close()
	return true
}

// readStrings reads a string attribute: its values and whether it is a
// scalar. Numeric attributes with no elements (how h5py stores an empty
// list) read as no strings. Call with mu held.
func (g *Group) readStrings(name string) ([]string, bool, error) {
	where := g.path + "@" + name
	a, err := g.g.OpenAttribute(name)
	if err != nil {
		return nil, false, g.notFound(where, "attribute")
	}
	defer a.Close()
	sp := a.Space()
	if sp == nil {
		return nil, false, g.err(where, "unreadable dataspace")
	}
	shape, err := dataspaceShape(sp)
	sp.Close()
	if err != nil {
		return nil, false, g.err(where, "%v", err)
	}
	scalar := len(shape) == 0
	if len(shape) > 1 {
		return nil, false, g.err(where, "has shape %v, want a scalar or a list of strings", shape)
	}
	n := int64(1)
	if !scalar {
		n = shape[0]
	}
	if n > MaxAttrElems {
		return nil, false, g.err(where, "declares %d elements, more than the limit %d", n, MaxAttrElems)
	}
	t := attrType(a)
	defer t.Close()
	class := t.Class()
	if class != hdf5.T_STRING {
		if n == 0 {
			return []string{}, false, nil
		}
		return nil, false, g.err(where, "is not a string attribute (HDF5 class %d)", class)
	}
	vl := &hdf5.VarLenType{Datatype: *t}
	if vl.IsVariableStr() {
		if scalar {
			var s string
			if err := a.Read(&s, t); err != nil {
				return nil, false, g.err(where, "cannot read: %v", err)
			}
			return []string{s}, true, nil
		}
		if n == 0 {
			return []string{}, false, nil
		}
		// One char* per element, allocated by HDF5 (see the package doc).
		ptrs := reflect.New(reflect.ArrayOf(int(n), reflect.TypeOf(unsafe.Pointer(nil))))
		if err := a.Read(ptrs.Interface(), t); err != nil {
			return nil, false, g.err(where, "cannot read: %v", err)
		}
		out := make([]string, n)
		var total int64
		for i := 0; i < int(n); i++ {
			p := ptrs.Elem().Index(i).Interface().(unsafe.Pointer)
			s, err := cString(p, MaxAttrBytes-total)
			if err != nil {
				return nil, false, g.err(where, "element %d: %v", i, err)
			}
			total += int64(len(s))
			out[i] = s
		}
		return out, scalar, nil
	}
	size := int64(t.Size())
	if size <= 0 || size > MaxAttrBytes || n*size > MaxAttrBytes {
		return nil, false, g.err(where, "declares %d strings of %d bytes, more than the limit of %d bytes", n, size, MaxAttrBytes)
	}
	if n == 0 {
		return []string{}, false, nil
	}
	buf := reflect.New(reflect.ArrayOf(int(n*size), reflect.TypeOf(byte(0))))
	if err := a.Read(buf.Interface(), t); err != nil {
		return nil, false, g.err(where, "cannot read: %v", err)
	}
	raw := buf.Elem().Bytes()
	out := make([]string, n)
	for i := range out {
		s := raw[int64(i)*size : int64(i+1)*size]
		if j := strings.IndexByte(string(s), 0); j >= 0 {
			s = s[:j]
		}
		out[i] = strings.TrimRight(string(s), " ")
	}
	return out, scalar, nil
}

// cString copies a NUL-terminated C string of at most max bytes.
func cString(p unsafe.Pointer, max int64) (string, error) {
	if p == nil {
		return "", nil
	}
	var n int64
	for *(*byte)(unsafe.Add(p, n)) != 0 {
		n++
		if n > max {
			return "", fmt.Errorf("string longer than the limit of %d bytes", max)
		}
	}
	return string(unsafe.Slice((*byte)(p), n)), nil
}

// StringAttr reads a scalar string attribute (variable or fixed length;
// a one-element list is accepted too).
func (g *Group) StringAttr(name string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	ss, _, err := g.readStrings(name)
	if err != nil {
		return "", err
	}
	if len(ss) != 1 {
		return "", g.err(g.path+"@"+name, "holds %d strings, want one", len(ss))
	}
	return ss[0], nil
}

// StringsAttr reads a list of strings (variable or fixed length; an empty
// numeric list reads as none; a scalar as one).
func (g *Group) StringsAttr(name string) ([]string, error) {
	mu.Lock()
	defer mu.Unlock()
	ss, _, err := g.readStrings(name)
	return ss, err
}

// SetStringAttr writes a scalar variable-length string attribute (what
// h5py writes for a Python str).
func (g *Group) SetStringAttr(name, value string) error {
	if strings.IndexByte(value, 0) >= 0 {
		return g.err(g.path+"@"+name, "string holds a NUL byte")
	}
	mu.Lock()
	defer mu.Unlock()
	sp, err := hdf5.CreateDataspace(hdf5.S_SCALAR)
	if err != nil {
		return g.err(g.path+"@"+name, "%v", err)
	}
	defer sp.Close()
	a, err := g.g.CreateAttribute(name, hdf5.T_GO_STRING, sp)
	if err != nil {
		return g.err(g.path+"@"+name, "cannot create attribute: %v", err)
	}
	defer a.Close()
	if err := a.Write(&value, hdf5.T_GO_STRING); err != nil {
		return g.err(g.path+"@"+name, "cannot write attribute: %v", err)
	}
	return nil
}

// SetStringsAttr writes a list of strings as fixed-length (NUL-padded)
// strings, what numpy makes of a list of bytes; an empty list is written
// as an empty float64 list, as h5py does.
func (g *Group) SetStringsAttr(name string, values []string) error {
	where := g.path + "@" + name
	mu.Lock()
	defer mu.Unlock()
	sp, err := hdf5.CreateSimpleDataspace([]uint{uint(len(values))}, nil)
	if err != nil {
		return g.err(where, "%v", err)
	}
	defer sp.Close()
	if len(values) == 0 {
		a, err := g.g.CreateAttribute(name, hdf5.T_IEEE_F64LE, sp)
		if err != nil {
			return g.err(where, "cannot create attribute: %v", err)
		}
		return a.Close()
	}
	size := 1
	for _, v := range values {
		if strings.IndexByte(v, 0) >= 0 {
			return g.err(where, "string %q holds a NUL byte", v)
		}
		size = max(size, len(v))
	}
	t, err := hdf5.T_C_S1.Copy()
	if err != nil {
		return g.err(where, "%v", err)
	}
	defer t.Close()
	if err := t.SetSize(size); err != nil {
		return g.err(where, "%v", err)
	}
	a, err := g.g.CreateAttribute(name, t, sp)
	if err != nil {
		return g.err(where, "cannot create attribute: %v", err)
	}
	defer a.Close()
	buf := reflect.New(reflect.ArrayOf(len(values)*size, reflect.TypeOf(byte(0))))
	raw := buf.Elem().Bytes()
	for i, v := range values {
		copy(raw[i*size:], v)
	}
	if err := a.Write(buf.Interface(), t); err != nil {
		return g.err(where, "cannot write attribute: %v", err)
	}
	return nil
}
