package sandbox

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Options configure Create.
type Options struct {
	// SizeBytes is the size of the sandbox file system, the most a
	// container can write. Zero means DefaultSize; it is rounded up to a
	// multiple of 4 KiB and must be at least MinSize. Docker-style strings
	// ("20G", "512m") go through ParseSize first.
	SizeBytes int64
	// TemplateDir, when set, holds one formatted template image per size,
	// shared by all sandboxes created with it (for example a directory
	// next to the sandboxes): an image is then a sparse copy of the
	// template instead of a fresh mkfs.ext4 run, about half the create
	// time. The first Create of each size formats the template. It also
	// holds the spares (spare.go), which Create takes first.
	TemplateDir string
}

// Sandbox is the writable layer of one container: a size-limited ext4
// image (DIR/sandbox.img) holding the overlay upper and work directories,
// and the overlay of the read-only image layers under it (DIR/rootfs).
//
// A Sandbox keeps no state of its own besides its metadata: whether it is
// mounted is read from the mount table each time. Its methods are safe for
// concurrent use; two Sandbox values for the same directory (in one
// process or two) must not be used at the same time.
type Sandbox struct {
	mu     sync.Mutex
	dir    string
	layers []string
	size   int64
	// incomplete: Create crashed before writing layerchain.json.
	incomplete bool
	// detachPending: Open found the image's loop device unbinding at its
	// last close (errDetachPending); Mount waits for it to go.
	detachPending bool
	// created, when not nil, delivers the end of Create's last write (the
	// layer chain of a spare, written while the caller goes on);
	// waitCreated takes it into createErr.
	created   chan error
	createErr error
}

// waitCreated waits until Create's last write is on disk and returns its
// error. Preconditions: mu held.
func (s *Sandbox) waitCreated() error {
	if s.created != nil {
		s.createErr = <-s.created
		s.created = nil
	}
	if s.createErr != nil {
		return fmt.Errorf("write %s: %w", layerChainFile, s.createErr)
	}
	return nil
}

// Create makes a sandbox in dir, which must not exist (its parent is
// created if needed). lowerDirs are unpacked, read-only image layers,
// top-most first; they are used in place, never copied, and may be empty
// for a scratch container. Create writes layerchain.json and sandbox.json
// and formats the image, or takes a spare made ahead of time (spare.go)
// and writes its layerchain.json while the caller goes on (Mount returns,
// and fails, only once that is on disk); it mounts nothing and attaches no
// loop device, so a crash inside Create leaves only files behind.
//
// Errors wrap errdefs.ErrInvalidArgument (bad size or paths),
// errdefs.ErrNotFound (a missing layer) or errdefs.ErrAlreadyExists.
func Create(ctx context.Context, dir string, lowerDirs []string, opts Options) (_ *Sandbox, err error) {
	fail := func(err error) (*Sandbox, error) {
		return nil, fmt.Errorf("create sandbox %s: %w", dir, err)
	}
	if !filepath.IsAbs(dir) {
		return fail(fmt.Errorf("path is not absolute: %w", errdefs.ErrInvalidArgument))
	}
	size, err := checkSize(opts.SizeBytes)
	if err != nil {
		return fail(err)
	}

	layers := make([]string, 0, len(lowerDirs))
	for _, l := range lowerDirs {
		if !filepath.IsAbs(l) {
			return fail(fmt.Errorf("layer %q is not absolute: %w", l, errdefs.ErrInvalidArgument))
		}
		l = filepath.Clean(l)
		fi, err := os.Stat(l)
		if errors.Is(err, os.ErrNotExist) {
			return fail(fmt.Errorf("layer %s: %w", l, errdefs.ErrNotFound))
		}
		if err != nil {
			return fail(fmt.Errorf("layer %s: %w", l, err))
		}
		if !fi.IsDir() {
			return fail(fmt.Errorf("layer %s is not a directory: %w", l, errdefs.ErrInvalidArgument))
		}
		layers = append(layers, l)
	}

	// Mount points are compared with the mount table, which holds
	// resolved paths: resolve the parent once, here.
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o711); err != nil {
		return fail(err)
	}
	if parent, err = filepath.EvalSymlinks(parent); err != nil {
		return fail(err)
	}
	dir = filepath.Join(parent, filepath.Base(dir))
	for _, l := range layers {
		if l == dir || isUnder(l, dir) || isUnder(dir, l) {
			return fail(fmt.Errorf("layer %s overlaps the sandbox: %w", l, errdefs.ErrInvalidArgument))
		}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}

	if opts.TemplateDir != "" {
		switch err := takeSpare(opts.TemplateDir, size, dir); {
		case err == nil:
			// All but the layer chain is made and on disk already. The
			// chain (two fsyncs) is written while the caller mounts:
			// Mount returns once it is on disk.
			s := &Sandbox{dir: dir, layers: layers, size: size, created: make(chan error, 1)}
			go func() {
				err := writeFileSync(filepath.Join(dir, layerChainFile), layers)
				if err == nil {
					err = syncDir(dir)
				}
				s.created <- err
			}()
			return s, nil
		case errors.Is(err, errdefs.ErrAlreadyExists):
			return fail(err)
		}
		// No spare: make the sandbox here.
	}
	if err := prepare(ctx, dir, size, opts.TemplateDir, layers); err != nil {
		return fail(err)
	}
	return &Sandbox{dir: dir, layers: layers, size: size}, nil
}

