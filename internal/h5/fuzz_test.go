package h5

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// walkAll opens b as a file and touches everything through the API:
// members recursively (depth and count bounded, as hard links may form
// cycles), every attribute as strings, every dataset read under a 1 MiB
// cap. It returns the first error that reports a bug (a recovered panic).
func walkAll(b []byte) error {
	f, err := openReader("fuzz.h5", bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return bugError(err)
	}
	visited := 0
	var bug error
	note := func(err error) {
		if bug == nil {
			bug = bugError(err)
		}
	}
	var walk func(g *Group, depth int)
	walk = func(g *Group, depth int) {
		if depth > 8 || visited > 500 {
			return
		}
		names, err := g.attrNames()
		note(err)
		for _, n := range append(names, "backend", "layer_names") {
			_, err := g.StringsAttr(n)
			note(err)
			_, err = g.StringAttr(n)
			note(err)
			g.HasAttr(n)
		}
		ms, err := g.Members()
		note(err)
		for _, m := range ms {
			visited++
			if visited > 500 {
				return
			}
			g.Has(m.Name)
			g.Has(m.Name + "/x")
			if m.Kind == GroupKind {
				sub, err := g.Group(m.Name)
				note(err)
				if err == nil {
					walk(sub, depth+1)
				}
				continue
			}
			_, err := g.Stat(m.Name)
			note(err)
			_, err = g.Read(m.Name, nil, 1<<20)
			note(err)
		}
	}
	walk(f.Root(), 0)
	return bug
}

func bugError(err error) error {
	if err != nil && strings.Contains(err.Error(), "internal error") {
		return err
	}
	return nil
}

// seeds are the fuzz seed files: testdata/seeds/*.h5 (written by
// testdata/h5files.py from h5py and Keras) and a file Go writes.
func seeds(t testing.TB) [][]byte {
	paths, err := filepath.Glob("testdata/seeds/*.h5")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		out = append(out, b)
	}
	p := filepath.Join(t.TempDir(), "go.h5")
	writeSample(t, p)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return append(out, b)
}

func FuzzOpen(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := walkAll(b); err != nil {
			t.Fatal(err)
		}
	})
}

// mutate returns a damaged copy of b: bit flips, a zeroed or random run,
// a field set to all ones or a large value, a truncation, or a mix.
func mutate(rng *rand.Rand, b []byte) []byte {
	m := append([]byte(nil), b...)
	steps := 1 + rng.Intn(3)
	for s := 0; s < steps && len(m) > 16; s++ {
		switch rng.Intn(7) {
		case 0, 1: // bit flips
			for i := 0; i < 1+rng.Intn(4); i++ {
				m[rng.Intn(len(m))] ^= 1 << rng.Intn(8)
			}
		case 2: // a zeroed run
			i := rng.Intn(len(m))
			clear(m[i:min(len(m), i+1+rng.Intn(64))])
		case 3: // random bytes
			i := rng.Intn(len(m))
			rng.Read(m[i:min(len(m), i+1+rng.Intn(16))])
		case 4: // a field of all ones, or a huge count
			i := rng.Intn(len(m) - 8)
			v := []uint64{^uint64(0), 1 << 40, 0xFFFF, 1 << 31, uint64(len(m)), 0}[rng.Intn(6)]
			binary.LittleEndian.PutUint64(m[i:], v)
		case 5: // a truncation
			m = m[:rng.Intn(len(m))]
		case 6: // an address pointing back at an earlier structure
			i := rng.Intn(len(m) - 8)
			binary.LittleEndian.PutUint64(m[i:], uint64(rng.Intn(len(m))&^7))
		}
	}
	return m
}

// A few hundred damaged copies of valid files give errors or values,
// never a panic or a hang.
func TestMutations(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	ss := seeds(t)
	start := time.Now()
	n := 1000
	if testing.Short() {
		n = 100
	}
	for i := 0; i < n; i++ {
		b := mutate(rng, ss[i%len(ss)])
		t0 := time.Now()
		if err := walkAll(b); err != nil {
			t.Fatalf("mutant %d: %v", i, err)
		}
		if d := time.Since(t0); d > 2*time.Second {
			t.Errorf("mutant %d took %v", i, d)
		}
	}
	t.Logf("%d mutants in %v", n, time.Since(start))
}

// Every seed walks without error reports and reads its datasets.
func TestSeedsWalk(t *testing.T) {
	for i, b := range seeds(t) {
		require.NoError(t, walkAll(b), fmt.Sprint("seed ", i))
	}
}
