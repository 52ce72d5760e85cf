package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Defaults for Options.
const (
	DefaultMaxSize    int64 = 64 << 30 // uncompressed bytes per layer
	DefaultMaxEntries       = 4 << 20  // tar entries per layer
	maxPathLen              = 4096     // PATH_MAX
)

// Whiteout names (OCI image spec, "Representing Changes").
const (
	WhiteoutPrefix = ".wh."
	WhiteoutOpaque = ".wh..wh..opq"
	whiteoutMeta   = ".wh..wh." // aufs bookkeeping (.wh..wh.plnk etc.): skipped
	opaqueXattr    = "trusted.overlay.opaque"
	overlayXattrs  = "trusted.overlay."
)

// Options tune Unpack. The zero value is usable.
type Options struct {
	// MaxSize caps the uncompressed stream and the sum of file sizes
	// (DefaultMaxSize when 0). The compression ratio does not matter.
	MaxSize int64
	// MaxEntries caps the number of tar entries (DefaultMaxEntries when 0).
	MaxEntries int
	// AllowDevices permits character and block device entries. Whiteouts
	// (0/0 character devices made by Unpack itself) are always allowed.
	AllowDevices bool
	// NoChown keeps files owned by the caller instead of the tar's uid/gid;
	// set it when not running as root.
	NoChown bool
}

// Result describes an unpacked stream.
type Result struct {
	DiffID  digest.Digest // sha256 of the whole uncompressed stream
	Size    int64         // bytes in the uncompressed stream
	Files   int64         // bytes of file content written
	Entries int           // tar entries read
}

// Unpack extracts the uncompressed tar stream r into dir, which must exist
// (normally empty), and returns the digest of the stream. r is read to EOF so
// the digest covers trailing padding too.
func Unpack(ctx context.Context, r io.Reader, dir string, opts Options) (Result, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Result{}, fmt.Errorf("unpack into %s: %w", dir, err)
	}
	defer unix.Close(root)

	// Reading, decompressing and hashing run on their own goroutine
	// (pipeline.go) so they overlap with the syscalls of extraction.
	src := newPipeline(r, opts.MaxSize)
	defer src.Close()

	x := &extractor{root: root, opts: opts, cached: -1, chown: !opts.NoChown}
	defer x.dropCache()
	tr := tar.NewReader(src)
	var res Result
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("read tar after %d entries: %w", res.Entries, err)
		}
		res.Entries++
		if res.Entries > opts.MaxEntries {
			return res, fmt.Errorf("entry %q: more than %d entries: %w", hdr.Name, opts.MaxEntries, errdefs.ErrInvalidArgument)
		}
		if hdr.Size < 0 || res.Files+hdr.Size > opts.MaxSize {
			return res, fmt.Errorf("entry %q: layer larger than %d bytes: %w", hdr.Name, opts.MaxSize, errdefs.ErrInvalidArgument)
		}
		n, err := x.entry(hdr, tr)
		res.Files += n
		if err != nil {
			return res, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	if err := x.finishDirs(); err != nil {
		return res, err
	}
	d, size, err := src.Finish()
	if err != nil {
		return res, fmt.Errorf("read layer stream: %w", err)
	}
	res.DiffID, res.Size = d, size
	return res, nil
}

// CleanName turns a tar entry name into a relative, cleaned path. Leading
// slashes are dropped (the name is taken relative to the layer root, as
// docker does); a ".." component is refused. "" means the root itself.
func CleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("name contains NUL: %w", errdefs.ErrInvalidArgument)
	}
	if len(name) > maxPathLen {
		return "", fmt.Errorf("name longer than %d bytes: %w", maxPathLen, errdefs.ErrInvalidArgument)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("name has a \"..\" component: %w", errdefs.ErrInvalidArgument)
		}
	}
	p := path.Clean("/" + name)[1:]
	return p, nil
}

type extractor struct {
	root  int
	opts  Options
	chown bool

	// A one-entry cache of the last parent directory: tar streams list a
	// directory's files together. It is dropped whenever anything is
	// removed, so a cached fd never names a directory that a later entry
	// replaced.
	cachedPath string
	cached     int

	dirs []dirTimes
	buf  []byte
}

type dirTimes struct {
	path string
	ts   [2]unix.Timespec
}

func (x *extractor) dropCache() {
	if x.cached >= 0 {
		unix.Close(x.cached)
	}
	x.cached, x.cachedPath = -1, ""
}

