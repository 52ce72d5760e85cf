// Package content is silo's content-addressed blob store: manifests,
// configs and compressed layers, each kept once under its sha256 digest at
// ROOT/blobs/sha256/<hex>.
//
// Every write is verified: bytes are hashed while they stream into a temp
// file under ROOT/ingest, which is fsynced and renamed into place only when
// the digest (and size, when known) match; otherwise nothing is left behind.
// A crash leaves at most stale ingest files, which Open removes.
//
// Seams: the Store knows digests and bytes only; which blobs are still
// referenced is the image store's business (it calls Delete during GC).
package content

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Info describes a stored blob.
type Info struct {
	Digest digest.Digest
	Size   int64
}

// Store is a directory of verified blobs. It is safe for concurrent use:
// writers of the same digest race only on the final rename, which is atomic.
type Store struct {
	root string
}

// Open opens (creating it if needed) the store at root and removes ingest
// files left by a crash.
func Open(root string) (*Store, error) {
	s := &Store{root: root}
	for _, d := range []string{s.blobDir(), s.ingestDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open content store %s: %w", root, err)
		}
	}
	ents, err := os.ReadDir(s.ingestDir())
	if err != nil {
		return nil, fmt.Errorf("open content store %s: %w", root, err)
	}
	for _, e := range ents {
		os.Remove(filepath.Join(s.ingestDir(), e.Name()))
	}
	return s, nil
}

func (s *Store) blobDir() string   { return filepath.Join(s.root, "blobs", "sha256") }
func (s *Store) ingestDir() string { return filepath.Join(s.root, "ingest") }

// Path returns where blob d lives (whether or not it exists).
func (s *Store) Path(d digest.Digest) (string, error) {
	if err := validate(d); err != nil {
		return "", err
	}
	return filepath.Join(s.blobDir(), d.Encoded()), nil
}

func validate(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %v: %w", d, err, errdefs.ErrInvalidArgument)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %q: only sha256 is supported: %w", d, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Stat returns the size of blob d.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (Info, error) {
	p, err := s.Path(d)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob %s: %w", d, err)
	}
	return Info{Digest: d, Size: fi.Size()}, nil
}

// Open returns a reader of blob d. The *os.File also serves ReadAt and Seek.
func (s *Store) Open(ctx context.Context, d digest.Digest) (*os.File, error) {
	p, err := s.Path(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return f, nil
}

// ReadAll returns blob d if it is at most max bytes (manifests, configs).
func (s *Store) ReadAll(ctx context.Context, d digest.Digest, max int64) ([]byte, error) {
	f, err := s.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("blob %s: larger than %d bytes: %w", d, max, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

// Delete removes blob d.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	p, err := s.Path(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete blob %s: %w", d, errdefs.ErrNotFound)
		}
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// Walk calls fn for every blob; an error from fn stops the walk.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	ents, err := os.ReadDir(s.blobDir())
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		if err := fn(Info{Digest: d, Size: fi.Size()}); err != nil {
			return err
		}
	}
	return nil
}

// Put stores the bytes of r, which must hash to expected (if not empty)
// and be size bytes long (if size >= 0). It returns the blob's info; a blob
// already present is not rewritten, but r is still read and verified.
func (s *Store) Put(ctx context.Context, r io.Reader, expected digest.Digest, size int64) (Info, error) {
	w, err := s.Writer(ctx, expected, size)
	if err != nil {
		return Info{}, err
	}
	defer w.Close()
	if _, err := io.Copy(w, ctxReader{ctx, r}); err != nil {
		return Info{}, fmt.Errorf("write blob %s: %w", expected, err)
	}
	return w.Commit()
}

// PutBytes stores b; expected may be empty.
func (s *Store) PutBytes(ctx context.Context, b []byte, expected digest.Digest) (Info, error) {
	if expected == "" {
		expected = digest.FromBytes(b)
	}
	if _, err := s.Stat(ctx, expected); err == nil && digest.FromBytes(b) == expected {
		return Info{Digest: expected, Size: int64(len(b))}, nil
	}
	return s.Put(ctx, bytes.NewReader(b), expected, int64(len(b)))
}

// Writer is an ingest in progress. Write the bytes, then Commit; Close
// without Commit (or after a failed Commit) discards the temp file.
type Writer struct {
	s        *Store
	f        *os.File
	h        hash.Hash
	n        int64
	expected digest.Digest
	size     int64
	done     bool
}

// Writer starts an ingest. expected and size may be "" and -1 when unknown
// (a layer imported from a tar): the blob is then stored under whatever
// digest its bytes have.
func (s *Store) Writer(ctx context.Context, expected digest.Digest, size int64) (*Writer, error) {
	if expected != "" {
		if err := validate(expected); err != nil {
			return nil, err
		}
	}
	f, err := os.CreateTemp(s.ingestDir(), "ingest-")
	if err != nil {
		return nil, fmt.Errorf("ingest %s: %w", expected, err)
	}
	return &Writer{s: s, f: f, h: sha256.New(), expected: expected, size: size}, nil
}

func (w *Writer) Write(p []byte) (int, error) {
	if w.size >= 0 && w.n+int64(len(p)) > w.size {
		return 0, fmt.Errorf("blob %s: more than the expected %d bytes: %w", w.expected, w.size, errdefs.ErrInvalidArgument)
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Digest is the digest of the bytes written so far.
func (w *Writer) Digest() digest.Digest { return digest.NewDigest(digest.SHA256, w.h) }

// Commit verifies and publishes the blob.
func (w *Writer) Commit() (Info, error) {
	actual := w.Digest()
	if w.expected != "" && actual != w.expected {
		return Info{}, fmt.Errorf("blob digest mismatch: expected %s, actual %s: %w", w.expected, actual, errdefs.ErrInvalidArgument)
	}
	if w.size >= 0 && w.n != w.size {
		return Info{}, fmt.Errorf("blob %s: size %d, expected %d: %w", actual, w.n, w.size, errdefs.ErrInvalidArgument)
	}
	if err := w.f.Sync(); err != nil {
		return Info{}, fmt.Errorf("blob %s: fsync: %w", actual, err)
	}
	if err := w.f.Close(); err != nil {
		return Info{}, fmt.Errorf("blob %s: %w", actual, err)
	}
	dst := filepath.Join(w.s.blobDir(), actual.Encoded())
	if err := os.Chmod(w.f.Name(), 0o444); err != nil {
		return Info{}, fmt.Errorf("blob %s: %w", actual, err)
	}
	if err := os.Rename(w.f.Name(), dst); err != nil {
		return Info{}, fmt.Errorf("blob %s: %w", actual, err)
	}
	w.done = true
	return Info{Digest: actual, Size: w.n}, nil
}

// Close discards an uncommitted ingest.
func (w *Writer) Close() error {
	if !w.done {
		w.f.Close()
		os.Remove(w.f.Name())
		w.done = true
	}
	return nil
}

// ContextReader returns a reader that stops with ctx's error once ctx is
// done, so a long copy (a layer download, a tarball load) can be cancelled.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
