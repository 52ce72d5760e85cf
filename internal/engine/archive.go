package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/archive"
	"github.com/silo-containers/silo/internal/storage/sandbox"
)

// docker cp: files go in and out of a container as tar streams (GET, PUT
// and HEAD /containers/{id}/archive). Paths are resolved inside the
// container's root (openat2 RESOLVE_IN_ROOT, tarpath.go), and a tar that
// comes in is unpacked by the layer unpacker (internal/storage/archive),
// so a hostile path or symlink in the container or in the tar stays in
// the container.
//
//	container    root used
//	running      /proc/PID/root: its mount namespace, volumes and tmpfs included
//	not running  the sandbox, mounted for the copy, or the source of the
//	             volume or bind mount the path is under

// cpRoot is where a path of a container is resolved.
type cpRoot struct {
	dir     string // the root directory on the host
	rel     string // the path inside it
	release func()
}

// cpRootOf finds the root for p in container e. Preconditions: e.op held
// (a stopped container's sandbox stays mounted until release).
func (s *Service) cpRootOf(ctx context.Context, e *entry, p string) (*cpRoot, error) {
	c := s.snapshot(e)
	p = path.Clean("/" + p)
	if c.State.Running() && c.State.Pid > 0 {
		return &cpRoot{dir: fmt.Sprintf("/proc/%d/root", c.State.Pid), rel: p, release: func() {}}, nil
	}
	// A stopped container: the volume or bind mount the path is under,
	// else the sandbox.
	var best *container.MountPoint
	for _, m := range s.mountPointsOf(c.ID) {
		if m.Type != mount.TypeBind && m.Type != mount.TypeVolume {
			continue
		}
		if p == m.Destination || strings.HasPrefix(p, strings.TrimSuffix(m.Destination, "/")+"/") {
			if best == nil || len(m.Destination) > len(best.Destination) {
				mm := m
				best = &mm
			}
		}
	}
	if best != nil {
		return &cpRoot{dir: best.Source, rel: "/" + strings.TrimPrefix(strings.TrimPrefix(p, best.Destination), "/"), release: func() {}}, nil
	}
	sb, rootfs, _, err := sandbox.OpenMounted(ctx, s.sandboxDir(c.ID))
	if err != nil {
		return nil, err
	}
	release := func() {
		// Still stopped (e.op is held): the mount was for the copy.
		if err := sb.Unmount(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("unmount sandbox after copy", "container", c.ID, "err", err)
		}
	}
	return &cpRoot{dir: rootfs, rel: p, release: release}, nil
}

// statInRoot stats p inside root without following a final symlink.
func statInRoot(root, p string) (container.PathStat, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return container.PathStat{}, err
	}
	defer unix.Close(rfd)
	fd, err := resolveInRoot(rfd, p, false)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return container.PathStat{}, fmt.Errorf("could not find the file %s in container: %w", p, errdefs.ErrNotFound)
		}
		return container.PathStat{}, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstatat(fd, "", &st, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return container.PathStat{}, err
	}
	ps := container.PathStat{Name: path.Base(p), Size: st.Size, Mode: fileModeOf(st.Mode), Mtime: time.Unix(st.Mtim.Unix()).UTC()}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		buf := make([]byte, unix.PathMax)
		if n, err := unix.Readlinkat(fd, "", buf); err == nil {
			ps.LinkTarget = string(buf[:n])
		}
	}
	return ps, nil
}

