package storage

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/archive/compression"
	"github.com/silo-containers/silo/internal/storage/content"
	"github.com/silo-containers/silo/internal/storage/image"
)

// Annotations naming an image in an OCI layout.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = ocispec.AnnotationRefName
)

// Load reads a `docker save` tarball or an OCI image layout tar (told apart
// by their index files) and stores every linux/amd64 image in it under the
// names it carries. It returns the references loaded, or the image IDs of
// images without one.
func (s *Store) Load(ctx context.Context, r io.Reader) ([]string, error) {
	f, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "load-")
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, content.ContextReader(ctx, r)); err != nil {
		return nil, fmt.Errorf("load: spool: %w", err)
	}
	src, err := indexTar(f)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var out []string
	switch {
	case src.has("index.json"):
		out, err = s.loadOCI(ctx, src)
	case src.has("manifest.json"):
		out, err = s.loadDocker(ctx, src)
	default:
		err = fmt.Errorf("neither an OCI layout (index.json) nor a docker save tarball (manifest.json): %w", errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return out, nil
}

// LoadLayout stores the images of an OCI image layout directory. Files are
// read through an os.Root: symlinks in the layout cannot lead outside it.
func (s *Store) LoadLayout(ctx context.Context, dir string) ([]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("load layout %s: %w", dir, err)
	}
	defer root.Close()
	out, err := s.loadOCI(ctx, dirSource{root})
	if err != nil {
		return nil, fmt.Errorf("load layout %s: %w", dir, err)
	}
	return out, nil
}

// fileSource is a tree of named files: a tar's members or a directory.
type fileSource interface {
	source
	openFile(name string) (io.ReadCloser, error)
}

func blobPath(d digest.Digest) string { return "blobs/" + string(d.Algorithm()) + "/" + d.Encoded() }

