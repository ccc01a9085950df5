package timeline

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/gotf/gotf/internal/pytext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Python's output formats, so that the trace is byte for byte the one
// Python writes: json.dumps(trace, indent=4, separators=(',', ': ')), and
// str() of a proto (text_format.MessageToString) for tensor snapshots.
// Go's encoding/json and prototext differ from them in key order, escaping
// and (prototext, deliberately) whitespace.

// writePyJSON writes v as json.dumps(v, indent=4, separators=(',', ': ')).
func writePyJSON(b *strings.Builder, v any, level int) {
	pad := func(l int) string { return "\n" + strings.Repeat("    ", l) }
	switch x := v.(type) {
	case object:
		if len(x) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteByte('{')
		for i, f := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(pad(level + 1))
			writePyString(b, f.key)
			b.WriteString(": ")
			writePyJSON(b, f.value, level+1)
		}
		b.WriteString(pad(level) + "}")
	case []any:
		if len(x) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(pad(level + 1))
			writePyJSON(b, e, level+1)
		}
		b.WriteString(pad(level) + "]")
	case string:
		writePyString(b, x)
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	default:
		// Only the types above are built here; anything else is a bug,
		// written so that the JSON stays valid.
		b.WriteString("null")
	}
}

// writePyString is json's ensure_ascii string form: non-ASCII as \uXXXX
// (surrogate pairs beyond the BMP).
func writePyString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			// ensure_ascii escapes all but printable ASCII (DEL included).
			switch {
			case r >= 0x10000:
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
			case r < 0x20 || r > 0x7e:
				fmt.Fprintf(b, `\u%04x`, r)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// pyTextFormat is str(m) in Python: the set fields in field-number order,
// two spaces of indent per nesting level.
func pyTextFormat(m proto.Message) string {
	var b strings.Builder
	writeText(&b, m.ProtoReflect(), 0)
	return b.String()
}

func writeText(b *strings.Builder, m protoreflect.Message, level int) {
	var fds []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		fds = append(fds, fd)
		return true
	})
	sort.Slice(fds, func(i, j int) bool { return fds[i].Number() < fds[j].Number() })
	ind := strings.Repeat("  ", level)
	for _, fd := range fds {
		v := m.Get(fd)
		var elems []protoreflect.Value
		switch {
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				elems = append(elems, v.List().Get(i))
			}
		case fd.IsMap():
			// No map fields in the step stats messages a snapshot holds;
			// Python would print entries as messages.
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				fmt.Fprintf(b, "%s%s {\n%s  key: %v\n%s  value: %v\n%s}\n", ind, fd.Name(), ind, k.Interface(), ind, mv.Interface(), ind)
				return true
			})
			continue
		default:
			elems = []protoreflect.Value{v}
		}
		for _, e := range elems {
			if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
				fmt.Fprintf(b, "%s%s {\n", ind, fd.Name())
				writeText(b, e.Message(), level+1)
				fmt.Fprintf(b, "%s}\n", ind)
				continue
			}
			fmt.Fprintf(b, "%s%s: %s\n", ind, fd.Name(), textScalar(fd, e))
		}
	}
}

func textScalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	case protoreflect.StringKind:
		return `"` + pytext.CEscape(v.String()) + `"`
	case protoreflect.BytesKind:
		return `"` + pytext.CEscape(string(v.Bytes())) + `"`
	case protoreflect.BoolKind:
		return strconv.FormatBool(v.Bool())
	case protoreflect.FloatKind:
		return strconv.FormatFloat(v.Float(), 'g', -1, 32)
	case protoreflect.DoubleKind:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}
