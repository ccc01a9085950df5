// Package h5 reads and writes the HDF5 files of Keras (.weights.h5, the
// weights inside .keras archives, legacy .h5 models and weights) in pure
// Go: files, groups, numeric datasets and string attributes. No HDF5
// structure leaves the package.
//
// It is pure Go, not a binding to libhdf5, because the files come from
// elsewhere: fuzzing libhdf5 1.10 with mutated Keras files made it crash
// (SIGSEGV in H5Dread, H5Aread, H5Lexists) or hang, and libhdf5 follows
// HDF5 external storage to read any local file into a dataset, none of
// which a check outside the library can stop. Here every size, count,
// offset and rank read from a file is checked against the file's size and
// the limits below before anything is allocated; B-trees, heaps and header
// continuations are walked with loop detection and bounded depth; errors
// name the file and the object's path. A recover at the API boundary turns
// a bug into an error, as a last line of defence only.
//
// Reading covers what h5py and Keras write with libver 'earliest' or
// 'latest': superblocks 0 to 3 (after a user block too), object headers
// v1 and v2, groups as symbol tables, link messages or dense link storage
// (fractal heap and v2 B-tree), attributes in the header or in dense
// storage, little-endian integer and IEEE float datasets (float16 too),
// 2-byte opaque datasets (h5py's type for ml_dtypes.bfloat16, in which
// Keras saves bfloat16 weights), fixed-length and variable-length string
// attributes, compact, contiguous and chunked layouts (v1 B-tree, single
// chunk, implicit, fixed array, extensible array and v2 B-tree chunk
// indexes) with the deflate, shuffle and fletcher32 filters. Refused with
// an error: external storage (it would read another file), external links,
// soft links (Keras never writes them; they are not followed), virtual
// datasets, paged extensible array data blocks (more than ~100,000 chunks
// along an unlimited dimension), layout messages before version 3 (HDF5
// 1.4), filtered fractal heaps, other filters and datatypes, shared
// (committed) datatypes and attributes, and any address outside the file.
// Data never written reads as the dataset's fill value (zeros by default);
// a chunked dataset larger than 1,100 times the file is refused before its
// buffer is allocated (deflate compresses at most ~1032:1, so only chunks
// never written could fill it). Checksums of v2 metadata and fletcher32
// are verified.
//
// Writing produces libhdf5's default ('earliest') format: superblock 0,
// v1 object headers, symbol-table groups, contiguous datasets whose data is
// streamed to the file as it is written, variable-length string scalars
// and fixed-length string lists (variable-length when a fixed-length list
// would not fit in an object header message).
package h5

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"

	"github.com/gotf/gotf/dtypes"
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

// maxInflation bounds a chunked dataset's size relative to the file's.
const maxInflation = 1100

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
	Float16
	// Opaque2 is a 2-byte opaque element: h5py writes numpy dtypes that
	// HDF5 has no type for (ml_dtypes.bfloat16: Keras' bfloat16 weights)
	// as opaque data of their size. Written datasets cannot have it.
	Opaque2
)

var dtypeNames = [...]string{"invalid", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "2-byte opaque"}

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
	case Int16, Uint16, Float16, Opaque2:
		return 2
	case Float32, Int32, Uint32:
		return 4
	case Float64, Int64, Uint64:
		return 8
	}
	return 0
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
	mu   sync.Mutex
	path string
	f    *os.File
	r    *reader // files from Open
	w    *writer // files from Create
	root *Group
	tmp  string // Create: the temporary file renamed to path on Close
}

// IsHDF5 reports whether the file at path starts with HDF5's signature
// (at offset 0; HDF5 also allows 512, 1024 ... which Keras never writes,
// and which Open accepts).
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
	return string(sig[:]) == signature
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
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	file, err := openReader(path, f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	file.f = f
	return file, nil
}

