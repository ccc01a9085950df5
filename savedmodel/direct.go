package savedmodel

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unsafe"
)

// IOMode selects how a BundleWriter writes, and a BundleReader reads, the
// bytes of data shards.
//
// Through the page cache, a large save runs at the speed the kernel finds
// memory for it: fast where recently freed memory is at hand (a process
// that saves every few minutes and removes its old checkpoints reuses
// theirs), several times slower on a virtual machine that has handed its
// free memory back to the host. Around it (O_DIRECT on Linux) I/O runs at
// the disk's speed whatever the memory, and leaves the page cache to other
// processes. The files are the same in every mode.
type IOMode int

const (
	// BufferedIO goes through the page cache, as TensorFlow does.
	BufferedIO IOMode = iota
	// DirectIO writes whole 16 MiB chunks around the page cache through an
	// aligned staging buffer (a shard's last, partial chunk goes through
	// it), and reads tensors of 1 MiB and more by taking what the page
	// cache already holds and the rest around it. Where the file system
	// refuses O_DIRECT, and outside Linux, it falls back to BufferedIO.
	DirectIO
	// AdaptiveIO writes a shard through the page cache while that is fast.
	// When a 16 MiB chunk goes slower than 2 GB/s it writes the next chunk
	// directly, and if that was faster it writes the rest of the shard
	// directly; otherwise it stays with the page cache. It reads as
	// DirectIO.
	AdaptiveIO
)

func (m IOMode) String() string {
	switch m {
	case BufferedIO:
		return "BufferedIO"
	case DirectIO:
		return "DirectIO"
	case AdaptiveIO:
		return "AdaptiveIO"
	}
	return fmt.Sprintf("IOMode(%d)", int(m))
}

const (
	// directAlign is the alignment O_DIRECT needs of buffers, offsets and
	// lengths: 4096 covers every logical block size Linux disks report.
	directAlign = 4096
	// chunkSize is the unit of direct I/O. Larger chunks mean fewer,
	// larger requests; 16 MiB was within a few percent of the best on the
	// benchmark machine while keeping memory bounded.
	chunkSize = 16 << 20
	// bigWrite is the size from which a buffered write goes to the file at
	// once instead of through the staging buffer.
	bigWrite = 64 << 10
	// slowBuffered (bytes/s) is where AdaptiveIO tries a direct chunk:
	// memory bandwidth with a page cache that has memory at hand is
	// several times more, and a fast disk written directly about as much.
	slowBuffered = 2e9
)

func alignedBuffer(size int) []byte {
	b := make([]byte, size+directAlign)
	skip := (directAlign - int(uintptr(unsafe.Pointer(&b[0]))%directAlign)) % directAlign
	return b[skip : skip+size : skip+size]
}

// chunkWriter writes a data shard. With O_DIRECT the file is cut into
// chunks of chunkSize at fixed offsets, each staged whole in the aligned
// buffer and written at once; the last, partial chunk goes through the
// page cache, so the file needs no padding. Through the page cache, large
// writes go to the file straight from the caller's memory and small ones
// are gathered in the buffer. AdaptiveIO times its buffered chunks and
// may move to direct ones at a chunk boundary, once for good.
type chunkWriter struct {
	f      *os.File // the shard
	df     *os.File // the shard opened with O_DIRECT, or nil
	buf    []byte   // staged bytes; they end at off
	n      int
	off    int64  // bytes written so far
	direct bool   // chunks go through df
	adapt  bool   // AdaptiveIO has not decided yet
	ways   [2]int // chunks written buffered and direct

	// The current chunk's timing under AdaptiveIO, and the buffered rate
	// that made it try a direct chunk (0: not tried yet).
	timed    int64
	spent    time.Duration
	buffered float64
	slow     float64 // slowBuffered; tests raise it to force a trial
}

