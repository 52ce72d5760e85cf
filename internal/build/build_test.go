package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown instruction", "FROM busybox\nFOO bar\n", "dockerfile line 2: unknown instruction: FOO"},
		{"no from", "RUN true\n", "no build stage"},
		{"empty run", "FROM busybox\n\nRUN\n", "dockerfile line 3: RUN requires at least one argument"},
		{"bad flag", "FROM a\nCOPY --bogus=1 a b\n", "dockerfile line 2: unknown flag: --bogus"},
		{"buildkit only", "FROM a\nRUN --mount=type=cache,target=/x true\n", "dockerfile line 2: RUN --mount"},
		{"empty", "# nothing\n", "file with no instructions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err %v, want %q (invalid argument)", err, tt.want)
			}
		})
	}
}

func TestParseForms(t *testing.T) {
	df, err := Parse([]byte("# escape=`\nARG BASE=busybox\nFROM ${BASE} AS b\nRUN echo a `\n  b\nRUN <<EOF\necho hi\nEOF\nFROM b\nCOPY --from=b /x /y\n"))
	if err != nil {
		t.Fatal(err)
	}
	if df.Escape != '`' || len(df.Stages) != 2 || len(df.MetaArgs) != 1 || df.Stages[0].Name != "b" {
		t.Fatalf("parsed %+v", df)
	}
}

func TestKeyAndCache(t *testing.T) {
	if Key("ab", "c") == Key("a", "bc") {
		t.Fatal("keys of different parts collide")
	}
	if a, b := Key("a", "b"), Key("a", "b"); a != b {
		t.Fatal("key not deterministic")
	}
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := Key("x")
	if id, err := c.Get(k); err != nil || id != "" {
		t.Fatalf("empty cache: %q %v", id, err)
	}
	if err := c.Put(k, "sha256:abc"); err != nil {
		t.Fatal(err)
	}
	if id, _ := c.Get(k); id != "sha256:abc" {
		t.Fatalf("get %q", id)
	}
	if all, _ := c.Images(); all[k] != "sha256:abc" {
		t.Fatalf("images %v", all)
	}
	if err := c.Delete(k); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get("../../etc/passwd"); err == nil {
		t.Fatal("a key that is a path was accepted")
	}
}

// contextDir makes a context with a file, a directory, an inside symlink
// and symlinks out of it.
func contextDir(t testing.TB) string {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "src", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hi"), 0o644)
	os.WriteFile(filepath.Join(dir, "src", "sub", "a.txt"), []byte("a"), 0o644)
	os.Symlink("index.html", filepath.Join(dir, "inside"))
	os.Symlink("/etc/passwd", filepath.Join(dir, "abs"))
	os.Symlink("../../etc", filepath.Join(dir, "src", "up"))
	os.Symlink("sub/../../index.html", filepath.Join(dir, "src", "ok"))
	return dir
}

func TestContextContainment(t *testing.T) {
	dir := contextDir(t)
	tests := []struct {
		path    string
		want    string // relative result, or "" with wantErr
		wantErr string
	}{
		{"index.html", "index.html", ""},
		{"/index.html", "index.html", ""},
		{"./src/../index.html", "index.html", ""},
		{"inside", "index.html", ""},
		{"src/ok", "index.html", ""},
		{"src/sub/a.txt", "src/sub/a.txt", ""},
		{"../x", "", "outside the build context: ../x"},
		{"/../../etc/passwd", "", "outside the build context"},
		{"src/../../x", "", "outside the build context"},
		{"abs", "", "symlink abs points out of the build context"},
		{"src/up/passwd", "", "symlink src/up points out of the build context"},
		{"missing", "missing", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := resolveInContext(dir, tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("%s: err %v, want %q", tt.path, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != filepath.Join(dir, tt.want) {
				t.Fatalf("%s: %q %v, want %q", tt.path, got, err, tt.want)
			}
		})
	}
}

func TestResolveInImageRoot(t *testing.T) {
	dir := contextDir(t)
	// In an image root an absolute symlink is clamped, not refused.
	got, err := resolve(dir, "abs", false)
	if err != nil || got != "etc/passwd" {
		t.Fatalf("got %q %v", got, err)
	}
	if got, err := resolve(dir, "../../x", false); err != nil || got != "x" {
		t.Fatalf("got %q %v", got, err)
	}
}

func TestDockerignore(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("*.log\nsecret/\n!keep.log\nDockerfile\n"), 0o644)
	m, err := loadDockerignore(dir, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]bool{
		"a.log": true, "keep.log": false, "secret/key": true, "secret": true,
		"index.html": false, "Dockerfile": false, ".dockerignore": false,
	}
	for p, want := range tests {
		if got := m.Excluded(p); got != want {
			t.Errorf("%s: excluded %v, want %v", p, got, want)
		}
	}
}

