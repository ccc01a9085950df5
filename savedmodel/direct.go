package savedmodel

import (
	"bufio"
	"io"
	"os"
	"sync"
	"unsafe"
)

// shardBuffer is what a data shard is written through: a bufio.Writer, or
// a directWriter when WriteOptions.DirectIO is set and the file system
// takes it. Flush is called once, when the shard is complete.
type shardBuffer interface {
	Write(p []byte) (int, error)
	Flush() error
}

const (
	// directAlign is the alignment O_DIRECT needs of buffers, offsets and
	// lengths: 4096 covers every logical block size Linux disks report.
	directAlign = 4096
	// directStage is the staging buffer of each shard. Larger buffers
	// mean fewer, larger requests; 16 MiB was within a few percent of the
	// best on the benchmark machine while keeping memory bounded.
	directStage = 16 << 20
)

// directWriter writes a file opened with O_DIRECT, so the page cache never
// holds it. Write copies into one of two aligned staging buffers; a full
// buffer goes to the disk in the background while the other fills, so the
// copy and the checksum overlap the disk's work. Flush writes the
// unaligned tail padded to a block, truncates the file back to its true
// size, and ends the writer.
type directWriter struct {
	f    *os.File
	bufs [2][]byte
	cur  int   // the buffer being filled
	n    int   // bytes staged in it
	off  int64 // file offset of its first byte
	busy bool  // the other buffer is being written
	done chan error
	err  error // the first failed write
}

func newDirectWriter(f *os.File) *directWriter {
	return &directWriter{f: f, bufs: [2][]byte{alignedBuffer(directStage), alignedBuffer(directStage)}, done: make(chan error, 1)}
}

func alignedBuffer(size int) []byte {
	b := make([]byte, size+directAlign)
	skip := (directAlign - int(uintptr(unsafe.Pointer(&b[0]))%directAlign)) % directAlign
	return b[skip : skip+size : skip+size]
}

func (d *directWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	written := 0
	for len(p) > 0 {
		c := copy(d.bufs[d.cur][d.n:], p)
		d.n += c
		written += c
		p = p[c:]
		if d.n == directStage {
			if err := d.submit(d.n); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// submit starts writing the first n (aligned) bytes of the current buffer
// and switches to the other one once its own write has finished.
func (d *directWriter) submit(n int) error {
	if err := d.wait(); err != nil {
		return err
	}
	b, off := d.bufs[d.cur][:n], d.off
	d.busy = true
	go func() {
		_, err := d.f.WriteAt(b, off)
		d.done <- err
	}()
	d.off += int64(n)
	d.cur ^= 1
	d.n = 0
	return nil
}

// wait waits for the write in flight, if any, and returns the first error.
func (d *directWriter) wait() error {
	if d.busy {
		d.busy = false
		if err := <-d.done; err != nil && d.err == nil {
			d.err = err
		}
	}
	return d.err
}

func (d *directWriter) Flush() error {
	size := d.off + int64(d.n)
	if d.n > 0 {
		padded := (d.n + directAlign - 1) / directAlign * directAlign
		clear(d.bufs[d.cur][d.n:padded])
		if err := d.submit(padded); err != nil {
			return err
		}
	}
	if err := d.wait(); err != nil {
		return err
	}
	return d.f.Truncate(size)
}

// newShardBuffer returns the writer for the shard file f.
// With direct set it reopens the file with O_DIRECT where the system and
// file system allow, and otherwise buffers as TensorFlow does; the
// returned file is the one to sync and close.
func newShardBuffer(f *os.File, direct bool) (*os.File, shardBuffer) {
	if direct {
		if df, ok := openDirect(f.Name()); ok {
			f.Close()
			return df, newDirectWriter(df)
		}
	}
	return f, bufio.NewWriterSize(f, 1<<20)
}

// minDirectRead is the smallest tensor read with O_DIRECT: below it the
// page cache costs little and the block-aligned request would mostly read
// bytes that are not wanted.
const minDirectRead = 1 << 20

// useDirect tells whether a tensor of size bytes in sh is read directly.
func (r *BundleReader) useDirect(sh *shardFile, size int64) bool {
	return sh.direct != nil && size >= minDirectRead
}

var stagePool = sync.Pool{New: func() any { b := alignedBuffer(directStage); return &b }}

// readDirect reads size bytes at off from f (opened with O_DIRECT) in
// block-aligned chunks and passes each wanted part, in order, to use.
func readDirect(f *os.File, off, size int64, use func([]byte) error) error {
	bp := stagePool.Get().(*[]byte)
	defer stagePool.Put(bp)
	buf := *bp
	pos := off / directAlign * directAlign // aligned file position of buf[0]
	end := off + size
	for pos < end {
		want := min(int64(len(buf)), (end-pos+directAlign-1)/directAlign*directAlign)
		n, err := f.ReadAt(buf[:want], pos)
		if int64(n) < min(want, end-pos) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		lo := max(off-pos, 0)
		hi := min(int64(n), end-pos)
		if err := use(buf[lo:hi]); err != nil {
			return err
		}
		pos += int64(n) / directAlign * directAlign
		if int64(n) < want {
			break // the data ends before the last block does
		}
	}
	return nil
}