// openReader opens a file read from r (Open's file, or bytes in tests).
func openReader(path string, ra interface {
	ReadAt([]byte, int64) (int, error)
}, size int64) (file *File, err error) {
	defer func() {
		if p := recover(); p != nil {
			file, err = nil, &Error{File: path, Err: fmt.Errorf("internal error reading the file (a bug in package h5): %v\n%s", p, debug.Stack())}
		}
	}()
	r := &reader{r: ra, size: size, objects: map[uint64]*object{}, links: map[uint64][]link{}, gheaps: map[uint64]*gheap{}}
	root, err := readSuperblock(r)
	if err != nil {
		if strings.HasPrefix(err.Error(), "not an HDF5 file") {
			return nil, &Error{File: path, Err: errors.New("not an HDF5 file (no HDF5 signature at its start)")}
		}
		return nil, &Error{File: path, Err: fmt.Errorf("cannot open as HDF5 (corrupt or truncated?): %v", err)}
	}
	o, err := r.object(root)
	if err != nil {
		return nil, &Error{File: path, Path: "/", Err: fmt.Errorf("cannot open the root group (corrupt or truncated?): %v", err)}
	}
	if o.kind() != GroupKind {
		return nil, &Error{File: path, Path: "/", Err: errors.New("the root object is not a group")}
	}
	file = &File{path: path, r: r}
	file.root = &Group{file: file, path: "/", addr: root}
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
	file := &File{path: path, f: tf, tmp: tf.Name(), w: newWriter(tf)}
	file.root = &Group{file: file, path: "/", node: file.w.root}
	return file, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Root is the root group "/" (closed with the file).
func (f *File) Root() *Group { return f.root }

// Close closes the file; a file from Create is then written out and
// renamed into place.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return nil
	}
	if f.w == nil {
		err := f.f.Close()
		f.f = nil
		return err
	}
	err := f.guard("/", f.w.finish)
	if cerr := f.f.Close(); err == nil && cerr != nil {
		err = &Error{File: f.path, Err: cerr}
	}
	f.f = nil
	if err != nil {
		os.Remove(f.tmp)
		return err
	}
	// CreateTemp made it 0600; Keras' files are 0644 under the usual umask.
	os.Chmod(f.tmp, 0o644)
	if err := os.Rename(f.tmp, f.path); err != nil {
		os.Remove(f.tmp)
		return err
	}
	return nil
}

// Abort closes a file from Create without renaming it into place.
func (f *File) Abort() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
	if f.tmp != "" {
		os.Remove(f.tmp)
	}
}

// guard runs fn as one API call: errors become *Error naming the file and
// path, and a panic (a bug) becomes an error rather than a crash.
func (f *File) guard(path string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &Error{File: f.path, Path: path, Err: fmt.Errorf("internal error (a bug in package h5): %v\n%s", p, debug.Stack())}
		}
	}()
	err = fn()
	var he *Error
	if err != nil && !errors.As(err, &he) {
		err = &Error{File: f.path, Path: path, Err: err}
	}
	return err
}

// Group is a group of an open file.
type Group struct {
	file *File
	path string
	addr uint64 // read: the object header's address
	node *wnode // write: the group being built
}

// Path is the group's path in the file ("/" or "/layers/dense").
func (g *Group) Path() string { return g.path }

// Close releases the group (nothing to release: groups hold no handles).
func (g *Group) Close() {}

func (g *Group) child(name string) string {
	if g.path == "/" {
		return "/" + name
	}
	return g.path + "/" + name
}

func (g *Group) errf(path string, format string, args ...any) error {
	return &Error{File: g.file.path, Path: path, Err: fmt.Errorf(format, args...)}
}

func (g *Group) notFound(path, what string) error {
	return &Error{File: g.file.path, Path: path, Err: fmt.Errorf("%s %w", what, ErrNotFound)}
}