// prepare makes the sandbox directory dir (which must not exist) with its
// image of size bytes, sandbox.json and, unless layers is nil (a spare,
// see spare.go), layerchain.json, all on disk. On failure it removes dir.
func prepare(ctx context.Context, dir string, size int64, templateDir string, layers []string) (err error) {
	// 0711: the container's root, remapped to another uid with a user
	// namespace, must be able to reach DIR/rootfs, but not list DIR.
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return errdefs.ErrAlreadyExists
		}
		return err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir) // nothing mounted or attached yet
		}
	}()
	if err := os.Chmod(dir, 0o711); err != nil { // the umask may have cut it
		return err
	}
	for _, d := range []string{scratchDir, rootfsDir, emptyDir} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	// Three files, each complete on disk under a temporary name before it
	// is renamed into place, and one fsync of the directory at the end. A
	// crash may leave any of them missing: without sandbox.json Open says
	// not found (and nothing is mounted); with it, Open works and Mount
	// refuses an incomplete sandbox, which Remove deletes. The metadata is
	// written while the image is made: create time is mostly fsyncs, and
	// on different files they overlap.
	metaErr := make(chan error, 1)
	go func() {
		var err error
		if layers != nil {
			err = writeFileSync(filepath.Join(dir, layerChainFile), layers)
		}
		if err == nil {
			err = writeFileSync(filepath.Join(dir, metaFile), sandboxMeta{Version: metaVersion, SizeBytes: size})
		}
		metaErr <- err
	}()
	tmp := filepath.Join(dir, imageFile+".tmp")
	if templateDir != "" {
		err = imageFromTemplate(ctx, templateDir, tmp, size)
	} else {
		err = formatImage(ctx, tmp, size)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, imageFile))
	}
	if err == nil {
		// On no loop device (see loopCandidates).
		err = os.WriteFile(filepath.Join(dir, loopRecord), nil, 0o600)
	}
	if merr := <-metaErr; err == nil {
		err = merr
	}
	if err == nil {
		err = syncDir(dir)
	}
	return err
}

// Open returns the sandbox in dir from its metadata, after a restart or a
// crash, and cleans what a crashed Mount or Unmount left half made: a
// scratch file system mounted without the overlay on top is unmounted, a
// loop device still bound to the image without a mount is detached. A
// fully mounted sandbox (a running container) is left mounted.
//
// A directory without sandbox.json gives errdefs.ErrNotFound; such a
// directory (Create crashed before writing it) holds no mount and no loop
// device and can be deleted with os.RemoveAll.
func Open(dir string) (*Sandbox, error) {
	s, _, err := open(dir)
	return s, err
}

