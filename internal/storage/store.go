// Package storage is silo's image store: the windowsfilter of silo. It ties
// the content store (verified blobs), the layer store (unpacked layers with
// layerchain.json) and the image metadata database together, and brings
// images in and out: registry pull and push, docker save / OCI layout load
// and save, plain rootfs import.
//
// Layout under ROOT:
//
//	content/blobs/sha256/<hex>   manifests, configs, compressed layers (package content)
//	content/ingest/              writes in progress
//	layers/<chainID-hex>/        diff/, layer.json, layerchain.json (package layer)
//	metadata.db                  references, image records, holds (package image)
//	tmp/                         spooled tarballs during Load
//
// Seams: callers get directories (LayerDirs, top-most first, ready to be
// overlay lowerdirs) and image information; the writable sandbox on top is
// internal/storage/sandbox's job. Archive parsing is internal/storage/archive.
//
// Concurrency: ingests (pull, load, import) hold gcMu for reading while they
// add blobs and layers that no record references yet; GC holds it for
// writing, so it never deletes what an ingest is about to reference. GC runs
// on its own goroutine after Remove, never on a container start path.
package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/archive"
	"github.com/silo-containers/silo/internal/storage/content"
	"github.com/silo-containers/silo/internal/storage/image"
	"github.com/silo-containers/silo/internal/storage/layer"
)

// Store is the image store. It is safe for concurrent use.
type Store struct {
	root    string
	content *content.Store
	layers  *layer.Store
	db      *image.DB

	gcMu   sync.RWMutex
	gcKick chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
	// parallel layer downloads/unpacks per image
	jobs int
}

// Option changes how Open sets up the store.
type Option func(*config)

type config struct {
	unpack archive.Options
	jobs   int
}

// WithUnpackLimits caps each layer's uncompressed size and entry count.
func WithUnpackLimits(maxSize int64, maxEntries int) Option {
	return func(c *config) { c.unpack.MaxSize, c.unpack.MaxEntries = maxSize, maxEntries }
}

// WithDevices allows or refuses device nodes in layers (default: allowed
// when running as root, the only case where they can be made).
func WithDevices(allow bool) Option { return func(c *config) { c.unpack.AllowDevices = allow } }

// WithJobs sets how many layers of one image download and unpack at once.
func WithJobs(n int) Option { return func(c *config) { c.jobs = n } }

