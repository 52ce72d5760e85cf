package logs

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// watcher wakes a follower when something in the log directory changes:
// inotify where it works, a timer otherwise. Either way it also wakes up
// every poll interval, so that a missed event only delays.
type watcher struct {
	f    *os.File // inotify instance; nil when polling
	poll time.Duration
	buf  []byte
}

func newWatcher(dir string) *watcher {
	w := &watcher{poll: 100 * time.Millisecond}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return w
	}
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM |
		unix.IN_DELETE | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return w
	}
	f := os.NewFile(uintptr(fd), "inotify")
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close() // not pollable: no deadlines, so poll instead
		return w
	}
	w.f, w.poll, w.buf = f, time.Second, make([]byte, 4096)
	return w
}

// wait returns after a change, the poll interval, or with ctx's error.
func (w *watcher) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.f == nil {
		t := time.NewTimer(w.poll)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	_ = w.f.SetReadDeadline(time.Now().Add(w.poll))
	stop := context.AfterFunc(ctx, func() { _ = w.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	_, _ = w.f.Read(w.buf) // events or a timeout: either way, look again
	return ctx.Err()
}

// close releases the inotify instance in the background: the kernel
// destroys an inotify group only after an SRCU grace period (several
// milliseconds), which a follower at the end of a log need not wait for.
func (w *watcher) close() {
	if w.f != nil {
		go w.f.Close()
	}
}
