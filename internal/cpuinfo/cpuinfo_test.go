package cpuinfo

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	c := Parse(strings.NewReader("processor\t: 0\nmodel name\t: AMD EPYC 7B13 64-Core Processor\nflags\t\t: fpu avx2 avx512f\n\nprocessor\t: 1\nmodel name\t: other\nflags\t: sse\n"))
	if c.Model != "AMD EPYC 7B13 64-Core Processor" || !c.Has("avx2") || c.Has("sse") {
		t.Fatalf("parsed %+v", c)
	}
	if got := c.Flags("avx2", "amx_tile"); got != "avx2, no amx_tile" {
		t.Fatalf("Flags = %q", got)
	}
	if got := (CPU{}).Flags("avx2"); got != "flags unknown" {
		t.Fatalf("Flags without cpuinfo = %q", got)
	}
}

func TestFileName(t *testing.T) {
	for in, want := range map[string]string{
		"AMD EPYC 7B13 64-Core Processor":               "amd-epyc-7b13-64-core",
		"Intel(R) Xeon(R) CPU @ 2.20GHz":                "intel-xeon",
		"Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz": "intel-xeon-platinum-8375c",
		"": "cpu",
	} {
		if got := FileName(in); got != want {
			t.Errorf("FileName(%q) = %q, want %q", in, got, want)
		}
	}
}