// Open opens (creating it) the store at root.
func Open(ctx context.Context, root string, opts ...Option) (*Store, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	root0 := os.Geteuid() == 0
	cfg := config{unpack: archive.Options{AllowDevices: root0, NoChown: !root0}, jobs: 3}
	for _, o := range opts {
		o(&cfg)
	}
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	// Spooled tarballs of a crashed Load.
	if ents, err := os.ReadDir(filepath.Join(root, "tmp")); err == nil {
		for _, e := range ents {
			os.RemoveAll(filepath.Join(root, "tmp", e.Name()))
		}
	}
	s := &Store{root: root, gcKick: make(chan struct{}, 1), stop: make(chan struct{}), jobs: cfg.jobs}
	if s.content, err = content.Open(filepath.Join(root, "content")); err != nil {
		return nil, err
	}
	if s.layers, err = layer.Open(filepath.Join(root, "layers"), cfg.unpack); err != nil {
		return nil, err
	}
	if s.db, err = image.OpenDB(filepath.Join(root, "metadata.db")); err != nil {
		s.layers.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.backgroundGC()
	return s, nil
}

// Close stops background work and closes the database.
func (s *Store) Close() error {
	close(s.stop)
	s.wg.Wait()
	s.layers.Close()
	return s.db.Close()
}

// ImageInfo describes a stored image.
type ImageInfo struct {
	ID        digest.Digest // config digest, docker's image ID
	Manifest  digest.Digest
	MediaType string
	RepoTags  []string // normalized references
	Config    ocispec.Image
	Size      int64           // unpacked bytes of all layers
	Layers    []digest.Digest // chain IDs, base first
	DiffIDs   []digest.Digest
	Created   time.Time // when it entered the store
}

func (s *Store) info(ctx context.Context, rec image.Record, refs []string) (ImageInfo, error) {
	raw, err := s.content.ReadAll(ctx, rec.Config, image.MaxManifestSize)
	if err != nil {
		return ImageInfo{}, err
	}
	cfg, err := image.ParseConfig(raw)
	if err != nil {
		return ImageInfo{}, err
	}
	info := ImageInfo{ID: rec.Config, Manifest: rec.Manifest, MediaType: rec.MediaType, RepoTags: refs,
		Config: cfg, Created: rec.Created}
	for _, l := range rec.Layers {
		info.Layers = append(info.Layers, l.ChainID)
		info.DiffIDs = append(info.DiffIDs, l.DiffID)
		if ll, err := s.layers.Get(l.ChainID); err == nil {
			info.Size += ll.Size
		}
	}
	return info, nil
}

var hexID = regexp.MustCompile(`^(sha256:)?[0-9a-f]{12,64}$`)

// resolve finds an image by reference, image ID (config digest, full or a
// hex prefix of at least 12 digits) or manifest digest.
func (s *Store) resolve(ctx context.Context, ref string) (image.Record, error) {
	if hexID.MatchString(ref) {
		want := strings.TrimPrefix(ref, "sha256:")
		ents, err := s.db.List()
		if err != nil {
			return image.Record{}, err
		}
		var found []image.Record
		for _, e := range ents {
			if strings.HasPrefix(e.Config.Encoded(), want) || strings.HasPrefix(e.Manifest.Encoded(), want) {
				found = append(found, e.Record)
			}
		}
		switch {
		case len(found) == 1:
			return found[0], nil
		case len(found) > 1:
			return image.Record{}, fmt.Errorf("image id %s is ambiguous: %w", ref, errdefs.ErrInvalidArgument)
		}
		if !strings.HasPrefix(ref, "sha256:") && len(ref) != 64 {
			// Could still be a name made of hex digits.
			if n, err := image.Normalize(ref); err == nil {
				return s.db.Resolve(n)
			}
		}
		return image.Record{}, fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
	}
	n, err := image.Normalize(ref)
	if err != nil {
		return image.Record{}, err
	}
	return s.db.Resolve(n)
}

// Image returns information about the image ref names.
func (s *Store) Image(ctx context.Context, ref string) (ImageInfo, error) {
	rec, err := s.resolve(ctx, ref)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("image %s: %w", ref, unwrapSame(err))
	}
	info, err := s.info(ctx, rec, s.db.Refs(rec.Manifest))
	if err != nil {
		return ImageInfo{}, fmt.Errorf("image %s: %w", ref, err)
	}
	return info, nil
}

// unwrapSame avoids "image x: image x: not found" stutter.
func unwrapSame(err error) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return errdefs.ErrNotFound
	}
	return err
}

// List returns every image in the store.
func (s *Store) List(ctx context.Context) ([]ImageInfo, error) {
	ents, err := s.db.List()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]ImageInfo, 0, len(ents))
	for _, e := range ents {
		info, err := s.info(ctx, e.Record, e.Refs)
		if err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
		out = append(out, info)
	}
	return out, nil
}

// LayerDirs returns the unpacked layer directories of image ref, top-most
// first: the overlay lowerdir list (and windowsfilter's layerFolders order).
func (s *Store) LayerDirs(ctx context.Context, ref string) ([]string, error) {
	rec, err := s.resolve(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("layer dirs of %s: %w", ref, unwrapSame(err))
	}
	dirs := make([]string, 0, len(rec.Layers))
	for i := len(rec.Layers) - 1; i >= 0; i-- {
		id := rec.Layers[i].ChainID
		if !s.layers.Has(id) {
			return nil, fmt.Errorf("layer dirs of %s: layer %s: %w", ref, id, errdefs.ErrNotFound)
		}
		dirs = append(dirs, s.layers.DiffDir(id))
	}
	return dirs, nil
}

// Tag gives the image src the reference dst.
func (s *Store) Tag(ctx context.Context, src, dst string) error {
	rec, err := s.resolve(ctx, src)
	if err != nil {
		return fmt.Errorf("tag %s as %s: %w", src, dst, err)
	}
	n, err := image.Normalize(dst)
	if err != nil {
		return fmt.Errorf("tag %s as %s: %w", src, dst, err)
	}
	if err := s.db.Tag(n, rec.Manifest); err != nil {
		return fmt.Errorf("tag %s as %s: %w", src, dst, err)
	}
	return nil
}