func readSmall(src fileSource, name string) ([]byte, error) {
	rc, err := src.openFile(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, image.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > image.MaxManifestSize {
		return nil, fmt.Errorf("%s: larger than %d bytes: %w", name, image.MaxManifestSize, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

func (s *Store) loadOCI(ctx context.Context, src fileSource) ([]string, error) {
	raw, err := readSmall(src, "index.json")
	if err != nil {
		return nil, err
	}
	idx, err := image.ParseIndex(raw)
	if err != nil {
		return nil, err
	}
	var out, skipped []string
	for _, m := range idx.Manifests {
		if p := m.Platform; p != nil && (p.OS != image.Platform.OS || p.Architecture != image.Platform.Architecture) {
			skipped = append(skipped, p.OS+"/"+p.Architecture)
			continue
		}
		var refs []string
		refName := m.Annotations[annotationContainerdName]
		if refName == "" {
			refName = m.Annotations[annotationRefName]
		}
		if refName != "" {
			n, err := image.Normalize(refName)
			if err != nil {
				return nil, fmt.Errorf("manifest %s: %w", m.Digest, err)
			}
			refs = append(refs, n)
		}
		rec, err := s.addImage(ctx, src, m, nil, refs, nil)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", m.Digest, err)
		}
		if len(refs) == 0 {
			refs = []string{rec.Config.String()}
		}
		out = append(out, refs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no linux/amd64 image (available: %s): %w", strings.Join(skipped, ", "), errdefs.ErrNotFound)
	}
	return out, nil
}

// dockerManifest is one entry of a docker save manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (s *Store) loadDocker(ctx context.Context, src *tarSource) ([]string, error) {
	raw, err := readSmall(src, "manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []dockerManifest
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("manifest.json: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var out []string
	for _, e := range entries {
		refs, err := s.loadDockerImage(ctx, src, e)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", e.Config, err)
		}
		out = append(out, refs...)
	}
	return out, nil
}

// loadDockerImage stores the blobs of one docker save entry as they are in
// the tar (compressed or not), writes a Docker schema2 manifest for them,
// then ingests that manifest like any other.
func (s *Store) loadDockerImage(ctx context.Context, src *tarSource, e dockerManifest) ([]string, error) {
	var refs []string
	for _, t := range e.RepoTags {
		n, err := image.Normalize(t)
		if err != nil {
			return nil, err
		}
		refs = append(refs, n)
	}
	cfgRaw, err := readSmall(src, e.Config)
	if err != nil {
		return nil, err
	}
	s.gcMu.RLock() // blobs stored here are referenced only once addImage records them
	defer s.gcMu.RUnlock()
	cfgInfo, err := s.content.PutBytes(ctx, cfgRaw, "")
	if err != nil {
		return nil, err
	}
	m := ocispec.Manifest{MediaType: image.MediaTypeDockerManifest,
		Config: ocispec.Descriptor{MediaType: image.MediaTypeDockerConfig, Digest: cfgInfo.Digest, Size: cfgInfo.Size}}
	m.SchemaVersion = 2
	for _, lp := range e.Layers {
		sr, err := src.section(lp)
		if err != nil {
			return nil, err
		}
		head := make([]byte, 4)
		n, _ := sr.ReadAt(head, 0)
		mt := image.MediaTypeDockerLayer
		switch compression.Detect(head[:n]) {
		case compression.Gzip:
			mt = image.MediaTypeDockerLayerGzip
		case compression.Zstd:
			mt = image.MediaTypeDockerLayerZstd
		}
		info, err := s.content.Put(ctx, sr, "", sr.Size())
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", lp, err)
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: info.Digest, Size: info.Size})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	top := ocispec.Descriptor{MediaType: image.MediaTypeDockerManifest, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	rec, err := s.addImageLocked(ctx, contentSource{s}, top, raw, refs, nil)
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		refs = []string{rec.Config.String()}
	}
	return refs, nil
}

// tarSource serves the members of a spooled tar file by name.
type tarSource struct {
	f       *os.File
	members map[string][2]int64 // offset, size
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func cleanMember(n string) string { return strings.TrimPrefix(path.Clean("/"+n), "/") }

func indexTar(f *os.File) (*tarSource, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	cr := &countReader{r: f}
	tr := tar.NewReader(cr)
	src := &tarSource{f: f, members: map[string][2]int64{}}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tarball: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		if len(src.members) > 1<<20 {
			return nil, fmt.Errorf("read tarball: too many entries: %w", errdefs.ErrInvalidArgument)
		}
		if hdr.Typeflag == tar.TypeReg {
			// archive/tar reads exactly the header blocks: the data
			// starts where the count stands.
			src.members[cleanMember(hdr.Name)] = [2]int64{cr.n, hdr.Size}
		}
	}
	return src, nil
}

func (t *tarSource) has(name string) bool { _, ok := t.members[name]; return ok }

func (t *tarSource) section(name string) (*io.SectionReader, error) {
	m, ok := t.members[cleanMember(name)]
	if !ok {
		return nil, fmt.Errorf("%s: not in the tarball: %w", name, errdefs.ErrNotFound)
	}
	return io.NewSectionReader(t.f, m[0], m[1]), nil
}

func (t *tarSource) openFile(name string) (io.ReadCloser, error) {
	sr, err := t.section(name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(sr), nil
}

func (t *tarSource) Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return t.openFile(blobPath(desc.Digest))
}

type dirSource struct{ root *os.Root }

func (d dirSource) openFile(name string) (io.ReadCloser, error) {
	f, err := d.root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

func (d dirSource) Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return d.openFile(blobPath(desc.Digest))
}

// Save writes the images refs name as one `docker save` tarball (layers as
// stored, compressed), readable by docker load and by Load.
func (s *Store) Save(ctx context.Context, refs []string, w io.Writer) error {
	images := map[name.Reference]v1.Image{}
	for _, ref := range refs {
		rec, err := s.resolve(ctx, ref)
		if err != nil {
			return fmt.Errorf("save %s: %w", ref, unwrapSame(err))
		}
		n, err := image.Normalize(ref)
		if err != nil {
			return fmt.Errorf("save %s: %w", ref, err)
		}
		r, err := name.ParseReference(n)
		if err != nil {
			return fmt.Errorf("save %s: %w", ref, err)
		}
		img, err := s.v1Image(ctx, rec)
		if err != nil {
			return fmt.Errorf("save %s: %w", ref, err)
		}
		images[r] = img
	}
	if err := tarball.MultiRefWrite(images, w); err != nil {
		return fmt.Errorf("save %v: %w", refs, err)
	}
	return nil
}