func newChunkWriter(f, df *os.File, mode IOMode) *chunkWriter {
	w := &chunkWriter{f: f, df: df}
	if df == nil {
		w.buf = make([]byte, 1<<20) // no alignment needed
		return w
	}
	w.buf = alignedBuffer(chunkSize)
	w.direct = mode == DirectIO
	w.adapt = mode == AdaptiveIO
	w.slow = slowBuffered
	return w
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		take := len(p)
		if w.adapt { // stop at the chunk's end, where the way may change
			take = int(min(int64(take), (w.off/chunkSize+1)*chunkSize-w.off))
		}
		var err error
		if w.direct {
			err = w.writeDirect(p[:take])
		} else {
			err = w.writeBuffered(p[:take])
		}
		if err != nil {
			return written, err
		}
		written += take
		p = p[take:]
		if w.adapt && w.off%chunkSize == 0 {
			if err := w.decide(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (w *chunkWriter) writeBuffered(p []byte) error {
	if len(p) >= bigWrite || len(p) > len(w.buf)-w.n {
		if err := w.flushStaged(); err != nil {
			return err
		}
	}
	if len(p) < bigWrite {
		w.n += copy(w.buf[w.n:], p)
		w.off += int64(len(p))
		return nil
	}
	start := time.Now()
	n, err := w.f.WriteAt(p, w.off)
	w.spent += time.Since(start)
	w.timed += int64(n)
	w.off += int64(n)
	return err
}

func (w *chunkWriter) writeDirect(p []byte) error {
	start := time.Now()
	for len(p) > 0 {
		c := copy(w.buf[w.n:], p)
		w.n += c
		w.off += int64(c)
		p = p[c:]
		if w.n == len(w.buf) {
			if _, err := w.df.WriteAt(w.buf, w.off-int64(w.n)); err != nil {
				return err
			}
			w.n = 0
			w.ways[1]++
		}
	}
	w.spent += time.Since(start)
	return nil
}

// decide runs at the end of each chunk under AdaptiveIO: after a slow
// buffered chunk it tries a direct one, after the direct one it keeps the
// faster way for the rest of the shard.
func (w *chunkWriter) decide() error {
	if !w.direct {
		if err := w.flushStaged(); err != nil {
			return err
		}
	}
	spent, timed := w.spent.Seconds(), w.timed
	w.spent, w.timed = 0, 0
	switch {
	case w.direct: // the trial chunk
		w.adapt = false
		w.direct = chunkSize/spent > w.buffered
	case timed >= chunkSize/2 && spent > 0 && float64(timed)/spent < w.slow:
		w.buffered = float64(timed) / spent
		w.direct = true
	}
	return nil
}

// flushStaged writes the staged bytes through the page cache.
func (w *chunkWriter) flushStaged() error {
	if w.n == 0 {
		return nil
	}
	_, err := w.f.WriteAt(w.buf[:w.n], w.off-int64(w.n))
	w.n = 0
	w.ways[0]++
	return err
}

// Flush writes the staged bytes through the page cache: with O_DIRECT
// the last, partial chunk, which O_DIRECT cannot write. Nothing may be
// written after Flush.
func (w *chunkWriter) Flush() error {
	return w.flushStaged()
}

// Close closes the O_DIRECT handle, if any; the caller closes the shard.
func (w *chunkWriter) Close() {
	if w.df != nil {
		w.df.Close()
		w.df = nil
	}
}

// newShardWriter returns the writer of the shard file f in the given mode,
// falling back to BufferedIO where the system or file system refuses
// O_DIRECT.
func newShardWriter(f *os.File, mode IOMode) *chunkWriter {
	var df *os.File
	if mode == DirectIO || mode == AdaptiveIO {
		df = openDirect(f.Name())
	}
	return newChunkWriter(f, df, mode)
}

// useDirect tells whether a tensor of size bytes in sh is read with
// readDirect: below 1 MiB the page cache costs little, and a block-aligned
// request would read many bytes that are not wanted.
func (r *BundleReader) useDirect(sh *shardFile, size int64) bool {
	return sh.direct != nil && size >= chunkSize/16
}

var stagePool = sync.Pool{New: func() any { b := alignedBuffer(chunkSize); return &b }}

// readDirect reads size bytes at off of sh in block-aligned chunks, each
// first from what the page cache holds of it (reading cached data with
// O_DIRECT would write dirty pages back and read them again) and the rest
// with O_DIRECT, and passes each wanted part, in order, to use.
func readDirect(sh *shardFile, off, size int64, use func([]byte) error) error {
	bp := stagePool.Get().(*[]byte)
	defer stagePool.Put(bp)
	buf := *bp
	pos := off / directAlign * directAlign // aligned file position of buf[0]
	end := off + size
	for pos < end {
		want := min(int64(len(buf)), (end-pos+directAlign-1)/directAlign*directAlign)
		var got int64
		if c := sh.direct.cached(pos, want); c > 0 {
			n, err := sh.f.ReadAt(buf[:c], pos)
			if err != nil && err != io.EOF {
				return err
			}
			got = int64(n)
		}
		if need := min(want, end-pos); got < need {
			from := got / directAlign * directAlign
			n, err := sh.direct.f.ReadAt(buf[from:want], pos+from)
			if got = from + int64(n); got < need {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		if err := use(buf[max(off-pos, 0):min(got, end-pos)]); err != nil {
			return err
		}
		if got < want {
			break // the data ends before the last block does
		}
		pos += want
	}
	return nil
}
