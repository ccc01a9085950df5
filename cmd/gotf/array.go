package main

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/dtypes/half"
	"github.com/gotf/gotf/tfgo"
)

// array is an input as parsed from a literal, JSON or a .npy file, before
// it becomes a tensor of the signature's dtype: numbers are kept as int64
// while every one is an integer, so that int64 inputs keep their precision.
type array struct {
	shape []int64
	kind  arrayKind
	f     []float64
	i     []int64
	b     []bool
	s     [][]byte
	// f32 marks floats that were float32 or narrower, printed with the
	// digits that type has, as numpy prints a float32 array.
	f32 bool
}

type arrayKind int

const (
	kindInt arrayKind = iota
	kindFloat
	kindBool
	kindString
)

func (a *array) len() int {
	switch a.kind {
	case kindInt:
		return len(a.i)
	case kindFloat:
		return len(a.f)
	case kindBool:
		return len(a.b)
	}
	return len(a.s)
}

// tensor converts a to dt as numpy.asarray(value, dtype=dt) does when a
// session is fed a value of another type: numbers between numeric types
// (floats truncated towards zero for integer types), bools as 0 and 1.
// Strings become only string tensors, and string tensors take only strings.
func (a *array) tensor(dt tfgo.DataType) (*tfgo.Tensor, error) {
	if dt == dtypes.String {
		if a.kind != kindString {
			return nil, fmt.Errorf("the signature takes strings, got %s values", a.kindName())
		}
		return tfgo.NewStringTensor(a.shape, a.s)
	}
	if a.kind == kindString {
		return nil, fmt.Errorf("the signature takes %s, got strings", dt)
	}
	n := a.len()
	size := dt.Size()
	if size <= 0 {
		return nil, fmt.Errorf("inputs of dtype %s are not supported", dt)
	}
	buf := make([]byte, n*size)
	le := binary.LittleEndian
	for k := 0; k < n; k++ {
		var f float64
		var iv int64
		isInt := false
		switch a.kind {
		case kindInt:
			iv, isInt = a.i[k], true
			f = float64(iv)
		case kindFloat:
			f = a.f[k]
			iv = int64(f)
		case kindBool:
			if a.b[k] {
				f, iv = 1, 1
			}
			isInt = true
		}
		p := buf[k*size:]
		switch dt {
		case dtypes.Float:
			le.PutUint32(p, math.Float32bits(float32(f)))
		case dtypes.Double:
			le.PutUint64(p, math.Float64bits(f))
		case dtypes.Half:
			le.PutUint16(p, uint16(half.NewFloat16(float32(f))))
		case dtypes.BFloat16:
			le.PutUint16(p, uint16(half.NewBFloat16(float32(f))))
		case dtypes.Int8, dtypes.Uint8:
			p[0] = byte(iv)
		case dtypes.Int16, dtypes.Uint16:
			le.PutUint16(p, uint16(iv))
		case dtypes.Int32, dtypes.Uint32:
			le.PutUint32(p, uint32(iv))
		case dtypes.Int64, dtypes.Uint64:
			le.PutUint64(p, uint64(iv))
		case dtypes.Bool:
			if f != 0 || (isInt && iv != 0) {
				p[0] = 1
			}
		default:
			return nil, fmt.Errorf("inputs of dtype %s are not supported", dt)
		}
	}
	return tfgo.NewTensorFromBytes(dt, a.shape, buf)
}

func (a *array) kindName() string {
	return [...]string{"integer", "float", "bool", "string"}[a.kind]
}

// fromTensor reads an output tensor into an array for printing and .npy.
func fromTensor(t *tfgo.Tensor) (*array, error) {
	a := &array{shape: t.Shape()}
	dt := t.DataType()
	if dt == dtypes.String {
		s, err := t.Strings()
		if err != nil {
			return nil, err
		}
		a.kind, a.s = kindString, s
		return a, nil
	}
	data := t.Data()
	size := dt.Size()
	if size <= 0 {
		return nil, fmt.Errorf("outputs of dtype %s are not supported", dt)
	}
	n := len(data) / size
	le := binary.LittleEndian
	switch dt {
	case dtypes.Float, dtypes.Double, dtypes.Half, dtypes.BFloat16:
		a.kind, a.f, a.f32 = kindFloat, make([]float64, n), dt != dtypes.Double
	case dtypes.Bool:
		a.kind, a.b = kindBool, make([]bool, n)
	default:
		a.kind, a.i = kindInt, make([]int64, n)
	}
	for k := 0; k < n; k++ {
		p := data[k*size:]
		switch dt {
		case dtypes.Float:
			a.f[k] = float64(math.Float32frombits(le.Uint32(p)))
		case dtypes.Double:
			a.f[k] = math.Float64frombits(le.Uint64(p))
		case dtypes.Half:
			a.f[k] = float64(half.Float16(le.Uint16(p)).Float32())
		case dtypes.BFloat16:
			a.f[k] = float64(half.BFloat16(le.Uint16(p)).Float32())
		case dtypes.Bool:
			a.b[k] = p[0] != 0
		case dtypes.Int8:
			a.i[k] = int64(int8(p[0]))
		case dtypes.Uint8:
			a.i[k] = int64(p[0])
		case dtypes.Int16:
			a.i[k] = int64(int16(le.Uint16(p)))
		case dtypes.Uint16:
			a.i[k] = int64(le.Uint16(p))
		case dtypes.Int32:
			a.i[k] = int64(int32(le.Uint32(p)))
		case dtypes.Uint32:
			a.i[k] = int64(le.Uint32(p))
		case dtypes.Int64, dtypes.Uint64:
			a.i[k] = int64(le.Uint64(p))
		default:
			return nil, fmt.Errorf("outputs of dtype %s are not supported", dt)
		}
	}
	return a, nil
}
