package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"
)

// ent describes one tar entry for generated test archives.
type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
	uid  int
	gid  int
	size int64 // header size when it should differ from len(body)
	pax  map[string]string
	maj  int64
	min  int64
}

var epoch = time.Unix(1_600_000_000, 0)

func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		if e.typ == 0 {
			e.typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if e.typ == tar.TypeDir {
				mode = 0o755
			}
		}
		size := int64(len(e.body))
		if e.size != 0 {
			size = e.size
		}
		if e.typ != tar.TypeReg {
			size = 0
		}
		hdr := &tar.Header{
			Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, Uid: e.uid, Gid: e.gid,
			Size: size, ModTime: epoch, PAXRecords: e.pax, Devmajor: e.maj, Devminor: e.min,
			Format: tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("write header %q: %v", e.name, err)
		}
		if e.size != 0 && e.size != int64(len(e.body)) {
			// A lying header: stop here, the stream is cut.
			tw.Flush()
			return buf.Bytes()
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// rawEntry writes one entry with an arbitrary type flag (which tar.Writer
// refuses for PAX and GNU meta entries), followed by a small regular file.
func rawEntry(t testing.TB, typ byte, name string, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(body)), Mode: 0o644, Format: tar.FormatUSTAR})
	tw.Write(body)
	tw.Flush()
	b := buf.Bytes()
	b[156] = typ
	// Recompute the header checksum (bytes 148..155, spaces while summing).
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	out := append([]byte(nil), b...)
	return append(out, mkTar(t, ent{name: "after", body: "x"})...)
}

func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec)
	for {
		l := len(fmt.Sprint(n)) + len(rec)
		if l == n {
			return fmt.Sprint(n) + rec
		}
		n = l
	}
}
