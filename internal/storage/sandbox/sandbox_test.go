package sandbox

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
)

const testSize = 64 << 20

// testRoot returns a fresh directory for sandboxes and registers, in this
// order of execution at the end of the test: a forced cleanup of every
// mount and loop device below it (so that a failing test leaks nothing),
// then a check that there was nothing left to clean.
func testRoot(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices and mounts)")
	}
	if _, err := mkfsPath(); err != nil {
		t.Skip(err)
	}
	root := t.TempDir() // its RemoveAll runs after the cleanups below
	t.Cleanup(func() {
		if m := mountsUnder(t, root); len(m) > 0 {
			t.Errorf("mounts left under %s: %v", root, m)
		}
		if l := loopsUnder(t, root); len(l) > 0 {
			t.Errorf("loop devices left for images under %s: %v", root, l)
		}
	})
	t.Cleanup(func() { forceClean(t, root) })
	return root
}

func mountsUnder(t testing.TB, root string) []string {
	t.Helper()
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(root))
	if err != nil {
		t.Fatal(err)
	}
	var mps []string
	for _, i := range infos {
		mps = append(mps, i.Mountpoint)
	}
	return mps
}

// loopsUnder lists "loopN=backing file" for loop devices backed by files
// below root (what losetup -l shows).
func loopsUnder(t testing.TB, root string) []string {
	t.Helper()
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && strings.HasPrefix(string(b), root+"/") {
			out = append(out, filepath.Base(filepath.Dir(filepath.Dir(f)))+"="+strings.TrimSpace(string(b)))
		}
	}
	return out
}

