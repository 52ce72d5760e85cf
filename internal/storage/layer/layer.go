// Package layer is silo's read-only layer store (windowsfilter's layer
// folders): each image layer unpacked once, ready to be an overlayfs
// lowerdir.
//
// Layout, per layer, keyed by its chain ID (OCI image spec: the DiffID of the
// base layer, then sha256(parent chain ID + " " + DiffID)):
//
//	ROOT/<chainID-hex>/diff             the unpacked files (overlay lowerdir)
//	ROOT/<chainID-hex>/layer.json       chain ID, DiffID, parent, size
//	ROOT/<chainID-hex>/layerchain.json  parent layer dirs, top-most first
//
// Lifecycle of a layer directory:
//
//	.tmp-* (unpacking) ──rename──▶ <hex> (complete) ──rename──▶ .trash/* ──▶ gone
//
// An unpack happens in a .tmp-* directory, layerchain.json is written last,
// and the directory is renamed into place only when the DiffID matched: so a
// <hex> directory is complete by construction, and a crash leaves only .tmp-*
// directories, which Open moves to the trash. Trash is deleted on a
// background goroutine, never on a caller's path (deleting many files on
// this host's unjournaled ext4 slows later allocation; nobody should wait).
//
// Seams: Unpack takes an uncompressed tar stream; blobs, images and
// references are not known here. Which layers are still used is decided by
// the caller (the image store's GC), which calls Remove.
package layer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/archive"
)

// Layer describes an unpacked layer.
type Layer struct {
	ChainID digest.Digest `json:"chainID"`
	DiffID  digest.Digest `json:"diffID"`
	Parent  digest.Digest `json:"parent,omitempty"` // parent chain ID
	Size    int64         `json:"size"`             // bytes of file content
}

// ChainID returns the chain ID of a layer with diffID on top of parent
// (a chain ID, or "" for a base layer).
func ChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// ChainIDs returns the chain IDs of a stack of layers, base first.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	var parent digest.Digest
	for i, d := range diffIDs {
		parent = ChainID(parent, d)
		out[i] = parent
	}
	return out
}

// Store is a directory of unpacked layers. It is safe for concurrent use.
type Store struct {
	root string
	opts archive.Options

	mu       sync.Mutex
	inflight map[digest.Digest]*unpackCall

	trash chan struct{} // wakes the trash collector
	wg    sync.WaitGroup
	stop  chan struct{}
}

type unpackCall struct {
	done  chan struct{}
	layer Layer
	err   error
}

const (
	tmpPrefix = ".tmp-"
	trashDir  = ".trash"
)

// Open opens (creating it if needed) the layer store at root. opts are the
// unpack limits used for every layer. Leftovers of interrupted unpacks are
// moved to the trash and deleted in the background.
func Open(root string, opts archive.Options) (*Store, error) {
	s := &Store{root: root, opts: opts, inflight: map[digest.Digest]*unpackCall{},
		trash: make(chan struct{}, 1), stop: make(chan struct{})}
	if err := os.MkdirAll(filepath.Join(root, trashDir), 0o700); err != nil {
		return nil, fmt.Errorf("open layer store %s: %w", root, err)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("open layer store %s: %w", root, err)
	}
	for _, e := range ents {
		name := e.Name()
		stale := strings.HasPrefix(name, tmpPrefix)
		if !stale && name != trashDir {
			// A complete layer has its chain file; anything else is debris.
			_, err := os.Lstat(filepath.Join(root, name, "layerchain.json"))
			stale = err != nil
		}
		if stale {
			s.toTrash(filepath.Join(root, name))
		}
	}
	s.wg.Add(1)
	go s.collect()
	s.kick()
	return s, nil
}

// Close waits for background deletion to finish the current directory.
func (s *Store) Close() error {
	close(s.stop)
	s.wg.Wait()
	return nil
}

// Dir is the directory of layer chainID (it holds diff/ and the JSON files).
func (s *Store) Dir(chainID digest.Digest) string {
	return filepath.Join(s.root, chainID.Encoded())
}

// DiffDir is the unpacked tree of layer chainID.
func (s *Store) DiffDir(chainID digest.Digest) string {
	return filepath.Join(s.Dir(chainID), "diff")
}

// Get returns layer chainID.
func (s *Store) Get(chainID digest.Digest) (Layer, error) {
	if err := chainID.Validate(); err != nil {
		return Layer{}, fmt.Errorf("layer %q: %v: %w", chainID, err, errdefs.ErrInvalidArgument)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir(chainID), "layer.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return Layer{}, fmt.Errorf("layer %s: %w", chainID, errdefs.ErrNotFound)
	}
	if err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", chainID, err)
	}
	var l Layer
	if err := json.Unmarshal(b, &l); err != nil {
		return Layer{}, fmt.Errorf("layer %s: layer.json: %w", chainID, err)
	}
	return l, nil
}

// Has reports whether layer chainID is unpacked.
func (s *Store) Has(chainID digest.Digest) bool {
	_, err := os.Lstat(filepath.Join(s.Dir(chainID), "layerchain.json"))
	return err == nil
}

// Chain returns the diff dirs of layer chainID and its parents, top-most
// first: the overlay lowerdir list.
func (s *Store) Chain(chainID digest.Digest) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir(chainID), "layerchain.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("layer %s: %w", chainID, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", chainID, err)
	}
	var parents []string
	if err := json.Unmarshal(b, &parents); err != nil {
		return nil, fmt.Errorf("layer %s: layerchain.json: %w", chainID, err)
	}
	dirs := []string{s.DiffDir(chainID)}
	for _, p := range parents {
		dirs = append(dirs, filepath.Join(p, "diff"))
	}
	return dirs, nil
}

