package process

import (
	"errors"
	"path"
	"strconv"

	"golang.org/x/sys/unix"
)

// Paths inside the container's rootfs are resolved by the kernel with
// openat2(RESOLVE_IN_ROOT): symlinks and ".." are evaluated as if the rootfs
// were "/", so a hostile image cannot point a mount target at the host.
// One syscall per lookup keeps the start path short.

// openInRoot opens p inside the directory root as an O_PATH handle.
func openInRoot(root int, p string, flags uint64) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC | flags,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(root, path.Clean("/"+p), &how)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue // a concurrent rename: the kernel asks us to retry
		}
		return fd, err
	}
}

// mkdirAllInRoot makes directory p (and its parents) inside root and
// returns an O_PATH handle on it. A dangling symlink on the way is followed
// inside the root and its target made, as runc does.
func mkdirAllInRoot(root int, p string, mode uint32) (int, error) {
	return mkdirAllDepth(root, p, mode, 0)
}

// maxSymlinks bounds the symlinks followed while making a path (ELOOP).
const maxSymlinks = 40

func mkdirAllDepth(root int, p string, mode uint32, links int) (int, error) {
	p = path.Clean("/" + p)
	fd, err := openInRoot(root, p, unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) || p == "/" {
		return fd, err
	}
	parent, err := mkdirAllDepth(root, path.Dir(p), mode, links)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	err = unix.Mkdirat(parent, path.Base(p), mode)
	if errors.Is(err, unix.EEXIST) {
		// Something is there that did not resolve: a dangling symlink.
		buf := make([]byte, unix.PathMax)
		n, rerr := unix.Readlinkat(parent, path.Base(p), buf)
		if rerr != nil {
			return -1, err
		}
		if links >= maxSymlinks {
			return -1, unix.ELOOP
		}
		target := string(buf[:n])
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		// The target is resolved inside root again: ".." and absolute
		// links cannot leave it.
		tfd, err := mkdirAllDepth(root, target, mode, links+1)
		if err != nil {
			return -1, err
		}
		unix.Close(tfd)
	} else if err != nil {
		return -1, err
	}
	return openInRoot(root, p, unix.O_DIRECTORY)
}

// procFd names an fd for syscalls that take a path (mount(2)): the magic
// link resolves to exactly the object the fd holds.
func procFd(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }
