//go:build integration

package storage

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/silo-containers/silo/test/harness"
)

// tarLayer is an uncompressed layer tar of regular files (name → body).
func tarLayer(t *testing.T, files [][2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		hdr := &tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if strings.HasSuffix(f[0], "/") {
			hdr = &tar.Header{Name: f[0], Mode: 0o755, Typeflag: tar.TypeDir, Format: tar.FormatPAX}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// zstdLayer compresses an uncompressed layer with zstd, as an OCI
// tar+zstd layer.
func zstdLayer(t *testing.T, open tarball.Opener) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(open, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestZstdLayers: an OCI image whose every layer is
// application/vnd.oci.image.layer.v1.tar+zstd (busybox recompressed, plus
// two layers of its own, the second deleting a file of the first) is
// pulled from the loopback registry, unpacked to the same diff ids, and
// runs.
func TestZstdLayers(t *testing.T) {
	addr := harness.StartRegistry(t)
	d := harness.NewDaemon(t, cgroupParent)
	d.Must("image", "build-busybox")
	base := addr + "/test/base:1"
	d.Must("tag", "busybox", base)
	d.Must("push", base)

	baseRef, err := name.ParseReference(base, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	baseImg, err := remote.Image(baseRef)
	if err != nil {
		t.Fatal(err)
	}
	baseCfg, err := baseImg.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	baseLayers, err := baseImg.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var layers []v1.Layer
	for _, l := range baseLayers {
		layers = append(layers, zstdLayer(t, l.Uncompressed))
	}
	for _, files := range [][][2]string{
		{{"z/", ""}, {"z/one", "one\n"}, {"z/gone", "gone\n"}},
		{{"z/", ""}, {"z/two", "two\n"}, {"z/.wh.gone", ""}},
	} {
		raw := tarLayer(t, files)
		layers = append(layers, zstdLayer(t, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }))
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if img, err = mutate.AppendLayers(img, layers...); err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Config, cfg.OS, cfg.Architecture = baseCfg.Config, baseCfg.OS, baseCfg.Architecture
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	ref := addr + "/test/zstd:1"
	zref, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(zref, img); err != nil {
		t.Fatalf("push the zstd image: %v", err)
	}

	// What the registry holds is what the test means: an OCI manifest
	// with zstd layers whose blobs start with zstd's magic.
	pushed, err := remote.Image(zref)
	if err != nil {
		t.Fatal(err)
	}
	m, err := pushed.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || len(m.Layers) != len(baseLayers)+2 {
		t.Fatalf("pushed manifest: %s with %d layers", m.MediaType, len(m.Layers))
	}
	for _, ld := range m.Layers {
		if ld.MediaType != types.OCILayerZStd {
			t.Fatalf("layer %s is %s", ld.Digest, ld.MediaType)
		}
		l, err := pushed.LayerByDigest(ld.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 4)
		_, err = io.ReadFull(rc, head)
		rc.Close()
		if err != nil || !bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
			t.Fatalf("layer %s does not start with zstd's magic: % x, %v", ld.Digest, head, err)
		}
	}
	wantDiffIDs, err := pushed.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}

	// Nothing local: every layer is downloaded and decompressed.
	d.Must("image", "rm", base)
	d.Must("image", "rm", "busybox")
	if out := d.Must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("images left before the pull: %q", out)
	}
	d.Must("pull", ref)
	got := strings.Fields(strings.Trim(strings.TrimSpace(d.Must("image", "inspect", "-f", "{{.RootFS.Layers}}", ref)), "[]"))
	var want []string
	for _, h := range wantDiffIDs.RootFS.DiffIDs {
		want = append(want, h.String())
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("pulled layers %v, want diff ids %v", got, want)
	}
	check := "cat /z/one /z/two && ! test -e /z/gone && echo zstd-ok"
	if out := d.Must("run", "--rm", ref, "sh", "-c", check); out != "one\ntwo\nzstd-ok\n" {
		t.Fatalf("zstd image: %q", out)
	}
}
