package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// upperTree makes a directory shaped like an overlay upper dir: files,
// a hardlink, a symlink, a whiteout (0/0 char device) and an opaque
// directory. Root only (mknod, trusted xattrs).
func upperTree(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mknod, trusted.* xattrs)")
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "etc", "hosts"), []byte("127.0.0.1 x\n"), 0o644))
	must(os.Link(filepath.Join(dir, "etc", "hosts"), filepath.Join(dir, "etc", "hosts.bak")))
	must(os.Symlink("/etc/hosts", filepath.Join(dir, "hostlink")))
	must(unix.Mknod(filepath.Join(dir, "etc", "gone"), unix.S_IFCHR, 0))
	must(os.MkdirAll(filepath.Join(dir, "www"), 0o750))
	must(unix.Setxattr(filepath.Join(dir, "www"), "trusted.overlay.opaque", []byte("y"), 0))
	must(os.WriteFile(filepath.Join(dir, "www", "index.html"), []byte("<h1>hi</h1>"), 0o600))
	must(unix.Setxattr(filepath.Join(dir, "www", "index.html"), "user.note", []byte("v"), 0))
	must(os.Chown(filepath.Join(dir, "www", "index.html"), 33, 34))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	return dir
}

type tarEntry struct {
	typ  byte
	link string
	body string
	uid  int
	mode int64
	pax  map[string]string
}

func readTar(t *testing.T, b []byte) (map[string]tarEntry, []string) {
	t.Helper()
	out := map[string]tarEntry{}
	var order []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, order
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out[hdr.Name] = tarEntry{typ: hdr.Typeflag, link: hdr.Linkname, body: string(body), uid: hdr.Uid, mode: hdr.Mode, pax: hdr.PAXRecords}
		order = append(order, hdr.Name)
	}
}

func TestDiffEntries(t *testing.T) {
	dir := upperTree(t)
	var buf bytes.Buffer
	if err := Diff(context.Background(), dir, &buf); err != nil {
		t.Fatal(err)
	}
	got, order := readTar(t, buf.Bytes())
	tests := []struct {
		name string
		typ  byte
		link string
		body string
	}{
		{"etc/", tar.TypeDir, "", ""},
		{"etc/.wh.gone", tar.TypeReg, "", ""},
		{"etc/hosts", tar.TypeReg, "", "127.0.0.1 x\n"},
		{"etc/hosts.bak", tar.TypeLink, "etc/hosts", ""},
		{"hostlink", tar.TypeSymlink, "/etc/hosts", ""},
		{"fifo", tar.TypeFifo, "", ""},
		{"www/", tar.TypeDir, "", ""},
		{"www/.wh..wh..opq", tar.TypeReg, "", ""},
		{"www/index.html", tar.TypeReg, "", "<h1>hi</h1>"},
	}
	for _, tt := range tests {
		e, ok := got[tt.name]
		if !ok {
			t.Errorf("%s: missing (have %v)", tt.name, order)
			continue
		}
		if e.typ != tt.typ || e.link != tt.link || e.body != tt.body {
			t.Errorf("%s: got type %q link %q body %q, want %q %q %q", tt.name, e.typ, e.link, e.body, tt.typ, tt.link, tt.body)
		}
	}
	if len(got) != len(tests) {
		t.Errorf("got %d entries %v, want %d", len(got), order, len(tests))
	}
	if e := got["www/index.html"]; e.uid != 33 || e.mode != 0o600 || e.pax["SCHILY.xattr.user.note"] != "v" {
		t.Errorf("www/index.html metadata: uid %d mode %o pax %v", e.uid, e.mode, e.pax)
	}
	for k := range got["www/"].pax {
		if k == "SCHILY.xattr.trusted.overlay.opaque" {
			t.Errorf("overlay xattr leaked into the tar")
		}
	}
	// Same tree, same stream.
	var again bytes.Buffer
	if err := Diff(context.Background(), dir, &again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two diffs of the same tree differ")
	}
}

// TestDiffRoundTrip unpacks a diff and checks the overlay form comes back.
func TestDiffRoundTrip(t *testing.T) {
	dir := upperTree(t)
	var buf bytes.Buffer
	if err := Diff(context.Background(), dir, &buf); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := Unpack(context.Background(), bytes.NewReader(buf.Bytes()), out, Options{AllowDevices: true}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(out, "etc", "gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout etc/gone: %v mode %o", err, st.Mode)
	}
	v := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(out, "www"), "trusted.overlay.opaque", v)
	if err != nil || string(v[:n]) != "y" {
		t.Errorf("www opaque: %v %q", err, v[:n])
	}
	var a, b unix.Stat_t
	unix.Lstat(filepath.Join(out, "etc", "hosts"), &a)
	unix.Lstat(filepath.Join(out, "etc", "hosts.bak"), &b)
	if a.Ino != b.Ino {
		t.Error("hardlink lost")
	}
	if l, _ := os.Readlink(filepath.Join(out, "hostlink")); l != "/etc/hosts" {
		t.Errorf("symlink: %q", l)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "www", "index.html")); string(b) != "<h1>hi</h1>" {
		t.Errorf("content: %q", b)
	}
	// And the unpacked tree diffs to the same stream.
	var again bytes.Buffer
	if err := Diff(context.Background(), out, &again); err != nil {
		t.Fatal(err)
	}
	e1, _ := readTar(t, buf.Bytes())
	e2, _ := readTar(t, again.Bytes())
	if len(e1) != len(e2) {
		t.Errorf("round trip: %d entries, then %d", len(e1), len(e2))
	}
}

func TestDiffRefusesRedirect(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	if err := unix.Setxattr(filepath.Join(dir, "d"), "trusted.overlay.redirect", []byte("/x"), 0); err != nil {
		t.Fatal(err)
	}
	if err := Diff(context.Background(), dir, io.Discard); err == nil {
		t.Fatal("diff of a redirected directory succeeded")
	}
}
