package pyref

import (
	"strings"
	"testing"
)

func TestTailWriterMarkers(t *testing.T) {
	const stream = "start-up noise\n\x00pyref:sync\x00abc\x00pyref:sy\x00x\x00\x00pyref:sync\x00def\n\x00"
	const kept = "start-up noise\nabc\x00pyref:sy\x00x\x00def\n\x00"
	const forwarded = "abc\x00pyref:sy\x00x\x00def\n\x00"
	for _, chunk := range []int{1, 2, 3, 5, 7, len(stream)} {
		var fwd strings.Builder
		tw := newTailWriter(1<<10, &fwd)
		for s := stream; s != ""; {
			n := min(chunk, len(s))
			if m, err := tw.Write([]byte(s[:n])); m != n || err != nil {
				t.Fatalf("chunk %d: Write = %d, %v", chunk, m, err)
			}
			s = s[n:]
		}
		// The trailing NUL may start a marker, so it is still held back
		// from forwarding.
		if got := tw.String(); got != kept {
			t.Errorf("chunk %d: kept %q, want %q", chunk, got, kept)
		}
		if got := fwd.String() + string(tw.pending); got != forwarded {
			t.Errorf("chunk %d: forwarded %q, want %q", chunk, got, forwarded)
		}
		if tw.synced != 2 {
			t.Errorf("chunk %d: synced %d markers, want 2", chunk, tw.synced)
		}
	}
}

func TestTailWriterBound(t *testing.T) {
	tw := newTailWriter(8, nil)
	tw.Write([]byte("0123456"))
	tw.Write([]byte("789"))
	if got := tw.String(); got != "23456789" {
		t.Errorf("after small writes: %q", got)
	}
	tw.Write([]byte("abcdefghijkl"))
	if got := tw.String(); got != "efghijkl" {
		t.Errorf("after a large write: %q", got)
	}
}
