package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/storage/archive/compression"
)

func TestUnpackPreservesMetadata(t *testing.T) {
	needRoot(t)
	data := mkTar(t,
		ent{name: "./", typ: tar.TypeDir},
		ent{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		ent{name: "bin/su", body: "su", mode: 0o4755, uid: 0, gid: 0},
		ent{name: "bin/sg", body: "sg", mode: 0o2711, uid: 12, gid: 34},
		ent{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		ent{name: "bin/ln", typ: tar.TypeLink, link: "bin/su"},
		ent{name: "bin/sym", typ: tar.TypeSymlink, link: "/bin/su", uid: 5, gid: 6},
		ent{name: "etc/cap", body: "x", pax: map[string]string{
			"SCHILY.xattr.user.test":              "v1",
			"SCHILY.xattr.trusted.overlay.opaque": "y", // dropped: overlay xattrs never come from a tar
		}},
		ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666, maj: 1, min: 3},
		ent{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660, maj: 8, min: 0},
		ent{name: "run/fifo", typ: tar.TypeFifo, mode: 0o600},
		ent{name: "gone/.wh.file", body: ""},
		ent{name: "opq/", typ: tar.TypeDir},
		ent{name: "opq/.wh..wh..opq"},
		ent{name: ".wh..wh.plnk/", typ: tar.TypeDir}, // aufs bookkeeping: skipped
	)
	dir := t.TempDir()
	res, err := Unpack(context.Background(), bytes.NewReader(data), dir, Options{AllowDevices: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := digest.FromBytes(data); res.DiffID != want || res.Size != int64(len(data)) {
		t.Fatalf("diffID %s size %d, want %s %d", res.DiffID, res.Size, want, len(data))
	}
	st := func(p string) *unix.Stat_t {
		var s unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, p), &s); err != nil {
			t.Fatalf("lstat %s: %v", p, err)
		}
		return &s
	}
	checks := []struct {
		path     string
		mode     uint32
		uid, gid uint32
	}{
		{"bin/su", unix.S_IFREG | 0o4755, 0, 0},
		{"bin/sg", unix.S_IFREG | 0o2711, 12, 34},
		{"tmp", unix.S_IFDIR | 0o1777, 0, 0},
		{"bin/sym", unix.S_IFLNK | 0o777, 5, 6},
		{"dev/null", unix.S_IFCHR | 0o666, 0, 0},
		{"dev/sda", unix.S_IFBLK | 0o660, 0, 0},
		{"run/fifo", unix.S_IFIFO | 0o600, 0, 0},
		{"gone/file", unix.S_IFCHR, 0, 0},
	}
	for _, c := range checks {
		s := st(c.path)
		if s.Mode != c.mode || s.Uid != c.uid || s.Gid != c.gid {
			t.Errorf("%s: mode %o %d:%d, want %o %d:%d", c.path, s.Mode, s.Uid, s.Gid, c.mode, c.uid, c.gid)
		}
		if c.path != "tmp" && c.path != "gone/file" && s.Mtim.Sec != epoch.Unix() {
			t.Errorf("%s: mtime %d, want %d", c.path, s.Mtim.Sec, epoch.Unix())
		}
	}
	if s := st("tmp"); s.Mtim.Sec != epoch.Unix() {
		t.Errorf("dir mtime %d, want %d", s.Mtim.Sec, epoch.Unix())
	}
	if s := st("dev/null"); s.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null rdev %x", s.Rdev)
	}
	if st("bin/ln").Ino != st("bin/su").Ino {
		t.Error("bin/ln is not a hardlink of bin/su")
	}
	if l, _ := os.Readlink(filepath.Join(dir, "bin/sym")); l != "/bin/su" {
		t.Errorf("symlink target %q", l)
	}
	buf := make([]byte, 16)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "etc/cap"), "user.test", buf); err != nil || string(buf[:n]) != "v1" {
		t.Errorf("user.test xattr: %q %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(dir, "etc/cap"), "trusted.overlay.opaque", buf); err == nil {
		t.Error("trusted.overlay.opaque taken from the tar")
	}
	if n, err := unix.Lgetxattr(filepath.Join(dir, "opq"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr: %q %v", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".wh..wh.plnk")); err == nil {
		t.Error("aufs metadata dir extracted")
	}
}

func TestUnpackCompressed(t *testing.T) {
	data := mkTar(t, ent{name: "a", body: strings.Repeat("hello", 1000)})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	rc, c, err := compression.Decompress(&gz)
	if err != nil || c != compression.Gzip {
		t.Fatalf("decompress: %v %v", c, err)
	}
	defer rc.Close()
	res, err := Unpack(context.Background(), rc, t.TempDir(), Options{NoChown: os.Geteuid() != 0})
	if err != nil {
		t.Fatal(err)
	}
	if res.DiffID != digest.FromBytes(data) {
		t.Fatal("diffID of decompressed stream differs")
	}
}

// snapshot records every path under dir except skip, with size and mtime,
// to prove that an unpack changed nothing outside its target.
func snapshot(t testing.TB, dir, skip string) string {
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if p == skip {
			return filepath.SkipDir
		}
		fi, _ := d.Info()
		if p == dir {
			return nil // the sandbox dir's own mtime changes when skip is made
		}
		fmt.Fprintf(&b, "%s %v %d %d\n", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	return b.String()
}

func TestUnpackHostile(t *testing.T) {
	needRoot(t)
	// Each case runs in a fresh sandbox: out/victim is a file outside the
	// unpack dir, out/layer is the unpack dir. Absolute names in the cases
	// use @OUT@ for the sandbox path.
	big := strings.Repeat("x", 5000)
	cases := []struct {
		name    string
		ents    []ent
		raw     []byte // a hand-made stream instead of ents
		opts    Options
		wantErr string   // substring; "" means the tar is accepted
		exists  []string // paths (relative to layer) that must exist afterwards
		content map[string]string
	}{
		{name: "dotdot", ents: []ent{{name: "../victim", body: "pwned"}}, wantErr: `"../victim"`},
		{name: "dotdot nested", ents: []ent{{name: "a/b/../../../victim", body: "pwned"}}, wantErr: `".." component`},
		{name: "absolute path contained", ents: []ent{{name: "@OUT@/victim", body: "pwned"}},
			content: map[string]string{"@OUT@/victim": "pwned"}},
		{name: "symlink parent absolute", ents: []ent{
			{name: "lnk", typ: tar.TypeSymlink, link: "/"},
			{name: "lnk/victim", body: "pwned"},
		}, content: map[string]string{"victim": "pwned"}},
		{name: "symlink parent absolute dangling", ents: []ent{
			{name: "lnk", typ: tar.TypeSymlink, link: "@OUT@"},
			{name: "lnk/victim", body: "pwned"},
		}, wantErr: `entry "lnk/victim": open parent "lnk": no such file`},
		{name: "symlink parent relative", ents: []ent{
			{name: "d/lnk", typ: tar.TypeSymlink, link: "../../../.."},
			{name: "d/lnk/victim", body: "pwned"},
		}, content: map[string]string{"victim": "pwned"}},
		{name: "symlink chain to outside", ents: []ent{
			{name: "a", typ: tar.TypeSymlink, link: "b"},
			{name: "b", typ: tar.TypeSymlink, link: "../"},
			{name: "a/victim", body: "pwned"},
		}, content: map[string]string{"victim": "pwned"}},
		{name: "symlink outside kept as link", ents: []ent{
			{name: "out", typ: tar.TypeSymlink, link: "@OUT@/victim"},
		}, exists: []string{"out"}},
		{name: "file over symlink", ents: []ent{
			{name: "f", typ: tar.TypeSymlink, link: "@OUT@/victim"},
			{name: "f", body: "replaced"},
		}, content: map[string]string{"f": "replaced"}},
		{name: "dir over symlink", ents: []ent{
			{name: "d", typ: tar.TypeSymlink, link: "@OUT@"},
			{name: "d/", typ: tar.TypeDir},
			{name: "d/victim", body: "inside"},
		}, content: map[string]string{"d/victim": "inside"}},
		{name: "hardlink dotdot", ents: []ent{{name: "h", typ: tar.TypeLink, link: "../victim"}}, wantErr: `hardlink target "../victim"`},
		{name: "hardlink absolute outside", ents: []ent{{name: "h", typ: tar.TypeLink, link: "@OUT@/victim"}}, wantErr: "no such file"},
		{name: "hardlink through symlink", ents: []ent{
			{name: "l", typ: tar.TypeSymlink, link: "@OUT@"},
			{name: "h", typ: tar.TypeLink, link: "l/victim"},
		}, wantErr: "no such file"},
		{name: "hardlink to symlink to outside", ents: []ent{
			{name: "l", typ: tar.TypeSymlink, link: "@OUT@/victim"},
			{name: "h", typ: tar.TypeLink, link: "l"},
		}, exists: []string{"h"}},
		{name: "hardlink before target", ents: []ent{
			{name: "h", typ: tar.TypeLink, link: "later"},
			{name: "later", body: "x"},
		}, wantErr: `entry "h"`},
		{name: "hardlink to directory", ents: []ent{
			{name: "d/", typ: tar.TypeDir},
			{name: "h", typ: tar.TypeLink, link: "d"},
		}, wantErr: `entry "h"`},
		{name: "hardlink to root", ents: []ent{{name: "h", typ: tar.TypeLink, link: "./"}}, wantErr: "layer root"},
		{name: "device not allowed", ents: []ent{{name: "dev/sda", typ: tar.TypeBlock, maj: 8}}, wantErr: "device node not allowed"},
		{name: "char device not allowed", ents: []ent{{name: "mem", typ: tar.TypeChar, maj: 1, min: 1}}, wantErr: `entry "mem": device node not allowed`},
		{name: "fifo allowed", ents: []ent{{name: "p", typ: tar.TypeFifo}}, exists: []string{"p"}},
		{name: "huge name", ents: []ent{{name: big, body: "x"}}, wantErr: "longer than 4096"},
		{name: "huge component", ents: []ent{{name: big[:300], body: "x"}}, wantErr: "file name too long"},
		{name: "huge symlink target", ents: []ent{{name: "s", typ: tar.TypeSymlink, link: big}}, wantErr: "too long"},
		{name: "size bomb header", ents: []ent{{name: "bomb", body: "x", size: 1 << 40}}, opts: Options{MaxSize: 1 << 20}, wantErr: `entry "bomb": layer larger than`},
		{name: "too many entries", ents: func() []ent {
			var e []ent
			for i := range 20 {
				e = append(e, ent{name: fmt.Sprint("f", i)})
			}
			return e
		}(), opts: Options{MaxEntries: 10}, wantErr: "more than 10 entries"},
		{name: "duplicate file later wins", ents: []ent{{name: "f", body: "one"}, {name: "f", body: "two"}},
			content: map[string]string{"f": "two"}},
		{name: "dir replaces file", ents: []ent{{name: "x", body: "file"}, {name: "x/", typ: tar.TypeDir}, {name: "x/y", body: "y"}},
			content: map[string]string{"x/y": "y"}},
		{name: "file replaces dir", ents: []ent{{name: "x/", typ: tar.TypeDir}, {name: "x/y", body: "y"}, {name: "x", body: "file"}},
			content: map[string]string{"x": "file"}},
		{name: "symlink replaces dir then write through", ents: []ent{
			{name: "x/", typ: tar.TypeDir}, {name: "x/y", body: "y"},
			{name: "x", typ: tar.TypeSymlink, link: "@OUT@"},
			{name: "x/victim", body: "pwned"},
		}, wantErr: `entry "x/victim": open parent`},
		{name: "overlay xattr smuggled", ents: []ent{{name: "r", body: "x", pax: map[string]string{
			"SCHILY.xattr.trusted.overlay.redirect": "/etc", "SCHILY.xattr.trusted.overlay.metacopy": ""}}},
			exists: []string{"r"}},
		{name: "bad whiteout", ents: []ent{{name: "a/.wh..", body: ""}}, wantErr: "bad whiteout"},
		{name: "whiteout through symlink", ents: []ent{
			{name: "l", typ: tar.TypeSymlink, link: "@OUT@"},
			{name: "l/.wh.victim"},
		}, wantErr: `entry "l/.wh.victim"`},
		{name: "whiteout through symlink to root", ents: []ent{
			{name: "l", typ: tar.TypeSymlink, link: "/../.."},
			{name: "l/.wh.victim"},
		}, exists: []string{"victim"}},
		{name: "opaque through symlink", ents: []ent{
			{name: "l", typ: tar.TypeSymlink, link: "/.."},
			{name: "l/.wh..wh..opq"},
		}},
		{name: "huge pax header", raw: rawEntry(t, tar.TypeXHeader, "pax", []byte(paxRecord("silo.pad", strings.Repeat("p", 2<<20)))),
			wantErr: "read tar"},
		{name: "huge gnu long name", raw: rawEntry(t, tar.TypeGNULongName, "././@LongLink", bytes.Repeat([]byte("n"), 2<<20)),
			wantErr: "read tar"},
		// archive/tar cuts a GNU long name at its NUL: the ".." after it is never seen.
		{name: "nul in name", raw: rawEntry(t, tar.TypeGNULongName, "././@LongLink", []byte("a\x00b/../../victim\x00")),
			exists: []string{"a"}},
		{name: "unsupported type", ents: []ent{{name: "c", typ: tar.TypeCont}}, wantErr: "unsupported tar type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			victim := filepath.Join(out, "victim")
			os.WriteFile(victim, []byte("original"), 0o644)
			layer := filepath.Join(out, "layer")
			os.Mkdir(layer, 0o755)
			before := snapshot(t, out, layer)

			fix := func(s string) string { return strings.ReplaceAll(s, "@OUT@", out) }
			ents := append([]ent(nil), c.ents...)
			for i := range ents {
				ents[i].name, ents[i].link = fix(ents[i].name), fix(ents[i].link)
			}
			data := c.raw
			if data == nil {
				data = mkTar(t, ents...)
			}
			_, err := Unpack(context.Background(), bytes.NewReader(data), layer, c.opts)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("accepted, want error %q", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("error %q, want it to contain %q", err, c.wantErr)
			}
			if after := snapshot(t, out, layer); after != before {
				t.Fatalf("outside of the unpack dir changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if b, _ := os.ReadFile(victim); string(b) != "original" {
				t.Fatalf("victim changed: %q", b)
			}
			for _, p := range c.exists {
				if _, err := os.Lstat(filepath.Join(layer, fix(p))); err != nil {
					t.Errorf("%s missing in layer: %v", p, err)
				}
			}
			for p, want := range c.content {
				b, err := os.ReadFile(filepath.Join(layer, fix(p)))
				if err != nil || string(b) != want {
					t.Errorf("%s in layer: %q %v, want %q", p, b, err, want)
				}
			}
		})
	}
}

func TestUnpackGzipBomb(t *testing.T) {
	// 64 MiB of zeros compress to ~64 KiB; the cap stops the unpack after
	// a few MiB of output, whatever the ratio.
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: 64 << 20, Typeflag: tar.TypeReg})
	zero := make([]byte, 1<<20)
	for range 64 {
		tw.Write(zero)
	}
	tw.Close()
	zw.Close()
	rc, _, err := compression.Decompress(&gz)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = Unpack(context.Background(), rc, t.TempDir(), Options{MaxSize: 8 << 20, NoChown: true})
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("bomb accepted or wrong error: %v", err)
	}
}

