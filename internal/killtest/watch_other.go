//go:build !linux

package killtest

import "errors"

type watcher struct{}

func newWatcher(string) (*watcher, error) {
	return nil, errors.New("file-event kills need Linux's inotify")
}
func (*watcher) arm(int, func(string) bool, string) {}
func (*watcher) disarm()                            {}
func (*watcher) close()                             {}
