package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/archive"
	"github.com/silo-containers/silo/internal/storage/image"
)

// CommitOptions describe the image Commit makes.
type CommitOptions struct {
	// Parent is the image the new one extends (reference or ID); "" starts
	// from scratch.
	Parent string
	// Dir, when set, is an overlay upper directory: its diff (whiteouts
	// included, see archive.Diff) becomes the new top layer. An empty
	// directory adds no layer.
	Dir string
	// Config is the new image's runtime configuration (replaces the
	// parent's), with docker's extension (Healthcheck, OnBuild, Shell).
	Config dockerspec.DockerOCIImageConfig
	// CreatedBy and Comment go into the history entry; Author into the
	// config.
	CreatedBy, Comment, Author string
	// Created defaults to now.
	Created time.Time
	// Refs tag the new image.
	Refs []string
	// Holder, when set, holds the new image for that holder id (see
	// Hold) in the same critical section that adds it, so no GC can
	// come between (the build cache holds its images this way).
	Holder string
}

// Commit makes an image from Parent plus the diff of Dir (if any) with
// Config, appending one history entry (empty_layer when no layer was
// added). The layer is stored uncompressed and unpacked into the layer
// store in one pass over the tree.
func (s *Store) Commit(ctx context.Context, opts CommitOptions) (ImageInfo, error) {
	refs := make([]string, 0, len(opts.Refs))
	for _, r := range opts.Refs {
		n, err := image.Normalize(r)
		if err != nil {
			return ImageInfo{}, fmt.Errorf("commit: %w", err)
		}
		refs = append(refs, n)
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	info, err := s.commitLocked(ctx, opts, refs)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("commit: %w", err)
	}
	return info, nil
}

func (s *Store) commitLocked(ctx context.Context, opts CommitOptions, refs []string) (ImageInfo, error) {
	created := opts.Created
	if created.IsZero() {
		created = time.Now().UTC()
	}
	cfg := dockerspec.DockerOCIImage{Image: ocispec.Image{Platform: image.Platform, RootFS: ocispec.RootFS{Type: "layers"}}}
	var parent image.Record
	if opts.Parent != "" {
		rec, err := s.resolve(ctx, opts.Parent)
		if err != nil {
			return ImageInfo{}, fmt.Errorf("parent %s: %w", opts.Parent, unwrapSame(err))
		}
		if cfg, err = s.dockerConfig(ctx, rec); err != nil {
			return ImageInfo{}, fmt.Errorf("parent %s: %w", opts.Parent, err)
		}
		parent = rec
	}
	cfg.Created, cfg.Config = &created, opts.Config
	cfg.Image.Config = opts.Config.ImageConfig
	if opts.Author != "" {
		cfg.Author = opts.Author
	}
	if cfg.RootFS.Type == "" {
		cfg.RootFS.Type = "layers"
	}
	layers := make([]ocispec.Descriptor, 0, len(parent.Layers)+1)
	for _, l := range parent.Layers {
		layers = append(layers, ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Blob, Size: l.Size})
	}
	hist := ocispec.History{Created: &created, CreatedBy: opts.CreatedBy, Comment: opts.Comment, EmptyLayer: true}
	if opts.Dir != "" {
		empty, err := dirEmpty(opts.Dir)
		if err != nil {
			return ImageInfo{}, err
		}
		if !empty {
			desc, diffID, err := s.commitLayer(ctx, parent, opts.Dir)
			if err != nil {
				return ImageInfo{}, err
			}
			layers = append(layers, desc)
			cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
			hist.EmptyLayer = false
		}
	}
	cfg.History = append(cfg.History, hist)
	cfgRaw, err := json.Marshal(cfg)
	if err != nil {
		return ImageInfo{}, err
	}
	cfgInfo, err := s.content.PutBytes(ctx, cfgRaw, "")
	if err != nil {
		return ImageInfo{}, err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgInfo.Digest, Size: cfgInfo.Size},
		Layers:    layers,
	}
	m.SchemaVersion = 2
	raw, err := json.Marshal(m)
	if err != nil {
		return ImageInfo{}, err
	}
	top := ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	rec, err := s.addImageLocked(ctx, contentSource{s}, top, raw, refs, nil)
	if err != nil {
		return ImageInfo{}, err
	}
	if opts.Holder != "" {
		if err := s.db.Hold(opts.Holder, rec.Manifest); err != nil {
			return ImageInfo{}, fmt.Errorf("hold %s for %s: %w", rec.Config, opts.Holder, err)
		}
	}
	return s.info(ctx, rec, s.db.Refs(rec.Manifest))
}

// DockerConfig returns the config of image ref with docker's extension
// fields (Healthcheck, OnBuild, Shell), which ImageInfo.Config, an OCI
// config, does not carry.
func (s *Store) DockerConfig(ctx context.Context, ref string) (dockerspec.DockerOCIImage, error) {
	rec, err := s.resolve(ctx, ref)
	if err != nil {
		return dockerspec.DockerOCIImage{}, fmt.Errorf("image %s: %w", ref, unwrapSame(err))
	}
	cfg, err := s.dockerConfig(ctx, rec)
	if err != nil {
		return dockerspec.DockerOCIImage{}, fmt.Errorf("image %s: %w", ref, err)
	}
	return cfg, nil
}

func (s *Store) dockerConfig(ctx context.Context, rec image.Record) (dockerspec.DockerOCIImage, error) {
	raw, err := s.content.ReadAll(ctx, rec.Config, image.MaxManifestSize)
	if err != nil {
		return dockerspec.DockerOCIImage{}, err
	}
	// ParseConfig validates; the second decode keeps the extension.
	if _, err := image.ParseConfig(raw); err != nil {
		return dockerspec.DockerOCIImage{}, err
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return dockerspec.DockerOCIImage{}, fmt.Errorf("config %s: %w", rec.Config, err)
	}
	return cfg, nil
}

// commitLayer streams the diff of dir into the content store and the
// layer store at once and returns the blob's descriptor and DiffID.
func (s *Store) commitLayer(ctx context.Context, parent image.Record, dir string) (ocispec.Descriptor, digest.Digest, error) {
	parents := make([]digest.Digest, len(parent.Layers))
	for i, l := range parent.Layers {
		if !s.layers.Has(l.ChainID) {
			return ocispec.Descriptor{}, "", fmt.Errorf("parent layer %s: %w", l.ChainID, errdefs.ErrNotFound)
		}
		parents[i] = l.ChainID
	}
	w, err := s.content.Writer(ctx, "", -1)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer w.Close()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := archive.Diff(ctx, dir, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	l, uerr := s.layers.Unpack(ctx, parents, "", io.TeeReader(pr, w))
	pr.CloseWithError(fmt.Errorf("unpack ended"))
	derr := <-done
	if derr != nil {
		return ocispec.Descriptor{}, "", derr
	}
	if uerr != nil {
		return ocispec.Descriptor{}, "", uerr
	}
	blob, err := w.Commit()
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	// Uncompressed: the blob digest is the DiffID.
	if blob.Digest != l.DiffID {
		return ocispec.Descriptor{}, "", fmt.Errorf("layer blob %s does not match its diff id %s", blob.Digest, l.DiffID)
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: blob.Digest, Size: blob.Size}, l.DiffID, nil
}

func dirEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", dir, err)
	}
	return len(names) == 0, nil
}
