package job

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// goSourceCorpus reads the .go files of Go's own source tree (GOROOT/src,
// present wherever Go is installed) in a stable order until maxBytes: a
// text corpus every machine with this project has.
func goSourceCorpus(goroot string, maxBytes int) ([]byte, error) {
	root := filepath.Join(goroot, "src")
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "vendor") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the Go source corpus under %s: %w", root, err)
	}
	sort.Strings(files)
	var corpus []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		corpus = append(corpus, b...)
		if len(corpus) >= maxBytes {
			return corpus[:maxBytes], nil
		}
	}
	if len(corpus) == 0 {
		return nil, fmt.Errorf("no .go files under %s", root)
	}
	return corpus, nil
}
