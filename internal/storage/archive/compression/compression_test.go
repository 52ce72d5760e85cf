package compression

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// sample is compressible data with some noise, 4 MiB.
func sample() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 4<<20)
	for i := range b {
		if i%7 == 0 {
			b[i] = byte(r.IntN(256))
		} else {
			b[i] = byte('a' + i%26)
		}
	}
	return b
}

func TestDetectAndDecompress(t *testing.T) {
	data := sample()
	var gz, zs bytes.Buffer
	gw := stdgzip.NewWriter(&gz)
	gw.Write(data)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(data)
	zw.Close()
	for _, tc := range []struct {
		name string
		in   []byte
		want Compression
	}{
		{"plain", data, Uncompressed},
		{"gzip", gz.Bytes(), Gzip},
		{"zstd", zs.Bytes(), Zstd},
		{"empty", nil, Uncompressed},
	} {
		if got := Detect(tc.in); got != tc.want {
			t.Errorf("%s: Detect = %v, want %v", tc.name, got, tc.want)
		}
		rc, c, err := Decompress(bytes.NewReader(tc.in))
		if err != nil || c != tc.want {
			t.Fatalf("%s: Decompress: %v, %v", tc.name, c, err)
		}
		out, err := io.ReadAll(rc)
		rc.Close()
		want := data
		if tc.in == nil {
			want = nil
		}
		if err != nil || !bytes.Equal(out, want) {
			t.Errorf("%s: %d bytes back (%v), want %d", tc.name, len(out), err, len(want))
		}
	}
}

// BenchmarkDecompress compares gzip readers (why Decompress uses pgzip).
func BenchmarkDecompress(b *testing.B) {
	data := sample()
	var gz bytes.Buffer
	zw := stdgzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	readers := map[string]func(io.Reader) (io.ReadCloser, error){
		"compress-gzip": func(r io.Reader) (io.ReadCloser, error) { return stdgzip.NewReader(r) },
		"pgzip":         func(r io.Reader) (io.ReadCloser, error) { return DecompressAs(r, Gzip) },
	}
	for name, open := range readers {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				rc, err := open(bytes.NewReader(gz.Bytes()))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, rc)
				rc.Close()
			}
		})
	}
}