// fileModeOf turns a stat mode into an os.FileMode.
func fileModeOf(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		fm |= os.ModeDir
	case unix.S_IFLNK:
		fm |= os.ModeSymlink
	case unix.S_IFCHR:
		fm |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		fm |= os.ModeDevice
	case unix.S_IFIFO:
		fm |= os.ModeNamedPipe
	case unix.S_IFSOCK:
		fm |= os.ModeSocket
	}
	if m&unix.S_ISUID != 0 {
		fm |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		fm |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

// StatPath is HEAD /containers/{id}/archive.
func (s *Service) StatPath(ctx context.Context, ref, p string) (container.PathStat, error) {
	e, err := s.lookup(ref)
	if err != nil {
		return container.PathStat{}, err
	}
	e.op.Lock()
	defer e.op.Unlock()
	r, err := s.cpRootOf(ctx, e, p)
	if err != nil {
		return container.PathStat{}, err
	}
	defer r.release()
	return statInRoot(r.dir, r.rel)
}

// ArchivePath is GET /containers/{id}/archive: the stat of p and a tar of
// it, its entries named after p's base name ("." for a path that ends in
// "/.": the directory's content). The stream is written to w while the
// container's lifecycle waits.
func (s *Service) ArchivePath(ctx context.Context, ref, p string, head func(container.PathStat) io.Writer) error {
	e, err := s.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	r, err := s.cpRootOf(ctx, e, p)
	if err != nil {
		return err
	}
	defer r.release()
	st, err := statInRoot(r.dir, r.rel)
	if err != nil {
		return err
	}
	base := st.Name
	if strings.HasSuffix(p, "/.") || p == "." {
		base = "."
	}
	w := head(st)
	if err := writeTarInRoot(ctx, w, r.dir, r.rel, base, false); err != nil {
		return fmt.Errorf("archive %s: %w", p, err)
	}
	s.emitEntry(e, "archive-path", map[string]string{"path": p})
	return nil
}

// ExtractOptions tune ExtractToDir.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory by a file or
	// the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID keeps the tar's owners; otherwise files belong to root,
	// as with docker cp.
	CopyUIDGID bool
}

// ExtractToDir is PUT /containers/{id}/archive: the tar r is unpacked
// into the directory p of the container.
func (s *Service) ExtractToDir(ctx context.Context, ref, p string, r io.Reader, opts ExtractOptions) error {
	e, err := s.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	c := s.snapshot(e)
	if c.HostConfig != nil && c.HostConfig.ReadonlyRootfs && !c.State.Running() {
		return fmt.Errorf("copy into container %s: the root file system is read-only: %w", c.ID[:12], errdefs.ErrInvalidArgument)
	}
	root, err := s.cpRootOf(ctx, e, p)
	if err != nil {
		return err
	}
	defer root.release()
	rfd, err := unix.Open(root.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("copy into %s: %w", p, err)
	}
	defer unix.Close(rfd)
	fd, err := resolveInRoot(rfd, root.rel, true)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("could not find the file %s in container: %w", p, errdefs.ErrNotFound)
		}
		return fmt.Errorf("copy into %s: %w", p, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("extraction point is not a directory: %s: %w", p, errdefs.ErrInvalidArgument)
	}
	// The unpacker opens its target by path: the fd's magic link names
	// the very directory resolved above, with no second walk.
	target := fmt.Sprintf("/proc/self/fd/%d", fd)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(rewriteOwners(r, pw, fd, opts)) }()
	_, err = archive.Unpack(ctx, pr, target, archive.Options{})
	pr.CloseWithError(errors.New("extraction ended"))
	if err != nil {
		return fmt.Errorf("copy into %s: %w: %w", p, err, errdefs.ErrInvalidArgument)
	}
	s.emitEntry(e, "extract-to-dir", map[string]string{"path": p})
	return nil
}

// rewriteOwners copies a tar stream, making root the owner of every
// entry unless CopyUIDGID; with NoOverwriteDirNonDir it refuses an entry
// that would replace a directory by a non-directory or the reverse
// (looked up in dir, inside it).
func rewriteOwners(r io.Reader, w io.Writer, dir int, opts ExtractOptions) error {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if !opts.CopyUIDGID {
			h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		}
		if opts.NoOverwriteDirNonDir {
			if err := checkDirNonDir(dir, h); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// checkDirNonDir refuses h when it would swap a directory for a
// non-directory (or the reverse) under dir.
func checkDirNonDir(dir int, h *tar.Header) error {
	name, err := archive.CleanName(h.Name)
	if err != nil || name == "" {
		return nil // the unpacker refuses bad names itself
	}
	fd, err := resolveInRoot(dir, name, false)
	if err != nil {
		return nil // nothing there yet
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstatat(fd, "", &st, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case isDir && h.Typeflag != tar.TypeDir:
		return fmt.Errorf("cannot overwrite directory %q with non-directory %q: %w", name, h.Name, errdefs.ErrInvalidArgument)
	case !isDir && h.Typeflag == tar.TypeDir:
		return fmt.Errorf("cannot overwrite non-directory %q with directory %q: %w", name, h.Name, errdefs.ErrInvalidArgument)
	}
	return nil
}
