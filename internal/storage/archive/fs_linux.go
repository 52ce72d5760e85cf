package archive

import (
	"errors"
	"io"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The helpers here are thin wrappers over *at syscalls. None of them follows
// a symlink in its final component; paths given to them are single names
// relative to a directory fd, except openInRoot, which lets the kernel
// resolve a relative path as if the unpack directory were "/".

const resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openInRoot opens directory p (relative, cleaned) under root.
func openInRoot(root int, p string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: resolveInRoot,
	}
	for {
		fd, err := unix.Openat2(root, p, &how)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue // a concurrent rename: the kernel asks for a retry
		}
		return fd, err
	}
}

// removeAt removes name in dir, recursively if it is a directory. It never
// follows symlinks: a symlink is unlinked, not its target.
func removeAt(dir int, name string) error {
	err := unix.Unlinkat(dir, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	for {
		names, rerr := f.Readdirnames(1024)
		for _, n := range names {
			if err := removeAt(fd, n); err != nil {
				f.Close()
				return err
			}
		}
		if rerr == io.EOF || len(names) == 0 {
			break
		}
		if rerr != nil {
			f.Close()
			return rerr
		}
	}
	f.Close()
	return unix.Unlinkat(dir, name, unix.AT_REMOVEDIR)
}

// futimens sets the times of the file open as fd (utimensat with a NULL path).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// chmodNoFollow sets the mode of name in dir without following a symlink
// (fchmodat2 with AT_SYMLINK_NOFOLLOW, Linux 6.6), falling back to an O_PATH
// handle and its /proc magic link, which also names exactly that inode.
func chmodNoFollow(dir int, name string, mode uint32) error {
	err := unix.Fchmodat(dir, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil || !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
}

// setxattrNoFollow sets an xattr on name in dir without following a symlink.
func setxattrNoFollow(dir int, name, attr string, value []byte) error {
	fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// Following the magic link lands on the handle's inode (the symlink
	// itself) and stops there.
	return unix.Setxattr("/proc/self/fd/"+strconv.Itoa(fd), attr, value, 0)
}
