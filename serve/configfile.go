package serve

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The protos of TF Serving's ModelServerConfig are not in graft, so this
// file reads the text format of the one part of that message a model
// config file holds in practice: model_config_list. The reader is a
// general text-proto tokenizer and tree; only the interpretation below
// knows the fields.

// tpNode is a text-proto field: a scalar (value) or a message (fields).
type tpNode struct {
	name   string
	value  string
	isMsg  bool
	fields []*tpNode
	line   int
}

type tpLexer struct {
	src  string
	pos  int
	line int
}

func (l *tpLexer) skip() {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.line++
			l.pos++
		case c == ' ' || c == '\t' || c == '\r':
			l.pos++
		case c == '#':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		default:
			return
		}
	}
}

// next returns the next token: punctuation, a quoted string (unquoted,
// with its escapes read) marked by quoted, or an identifier or number.
func (l *tpLexer) next() (tok string, quoted bool, err error) {
	l.skip()
	if l.pos >= len(l.src) {
		return "", false, nil
	}
	c := l.src[l.pos]
	switch {
	case strings.IndexByte("{}[]:,;<>", c) >= 0:
		l.pos++
		return string(c), false, nil
	case c == '"' || c == '\'':
		start := l.pos
		l.pos++
		for l.pos < len(l.src) && l.src[l.pos] != c {
			if l.src[l.pos] == '\\' {
				l.pos++
			}
			if l.pos < len(l.src) && l.src[l.pos] == '\n' {
				return "", false, fmt.Errorf("line %d: newline in a string", l.line)
			}
			l.pos++
		}
		if l.pos >= len(l.src) {
			return "", false, fmt.Errorf("line %d: unterminated string", l.line)
		}
		l.pos++
		raw := l.src[start:l.pos]
		if c == '\'' {
			raw = `"` + strings.ReplaceAll(strings.ReplaceAll(raw[1:len(raw)-1], `\'`, `'`), `"`, `\"`) + `"`
		}
		s, err := strconv.Unquote(raw)
		if err != nil {
			return "", false, fmt.Errorf("line %d: bad string %s", l.line, excerptOf(raw))
		}
		return s, true, nil
	}
	start := l.pos
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if c == '_' || c == '-' || c == '+' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			l.pos++
			continue
		}
		break
	}
	if l.pos == start {
		return "", false, fmt.Errorf("line %d: unexpected character %q", l.line, c)
	}
	return l.src[start:l.pos], false, nil
}