// Unpack unpacks the uncompressed tar stream r as a layer on top of parents
// (their chain IDs, base first; none for a base layer). Parents need not be
// unpacked yet: the layers of one image unpack in parallel, and the chain
// file names parent directories by chain ID. If diffID is known the stream must match
// it, and a layer already present (or being unpacked by another caller) is
// returned without reading r; if diffID is "" it is computed.
func (s *Store) Unpack(ctx context.Context, parents []digest.Digest, diffID digest.Digest, r io.Reader) (Layer, error) {
	if diffID == "" {
		return s.unpack(ctx, parents, "", r)
	}
	var parent digest.Digest
	if len(parents) > 0 {
		parent = parents[len(parents)-1]
	}
	chainID := ChainID(parent, diffID)
	s.mu.Lock()
	if c, ok := s.inflight[chainID]; ok {
		s.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return Layer{}, ctx.Err()
		}
		if c.err == nil {
			return c.layer, nil
		}
		// The other unpack failed (perhaps a bad stream): try ours.
		return s.Unpack(ctx, parents, diffID, r)
	}
	if l, err := s.Get(chainID); err == nil && s.Has(chainID) {
		s.mu.Unlock()
		return l, nil
	}
	c := &unpackCall{done: make(chan struct{})}
	s.inflight[chainID] = c
	s.mu.Unlock()

	c.layer, c.err = s.unpack(ctx, parents, diffID, r)
	s.mu.Lock()
	delete(s.inflight, chainID)
	s.mu.Unlock()
	close(c.done)
	return c.layer, c.err
}

func (s *Store) unpack(ctx context.Context, parents []digest.Digest, diffID digest.Digest, r io.Reader) (l Layer, err error) {
	var parent digest.Digest
	parentDirs := []string{}
	for i := len(parents) - 1; i >= 0; i-- {
		if err := parents[i].Validate(); err != nil {
			return Layer{}, fmt.Errorf("unpack layer: parent %q: %v: %w", parents[i], err, errdefs.ErrInvalidArgument)
		}
		parentDirs = append(parentDirs, s.Dir(parents[i]))
	}
	if len(parents) > 0 {
		parent = parents[len(parents)-1]
	}
	tmp := filepath.Join(s.root, tmpPrefix+randomHex())
	if err := os.MkdirAll(filepath.Join(tmp, "diff"), 0o755); err != nil {
		return Layer{}, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	defer func() {
		if err != nil {
			s.toTrash(tmp)
			s.kick()
		}
	}()
	res, err := archive.Unpack(ctx, r, filepath.Join(tmp, "diff"), s.opts)
	if err != nil {
		return Layer{}, fmt.Errorf("unpack layer %s: %w", orUnknown(diffID), err)
	}
	if diffID != "" && res.DiffID != diffID {
		return Layer{}, fmt.Errorf("unpack layer: diffID mismatch: expected %s, actual %s: %w", diffID, res.DiffID, errdefs.ErrInvalidArgument)
	}
	l = Layer{ChainID: ChainID(parent, res.DiffID), DiffID: res.DiffID, Parent: parent, Size: res.Files}
	if err := writeJSON(filepath.Join(tmp, "layer.json"), l); err != nil {
		return Layer{}, fmt.Errorf("unpack layer %s: %w", l.DiffID, err)
	}
	// The chain file is the completion mark: written last.
	if err := writeJSON(filepath.Join(tmp, "layerchain.json"), parentDirs); err != nil {
		return Layer{}, fmt.Errorf("unpack layer %s: %w", l.DiffID, err)
	}
	if err := os.Rename(tmp, s.Dir(l.ChainID)); err != nil {
		if s.Has(l.ChainID) {
			// Someone else unpacked the same layer meanwhile: use theirs.
			s.toTrash(tmp)
			s.kick()
			return l, nil
		}
		return Layer{}, fmt.Errorf("unpack layer %s: %w", l.DiffID, err)
	}
	return l, nil
}

func orUnknown(d digest.Digest) string {
	if d == "" {
		return "(diffID unknown)"
	}
	return d.String()
}

// Remove moves layer chainID to the trash; its files are deleted in the
// background. Callers make sure nothing uses it.
func (s *Store) Remove(chainID digest.Digest) error {
	if !s.Has(chainID) {
		return fmt.Errorf("remove layer %s: %w", chainID, errdefs.ErrNotFound)
	}
	if err := s.toTrash(s.Dir(chainID)); err != nil {
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	s.kick()
	return nil
}

// Walk calls fn for every complete layer.
func (s *Store) Walk(fn func(Layer) error) error {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return fmt.Errorf("walk layers: %w", err)
	}
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil || !s.Has(d) {
			continue
		}
		l, err := s.Get(d)
		if err != nil {
			continue
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) toTrash(dir string) error {
	return os.Rename(dir, filepath.Join(s.root, trashDir, filepath.Base(dir)+"-"+randomHex()))
}

func (s *Store) kick() {
	select {
	case s.trash <- struct{}{}:
	default:
	}
}

// collect deletes trashed directories, one at a time, until Close.
func (s *Store) collect() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.trash:
		}
		ents, _ := os.ReadDir(filepath.Join(s.root, trashDir))
		for _, e := range ents {
			select {
			case <-s.stop:
				return
			default:
			}
			os.RemoveAll(filepath.Join(s.root, trashDir, e.Name()))
		}
	}
}

// WaitTrash empties the trash now (tests, and an explicit GC that wants its
// space back before returning).
func (s *Store) WaitTrash() error {
	ents, err := os.ReadDir(filepath.Join(s.root, trashDir))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(s.root, trashDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func randomHex() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
