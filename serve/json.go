package serve

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON reader, because TF Serving's requests are not RFC 8259:
// they may hold NaN, Infinity and -Infinity (rapidjson's
// kParseNanAndInfFlag), which encoding/json refuses. It also enforces the
// limits on nesting and on the number of values while it reads, so a hostile
// body costs at most the limits, not what it describes.

type jkind uint8

const (
	jNull jkind = iota
	jFalse
	jTrue
	jNumber
	jString
	jArray
	jObject
)

// jvalue is one parsed JSON value. A number keeps its text, so that int64
// and uint64 values are exact and "1" and "1.0" stay distinguishable (TF
// Serving takes an integer for an int32 tensor, not a decimal).
type jvalue struct {
	kind jkind
	s    string   // a string's value or a number's text
	arr  []jvalue // an array's elements or an object's values
	keys []string // an object's keys, in the request's order
}

func (v *jvalue) isNumber() bool { return v.kind == jNumber }

// member returns the value of key in an object (the first, as rapidjson's
// FindMember does).
func (v *jvalue) member(key string) *jvalue {
	if v.kind != jObject {
		return nil
	}
	for i, k := range v.keys {
		if k == key {
			return &v.arr[i]
		}
	}
	return nil
}

// isInteger: written without a fraction or exponent, as rapidjson's IsInt
// family requires.
func (v *jvalue) isInteger() bool {
	return v.kind == jNumber && !strings.ContainsAny(v.s, ".eEIN")
}

func (v *jvalue) float64() float64 {
	switch v.s {
	case "NaN", "-NaN":
		return nan
	case "Infinity", "Inf":
		return inf
	case "-Infinity", "-Inf":
		return -inf
	}
	f, _ := strconv.ParseFloat(v.s, 64) // the parser checked the syntax; a huge value is ±Inf
	return f
}

// typeName is rapidjson's name of the value's type, which TF Serving's
// messages quote.
func (v *jvalue) typeName() string {
	return [...]string{"Null", "False", "True", "Number", "String", "Array", "Object"}[v.kind]
}

// isBase64 reports whether v is {"b64": "<string>"} and nothing else.
func (v *jvalue) isBase64() bool {
	return v.kind == jObject && len(v.keys) == 1 && v.keys[0] == "b64" && v.arr[0].kind == jString
}

// debugString is the value as TF Serving quotes it in errors: JSON on one
// line, cut at 256 bytes.
func (v *jvalue) debugString() string {
	var b strings.Builder
	v.write(&b, 256)
	s := b.String()
	if len(s) > 256 {
		s = s[:256]
	}
	return s
}

func (v *jvalue) write(b *strings.Builder, limit int) {
	if b.Len() > limit {
		return
	}
	switch v.kind {
	case jNull:
		b.WriteString("null")
	case jFalse:
		b.WriteString("false")
	case jTrue:
		b.WriteString("true")
	case jNumber:
		b.WriteString(v.s)
	case jString:
		writeJSONString(b, v.s)
	case jArray:
		b.WriteByte('[')
		for i := range v.arr {
			if i > 0 {
				b.WriteString(", ")
			}
			v.arr[i].write(b, limit)
		}
		b.WriteByte(']')
	case jObject:
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSONString(b, k)
			b.WriteString(": ")
			v.arr[i].write(b, limit)
		}
		b.WriteByte('}')
	}
}

// jsonLimits bound what a parse may build.
type jsonLimits struct {
	maxDepth  int
	maxValues int
}

type jparser struct {
	data   []byte
	pos    int
	values int
	lim    jsonLimits
	err    error
}

// parseJSON reads one JSON document (what follows it is ignored, as with
// rapidjson's kParseStopWhenDoneFlag). Errors are TF Serving's "JSON Parse
// error: ... at offset: N"; exceeding a limit is ResourceExhausted.
func parseJSON(data []byte, lim jsonLimits) (*jvalue, error) {
	p := &jparser{data: data, lim: lim}
	p.skipSpace()
	if p.pos >= len(p.data) {
		return nil, statusf(InvalidArgument, "JSON Parse error: The document is empty")
	}
	var v jvalue
	if !p.value(&v, 0) {
		return nil, p.err
	}
	return &v, nil
}

func (p *jparser) fail(msg string) bool {
	if p.err == nil {
		p.err = statusf(InvalidArgument, "JSON Parse error: %s at offset: %d", msg, p.pos)
	}
	return false
}

func (p *jparser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jparser) count() bool {
	p.values++
	if p.values > p.lim.maxValues {
		p.err = statusf(ResourceExhausted, "JSON request holds more than %d values (the server's limit)", p.lim.maxValues)
		return false
	}
	return true
}

func (p *jparser) literal(word string) bool {
	if strings.HasPrefix(string(p.data[p.pos:min(len(p.data), p.pos+len(word))]), word) {
		p.pos += len(word)
		return true
	}
	return false
}