func TestUnpackStreamCap(t *testing.T) {
	// Many small entries: file sizes stay small but the stream (headers)
	// grows past the cap.
	var ents []ent
	for i := range 3000 {
		ents = append(ents, ent{name: fmt.Sprintf("d/%d", i)})
	}
	_, err := Unpack(context.Background(), bytes.NewReader(mkTar(t, ents...)), t.TempDir(), Options{MaxSize: 1 << 20, NoChown: true})
	if err == nil || !strings.Contains(err.Error(), "uncompressed stream larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnpackTruncated(t *testing.T) {
	data := mkTar(t, ent{name: "a", body: strings.Repeat("a", 4096)})
	_, err := Unpack(context.Background(), bytes.NewReader(data[:1500]), t.TempDir(), Options{NoChown: true})
	if err == nil {
		t.Fatal("truncated tar accepted")
	}
}

func TestCleanName(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"a/b", "a/b"}, {"./a//b/", "a/b"}, {"/abs/x", "abs/x"}, {"./", ""}, {"a/./b", "a/b"},
	} {
		got, err := CleanName(c.in)
		if err != nil || got != c.out {
			t.Errorf("CleanName(%q) = %q, %v; want %q", c.in, got, err, c.out)
		}
	}
	for _, in := range []string{"..", "../a", "a/../../b", "a/..", "x\x00"} {
		if _, err := CleanName(in); err == nil {
			t.Errorf("CleanName(%q) accepted", in)
		}
	}
}

func TestDiffIDMatchesSha256(t *testing.T) {
	data := mkTar(t, ent{name: "a", body: strings.Repeat("z", chunkSize*3+17)})
	res, err := Unpack(context.Background(), bytes.NewReader(append(data, make([]byte, 10240)...)), t.TempDir(), Options{NoChown: true})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append(data, make([]byte, 10240)...))
	if res.DiffID.Encoded() != fmt.Sprintf("%x", sum) {
		t.Fatal("diffID does not cover trailing padding")
	}
}
