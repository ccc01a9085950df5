package serve

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/tfgo"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	tspb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
)

// tensorFromProto makes a runtime tensor of a request's TensorProto as
// TensorFlow's Tensor::FromProto reads it: tensor_content when set, else
// the dtype's repeated field, whose last value fills the elements it does
// not list. limit bounds the bytes allocated, so that a short proto with a
// huge shape cannot make the server allocate it (0: no bound).
func tensorFromProto(name string, tp *tpb.TensorProto, limit int64) (*tfgo.Tensor, error) {
	bad := func(format string, args ...any) error {
		return statusf(InvalidArgument, "input %q: "+format, append([]any{name}, args...)...)
	}
	if tp.GetTensorShape().GetUnknownRank() {
		return nil, bad("tensor of unknown rank")
	}
	dims := tp.GetTensorShape().GetDim()
	shape := make([]int64, len(dims))
	for i, d := range dims {
		if d.GetSize() < 0 {
			return nil, bad("dimension %d has size %d", i, d.GetSize())
		}
		shape[i] = d.GetSize()
	}
	dt := dtypes.FromProto(tp.GetDtype())
	n, err := dtypes.NumElements(shape)
	if err != nil {
		return nil, bad("%v", err)
	}
	if dt == tfgo.String {
		vals := tp.GetStringVal()
		if err := checkCount(len(vals), n); err != nil {
			return nil, bad("%v", err)
		}
		var total int64
		for _, v := range vals {
			total += int64(len(v))
		}
		if len(vals) > 0 {
			total += (n - int64(len(vals))) * int64(len(vals[len(vals)-1]))
		}
		if limit > 0 && total > limit {
			return nil, statusf(ResourceExhausted, "input %q: %d bytes of strings, over the server's bound of %d", name, total, limit)
		}
		out := make([][]byte, n)
		for i := range out {
			switch {
			case i < len(vals):
				out[i] = vals[i]
			case len(vals) > 0:
				out[i] = vals[len(vals)-1]
			default:
				out[i] = nil
			}
		}
		return tfgo.NewStringTensor(shape, out)
	}
	size := dt.Size()
	if size <= 0 {
		return nil, bad("dtype %s is not served", dtName(dt))
	}
	nbytes, err := dtypes.NumBytes(dt, shape)
	if err != nil {
		return nil, bad("%v", err)
	}
	if limit > 0 && nbytes > limit {
		return nil, statusf(ResourceExhausted, "input %q: a tensor of %d bytes, over the server's bound of %d", name, nbytes, limit)
	}
	if c := tp.GetTensorContent(); len(c) > 0 {
		if int64(len(c)) != nbytes {
			return nil, bad("tensor_content of %d bytes for %d elements of %s", len(c), n, dtName(dt))
		}
		return tfgo.NewTensorFromBytes(dt, shape, c)
	}
	buf := make([]byte, nbytes)
	fill := func(count int, put func(i, j int)) error {
		if err := checkCount(count, n); err != nil {
			return err
		}
		if count == 0 {
			return nil
		}
		for i := 0; i < int(n); i++ {
			put(i, min(i, count-1))
		}
		return nil
	}
	le := binary.LittleEndian
	switch dt {
	case tfgo.Float:
		v := tp.GetFloatVal()
		err = fill(len(v), func(i, j int) { le.PutUint32(buf[4*i:], math.Float32bits(v[j])) })
	case tfgo.Double:
		v := tp.GetDoubleVal()
		err = fill(len(v), func(i, j int) { le.PutUint64(buf[8*i:], math.Float64bits(v[j])) })
	case tfgo.Int32, tfgo.Qint32:
		v := tp.GetIntVal()
		err = fill(len(v), func(i, j int) { le.PutUint32(buf[4*i:], uint32(v[j])) })
	case tfgo.Int16, tfgo.Uint16, tfgo.Qint16, tfgo.Quint16:
		v := tp.GetIntVal()
		err = fill(len(v), func(i, j int) { le.PutUint16(buf[2*i:], uint16(v[j])) })
	case tfgo.Int8, tfgo.Uint8, tfgo.Qint8, tfgo.Quint8:
		v := tp.GetIntVal()
		err = fill(len(v), func(i, j int) { buf[i] = byte(v[j]) })
	case tfgo.Half, tfgo.BFloat16:
		v := tp.GetHalfVal()
		err = fill(len(v), func(i, j int) { le.PutUint16(buf[2*i:], uint16(v[j])) })
	case tfgo.Int64:
		v := tp.GetInt64Val()
		err = fill(len(v), func(i, j int) { le.PutUint64(buf[8*i:], uint64(v[j])) })
	case tfgo.Uint32:
		v := tp.GetUint32Val()
		err = fill(len(v), func(i, j int) { le.PutUint32(buf[4*i:], v[j]) })
	case tfgo.Uint64:
		v := tp.GetUint64Val()
		err = fill(len(v), func(i, j int) { le.PutUint64(buf[8*i:], v[j]) })
	case tfgo.Bool:
		v := tp.GetBoolVal()
		err = fill(len(v), func(i, j int) {
			if v[j] {
				buf[i] = 1
			}
		})
	case tfgo.Complex64:
		v := tp.GetScomplexVal()
		if len(v)%2 != 0 {
			return nil, bad("scomplex_val has an odd count %d", len(v))
		}
		err = fill(len(v)/2, func(i, j int) {
			le.PutUint32(buf[8*i:], math.Float32bits(v[2*j]))
			le.PutUint32(buf[8*i+4:], math.Float32bits(v[2*j+1]))
		})
	case tfgo.Complex128:
		v := tp.GetDcomplexVal()
		if len(v)%2 != 0 {
			return nil, bad("dcomplex_val has an odd count %d", len(v))
		}
		err = fill(len(v)/2, func(i, j int) {
			le.PutUint64(buf[16*i:], math.Float64bits(v[2*j]))
			le.PutUint64(buf[16*i+8:], math.Float64bits(v[2*j+1]))
		})
	default:
		return nil, bad("dtype %s is not served", dtName(dt))
	}
	if err != nil {
		return nil, bad("%v", err)
	}
	return tfgo.NewTensorFromBytes(dt, shape, buf)
}

