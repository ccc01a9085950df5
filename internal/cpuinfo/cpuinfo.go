// Package cpuinfo describes the machine a benchmark ran on: the CPU model
// and the vector and matrix extensions TensorFlow's CPU kernels choose
// from, as /proc/cpuinfo gives them, and a file-name form of the model for
// the reports under bench/.
package cpuinfo

import (
	"bufio"
	"io"
	"os"
	"regexp"
	"runtime"
	"strings"
)

// CPU is the first processor of /proc/cpuinfo.
type CPU struct {
	// Model is the model name, or GOARCH when it is not known.
	Model string
	flags map[string]bool
}

// Read reads /proc/cpuinfo; without it (outside Linux) the model is GOARCH
// and no flag is known.
func Read() CPU {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return CPU{Model: runtime.GOARCH}
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads the first model name and flags lines of a /proc/cpuinfo.
func Parse(r io.Reader) CPU {
	c := CPU{Model: runtime.GOARCH}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	gotModel := false
	for sc.Scan() && (!gotModel || c.flags == nil) {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			if !gotModel {
				c.Model, gotModel = strings.TrimSpace(v), true
			}
		case "flags":
			if c.flags == nil {
				c.flags = map[string]bool{}
				for _, fl := range strings.Fields(v) {
					c.flags[fl] = true
				}
			}
		}
	}
	return c
}

// Has reports whether the CPU has the flag (as /proc/cpuinfo spells it).
func (c CPU) Has(flag string) bool { return c.flags[flag] }

// Flags lists the named flags as "avx2, no avx512f, ...", or says the
// flags are unknown.
func (c CPU) Flags(names ...string) string {
	if c.flags == nil {
		return "flags unknown"
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n
		if !c.flags[n] {
			parts[i] = "no " + n
		}
	}
	return strings.Join(parts, ", ")
}

var notAlnum = regexp.MustCompile(`[^a-z0-9]+`)

// FileName makes a file-name part of a CPU model, without vendor marks or
// clock ("AMD EPYC 7B13 Processor" -> "amd-epyc-7b13").
func FileName(model string) string {
	s := strings.ToLower(model)
	if i := strings.Index(s, "ghz"); i >= 0 {
		if j := strings.LastIndex(s[:i], " "); j >= 0 {
			s = s[:j]
		}
	}
	for _, w := range []string{"(r)", "(tm)", "cpu", "processor", "@"} {
		s = strings.ReplaceAll(s, w, " ")
	}
	if s = strings.Trim(notAlnum.ReplaceAllString(s, "-"), "-"); s != "" {
		return s
	}
	return "cpu"
}
