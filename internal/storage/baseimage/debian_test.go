package baseimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
)

func TestDebianOptionsNormalize(t *testing.T) {
	tests := []struct {
		name    string
		in      DebianOptions
		wantErr error
		check   func(t *testing.T, o DebianOptions)
	}{
		{name: "defaults", in: DebianOptions{TmpDir: "/x", Mirror: "http://m/debian"}, check: func(t *testing.T, o DebianOptions) {
			if o.Suite != "bookworm" || o.Ref != "debian:bookworm" || len(o.Include) != 0 {
				t.Errorf("%+v", o)
			}
		}},
		{name: "ref follows suite", in: DebianOptions{Suite: "trixie", TmpDir: "/x", Mirror: "http://m/debian"}, check: func(t *testing.T, o DebianOptions) {
			if o.Ref != "debian:trixie" {
				t.Errorf("ref %q", o.Ref)
			}
		}},
		{name: "include deduplicated and trimmed", in: DebianOptions{Include: []string{"gcc", " libc6-dev", "", "gcc", "g++", "libstdc++6"}, TmpDir: "/x", Mirror: "http://m/debian"}, check: func(t *testing.T, o DebianOptions) {
			if strings.Join(o.Include, ",") != "gcc,libc6-dev,g++,libstdc++6" {
				t.Errorf("include %q", o.Include)
			}
		}},
		{name: "default mirror filled", in: DebianOptions{TmpDir: "/x"}, check: func(t *testing.T, o DebianOptions) {
			if !isDebianArchive(o.Mirror) {
				t.Errorf("mirror %q", o.Mirror)
			}
		}},
		{name: "bad suite", in: DebianOptions{Suite: "../etc", TmpDir: "/x", Mirror: "http://m/debian"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "suite with option", in: DebianOptions{Suite: "--foreign", TmpDir: "/x", Mirror: "http://m/debian"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "package with comma", in: DebianOptions{Include: []string{"gcc,make"}, TmpDir: "/x", Mirror: "http://m/debian"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "package upper case", in: DebianOptions{Include: []string{"GCC"}, TmpDir: "/x", Mirror: "http://m/debian"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "package option", in: DebianOptions{Include: []string{"-x"}, TmpDir: "/x", Mirror: "http://m/debian"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "mirror scheme", in: DebianOptions{Mirror: "ftp://m/debian", TmpDir: "/x"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "mirror without host", in: DebianOptions{Mirror: "http:///debian", TmpDir: "/x"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "mirror relative file", in: DebianOptions{Mirror: "file:debian", TmpDir: "/x"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "mirror with space", in: DebianOptions{Mirror: "http://m/deb ian", TmpDir: "/x"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "file mirror", in: DebianOptions{Mirror: "file:///srv/debian", TmpDir: "/x"}},
		{name: "bad ref", in: DebianOptions{Ref: "Debian:Bookworm", TmpDir: "/x", Mirror: "http://m/debian"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "no tmp dir", in: DebianOptions{Mirror: "http://m/debian"}, wantErr: errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.in
			err := o.normalize()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

func TestIsDebianArchive(t *testing.T) {
	for u, want := range map[string]bool{
		"http://deb.debian.org/debian":                               true,
		"http://deb.debian.org/debian/":                              true,
		"https://ftp.fr.debian.org/debian":                           true,
		"http://mirror.example:3142/debian":                          true,
		"http://snapshot.debian.org/archive/debian/20250520T000000Z": true,
		"file:///srv/mirror/debian":                                  true,
		"http://deb.debian.org/debian-security":                      false,
		"https://packages.cloud.google.com/apt":                      false,
		"https://deb.nodesource.com/node_20.x":                       false,
		"cdrom:[Debian]/debian":                                      false,
		"mirror+file:/etc/apt/mirrors/debian.list":                   false,
	} {
		if got := isDebianArchive(u); got != want {
			t.Errorf("%s: %v, want %v", u, got, want)
		}
	}
}

func TestMirrorFromSources(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{name: "none", files: map[string]string{}, want: ""},
		{name: "one-line", files: map[string]string{
			"sources.list": "# deb http://commented.example/debian bookworm main\ndeb-src http://src.example/debian bookworm main\ndeb http://security.debian.org/debian-security bookworm-security main\ndeb [arch=amd64 signed-by=/k.gpg] http://ftp.de.debian.org/debian/ bookworm main\n",
		}, want: "http://ftp.de.debian.org/debian"},
		{name: "options with spaces", files: map[string]string{
			"sources.list": "deb [ arch=amd64 trusted=yes ] http://local.example/debian bookworm main\n",
		}, want: "http://local.example/debian"},
		{name: "deb822 like this host", files: map[string]string{
			"sources.list.d/debian.sources":                      "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n",
			"sources.list.d/nodesource.sources.disabled-by-farm": "Types: deb\nURIs: http://other.example/debian\n",
		}, want: "http://deb.debian.org/debian"},
		{name: "deb822 disabled and deb-src skipped", files: map[string]string{
			"sources.list.d/a.sources": "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\n\nTypes: deb-src\nURIs: http://src.example/debian\n\nTypes: deb-src deb\nURIs: http://first.example/ubuntu\n  http://second.example/debian\n",
		}, want: "http://second.example/debian"},
		{name: "sources.list before the directory", files: map[string]string{
			"sources.list":             "deb http://main.example/debian bookworm main\n",
			"sources.list.d/a.list":    "deb http://dir.example/debian bookworm main\n",
			"sources.list.d/b.sources": "Types: deb\nURIs: http://b.example/debian\n",
		}, want: "http://main.example/debian"},
		{name: "directory in name order", files: map[string]string{
			"sources.list.d/b.list":    "deb http://b.example/debian bookworm main\n",
			"sources.list.d/a.sources": "Types: deb\nURIs: http://a.example/debian\n",
		}, want: "http://a.example/debian"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755)
			for n, body := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, ok := mirrorFromSources(dir)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("got %q %v, want %q", got, ok, tt.want)
			}
		})
	}
}

// mirrorServer serves the Release file of one suite on loopback.
func mirrorServer(t *testing.T, suite string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debian/dists/"+suite+"/Release" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "Suite: "+suite)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/debian"
}

func TestCheckReachable(t *testing.T) {
	mirror := mirrorServer(t, "bookworm")
	// A loopback port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/debian"
	l.Close()
	local := t.TempDir()
	os.MkdirAll(filepath.Join(local, "dists/bookworm"), 0o755)
	os.WriteFile(filepath.Join(local, "dists/bookworm/Release"), []byte("Suite: bookworm\n"), 0o644)

	tests := []struct {
		name, mirror, suite string
		wantErr             error
		wantText            string
	}{
		{name: "present", mirror: mirror, suite: "bookworm"},
		{name: "missing suite", mirror: mirror, suite: "bookwrom", wantErr: errdefs.ErrNotFound, wantText: "not on mirror"},
		{name: "unreachable", mirror: closed, suite: "bookworm", wantText: "unreachable"},
		{name: "file present", mirror: "file://" + local, suite: "bookworm"},
		{name: "file missing", mirror: "file://" + local, suite: "trixie", wantErr: errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkReachable(context.Background(), tt.mirror, tt.suite)
			if tt.wantErr == nil && tt.wantText == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("err %v, want %v %q", err, tt.wantErr, tt.wantText)
			}
		})
	}
}

func TestFindDebootstrap(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	saved := debootstrapPaths
	defer func() { debootstrapPaths = saved }()
	debootstrapPaths = []string{filepath.Join(empty, "debootstrap")}
	_, err := findDebootstrap("")
	if !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), "apt-get install debootstrap") {
		t.Fatalf("missing: %v", err)
	}
	if _, err := findDebootstrap(filepath.Join(empty, "nope")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("named missing: %v", err)
	}
	bin := filepath.Join(empty, "debootstrap")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	if p, err := findDebootstrap(""); err != nil || p != bin {
		t.Fatalf("in PATH: %q %v", p, err)
	}
}

func TestDebootstrapArgs(t *testing.T) {
	tests := []struct {
		o    DebianOptions
		want string
	}{
		{DebianOptions{Suite: "bookworm", Mirror: "http://m/debian"}, "--variant=minbase --force-check-gpg bookworm /t http://m/debian"},
		{DebianOptions{Suite: "bookworm", Include: []string{"gcc", "libc6-dev"}, Mirror: "http://m/debian"}, "--variant=minbase --force-check-gpg --include=gcc,libc6-dev bookworm /t http://m/debian"},
	}
	for _, tt := range tests {
		if got := strings.Join(debootstrapArgs(tt.o, "/t"), " "); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestLineWriter(t *testing.T) {
	tests := []struct {
		name    string
		writes  []string
		out     string
		failure string
	}{
		{name: "lines split across writes", writes: []string{"I: Retr", "ieving\r\nI: Val", "idating\n"}, out: "I: Retrieving\nI: Validating\n", failure: "I: Retrieving; I: Validating"},
		{name: "errors win", writes: []string{"I: a\nE: Failed getting release file x\nI: b\nE: second\n"}, out: "I: a\nE: Failed getting release file x\nI: b\nE: second\n", failure: "Failed getting release file x; second"},
		{name: "unfinished last line", writes: []string{"a\nb\nc\nd"}, out: "a\nb\nc\nd\n", failure: "b; c; d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			w := &lineWriter{w: &b}
			for _, s := range tt.writes {
				w.Write([]byte(s))
			}
			w.Flush()
			if b.String() != tt.out {
				t.Errorf("out %q, want %q", b.String(), tt.out)
			}
			if f := w.Failure(); f != tt.failure {
				t.Errorf("failure %q, want %q", f, tt.failure)
			}
		})
	}
	// The tail is bounded.
	w := &lineWriter{}
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(w, "line %d\n", i)
	}
	if len(w.tail) != maxTail || w.tail[maxTail-1] != "line 999" {
		t.Errorf("tail: %d lines, last %q", len(w.tail), w.tail[len(w.tail)-1])
	}
}

// fakeDebootstrap writes a script standing in for debootstrap: it takes
// debootstrap's command line (… SUITE TARGET MIRROR) and runs body with
// $target set. It exercises Debian's own work — namespaces, streaming,
// trimming, import, clean-up — without the network.
func fakeDebootstrap(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "debootstrap")
	script := "#!/bin/sh\nset -e\nfor a; do suite=$target; target=$mirror; mirror=$a; done\n" + body
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

const fakeTree = `echo "I: Retrieving InRelease"
mkdir -p "$target/dev" "$target/etc" "$target/bin" "$target/var/lib/apt/lists/partial" "$target/var/cache/apt/archives/partial" "$target/tmp"
mknod "$target/dev/null" c 1 3
ln -s /proc/self/fd "$target/dev/fd"
echo "deb $mirror $suite main" > "$target/etc/apt-source"
echo nameserver 10.0.0.1 > "$target/etc/resolv.conf"
echo vm > "$target/etc/hostname"
echo pkg > "$target/var/cache/apt/archives/gcc_12_amd64.deb"
echo list > "$target/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_Release"
echo cache > "$target/var/cache/apt/pkgcache.bin"
cp /bin/sh "$target/bin/sh"
echo "I: Base system installed successfully." >&2
`

func TestDebianWithFakeDebootstrap(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, mknod)")
	}
	ctx := context.Background()
	s, err := storage.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tmp := t.TempDir()
	var progress bytes.Buffer
	info, err := Debian(ctx, s, DebianOptions{
		Include: []string{"gcc"}, Mirror: mirrorServer(t, "bookworm"), TmpDir: tmp,
		Debootstrap: fakeDebootstrap(t, fakeTree), Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	for _, want := range []string{"--variant=minbase --force-check-gpg --include=gcc bookworm", "I: Retrieving InRelease\n", "I: Base system installed successfully.\n", "Importing the tree as debian:bookworm\n"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
	if len(info.RepoTags) != 1 || info.RepoTags[0] != "docker.io/library/debian:bookworm" || len(info.Layers) != 1 {
		t.Fatalf("image: %+v", info)
	}
	cfg := info.Config.Config
	if strings.Join(cfg.Cmd, " ") != "bash" || len(cfg.Env) != 1 || !strings.HasPrefix(cfg.Env[0], "PATH=/usr/local/sbin:") {
		t.Errorf("config: %+v", cfg)
	}
	if h := info.Config.History; len(h) != 1 || !strings.Contains(h[0].CreatedBy, "debootstrap --variant=minbase --include=gcc bookworm") {
		t.Errorf("history: %+v", h)
	}
	dirs, err := s.LayerDirs(ctx, "debian:bookworm")
	if err != nil || len(dirs) != 1 {
		t.Fatalf("layer dirs %v %v", dirs, err)
	}
	root := dirs[0]
	for p, want := range map[string]bool{
		"bin/sh": true, "etc/apt-source": true, "var/lib/apt/lists/partial": true, "var/cache/apt/archives/partial": true, "tmp": true, "dev": true,
		"dev/null": false, "dev/fd": false, "etc/resolv.conf": false, "var/cache/apt/archives/gcc_12_amd64.deb": false,
		"var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_Release": false, "var/cache/apt/pkgcache.bin": false,
	} {
		if _, err := os.Lstat(filepath.Join(root, p)); (err == nil) != want {
			t.Errorf("%s: present %v, want %v", p, err == nil, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(b) != "localhost\n" {
		t.Errorf("hostname %q", b)
	}
	assertEmpty(t, tmp)
}

func TestDebianFailureCleansUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces)")
	}
	ctx := context.Background()
	s, err := storage.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tmp := t.TempDir()
	bin := fakeDebootstrap(t, `mkdir -p "$target/etc"; echo x > "$target/etc/x"
echo "I: Retrieving InRelease"
echo "E: Couldn't find these debs: gcc-99" >&2
exit 1
`)
	_, err = Debian(ctx, s, DebianOptions{Mirror: mirrorServer(t, "bookworm"), TmpDir: tmp, Debootstrap: bin})
	if err == nil || !strings.Contains(err.Error(), "Couldn't find these debs: gcc-99") || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("err %v", err)
	}
	assertEmpty(t, tmp)
	if _, err := s.Image(ctx, "debian:bookworm"); !errdefs.IsNotFound(err) {
		t.Errorf("image after a failure: %v", err)
	}
	// An unreachable suite fails before debootstrap runs.
	_, err = Debian(ctx, s, DebianOptions{Suite: "sid", Mirror: mirrorServer(t, "bookworm"), TmpDir: tmp, Debootstrap: bin})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing suite: %v", err)
	}
}

// TestDebianCancel ends the context while "debootstrap" holds a mount in
// the tree and has a child running: Debian returns at once, and no
// process, mount or directory is left.
func TestDebianCancel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, mount)")
	}
	s, err := storage.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tmp := t.TempDir()
	marker := fmt.Sprintf("%d", 900000+time.Now().UnixNano()%99999)
	bin := fakeDebootstrap(t, `mkdir -p "$target/proc"
mount -t tmpfs tmpfs "$target/proc"
sleep `+marker+` &
echo ready
wait
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	pw := writerFunc(func(p []byte) {
		if strings.Contains(string(p), "ready") {
			close(ready)
		}
	})
	errc := make(chan error, 1)
	go func() {
		_, err := Debian(ctx, s, DebianOptions{Mirror: mirrorServer(t, "bookworm"), TmpDir: tmp, Debootstrap: bin, Progress: pw})
		errc <- err
	}()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("ended early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("fake debootstrap not ready")
	}
	// The tmpfs is in debootstrap's mount namespace only.
	if m := mountsUnder(t, tmp); len(m) != 0 {
		t.Errorf("debootstrap's mounts visible on the host: %v", m)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want canceled", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Debian did not return after the cancel")
	}
	assertEmpty(t, tmp)
	if m := mountsUnder(t, tmp); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if p := processesWith(t, "sleep "+marker); len(p) != 0 {
		t.Errorf("processes left: %v", p)
	}
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in %s: %s", dir, e.Name())
	}
}

func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, f[4])
		}
	}
	return out
}

func processesWith(t *testing.T, cmdline string) []string {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})), cmdline) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestDebootstrapNamespaceDropsMounts: what is mounted under the Unmount
// directories (sandboxes of running containers) and containers' overlays
// elsewhere are gone in debootstrap's mount namespace, so that it cannot
// keep them busy, and stay on the host; other mounts stay in the
// namespace, and so does an overlay the build's directory lies on.
func TestDebootstrapNamespaceDropsMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts, namespaces)")
	}
	base := t.TempDir()
	mount := func(kind, dir, opts string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount(kind, dir, kind, 0, opts); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	}
	overlay := func(dir string) {
		t.Helper()
		l, u, w := dir+".lower", dir+".upper", dir+".work"
		for _, d := range []string{l, u, w} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		mount("overlay", dir, "lowerdir="+l+",upperdir="+u+",workdir="+w)
	}
	under := filepath.Join(base, "data", "sandbox") // under an Unmount dir
	other := filepath.Join(base, "other")           // kept
	ovl := filepath.Join(base, "ovl")               // another container's overlay
	build := filepath.Join(base, "build")           // an overlay the build needs
	mount("tmpfs", under, "size=64k")
	mount("tmpfs", other, "size=64k")
	overlay(ovl)
	overlay(build)
	var seen bytes.Buffer
	out := &lineWriter{w: &seen}
	err := runDebootstrap(context.Background(), "/bin/cat", []string{"/proc/self/mountinfo"},
		[]string{filepath.Join(base, "data")}, filepath.Join(build, "tmp"), out)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.ReadFile("/proc/self/mountinfo")
	for dir, want := range map[string]bool{under: false, ovl: false, other: true, build: true} {
		if got := strings.Contains(seen.String(), " "+dir+" "); got != want {
			t.Errorf("%s mounted in debootstrap's namespace: %v, want %v", dir, got, want)
		}
		if !strings.Contains(string(host), " "+dir+" ") {
			t.Errorf("%s was unmounted on the host", dir)
		}
	}
}
