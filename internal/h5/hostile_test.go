package h5

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sampleBytes is writeSample's file.
func sampleBytes(t *testing.T) []byte {
	p := filepath.Join(t.TempDir(), "s.h5")
	writeSample(t, p)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

func openBytes(t *testing.T, b []byte) (*File, error) {
	return openReader("hostile.h5", bytes.NewReader(b), int64(len(b)))
}

// Structures pointing back at themselves or outside the file give errors
// naming the file and object, never a loop or a crash.
func TestHostileStructures(t *testing.T) {
	good := sampleBytes(t)

	t.Run("btree child pointing at its own node", func(t *testing.T) {
		b := append([]byte(nil), good...)
		// The root group's B-tree, from the superblock's scratch pad.
		i := int(binary.LittleEndian.Uint64(b[80:]))
		require.Equal(t, "TREE", string(b[i:i+4]))
		// The first child address follows the 24-byte node prefix and key 0.
		binary.LittleEndian.PutUint64(b[i+24+8:], uint64(i))
		f, err := openBytes(t, b)
		if err == nil {
			_, err = f.Root().Members()
		}
		require.Error(t, err)
		assert.Contains(t, err.Error(), "hostile.h5")
	})

	t.Run("continuation chunk pointing at its own chunk", func(t *testing.T) {
		// A v1 header whose only message is a continuation to itself.
		b := append([]byte(nil), good...)
		root := binary.LittleEndian.Uint64(b[64:]) // root entry's header address
		var msg [24]byte
		binary.LittleEndian.PutUint16(msg[0:], msgContinuation)
		binary.LittleEndian.PutUint16(msg[2:], 16)
		binary.LittleEndian.PutUint64(msg[8:], root+16)
		binary.LittleEndian.PutUint64(msg[16:], 24)
		binary.LittleEndian.PutUint32(b[root+8:], 24)
		copy(b[root+16:], msg[:])
		_, err := openBytes(t, b)
		require.ErrorContains(t, err, "loop")
		assert.Contains(t, err.Error(), "hostile.h5")
	})

	t.Run("data address beyond the end of the file", func(t *testing.T) {
		f, err := openBytes(t, good)
		require.NoError(t, err)
		o, _, err := f.Root().resolve("layers/dense/vars/0")
		require.NoError(t, err)
		ds, err := f.r.parseDataset(o)
		require.NoError(t, err)
		b := append([]byte(nil), good...)
		// Patch the layout message's address (find it by its value).
		var want [8]byte
		binary.LittleEndian.PutUint64(want[:], ds.addr)
		i := bytes.Index(b, append([]byte{3, layoutContiguous}, want[:]...))
		require.GreaterOrEqual(t, i, 0)
		binary.LittleEndian.PutUint64(b[i+2:], uint64(len(b))-8)
		f, err = openBytes(t, b)
		require.NoError(t, err)
		_, err = f.Root().Read("layers/dense/vars/0", nil, 0)
		require.ErrorContains(t, err, "outside the file")
		assert.Contains(t, err.Error(), "/layers/dense/vars/0")
	})

	t.Run("global heap collection larger than the file", func(t *testing.T) {
		b := append([]byte(nil), good...)
		i := bytes.Index(b, []byte("GCOL"))
		require.GreaterOrEqual(t, i, 0)
		binary.LittleEndian.PutUint64(b[i+8:], 1<<40)
		f, err := openBytes(t, b)
		require.NoError(t, err)
		_, err = f.Root().StringAttr("backend")
		require.ErrorContains(t, err, "global heap")
		assert.Contains(t, err.Error(), "/@backend")
	})

	t.Run("not HDF5", func(t *testing.T) {
		_, err := openBytes(t, bytes.Repeat([]byte{0x89}, 4096))
		require.ErrorContains(t, err, "not an HDF5 file")
	})
}

// A chunked layout flag the reader does not implement (partial edge
// chunks stored unfiltered) is refused, not read as filtered.
func TestLayoutFlagsRefused(t *testing.T) {
	r := &reader{o: 8, l: 8}
	msg := []byte{4, layoutChunked, 0x01, 2, 1, 4, 4, indexFixedArray, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	require.ErrorContains(t, r.parseLayout(&dataset{}, msg), "unsupported chunked layout flags")
	msg[2] = 0
	require.NoError(t, r.parseLayout(&dataset{}, msg))
}

// A float whose mantissa normalization is not IEEE's implied bit is not
// read as float32.
func TestFloatNormalizationRefused(t *testing.T) {
	msg := []byte{0x11, 0x20, 31, 0, 4, 0, 0, 0, 0, 0, 32, 0, 23, 8, 0, 23, 127, 0, 0, 0}
	dt, _, err := parseDatatype(msg, 0)
	require.NoError(t, err)
	require.Equal(t, Float32, dt.dtype())
	msg[1] = 0x00 // no normalization
	dt, _, err = parseDatatype(msg, 0)
	require.NoError(t, err)
	require.Equal(t, Invalid, dt.dtype())
}