// RemoveOptions tune Remove.
type RemoveOptions struct {
	// Force removes the last reference of an image that a container holds;
	// the image's files stay until the hold is released.
	Force bool
}

// Remove drops reference ref; given an image ID it drops every reference of
// that image. Blobs and layers that nothing references any more are freed by
// a GC that runs in the background (call GC to wait for it).
func (s *Store) Remove(ctx context.Context, ref string, opts ...RemoveOptions) error {
	var o RemoveOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	var refs []string
	if hexID.MatchString(ref) {
		rec, err := s.resolve(ctx, ref)
		if err != nil {
			return fmt.Errorf("remove %s: %w", ref, unwrapSame(err))
		}
		refs = s.db.Refs(rec.Manifest)
		if len(refs) == 0 {
			s.kickGC()
			return nil
		}
	} else {
		n, err := image.Normalize(ref)
		if err != nil {
			return fmt.Errorf("remove %s: %w", ref, err)
		}
		refs = []string{n}
	}
	for _, r := range refs {
		if _, err := s.db.Untag(r, o.Force); err != nil {
			return fmt.Errorf("remove %s: %w", ref, unwrapSame(err))
		}
	}
	s.kickGC()
	return nil
}

// Hold marks image ref as used by holder (a container id): GC keeps it and
// Remove of its last reference needs Force. Release undoes it.
func (s *Store) Hold(ctx context.Context, holder, ref string) error {
	rec, err := s.resolve(ctx, ref)
	if err != nil {
		return fmt.Errorf("hold %s for %s: %w", ref, holder, err)
	}
	if err := s.db.Hold(holder, rec.Manifest); err != nil {
		return fmt.Errorf("hold %s for %s: %w", ref, holder, err)
	}
	return nil
}

// Release drops holder's hold (idempotent).
func (s *Store) Release(ctx context.Context, holder string) error {
	if err := s.db.Release(holder); err != nil {
		return fmt.Errorf("release %s: %w", holder, err)
	}
	s.kickGC()
	return nil
}

// GCStats reports what a GC freed.
type GCStats struct {
	Images int
	Blobs  int
	Layers int
	Bytes  int64 // blob bytes plus unpacked layer bytes
}

// GC deletes image records nothing references or holds, then blobs and
// layers no remaining image needs. Layer directories go to the layer
// store's trash and are deleted in the background.
func (s *Store) GC(ctx context.Context) (GCStats, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var st GCStats
	live, removed, err := s.db.Prune()
	if err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	st.Images = len(removed)
	keepBlobs := map[digest.Digest]bool{}
	keepLayers := map[digest.Digest]bool{}
	for _, r := range live {
		for _, b := range r.Blobs() {
			keepBlobs[b] = true
		}
		for _, l := range r.Layers {
			keepLayers[l.ChainID] = true
		}
	}
	err = s.content.Walk(ctx, func(i content.Info) error {
		if !keepBlobs[i.Digest] {
			if err := s.content.Delete(ctx, i.Digest); err == nil {
				st.Blobs++
				st.Bytes += i.Size
			}
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	err = s.layers.Walk(func(l layer.Layer) error {
		if !keepLayers[l.ChainID] {
			if err := s.layers.Remove(l.ChainID); err == nil {
				st.Layers++
				st.Bytes += l.Size
			}
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	return st, nil
}

func (s *Store) kickGC() {
	select {
	case s.gcKick <- struct{}{}:
	default:
	}
}

func (s *Store) backgroundGC() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.gcKick:
			s.GC(context.Background())
		}
	}
}

// Usage is the disk space the store uses.
type Usage struct {
	Images     int
	Blobs      int
	BlobBytes  int64
	Layers     int
	LayerBytes int64 // file content of unpacked layers
}

// DiskUsage measures the store.
func (s *Store) DiskUsage(ctx context.Context) (Usage, error) {
	var u Usage
	ents, err := s.db.List()
	if err != nil {
		return u, fmt.Errorf("disk usage: %w", err)
	}
	u.Images = len(ents)
	err = s.content.Walk(ctx, func(i content.Info) error {
		u.Blobs++
		u.BlobBytes += i.Size
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("disk usage: %w", err)
	}
	err = s.layers.Walk(func(l layer.Layer) error {
		u.Layers++
		u.LayerBytes += l.Size
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("disk usage: %w", err)
	}
	return u, nil
}
