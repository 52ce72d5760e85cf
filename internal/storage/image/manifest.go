package image

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Media types of Docker's image format (schema2); the OCI ones are in
// ocispec.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerLayerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	MediaTypeDockerLayerZstd    = "application/vnd.docker.image.rootfs.diff.tar.zstd"
)

// Non-distributable OCI layers: deprecated by the spec, still met in old
// Windows-derived images, and unpacked like any layer.
const (
	mediaTypeNonDistributable     = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	mediaTypeNonDistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	mediaTypeNonDistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
)

// MaxManifestSize caps manifests, indexes and configs read from anywhere.
const MaxManifestSize = 4 << 20

// IsIndex reports whether mediaType is an index or manifest list.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == MediaTypeDockerManifestList
}

// IsManifest reports whether mediaType is an image manifest.
func IsManifest(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageManifest || mediaType == MediaTypeDockerManifest
}

// IsLayer reports whether mediaType is a layer that silo unpacks.
func IsLayer(mediaType string) bool {
	switch mediaType {
	case MediaTypeDockerLayer, MediaTypeDockerLayerGzip, MediaTypeDockerLayerZstd, MediaTypeDockerLayerForeign,
		ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		mediaTypeNonDistributable, mediaTypeNonDistributableGzip, mediaTypeNonDistributableZstd:
		return true
	}
	return false
}

// DetectMediaType returns the media type of a manifest or index from its
// mediaType field, or from its shape when the field is absent (OCI allows it).
func DetectMediaType(raw []byte) (string, error) {
	var probe struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     json.RawMessage   `json:"manifests"`
		Config        json.RawMessage   `json:"config"`
		Layers        []json.RawMessage `json:"layers"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return "", fmt.Errorf("manifest: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType, nil
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex, nil
	case probe.Config != nil:
		return ocispec.MediaTypeImageManifest, nil
	}
	return "", fmt.Errorf("manifest: unknown document (schema %d): %w", probe.SchemaVersion, errdefs.ErrInvalidArgument)
}

// ParseManifest parses an OCI or Docker schema2 image manifest (they share
// one JSON shape) and checks what silo relies on.
func ParseManifest(raw []byte) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("manifest: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if m.SchemaVersion != 2 {
		return m, fmt.Errorf("manifest: schema version %d is not supported: %w", m.SchemaVersion, errdefs.ErrInvalidArgument)
	}
	if err := checkDescriptor(m.Config); err != nil {
		return m, fmt.Errorf("manifest: config: %w", err)
	}
	for i, l := range m.Layers {
		if err := checkDescriptor(l); err != nil {
			return m, fmt.Errorf("manifest: layer %d: %w", i, err)
		}
		if !IsLayer(l.MediaType) {
			return m, fmt.Errorf("manifest: layer %d: media type %q is not supported: %w", i, l.MediaType, errdefs.ErrInvalidArgument)
		}
	}
	return m, nil
}

func checkDescriptor(d ocispec.Descriptor) error {
	if err := d.Digest.Validate(); err != nil || d.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %q: %w", d.Digest, errdefs.ErrInvalidArgument)
	}
	if d.Size < 0 {
		return fmt.Errorf("size %d: %w", d.Size, errdefs.ErrInvalidArgument)
	}
	return nil
}

// ParseIndex parses an OCI index or Docker manifest list.
func ParseIndex(raw []byte) (ocispec.Index, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return idx, fmt.Errorf("index: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	for i, m := range idx.Manifests {
		if err := checkDescriptor(m); err != nil {
			return idx, fmt.Errorf("index: manifest %d: %w", i, err)
		}
	}
	return idx, nil
}

// Platform is the platform silo runs.
var Platform = ocispec.Platform{OS: "linux", Architecture: "amd64"}

// SelectPlatform picks the manifest for p from an index. With none, the
// error names the platforms the index has.
func SelectPlatform(idx ocispec.Index, p ocispec.Platform) (ocispec.Descriptor, error) {
	var have []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		if m.Platform.OS == p.OS && m.Platform.Architecture == p.Architecture &&
			(p.Variant == "" || m.Platform.Variant == p.Variant) && IsManifest(m.MediaType) {
			return m, nil
		}
		s := m.Platform.OS + "/" + m.Platform.Architecture
		if m.Platform.Variant != "" {
			s += "/" + m.Platform.Variant
		}
		have = append(have, s)
	}
	// An index whose entries carry no platform (a single-image OCI layout):
	// take its only image manifest.
	if len(have) == 0 && len(idx.Manifests) == 1 && IsManifest(idx.Manifests[0].MediaType) {
		return idx.Manifests[0], nil
	}
	sort.Strings(have)
	return ocispec.Descriptor{}, fmt.Errorf("no manifest for platform %s/%s (available: %s): %w",
		p.OS, p.Architecture, strings.Join(have, ", "), errdefs.ErrNotFound)
}

// ParseConfig parses an image config and checks its rootfs.
func ParseConfig(raw []byte) (ocispec.Image, error) {
	var c ocispec.Image
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if c.RootFS.Type != "layers" {
		return c, fmt.Errorf("config: rootfs type %q: %w", c.RootFS.Type, errdefs.ErrInvalidArgument)
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 {
			return c, fmt.Errorf("config: diff id %d %q: %w", i, d, errdefs.ErrInvalidArgument)
		}
	}
	return c, nil
}
