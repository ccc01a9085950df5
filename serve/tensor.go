package serve

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/dtypes/half"
	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
)

// tfName is TensorFlow's C++ name of a dtype (DataTypeString), which TF
// Serving's messages use ("float", not Python's "float32").
func tfName(dt tfgo.DataType) string {
	switch dt {
	case tfgo.Float:
		return "float"
	case tfgo.Double:
		return "double"
	case tfgo.Half:
		return "half"
	}
	return dt.String()
}

// denseShape is the shape a JSON value describes, read along its first
// elements as TF Serving does (GetDenseTensorShape); fill checks the rest.
func denseShape(v *jvalue) []int64 {
	var shape []int64
	for v.kind == jArray {
		shape = append(shape, int64(len(v.arr)))
		if len(v.arr) == 0 {
			break
		}
		v = &v.arr[0]
	}
	return shape
}

// tensorBuf collects the elements of one tensor, flat, in row-major order.
type tensorBuf struct {
	dt    tfgo.DataType
	data  []byte   // fixed-size elements, little-endian
	strs  [][]byte // string elements
	count int64
}

func (t *tensorBuf) typeError(v *jvalue) error {
	return statusf(InvalidArgument, "JSON Value: %s Type: %s is not of expected type: %s", v.debugString(), v.typeName(), tfName(t.dt))
}

// add appends one scalar JSON value as TF Serving's AddValueToTensor
// does, except that an integer out of a narrow type's range (300 for a
// uint8) is refused rather than wrapped.
func (t *tensorBuf) add(v *jvalue) error {
	switch t.dt {
	case tfgo.Float, tfgo.Double:
		if !v.isNumber() {
			return t.typeError(v)
		}
		f := v.float64()
		if t.dt == tfgo.Float {
			t.data = binary.LittleEndian.AppendUint32(t.data, math.Float32bits(float32(f)))
		} else {
			t.data = binary.LittleEndian.AppendUint64(t.data, math.Float64bits(f))
		}
	case tfgo.Half, tfgo.BFloat16:
		// TF Serving's JSON has no 16-bit floats (its issue 1639);
		// they are numbers here, rounded to the nearest 16-bit float
		// from float32.
		if !v.isNumber() {
			return t.typeError(v)
		}
		f := float32(v.float64())
		if t.dt == tfgo.Half {
			t.data = binary.LittleEndian.AppendUint16(t.data, uint16(half.NewFloat16(f)))
		} else {
			t.data = binary.LittleEndian.AppendUint16(t.data, uint16(half.NewBFloat16(f)))
		}
	case tfgo.Int8, tfgo.Int16, tfgo.Int32, tfgo.Int64:
		if !v.isInteger() {
			return t.typeError(v)
		}
		bits := t.dt.Size() * 8
		n, err := strconv.ParseInt(v.s, 10, bits)
		if err != nil {
			return t.typeError(v)
		}
		t.appendInt(uint64(n))
	case tfgo.Uint8, tfgo.Uint16, tfgo.Uint32, tfgo.Uint64:
		if !v.isInteger() {
			return t.typeError(v)
		}
		n, err := strconv.ParseUint(v.s, 10, t.dt.Size()*8)
		if err != nil {
			return t.typeError(v)
		}
		t.appendInt(n)
	case tfgo.Bool:
		if v.kind != jTrue && v.kind != jFalse {
			return t.typeError(v)
		}
		b := byte(0)
		if v.kind == jTrue {
			b = 1
		}
		t.data = append(t.data, b)
	case tfgo.String:
		switch {
		case v.kind == jString:
			t.strs = append(t.strs, []byte(v.s))
		case v.kind == jObject:
			if !v.isBase64() {
				return statusf(InvalidArgument, "JSON Value: %s not formatted correctly for base64 data", v.debugString())
			}
			b, err := decodeBase64(v.arr[0].s)
			if err != nil {
				return err
			}
			t.strs = append(t.strs, b)
		default:
			return t.typeError(v)
		}
	default:
		return statusf(Unimplemented, "Conversion of JSON Value: %s to type: %s", v.debugString(), tfName(t.dt))
	}
	t.count++
	return nil
}

func (t *tensorBuf) appendInt(n uint64) {
	switch t.dt.Size() {
	case 1:
		t.data = append(t.data, byte(n))
	case 2:
		t.data = binary.LittleEndian.AppendUint16(t.data, uint16(n))
	case 4:
		t.data = binary.LittleEndian.AppendUint32(t.data, uint32(n))
	default:
		t.data = binary.LittleEndian.AppendUint64(t.data, n)
	}
}

