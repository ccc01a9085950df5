package pyref

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// syncMarker is what the worker writes to stderr before each line it writes
// to stdout (see worker.py). It is not kept or forwarded.
var syncMarker = []byte("\x00pyref:sync\x00")

// tailWriter receives the worker's stderr. It keeps the last max bytes,
// removes sync markers and counts them, and from the first marker on (that
// is, once start-up is over) copies what it keeps to fwd.
type tailWriter struct {
	mu         sync.Mutex
	max        int
	buf        []byte
	fwd        io.Writer
	forwarding bool
	pending    []byte        // a prefix of syncMarker, held back
	synced     int           // markers seen
	notify     chan struct{} // signalled when a marker is seen
}

func newTailWriter(max int, fwd io.Writer) *tailWriter {
	return &tailWriter{max: max, fwd: fwd, notify: make(chan struct{}, 1)}
}

// Write records p. It never fails, so that the worker never blocks on a
// full stderr pipe.
func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		if len(t.pending) == 0 {
			i := bytes.IndexByte(p, syncMarker[0])
			if i < 0 {
				t.keep(p)
				break
			}
			t.keep(p[:i])
			p = p[i:]
		}
		need := syncMarker[len(t.pending):]
		k := min(len(need), len(p))
		if !bytes.Equal(p[:k], need[:k]) {
			// Not a marker after all. The held-back bytes hold no other
			// start of a marker, as syncMarker[0] occurs in it only first
			// and last.
			if len(t.pending) == 0 {
				t.keep(p[:1])
				p = p[1:]
			} else {
				t.keep(t.pending)
				t.pending = t.pending[:0]
			}
			continue
		}
		t.pending = append(t.pending, p[:k]...)
		p = p[k:]
		if len(t.pending) == len(syncMarker) {
			t.pending = t.pending[:0]
			t.synced++
			t.forwarding = true
			select {
			case t.notify <- struct{}{}:
			default:
			}
		}
	}
	return n, nil
}

// keep records p in the tail and forwards it if forwarding is on.
// The caller holds t.mu.
func (t *tailWriter) keep(p []byte) {
	if len(p) == 0 {
		return
	}
	if t.forwarding && t.fwd != nil {
		t.fwd.Write(p) // best effort
	}
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
}

// waitSynced waits until n markers have been seen, or for at most timeout.
func (t *tailWriter) waitSynced(n int, timeout time.Duration) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		t.mu.Lock()
		done := t.synced >= n
		t.mu.Unlock()
		if done {
			return
		}
		select {
		case <-t.notify:
		case <-deadline.C:
			return
		}
	}
}

// String returns the recorded bytes, without the sync markers, followed by
// any bytes held back as the possible start of one.
func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf) + string(t.pending)
}
