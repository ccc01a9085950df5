package savedmodel

import (
	"errors"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// IOMode selects how a BundleWriter writes, and a BundleReader reads, the
// bytes of data shards. The files are the same in every mode.
//
// Through the page cache, a large save runs at the speed the kernel finds
// memory for it: fast where recently freed memory is at hand (a process
// that saves every few minutes and removes its old checkpoints reuses
// theirs), several times slower on a virtual machine that has handed its
// free memory back to the host, and slow whenever other processes compete
// for memory and CPU. Around it (O_DIRECT on Linux) a save costs little CPU
// and runs at the disk's speed whatever the memory, leaves the page cache
// to other processes, and makes a durable save (WriteOptions.NoSync false)
// nearly free: the bytes are on the device already when fsync runs. Which
// of the two is faster changes with the memory's state, even within one
// save (the freed pages of a removed checkpoint run out, and fresh ones are
// slow), so the default, AutoIO, measures both as it writes.
type IOMode int

const (
	// AutoIO, the zero value, writes a save that is not synced
	// (WriteOptions.NoSync) in chunks of 16 MiB, each through the page
	// cache or around it, whichever the shard's most recent chunks
	// measured faster, trying the other way now and then: a page cache
	// that slows down is left within two chunks, one that is fast again
	// is back within 32. A durable save it writes as DirectIO, since the
	// fsync of page-cache data would cost the disk's time again; a caller
	// that syncs the files itself after a NoSync save should ask for
	// DirectIO for the same reason. It reads as BufferedIO does: after a
	// save, much of the file is in the page cache.
	AutoIO IOMode = iota
	// DirectIO writes whole 16 MiB chunks around the page cache through
	// aligned staging buffers, one chunk written by the disk while the
	// next is copied and checksummed (a shard's last, partial chunk goes
	// through the page cache), and reads tensors of 1 MiB and more by
	// taking what the page cache already holds and the rest around it.
	// Where the file system refuses O_DIRECT, and outside Linux, it falls
	// back to BufferedIO.
	DirectIO
	// BufferedIO goes through the page cache, as TensorFlow does.
	BufferedIO
)

func (m IOMode) valid() bool { return m == AutoIO || m == DirectIO || m == BufferedIO }

func (m IOMode) String() string {
	switch m {
	case AutoIO:
		return "AutoIO"
	case BufferedIO:
		return "BufferedIO"
	case DirectIO:
		return "DirectIO"
	}
	return "IOMode(?)"
}

const (
	// directAlign is the alignment O_DIRECT needs of buffers, offsets and
	// lengths: 4096 covers every logical block size Linux disks report.
	directAlign = 4096
	// chunkSize is the unit of direct I/O, and of AutoIO's choice.
	// Larger chunks mean fewer, larger requests; 16 MiB was within a few
	// percent of the best on the benchmark machine while keeping memory
	// bounded.
	chunkSize = 16 << 20
	// bigWrite is the size from which a buffered write goes to the file at
	// once instead of through the staging buffer.
	bigWrite = 64 << 10
	// AutoIO tries the slower way again after minProbe chunks of the
	// faster times how many times faster it is, and after twice as many
	// each time it stays the slower, up to maxProbe: a trial costs about
	// that ratio less one chunk, so the trials take about a quarter of
	// the time at first and less and less while the speeds hold. The
	// memory's speed changes a few times in a save at most.
	minProbe = 4
	maxProbe = 32
)

func alignedBuffer(size int) []byte {
	b := make([]byte, size+directAlign)
	skip := (directAlign - int(uintptr(unsafe.Pointer(&b[0]))%directAlign)) % directAlign
	return b[skip : skip+size : skip+size]
}

// chunkWriter writes a data shard. Under BufferedIO large writes go to
// the file straight from the caller's memory and small ones are gathered
// in the buffer. Otherwise the file is cut into chunks of chunkSize at
// fixed offsets, so that every chunk may go around the page cache: a
// direct chunk is staged whole in an aligned buffer and written with
// O_DIRECT by a goroutine of its own, so that the caller stages the next
// chunk while the disk writes this one (settle waits for them at the
// tensor's end); a buffered chunk (AutoIO's choice) is written as under
// BufferedIO. The last, partial chunk goes through the page cache, so the
// file needs no padding. Direct writes stay at chunk offsets, so the two
// ways never share a page of the file.
type chunkWriter struct {
	f    *os.File // the shard
	df   *os.File // the shard opened with O_DIRECT, or nil for BufferedIO
	buf  []byte   // staged bytes; they end at off
	n    int
	off  int64  // bytes written so far
	ways [2]int // chunks written buffered and direct

	// With df: staged chunks go to writeChunks on full, and their
	// buffers come back on free; done carries its first error once full
	// is closed.
	full chan stagedChunk
	free chan *[]byte
	done chan error
	bufp *[]byte // the pool's handle of buf
	werr atomic.Pointer[error]

	// AutoIO's choice: the current chunk's way, the faster way, the last
	// measured rate of each way in bytes/s (0: none yet; the direct one
	// set by writeChunks), how many chunks in a row went the faster way,
	// and after how many the other is tried again.
	auto       bool
	direct     bool
	fast       bool          // the faster way by the last rates: direct
	bufRun     bool          // the chunk before went through the page cache
	spent      time.Duration // in the current buffered chunk's writes
	rateBuf    float64
	rateDirect atomic.Uint64 // math.Float64bits
	streak     int
	probeEvery int
	// timing turns a write's measured duration into the one recorded;
	// tests replace it to make a way slow. It runs on writeChunks'
	// goroutine too.
	timing func(direct bool, n int, d time.Duration) time.Duration
}

type stagedChunk struct {
	b   *[]byte
	off int64
}

// stagedChunks is how many chunks a shard stages at once: one being
// written, one being filled. More did not help: the disk is the limit once
// it never waits for the caller.
const stagedChunks = 2

func newChunkWriter(f, df *os.File, auto bool) *chunkWriter {
	w := &chunkWriter{f: f, df: df}
	if df == nil {
		w.buf = make([]byte, 1<<20) // no alignment needed
		return w
	}
	w.auto, w.direct = auto, !auto
	w.probeEvery = minProbe
	w.full = make(chan stagedChunk, stagedChunks)
	w.free = make(chan *[]byte, stagedChunks)
	w.done = make(chan error, 1)
	for range stagedChunks - 1 {
		w.free <- stagePool.Get().(*[]byte)
	}
	w.bufp = stagePool.Get().(*[]byte)
	w.buf = *w.bufp
	go w.writeChunks()
	return w
}

// recorded is the duration d of a write of n bytes as timing makes it.
func (w *chunkWriter) recorded(direct bool, n int, d time.Duration) time.Duration {
	if w.timing != nil {
		d = w.timing(direct, n, d)
	}
	return d
}

// writeChunks writes the staged chunks with O_DIRECT until full is
// closed; after a failure it only hands the buffers back.
func (w *chunkWriter) writeChunks() {
	var err error
	last := int64(-chunkSize) // offset of the chunk written before
	for c := range w.full {
		if err == nil {
			start := time.Now()
			if _, err = w.df.WriteAt(*c.b, c.off); err != nil {
				w.werr.Store(&err)
			} else if d := w.recorded(true, len(*c.b), time.Since(start)); d > 0 {
				old := math.Float64frombits(w.rateDirect.Load())
				r := smooth(old, float64(len(*c.b))/d.Seconds(), c.off == last+chunkSize)
				w.rateDirect.Store(math.Float64bits(r))
			}
			last = c.off
		}
		w.free <- c.b
	}
	w.done <- err
}

// choose picks the way of the chunk about to start under AutoIO: each way
// once to have a rate, then the faster by the last rates measured, and
// the other after a run of the faster (see minProbe). A direct chunk still being
// written has no rate yet; until it has, the page cache's is the one to go
// by.
func (w *chunkWriter) choose() bool {
	rd := math.Float64frombits(w.rateDirect.Load())
	switch {
	case w.rateBuf == 0:
		return false
	case rd == 0:
		return w.ways[1] == 0
	}
	if faster := rd > w.rateBuf; faster != w.fast {
		// The memory's speed changed, or a trial found the other way
		// faster: trials of the way just left are worth making soon.
		w.fast, w.streak, w.probeEvery = faster, 0, minProbe
	}
	ratio := max(rd/w.rateBuf, w.rateBuf/rd)
	if float64(w.streak) >= min(float64(w.probeEvery)*ratio, maxProbe) {
		w.streak = 0
		w.probeEvery = min(2*w.probeEvery, maxProbe)
		return !w.fast
	}
	w.streak++
	return w.fast
}

// smooth returns the rate estimate after a chunk measured at rate r: r
// weighed 3 to 1 with the estimate before (est) if the chunk before went
// the same way (inrun), so that one chunk slowed by other processes is
// less likely to switch ways while a lasting change still does within two
// chunks, and r alone after a chunk of the other way, since est is old
// then.
func smooth(est, r float64, inrun bool) float64 {
	if !inrun || est == 0 {
		return r
	}
	return (est + 3*r) / 4
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	if w.df != nil {
		return w.writeChunked(p)
	}
	return len(p), w.writeBuffered(p)
}

func (w *chunkWriter) writeBuffered(p []byte) error {
	if len(p) >= bigWrite || len(p) > len(w.buf)-w.n {
		if err := w.flushStaged(); err != nil {
			return err
		}
	}
	if len(p) >= bigWrite {
		start := time.Now()
		n, err := w.f.WriteAt(p, w.off)
		w.spent += time.Since(start)
		w.off += int64(n)
		return err
	}
	w.n += copy(w.buf[w.n:], p)
	w.off += int64(len(p))
	return nil
}

// writeChunked writes p chunk by chunk, each the way chosen at its start.
func (w *chunkWriter) writeChunked(p []byte) (int, error) {
	if w.full == nil {
		return 0, errors.New("chunk writer: write after Flush")
	}
	written := 0
	for len(p) > 0 {
		if w.auto && w.off%chunkSize == 0 {
			was := w.direct
			w.direct = w.choose()
			if was && !w.direct {
				// A buffered write waits for the direct ones in flight
				// (the file's inode lock): waited for here, they are
				// kept out of the page cache's rate.
				if err := w.settle(); err != nil {
					return written, err
				}
			}
		}
		take := min(len(p), chunkSize-int(w.off%chunkSize))
		var err error
		if w.direct {
			err = w.stageDirect(p[:take])
		} else if err = w.writeBuffered(p[:take]); err == nil && w.off%chunkSize == 0 {
			err = w.endBuffered()
		}
		if err != nil {
			return written, err
		}
		written += take
		p = p[take:]
	}
	return written, nil
}

// endBuffered writes what is left of a buffered chunk and records the
// page cache's rate from its writes.
func (w *chunkWriter) endBuffered() error {
	if err := w.flushStaged(); err != nil {
		return err
	}
	if d := w.recorded(false, chunkSize, w.spent); d > 0 {
		w.rateBuf = smooth(w.rateBuf, chunkSize/d.Seconds(), w.bufRun)
	}
	w.spent = 0
	w.ways[0]++
	w.bufRun = true
	return nil
}

// stageDirect copies p, which does not cross a chunk's end, into the
// staged chunk, and hands the chunk to writeChunks once full.
func (w *chunkWriter) stageDirect(p []byte) error {
	c := copy(w.buf[w.n:], p)
	w.n += c
	w.off += int64(c)
	if w.n < len(w.buf) {
		return nil
	}
	w.full <- stagedChunk{b: w.bufp, off: w.off - int64(w.n)}
	w.bufp = <-w.free // waits while the disk writes every other one
	w.buf, w.n = *w.bufp, 0
	w.ways[1]++
	w.bufRun = false
	if err := w.werr.Load(); err != nil {
		return *err
	}
	return nil
}

// flushStaged writes the staged bytes through the page cache.
func (w *chunkWriter) flushStaged() error {
	if w.n == 0 {
		return nil
	}
	start := time.Now()
	_, err := w.f.WriteAt(w.buf[:w.n], w.off-int64(w.n))
	w.spent += time.Since(start)
	w.n = 0
	if w.df == nil {
		w.ways[0]++
	}
	return err
}

// settle waits until the chunks staged so far are written (all but the
// partial one being filled), so that a tensor's Add returns with its
// bytes in the file, as it did before writes were overlapped: a kill
// after Add finds what Add wrote.
func (w *chunkWriter) settle() error {
	if w.full == nil {
		return nil
	}
	var held [stagedChunks - 1]*[]byte
	for i := range held {
		held[i] = <-w.free
	}
	for _, b := range held {
		w.free <- b
	}
	if err := w.werr.Load(); err != nil {
		return *err
	}
	return nil
}

// stopDirect waits for the chunks staged so far to be written and returns
// the staging buffers to the pool; it returns the first write error.
func (w *chunkWriter) stopDirect() error {
	if w.full == nil {
		return nil
	}
	close(w.full)
	err := <-w.done
	w.full = nil
	for range stagedChunks - 1 {
		stagePool.Put(<-w.free)
	}
	return err
}

// Flush waits for the direct writes and writes the staged bytes through
// the page cache: the last, partial chunk, which O_DIRECT cannot write.
// Nothing may be written after Flush.
func (w *chunkWriter) Flush() error {
	if err := w.stopDirect(); err != nil {
		return err
	}
	return w.flushStaged()
}

// Close stops the direct writes, if any, and closes the O_DIRECT handle;
// the caller closes the shard.
func (w *chunkWriter) Close() {
	w.stopDirect()
	if w.bufp != nil {
		stagePool.Put(w.bufp)
		w.bufp, w.buf = nil, nil
	}
	if w.df != nil {
		w.df.Close()
		w.df = nil
	}
}

// newShardWriter returns the writer of the shard file f in the given mode,
// falling back to BufferedIO where the system or file system refuses
// O_DIRECT. A durable save (sync) under AutoIO is written as DirectIO.
func newShardWriter(f *os.File, mode IOMode, sync bool) *chunkWriter {
	var df *os.File
	if mode != BufferedIO {
		df = openDirect(f.Name())
	}
	return newChunkWriter(f, df, mode == AutoIO && !sync)
}

// useDirect tells whether a tensor of size bytes in sh is read with
// O_DIRECT: below a chunk the page cache costs little and a block-aligned
// request would mostly read bytes that are not wanted.
func (r *BundleReader) useDirect(sh *shardFile, size int64) bool {
	return sh.direct != nil && size >= chunkSize/16
}

var stagePool = sync.Pool{New: func() any { b := alignedBuffer(chunkSize); return &b }}

// readDirect reads size bytes at off of sh in block-aligned chunks, each
// first from what the page cache holds of it (reading cached data with
// O_DIRECT would write dirty pages back and read them again) and the rest
// with O_DIRECT, and passes each wanted part, in order, to use. A
// goroutine reads the next chunk while use takes this one, so that the
// disk does not wait for the copy and the checksum.
func readDirect(sh *shardFile, off, size int64, use func([]byte) error) error {
	type chunk struct {
		bp            *[]byte
		pos, got, end int64 // the chunk's file position, bytes read, bytes wanted of them
		err           error
	}
	end := off + size
	filled := make(chan chunk, 1)
	free := make(chan *[]byte, stagedChunks)
	for range stagedChunks {
		free <- stagePool.Get().(*[]byte)
	}
	stop := make(chan struct{})
	go func() {
		defer close(filled)
		for pos := off / directAlign * directAlign; pos < end; {
			var bp *[]byte
			select {
			case <-stop:
				return
			case bp = <-free:
			}
			want := min(int64(len(*bp)), (end-pos+directAlign-1)/directAlign*directAlign)
			got, err := readChunk(sh, *bp, pos, want, min(want, end-pos))
			filled <- chunk{bp: bp, pos: pos, got: got, end: min(got, end-pos), err: err}
			if err != nil || got < want {
				return // a failure, or the data ends before the last block does
			}
			pos += want
		}
	}()
	var err error
	for c := range filled {
		if err == nil {
			if err = c.err; err == nil {
				err = use((*c.bp)[max(off-c.pos, 0):c.end])
			}
			if err != nil {
				close(stop)
			}
		}
		free <- c.bp
	}
	for range stagedChunks {
		stagePool.Put(<-free)
	}
	return err
}

// readChunk reads want bytes at the aligned position pos into buf, the
// page cache's part buffered and the rest with O_DIRECT, and returns how
// many it read: fewer only where the file ends, and then an error if
// fewer than need.
func readChunk(sh *shardFile, buf []byte, pos, want, need int64) (int64, error) {
	var got int64
	if c := sh.direct.cached(pos, want); c > 0 {
		n, err := sh.f.ReadAt(buf[:c], pos)
		if err != nil && err != io.EOF {
			return 0, err
		}
		got = int64(n)
	}
	if got < need {
		from := got / directAlign * directAlign
		n, err := sh.direct.f.ReadAt(buf[from:want], pos+from)
		if got = from + int64(n); got < need {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return got, err
		}
	}
	return got, nil
}