// forceClean unmounts everything below root, deepest first, and detaches
// loop devices backed by files below root. Only for test cleanup.
func forceClean(t testing.TB, root string) {
	mps := mountsUnder(t, root)
	slices.SortFunc(mps, func(a, b string) int { return len(b) - len(a) })
	for _, mp := range mps {
		if err := unix.Unmount(mp, 0); err != nil {
			_ = unix.Unmount(mp, unix.MNT_DETACH)
		}
	}
	for _, l := range loopsUnder(t, root) {
		_ = detachLoops(context.Background(), strings.TrimSuffix(l[strings.IndexByte(l, '=')+1:], " (deleted)"), nil, unmountWait)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustNotExist(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: want it absent, got %v", path, err)
	}
}

// makeLayers builds two unpacked layers under root, top-most first:
//
//	base: base.txt, gone.txt, dir/deep.txt
//	top:  top.txt, gone.txt as a whiteout (char device 0/0)
func makeLayers(t testing.TB, root string) []string {
	t.Helper()
	base, top := filepath.Join(root, "layers", "base"), filepath.Join(root, "layers", "top")
	writeFile(t, filepath.Join(base, "base.txt"), "base")
	writeFile(t, filepath.Join(base, "gone.txt"), "deleted in top")
	writeFile(t, filepath.Join(base, "dir", "deep.txt"), "deep")
	writeFile(t, filepath.Join(top, "top.txt"), "top")
	if err := unix.Mknod(filepath.Join(top, "gone.txt"), unix.S_IFCHR|0o600, 0); err != nil {
		t.Fatal(err)
	}
	return []string{top, base}
}

func create(t testing.TB, dir string, layers []string, size int64) *Sandbox {
	t.Helper()
	s, err := Create(context.Background(), dir, layers, Options{SizeBytes: size})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mount(t testing.TB, s *Sandbox) string {
	t.Helper()
	rootfs, err := s.Mount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rootfs
}

func isWhiteout(path string) bool {
	var st unix.Stat_t
	return unix.Lstat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func TestLifecycle(t *testing.T) {
	root := testRoot(t)
	ctx := context.Background()
	layers := makeLayers(t, root)
	dir := filepath.Join(root, "silo-sb")

	s := create(t, dir, layers, testSize)
	for _, name := range []string{metaFile, layerChainFile, imageFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if got := readFile(t, filepath.Join(dir, layerChainFile)); got != `["`+layers[0]+`","`+layers[1]+`"]`+"\n" {
		t.Errorf("layerchain.json = %s", got)
	}
	if _, err := Create(ctx, dir, layers, Options{SizeBytes: testSize}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second Create: %v, want already exists", err)
	}
	if m := mountsUnder(t, root); len(m) > 0 {
		t.Errorf("Create mounted %v", m)
	}

	rootfs := mount(t, s)
	if again := mount(t, s); again != rootfs {
		t.Errorf("second Mount = %s, want %s", again, rootfs)
	}

	// The merged view.
	for name, want := range map[string]string{"base.txt": "base", "top.txt": "top", "dir/deep.txt": "deep"} {
		if got := readFile(t, filepath.Join(rootfs, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	mustNotExist(t, filepath.Join(rootfs, "gone.txt"))

	// Writes land in the upper directory, inside the image; layers stay.
	upper := s.UpperDir()
	writeFile(t, filepath.Join(rootfs, "new.txt"), "new")
	writeFile(t, filepath.Join(rootfs, "base.txt"), "changed")
	if err := os.Remove(filepath.Join(rootfs, "top.txt")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(upper, "new.txt")); got != "new" {
		t.Errorf("upper new.txt = %q", got)
	}
	if got := readFile(t, filepath.Join(upper, "base.txt")); got != "changed" {
		t.Errorf("upper base.txt = %q", got)
	}
	if !isWhiteout(filepath.Join(upper, "top.txt")) {
		t.Errorf("upper top.txt is not a whiteout")
	}
	if got := readFile(t, filepath.Join(layers[1], "base.txt")); got != "base" {
		t.Errorf("lower base.txt changed to %q", got)
	}
	if got := readFile(t, filepath.Join(layers[0], "top.txt")); got != "top" {
		t.Errorf("lower top.txt changed to %q", got)
	}

	// Unmount and mount again: the changes live in the image.
	if err := s.Unmount(ctx); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(t, root); len(m) > 0 {
		t.Errorf("after Unmount: mounts %v", m)
	}
	if l := loopsUnder(t, root); len(l) > 0 {
		t.Errorf("after Unmount: loop devices %v", l)
	}
	if err := s.Unmount(ctx); err != nil {
		t.Errorf("second Unmount: %v", err)
	}
	if used, size, err := s.Usage(); err != nil || used <= 0 || size != testSize {
		t.Errorf("Usage unmounted = %d, %d, %v", used, size, err)
	}
	rootfs = mount(t, s)
	if got := readFile(t, filepath.Join(rootfs, "new.txt")); got != "new" {
		t.Errorf("after remount new.txt = %q", got)
	}
	mustNotExist(t, filepath.Join(rootfs, "top.txt"))

	// Fill it: ENOSPC inside, the host file system barely notices.
	var hostBefore unix.Statfs_t
	if err := unix.Statfs(root, &hostBefore); err != nil {
		t.Fatal(err)
	}
	written, werr := fill(filepath.Join(rootfs, "big"))
	if !errors.Is(werr, unix.ENOSPC) {
		t.Fatalf("writing past the limit: %v after %d bytes, want ENOSPC", werr, written)
	}
	if written < testSize/2 || written > testSize {
		t.Errorf("wrote %d bytes into a %d-byte sandbox", written, testSize)
	}
	var hostAfter unix.Statfs_t
	if err := unix.Statfs(root, &hostAfter); err != nil {
		t.Fatal(err)
	}
	drop := (int64(hostBefore.Bavail) - int64(hostAfter.Bavail)) * hostAfter.Bsize
	if drop > testSize {
		t.Errorf("host free space dropped by %d bytes, more than the sandbox size %d", drop, testSize)
	}
	var ist unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, imageFile), &ist); err != nil {
		t.Fatal(err)
	}
	if alloc := ist.Blocks * 512; alloc > testSize {
		t.Errorf("image takes %d bytes on the host, more than %d", alloc, testSize)
	}
	t.Logf("wrote %d bytes before ENOSPC; host free space dropped %d; image allocates %d", written, drop, ist.Blocks*512)

	used, size, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	// ext4's own metadata (journal, inode tables) is ~12% of 64 MiB, ~2% of 20 GiB.
	if used < written || size > testSize || size < testSize*85/100 {
		t.Errorf("Usage = %d of %d after writing %d", used, size, written)
	}
	if err := os.Remove(filepath.Join(rootfs, "big")); err != nil {
		t.Fatal(err)
	}

	if err := s.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, dir)
	if err := s.Remove(ctx); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	for _, l := range layers {
		if _, err := os.Stat(l); err != nil {
			t.Errorf("layer removed: %v", err)
		}
	}
}

// fill writes 1 MiB blocks to path until a write or the final fsync fails,
// like dd if=/dev/zero, and returns the bytes written and the error.
func fill(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0xa5}, 1<<20)
	var n int64
	for n < 1<<40 {
		w, err := f.Write(buf)
		n += int64(w)
		if err != nil {
			return n, err
		}
	}
	return n, f.Sync()
}

func TestScratchContainer(t *testing.T) {
	root := testRoot(t)
	s := create(t, filepath.Join(root, "silo-scratch"), nil, MinSize)
	rootfs := mount(t, s)
	writeFile(t, filepath.Join(rootfs, "etc", "hostname"), "x")
	if got := readFile(t, filepath.Join(s.UpperDir(), "etc", "hostname")); got != "x" {
		t.Errorf("upper etc/hostname = %q", got)
	}
	var st unix.Stat_t
	if err := unix.Stat(rootfs, &st); err != nil || st.Mode&0o7777 != 0o755 || st.Uid != 0 {
		t.Errorf("rootfs / mode %o uid %d: %v", st.Mode&0o7777, st.Uid, err)
	}
	if err := s.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCrashRecovery(t *testing.T) {
	ctx := context.Background()

	t.Run("mounted", func(t *testing.T) {
		// The daemon died with a running container: Open keeps it
		// mounted, Remove cleans everything.
		root := testRoot(t)
		layers := makeLayers(t, root)
		dir := filepath.Join(root, "silo-crash")
		s := create(t, dir, layers, testSize)
		rootfs := mount(t, s)
		writeFile(t, filepath.Join(rootfs, "state"), "running")

		s2, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(rootfs, "state")); got != "running" {
			t.Errorf("after Open: state = %q", got)
		}
		if !slices.Equal(s2.Layers(), layers) || s2.SizeBytes() != testSize {
			t.Errorf("Open: layers %v size %d", s2.Layers(), s2.SizeBytes())
		}
		if err := s2.Remove(ctx); err != nil {
			t.Fatal(err)
		}
		mustNotExist(t, dir)
	})

	t.Run("scratch without rootfs", func(t *testing.T) {
		// Mount died between the two mounts.
		root := testRoot(t)
		dir := filepath.Join(root, "silo-half")
		s := create(t, dir, makeLayers(t, root), testSize)
		mount(t, s)
		if err := unix.Unmount(s.RootfsPath(), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir); err != nil {
			t.Fatal(err)
		}
		if m := mountsUnder(t, root); len(m) > 0 {
			t.Errorf("after Open: mounts %v", m)
		}
		if l := loopsUnder(t, root); len(l) > 0 {
			t.Errorf("after Open: loop devices %v", l)
		}
	})

	t.Run("loop without mount", func(t *testing.T) {
		// A loop device bound without autoclear by an older silo (which
		// kept no record of its loop devices) and never mounted.
		root := testRoot(t)
		dir := filepath.Join(root, "silo-loop")
		create(t, dir, nil, testSize)
		if err := os.Remove(filepath.Join(dir, loopRecord)); err != nil {
			t.Fatal(err)
		}
		bindLoop(t, filepath.Join(dir, imageFile))
		if len(loopsUnder(t, root)) != 1 {
			t.Fatal("test loop device not bound")
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if l := loopsUnder(t, root); len(l) > 0 {
			t.Errorf("after Open: loop devices %v", l)
		}
		if err := s.Remove(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("no image", func(t *testing.T) {
		// Create died while formatting.
		root := testRoot(t)
		dir := filepath.Join(root, "silo-noimg")
		create(t, dir, nil, testSize)
		if err := os.Rename(filepath.Join(dir, imageFile), filepath.Join(dir, imageFile+".tmp")); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Mount(ctx); !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("Mount without image: %v, want conflict", err)
		}
		if err := s.Remove(ctx); err != nil {
			t.Fatal(err)
		}
		mustNotExist(t, dir)
	})

	t.Run("no layer chain", func(t *testing.T) {
		root := testRoot(t)
		dir := filepath.Join(root, "silo-nochain")
		create(t, dir, makeLayers(t, root), testSize)
		if err := os.Remove(filepath.Join(dir, layerChainFile)); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Mount(ctx); !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("Mount without layerchain.json: %v, want conflict", err)
		}
		if err := s.Remove(ctx); err != nil {
			t.Fatal(err)
		}
		mustNotExist(t, dir)
	})

	t.Run("not a sandbox", func(t *testing.T) {
		root := testRoot(t)
		if _, err := Open(root); !errdefs.IsNotFound(err) {
			t.Errorf("Open(%s) = %v, want not found", root, err)
		}
		if _, err := Open(filepath.Join(root, "missing")); !errdefs.IsNotFound(err) {
			t.Errorf("Open(missing) = %v, want not found", err)
		}
	})
}

// bindLoop binds image to a loop device without LO_FLAGS_AUTOCLEAR, so it
// stays bound after this process closes it, like `losetup -f image`.
func bindLoop(t *testing.T, image string) {
	t.Helper()
	fd, dev, err := attachLoop(image)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	info, err := unix.IoctlLoopGetStatus64(fd)
	if err != nil {
		t.Fatal(err)
	}
	info.Flags &^= unix.LO_FLAGS_AUTOCLEAR
	if err := unix.IoctlLoopSetStatus64(fd, info); err != nil {
		t.Fatalf("clear autoclear on %s: %v", dev, err)
	}
}

func TestFailedMountLeaksNothing(t *testing.T) {
	root := testRoot(t)
	layers := makeLayers(t, root)
	dir := filepath.Join(root, "silo-fail")
	s := create(t, dir, layers, testSize)
	// A layer vanishing after Create makes the overlay mount fail after
	// the loop device and the scratch mount were acquired.
	if err := os.RemoveAll(layers[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mount(context.Background()); err == nil {
		t.Fatal("Mount over a missing layer succeeded")
	} else if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the sandbox", err)
	}
	if m := mountsUnder(t, root); len(m) > 0 {
		t.Errorf("mounts left after a failed Mount: %v", m)
	}
	if l := loopsUnder(t, root); len(l) > 0 {
		t.Errorf("loop devices left after a failed Mount: %v", l)
	}
	if err := s.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCreateInvalid(t *testing.T) {
	root := testRoot(t)
	ctx := context.Background()
	layers := makeLayers(t, root)
	for _, tc := range []struct {
		name   string
		dir    string
		layers []string
		size   int64
		class  error
	}{
		{"relative dir", "silo-rel", nil, testSize, errdefs.ErrInvalidArgument},
		{"too small", filepath.Join(root, "silo-small"), nil, MinSize - 1, errdefs.ErrInvalidArgument},
		{"negative", filepath.Join(root, "silo-neg"), nil, -1, errdefs.ErrInvalidArgument},
		{"relative layer", filepath.Join(root, "silo-rl"), []string{"layers/top"}, testSize, errdefs.ErrInvalidArgument},
		{"missing layer", filepath.Join(root, "silo-ml"), []string{filepath.Join(root, "nope")}, testSize, errdefs.ErrNotFound},
		{"file layer", filepath.Join(root, "silo-fl"), []string{filepath.Join(layers[0], "top.txt")}, testSize, errdefs.ErrInvalidArgument},
		{"layer inside", filepath.Join(layers[0], "silo-in"), layers, testSize, errdefs.ErrInvalidArgument},
	} {
		_, err := Create(ctx, tc.dir, tc.layers, Options{SizeBytes: tc.size})
		if !errors.Is(err, tc.class) {
			t.Errorf("%s: Create = %v, want %v", tc.name, err, tc.class)
		}
		if filepath.IsAbs(tc.dir) {
			mustNotExist(t, tc.dir)
		}
	}
}

// TestSharedLayers mounts two sandboxes over the same layers: both see
// them, neither sees the other's writes, and neither copies them.
func TestSharedLayers(t *testing.T) {
	root := testRoot(t)
	ctx := context.Background()
	layers := makeLayers(t, root)
	big := bytes.Repeat([]byte("layer data "), 1<<20) // 11 MiB
	if err := os.WriteFile(filepath.Join(layers[1], "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	var sbs []*Sandbox
	var rootfss []string
	for i := range 2 {
		s := create(t, filepath.Join(root, "silo-shared"+strconv.Itoa(i)), layers, testSize)
		sbs = append(sbs, s)
		rootfss = append(rootfss, mount(t, s))
	}
	writeFile(t, filepath.Join(rootfss[0], "only0"), "0")
	mustNotExist(t, filepath.Join(rootfss[1], "only0"))
	for i, s := range sbs {
		got, err := os.ReadFile(filepath.Join(rootfss[i], "big"))
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("sandbox %d: big differs: %v", i, err)
		}
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(s.Dir(), imageFile), &st); err != nil {
			t.Fatal(err)
		}
		// The layer's 11 MiB are not in the sandbox.
		if alloc := st.Blocks * 512; alloc >= int64(len(big)) {
			t.Errorf("sandbox %d image allocates %d bytes: the layer was copied", i, alloc)
		}
		mustNotExist(t, filepath.Join(s.UpperDir(), "big"))
	}
	// Same lower inode under both merged views (no copy-up on read).
	var a, b unix.Stat_t
	if err := unix.Stat(filepath.Join(rootfss[0], "big"), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Join(rootfss[1], "big"), &b); err != nil {
		t.Fatal(err)
	}
	var l unix.Stat_t
	if err := unix.Stat(filepath.Join(layers[1], "big"), &l); err != nil {
		t.Fatal(err)
	}
	if a.Ino != l.Ino || b.Ino != l.Ino {
		t.Errorf("inode of big: %d and %d in the sandboxes, %d in the layer", a.Ino, b.Ino, l.Ino)
	}
	for _, s := range sbs {
		if err := s.Remove(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOverlayMethods mounts through each way of passing layers, with
// enough layers that one page of mount(2) options would not hold them.
func TestOverlayMethods(t *testing.T) {
	defer func(m overlayMethod) { firstOverlayMethod = m }(firstOverlayMethod)
	for _, m := range []overlayMethod{overlayFD, overlayString, overlayLegacy} {
		t.Run(m.String(), func(t *testing.T) {
			firstOverlayMethod = m
			root := testRoot(t)
			ctx := context.Background()
			layers := makeLayers(t, root)
			// Layer names with the separators of the legacy syntax.
			odd := filepath.Join(root, "layers", "odd:name,x")
			writeFile(t, filepath.Join(odd, "odd.txt"), "odd")
			layers = append([]string{odd}, layers...)
			s := create(t, filepath.Join(root, "silo-"+m.String()), layers, testSize)
			rootfs := mount(t, s)
			if got := overlayMethod(lastOverlayMethod.Load()); got != m {
				t.Errorf("mounted with %s, want %s", got, m)
			}
			for name, want := range map[string]string{"odd.txt": "odd", "top.txt": "top", "base.txt": "base"} {
				if got := readFile(t, filepath.Join(rootfs, name)); got != want {
					t.Errorf("%s = %q", name, got)
				}
			}
			mustNotExist(t, filepath.Join(rootfs, "gone.txt"))
			if err := s.Remove(ctx); err != nil {
				t.Fatal(err)
			}

			// Many layers with long names: 200 × ~100 bytes is five pages.
			var many []string
			long := strings.Repeat("l", 80)
			for i := range 200 {
				d := filepath.Join(root, "many", long+strconv.Itoa(i))
				writeFile(t, filepath.Join(d, "f"+strconv.Itoa(i)), strconv.Itoa(i))
				many = append(many, d)
			}
			s = create(t, filepath.Join(root, "silo-many-"+m.String()), many, testSize)
			rootfs, err := s.Mount(ctx)
			if got := overlayMethod(lastOverlayMethod.Load()); m != overlayLegacy && got != m {
				t.Errorf("200 layers mounted with %s, want %s", got, m)
			}
			if m == overlayLegacy {
				if !errors.Is(err, unix.E2BIG) {
					t.Errorf("legacy mount of 200 layers: %v, want E2BIG", err)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if got := readFile(t, filepath.Join(rootfs, "f0")) + readFile(t, filepath.Join(rootfs, "f199")); got != "0199" {
				t.Errorf("many layers: %q", got)
			}
			if err := s.Remove(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTemplate creates sandboxes as copies of one template image: the
// template is formatted once, each copy is sparse and independent.
func TestTemplate(t *testing.T) {
	root := testRoot(t)
	ctx := context.Background()
	tpl := filepath.Join(root, "templates")
	layers := makeLayers(t, root)
	var sbs []*Sandbox
	for i := range 2 {
		s, err := Create(ctx, filepath.Join(root, "silo-tpl"+strconv.Itoa(i)), layers, Options{SizeBytes: testSize, TemplateDir: tpl})
		if err != nil {
			t.Fatal(err)
		}
		sbs = append(sbs, s)
		rootfs := mount(t, s)
		writeFile(t, filepath.Join(rootfs, "id"), strconv.Itoa(i))
		if got := readFile(t, filepath.Join(rootfs, "top.txt")); got != "top" {
			t.Errorf("top.txt = %q", got)
		}
	}
	if ents, err := os.ReadDir(tpl); err != nil || len(ents) != 1 {
		t.Fatalf("template dir holds %v (%v), want one image", ents, err)
	}
	for i, s := range sbs {
		if got := readFile(t, filepath.Join(s.RootfsPath(), "id")); got != strconv.Itoa(i) {
			t.Errorf("sandbox %d sees id %q", i, got)
		}
		// Fill one from a template: the limit holds as with mkfs.
		if i == 0 {
			if _, err := fill(filepath.Join(s.RootfsPath(), "big")); !errors.Is(err, unix.ENOSPC) {
				t.Errorf("fill: %v, want ENOSPC", err)
			}
		}
		if err := s.Remove(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(tpl, templateName(testSize)), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 1<<20 {
		t.Errorf("template allocates %d bytes, want it sparse", st.Blocks*512)
	}
}

// TestSpares: Create takes a spare made ahead of time, which works as
// any sandbox; it does not take one for another size, nor into an
// existing directory; CleanSpares deletes half-made and stale spares.
func TestSpares(t *testing.T) {
	root := testRoot(t)
	ctx := context.Background()
	tpl := filepath.Join(root, "templates")
	layers := makeLayers(t, root)
	for range 2 {
		if err := MakeSpare(ctx, tpl, testSize); err != nil {
			t.Fatal(err)
		}
	}
	if n := SpareCount(tpl, testSize); n != 2 {
		t.Fatalf("SpareCount = %d, want 2", n)
	}
	s, err := Create(ctx, filepath.Join(root, "silo-spare"), layers, Options{SizeBytes: testSize, TemplateDir: tpl})
	if err != nil {
		t.Fatal(err)
	}
	if n := SpareCount(tpl, testSize); n != 1 {
		t.Fatalf("after Create SpareCount = %d, want 1", n)
	}
	rootfs := mount(t, s)
	if got := readFile(t, filepath.Join(rootfs, "top.txt")); got != "top" {
		t.Errorf("top.txt = %q", got)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "gone.txt")); !os.IsNotExist(err) {
		t.Errorf("whiteout: %v", err)
	}
	if _, err := fill(filepath.Join(rootfs, "big")); !errors.Is(err, unix.ENOSPC) {
		t.Errorf("fill: %v, want ENOSPC", err)
	}
	if o, err := Open(s.Dir()); err != nil || o.SizeBytes() != testSize || len(o.Layers()) != 2 {
		t.Errorf("Open: %v, %v", o, err)
	}
	if err := s.Remove(ctx); err != nil {
		t.Fatal(err)
	}

	// Another size: made here, the spare stays.
	other, err := Create(ctx, filepath.Join(root, "silo-other"), layers, Options{SizeBytes: 2 * testSize, TemplateDir: tpl})
	if err != nil {
		t.Fatal(err)
	}
	if n := SpareCount(tpl, testSize); n != 1 {
		t.Errorf("a Create of another size took a spare: %d left", n)
	}
	if err := other.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	// An existing directory: refused, the spare stays.
	taken := filepath.Join(root, "silo-taken")
	if err := os.Mkdir(taken, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ctx, taken, layers, Options{SizeBytes: testSize, TemplateDir: tpl}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("Create over a directory: %v, want already exists", err)
	}
	if n := SpareCount(tpl, testSize); n != 1 {
		t.Errorf("a refused Create took a spare: %d left", n)
	}

	// A half-made spare and one of other mkfs options go; the good one stays.
	spares := filepath.Join(tpl, sparesDir)
	for _, name := range []string{spareTmpPrefix + "x", "ext4-" + strconv.Itoa(testSize) + "-000000000000.y"} {
		if err := os.MkdirAll(filepath.Join(spares, name, "scratch"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := CleanSpares(tpl); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(spares)
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), spareKey(testSize)) {
		t.Errorf("after CleanSpares: %v", ents)
	}
}

// BenchmarkCreateMountRemove measures a default (20 GiB) sandbox over two
// layers from Create to Remove, with mkfs.ext4 per sandbox, with a
// template image, and from a spare made ahead of time (outside the timed
// part), and reports the median of each step.
//
//	go test -run '^$' -bench CreateMountRemove -benchtime 100x ./internal/storage/sandbox/
func BenchmarkCreateMountRemove(b *testing.B) {
	b.Run("mkfs", func(b *testing.B) { benchCycle(b, false, false) })
	b.Run("template", func(b *testing.B) { benchCycle(b, true, false) })
	b.Run("spare", func(b *testing.B) { benchCycle(b, true, true) })
}

func benchCycle(b *testing.B, template, spare bool) {
	root := testRoot(b)
	ctx := context.Background()
	layers := makeLayers(b, root)
	opts := Options{}
	if template {
		opts.TemplateDir = filepath.Join(root, "templates")
		s, err := Create(ctx, filepath.Join(root, "silo-warm"), layers, opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Remove(ctx); err != nil {
			b.Fatal(err)
		}
	}
	var tc, tm, tu, tr []time.Duration
	i := 0
	for b.Loop() {
		dir := filepath.Join(root, "silo-bench"+strconv.Itoa(i))
		i++
		if spare {
			b.StopTimer()
			if err := MakeSpare(ctx, opts.TemplateDir, 0); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		t0 := time.Now()
		s, err := Create(ctx, dir, layers, opts)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := s.Mount(ctx); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := s.Unmount(ctx); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if err := s.Remove(ctx); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		tc, tm, tu, tr = append(tc, t1.Sub(t0)), append(tm, t2.Sub(t1)), append(tu, t3.Sub(t2)), append(tr, t4.Sub(t3))
	}
	median := func(d []time.Duration) float64 {
		d = slices.Clone(d)
		slices.Sort(d)
		return float64(d[len(d)/2].Microseconds()) / 1000
	}
	total := make([]time.Duration, len(tc))
	for i := range tc {
		total[i] = tc[i] + tm[i] + tu[i] + tr[i]
	}
	b.ReportMetric(median(tc), "create-ms")
	b.ReportMetric(median(tm), "mount-ms")
	b.ReportMetric(median(tu), "unmount-ms")
	b.ReportMetric(median(tr), "remove-ms")
	b.ReportMetric(median(total), "total-ms")
}

func TestBusy(t *testing.T) {
	root := testRoot(t)
	ctx := context.Background()
	s := create(t, filepath.Join(root, "silo-busy"), makeLayers(t, root), testSize)
	rootfs := mount(t, s)
	f, err := os.Create(filepath.Join(rootfs, "open"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.Unmount(ctx); !errdefs.IsConflict(err) {
		t.Errorf("Unmount with an open file: %v, want conflict", err)
	}
	if err := s.Remove(ctx); !errdefs.IsConflict(err) {
		t.Errorf("Remove with an open file: %v, want conflict", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), imageFile)); err != nil {
		t.Errorf("a refused Remove deleted the image: %v", err)
	}
	f.Close()
	if err := s.Remove(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCreateCanceled(t *testing.T) {
	root := testRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := filepath.Join(root, "silo-canceled")
	if _, err := Create(ctx, dir, nil, Options{SizeBytes: testSize}); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a canceled context: %v", err)
	}
	mustNotExist(t, dir)
}

// TestOpenMounted: OpenMounted finds a mounted sandbox as it is and mounts
// an unmounted one, and says which it was.
func TestOpenMounted(t *testing.T) {
	root := testRoot(t)
	ctx := context.Background()
	dir := filepath.Join(root, "silo-om")
	s := create(t, dir, makeLayers(t, root), testSize)
	mount(t, s)
	for _, wantWas := range []bool{true, false} {
		if !wantWas {
			if err := s.Unmount(ctx); err != nil {
				t.Fatal(err)
			}
		}
		o, rootfs, was, err := OpenMounted(ctx, dir)
		if err != nil || was != wantWas || rootfs != o.RootfsPath() {
			t.Fatalf("OpenMounted: rootfs %q, was mounted %v (want %v), %v", rootfs, was, wantWas, err)
		}
		if got := readFile(t, filepath.Join(rootfs, "top.txt")); got != "top" {
			t.Errorf("top.txt = %q", got)
		}
	}
	if err := s.Remove(ctx); err != nil {
		t.Fatal(err)
	}
}