// call runs fn under the file's lock through guard.
func (g *Group) call(path string, fn func() error) error {
	g.file.mu.Lock()
	defer g.file.mu.Unlock()
	return g.file.guard(path, fn)
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

// resolve follows the relative path name from g to an object, hard link
// by hard link; soft, external and user-defined links are refused.
func (g *Group) resolve(name string) (*object, string, error) {
	parts, err := splitPath(name)
	if err != nil {
		return nil, g.path, err
	}
	r := g.file.r
	addr, path := g.addr, g.path
	for _, p := range parts {
		o, err := r.object(addr)
		if err != nil {
			return nil, path, err
		}
		if o.kind() != GroupKind {
			return nil, path, errors.New("not a group")
		}
		links, err := r.groupLinks(o)
		if err != nil {
			return nil, path, err
		}
		if path == "/" {
			path = "/" + p
		} else {
			path += "/" + p
		}
		var l *link
		for i := range links {
			if links[i].name == p {
				l = &links[i]
				break
			}
		}
		if l == nil {
			return nil, path, ErrNotFound
		}
		switch l.kind {
		case softLink:
			return nil, path, fmt.Errorf("refused: a soft link to %q (soft links are not followed)", l.target)
		case externalLink:
			return nil, path, fmt.Errorf("refused: an external link to another file (%q)", l.target)
		case otherLink:
			return nil, path, errors.New("refused: a user-defined link")
		}
		addr = l.addr
	}
	o, err := r.object(addr)
	return o, path, err
}

// Members lists the group's links in name order.
func (g *Group) Members() (ms []Member, err error) {
	err = g.call(g.path, func() error {
		if g.node != nil {
			ms = g.node.members()
			return nil
		}
		r := g.file.r
		o, err := r.object(g.addr)
		if err != nil {
			return err
		}
		links, err := r.groupLinks(o)
		if err != nil {
			return fmt.Errorf("cannot list members: %v", err)
		}
		ms = make([]Member, 0, len(links))
		for _, l := range links {
			m := Member{Name: l.name}
			if l.kind == hardLink {
				if c, err := r.object(l.addr); err == nil {
					m.Kind = c.kind()
				}
			}
			ms = append(ms, m)
		}
		return nil
	})
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return ms, err
}

// Has reports whether the group has a link at the relative path name
// (each component is checked, so a missing parent is no error).
func (g *Group) Has(name string) bool {
	parts, err := splitPath(name)
	if err != nil {
		return false
	}
	found := false
	g.call(g.path, func() error {
		if g.node != nil {
			found = g.node.lookup(parts) != nil
			return nil
		}
		if len(parts) > 1 {
			o, _, err := g.resolve(strings.Join(parts[:len(parts)-1], "/"))
			if err != nil || o.kind() != GroupKind {
				return nil
			}
			return (&Group{file: g.file, addr: o.addr, path: "/"}).hasLink(parts[len(parts)-1], &found)
		}
		return g.hasLink(parts[0], &found)
	})
	return found
}

func (g *Group) hasLink(name string, found *bool) error {
	o, err := g.file.r.object(g.addr)
	if err != nil {
		return err
	}
	links, err := g.file.r.groupLinks(o)
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.name == name {
			*found = true
		}
	}
	return nil
}

// Group opens the group at the relative path name ("layers/dense/vars").
func (g *Group) Group(name string) (sub *Group, err error) {
	full := g.path
	err = g.call(g.path, func() error {
		if g.node != nil {
			parts, err := splitPath(name)
			if err != nil {
				return err
			}
			full = g.child(name)
			n := g.node.lookup(parts)
			if n == nil {
				return g.notFound(full, "group")
			}
			if !n.group {
				return g.errf(full, "not a group")
			}
			sub = &Group{file: g.file, path: full, node: n}
			return nil
		}
		o, path, err := g.resolve(name)
		full = path
		if errors.Is(err, ErrNotFound) {
			return g.notFound(path, "group")
		}
		if err != nil {
			return g.errf(path, "%v", err)
		}
		if o.kind() != GroupKind {
			return g.errf(path, "not a group")
		}
		sub = &Group{file: g.file, path: path, addr: o.addr}
		return nil
	})
	return sub, err
}

// CreateGroup creates the group at the relative path name, with any
// missing parents; an existing group is opened.
func (g *Group) CreateGroup(name string) (sub *Group, err error) {
	err = g.call(g.path, func() error {
		if g.node == nil {
			return errors.New("file is open read-only")
		}
		parts, err := splitPath(name)
		if err != nil {
			return err
		}
		n, err := g.node.mkdirs(parts)
		if err != nil {
			return g.errf(g.child(name), "cannot create group: %v", err)
		}
		sub = &Group{file: g.file, path: g.child(name), node: n}
		return nil
	})
	return sub, err
}

// dataset resolves and decodes the dataset at name.
func (g *Group) dataset(name string) (*dataset, string, error) {
	o, path, err := g.resolve(name)
	if errors.Is(err, ErrNotFound) {
		return nil, path, g.notFound(path, "dataset")
	}
	if err != nil {
		return nil, path, g.errf(path, "%v", err)
	}
	if o.kind() != DatasetKind {
		return nil, path, g.errf(path, "not a dataset")
	}
	ds, err := g.file.r.parseDataset(o)
	if err != nil {
		return nil, path, g.errf(path, "%v", err)
	}
	if ds.dt == Invalid {
		return nil, path, g.errf(path, "unsupported element type (%s): want a little-endian float or integer type", ds.dtype)
	}
	if ds.space.null {
		return nil, path, g.errf(path, "has a null dataspace (no data)")
	}
	return ds, path, nil
}