// parent returns an fd for directory p (relative to the root), making
// missing directories 0755 like docker does. The fd belongs to the cache.
func (x *extractor) parent(p string) (int, error) {
	if p == "" {
		return x.root, nil
	}
	if x.cached >= 0 && x.cachedPath == p {
		return x.cached, nil
	}
	fd, err := openInRoot(x.root, p)
	if err == unix.ENOENT {
		fd, err = x.mkdirAll(p)
	}
	if err != nil {
		return -1, fmt.Errorf("open parent %q: %w", p, err)
	}
	x.dropCache()
	x.cached, x.cachedPath = fd, p
	return fd, nil
}

// openDir opens directory p ("" or "a/b/" or "a/b") under the root; the
// caller closes the fd.
func (x *extractor) openDir(p string) (int, error) {
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return unix.Dup(x.root)
	}
	return openInRoot(x.root, p)
}

func (x *extractor) mkdirAll(p string) (int, error) {
	if p == "" {
		return unix.Dup(x.root)
	}
	fd, err := openInRoot(x.root, p)
	if err != unix.ENOENT {
		return fd, err
	}
	dir, base := path.Split(p)
	pfd, err := x.mkdirAll(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return -1, err
	}
	err = unix.Mkdirat(pfd, base, 0o755)
	unix.Close(pfd)
	if err != nil && err != unix.EEXIST {
		return -1, err
	}
	return openInRoot(x.root, p)
}

func (x *extractor) entry(hdr *tar.Header, tr *tar.Reader) (int64, error) {
	name, err := CleanName(hdr.Name)
	if err != nil {
		return 0, err
	}
	if name == "" {
		return 0, nil // "./": the layer root keeps the store's attributes
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")

	if strings.HasPrefix(base, WhiteoutPrefix) {
		return 0, x.whiteout(dir, base)
	}
	pfd, err := x.parent(dir)
	if err != nil {
		return 0, err
	}

	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		return x.regular(pfd, base, hdr, tr)
	case tar.TypeDir:
		return 0, x.directory(pfd, name, base, hdr)
	case tar.TypeSymlink:
		if len(hdr.Linkname) > maxPathLen || strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return 0, fmt.Errorf("symlink target too long or has NUL: %w", errdefs.ErrInvalidArgument)
		}
		err := x.create(pfd, base, false, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) })
		if err != nil {
			return 0, fmt.Errorf("symlink: %w", err)
		}
		return 0, x.metadata(pfd, base, -1, hdr, true)
	case tar.TypeLink:
		return 0, x.hardlink(pfd, base, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return 0, x.special(pfd, base, hdr)
	case tar.TypeXGlobalHeader:
		return 0, nil
	}
	return 0, fmt.Errorf("unsupported tar type %q: %w", hdr.Typeflag, errdefs.ErrInvalidArgument)
}

// create runs mk, which makes base in pfd exclusively; if base exists it is
// removed (later entries win, as in docker) and mk runs once more. keepDir
// keeps an existing directory (a directory entry over a directory).
func (x *extractor) create(pfd int, base string, keepDir bool, mk func() error) error {
	err := mk()
	if err != unix.EEXIST {
		return err
	}
	if keepDir {
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil
		}
	}
	if err := removeAt(pfd, base); err != nil {
		return fmt.Errorf("replace existing: %w", err)
	}
	// The cached directory stays valid if it is pfd itself (only a child
	// went); otherwise it might have lived under what was removed.
	if pfd != x.cached {
		x.dropCache()
	}
	return mk()
}

