package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Reading a container's files from the host (volume copy-up, docker cp)
// treats the container's root like a chroot: the start path is resolved
// by the kernel with openat2(RESOLVE_IN_ROOT), so absolute symlinks and
// ".." stay inside the root, and the tree below it is walked through
// directory fds with O_NOFOLLOW, so a symlink is archived as a symlink and
// never followed out of the container.

// resolveInRoot opens p (absolute or relative to the container's "/")
// inside root. followLast follows a symlink in the final component (still
// inside root); otherwise a final symlink is opened itself (O_PATH).
func resolveInRoot(root int, p string, followLast bool) (int, error) {
	rel := strings.TrimLeft(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	if !followLast {
		how.Flags |= unix.O_NOFOLLOW
	}
	for {
		fd, err := unix.Openat2(root, rel, &how)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: p, Err: err}
		}
		return fd, nil
	}
}

// tarWalker writes a tree to a tar stream.
type tarWalker struct {
	ctx   context.Context
	tw    *tar.Writer
	links map[[2]uint64]string // (dev, ino) → first name, for hard links
}

// writeTarInRoot archives p (resolved inside the directory root) under
// the name base ("." for the content of a directory without its name).
func writeTarInRoot(ctx context.Context, w io.Writer, root, p, base string, followLast bool) error {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("archive %s: open root: %w", p, err)
	}
	defer unix.Close(rfd)
	fd, err := resolveInRoot(rfd, p, followLast)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("archive %s: no such file or directory: %w", p, errdefs.ErrNotFound)
		}
		return fmt.Errorf("archive %s: %w", p, err)
	}
	defer unix.Close(fd)
	tw := tar.NewWriter(w)
	wk := &tarWalker{ctx: ctx, tw: tw, links: map[[2]uint64]string{}}
	// The start is an O_PATH fd: its entry is read through "" + AT_EMPTY_PATH.
	if err := wk.entry(fd, "", base); err != nil {
		return fmt.Errorf("archive %s: %w", p, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive %s: %w", p, err)
	}
	return nil
}

// entry archives name in directory dir (name "" is dir itself) as tar
// name tname, recursively for directories.
func (wk *tarWalker) entry(dir int, name, tname string) error {
	if err := wk.ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	if err := unix.Fstatat(dir, name, &st, flags); err != nil {
		return fmt.Errorf("stat %s: %w", tname, err)
	}
	hdr := &tar.Header{
		Name:    tname,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()).UTC(),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		if !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
		if err := wk.tw.WriteHeader(hdr); err != nil {
			return err
		}
		return wk.dir(dir, name, tname)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", tname, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(buf[:n])
		return wk.tw.WriteHeader(hdr)
	case unix.S_IFREG:
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if first, ok := wk.links[key]; ok && st.Nlink > 1 {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return wk.tw.WriteHeader(hdr)
		}
		if st.Nlink > 1 {
			wk.links[key] = tname
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		return wk.file(dir, name, hdr)
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
		return wk.tw.WriteHeader(hdr)
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
		return wk.tw.WriteHeader(hdr)
	}
	return nil // sockets: not archived, as tar does
}

// file copies a regular file's content; a file that changed size while
// read is padded or cut to the size in its header (the stream stays valid).
func (wk *tarWalker) file(dir int, name string, hdr *tar.Header) error {
	var fd int
	var err error
	if name == "" {
		// An O_PATH fd is reopened through its /proc magic link, which
		// names the very file (no path walk).
		fd, err = unix.Open(fmt.Sprintf("/proc/self/fd/%d", dir), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	} else {
		fd, err = unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", hdr.Name, err)
	}
	f := os.NewFile(uintptr(fd), hdr.Name)
	defer f.Close()
	if err := wk.tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(wk.tw, io.LimitReader(f, hdr.Size))
	if err != nil {
		return fmt.Errorf("read %s: %w", hdr.Name, err)
	}
	if n < hdr.Size {
		if _, err := io.CopyN(wk.tw, zeroReader{}, hdr.Size-n); err != nil {
			return err
		}
	}
	return nil
}

// dir archives the entries of directory name in dir.
func (wk *tarWalker) dir(dir int, name, tname string) error {
	var fd int
	var err error
	if name == "" {
		fd, err = unix.Open(fmt.Sprintf("/proc/self/fd/%d", dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	} else {
		fd, err = unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return fmt.Errorf("open directory %s: %w", tname, err)
	}
	f := os.NewFile(uintptr(fd), tname)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("list %s: %w", tname, err)
	}
	slices.Sort(names)
	for _, n := range names {
		child := strings.TrimSuffix(tname, "/") + "/" + n
		if err := wk.entry(fd, n, child); err != nil {
			return err
		}
	}
	return nil
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}