func excerptOf(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// parseTextProto reads the fields of a message until end ("" at the top,
// "}" or ">" inside).
func parseTextProto(l *tpLexer, end string, depth int) ([]*tpNode, error) {
	if depth > 32 {
		return nil, fmt.Errorf("line %d: messages nested too deep", l.line)
	}
	var fields []*tpNode
	for {
		tok, quoted, err := l.next()
		if err != nil {
			return nil, err
		}
		if !quoted && tok == end {
			return fields, nil
		}
		if tok == "" && !quoted {
			return nil, fmt.Errorf("line %d: unexpected end of file (missing %q)", l.line, end)
		}
		if quoted || strings.IndexByte("{}[]:,;<>", tok[0]) >= 0 {
			if tok == "," || tok == ";" {
				continue
			}
			return nil, fmt.Errorf("line %d: expected a field name, got %q", l.line, tok)
		}
		name, line := tok, l.line
		tok, quoted, err = l.next()
		if err != nil {
			return nil, err
		}
		if !quoted && tok == ":" {
			if tok, quoted, err = l.next(); err != nil {
				return nil, err
			}
		}
		switch {
		case !quoted && (tok == "{" || tok == "<"):
			closer := "}"
			if tok == "<" {
				closer = ">"
			}
			sub, err := parseTextProto(l, closer, depth+1)
			if err != nil {
				return nil, err
			}
			fields = append(fields, &tpNode{name: name, isMsg: true, fields: sub, line: line})
		case !quoted && tok == "[":
			for {
				v, q, err := l.next()
				if err != nil {
					return nil, err
				}
				if !q && v == "]" {
					break
				}
				if !q && v == "," {
					continue
				}
				if !q && (v == "" || strings.IndexByte("{}[]:;<>", v[0]) >= 0) {
					return nil, fmt.Errorf("line %d: field %s: unexpected %q in a list", l.line, name, v)
				}
				fields = append(fields, &tpNode{name: name, value: v, line: line})
			}
		case quoted || tok != "" && strings.IndexByte("{}[]:,;<>", tok[0]) < 0:
			// Adjacent quoted strings concatenate, as in C.
			for {
				save := l.pos
				saveLine := l.line
				more, q, err := l.next()
				if err != nil || !q || !quoted {
					l.pos, l.line = save, saveLine
					break
				}
				tok += more
			}
			fields = append(fields, &tpNode{name: name, value: tok, line: line})
		default:
			return nil, fmt.Errorf("line %d: field %s: expected a value, got %q", l.line, name, tok)
		}
	}
}

// ParseModelConfigList reads TF Serving's model config file
// (--model_config_file): a ModelServerConfig in text format whose
// model_config_list holds one config per model, with name, base_path,
// model_platform ("tensorflow" only), model_version_policy (latest
// {num_versions}, all {}, specific {versions}) and version_labels. Fields
// it does not know are errors naming their line, as TF Serving's parser
// reports them.
func ParseModelConfigList(text string) ([]ModelConfig, error) {
	top, err := parseTextProto(&tpLexer{src: text, line: 1}, "", 0)
	if err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	var out []ModelConfig
	for _, f := range top {
		if f.name != "model_config_list" || !f.isMsg {
			return nil, fmt.Errorf("model config: line %d: field %q is not supported (only model_config_list is)", f.line, f.name)
		}
		for _, c := range f.fields {
			if c.name != "config" || !c.isMsg {
				return nil, fmt.Errorf("model config: line %d: unknown field %q in model_config_list", c.line, c.name)
			}
			mc, err := modelConfigFrom(c)
			if err != nil {
				return nil, fmt.Errorf("model config: %w", err)
			}
			out = append(out, mc)
		}
	}
	return out, nil
}

// ReadModelConfigFile reads a model config file (see ParseModelConfigList).
func ReadModelConfigFile(path string) ([]ModelConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	mcs, err := ParseModelConfigList(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return mcs, nil
}

func scalar(f *tpNode) (string, error) {
	if f.isMsg {
		return "", fmt.Errorf("line %d: field %s is a value, not a message", f.line, f.name)
	}
	return f.value, nil
}

func int64Field(f *tpNode) (int64, error) {
	s, err := scalar(f)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("line %d: field %s: %q is not an integer", f.line, f.name, excerptOf(s))
	}
	return n, nil
}

func modelConfigFrom(c *tpNode) (ModelConfig, error) {
	var mc ModelConfig
	for _, f := range c.fields {
		var err error
		switch f.name {
		case "name":
			mc.Name, err = scalar(f)
		case "base_path":
			mc.BasePath, err = scalar(f)
		case "model_platform":
			var p string
			if p, err = scalar(f); err == nil && p != "tensorflow" {
				err = fmt.Errorf("line %d: model_platform %q is not supported (only \"tensorflow\")", f.line, p)
			}
		case "model_version_policy":
			mc.Policy, err = policyFrom(f)
		case "version_labels":
			err = labelFrom(f, &mc)
		default:
			err = fmt.Errorf("line %d: field %q of ModelConfig is not supported", f.line, f.name)
		}
		if err != nil {
			return mc, err
		}
	}
	if mc.Name == "" {
		return mc, fmt.Errorf("line %d: a config without a name", c.line)
	}
	return mc, nil
}

func policyFrom(f *tpNode) (VersionPolicy, error) {
	var p VersionPolicy
	if !f.isMsg || len(f.fields) != 1 || !f.fields[0].isMsg {
		return p, fmt.Errorf("line %d: model_version_policy takes one of latest {}, all {}, specific {}", f.line)
	}
	k := f.fields[0]
	switch k.name {
	case "latest":
		p.Kind = Latest
		for _, g := range k.fields {
			if g.name != "num_versions" {
				return p, fmt.Errorf("line %d: unknown field %q of latest", g.line, g.name)
			}
			n, err := int64Field(g)
			if err != nil {
				return p, err
			}
			if n < 1 || n > 1<<20 {
				return p, fmt.Errorf("line %d: num_versions %d out of range", g.line, n)
			}
			p.NumVersions = int(n)
		}
	case "all":
		p.Kind = All
		if len(k.fields) > 0 {
			return p, fmt.Errorf("line %d: all {} takes no fields", k.line)
		}
	case "specific":
		p.Kind = Specific
		for _, g := range k.fields {
			if g.name != "versions" {
				return p, fmt.Errorf("line %d: unknown field %q of specific", g.line, g.name)
			}
			n, err := int64Field(g)
			if err != nil {
				return p, err
			}
			p.Versions = append(p.Versions, n)
		}
		if len(p.Versions) == 0 {
			return p, fmt.Errorf("line %d: specific {} lists no versions", k.line)
		}
	default:
		return p, fmt.Errorf("line %d: unknown version policy %q", k.line, k.name)
	}
	return p, nil
}

func labelFrom(f *tpNode, mc *ModelConfig) error {
	if !f.isMsg {
		return fmt.Errorf("line %d: version_labels takes { key: ... value: ... }", f.line)
	}
	var key string
	var val int64
	haveKey, haveVal := false, false
	for _, g := range f.fields {
		var err error
		switch g.name {
		case "key":
			key, err = scalar(g)
			haveKey = true
		case "value":
			val, err = int64Field(g)
			haveVal = true
		default:
			err = fmt.Errorf("line %d: unknown field %q of version_labels", g.line, g.name)
		}
		if err != nil {
			return err
		}
	}
	if !haveKey || !haveVal {
		return fmt.Errorf("line %d: version_labels needs a key and a value", f.line)
	}
	if mc.VersionLabels == nil {
		mc.VersionLabels = map[string]int64{}
	}
	mc.VersionLabels[key] = val
	return nil
}