// decodeBase64 accepts standard base64 with or without padding, and the
// URL-safe alphabet, as absl::Base64Unescape does.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
			return b, nil
		}
	} else if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return nil, statusf(InvalidArgument, "Unable to base64 decode")
}

// fill appends the elements of v, which must have shape[level:]
// (TF Serving's FillTensorProto, with its messages).
func (t *tensorBuf) fill(v *jvalue, level int, shape []int64) error {
	rank := len(shape)
	if v.kind != jArray {
		if level != rank {
			return statusf(InvalidArgument, "JSON Value: %s found at incorrect level: %d in the JSON DOM. Expected at level: %d", v.debugString(), level+1, rank)
		}
		if v.kind == jObject && t.dt != tfgo.String {
			return t.typeError(v)
		}
		return t.add(v)
	}
	if level >= rank {
		return statusf(InvalidArgument, "Encountered list at unexpected level: %d expected < %d", level, rank)
	}
	if int64(len(v.arr)) != shape[level] {
		return statusf(InvalidArgument, "Encountered list at unexpected size: %d at level: %d expected size: %d", len(v.arr), level, shape[level])
	}
	for i := range v.arr {
		if err := t.fill(&v.arr[i], level+1, shape); err != nil {
			return err
		}
	}
	return nil
}

// tensor makes the runtime tensor of shape from the collected elements.
func (t *tensorBuf) tensor(shape []int64) (*tfgo.Tensor, error) {
	if t.dt == tfgo.String {
		return tfgo.NewStringTensor(shape, t.strs)
	}
	return tfgo.NewTensorFromBytes(t.dt, shape, t.data)
}

