package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Overlay xattrs the diff reads. overlayfs writes trusted.* as root and
// user.* in user namespaces ("userxattr" mounts); both mark the same thing.
const (
	userOpaqueXattr = "user.overlay.opaque"
	userOverlay     = "user.overlay."
)

// Diff writes the overlay upper directory dir as an OCI layer tar to w:
// files, directories, symlinks, hardlinks (by inode), devices and fifos
// with their owners, modes, times and xattrs; a 0/0 character device (an
// overlay whiteout) becomes an empty ".wh.NAME" file and a directory marked
// opaque (trusted.overlay.opaque or user.overlay.opaque = y) is followed by
// its ".wh..wh..opq" entry. Entries come in lexical order, so the same tree
// gives the same stream. A redirect or metacopy xattr (set by overlay
// options silo does not use) is refused: the upper directory alone would
// not describe the change. Sockets are skipped, as docker does.
//
// File contents are opened beneath dir with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), so a tree that changes under the walk (the commit
// of a running container) cannot make it read a file outside dir.
func Diff(ctx context.Context, dir string, w io.Writer) error {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("diff %s: %w", dir, err)
	}
	defer unix.Close(root)
	d := &differ{ctx: ctx, root: root, dir: dir, tw: tar.NewWriter(w), links: map[[2]uint64]string{}}
	if err := d.walk(""); err != nil {
		return fmt.Errorf("diff %s: %w", dir, err)
	}
	if err := d.tw.Close(); err != nil {
		return fmt.Errorf("diff %s: %w", dir, err)
	}
	return nil
}

type differ struct {
	ctx   context.Context
	root  int
	dir   string
	tw    *tar.Writer
	links map[[2]uint64]string // (dev, ino) → first name, for hardlinks
	buf   []byte
}

// walk writes the entries under rel ("" for the root), sorted by name.
func (d *differ) walk(rel string) error {
	if err := d.ctx.Err(); err != nil {
		return err
	}
	ents, err := os.ReadDir(filepath.Join(d.dir, rel))
	if err != nil {
		return err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		p := path.Join(rel, n)
		isDir, err := d.entry(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if isDir {
			if err := d.walk(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// entry writes the entry of p and reports whether it is a directory to
// descend into.
func (d *differ) entry(p string) (bool, error) {
	full := filepath.Join(d.dir, p)
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil // gone meanwhile (a running container)
		}
		return false, err
	}
	dirName, base := path.Split(p)
	if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
		hdr := &tar.Header{Name: dirName + WhiteoutPrefix + base, Typeflag: tar.TypeReg, Mode: 0o600,
			ModTime: time.Unix(st.Mtim.Unix()), Format: tar.FormatPAX}
		return false, d.tw.WriteHeader(hdr)
	}
	hdr := &tar.Header{
		Name: p, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()).UTC(), Format: tar.FormatPAX,
	}
	opaque := false
	xattrs, err := readXattrs(full)
	if err != nil {
		return false, err
	}
	for k, v := range xattrs {
		switch {
		case k == opaqueXattr || k == userOpaqueXattr:
			opaque = v == "y"
		case strings.HasPrefix(k, overlayXattrs) || strings.HasPrefix(k, userOverlay):
			if strings.HasSuffix(k, ".redirect") || strings.HasSuffix(k, ".metacopy") {
				return false, fmt.Errorf("overlay xattr %s: the upper directory does not hold the whole change: %w", k, errdefs.ErrNotImplemented)
			}
		default:
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, p+"/"
		if err := d.tw.WriteHeader(hdr); err != nil {
			return false, err
		}
		if opaque {
			wh := &tar.Header{Name: p + "/" + WhiteoutOpaque, Typeflag: tar.TypeReg, Mode: 0o600,
				ModTime: hdr.ModTime, Format: tar.FormatPAX}
			if err := d.tw.WriteHeader(wh); err != nil {
				return false, err
			}
		}
		return true, nil
	case unix.S_IFLNK:
		target, err := os.Readlink(full)
		if err != nil {
			return false, err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		return false, d.tw.WriteHeader(hdr)
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		return false, d.tw.WriteHeader(hdr)
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
		return false, d.tw.WriteHeader(hdr)
	case unix.S_IFSOCK:
		return false, nil
	case unix.S_IFREG:
	default:
		return false, fmt.Errorf("unknown file type %o: %w", st.Mode&unix.S_IFMT, errdefs.ErrInvalidArgument)
	}
	if st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := d.links[key]; ok {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return false, d.tw.WriteHeader(hdr)
		}
		d.links[key] = p
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	return false, d.regular(p, hdr)
}

// regular writes a file's header and content; the content is read
// through a descriptor opened beneath the root without following symlinks.
func (d *differ) regular(p string, hdr *tar.Header) error {
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	var fd int
	var err error
	for {
		fd, err = unix.Openat2(d.root, p, &how)
		if err != unix.EAGAIN && err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("changed type during the diff: %w", errdefs.ErrConflict)
	}
	hdr.Size = st.Size
	if err := d.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if d.buf == nil {
		d.buf = make([]byte, 1<<20)
	}
	n, err := io.CopyBuffer(d.tw, io.LimitReader(f, hdr.Size), d.buf)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if n != hdr.Size {
		return fmt.Errorf("file shrank during the diff: %w", errdefs.ErrConflict)
	}
	return nil
}

// readXattrs returns the extended attributes of path (not following a
// symlink). File systems without xattr support give none.
func readXattrs(p string) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		if err == nil || errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, fmt.Errorf("list xattrs: %w", err)
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, fmt.Errorf("list xattrs: %w", err)
	}
	out := map[string]string{}
	for _, name := range strings.Split(string(buf[:sz]), "\x00") {
		if name == "" {
			continue
		}
		vsz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return nil, fmt.Errorf("get xattr %s: %w", name, err)
		}
		v := make([]byte, vsz)
		if vsz > 0 {
			if vsz, err = unix.Lgetxattr(p, name, v); err != nil {
				return nil, fmt.Errorf("get xattr %s: %w", name, err)
			}
		}
		out[name] = string(v[:vsz])
	}
	return out, nil
}