func checkCount(have int, want int64) error {
	if int64(have) > want {
		return statusf(InvalidArgument, "%d values for %d elements", have, want)
	}
	return nil
}

// tensorProto is a response's TensorProto for an output, in the dtype's
// repeated field as TF Serving's default (Tensor::AsProtoField) writes it.
func tensorProto(t *tfgo.Tensor) (*tpb.TensorProto, error) {
	dt := t.DataType()
	sh := t.Shape()
	tp := &tpb.TensorProto{Dtype: dt.Proto(), TensorShape: &tspb.TensorShapeProto{}}
	for _, d := range sh {
		tp.TensorShape.Dim = append(tp.TensorShape.Dim, &tspb.TensorShapeProto_Dim{Size: d})
	}
	if dt == tfgo.String {
		s, err := t.Strings()
		if err != nil {
			return nil, err
		}
		tp.StringVal = s
		return tp, nil
	}
	b := t.Data()
	le := binary.LittleEndian
	n := int(t.NumElements())
	switch dt {
	case tfgo.Float:
		tp.FloatVal = make([]float32, n)
		for i := range tp.FloatVal {
			tp.FloatVal[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case tfgo.Double:
		tp.DoubleVal = make([]float64, n)
		for i := range tp.DoubleVal {
			tp.DoubleVal[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
	case tfgo.Int32, tfgo.Qint32:
		tp.IntVal = make([]int32, n)
		for i := range tp.IntVal {
			tp.IntVal[i] = int32(le.Uint32(b[4*i:]))
		}
	case tfgo.Int16, tfgo.Qint16:
		tp.IntVal = make([]int32, n)
		for i := range tp.IntVal {
			tp.IntVal[i] = int32(int16(le.Uint16(b[2*i:])))
		}
	case tfgo.Uint16, tfgo.Quint16:
		tp.IntVal = make([]int32, n)
		for i := range tp.IntVal {
			tp.IntVal[i] = int32(le.Uint16(b[2*i:]))
		}
	case tfgo.Int8, tfgo.Qint8:
		tp.IntVal = make([]int32, n)
		for i := range tp.IntVal {
			tp.IntVal[i] = int32(int8(b[i]))
		}
	case tfgo.Uint8, tfgo.Quint8:
		tp.IntVal = make([]int32, n)
		for i := range tp.IntVal {
			tp.IntVal[i] = int32(b[i])
		}
	case tfgo.Half, tfgo.BFloat16:
		tp.HalfVal = make([]int32, n)
		for i := range tp.HalfVal {
			tp.HalfVal[i] = int32(le.Uint16(b[2*i:]))
		}
	case tfgo.Int64:
		tp.Int64Val = make([]int64, n)
		for i := range tp.Int64Val {
			tp.Int64Val[i] = int64(le.Uint64(b[8*i:]))
		}
	case tfgo.Uint32:
		tp.Uint32Val = make([]uint32, n)
		for i := range tp.Uint32Val {
			tp.Uint32Val[i] = le.Uint32(b[4*i:])
		}
	case tfgo.Uint64:
		tp.Uint64Val = make([]uint64, n)
		for i := range tp.Uint64Val {
			tp.Uint64Val[i] = le.Uint64(b[8*i:])
		}
	case tfgo.Bool:
		tp.BoolVal = make([]bool, n)
		for i := range tp.BoolVal {
			tp.BoolVal[i] = b[i] != 0
		}
	case tfgo.Complex64:
		tp.ScomplexVal = make([]float32, 2*n)
		for i := range tp.ScomplexVal {
			tp.ScomplexVal[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case tfgo.Complex128:
		tp.DcomplexVal = make([]float64, 2*n)
		for i := range tp.DcomplexVal {
			tp.DcomplexVal[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
	case tfgo.Resource, tfgo.Variant:
		// Their buffers hold C++ objects, not values.
		return nil, fmt.Errorf("a %s tensor has no TensorProto here", dt)
	default:
		// What has no repeated field goes as its bytes.
		tp.TensorContent = append([]byte(nil), b...)
	}
	return tp, nil
}