// shapeString is TF Serving's [x,y,z] form of a shape.
func shapeString(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// requestTensors are the input tensors decoded from one request; Close
// frees them.
type requestTensors map[string]*tfgo.Tensor

func (r requestTensors) Close() {
	for _, t := range r {
		t.Close()
	}
}

// columnar decodes the "inputs" value of a request (TF Serving's
// FillTensorMapFromInputsMap).
func columnar(val *jvalue, inputs map[string]runner.TensorInfo) (requestTensors, error) {
	out := requestTensors{}
	one := func(name string, v *jvalue) error {
		shape := denseShape(v)
		buf := &tensorBuf{dt: inputs[name].DType}
		if err := buf.fill(v, 0, shape); err != nil {
			return err
		}
		t, err := buf.tensor(shape)
		if err != nil {
			return statusf(InvalidArgument, "input %s: %v", name, err)
		}
		out[name] = t
		return nil
	}
	names := sortedNames(inputs)
	if val.kind != jObject || val.isBase64() {
		if len(inputs) > 1 {
			return nil, statusf(InvalidArgument, "inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map")
		}
		if err := one(names[0], val); err != nil {
			return nil, err
		}
		return out, nil
	}
	for _, name := range names {
		item := val.member(name)
		if item == nil {
			out.Close()
			return nil, statusf(InvalidArgument, "Missing named input: %s in 'inputs' object.", name)
		}
		if err := one(name, item); err != nil {
			out.Close()
			return nil, err
		}
	}
	return out, nil
}

// rows decodes the "instances" list of a request (TF Serving's
// FillTensorMapFromInstancesList): every instance gives one element of the
// batch, and all must have the same shape.
func rows(list *jvalue, inputs map[string]runner.TensorInfo) (requestTensors, error) {
	isObject := func(v *jvalue) bool { return v.kind == jObject && !v.isBase64() }
	names := sortedNames(inputs)
	if list.arr[0].kind != jObject && len(inputs) > 1 {
		return nil, statusf(InvalidArgument, "instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map")
	}
	objects := isObject(&list.arr[0])
	bufs := map[string]*tensorBuf{}
	shapes := map[string][]int64{}
	addItem := func(name string, v *jvalue) error {
		info, ok := inputs[name]
		if !ok {
			return statusf(InvalidArgument, "JSON object: does not have named input: %s", name)
		}
		shape := denseShape(v)
		buf := bufs[name]
		if buf == nil {
			buf = &tensorBuf{dt: info.DType}
			bufs[name] = buf
		}
		before := buf.count
		if err := buf.fill(v, 0, shape); err != nil {
			return err
		}
		prev, seen := shapes[name]
		if !seen {
			shapes[name] = shape
			return nil
		}
		if n, _ := dtypes.NumElements(prev); n != buf.count-before {
			return statusf(InvalidArgument, "Expecting tensor size: %d but got: %d", n, buf.count-before)
		}
		if !slices.Equal(prev, shape) {
			return statusf(InvalidArgument, "Expecting shape %s but got: %s", shapeString(prev), shapeString(shape))
		}
		return nil
	}
	for i := range list.arr {
		elem := &list.arr[i]
		if objects {
			if !isObject(elem) {
				return nil, statusf(InvalidArgument, "Expecting object but got list at item %d of input list", i)
			}
			for k, key := range elem.keys {
				if err := addItem(key, &elem.arr[k]); err != nil {
					return nil, statusf(InvalidArgument, "Failed to process element: %d key: %s of 'instances' list. Error: %s", i, key, statusText(err))
				}
			}
			keys := append([]string(nil), elem.keys...)
			sort.Strings(keys)
			if strings.Join(keys, ",") != strings.Join(names, ",") {
				return nil, statusf(InvalidArgument, "Failed to process element: %d of 'instances' list. JSON object: %s keys must be equal to: %s", i, elem.debugString(), strings.Join(names, ","))
			}
		} else {
			if isObject(elem) {
				return nil, statusf(InvalidArgument, "Expecting value/list but got object at item %d of input list", i)
			}
			if err := addItem(names[0], elem); err != nil {
				return nil, statusf(InvalidArgument, "Failed to process element: %d of 'instances' list. Error: %s", i, statusText(err))
			}
		}
	}
	out := requestTensors{}
	for name, buf := range bufs {
		shape := append([]int64{int64(len(list.arr))}, shapes[name]...)
		t, err := buf.tensor(shape)
		if err != nil {
			out.Close()
			return nil, statusf(InvalidArgument, "input %s: %v", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// statusText is how TF Serving quotes a nested status: "CODE: message".
func statusText(err error) string {
	st := statusOf(err)
	return codeName(st.Code) + ": " + st.Message
}

// codeName is the status code's name in TF Serving's texts ("INVALID_ARGUMENT").
func codeName(c Code) string { return c.String() }

func sortedNames[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// --- Writing tensors as TF Serving does (json_tensor.cc).

// writeFloat writes a float as TF Serving's WriteDecimal: six significant
// digits when they read back to the same value, else full precision; a
// trailing ".0" on whole numbers so that a list of decimals stays decimal;
// NaN, Infinity, -Infinity as bare tokens.
func writeFloat(b *strings.Builder, f float64, bits int) {
	switch {
	case math.IsNaN(f):
		b.WriteString("NaN")
		return
	case math.IsInf(f, 1):
		b.WriteString("Infinity")
		return
	case math.IsInf(f, -1):
		b.WriteString("-Infinity")
		return
	}
	s := strconv.FormatFloat(f, 'g', 6, bits)
	if back, _ := strconv.ParseFloat(s, bits); back != f {
		digits := 17
		if bits == 32 {
			digits = 9
		}
		s = strconv.FormatFloat(f, 'g', digits, bits)
	}
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	b.WriteString(s)
}

// tensorJSON holds a tensor's elements ready to write one at a time.
type tensorJSON struct {
	name    string
	dt      tfgo.DataType
	shape   []int64
	data    []byte
	strs    [][]byte
	asBytes bool // a string tensor named *_bytes: base64 objects
	off     int64
}

func newTensorJSON(name string, t *tfgo.Tensor) (*tensorJSON, error) {
	tj := &tensorJSON{name: name, dt: t.DataType(), shape: t.Shape()}
	switch tj.dt {
	case tfgo.String:
		s, err := t.Strings()
		if err != nil {
			return nil, statusf(Internal, "output %s: %v", name, err)
		}
		tj.strs = s
		tj.asBytes = strings.HasSuffix(name, "_bytes")
	case tfgo.Float, tfgo.Double, tfgo.Half, tfgo.BFloat16, tfgo.Int8, tfgo.Int16, tfgo.Int32, tfgo.Int64,
		tfgo.Uint8, tfgo.Uint16, tfgo.Uint32, tfgo.Uint64, tfgo.Bool:
		tj.data = t.Data()
	default:
		return nil, statusf(InvalidArgument, "Failed to write JSON value for tensor type: %s", tfName(tj.dt))
	}
	return tj, nil
}

func (tj *tensorJSON) writeOne(b *strings.Builder) {
	i := tj.off
	tj.off++
	le := binary.LittleEndian
	switch tj.dt {
	case tfgo.Float:
		writeFloat(b, float64(math.Float32frombits(le.Uint32(tj.data[4*i:]))), 32)
	case tfgo.Double:
		writeFloat(b, math.Float64frombits(le.Uint64(tj.data[8*i:])), 64)
	case tfgo.Half:
		writeFloat(b, float64(half.Float16(le.Uint16(tj.data[2*i:])).Float32()), 32)
	case tfgo.BFloat16:
		writeFloat(b, float64(half.BFloat16(le.Uint16(tj.data[2*i:])).Float32()), 32)
	case tfgo.Int8:
		b.WriteString(strconv.FormatInt(int64(int8(tj.data[i])), 10))
	case tfgo.Int16:
		b.WriteString(strconv.FormatInt(int64(int16(le.Uint16(tj.data[2*i:]))), 10))
	case tfgo.Int32:
		b.WriteString(strconv.FormatInt(int64(int32(le.Uint32(tj.data[4*i:]))), 10))
	case tfgo.Int64:
		b.WriteString(strconv.FormatInt(int64(le.Uint64(tj.data[8*i:])), 10))
	case tfgo.Uint8:
		b.WriteString(strconv.FormatUint(uint64(tj.data[i]), 10))
	case tfgo.Uint16:
		b.WriteString(strconv.FormatUint(uint64(le.Uint16(tj.data[2*i:])), 10))
	case tfgo.Uint32:
		b.WriteString(strconv.FormatUint(uint64(le.Uint32(tj.data[4*i:])), 10))
	case tfgo.Uint64:
		b.WriteString(strconv.FormatUint(le.Uint64(tj.data[8*i:]), 10))
	case tfgo.Bool:
		if tj.data[i] != 0 {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case tfgo.String:
		if tj.asBytes {
			b.WriteString(`{"b64": `)
			writeJSONString(b, base64.StdEncoding.EncodeToString(tj.strs[i]))
			b.WriteByte('}')
		} else {
			writeJSONString(b, string(tj.strs[i]))
		}
	}
}

// writeValues writes dimensions dim.. of the tensor from the current
// element on (TF Serving's AddTensorValues): a scalar bare, else nested
// lists.
func (tj *tensorJSON) writeValues(b *strings.Builder, dim int) {
	if dim >= len(tj.shape) {
		tj.writeOne(b)
		return
	}
	b.WriteByte('[')
	for i := int64(0); i < tj.shape[dim]; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		tj.writeValues(b, dim+1)
	}
	b.WriteByte(']')
}

// predictResponse writes a predict answer in the request's format: row
// ("predictions", one entry per batch element) or columnar ("outputs").
// One output is written without its name, several as an object.
func predictResponse(outputs map[string]*tfgo.Tensor, row bool) (string, error) {
	if len(outputs) == 0 {
		return "", statusf(InvalidArgument, "Cannot convert empty tensor map to JSON")
	}
	names := sortedNames(outputs)
	tjs := make([]*tensorJSON, len(names))
	for i, n := range names {
		tj, err := newTensorJSON(n, outputs[n])
		if err != nil {
			return "", err
		}
		tjs[i] = tj
	}
	var b strings.Builder
	if !row {
		b.WriteString(`{"outputs": `)
		writeEntry(&b, tjs, 0)
		b.WriteString("}\n")
		return b.String(), nil
	}
	batch := int64(-1)
	for _, tj := range tjs {
		if len(tj.shape) == 0 {
			return "", statusf(InvalidArgument, "Tensor name: %s has no shape information ", tj.name)
		}
		if batch >= 0 && tj.shape[0] != batch {
			return "", statusf(InvalidArgument, "Tensor name: %s has inconsistent batch size: %d expecting: %d", tj.name, tj.shape[0], batch)
		}
		batch = tj.shape[0]
	}
	b.WriteString(`{"predictions": [`)
	for item := int64(0); item < batch; item++ {
		if item > 0 {
			b.WriteString(",\n    ")
		}
		writeEntry(&b, tjs, 1)
	}
	b.WriteString("]}\n")
	return b.String(), nil
}

// writeEntry writes the outputs from dimension dim on, at their current
// elements: one output bare, several as an object keyed by name.
func writeEntry(b *strings.Builder, tjs []*tensorJSON, dim int) {
	multi := len(tjs) > 1
	if multi {
		b.WriteByte('{')
	}
	for i, tj := range tjs {
		if i > 0 {
			b.WriteString(", ")
		}
		if multi {
			writeJSONString(b, tj.name)
			b.WriteString(": ")
		}
		tj.writeValues(b, dim)
	}
	if multi {
		b.WriteByte('}')
	}
}
