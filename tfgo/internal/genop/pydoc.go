package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/gotf/gotf/internal/setup"
)

// pyDoc is the docstring of one op's generated Python wrapper
// (tensorflow/python/ops/gen_*_ops.py), split into its parts.
type pyDoc struct {
	File    string            // the gen_*_ops.py it came from
	Summary string            // the first paragraph, lines joined
	Body    []string          // the description after the summary, dedented
	Args    map[string]string // Python arg name -> its text, continuation lines joined by "\n"
	Returns []string          // the Returns section, dedented
	// PyName maps an op arg or attr name to the Python parameter that
	// sets it, where the wrapper renames it (Split's split_dim is "axis").
	PyName map[string]string
}

var (
	defStart = regexp.MustCompile(`(?m)^def `)
	// A def's signature, then its docstring as the first statement.
	defDoc = regexp.MustCompile(`(?s)^def (\w+)\(.*?\)[^\n]*:\n[ \t]*(r?)"""(.*?)"""`)
	// The op a wrapper builds: graph mode, else eager mode.
	applyOp    = regexp.MustCompile(`_apply_op_helper\(\s*"(\w+)"`)
	executeOp  = regexp.MustCompile(`_execute\.execute\(\s*b"(\w+)"`)
	argItem    = regexp.MustCompile(`^  (\w+):(?: (.*))?$`)
	keywordArg = regexp.MustCompile(`\b(\w+)=(\w+)\b`)
)

// findPyDir returns the directory holding TensorFlow's gen_*_ops.py: the
// -pydir flag, else <module root>/.venv/lib/python3.*/site-packages/tensorflow/python/ops.
func findPyDir(flagDir string) (string, error) {
	if flagDir != "" {
		return flagDir, nil
	}
	root, err := setup.ModuleRoot()
	if err != nil {
		return "", err
	}
	matches, _ := filepath.Glob(filepath.Join(root, ".venv", "lib", "python3.*", "site-packages", "tensorflow", "python", "ops"))
	sort.Strings(matches)
	if len(matches) == 0 {
		return "", fmt.Errorf("no .venv/lib/python3.*/site-packages/tensorflow/python/ops under %s: run `make setup` or pass -pydir", root)
	}
	return matches[len(matches)-1], nil
}

// loadPyDocs reads every gen_*_ops.py of dir and returns the docstrings by
// op name. Placeholder docstrings ("TODO: add doc.") are left out.
func loadPyDocs(dir string) (map[string]*pyDoc, error) {
	files, err := filepath.Glob(filepath.Join(dir, "gen_*.py"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no gen_*.py in %s", dir)
	}
	sort.Strings(files)
	docs := map[string]*pyDoc{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		text := string(src)
		starts := defStart.FindAllStringIndex(text, -1)
		for i, s := range starts {
			end := len(text)
			if i+1 < len(starts) {
				end = starts[i+1][0]
			}
			block := text[s[0]:end]
			m := defDoc.FindStringSubmatch(block)
			if m == nil {
				continue
			}
			op := applyOp.FindStringSubmatch(block)
			if op == nil {
				op = executeOp.FindStringSubmatch(block)
			}
			if op == nil {
				continue
			}
			if _, seen := docs[op[1]]; seen {
				continue
			}
			doc := m[3]
			if m[2] == "" { // not a raw string: undo the escapes docstrings use
				doc = strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\'`, "'").Replace(doc)
			}
			d := parsePyDoc(doc)
			if d == nil {
				continue
			}
			d.File = filepath.Base(f)
			if loc := applyOp.FindStringIndex(block); loc != nil {
				for _, kw := range keywordArg.FindAllStringSubmatch(callArgs(block[loc[0]:]), -1) {
					if kw[1] != kw[2] {
						d.PyName[kw[1]] = kw[2]
					}
				}
			}
			docs[op[1]] = d
		}
	}
	return docs, nil
}

// cleandoc dedents a docstring as Python's inspect.cleandoc does.
func cleandoc(s string) []string {
	lines := strings.Split(strings.ReplaceAll(s, "\t", "        "), "\n")
	indent := -1
	for _, l := range lines[1:] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " ")); indent < 0 || n < indent {
			indent = n
		}
	}
	lines[0] = strings.TrimSpace(lines[0])
	for i := 1; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) == "" {
			lines[i] = ""
		} else if indent > 0 {
			lines[i] = strings.TrimRight(lines[i][indent:], " ")
		} else {
			lines[i] = strings.TrimRight(lines[i], " ")
		}
	}
	return trimBlank(lines)
}

func trimBlank(lines []string) []string {
	for len(lines) > 0 && lines[0] == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// parsePyDoc splits a docstring into summary, body, Args and Returns.
func parsePyDoc(raw string) *pyDoc {
	lines := cleandoc(raw)
	if len(lines) == 0 || strings.HasPrefix(lines[0], "TODO") {
		return nil
	}
	d := &pyDoc{Args: map[string]string{}, PyName: map[string]string{}}
	section, secIndent := "", 0
	var desc, args []string
	for _, l := range lines {
		switch strings.TrimSpace(l) {
		case "Args:", "Returns:", "Raises:":
			// Some docstrings indent their sections more than their text.
			section, secIndent = strings.TrimSpace(l), indentOf(l)
			continue
		}
		if section != "" {
			l = l[min(secIndent, indentOf(l)):]
		}
		switch section {
		case "":
			desc = append(desc, l)
		case "Args:":
			args = append(args, l)
		case "Returns:":
			d.Returns = append(d.Returns, strings.TrimPrefix(l, "  "))
		}
	}
	desc = trimBlank(desc)
	i := 0
	for i < len(desc) && desc[i] != "" {
		i++
	}
	d.Summary = strings.Join(desc[:i], " ")
	d.Body = trimBlank(desc[i:])
	d.Returns = trimBlank(d.Returns)

	cur := ""
	for _, l := range args {
		if m := argItem.FindStringSubmatch(l); m != nil {
			cur = m[1]
			d.Args[cur] = m[2]
			continue
		}
		if cur == "" {
			continue
		}
		t := strings.TrimPrefix(l, "    ")
		if d.Args[cur] == "" {
			d.Args[cur] = t
		} else {
			d.Args[cur] += "\n" + t
		}
	}
	for k, v := range d.Args {
		d.Args[k] = strings.TrimRight(v, "\n ")
	}
	return d
}

// arg returns the docstring text of an op arg, also under the name Python
// gives it when the op's name is reserved in Python ("lambda" -> "lambda_").
func (d *pyDoc) arg(name string) (string, bool) {
	if d == nil {
		return "", false
	}
	if py, ok := d.PyName[name]; ok {
		name = py
	}
	if t, ok := d.Args[name]; ok {
		return t, true
	}
	t, ok := d.Args[name+"_"]
	return t, ok
}

// callArgs returns the text of a call's arguments: from the first "(" of s
// to its matching ")".
func callArgs(s string) string {
	start := strings.IndexByte(s, '(')
	if start < 0 {
		return ""
	}
	depth := 0
	var quote byte
	for i := start; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
			if depth == 0 {
				return s[start+1 : i]
			}
		}
	}
	return s[start+1:]
}
