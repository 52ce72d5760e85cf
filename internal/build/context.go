package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/archive"
	"github.com/silo-containers/silo/internal/storage/archive/compression"
)

// Limits of a build context.
const (
	maxContextSize    = 16 << 30
	maxContextEntries = 1 << 20
	maxSymlinkHops    = 40
)

// ExtractContext unpacks the context tar r (plain, gzip or zstd) into dir
// with the hardened unpacker: ".." names and device nodes are refused,
// symlinks cannot redirect later entries out of dir. Files keep the
// caller's ownership (COPY gives them root's, or --chown's, anyway).
func ExtractContext(ctx context.Context, r io.Reader, dir string) error {
	dr, _, err := compression.Decompress(r)
	if err != nil {
		return fmt.Errorf("build context: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	defer dr.Close()
	_, err = archive.Unpack(ctx, dr, dir, archive.Options{MaxSize: maxContextSize, MaxEntries: maxContextEntries, NoChown: true})
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("build context: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// matcher says whether a context path is excluded by .dockerignore.
type matcher struct {
	pm *patternmatcher.PatternMatcher
	// keep are paths never excluded (the Dockerfile, .dockerignore).
	keep map[string]bool
}

// Excluded reports whether rel (slash-separated, relative to the context)
// is excluded.
func (m matcher) Excluded(rel string) bool {
	if m.pm == nil || m.keep[rel] {
		return false
	}
	ok, err := m.pm.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// loadDockerignore reads ctxDir/.dockerignore (or <Dockerfile>.dockerignore
// next to the Dockerfile, which wins, as docker's CLI does).
func loadDockerignore(ctxDir, dockerfile string) (matcher, error) {
	m := matcher{keep: map[string]bool{path.Clean(dockerfile): true, ".dockerignore": true}}
	var raw []byte
	for _, name := range []string{path.Clean(dockerfile) + ".dockerignore", ".dockerignore"} {
		p, err := resolveInContext(ctxDir, name)
		if err != nil {
			continue
		}
		if raw, err = readLimited(p, 1<<20); err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return m, fmt.Errorf("read %s: %w", name, err)
		}
	}
	if raw == nil {
		return m, nil
	}
	patterns, err := ignorefile.ReadAll(strings.NewReader(string(raw)))
	if err != nil {
		return m, fmt.Errorf(".dockerignore: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if m.pm, err = patternmatcher.New(patterns); err != nil {
		return m, fmt.Errorf(".dockerignore: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return m, nil
}

// cleanContextPath checks a source path of COPY/ADD (or -f) and returns it
// relative to the context root. A leading "/" means the context root, as
// in docker; a path that climbs out ("../x", "/../x", "a/../../x") is
// refused.
func cleanContextPath(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("path %q contains NUL: %w", p, errdefs.ErrInvalidArgument)
	}
	rel := strings.TrimLeft(filepath.ToSlash(p), "/")
	c := path.Clean(rel)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("forbidden path outside the build context: %s: %w", p, errdefs.ErrInvalidArgument)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// resolveInContext returns the host path of context path p, following
// symlinks as the kernel would, and refuses any path whose resolution
// leaves the context (an absolute symlink target, or one that climbs
// above the root).
func resolveInContext(root, p string) (string, error) {
	rel, err := cleanContextPath(p)
	if err != nil {
		return "", err
	}
	resolved, err := resolve(root, rel, true)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return filepath.Join(root, resolved), nil
}

// resolve resolves the relative path rel under root, following symlinks,
// and returns the resolved path relative to root. strict refuses
// symlinks that lead out of root; otherwise they are clamped to it (the
// semantics of a container root file system). A missing final component
// is fine (the caller creates or reports it).
func resolve(root, rel string, strict bool) (string, error) {
	var done []string
	todo := strings.Split(rel, "/")
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				if strict {
					return "", fmt.Errorf("forbidden path outside the build context: %w", errdefs.ErrInvalidArgument)
				}
				continue
			}
			done = done[:len(done)-1]
			continue
		}
		cur := filepath.Join(root, filepath.Join(done...), c)
		fi, err := os.Lstat(cur)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				done = append(done, c)
				done = append(done, todo...)
				return path.Join(done...), nil
			}
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return "", fmt.Errorf("too many levels of symbolic links: %w", errdefs.ErrInvalidArgument)
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			if strict {
				return "", fmt.Errorf("symlink %s points out of the build context (to %s): %w", path.Join(append(done, c)...), target, errdefs.ErrInvalidArgument)
			}
			done = nil
		}
		if strict {
			// A relative target that climbs above the root leaves it.
			depth := len(done)
			for _, tc := range strings.Split(target, "/") {
				switch tc {
				case "..":
					depth--
				case "", ".":
				default:
					depth++
				}
				if depth < 0 {
					return "", fmt.Errorf("symlink %s points out of the build context (to %s): %w", path.Join(append(done, c)...), target, errdefs.ErrInvalidArgument)
				}
			}
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return path.Join(done...), nil
}

// mkdirInRoot creates directory p (absolute, in the image) and its
// parents under the mounted root file system, 0755 root-owned as docker
// does; every component is resolved by the kernel inside root.
func mkdirInRoot(root, p string) error {
	rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rfd)
	var cur string
	for _, c := range strings.Split(strings.Trim(path.Clean(p), "/"), "/") {
		if c == "" {
			continue
		}
		parent, err := openInRoot(rfd, cur, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return fmt.Errorf("open %s: %w", "/"+cur, err)
		}
		err = unix.Mkdirat(parent, c, 0o755)
		unix.Close(parent)
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("mkdir %s: %w", "/"+path.Join(cur, c), err)
		}
		cur = path.Join(cur, c)
	}
	// The last component must be a directory (maybe through a symlink).
	fd, err := openInRoot(rfd, cur, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	unix.Close(fd)
	return nil
}

// openInRoot opens p (relative; "" is the root) under the root fd as if
// root were "/".
func openInRoot(rfd int, p string, flags int) (int, error) {
	if p == "" {
		p = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	for {
		fd, err := unix.Openat2(rfd, p, &how)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// statInRoot stats p (absolute, in the image) inside the root file system,
// following symlinks within it. ok is false when it does not exist.
func statInRoot(root, p string) (st unix.Stat_t, ok bool, err error) {
	rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return st, false, err
	}
	defer unix.Close(rfd)
	fd, err := openInRoot(rfd, strings.Trim(path.Clean(p), "/"), unix.O_PATH)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return st, false, err
	}
	return st, true, nil
}

// dirInLayers reports whether directory p (absolute) exists in the overlay
// of layers (top-most first), reading the layer directories as overlayfs
// merges them: the top-most entry decides, a 0/0 character device is a
// whiteout, an opaque directory hides the layers below. known is false
// when the look-up cannot decide alone (a symlink on the way, an
// unreadable layer): the caller then asks the mounted file system.
func dirInLayers(layers []string, p string) (exists, known bool) {
	active := layers
	var prefix string
	for _, c := range strings.Split(strings.Trim(path.Clean(p), "/"), "/") {
		if c == "" {
			continue
		}
		prefix = path.Join(prefix, c)
		var next []string
		found := false
	scan:
		for _, l := range active {
			var st unix.Stat_t
			err := unix.Lstat(filepath.Join(l, prefix), &st)
			if err == unix.ENOENT || err == unix.ENOTDIR {
				continue
			}
			if err != nil {
				return false, false
			}
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				found = true
				next = append(next, l)
				if isOpaque(filepath.Join(l, prefix)) {
					break scan
				}
			case unix.S_IFCHR:
				if st.Rdev != 0 {
					return false, false
				}
				if !found {
					return false, true // deleted above the layers that have it
				}
				break scan
			default:
				if !found {
					return false, false // a file or a symlink: let the kernel say
				}
				break scan // an upper directory hides what is below
			}
		}
		if !found {
			return false, true
		}
		active = next
	}
	return true, true
}

func isOpaque(dir string) bool {
	for _, attr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		var v [1]byte
		if n, err := unix.Lgetxattr(dir, attr, v[:]); err == nil && n == 1 && v[0] == 'y' {
			return true
		}
	}
	return false
}