func (p *jparser) value(v *jvalue, depth int) bool {
	if !p.count() {
		return false
	}
	if depth > p.lim.maxDepth {
		p.err = statusf(InvalidArgument, "JSON request nested deeper than %d levels at offset: %d", p.lim.maxDepth, p.pos)
		return false
	}
	if p.pos >= len(p.data) {
		return p.fail("Invalid value.")
	}
	switch c := p.data[p.pos]; {
	case c == 'n':
		if p.literal("null") {
			v.kind = jNull
			return true
		}
	case c == 't':
		if p.literal("true") {
			v.kind = jTrue
			return true
		}
	case c == 'f':
		if p.literal("false") {
			v.kind = jFalse
			return true
		}
	case c == '"':
		s, ok := p.str()
		v.kind, v.s = jString, s
		return ok
	case c == '[':
		return p.array(v, depth)
	case c == '{':
		return p.object(v, depth)
	case c == '-' || c == 'N' || c == 'I' || (c >= '0' && c <= '9'):
		return p.number(v)
	}
	return p.fail("Invalid value.")
}

func (p *jparser) array(v *jvalue, depth int) bool {
	v.kind = jArray
	p.pos++ // '['
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return true
	}
	for {
		p.skipSpace()
		v.arr = append(v.arr, jvalue{})
		if !p.value(&v.arr[len(v.arr)-1], depth+1) {
			return false
		}
		if more, ok := p.separator(']', "Missing a comma or ']' after an array element."); !more {
			return ok
		}
	}
}

// separator reads what follows an element: a comma (more to come) or
// the closing bracket (done, ok); anything else is the error msg.
func (p *jparser) separator(closer byte, msg string) (more, ok bool) {
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ',' {
		p.pos++
		return true, true
	}
	if p.pos < len(p.data) && p.data[p.pos] == closer {
		p.pos++
		return false, true
	}
	return false, p.fail(msg)
}

func (p *jparser) object(v *jvalue, depth int) bool {
	v.kind = jObject
	p.pos++ // '{'
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return true
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return p.fail("Missing a name for object member.")
		}
		k, ok := p.str()
		if !ok {
			return false
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return p.fail("Missing a colon after a name of object member.")
		}
		p.pos++
		p.skipSpace()
		v.keys = append(v.keys, k)
		v.arr = append(v.arr, jvalue{})
		if !p.value(&v.arr[len(v.arr)-1], depth+1) {
			return false
		}
		if more, ok := p.separator('}', "Missing a comma or '}' after an object member."); !more {
			return ok
		}
	}
}

func (p *jparser) number(v *jvalue) bool {
	start := p.pos
	v.kind = jNumber
	neg := p.data[p.pos] == '-'
	if neg {
		p.pos++
	}
	for _, w := range []string{"NaN", "Infinity", "Inf"} {
		if p.literal(w) {
			v.s = string(p.data[start:p.pos])
			return true
		}
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.pos < len(p.data) && p.data[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		return p.fail("Invalid value.")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return p.fail("Miss fraction part in number.")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return p.fail("Miss exponent in number.")
		}
	}
	v.s = string(p.data[start:p.pos])
	return true
}

func (p *jparser) str() (string, bool) {
	p.pos++ // '"'
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			p.pos++
			if !utf8.Valid(s) {
				p.pos = start
				return "", p.fail("Invalid encoding in string.")
			}
			return string(s), true
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	var b []byte
	b = append(b, p.data[start:p.pos]...)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(b) {
				return "", p.fail("Invalid encoding in string.")
			}
			return string(b), true
		case c < 0x20:
			return "", p.fail("Invalid encoding in string.")
		case c != '\\':
			b = append(b, c)
			p.pos++
			continue
		}
		p.pos++
		if p.pos >= len(p.data) {
			break
		}
		e := p.data[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				if !p.literal(`\u`) {
					return "", p.fail("The surrogate pair in string is invalid.")
				}
				r2, ok := p.hex4()
				if !ok {
					return "", false
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", p.fail("The surrogate pair in string is invalid.")
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			p.pos--
			return "", p.fail("Invalid escape character in string.")
		}
	}
	return "", p.fail("Missing a closing quotation mark in string.")
}

func (p *jparser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, p.fail("Incorrect hex digit after \\u escape in string.")
	}
	n, err := strconv.ParseUint(string(p.data[p.pos:p.pos+4]), 16, 16)
	if err != nil {
		return 0, p.fail("Incorrect hex digit after \\u escape in string.")
	}
	p.pos += 4
	return rune(n), true
}

// writeJSONString appends s as a JSON string. Bytes that are not UTF-8
// become U+FFFD, so the response stays valid JSON (a string output meant as
// bytes should be named *_bytes, and is base64).
func writeJSONString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\ufffd")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}

func quoteJSON(s string) string {
	var b strings.Builder
	writeJSONString(&b, s)
	return b.String()
}

var (
	nan = math.NaN()
	inf = math.Inf(1)
)