// OpenMounted is Open followed by Mount, for a caller that needs the
// sandbox mounted (a start, a copy, a commit): when it is mounted already,
// Open's one reading of the mount table serves both. wasMounted says
// whether it was, so that a caller can put it back as it found it.
func OpenMounted(ctx context.Context, dir string) (s *Sandbox, rootfs string, wasMounted bool, err error) {
	s, wasMounted, err = open(dir)
	if err != nil {
		return nil, "", false, err
	}
	if wasMounted {
		return s, s.RootfsPath(), true, nil
	}
	if rootfs, err = s.Mount(ctx); err != nil {
		return nil, "", false, err
	}
	return s, rootfs, false, nil
}

// open is Open; it also says whether the overlay was mounted.
func open(dir string) (*Sandbox, bool, error) {
	if !filepath.IsAbs(dir) {
		return nil, false, fmt.Errorf("open sandbox %s: path is not absolute: %w", dir, errdefs.ErrInvalidArgument)
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("open sandbox %s: %w", dir, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, false, fmt.Errorf("open sandbox %s: %w", dir, err)
	}
	m, layers, chain, err := readMeta(resolved)
	if err != nil {
		return nil, false, err
	}
	s := &Sandbox{dir: resolved, layers: layers, size: m.SizeBytes, incomplete: !chain}
	mounted, err := s.mounts()
	if err != nil {
		return nil, false, fmt.Errorf("open sandbox %s: %w", dir, err)
	}
	if mounted[s.path(rootfsDir)] {
		return s, true, nil
	}
	// A scratch mount still in use (conflict) stays: Mount reuses it,
	// Unmount and Remove try again and report it.
	err = s.unmountLocked()
	s.detachPending = errors.Is(err, errDetachPending)
	if err != nil && !errdefs.IsConflict(err) && !s.detachPending {
		return nil, false, fmt.Errorf("open sandbox %s: clean up: %w", dir, err)
	}
	return s, false, nil
}

// Dir returns the sandbox directory.
func (s *Sandbox) Dir() string { return s.dir }

// Layers returns the read-only layers under the sandbox, top-most first
// (the content of layerchain.json).
func (s *Sandbox) Layers() []string { return append([]string(nil), s.layers...) }

// SizeBytes returns the size of the sandbox file system as created.
func (s *Sandbox) SizeBytes() int64 { return s.size }

// RootfsPath returns where Mount mounts the merged view.
func (s *Sandbox) RootfsPath() string { return s.path(rootfsDir) }

// UpperDir returns the overlay upper directory: the container's changes
// (with overlay whiteouts for deletions). It exists only while the
// sandbox is mounted.
func (s *Sandbox) UpperDir() string { return filepath.Join(s.path(scratchDir), upperName) }

func (s *Sandbox) path(name string) string { return filepath.Join(s.dir, name) }

// Mount makes the sandbox usable as a container root and returns its path
// (DIR/rootfs): it binds the image to a loop device, mounts it at
// DIR/scratch and mounts the overlay of the layers with upper and work
// directories inside it. Mounting a mounted sandbox returns the path
// again. On failure nothing Mount acquired stays mounted or attached.
func (s *Sandbox) Mount(ctx context.Context) (_ string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("mount sandbox %s: %w", s.dir, err)
	}
	rootfs, scratch, image := s.path(rootfsDir), s.path(scratchDir), s.path(imageFile)
	mounted, err := s.mounts()
	if err != nil {
		return fail(err)
	}
	if mounted[rootfs] {
		return rootfs, nil
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if s.incomplete {
		return fail(fmt.Errorf("no %s (creation did not finish): %w", layerChainFile, errdefs.ErrConflict))
	}
	if _, err := os.Stat(image); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("no %s (creation did not finish): %w", imageFile, errdefs.ErrConflict)
		}
		return fail(err)
	}

	if !mounted[scratch] {
		// The image must be on no loop device any more: a second mount of
		// it beside a superblock still alive elsewhere would corrupt it.
		if s.detachPending {
			if err := detachLoops(ctx, image, s.loopCandidates(), mountWait); err != nil {
				return fail(err)
			}
			s.detachPending = false
		}
		var dev string
		if dev, err = mountImage(image, scratch); err != nil {
			return fail(err)
		}
		defer func() {
			if err != nil {
				_ = unmountAll(scratch)
				_ = detachLoops(context.Background(), image, []string{dev}, unmountWait)
			}
		}()
		// Unmounting checks this device rather than every loop device.
		if err := os.WriteFile(s.path(loopRecord), []byte(dev), 0o600); err != nil {
			return fail(err)
		}
	}
	upper, work := s.UpperDir(), filepath.Join(scratch, workName)
	if err := makeUpper(upper, s.layers); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return fail(err)
	}
	lowers := s.layers
	if len(lowers) == 0 {
		// overlay needs a lower layer; an empty one turns it into the
		// upper directory seen through the same file system type.
		lowers = []string{s.path(emptyDir)}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := mountOverlay(rootfs, lowers, upper, work); err != nil {
		return fail(err)
	}
	if err := s.waitCreated(); err != nil {
		_ = unmountAll(rootfs)
		return fail(err)
	}
	return rootfs, nil
}

