package savedmodel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// TFRecord files (tf.io.TFRecordWriter, TensorBoard's event files, TF
// Serving's warm-up requests) are a sequence of records, each framed as
// a little-endian uint64 length, the masked crc32c of those 8 bytes, the
// payload, and the masked crc32c of the payload. Uncompressed only: a
// GZIP or ZLIB TFRecord file fails its first length check.

// DefaultMaxRecordBytes bounds one record's payload when the caller gives
// no limit: a record's length comes from the file and is checked before
// its buffer is allocated.
const DefaultMaxRecordBytes = 256 << 20

// ErrCorruptRecord is wrapped by the errors of a record whose framing or
// checksums are wrong.
var ErrCorruptRecord = errors.New("corrupt TFRecord")

// RecordReader reads the records of a TFRecord stream one at a time.
type RecordReader struct {
	r        io.Reader
	name     string
	maxBytes int64
	offset   int64
	header   [12]byte
}

// RecordReaderOptions configure a RecordReader; the zero value is the default.
type RecordReaderOptions struct {
	// Name is what errors call the stream (a file's path).
	Name string
	// MaxRecordBytes bounds one record's payload (0: DefaultMaxRecordBytes).
	MaxRecordBytes int64
}

// NewRecordReader reads TFRecords from r.
func NewRecordReader(r io.Reader, opts RecordReaderOptions) *RecordReader {
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if opts.Name == "" {
		opts.Name = "TFRecord stream"
	}
	return &RecordReader{r: r, name: opts.Name, maxBytes: opts.MaxRecordBytes}
}

// Next returns the next record's payload, or io.EOF after the last one.
// A stream that ends inside a record is io.ErrUnexpectedEOF (a writer may
// still be appending to it); checksum and size failures wrap
// ErrCorruptRecord or ErrTooLarge and name the record's offset.
func (rr *RecordReader) Next() ([]byte, error) {
	if rr == nil || rr.r == nil {
		return nil, errors.New("savedmodel: RecordReader without a stream (make one with NewRecordReader and an io.Reader)")
	}
	n, err := io.ReadFull(rr.r, rr.header[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, rr.fail("reading the record header: %w", unexpected(err, n))
	}
	size := binary.LittleEndian.Uint64(rr.header[:8])
	if got, want := maskCRC(crc32.Checksum(rr.header[:8], castagnoli)), binary.LittleEndian.Uint32(rr.header[8:]); got != want {
		return nil, rr.fail("the length's crc32c is %#x, the file says %#x: %w", got, want, ErrCorruptRecord)
	}
	if size > uint64(rr.maxBytes) {
		return nil, rr.fail("a record of %d bytes is over the limit of %d: %w", size, rr.maxBytes, ErrTooLarge)
	}
	buf := make([]byte, size+4)
	if n, err := io.ReadFull(rr.r, buf); err != nil {
		return nil, rr.fail("reading a record of %d bytes: %w", size, unexpected(err, n))
	}
	data, sum := buf[:size], binary.LittleEndian.Uint32(buf[size:])
	if got := maskCRC(crc32.Checksum(data, castagnoli)); got != sum {
		return nil, rr.fail("the payload's crc32c is %#x, the file says %#x: %w", got, sum, ErrCorruptRecord)
	}
	rr.offset += int64(len(rr.header)) + int64(len(buf))
	return data, nil
}

func (rr *RecordReader) fail(format string, args ...any) error {
	return fmt.Errorf("%s: record at byte %d: %w", rr.name, rr.offset, fmt.Errorf(format, args...))
}

// unexpected turns an EOF inside a record into io.ErrUnexpectedEOF.
func unexpected(err error, n int) error {
	if err == io.EOF && n == 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendRecord appends payload to b framed as one TFRecord.
func AppendRecord(b, payload []byte) []byte {
	start := len(b)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, maskCRC(crc32.Checksum(b[start:], castagnoli)))
	b = append(b, payload...)
	return binary.LittleEndian.AppendUint32(b, maskCRC(crc32.Checksum(payload, castagnoli)))
}