func TestNormalizePort(t *testing.T) {
	tests := []struct{ in, want string }{
		{"80", "80/tcp"}, {"53/udp", "53/udp"}, {"8000-8002/TCP", "8000-8002/tcp"}, {"x", ""}, {"80/icmp", ""}, {"70000", ""},
	}
	for _, tt := range tests {
		got, err := normalizePort(tt.in)
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("%s: %q %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestExtractContextHostile(t *testing.T) {
	mk := func(hdrs ...*tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			tw.WriteHeader(h)
		}
		tw.Close()
		return buf.Bytes()
	}
	tests := []struct {
		name string
		tar  []byte
	}{
		{"dotdot", mk(&tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644})},
		{"symlink then through it", mk(
			&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/", Mode: 0o777},
			&tar.Header{Name: "l/../../etc/x", Typeflag: tar.TypeReg, Mode: 0o644})},
		{"device", mk(&tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o644})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := ExtractContext(context.Background(), bytes.NewReader(tt.tar), dir)
			if err == nil {
				t.Fatal("hostile context accepted")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("err %v is not an invalid argument", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"FROM busybox\nRUN echo hi\n",
		"# escape=`\nFROM a AS b\nCOPY --from=b --chown=1:1 --chmod=755 x* /y/\n",
		"ARG A=1\nFROM ${A}\nRUN <<EOF\nx\nEOF\nHEALTHCHECK --interval=5s CMD true\nONBUILD RUN x\n",
		"FROM a\nEXPOSE 80/udp\nENV a=b c=d\nLABEL x=y\nSHELL [\"/bin/ash\",\"-c\"]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		df, err := Parse(b)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("parse error is not an invalid argument: %v", err)
			}
			return
		}
		if len(df.Stages) == 0 {
			t.Fatal("parsed without a stage")
		}
	})
}

func FuzzContextPath(f *testing.F) {
	for _, s := range []string{"a", "../a", "/../../etc", "src/up/x", "abs", "a/./b/../c", "*.txt"} {
		f.Add(s)
	}
	dir := contextDir(f)
	f.Fuzz(func(t *testing.T, p string) {
		got, err := resolveInContext(dir, p)
		if err != nil {
			return
		}
		rel, rerr := filepath.Rel(dir, got)
		if rerr != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			t.Fatalf("%q resolved out of the context: %s", p, got)
		}
		// Whatever exists on the way must really be inside: no symlink
		// in the result leads out.
		if real, err := filepath.EvalSymlinks(got); err == nil {
			rdir, _ := filepath.EvalSymlinks(dir)
			if r, _ := filepath.Rel(rdir, real); r == ".." || strings.HasPrefix(r, "../") {
				t.Fatalf("%q resolved through a symlink out of the context: %s", p, real)
			}
		}
	})
}

// FuzzExtractContext feeds arbitrary bytes (seeded with hostile tars) to
// the context unpacker: it may refuse them, but nothing may appear
// outside the target directory.
func FuzzExtractContext(f *testing.F) {
	mk := func(hdrs ...*tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			tw.WriteHeader(h)
			if h.Size > 0 {
				tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
			}
		}
		tw.Close()
		return buf.Bytes()
	}
	f.Add(mk(&tar.Header{Name: "Dockerfile", Typeflag: tar.TypeReg, Mode: 0o644, Size: 12}))
	f.Add(mk(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/"}, &tar.Header{Name: "l/escape", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}))
	f.Add(mk(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, &tar.Header{Name: "d/../../escape", Typeflag: tar.TypeReg, Size: 1}))
	f.Add(mk(&tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "ctx")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_ = ExtractContext(context.Background(), bytes.NewReader(b), dir)
		ents, _ := os.ReadDir(parent)
		if len(ents) != 1 || ents[0].Name() != "ctx" {
			t.Fatalf("the unpack wrote outside its directory: %v", ents)
		}
	})
}

func TestDirInLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (whiteouts, trusted xattrs)")
	}
	root := t.TempDir()
	top, mid, base := filepath.Join(root, "top"), filepath.Join(root, "mid"), filepath.Join(root, "base")
	for _, d := range []string{
		"base/www", "base/etc/conf", "base/gone", "base/hidden/sub", "mid/hidden", "base/usr",
		"top", "mid/newdir",
	} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.Symlink("usr", filepath.Join(base, "lnk"))
	os.WriteFile(filepath.Join(base, "file"), nil, 0o644)
	if err := unix.Mknod(filepath.Join(mid, "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(mid, "hidden"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	layers := []string{top, mid, base}
	tests := []struct {
		path          string
		exists, known bool
	}{
		{"/", true, true},
		{"/www", true, true},
		{"/etc/conf", true, true},
		{"/newdir", true, true},
		{"/missing", false, true},
		{"/gone", false, true},
		{"/hidden", true, true},
		{"/hidden/sub", false, true},
		{"/lnk", false, false},
		{"/file", false, false},
	}
	for _, tt := range tests {
		exists, known := dirInLayers(layers, tt.path)
		if exists != tt.exists || known != tt.known {
			t.Errorf("%s: exists %v known %v, want %v %v", tt.path, exists, known, tt.exists, tt.known)
		}
	}
}
