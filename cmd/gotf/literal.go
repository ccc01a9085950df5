package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gotf/gotf/dtypes"
)

// Inputs written on the command line: --input_exprs takes Python literals
// (what saved_model_cli's ast.literal_eval accepts for arrays: nested lists
// and tuples of numbers, True/False and strings; no numpy calls), and
// --input_json takes JSON. Both parse to the same tree: []any, number
// (json.Number), bool and []byte.

// maxLiteralDepth bounds nesting, as Python's parser does.
const maxLiteralDepth = 64

type litParser struct {
	s   string
	pos int
}

func parsePyLiteral(s string) (any, error) {
	p := &litParser{s: s}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.s) {
		return nil, p.errorf("unexpected %s after the value", excerpt1(p.s[p.pos:]))
	}
	return v, nil
}

func excerpt1(s string) string {
	if len(s) > 20 {
		s = s[:20] + "..."
	}
	return strconv.Quote(s)
}

func (p *litParser) errorf(format string, a ...any) error {
	return fmt.Errorf("not a Python literal at offset %d: %s", p.pos, fmt.Sprintf(format, a...))
}

func (p *litParser) space() {
	for p.pos < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *litParser) value(depth int) (any, error) {
	if depth > maxLiteralDepth {
		return nil, p.errorf("nested over %d deep", maxLiteralDepth)
	}
	p.space()
	if p.pos >= len(p.s) {
		return nil, p.errorf("unexpected end")
	}
	c := p.s[p.pos]
	switch {
	case c == '[' || c == '(':
		closing := byte(']')
		if c == '(' {
			closing = ')'
		}
		p.pos++
		list := []any{}
		for {
			p.space()
			if p.pos < len(p.s) && p.s[p.pos] == closing {
				p.pos++
				// (x) is x in Python; (x,) is a tuple.
				return list, nil
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
			p.space()
			if p.pos < len(p.s) && p.s[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.pos < len(p.s) && p.s[p.pos] == closing {
				p.pos++
				if closing == ')' && len(list) == 1 {
					return list[0], nil
				}
				return list, nil
			}
			return nil, p.errorf("want ',' or %q", closing)
		}
	case c == '\'' || c == '"' || ((c == 'b' || c == 'B') && p.pos+1 < len(p.s) && (p.s[p.pos+1] == '\'' || p.s[p.pos+1] == '"')):
		return p.str()
	case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	}
	start := p.pos
	for p.pos < len(p.s) && (isIdent(p.s[p.pos])) {
		p.pos++
	}
	switch word := p.s[start:p.pos]; word {
	case "True":
		return true, nil
	case "False":
		return false, nil
	case "":
		return nil, p.errorf("unexpected %s", excerpt1(p.s[p.pos:]))
	default:
		p.pos = start
		return nil, p.errorf("%s is not a literal (names and calls such as np.ones are not evaluated)", strconv.Quote(word))
	}
}

func isIdent(c byte) bool {
	return c == '_' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func (p *litParser) number() (any, error) {
	start := p.pos
	if p.s[p.pos] == '-' || p.s[p.pos] == '+' {
		p.pos++
	}
	for p.pos < len(p.s) && strings.IndexByte("0123456789.eE_", p.s[p.pos]) >= 0 {
		if (p.s[p.pos] == 'e' || p.s[p.pos] == 'E') && p.pos+1 < len(p.s) && (p.s[p.pos+1] == '-' || p.s[p.pos+1] == '+') {
			p.pos++
		}
		p.pos++
	}
	text := strings.ReplaceAll(p.s[start:p.pos], "_", "")
	text = strings.TrimPrefix(text, "+")
	if _, err := strconv.ParseFloat(text, 64); err != nil {
		p.pos = start
		return nil, p.errorf("bad number %s", excerpt1(p.s[start:]))
	}
	return json.Number(text), nil
}

func (p *litParser) str() (any, error) {
	if p.s[p.pos] == 'b' || p.s[p.pos] == 'B' {
		p.pos++
	}
	q := p.s[p.pos]
	p.pos++
	var b []byte
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		p.pos++
		switch {
		case c == q:
			return b, nil
		case c == '\\' && p.pos < len(p.s):
			e := p.s[p.pos]
			p.pos++
			switch e {
			case 'n':
				b = append(b, '\n')
			case 't':
				b = append(b, '\t')
			case 'r':
				b = append(b, '\r')
			case '0':
				b = append(b, 0)
			case 'x':
				if p.pos+2 > len(p.s) {
					return nil, p.errorf("bad \\x escape")
				}
				v, err := strconv.ParseUint(p.s[p.pos:p.pos+2], 16, 8)
				if err != nil {
					return nil, p.errorf("bad \\x escape")
				}
				b = append(b, byte(v))
				p.pos += 2
			default:
				b = append(b, e)
			}
		default:
			b = append(b, c)
		}
	}
	return nil, p.errorf("unterminated string")
}

// parseJSONValue decodes a JSON value keeping numbers exact.
func parseJSONValue(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("malformed JSON: %v", err)
	}
	if d.More() {
		return nil, errors.New("malformed JSON: more than one value")
	}
	return v, nil
}

// toArray flattens a parsed literal into an array; a ragged nesting is an
// error, as numpy refuses it for a numeric dtype.
func toArray(v any) (*array, error) {
	a := &array{}
	// The shape is fixed by the first path to a leaf, then checked.
	for x := v; ; {
		l, ok := x.([]any)
		if !ok {
			break
		}
		a.shape = append(a.shape, int64(len(l)))
		if len(l) == 0 {
			break
		}
		x = l[0]
	}
	if a.shape == nil {
		a.shape = []int64{}
	}
	if _, err := dtypes.NumElements(a.shape); err != nil {
		return nil, err
	}
	var leaves []any
	var walk func(x any, depth int) error
	walk = func(x any, depth int) error {
		l, isList := x.([]any)
		if depth == len(a.shape) {
			if isList {
				return fmt.Errorf("ragged: a list where a value should be at depth %d", depth)
			}
			leaves = append(leaves, x)
			return nil
		}
		if !isList || int64(len(l)) != a.shape[depth] {
			return fmt.Errorf("ragged: dimension %d should have %d elements", depth, a.shape[depth])
		}
		for _, e := range l {
			if err := walk(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(v, 0); err != nil {
		return nil, err
	}
	// The kind is numpy's result type: any string makes strings (mixed
	// with numbers, an error here), any float makes floats, bools alone
	// stay bools.
	kinds := map[arrayKind]bool{}
	for _, x := range leaves {
		switch t := x.(type) {
		case json.Number:
			if _, err := strconv.ParseInt(string(t), 10, 64); err == nil {
				kinds[kindInt] = true
			} else {
				kinds[kindFloat] = true
			}
		case bool:
			kinds[kindBool] = true
		case []byte, string:
			kinds[kindString] = true
		case nil:
			return nil, errors.New("None/null is not a value an input can hold")
		default:
			return nil, fmt.Errorf("a %T is not a value an input can hold", x)
		}
	}
	switch {
	case kinds[kindString] && len(kinds) > 1:
		return nil, errors.New("strings mixed with numbers or bools")
	case kinds[kindString]:
		a.kind = kindString
	case kinds[kindFloat]:
		a.kind = kindFloat
	case kinds[kindInt]:
		a.kind = kindInt
	case kinds[kindBool]:
		a.kind = kindBool
	default:
		a.kind = kindFloat // an empty list: numpy's float64
	}
	for _, x := range leaves {
		switch a.kind {
		case kindString:
			if s, ok := x.(string); ok {
				a.s = append(a.s, []byte(s))
			} else {
				a.s = append(a.s, x.([]byte))
			}
		case kindBool:
			a.b = append(a.b, x.(bool))
		case kindInt:
			if b, ok := x.(bool); ok {
				a.i = append(a.i, map[bool]int64{false: 0, true: 1}[b])
				continue
			}
			n, _ := strconv.ParseInt(string(x.(json.Number)), 10, 64)
			a.i = append(a.i, n)
		case kindFloat:
			if b, ok := x.(bool); ok {
				a.f = append(a.f, map[bool]float64{false: 0, true: 1}[b])
				continue
			}
			f, err := strconv.ParseFloat(string(x.(json.Number)), 64)
			if err != nil {
				return nil, fmt.Errorf("number %s: %v", x, err)
			}
			a.f = append(a.f, f)
		}
	}
	return a, nil
}
