package storage

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/archive/compression"
	"github.com/silo-containers/silo/internal/storage/image"
	"github.com/silo-containers/silo/internal/storage/layer"
)

// source is where an ingest reads blobs from: a registry, a tarball, an
// OCI layout directory, or the content store itself. Every byte it returns
// is verified against the descriptor's digest before it is used.
type source interface {
	Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// Progress reports a layer download. Current and Total are blob bytes.
type Progress struct {
	Digest  digest.Digest
	Current int64
	Total   int64
	Done    bool
}

// ProgressFunc receives progress; it is called from several goroutines.
type ProgressFunc func(Progress)

// fetchSmall returns a manifest or config blob, from the content store or
// else from src (stored, verified).
func (s *Store) fetchSmall(ctx context.Context, src source, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > image.MaxManifestSize {
		return nil, fmt.Errorf("blob %s: %d bytes is too large for a manifest or config: %w", desc.Digest, desc.Size, errdefs.ErrInvalidArgument)
	}
	if b, err := s.content.ReadAll(ctx, desc.Digest, image.MaxManifestSize); err == nil {
		return b, nil
	}
	rc, err := src.Open(ctx, desc)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", desc.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, image.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", desc.Digest, err)
	}
	if _, err := s.content.PutBytes(ctx, b, desc.Digest); err != nil {
		return nil, err
	}
	return b, nil
}

// addImage brings the image described by top (a manifest or an index) from
// src into the store, unpacks its layers in parallel, and records it under
// refs. raw is top's bytes when the caller already has them.
func (s *Store) addImage(ctx context.Context, src source, top ocispec.Descriptor, raw []byte, refs []string, progress ProgressFunc) (image.Record, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	return s.addImageLocked(ctx, src, top, raw, refs, progress)
}

