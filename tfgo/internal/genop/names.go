package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// camel turns a snake_case (or already CamelCase) name into CamelCase:
// "transpose_a" -> "TransposeA", "DstT" -> "DstT", "T" -> "T".
func camel(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "_") {
		if part == "" {
			continue
		}
		r := []rune(part)
		r[0] = unicode.ToUpper(r[0])
		b.WriteString(string(r))
	}
	return b.String()
}

// lowerCamel is camel with a lower-case first letter: "num_split" ->
// "numSplit", "DstT" -> "dstT", "T" -> "t". A leading run of capitals is
// lowered as a whole when it is the complete first word ("TPU" -> "tpu").
func lowerCamel(name string) string {
	c := []rune(camel(name))
	if len(c) == 0 {
		return ""
	}
	n := 0
	for n < len(c) && unicode.IsUpper(c[n]) {
		n++
	}
	switch {
	case n == len(c): // all capitals: "T", "N", "TPU"
		n = len(c)
	case n > 1: // "TPUConfig" -> "tpuConfig"
		n--
	default:
		n = 1
	}
	for i := 0; i < n; i++ {
		c[i] = unicode.ToLower(c[i])
	}
	return string(c)
}

// goReserved are names a generated parameter or result must not take: Go's
// keywords and predeclared identifiers (shadowing them would break the
// generated body or read badly), and the names the generated bodies use.
var goReserved = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range strings.Fields(`
		break case chan const continue default defer else fallthrough for func go goto if
		import interface map package range return select struct switch type var
		any bool byte comparable complex64 complex128 error float32 float64 int int8 int16
		int32 int64 rune string uint uint8 uint16 uint32 uint64 uintptr true false iota nil
		append cap clear close complex copy delete imag len make max min new panic print
		println real recover
		scope optional op attrs opt next err cgo optionalAttr genOpOutputList genOpAttr`) {
		m[s] = true
	}
	return m
}()

// localName returns a Go-safe lowerCamel name for an arg, unique among taken.
func localName(arg string, taken map[string]bool) string {
	n := lowerCamel(arg)
	if n == "" {
		n = "arg"
	}
	if goReserved[n] {
		n += "_"
	}
	base := n
	for i := 2; taken[n]; i++ {
		n = fmt.Sprintf("%s%d", base, i)
	}
	taken[n] = true
	return n
}

var generatedHeader = regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`)

// declaredNames returns the package-level identifiers declared by the
// hand-written Go files of the package in dir: every .go file except test
// files, generated files (a "Code generated ... DO NOT EDIT." line) and
// the file the generator writes. The value names the declaring file.
// Identifiers of the package's internal test files come back separately:
// they do not change what is generated but a clash is worth a warning.
func declaredNames(dir, outFile string) (decl, testDecl map[string]string, err error) {
	decl, testDecl = map[string]string{}, map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	outAbs, _ := filepath.Abs(outFile)
	var files []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		files = append(files, filepath.Join(dir, e.Name()))
	}
	sort.Strings(files)
	fset := token.NewFileSet()
	for _, path := range files {
		if abs, _ := filepath.Abs(path); abs == outAbs {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			return nil, nil, fmt.Errorf("parsing hand-written %s: %w", path, err)
		}
		isTest := strings.HasSuffix(path, "_test.go")
		if isTest && strings.HasSuffix(f.Name.Name, "_test") {
			continue // an external test package: its own namespace
		}
		if generatedHeader.Match(beforePackage(src, fset, f)) {
			continue
		}
		into := decl
		if isTest {
			into = testDecl
		}
		for _, name := range topLevelNames(f) {
			if _, dup := into[name]; !dup {
				into[name] = filepath.Base(path)
			}
		}
	}
	return decl, testDecl, nil
}

// beforePackage is the source before the package clause, where the
// "Code generated" line lives.
func beforePackage(src []byte, fset *token.FileSet, f *ast.File) []byte {
	off := fset.Position(f.Package).Offset
	if off > len(src) {
		off = len(src)
	}
	return src[:off]
}

// topLevelNames lists a file's package-level identifiers (methods excluded).
func topLevelNames(f *ast.File) []string {
	var names []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				names = append(names, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					names = append(names, s.Name.Name)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	return names
}
