package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/storage/image"
)

// RegistryOptions configure talking to a registry.
type RegistryOptions struct {
	Username, Password string // basic auth; empty for anonymous
	// Insecure allows plain HTTP (always allowed for localhost and 127.x).
	Insecure bool
	// Progress receives layer download progress (Pull only).
	Progress ProgressFunc
	// Transport overrides the HTTP transport (tests).
	Transport http.RoundTripper
}

func (o RegistryOptions) parse(ref string) (name.Reference, []remote.Option, error) {
	var nopts []name.Option
	if o.Insecure || image.IsLocalRegistry(ref) {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, nil, err
	}
	auth := authn.Anonymous
	if o.Username != "" || o.Password != "" {
		auth = &authn.Basic{Username: o.Username, Password: o.Password}
	}
	ropts := []remote.Option{remote.WithAuth(auth), remote.WithUserAgent("silo")}
	if o.Transport != nil {
		ropts = append(ropts, remote.WithTransport(o.Transport))
	}
	return r, ropts, nil
}

// Pull fetches image ref (linux/amd64 from an index) from its registry,
// downloading and unpacking layers in parallel, and tags it.
func (s *Store) Pull(ctx context.Context, ref string, opts RegistryOptions) (ImageInfo, error) {
	n, err := image.Normalize(ref)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	r, ropts, err := opts.parse(n)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	ropts = append(ropts, remote.WithContext(ctx))
	d, err := remote.Get(r, ropts...)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("pull %s: %w", ref, explainAuth(r, opts, err))
	}
	top := ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size}
	if dr, ok := r.(name.Digest); ok && dr.DigestStr() != top.Digest.String() {
		return ImageInfo{}, fmt.Errorf("pull %s: registry sent manifest %s: digest mismatch", ref, top.Digest)
	}
	src := &remoteSource{repo: r.Context(), opts: ropts}
	rec, err := s.addImage(ctx, src, top, d.Manifest, []string{n}, opts.Progress)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("pull %s: %w", ref, explainAuth(r, opts, err))
	}
	info, err := s.info(ctx, rec, s.db.Refs(rec.Manifest))
	if err != nil {
		return ImageInfo{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	return info, nil
}

// remoteSource reads blobs and manifests of one repository.
type remoteSource struct {
	repo name.Repository
	opts []remote.Option
}

func (r *remoteSource) Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	ref := r.repo.Digest(desc.Digest.String())
	if image.IsManifest(desc.MediaType) || image.IsIndex(desc.MediaType) {
		d, err := remote.Get(ref, r.opts...)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(d.Manifest)), nil
	}
	l, err := remote.Layer(ref, r.opts...)
	if err != nil {
		return nil, err
	}
	return l.Compressed()
}

// Push uploads image ref to its registry.
func (s *Store) Push(ctx context.Context, ref string, opts RegistryOptions) error {
	n, err := image.Normalize(ref)
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	rec, err := s.resolve(ctx, ref)
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, unwrapSame(err))
	}
	img, err := s.v1Image(ctx, rec)
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	r, ropts, err := opts.parse(n)
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	if err := remote.Write(r, img, append(ropts, remote.WithContext(ctx))...); err != nil {
		return fmt.Errorf("push %s: %w", ref, explainAuth(r, opts, err))
	}
	return nil
}

// v1Image presents a stored image to go-containerregistry (push, save)
// without copying: blobs are read from the content store as they are sent.
func (s *Store) v1Image(ctx context.Context, rec record) (v1.Image, error) {
	raw, err := s.content.ReadAll(ctx, rec.Manifest, image.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	cfg, err := s.content.ReadAll(ctx, rec.Config, image.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&storeImage{s: s, ctx: ctx, rec: rec, manifest: raw, config: cfg})
}

type record = image.Record

type storeImage struct {
	s        *Store
	ctx      context.Context
	rec      record
	manifest []byte
	config   []byte
}

func (i *storeImage) RawConfigFile() ([]byte, error) { return i.config, nil }
func (i *storeImage) MediaType() (types.MediaType, error) {
	return types.MediaType(i.rec.MediaType), nil
}
func (i *storeImage) RawManifest() ([]byte, error) { return i.manifest, nil }

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h.String() == i.rec.Config.String() {
		return &storeLayer{s: i.s, ctx: i.ctx, d: i.rec.Config, size: int64(len(i.config))}, nil
	}
	for _, l := range i.rec.Layers {
		if l.Blob.String() == h.String() {
			return &storeLayer{s: i.s, ctx: i.ctx, d: l.Blob, size: l.Size, mt: l.MediaType}, nil
		}
	}
	return nil, fmt.Errorf("image %s has no blob %s", i.rec.Manifest, h)
}

type storeLayer struct {
	s    *Store
	ctx  context.Context
	d    digest.Digest
	size int64
	mt   string
}

func (l *storeLayer) Digest() (v1.Hash, error)            { return v1.NewHash(l.d.String()) }
func (l *storeLayer) Size() (int64, error)                { return l.size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return types.MediaType(l.mt), nil }
func (l *storeLayer) Compressed() (io.ReadCloser, error)  { return l.s.content.Open(l.ctx, l.d) }
