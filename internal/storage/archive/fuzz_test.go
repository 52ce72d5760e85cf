package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnpack feeds arbitrary bytes to Unpack: it must never panic, and never
// create or change anything outside its directory.
func FuzzUnpack(f *testing.F) {
	f.Add(mkTar(f, ent{name: "a/b", body: "x"}, ent{name: "l", typ: tar.TypeSymlink, link: "/"}, ent{name: "l/c", body: "y"}))
	f.Add(mkTar(f, ent{name: "../x"}, ent{name: "h", typ: tar.TypeLink, link: "a/b"}))
	f.Add(mkTar(f, ent{name: "d/", typ: tar.TypeDir}, ent{name: "d", typ: tar.TypeSymlink, link: ".."}, ent{name: "d/x", body: "z"}))
	f.Add(mkTar(f, ent{name: "w/.wh.x"}, ent{name: "w/.wh..wh..opq"}, ent{name: "p", typ: tar.TypeFifo}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		out := t.TempDir()
		victim := filepath.Join(out, "victim")
		os.WriteFile(victim, []byte("original"), 0o644)
		layer := filepath.Join(out, "layer")
		os.Mkdir(layer, 0o755)
		before := snapshot(t, out, layer)
		Unpack(context.Background(), bytes.NewReader(data), layer,
			Options{MaxSize: 1 << 20, MaxEntries: 1000, NoChown: os.Geteuid() != 0})
		if after := snapshot(t, out, layer); after != before {
			t.Fatalf("outside changed:\n%s\n%s", before, after)
		}
		if b, _ := os.ReadFile(victim); string(b) != "original" {
			t.Fatal("victim changed")
		}
	})
}