// addImageLocked is addImage for a caller that holds gcMu for reading
// (it stored blobs that only this image will reference).
func (s *Store) addImageLocked(ctx context.Context, src source, top ocispec.Descriptor, raw []byte, refs []string, progress ProgressFunc) (image.Record, error) {
	var err error
	if raw == nil {
		if raw, err = s.fetchSmall(ctx, src, top); err != nil {
			return image.Record{}, err
		}
	}
	if got := digest.FromBytes(raw); got != top.Digest {
		return image.Record{}, fmt.Errorf("manifest digest mismatch: expected %s, actual %s: %w", top.Digest, got, errdefs.ErrInvalidArgument)
	}
	mt := top.MediaType
	if mt == "" {
		if mt, err = image.DetectMediaType(raw); err != nil {
			return image.Record{}, err
		}
	}
	desc := top
	if image.IsIndex(mt) {
		idx, err := image.ParseIndex(raw)
		if err != nil {
			return image.Record{}, err
		}
		if desc, err = image.SelectPlatform(idx, image.Platform); err != nil {
			return image.Record{}, err
		}
		if raw, err = s.fetchSmall(ctx, src, desc); err != nil {
			return image.Record{}, err
		}
		if got := digest.FromBytes(raw); got != desc.Digest {
			return image.Record{}, fmt.Errorf("manifest digest mismatch: expected %s, actual %s: %w", desc.Digest, got, errdefs.ErrInvalidArgument)
		}
		if mt, err = image.DetectMediaType(raw); err != nil {
			return image.Record{}, err
		}
	}
	if !image.IsManifest(mt) {
		return image.Record{}, fmt.Errorf("manifest %s: media type %q is not an image manifest: %w", desc.Digest, mt, errdefs.ErrInvalidArgument)
	}
	m, err := image.ParseManifest(raw)
	if err != nil {
		return image.Record{}, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	cfgRaw, err := s.fetchSmall(ctx, src, m.Config)
	if err != nil {
		return image.Record{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	cfg, err := image.ParseConfig(cfgRaw)
	if err != nil {
		return image.Record{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return image.Record{}, fmt.Errorf("manifest %s: %d layers but config has %d diff ids: %w",
			desc.Digest, len(m.Layers), len(cfg.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
	}
	if cfg.OS != "" && cfg.OS != image.Platform.OS {
		return image.Record{}, fmt.Errorf("image is for %s/%s, not %s/%s: %w", cfg.OS, cfg.Architecture,
			image.Platform.OS, image.Platform.Architecture, errdefs.ErrInvalidArgument)
	}

	chain := layer.ChainIDs(cfg.RootFS.DiffIDs)
	rec := image.Record{Manifest: desc.Digest, MediaType: mt, Config: m.Config.Digest, Created: time.Now().UTC()}
	for i, l := range m.Layers {
		rec.Layers = append(rec.Layers, image.LayerRecord{Blob: l.Digest, MediaType: l.MediaType, Size: l.Size,
			DiffID: cfg.RootFS.DiffIDs[i], ChainID: chain[i]})
	}
	if err := s.fetchLayers(ctx, src, rec, m.Layers, progress); err != nil {
		return image.Record{}, err
	}
	if _, err := s.content.PutBytes(ctx, raw, desc.Digest); err != nil {
		return image.Record{}, err
	}
	if err := s.db.Put(rec, refs...); err != nil {
		return image.Record{}, fmt.Errorf("record image %s: %w", desc.Digest, err)
	}
	return rec, nil
}

// fetchLayers downloads missing layer blobs and unpacks missing layers, up
// to s.jobs at a time. A blob that must be downloaded and unpacked is read
// once: the download streams into the content store and the unpack at the
// same time, and both are verified (blob digest, DiffID) at the end.
func (s *Store) fetchLayers(ctx context.Context, src source, rec image.Record, descs []ocispec.Descriptor, progress ProgressFunc) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, max(s.jobs, 1))
	var wg sync.WaitGroup
	errs := make([]error, len(rec.Layers))
	for i := range rec.Layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			parents := make([]digest.Digest, i)
			for j := range i {
				parents[j] = rec.Layers[j].ChainID
			}
			errs[i] = s.fetchLayer(ctx, src, rec.Layers[i], descs[i], parents, progress)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && err != context.Canceled {
			return fmt.Errorf("layer %d (%s): %w", i, rec.Layers[i].Blob, err)
		}
	}
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("layer %d (%s): %w", i, rec.Layers[i].Blob, err)
		}
	}
	return nil
}

func (s *Store) fetchLayer(ctx context.Context, src source, l image.LayerRecord, desc ocispec.Descriptor, parents []digest.Digest, progress ProgressFunc) error {
	_, statErr := s.content.Stat(ctx, l.Blob)
	needBlob := statErr != nil
	needLayer := !s.layers.Has(l.ChainID)
	if !needBlob && !needLayer {
		if progress != nil {
			progress(Progress{Digest: l.Blob, Current: l.Size, Total: l.Size, Done: true})
		}
		return nil
	}
	if !needBlob {
		f, err := s.content.Open(ctx, l.Blob)
		if err != nil {
			return err
		}
		defer f.Close()
		return s.unpackBlob(ctx, f, parents, l.DiffID)
	}

	rc, err := src.Open(ctx, desc)
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	defer rc.Close()
	w, err := s.content.Writer(ctx, l.Blob, l.Size)
	if err != nil {
		return err
	}
	defer w.Close()
	var r io.Reader = rc
	if progress != nil {
		r = &progressReader{r: rc, p: Progress{Digest: l.Blob, Total: l.Size}, fn: progress}
	}
	tee := io.TeeReader(r, w)
	if needLayer {
		if err := s.unpackBlob(ctx, tee, parents, l.DiffID); err != nil {
			return err
		}
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if _, err := w.Commit(); err != nil {
		return err
	}
	if progress != nil {
		progress(Progress{Digest: l.Blob, Current: l.Size, Total: l.Size, Done: true})
	}
	return nil
}

func (s *Store) unpackBlob(ctx context.Context, r io.Reader, parents []digest.Digest, diffID digest.Digest) error {
	dr, _, err := compression.Decompress(r)
	if err != nil {
		return err
	}
	defer dr.Close()
	_, err = s.layers.Unpack(ctx, parents, diffID, dr)
	return err
}

type progressReader struct {
	r    io.Reader
	p    Progress
	fn   ProgressFunc
	last time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.p.Current += int64(n)
	if now := time.Now(); now.Sub(p.last) > 100*time.Millisecond {
		p.last = now
		p.fn(p.p)
	}
	return n, err
}

// contentSource serves blobs already in the content store.
type contentSource struct{ s *Store }

func (c contentSource) Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return c.s.content.Open(ctx, desc.Digest)
}
