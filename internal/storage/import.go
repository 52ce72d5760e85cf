package storage

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/storage/archive/compression"
	"github.com/silo-containers/silo/internal/storage/image"
)

// ImportOptions describe the image Import makes.
type ImportOptions struct {
	Config  ocispec.ImageConfig // Cmd, Env, WorkingDir…
	Created time.Time           // default: now; fix it for reproducible IDs
	Author  string
	Comment string // history comment
}

// Import makes a one-layer OCI image from a plain rootfs tarball (gzip,
// zstd or uncompressed; stored as given) and tags it ref. The tar is read
// once: it streams into the content store and the unpack together.
func (s *Store) Import(ctx context.Context, rootfs io.Reader, ref string, opts ImportOptions) (ImageInfo, error) {
	n, err := image.Normalize(ref)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("import %s: %w", ref, err)
	}
	info, err := s.importLayer(ctx, rootfs, n, opts)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("import %s: %w", ref, err)
	}
	return info, nil
}

func (s *Store) importLayer(ctx context.Context, rootfs io.Reader, ref string, opts ImportOptions) (ImageInfo, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()

	br := bufio.NewReaderSize(rootfs, 64<<10)
	head, _ := br.Peek(4)
	comp := compression.Detect(head)
	w, err := s.content.Writer(ctx, "", -1)
	if err != nil {
		return ImageInfo{}, err
	}
	defer w.Close()
	tee := io.TeeReader(br, w)
	dr, err := compression.DecompressAs(tee, comp)
	if err != nil {
		return ImageInfo{}, err
	}
	l, err := s.layers.Unpack(ctx, nil, "", dr)
	dr.Close()
	if err != nil {
		return ImageInfo{}, err
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return ImageInfo{}, err
	}
	blob, err := w.Commit()
	if err != nil {
		return ImageInfo{}, err
	}
	mt := ocispec.MediaTypeImageLayer
	switch comp {
	case compression.Gzip:
		mt = ocispec.MediaTypeImageLayerGzip
	case compression.Zstd:
		mt = ocispec.MediaTypeImageLayerZstd
	}

	created := opts.Created
	if created.IsZero() {
		created = time.Now().UTC()
	}
	cfg := ocispec.Image{
		Created:  &created,
		Author:   opts.Author,
		Platform: image.Platform,
		Config:   opts.Config,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.DiffID}},
		History:  []ocispec.History{{Created: &created, CreatedBy: "silo import", Comment: opts.Comment}},
	}
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
		Layers:    []ocispec.Descriptor{{MediaType: mt, Digest: blob.Digest, Size: blob.Size}},
	}
	m.SchemaVersion = 2
	raw, err := json.Marshal(m)
	if err != nil {
		return ImageInfo{}, err
	}
	top := ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	rec, err := s.addImageLocked(ctx, contentSource{s}, top, raw, []string{ref}, nil)
	if err != nil {
		return ImageInfo{}, err
	}
	return s.info(ctx, rec, s.db.Refs(rec.Manifest))
}
