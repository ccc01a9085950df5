package pyref

import (
	"errors"
	"sync"
)

var shared struct {
	once sync.Once
	w    *Worker
	err  error
}

// Shared returns the worker shared by the whole test binary, starting it
// with [Start] on first use. Every call returns the same worker, or the same
// start-up error. TestMain should call [CloseShared] after m.Run.
func Shared() (*Worker, error) {
	shared.once.Do(func() {
		shared.w, shared.err = Start()
	})
	return shared.w, shared.err
}

// CloseShared closes the shared worker if it was started; after it, Shared
// no longer starts one. It returns the result of [Worker.Close].
func CloseShared() error {
	shared.once.Do(func() {
		shared.err = errors.New("pyref: shared worker is closed")
	})
	if shared.w == nil {
		return nil
	}
	return shared.w.Close()
}
