// Command genop generates tfgo/ops_gen.go: a typed Go function for every op
// the linked TensorFlow runtime registers, with optional attrs as functional
// options, documented from the docstrings of the same TensorFlow version's
// generated Python wrappers.
//
// It runs through "go generate ./tfgo" (tfgo/generate.go):
//
//	go run ./internal/genop -out ops_gen.go [-pydir DIR] [-pkgdir DIR]
//
// -pydir is the directory holding TensorFlow's gen_*_ops.py; by default it
// is found under the module's .venv (make setup installs it). -pkgdir is the
// directory of package tfgo (by default the directory of -out): its
// hand-written files are parsed, and an op whose Go name one of them declares
// is left out, so that hand-written code always wins.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/gotf/gotf/cgo"
)

func main() {
	out := flag.String("out", "ops_gen.go", "the file to write")
	pydir := flag.String("pydir", "", "directory of TensorFlow's generated Python wrappers (gen_*_ops.py); default: under the module's .venv")
	pkgdir := flag.String("pkgdir", "", "directory of the package whose hand-written names to avoid; default: the directory of -out")
	flag.Parse()
	if err := run(*out, *pydir, *pkgdir); err != nil {
		fmt.Fprintln(os.Stderr, "genop:", err)
		os.Exit(1)
	}
}

func run(out, pydir, pkgdir string) error {
	if pkgdir == "" {
		pkgdir = filepath.Dir(out)
	}
	list, err := cgo.OpList()
	if err != nil {
		return err
	}
	decl, testDecl, err := declaredNames(pkgdir, out)
	if err != nil {
		return err
	}
	dir, err := findPyDir(pydir)
	if err != nil {
		return err
	}
	docs, err := loadPyDocs(dir)
	if err != nil {
		return err
	}
	g, err := newGenerator(list, decl, docs, cgo.Version())
	if err != nil {
		return err
	}
	src, err := g.generate()
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, src, 0o644); err != nil {
		return err
	}

	var clashes []string
	for _, op := range g.ops {
		if file, ok := testDecl[op.def.GetName()]; ok {
			clashes = append(clashes, op.def.GetName()+" ("+file+")")
		}
	}
	sort.Strings(clashes)
	for _, c := range clashes {
		fmt.Fprintf(os.Stderr, "genop: warning: a test file of the package also declares %s\n", c)
	}
	fmt.Fprintf(os.Stderr, "genop: %s: %d ops of %d generated (docs: %d from Python docstrings in %s, %d from the registry, %d without), "+
		"%d internal ops and %d others skipped, %d names disambiguated, %d bytes\n",
		out, len(g.ops), len(list.GetOp()), g.stats.pyDocs, dir, g.stats.registryDocs, g.stats.noDocs,
		g.internal, len(g.skipped), len(g.renamed), len(src))
	for _, s := range g.skipped {
		fmt.Fprintf(os.Stderr, "genop:   skipped %s: %s\n", s.op, s.why)
	}
	for _, r := range g.renamed {
		fmt.Fprintf(os.Stderr, "genop:   named %s, as %s is %s\n", r.got, r.want, r.why)
	}
	return nil
}