func (x *extractor) regular(pfd int, base string, hdr *tar.Header, tr *tar.Reader) (int64, error) {
	var fd int
	err := x.create(pfd, base, false, func() (err error) {
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	var n int64
	if hdr.Size > 0 {
		if x.buf == nil {
			x.buf = make([]byte, 1<<20)
		}
		n, err = io.CopyBuffer(fileWriter{f}, io.LimitReader(tr, hdr.Size), x.buf)
		if err != nil {
			return n, fmt.Errorf("write: %w", err)
		}
	}
	if err := x.metadata(pfd, base, fd, hdr, false); err != nil {
		return n, err
	}
	return n, nil
}

// fileWriter hides *os.File's ReadFrom so io.CopyBuffer uses our buffer
// instead of probing copy_file_range / splice on a pipe-less reader.
type fileWriter struct{ f *os.File }

func (w fileWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (x *extractor) directory(pfd int, name, base string, hdr *tar.Header) error {
	err := x.create(pfd, base, true, func() error { return unix.Mkdirat(pfd, base, 0o700) })
	if err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer unix.Close(fd)
	if err := x.metadata(pfd, base, fd, hdr, false); err != nil {
		return err
	}
	// Children change a directory's mtime: set it once all are made.
	x.dirs = append(x.dirs, dirTimes{path: name, ts: times(hdr)})
	return nil
}

func (x *extractor) hardlink(pfd int, base string, hdr *tar.Header) error {
	target, err := CleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	if target == "" {
		return fmt.Errorf("hardlink to the layer root: %w", errdefs.ErrInvalidArgument)
	}
	tdir, tbase := path.Split(target)
	tfd, err := x.openDir(tdir)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	defer unix.Close(tfd)
	// flags 0: a symlink target is linked itself, never followed. A target
	// that is not (yet) in the layer fails with ENOENT.
	err = x.create(pfd, base, false, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) })
	if err != nil {
		return fmt.Errorf("hardlink to %q: %w", hdr.Linkname, err)
	}
	return nil
}

func (x *extractor) special(pfd int, base string, hdr *tar.Header) error {
	mode := uint32(hdr.Mode & 0o7777)
	var dev int
	switch hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		if !x.opts.AllowDevices {
			return fmt.Errorf("device node not allowed: %w", errdefs.ErrInvalidArgument)
		}
		dev = int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		if hdr.Typeflag == tar.TypeChar {
			mode |= unix.S_IFCHR
		} else {
			mode |= unix.S_IFBLK
		}
	default:
		mode |= unix.S_IFIFO
	}
	if err := x.create(pfd, base, false, func() error { return unix.Mknodat(pfd, base, mode, dev) }); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	return x.metadata(pfd, base, -1, hdr, false)
}

// whiteout turns ".wh.NAME" into the overlayfs form.
func (x *extractor) whiteout(dir, base string) error {
	pfd, err := x.parent(dir)
	if err != nil {
		return err
	}
	if base == WhiteoutOpaque {
		fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("set %s: %w", opaqueXattr, err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil
	}
	name := strings.TrimPrefix(base, WhiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("bad whiteout name: %w", errdefs.ErrInvalidArgument)
	}
	err = x.create(pfd, name, false, func() error { return unix.Mknodat(pfd, name, unix.S_IFCHR, 0) })
	if err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	return nil
}

// metadata applies owner, mode, xattrs and (except for directories) times.
// fd is an open handle on the object, or -1 (symlinks, devices: by name).
func (x *extractor) metadata(pfd int, base string, fd int, hdr *tar.Header, symlink bool) error {
	if x.chown {
		var err error
		if fd >= 0 {
			err = unix.Fchown(fd, hdr.Uid, hdr.Gid)
		} else {
			err = unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	if !symlink {
		// After chown, which clears setuid/setgid. The mode keeps the
		// special bits and is not masked by the umask.
		mode := uint32(hdr.Mode & 0o7777)
		var err error
		if fd >= 0 {
			err = unix.Fchmod(fd, mode)
		} else {
			err = chmodNoFollow(pfd, base, mode)
		}
		if err != nil {
			return fmt.Errorf("chmod %o: %w", mode, err)
		}
	}
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		// An overlay xattr in a layer (redirect, metacopy, opaque) would
		// steer the kernel's merge of other layers: never taken from a tar.
		if strings.HasPrefix(attr, overlayXattrs) {
			continue
		}
		var err error
		if fd >= 0 {
			err = unix.Fsetxattr(fd, attr, []byte(v), 0)
		} else {
			err = setxattrNoFollow(pfd, base, attr, []byte(v))
		}
		if err != nil {
			return fmt.Errorf("set xattr %q: %w", attr, err)
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil
	}
	ts := times(hdr)
	if fd >= 0 {
		return wrap("set times", futimens(fd, &ts))
	}
	return wrap("set times", unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW))
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

func times(hdr *tar.Header) [2]unix.Timespec {
	m := hdr.ModTime
	a := hdr.AccessTime
	if a.IsZero() {
		a = m
	}
	return [2]unix.Timespec{timespec(a), timespec(m)}
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Sec: 0}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// finishDirs sets directory times, deepest last-made first. Each directory
// is found again through RESOLVE_IN_ROOT: a later entry may have replaced it.
func (x *extractor) finishDirs() error {
	x.dropCache()
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		dir, base := path.Split(d.path)
		pfd, err := x.openDir(dir)
		if err != nil {
			continue // replaced or removed by a later entry
		}
		err = unix.UtimesNanoAt(pfd, base, d.ts[:], unix.AT_SYMLINK_NOFOLLOW)
		unix.Close(pfd)
		if err != nil && err != unix.ENOENT {
			return fmt.Errorf("entry %q: set times: %w", d.path, err)
		}
	}
	return nil
}
