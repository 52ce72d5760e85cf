package process

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openSealedExe returns a handle on the binary at path (this one:
// /proc/self/exe) that a container cannot write through (CVE-2019-5736).
//
// The container's init is this binary (or runsilo-helper on its way to
// it), so for a moment /proc/<pid>/exe of a process inside the container
// points at a host binary. If that link leads to a writable file, a
// malicious container can overwrite the runtime and take over the host the
// next time it runs. runc answers with a memfd copy of itself (a full copy
// per container start) or a private overlayfs; we clone a detached bind
// mount of the one file and make it read-only: two syscalls, no copy, and
// nothing appears in any mount table. Opening /proc/<pid>/exe for writing
// then fails with EROFS. When the kernel lacks the new mount API we fall
// back to a sealed memfd copy.
func openSealedExe(path string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
		if err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err == nil {
			return os.NewFile(uintptr(fd), path+" (read-only)"), nil
		}
		unix.Close(fd)
	}
	return memfdCopy(path)
}

// memfdCopy copies the binary at path into a sealed memfd.
func memfdCopy(path string) (*os.File, error) {
	self, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer self.Close()
	return sealedMemfd(filepath.Base(path), func(w io.Writer) error {
		if _, err := io.Copy(w, self); err != nil {
			return fmt.Errorf("copy %s to memfd: %w", path, err)
		}
		return nil
	})
}

// sealedMemfd makes an executable memfd named name, lets fill write it,
// and seals it against every change: nobody can write through
// /proc/<pid>/exe of a process running it.
func sealedMemfd(name string, fill func(io.Writer) error) (*os.File, error) {
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_EXEC
	// MFD_EXEC says "executable" to kernels (6.3+) that may make memfds
	// non-executable by default (vm.memfd_noexec); older ones refuse it,
	// and F_SEAL_EXEC.
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL {
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		seals &^= unix.F_SEAL_EXEC
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if err := fill(f); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal memfd %s: %w", name, err)
	}
	return f, nil
}
