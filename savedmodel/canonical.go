package savedmodel

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MarshalCanonical serializes m as TensorFlow's C++ code does with
// deterministic serialization (SerializeToStringDeterministic): every
// field in field-number order, oneof members included, map entries sorted
// by key with both key and value written, unknown fields last.
//
// Go's proto.Marshal writes oneof fields after the other fields (so a
// TensorInfo, whose name is field 1 of a oneof, comes out in another byte
// order than TensorFlow writes it). TensorFlow hashes such serializations
// for a SavedModel's fingerprint, and Write uses MarshalCanonical for
// fingerprint.pb's hashes and for saved_model.pb.
//
// TensorFlow writes saved_model.pb from Python, with protobuf's (upb's)
// SerializeToString(deterministic=True), which orders map entries
// otherwise than C++ in two cases: integer keys come in descending order
// (FunctionDef.arg_attr, resource_arg_unique_id), and a string key comes
// after the keys it is a prefix of (a node's attr "Tidx" before "T").
// Without such maps, a saved_model.pb written in Go is byte for byte what
// TensorFlow writes for the same proto; with them, the bytes differ in the
// order of those map entries only, and parse to the same proto (the
// savedmodel interop tests check both against Python TensorFlow).
func MarshalCanonical(m proto.Message) ([]byte, error) {
	if m == nil {
		return nil, errors.New("savedmodel: MarshalCanonical of a nil message")
	}
	return appendMessage(nil, m.ProtoReflect())
}

func appendMessage(b []byte, m protoreflect.Message) ([]byte, error) {
	fields := m.Descriptor().Fields()
	fds := make([]protoreflect.FieldDescriptor, fields.Len())
	for i := range fds {
		fds[i] = fields.Get(i)
	}
	sort.Slice(fds, func(i, j int) bool { return fds[i].Number() < fds[j].Number() })
	var err error
	for _, fd := range fds {
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		switch {
		case fd.IsMap():
			b, err = appendMap(b, fd, v.Map())
		case fd.IsList():
			b, err = appendList(b, fd, v.List())
		default:
			b, err = appendField(b, fd, v)
		}
		if err != nil {
			return nil, err
		}
	}
	return append(b, m.GetUnknown()...), nil
}

func appendMap(b []byte, fd protoreflect.FieldDescriptor, mp protoreflect.Map) ([]byte, error) {
	keys := make([]protoreflect.MapKey, 0, mp.Len())
	mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k)
		return true
	})
	kd, vd := fd.MapKey(), fd.MapValue()
	sort.Slice(keys, func(i, j int) bool {
		a, c := keys[i].Interface(), keys[j].Interface()
		switch a := a.(type) {
		case string:
			return a < c.(string)
		case bool:
			return !a && c.(bool)
		case int32:
			return a < c.(int32)
		case int64:
			return a < c.(int64)
		case uint32:
			return a < c.(uint32)
		case uint64:
			return a < c.(uint64)
		}
		return false
	})
	for _, k := range keys {
		entry, err := appendField(nil, kd, k.Value())
		if err != nil {
			return nil, err
		}
		if entry, err = appendField(entry, vd, mp.Get(k)); err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, fd.Number(), protowire.BytesType)
		b = protowire.AppendBytes(b, entry)
	}
	return b, nil
}

func appendList(b []byte, fd protoreflect.FieldDescriptor, l protoreflect.List) ([]byte, error) {
	if fd.IsPacked() {
		var packed []byte
		for i := 0; i < l.Len(); i++ {
			packed = appendScalar(packed, fd.Kind(), l.Get(i))
		}
		b = protowire.AppendTag(b, fd.Number(), protowire.BytesType)
		return protowire.AppendBytes(b, packed), nil
	}
	var err error
	for i := 0; i < l.Len(); i++ {
		if b, err = appendField(b, fd, l.Get(i)); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// appendField appends one tag and value.
func appendField(b []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value) ([]byte, error) {
	switch fd.Kind() {
	case protoreflect.MessageKind:
		inner, err := appendMessage(nil, v.Message())
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, fd.Number(), protowire.BytesType)
		return protowire.AppendBytes(b, inner), nil
	case protoreflect.GroupKind:
		return nil, fmt.Errorf("field %s: groups are not supported", fd.FullName())
	case protoreflect.StringKind, protoreflect.BytesKind:
		b = protowire.AppendTag(b, fd.Number(), protowire.BytesType)
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		b = protowire.AppendTag(b, fd.Number(), protowire.Fixed32Type)
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		b = protowire.AppendTag(b, fd.Number(), protowire.Fixed64Type)
	default:
		b = protowire.AppendTag(b, fd.Number(), protowire.VarintType)
	}
	return appendScalar(b, fd.Kind(), v), nil
}

// appendScalar appends a scalar value without its tag.
func appendScalar(b []byte, k protoreflect.Kind, v protoreflect.Value) []byte {
	switch k {
	case protoreflect.BoolKind:
		return protowire.AppendVarint(b, protowire.EncodeBool(v.Bool()))
	case protoreflect.EnumKind:
		return protowire.AppendVarint(b, uint64(int64(v.Enum())))
	case protoreflect.Int32Kind, protoreflect.Int64Kind:
		return protowire.AppendVarint(b, uint64(v.Int()))
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind:
		return protowire.AppendVarint(b, v.Uint())
	case protoreflect.Sint32Kind:
		return protowire.AppendVarint(b, protowire.EncodeZigZag(int64(int32(v.Int()))))
	case protoreflect.Sint64Kind:
		return protowire.AppendVarint(b, protowire.EncodeZigZag(v.Int()))
	case protoreflect.Fixed32Kind:
		return protowire.AppendFixed32(b, uint32(v.Uint()))
	case protoreflect.Sfixed32Kind:
		return protowire.AppendFixed32(b, uint32(int32(v.Int())))
	case protoreflect.FloatKind:
		return protowire.AppendFixed32(b, math.Float32bits(float32(v.Float())))
	case protoreflect.Fixed64Kind:
		return protowire.AppendFixed64(b, v.Uint())
	case protoreflect.Sfixed64Kind:
		return protowire.AppendFixed64(b, uint64(v.Int()))
	case protoreflect.DoubleKind:
		return protowire.AppendFixed64(b, math.Float64bits(v.Float()))
	case protoreflect.StringKind:
		return protowire.AppendString(b, v.String())
	case protoreflect.BytesKind:
		return protowire.AppendBytes(b, v.Bytes())
	}
	return b
}
