package killtest

import (
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// watcher kills a process at the first inotify event in a directory (a
// file created or renamed into it) whose name a trigger accepts. It reads
// the events on a thread of its own and kills from there, so the child
// runs on for as short a time as possible after the event.
type watcher struct {
	fd, wd  int
	mu      sync.Mutex
	pid     int // the process to kill, once armed
	pending int // the process to kill once the marker is seen
	marker  string
	trigger func(string) bool
	closed  bool
}

func newWatcher(dir string) (*watcher, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wd, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_MOVED_TO)
	if err != nil {
		syscall.Close(fd)
		return nil, err
	}
	w := &watcher{fd: fd, wd: wd}
	go w.loop()
	return w, nil
}

func (w *watcher) loop() {
	runtime.LockOSThread()
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(w.fd, buf)
		if err == syscall.EINTR {
			continue
		}
		w.mu.Lock()
		closed := w.closed
		w.mu.Unlock()
		if closed || err != nil || n <= 0 {
			// The reader closes the descriptor: closed under a blocked
			// read, its number could be reused before the read returned.
			syscall.Close(w.fd)
			return
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			for len(name) > 0 && name[len(name)-1] == 0 {
				name = name[:len(name)-1]
			}
			w.mu.Lock()
			if w.pending != 0 && string(name) == w.marker {
				w.pid, w.pending = w.pending, 0
			} else if w.pid != 0 && w.trigger(string(name)) {
				syscall.Kill(w.pid, syscall.SIGKILL)
				w.pid = 0
			}
			w.mu.Unlock()
		}
	}
}

// arm makes the watcher kill pid at the first event trigger accepts after
// the creation of the file marker in the directory (which the caller makes
// next): the events still queued from before, which the reader may not have
// consumed yet, do not count.
func (w *watcher) arm(pid int, trigger func(string) bool, marker string) {
	w.mu.Lock()
	w.pending, w.marker, w.trigger = pid, marker, trigger
	w.mu.Unlock()
}

func (w *watcher) disarm() {
	w.mu.Lock()
	w.pid, w.pending = 0, 0
	w.mu.Unlock()
}

// close stops the watcher: removing the watch queues an IN_IGNORED event,
// which wakes the reader to close the descriptor.
func (w *watcher) close() {
	w.mu.Lock()
	w.closed, w.pid, w.pending = true, 0, 0
	w.mu.Unlock()
	syscall.InotifyRmWatch(w.fd, uint32(w.wd))
}
