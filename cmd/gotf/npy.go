package main

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/dtypes/half"
	"github.com/gotf/gotf/internal/excerpt"
	"github.com/gotf/gotf/tfgo"
)

// NumPy's .npy format (numpy/lib/format.py): magic, version, a header
// that is a Python dict literal, then the elements in C or Fortran order.

var npyMagic = []byte("\x93NUMPY")

// maxInputFileBytes bounds an --inputs file: inputs are read whole.
const maxInputFileBytes = 4 << 30

var (
	reDescr   = regexp.MustCompile(`'descr':\s*'([<>|=])([a-zA-Z])(\d+)'`)
	reFortran = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	reShape   = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// readNPY parses a .npy file's bytes.
func readNPY(data []byte) (*array, error) {
	if !bytes.HasPrefix(data, npyMagic) || len(data) < 10 {
		return nil, errors.New("not a .npy file (no \\x93NUMPY magic)")
	}
	major := data[6]
	var hlen, off int
	switch major {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(data[8:10])), 10
	case 2, 3:
		if len(data) < 12 {
			return nil, errors.New("truncated .npy header")
		}
		hlen, off = int(binary.LittleEndian.Uint32(data[8:12])), 12
	default:
		return nil, fmt.Errorf(".npy format version %d is not supported", major)
	}
	if hlen > len(data)-off {
		return nil, errors.New("truncated .npy header")
	}
	header := string(data[off : off+hlen])
	body := data[off+hlen:]
	d := reDescr.FindStringSubmatch(header)
	if d == nil {
		return nil, fmt.Errorf(".npy dtype not supported (header %s): numeric, bool and byte-string arrays are", excerpt.Quote(header))
	}
	if m := reFortran.FindStringSubmatch(header); m == nil {
		return nil, fmt.Errorf(".npy header without fortran_order: %s", excerpt.Quote(header))
	} else if m[1] == "True" {
		return nil, errors.New("a Fortran-order .npy array: save it with np.save(f, np.ascontiguousarray(x))")
	}
	sm := reShape.FindStringSubmatch(header)
	if sm == nil {
		return nil, fmt.Errorf(".npy header without shape: %s", excerpt.Quote(header))
	}
	a := &array{shape: []int64{}}
	n := int64(1)
	for _, p := range strings.Split(sm[1], ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		dim, err := strconv.ParseInt(p, 10, 64)
		if err != nil || dim < 0 {
			return nil, fmt.Errorf(".npy shape %s", excerpt.Quote(sm[1]))
		}
		a.shape = append(a.shape, dim)
		if n, err = dtypes.NumElements(a.shape); err != nil {
			return nil, err
		}
	}
	order, kind := d[1], d[2]
	size, _ := strconv.Atoi(d[3])
	if size <= 0 || size > 1<<20 {
		return nil, fmt.Errorf(".npy element size %d", size)
	}
	if n > int64(len(body))/int64(size) {
		return nil, fmt.Errorf(".npy data: %d elements of %d bytes do not fit in %d bytes", n, size, len(body))
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if order == ">" {
		bo = binary.BigEndian
	}
	get := func(k int64) []byte { return body[k*int64(size) : (k+1)*int64(size)] }
	switch {
	case kind == "f" && (size == 2 || size == 4 || size == 8):
		a.kind, a.f = kindFloat, make([]float64, n)
		for k := range n {
			p := get(k)
			switch size {
			case 2:
				a.f[k] = float64(half.Float16(bo.Uint16(p)).Float32())
			case 4:
				a.f[k] = float64(math.Float32frombits(bo.Uint32(p)))
			case 8:
				a.f[k] = math.Float64frombits(bo.Uint64(p))
			}
		}
	case (kind == "i" || kind == "u") && (size == 1 || size == 2 || size == 4 || size == 8):
		a.kind, a.i = kindInt, make([]int64, n)
		for k := range n {
			p := get(k)
			var u uint64
			switch size {
			case 1:
				u = uint64(p[0])
			case 2:
				u = uint64(bo.Uint16(p))
			case 4:
				u = uint64(bo.Uint32(p))
			case 8:
				u = bo.Uint64(p)
			}
			if kind == "i" { // sign-extend
				shift := 64 - 8*size
				a.i[k] = int64(u<<shift) >> shift
			} else {
				a.i[k] = int64(u)
			}
		}
	case kind == "b" && size == 1:
		a.kind, a.b = kindBool, make([]bool, n)
		for k := range n {
			a.b[k] = body[k] != 0
		}
	case kind == "S":
		a.kind, a.s = kindString, make([][]byte, n)
		for k := range n {
			a.s[k] = bytes.TrimRight(get(k), "\x00")
		}
	case kind == "U" && size > 0:
		// size counts UCS-4 characters.
		a.kind, a.s = kindString, make([][]byte, n)
		width := int64(size) * 4
		if n > int64(len(body))/width {
			return nil, errors.New(".npy data too short")
		}
		for k := range n {
			var s []byte
			for c := int64(0); c < int64(size); c++ {
				r := rune(bo.Uint32(body[k*width+c*4:]))
				if r == 0 {
					break
				}
				s = utf8.AppendRune(s, r)
			}
			a.s[k] = s
		}
	default:
		return nil, fmt.Errorf(".npy dtype %s%s%d is not supported", order, kind, size)
	}
	return a, nil
}

// loadInputFile is numpy.load for saved_model_cli's --inputs: a .npy file,
// or one array of a .npz archive (name, or the only one when name is "").
func loadInputFile(path, name string) (*array, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxInputFileBytes {
		return nil, fmt.Errorf("%s: %d bytes, over the %d an input file may have", path, fi.Size(), int64(maxInputFileBytes))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(data, npyMagic) {
		a, err := readNPY(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return a, nil
	}
	if !bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		return nil, fmt.Errorf("%s: neither a .npy nor a .npz file (pickles are not read)", path)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	members := map[string]*zip.File{}
	var names []string
	for _, f := range zr.File {
		n := strings.TrimSuffix(f.Name, ".npy")
		members[n] = f
		names = append(names, n)
	}
	sort.Strings(names)
	if name == "" {
		if len(names) != 1 {
			return nil, fmt.Errorf("%s holds %d arrays (%s): name one, x=%s[name]", path, len(names), strings.Join(names, ", "), path)
		}
		name = names[0]
	}
	f, ok := members[name]
	if !ok {
		return nil, fmt.Errorf("%s has no array %s (it has %s)", path, excerpt.Quote(name), strings.Join(names, ", "))
	}
	if f.UncompressedSize64 > maxInputFileBytes {
		return nil, fmt.Errorf("%s[%s]: %d bytes, over the %d an input may have", path, name, f.UncompressedSize64, int64(maxInputFileBytes))
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%s[%s]: %w", path, name, err)
	}
	defer rc.Close()
	member, err := io.ReadAll(io.LimitReader(rc, maxInputFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s[%s]: %w", path, name, err)
	}
	a, err := readNPY(member)
	if err != nil {
		return nil, fmt.Errorf("%s[%s]: %w", path, name, err)
	}
	return a, nil
}

// npyDescr is numpy's dtype string for a TensorFlow dtype.
var npyDescr = map[tfgo.DataType]string{
	dtypes.Float: "<f4", dtypes.Double: "<f8", dtypes.Half: "<f2",
	dtypes.Int8: "|i1", dtypes.Uint8: "|u1", dtypes.Int16: "<i2", dtypes.Uint16: "<u2",
	dtypes.Int32: "<i4", dtypes.Uint32: "<u4", dtypes.Int64: "<i8", dtypes.Uint64: "<u8",
	dtypes.Bool: "|b1", dtypes.Complex64: "<c8", dtypes.Complex128: "<c16",
}

// writeNPY writes a tensor as np.save writes the array TensorFlow returns
// for it (format 1.0). numpy has no bfloat16 without ml_dtypes: such a
// tensor is written as float32, exactly. A string tensor becomes fixed-width
// bytes (|S), which drops trailing NUL bytes as numpy's bytes_ does.
func writeNPY(w io.Writer, t *tfgo.Tensor) error {
	dt := t.DataType()
	data := t.Data()
	descr, ok := npyDescr[dt]
	switch {
	case ok:
	case dt == dtypes.BFloat16:
		descr = "<f4"
		f := make([]byte, len(data)*2)
		for k := 0; k+1 < len(data); k += 2 {
			binary.LittleEndian.PutUint32(f[2*k:], math.Float32bits(half.BFloat16(binary.LittleEndian.Uint16(data[k:])).Float32()))
		}
		data = f
	case dt == dtypes.String:
		ss, err := t.Strings()
		if err != nil {
			return err
		}
		width := 1
		for _, s := range ss {
			width = max(width, len(s))
		}
		descr = "|S" + strconv.Itoa(width)
		data = make([]byte, len(ss)*width)
		for k, s := range ss {
			copy(data[k*width:], s)
		}
	default:
		return fmt.Errorf("no .npy dtype for %s", dt)
	}
	dims := make([]string, 0, len(t.Shape()))
	for _, d := range t.Shape() {
		dims = append(dims, strconv.FormatInt(d, 10))
	}
	shape := strings.Join(dims, ", ")
	if len(dims) == 1 {
		shape += ","
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shape)
	// numpy pads the header with spaces and a newline so that the data
	// starts at a multiple of 64 bytes.
	total := len(npyMagic) + 4 + len(header) + 1
	header += strings.Repeat(" ", (64-total%64)%64) + "\n"
	var pre [4]byte
	pre[0], pre[1] = 1, 0
	binary.LittleEndian.PutUint16(pre[2:], uint16(len(header)))
	for _, b := range [][]byte{npyMagic, pre[:], []byte(header), data} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
