package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/silo-containers/silo/internal/storage/archive/compression"
)

// Hidden flags for bench/unpack-vs-tar.sh, which drives the compiled test
// binary: one run writes the benchmark layer, later runs unpack a file.
var (
	flagWriteLayer = flag.String("silo.write-layer", "", "write the benchmark layer tar (and .gz) to this path")
	flagUnpack     = flag.String("silo.unpack", "", "unpack this tar (or .gz) file into -silo.unpack-into")
	flagUnpackInto = flag.String("silo.unpack-into", "", "fresh directory for -silo.unpack")
)

var (
	benchOnce  sync.Once
	benchLayer []byte
)

// benchTar returns a ~100 MB layer: a tree of files of mixed sizes (mostly
// small, as in real images), with dirs, symlinks and hardlinks.
func benchTar(tb testing.TB) []byte {
	benchOnce.Do(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		// Text-like content (words from a small vocabulary) so that gzip
		// gets a realistic ratio of about 3.
		vocab := make([][]byte, 512)
		for i := range vocab {
			w := make([]byte, 2+rng.IntN(10))
			for j := range w {
				w[j] = byte(rng.IntN(256))
			}
			vocab[i] = w
		}
		payload := make([]byte, 0, 4<<20+16)
		for len(payload) < 4<<20 {
			payload = append(payload, vocab[rng.IntN(len(vocab))]...)
		}
		total, n := 0, 0
		for d := 0; total < 100<<20; d++ {
			dir := fmt.Sprintf("usr/lib/pkg%03d/sub%d/", d, d%7)
			tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch})
			for f := 0; f < 40 && total < 100<<20; f++ {
				var size int
				switch r := rng.IntN(100); {
				case r < 80:
					size = rng.IntN(4 << 10)
				case r < 98:
					size = 4<<10 + rng.IntN(60<<10)
				default:
					size = 64<<10 + rng.IntN(2<<20)
				}
				name := fmt.Sprintf("%sfile%d", dir, f)
				tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size), ModTime: epoch})
				off := rng.IntN(len(payload) - size + 1)
				tw.Write(payload[off : off+size])
				total += size
				n++
				if f%10 == 0 {
					tw.WriteHeader(&tar.Header{Name: name + ".sym", Typeflag: tar.TypeSymlink, Linkname: "file0", Mode: 0o777, ModTime: epoch})
				}
				if f%20 == 5 {
					tw.WriteHeader(&tar.Header{Name: name + ".hard", Typeflag: tar.TypeLink, Linkname: name, ModTime: epoch})
				}
			}
		}
		tw.Close()
		benchLayer = buf.Bytes()
	})
	return benchLayer
}

func BenchmarkUnpack100MB(b *testing.B) {
	data := benchTar(b)
	base := b.TempDir()
	opts := Options{NoChown: os.Geteuid() != 0}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// A fresh directory each time: deleting and re-creating many files
		// on this unjournaled ext4 makes allocation slow.
		dir := filepath.Join(base, fmt.Sprint(i))
		os.Mkdir(dir, 0o755)
		if _, err := Unpack(context.Background(), bytes.NewReader(data), dir, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBenchHelper is the script's entry point; it does nothing in a normal run.
func TestBenchHelper(t *testing.T) {
	switch {
	case *flagWriteLayer != "":
		data := benchTar(t)
		if err := os.WriteFile(*flagWriteLayer, data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(*flagWriteLayer + ".gz")
		if err != nil {
			t.Fatal(err)
		}
		zw := gzip.NewWriter(f)
		zw.Write(data)
		zw.Close()
		f.Close()
	case *flagUnpack != "":
		start := time.Now()
		f, err := os.Open(*flagUnpack)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rc, _, err := compression.Decompress(f)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := Unpack(context.Background(), rc, *flagUnpackInto, Options{NoChown: os.Geteuid() != 0}); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("silo-unpack-seconds %.4f\n", time.Since(start).Seconds())
	default:
		t.Skip("helper for bench/unpack-vs-tar.sh")
	}
}
