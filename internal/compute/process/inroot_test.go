package process

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// testRoot makes <tmp>/rootfs and <tmp>/outside (a marker directory an
// escape would write into) and returns their paths and an O_PATH fd on the
// rootfs.
func testRoot(t *testing.T) (rootfs, outside string, root int) {
	t.Helper()
	tmp := t.TempDir()
	rootfs = filepath.Join(tmp, "rootfs")
	outside = filepath.Join(tmp, "outside")
	for _, d := range []string{rootfs, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	// openat2 arrived in Linux 5.6.
	probe, err := openInRoot(fd, "/", unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOSYS) {
		t.Skip("openat2 not supported by this kernel")
	}
	if err != nil {
		t.Fatalf("openInRoot(/): %v", err)
	}
	unix.Close(probe)
	return rootfs, outside, fd
}

func fdPath(t *testing.T, fd int) string {
	t.Helper()
	p, err := os.Readlink(procFd(fd))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("escape: %s appeared outside the rootfs", filepath.Join(dir, e.Name()))
	}
}

func assertDir(t *testing.T, p string) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatalf("want directory %s: %v", p, err)
	}
	if !fi.IsDir() {
		t.Fatalf("%s is %v, want a directory", p, fi.Mode())
	}
}

func TestMkdirAllInRootSymlinkEscapes(t *testing.T) {
	tests := []struct {
		name   string
		link   func(outside string) string // symlink target of rootfs/escape
		mkdir  string
		inside string // where the directory must appear, relative to rootfs
		// dangling: the link's target does not exist inside the rootfs.
		// mkdirAllInRoot does not create through such links (it fails with
		// ENOENT, where runc's MkdirAllInRoot would create the target inside
		// the root); either outcome is safe, an escape is not.
		dangling bool
	}{
		{name: "absolute to /", link: func(string) string { return "/" }, mkdir: "/escape/x", inside: "x"},
		{name: "relative up", link: func(string) string { return "../../.." }, mkdir: "/escape/x/y", inside: "x/y"},
		{name: "one level up to the marker's parent", link: func(string) string { return ".." }, mkdir: "/escape/outside/x", inside: "outside/x"},
		{name: "absolute host path of the marker", link: func(o string) string { return o }, mkdir: "/escape/x", inside: "x", dangling: true},
		{name: "relative path to the marker", link: func(string) string { return "../outside" }, mkdir: "/escape/x", inside: "outside/x", dangling: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs, outside, root := testRoot(t)
			target := tt.link(outside)
			if err := os.Symlink(target, filepath.Join(rootfs, "escape")); err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(rootfs, tt.inside)
			if tt.name == "absolute host path of the marker" {
				// The host path is re-read inside the root.
				want = filepath.Join(rootfs, outside, "x")
			}
			fd, err := mkdirAllInRoot(root, tt.mkdir, 0o755)
			if err != nil && tt.dangling {
				if !errors.Is(err, unix.ENOENT) {
					t.Errorf("mkdirAllInRoot(%s) through a dangling link: %v, want ENOENT or success", tt.mkdir, err)
				}
				assertEmptyDir(t, outside)
				return
			}
			if err != nil {
				t.Fatalf("mkdirAllInRoot(%s) with escape -> %s: %v", tt.mkdir, target, err)
			}
			defer unix.Close(fd)
			assertDir(t, want)
			if got := fdPath(t, fd); got != want {
				t.Errorf("handle points at %s, want %s", got, want)
			}
			assertEmptyDir(t, outside)
			if _, err := os.Lstat(filepath.Join(filepath.Dir(rootfs), "x")); err == nil {
				t.Errorf("escape: %s created", filepath.Join(filepath.Dir(rootfs), "x"))
			}
		})
	}
}

// A dangling symlink is resolved in the root too: its target (missing)
// is not created on the host.
func TestMkdirAllInRootDanglingSymlink(t *testing.T) {
	rootfs, outside, root := testRoot(t)
	if err := os.Symlink(filepath.Join(outside, "new"), filepath.Join(rootfs, "dangling")); err != nil {
		t.Fatal(err)
	}
	fd, err := mkdirAllInRoot(root, "/dangling/x", 0o755)
	if err == nil {
		defer unix.Close(fd)
		if p := fdPath(t, fd); filepath.Dir(p) == outside || !isUnder(p, rootfs) {
			t.Errorf("handle %s outside the rootfs", p)
		}
	}
	assertEmptyDir(t, outside)
}

func isUnder(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !filepath.IsAbs(rel) && (len(rel) < 3 || rel[:3] != "../")
}

func TestMkdirAllInRootDotDot(t *testing.T) {
	tests := []struct {
		p    string
		want string
	}{
		{"../../a/b", "a/b"},
		{"/../../../a", "a"},
		{"/x/../../y/./z", "y/z"},
		{"rel/dir", "rel/dir"},
		{"//many///slashes/", "many/slashes"},
		{"/", "."},
		{"", "."},
		{"..", "."},
	}
	for _, tt := range tests {
		t.Run(tt.p, func(t *testing.T) {
			rootfs, outside, root := testRoot(t)
			fd, err := mkdirAllInRoot(root, tt.p, 0o755)
			if err != nil {
				t.Fatalf("mkdirAllInRoot(%q): %v", tt.p, err)
			}
			defer unix.Close(fd)
			want := filepath.Join(rootfs, tt.want)
			assertDir(t, want)
			if got := fdPath(t, fd); got != want {
				t.Errorf("handle points at %s, want %s", got, want)
			}
			assertEmptyDir(t, outside)
		})
	}
}

