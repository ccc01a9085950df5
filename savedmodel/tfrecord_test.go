package savedmodel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readAllRecords(b []byte, opts RecordReaderOptions) ([][]byte, error) {
	rr := NewRecordReader(bytes.NewReader(b), opts)
	var recs [][]byte
	for {
		rec, err := rr.Next()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return recs, err
		}
		recs = append(recs, rec)
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	want := [][]byte{{}, []byte("brain.Event:2"), bytes.Repeat([]byte{0xff, 0}, 5000)}
	var b []byte
	for _, r := range want {
		b = AppendRecord(b, r)
	}
	got, err := readAllRecords(b, RecordReaderOptions{})
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i := range want {
		assert.Equal(t, want[i], got[i])
	}
}

func TestRecordsRefused(t *testing.T) {
	var good []byte
	good = AppendRecord(good, []byte("first"))
	good = AppendRecord(good, []byte("second record"))
	first := len(AppendRecord(nil, []byte("first")))

	flip := func(at int) []byte {
		b := bytes.Clone(good)
		b[at] ^= 0x10
		return b
	}
	cases := []struct {
		name string
		data []byte
		opts RecordReaderOptions
		want error
	}{
		{"length flipped", flip(first), RecordReaderOptions{}, ErrCorruptRecord},
		{"payload flipped", flip(first + 13), RecordReaderOptions{}, ErrCorruptRecord},
		{"payload crc flipped", flip(len(good) - 1), RecordReaderOptions{}, ErrCorruptRecord},
		{"truncated in a header", good[:first+5], RecordReaderOptions{}, io.ErrUnexpectedEOF},
		{"truncated in a payload", good[:len(good)-6], RecordReaderOptions{}, io.ErrUnexpectedEOF},
		{"over the limit", good, RecordReaderOptions{MaxRecordBytes: 8}, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Name = "events.out.tfevents.1"
			recs, err := readAllRecords(c.data, c.opts)
			require.Error(t, err)
			assert.True(t, errors.Is(err, c.want), "%v is not %v", err, c.want)
			assert.Contains(t, err.Error(), "events.out.tfevents.1")
			if c.name != "over the limit" {
				assert.Equal(t, [][]byte{[]byte("first")}, recs, "the good record before the bad one is read")
			}
		})
	}

	// A header claiming 2^60 bytes, with a valid crc: refused before any
	// allocation of that size.
	hdr := binary.LittleEndian.AppendUint64(nil, 1<<60)
	hdr = binary.LittleEndian.AppendUint32(hdr, maskCRC(crc32.Checksum(hdr, castagnoli)))
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := readAllRecords(hdr, RecordReaderOptions{}); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("a 2^60-byte record: %v", err)
		}
	})
	assert.Less(t, allocs, 20.0)
}

// FuzzRecordReader: any stream reads as records or fails with an error,
// never a panic or an allocation beyond the record limit.
func FuzzRecordReader(f *testing.F) {
	var b []byte
	b = AppendRecord(b, []byte("brain.Event:2"))
	b = AppendRecord(b, bytes.Repeat([]byte("x"), 300))
	f.Add(b)
	f.Add(b[:20])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := readAllRecords(data, RecordReaderOptions{MaxRecordBytes: 1 << 20})
		if err == nil {
			var again []byte
			for _, r := range recs {
				again = AppendRecord(again, r)
			}
			if !bytes.Equal(again, data) {
				t.Fatalf("%d records read back as other bytes", len(recs))
			}
		}
	})
}