// Stat returns the element type and shape of the dataset at the relative
// path name, without reading it.
func (g *Group) Stat(name string) (info Info, err error) {
	err = g.call(g.path, func() error {
		if g.node != nil {
			n, full, err := g.node.dataset(g, name)
			if err != nil {
				return err
			}
			_ = full
			info = Info{DType: n.dtype, Shape: append([]int64{}, n.shape...)}
			return nil
		}
		ds, _, err := g.dataset(name)
		if err != nil {
			return err
		}
		info = Info{DType: ds.dt, Shape: ds.space.shape}
		return nil
	})
	return info, err
}

// Read reads the dataset at the relative path name. check, if not nil,
// sees its type and shape before anything is allocated and may refuse
// them; maxBytes (0: DefaultMaxDatasetBytes) bounds its size.
func (g *Group) Read(name string, check func(Info) error, maxBytes int64) (a *Array, err error) {
	err = g.call(g.path, func() error {
		var ds *dataset
		var wn *wnode
		var info Info
		full := g.child(name)
		if g.node != nil {
			n, path, err := g.node.dataset(g, name)
			if err != nil {
				return err
			}
			wn, full = n, path
			info = Info{DType: n.dtype, Shape: append([]int64{}, n.shape...)}
		} else {
			d, path, err := g.dataset(name)
			if err != nil {
				return err
			}
			ds, full = d, path
			info = Info{DType: ds.dt, Shape: ds.space.shape}
		}
		if check != nil {
			if err := check(info); err != nil {
				return g.errf(full, "%v", err)
			}
		}
		if maxBytes <= 0 {
			maxBytes = DefaultMaxDatasetBytes
		}
		n, err := dtypes.NumElements(info.Shape)
		if err != nil {
			return g.errf(full, "%v", err)
		}
		if n > maxBytes/int64(info.DType.Size()) {
			return g.errf(full, "%s%v is %d elements, more than the limit of %d bytes", info.DType, info.Shape, n, maxBytes)
		}
		if ds != nil && ds.layout == layoutContiguous && ds.addr != undef {
			// Check the range before allocating for it.
			if _, err := g.file.r.abs(ds.addr, uint64(n)*uint64(info.DType.Size())); err != nil {
				return g.errf(full, "cannot read data (corrupt or truncated?): %v", err)
			}
		}
		if ds != nil && ds.layout == layoutCompact && int64(len(ds.compact)) < n*int64(info.DType.Size()) {
			return g.errf(full, "compact data of %d bytes for %s%v", len(ds.compact), info.DType, info.Shape)
		}
		if ds != nil && ds.layout == layoutChunked && n*int64(info.DType.Size()) > maxInflation*g.file.r.size+1<<20 {
			// Deflate compresses at most ~1032:1: more can only come
			// from chunks never written, which Keras files do not have.
			return g.errf(full, "%s%v is more than %d times the file's size", info.DType, info.Shape, maxInflation)
		}
		data := make([]byte, n*int64(info.DType.Size()))
		if n > 0 {
			if wn != nil {
				err = g.file.w.readBack(wn, data)
			} else {
				err = g.file.r.readData(ds, data)
			}
			if err != nil {
				return g.errf(full, "cannot read data (corrupt or truncated?): %v", err)
			}
		}
		a = &Array{Info: info, Data: data}
		return nil
	})
	return a, err
}

// Write creates the dataset at the relative path name (creating missing
// parent groups) holding data, little-endian elements of dtype in
// row-major order.
func (g *Group) Write(name string, dtype DType, shape []int64, data []byte) error {
	return g.call(g.child(name), func() error {
		if g.node == nil {
			return errors.New("file is open read-only")
		}
		parts, err := splitPath(name)
		if err != nil {
			return g.errf(g.path, "%v", err)
		}
		if dtype.Size() == 0 || dtype == Opaque2 {
			return fmt.Errorf("unsupported dtype %s", dtype)
		}
		if len(shape) > MaxRank {
			return fmt.Errorf("rank %d is more than %d", len(shape), MaxRank)
		}
		n := int64(1)
		for _, d := range shape {
			if d < 0 {
				return fmt.Errorf("negative dimension in shape %v", shape)
			}
			if d != 0 && n > (1<<62)/d {
				return fmt.Errorf("shape %v has too many elements", shape)
			}
			n *= d
		}
		if n > (1<<62)/int64(dtype.Size()) || int64(len(data)) != n*int64(dtype.Size()) {
			return fmt.Errorf("%d bytes of data for %s%v (want %d)", len(data), dtype, shape, n*int64(dtype.Size()))
		}
		return g.file.w.writeDataset(g.node, parts, dtype, shape, data)
	})
}