func TestMkdirAllInRootExisting(t *testing.T) {
	rootfs, _, root := testRoot(t)
	dir := filepath.Join(rootfs, "etc", "conf.d")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "keep")
	if err := os.WriteFile(marker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := mkdirAllInRoot(root, "/etc/conf.d", 0o755)
	if err != nil {
		t.Fatalf("mkdirAllInRoot on an existing directory: %v", err)
	}
	defer unix.Close(fd)
	var a, b unix.Stat_t
	if err := unix.Fstat(fd, &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(dir, &b); err != nil {
		t.Fatal(err)
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		t.Errorf("handle is not the existing directory")
	}
	if b.Mode&0o777 != 0o700 {
		t.Errorf("existing directory mode changed to %o", b.Mode&0o777)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("existing content lost: %v", err)
	}
}

func TestMkdirAllInRootMode(t *testing.T) {
	rootfs, _, root := testRoot(t)
	old := unix.Umask(0)
	defer unix.Umask(old)
	fd, err := mkdirAllInRoot(root, "/a/b", 0o711)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	for _, p := range []string{"a", "a/b"} {
		fi, err := os.Stat(filepath.Join(rootfs, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o711 {
			t.Errorf("%s: mode %o, want 711", p, fi.Mode().Perm())
		}
	}
}

func TestMkdirAllInRootFileInPath(t *testing.T) {
	rootfs, _, root := testRoot(t)
	if err := os.WriteFile(filepath.Join(rootfs, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/file/x", "/file", "/file/x/y"} {
		fd, err := mkdirAllInRoot(root, p, 0o755)
		if err == nil {
			unix.Close(fd)
			t.Errorf("mkdirAllInRoot(%s) through a regular file succeeded", p)
			continue
		}
		if !errors.Is(err, unix.ENOTDIR) {
			t.Errorf("mkdirAllInRoot(%s) = %v, want ENOTDIR", p, err)
		}
	}
	// A symlink to the file is no better.
	if err := os.Symlink("/file", filepath.Join(rootfs, "link")); err != nil {
		t.Fatal(err)
	}
	if fd, err := mkdirAllInRoot(root, "/link/x", 0o755); err == nil {
		unix.Close(fd)
		t.Errorf("mkdirAllInRoot(/link/x) through a symlink to a file succeeded")
	}
}

func TestOpenInRoot(t *testing.T) {
	rootfs, outside, root := testRoot(t)
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "hosts"), []byte("in"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"up":     "..",
		"abs":    outside,
		"hostfs": "/",
		"hosts":  "/etc/hosts",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(rootfs, name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		p    string
		want string // "" means must fail
	}{
		{"/etc/hosts", "etc/hosts"},
		{"etc/hosts", "etc/hosts"},
		{"/../../etc/hosts", "etc/hosts"},
		{"/hosts", "etc/hosts"},            // absolute symlink read in the root
		{"/hostfs/etc/hosts", "etc/hosts"}, // "/" is the rootfs
		{"/up/etc/hosts", "etc/hosts"},     // ".." clamped at the root
		{"/up/outside/secret", ""},         // not the host's file
		{"/abs/secret", ""},
		{"/missing", ""},
	}
	for _, tt := range tests {
		t.Run(tt.p, func(t *testing.T) {
			fd, err := openInRoot(root, tt.p, 0)
			if tt.want == "" {
				if err == nil {
					p := fdPath(t, fd)
					unix.Close(fd)
					t.Fatalf("openInRoot(%s) opened %s", tt.p, p)
				}
				if !errors.Is(err, unix.ENOENT) {
					t.Errorf("openInRoot(%s) = %v, want ENOENT", tt.p, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("openInRoot(%s): %v", tt.p, err)
			}
			defer unix.Close(fd)
			if got, want := fdPath(t, fd), filepath.Join(rootfs, tt.want); got != want {
				t.Errorf("openInRoot(%s) -> %s, want %s", tt.p, got, want)
			}
		})
	}
	// The handle is O_PATH and close-on-exec.
	fd, err := openInRoot(root, "/etc/hosts", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_PATH == 0 {
		t.Errorf("handle flags %#x lack O_PATH", fl)
	}
	fdfl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fdfl&unix.FD_CLOEXEC == 0 {
		t.Error("handle is not close-on-exec")
	}
	// O_DIRECTORY on a file fails.
	if fd, err := openInRoot(root, "/etc/hosts", unix.O_DIRECTORY); err == nil {
		unix.Close(fd)
		t.Error("openInRoot(O_DIRECTORY) on a file succeeded")
	}
}

func TestProcFd(t *testing.T) {
	if got := procFd(7); got != "/proc/self/fd/7" {
		t.Errorf("procFd(7) = %q", got)
	}
}
