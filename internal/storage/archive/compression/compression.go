// Package compression detects and undoes the compression of layer blobs
// and archives (gzip, zstd). It is apart from package archive so that the
// unpacker links no decompressor: the silo CLI unpacks plain tar streams
// (cp) and need not pay the decompressors' initialisation at every start.
package compression

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression is the compression of a layer blob.
type Compression int

// The compressions Detect knows.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "none"
}

var (
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Detect reports the compression of a stream from its first bytes.
func Detect(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd
	}
	return Uncompressed
}

// Decompress sniffs the compression of r and returns a reader of the
// uncompressed bytes. Gzip uses pgzip, which inflates on its own goroutine
// with read-ahead (BenchmarkDecompress on the 100 MB layer: pgzip 222 MB/s,
// klauspost gzip 221 MB/s, compress/gzip 171 MB/s; the own goroutine lets
// inflate overlap hashing and extraction);
// zstd uses klauspost/compress. Close releases the decoder; it does not close r.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, Uncompressed, fmt.Errorf("read compression header: %w", err)
	}
	c := Detect(head)
	rc, err := decompressor(br, c)
	return rc, c, err
}

// DecompressAs returns a reader of the uncompressed bytes of r, which is
// compressed with c.
func DecompressAs(r io.Reader, c Compression) (io.ReadCloser, error) {
	return decompressor(r, c)
}

func decompressor(r io.Reader, c Compression) (io.ReadCloser, error) {
	switch c {
	case Gzip:
		zr, err := pgzip.NewReaderN(r, 1<<20, 4)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case Zstd:
		// The window cap refuses frames that ask for huge buffers (a
		// memory bomb rather than a disk bomb).
		zr, err := zstd.NewReader(r, zstd.WithDecoderMaxWindow(1<<27), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zstdCloser{zr}, nil
	}
	return io.NopCloser(r), nil
}

type zstdCloser struct{ *zstd.Decoder }

func (z zstdCloser) Close() error { z.Decoder.Close(); return nil }