// findAttr returns the attribute name of a read-mode group, or ErrNotFound.
func (g *Group) findAttr(name string) (*attribute, error) {
	r := g.file.r
	o, err := r.object(g.addr)
	if err != nil {
		return nil, err
	}
	as, errs, err := r.attrs(o)
	if err != nil {
		return nil, err
	}
	for i, a := range as {
		if a.name == name {
			if errs[i] != nil {
				return nil, errs[i]
			}
			return a, nil
		}
	}
	return nil, ErrNotFound
}

// attrNames lists the attribute names of a read-mode group (for tests).
func (g *Group) attrNames() ([]string, error) {
	var names []string
	err := g.call(g.path, func() error {
		o, err := g.file.r.object(g.addr)
		if err != nil {
			return err
		}
		as, _, err := g.file.r.attrs(o)
		for _, a := range as {
			names = append(names, a.name)
		}
		return err
	})
	return names, err
}

// HasAttr reports whether the group has the attribute.
func (g *Group) HasAttr(name string) bool {
	found := false
	g.call(g.path, func() error {
		if g.node != nil {
			found = g.node.attr(name) != nil
			return nil
		}
		_, err := g.findAttr(name)
		found = err == nil
		return nil
	})
	return found
}

// readStrings reads a string attribute. Numeric attributes with no
// elements (how h5py stores an empty list) read as no strings.
func (g *Group) readStrings(name string) ([]string, error) {
	where := g.path + "@" + name
	var out []string
	err := g.call(where, func() error {
		if g.node != nil {
			a := g.node.attr(name)
			if a == nil {
				return g.notFound(where, "attribute")
			}
			out = append([]string{}, a.values...)
			return nil
		}
		a, err := g.findAttr(name)
		if errors.Is(err, ErrNotFound) {
			return g.notFound(where, "attribute")
		}
		if err != nil {
			return err
		}
		if a.space.null {
			return errors.New("has a null dataspace (no data)")
		}
		if len(a.space.shape) > 1 {
			return fmt.Errorf("has shape %v, want a scalar or a list of strings", a.space.shape)
		}
		if a.dt.class != classString && a.dt.class != classVlen {
			if a.space.elems() == 0 {
				out = []string{}
				return nil
			}
			return fmt.Errorf("is not a string attribute (%s)", a.dt)
		}
		out, err = g.file.r.attrStrings(a)
		return err
	})
	return out, err
}

// StringAttr reads a scalar string attribute (variable or fixed length;
// a one-element list is accepted too).
func (g *Group) StringAttr(name string) (string, error) {
	ss, err := g.readStrings(name)
	if err != nil {
		return "", err
	}
	if len(ss) != 1 {
		return "", g.errf(g.path+"@"+name, "holds %d strings, want one", len(ss))
	}
	return ss[0], nil
}

// StringsAttr reads a list of strings (variable or fixed length; an empty
// numeric list reads as none; a scalar as one).
func (g *Group) StringsAttr(name string) ([]string, error) {
	return g.readStrings(name)
}

// SetStringAttr writes a scalar variable-length string attribute (what
// h5py writes for a Python str).
func (g *Group) SetStringAttr(name, value string) error {
	return g.setAttr(name, []string{value}, true)
}

// SetStringsAttr writes a list of strings as fixed-length (NUL-padded)
// strings, what numpy makes of a list of bytes; an empty list is written
// as an empty float64 list, as h5py does.
func (g *Group) SetStringsAttr(name string, values []string) error {
	return g.setAttr(name, values, false)
}

func (g *Group) setAttr(name string, values []string, scalar bool) error {
	where := g.path + "@" + name
	return g.call(where, func() error {
		if g.node == nil {
			return errors.New("file is open read-only")
		}
		if name == "" || strings.IndexByte(name, 0) >= 0 {
			return fmt.Errorf("invalid attribute name %q", name)
		}
		for _, v := range values {
			if strings.IndexByte(v, 0) >= 0 {
				return fmt.Errorf("string %q holds a NUL byte", v)
			}
		}
		return g.node.setAttr(name, append([]string{}, values...), scalar)
	})
}