// mountImage binds image to a loop device, mounts its ext4 at target and
// returns the device.
func mountImage(image, target string) (string, error) {
	fd, dev, err := attachLoop(image)
	if err != nil {
		return "", err
	}
	// Closing the fd unbinds the device unless the mount below holds it
	// (LO_FLAGS_AUTOCLEAR): a failed mount leaks nothing.
	defer unix.Close(fd)
	if err := unix.Mount(dev, target, "ext4", unix.MS_NOATIME, ""); err != nil {
		return "", fmt.Errorf("mount %s (%s) at %s: %w", dev, image, target, err)
	}
	return dev, nil
}

// loopRecord names, in the sandbox directory, the loop device the image
// was last mounted from; empty once it is known to be on none.
const loopRecord = "loopdev"

// loopCandidates are the loop devices the image may still be bound to:
// the one recorded at the last mount, and the source of the scratch mount
// if it is mounted (a crash between the mount and the record).
//
// A sandbox without the record (made by an older silo) gets nil: every
// loop device is scanned.
func (s *Sandbox) loopCandidates() []string {
	b, err := os.ReadFile(s.path(loopRecord))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	cands := []string{}
	if strings.HasPrefix(string(b), "/dev/loop") {
		cands = append(cands, string(b))
	}
	if infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(s.path(scratchDir))); err == nil {
		for _, i := range infos {
			if strings.HasPrefix(i.Source, "/dev/loop") {
				cands = append(cands, i.Source)
			}
		}
	}
	return cands
}

// makeUpper creates the overlay upper directory. Its attributes become
// those of the container's "/", so it takes them from the top-most
// layer's root (0755 root:root without layers).
func makeUpper(upper string, layers []string) error {
	if _, err := os.Lstat(upper); err == nil {
		return nil
	}
	mode, uid, gid := uint32(0o755), 0, 0
	if len(layers) > 0 {
		var st unix.Stat_t
		if err := unix.Stat(layers[0], &st); err != nil {
			return fmt.Errorf("stat layer %s: %w", layers[0], err)
		}
		mode, uid, gid = st.Mode&0o7777, int(st.Uid), int(st.Gid)
	}
	if err := os.Mkdir(upper, 0o700); err != nil {
		return err
	}
	if err := os.Lchown(upper, uid, gid); err != nil {
		return err
	}
	return unix.Chmod(upper, mode)
}

// Unmount unmounts the overlay and the scratch file system and detaches
// the loop device; the container's files stay in the image. Unmounting
// an unmounted sandbox does nothing. A mount still in use gives an error
// wrapping errdefs.ErrConflict.
func (s *Sandbox) Unmount(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("unmount sandbox %s: %w", s.dir, err)
	}
	_ = s.waitCreated() // nothing may still write into the directory
	// A loop device left to unbind at its last close is as good as gone
	// for the caller (Mount waits for it before using the image again).
	err := s.unmountLocked()
	if s.detachPending = errors.Is(err, errDetachPending); err != nil && !s.detachPending {
		return fmt.Errorf("unmount sandbox %s: %w", s.dir, err)
	}
	return nil
}

// unmountLocked unmounts rootfs, then scratch, then detaches loop devices
// left bound to the image. Each step runs whatever state the previous
// crash left, so it also repairs half-made mounts.
func (s *Sandbox) unmountLocked() error {
	cands := s.loopCandidates()
	if err := unmountAll(s.path(rootfsDir)); err != nil {
		return err
	}
	if err := unmountAll(s.path(scratchDir)); err != nil {
		return err
	}
	if err := detachLoops(context.Background(), s.path(imageFile), cands, unmountWait); err != nil {
		return err
	}
	// Empty: known to be on no loop device.
	if err := os.WriteFile(s.path(loopRecord), nil, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", loopRecord, err)
	}
	return nil
}

// unmountAll unmounts everything mounted at path (mounts may be stacked).
// UMOUNT_NOFOLLOW: a symlink planted at path must not redirect the unmount.
func unmountAll(path string) error {
	for i := 0; ; i++ {
		err := unix.Unmount(path, unix.UMOUNT_NOFOLLOW)
		switch {
		case err == nil:
			if i > 64 {
				return fmt.Errorf("umount %s: still mounted after %d unmounts", path, i)
			}
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil // not a mount point (any more)
		case errors.Is(err, unix.EBUSY):
			return fmt.Errorf("umount %s: %w: %w", path, err, errdefs.ErrConflict)
		default:
			return fmt.Errorf("umount %s: %w", path, err)
		}
	}
}

// Remove unmounts the sandbox, detaches its loop device and deletes its
// directory with the container's files. Removing a removed sandbox does
// nothing. Remove deletes nothing while anything is still mounted below
// the directory.
//
// The cost does not depend on how many files the container wrote: they
// all live in one image file.
func (s *Sandbox) Remove(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fail := func(err error) error {
		return fmt.Errorf("remove sandbox %s: %w", s.dir, err)
	}
	_ = s.waitCreated() // nothing may still write into the directory
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if _, err := os.Lstat(s.dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	// A loop device that unbinds at its last close may stay a while: its
	// image can be deleted under it (the space is freed with the device).
	if err := s.unmountLocked(); err != nil && !errors.Is(err, errDetachPending) {
		return fail(err)
	}
	mounted, err := s.mounts()
	if err != nil {
		return fail(err)
	}
	if len(mounted) > 0 {
		mps := slices.Sorted(maps.Keys(mounted))
		return fail(fmt.Errorf("still mounted: %s: %w", strings.Join(mps, ", "), errdefs.ErrConflict))
	}
	// The image first: a crash in the middle leaves the metadata, so
	// Open and Remove still work.
	if err := os.Remove(s.path(imageFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fail(err)
	}
	return nil
}

// Usage returns the bytes used in the sandbox file system and its size,
// from statfs of the mounted file system (ext4 reports its size net of
// its own metadata, so size is a little below SizeBytes). When the
// sandbox is not mounted it returns the host disk space the image takes
// and SizeBytes.
func (s *Sandbox) Usage() (used, size int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mounted, err := s.mounts()
	if err != nil {
		return 0, 0, fmt.Errorf("usage of sandbox %s: %w", s.dir, err)
	}
	for _, p := range []string{s.path(scratchDir), s.path(rootfsDir)} {
		if !mounted[p] {
			continue
		}
		// overlay's statfs reports its upper file system: the same answer.
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err != nil {
			return 0, 0, fmt.Errorf("usage of sandbox %s: statfs %s: %w", s.dir, p, err)
		}
		return int64(st.Blocks-st.Bfree) * st.Bsize, int64(st.Blocks) * st.Bsize, nil
	}
	var st unix.Stat_t
	if err := unix.Stat(s.path(imageFile), &st); err != nil {
		return 0, 0, fmt.Errorf("usage of sandbox %s: %w", s.dir, err)
	}
	return st.Blocks * 512, s.size, nil
}

// mounts returns the mount points at or below the sandbox directory.
func (s *Sandbox) mounts() (map[string]bool, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(s.dir))
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(infos))
	for _, i := range infos {
		m[i.Mountpoint] = true
	}
	return m, nil
}

// isUnder reports whether path is strictly below dir.
func isUnder(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../")
}
