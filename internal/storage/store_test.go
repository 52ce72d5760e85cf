package storage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/image"
	"github.com/silo-containers/silo/internal/storage/layer"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func layerTar(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1e9, 0)})
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestImportTagRemoveGC(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	rootfs := layerTar(t, map[string]string{"etc/os-release": "silo", "bin/true": "#!"})
	info, err := s.Import(ctx, bytes.NewReader(gz(rootfs)), "test/img", ImportOptions{Created: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if info.RepoTags[0] != "docker.io/test/img:latest" || info.DiffIDs[0] != digest.FromBytes(rootfs) || info.Size != 6 {
		t.Fatalf("info %+v", info)
	}
	if err := s.Tag(ctx, info.ID.Encoded()[:12], "other:v1"); err != nil {
		t.Fatal(err)
	}
	byTag, err := s.Image(ctx, "docker.io/library/other:v1")
	if err != nil || byTag.ID != info.ID || len(byTag.RepoTags) != 2 {
		t.Fatalf("by tag: %+v %v", byTag, err)
	}
	dirs, err := s.LayerDirs(ctx, "test/img")
	if err != nil || len(dirs) != 1 {
		t.Fatalf("dirs %v %v", dirs, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dirs[0], "etc/os-release")); string(b) != "silo" {
		t.Fatal("layer content")
	}
	list, _ := s.List(ctx)
	if len(list) != 1 {
		t.Fatalf("list %d", len(list))
	}

	// A held image keeps its last tag unless forced, and its files until released.
	if err := s.Hold(ctx, "ctr1", "other:v1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "test/img"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "other:v1"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("remove held: %v", err)
	}
	if err := s.Remove(ctx, "other:v1", RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.GC(ctx); st.Layers != 0 || st.Blobs != 0 {
		t.Fatalf("gc freed a held image: %+v", st)
	}
	if _, err := os.Stat(dirs[0]); err != nil {
		t.Fatal("held layer gone")
	}
	s.Release(ctx, "ctr1")
	// Release also kicks a background GC; whichever runs first frees it.
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	s.layers.WaitTrash()
	u, _ := s.DiskUsage(ctx)
	if u != (Usage{}) {
		t.Fatalf("usage after gc: %+v", u)
	}
	if _, err := s.Image(ctx, "test/img"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("removed image: %v", err)
	}
}

// ociImage builds the blobs of an image: layers (gzip), config, manifest.
type ociImage struct {
	blobs    map[digest.Digest][]byte
	manifest ocispec.Descriptor
	diffIDs  []digest.Digest
}

func makeImage(t *testing.T, layers ...[]byte) ociImage {
	img := ociImage{blobs: map[digest.Digest][]byte{}}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	m.SchemaVersion = 2
	for _, l := range layers {
		z := gz(l)
		img.blobs[digest.FromBytes(z)] = z
		img.diffIDs = append(img.diffIDs, digest.FromBytes(l))
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(z), Size: int64(len(z))})
	}
	cfg, _ := json.Marshal(ocispec.Image{Platform: image.Platform, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: img.diffIDs}})
	img.blobs[digest.FromBytes(cfg)] = cfg
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	raw, _ := json.Marshal(m)
	img.blobs[digest.FromBytes(raw)] = raw
	img.manifest = ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	return img
}

// layoutTar writes an OCI layout tar with the given index entries and blobs.
func layoutTar(t *testing.T, index []ocispec.Descriptor, blobs map[digest.Digest][]byte, extra map[string][]byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	idx := ocispec.Index{Manifests: index}
	idx.SchemaVersion = 2
	raw, _ := json.Marshal(idx)
	add("index.json", raw)
	for d, b := range blobs {
		add("blobs/sha256/"+d.Encoded(), b)
	}
	for n, b := range extra {
		add(n, b)
	}
	tw.Close()
	return buf.Bytes()
}

func TestLoadOCILayout(t *testing.T) {
	ctx := context.Background()
	base := layerTar(t, map[string]string{"a": "base"})
	top := layerTar(t, map[string]string{"b": "top"})
	img := makeImage(t, base, top)
	other := makeImage(t, layerTar(t, map[string]string{"arm": "64"}))

	// A multi-platform index inside the layout, as docker and buildx write it.
	sub := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		withPlatform(other.manifest, "arm64"), withPlatform(img.manifest, "amd64")}}
	sub.SchemaVersion = 2
	subRaw, _ := json.Marshal(sub)
	blobs := merge(img.blobs, other.blobs)
	blobs[digest.FromBytes(subRaw)] = subRaw
	entry := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(subRaw), Size: int64(len(subRaw)),
		Annotations: map[string]string{annotationContainerdName: "localhost:5000/multi:1"}}

	s := openStore(t)
	refs, err := s.Load(ctx, bytes.NewReader(layoutTar(t, []ocispec.Descriptor{entry}, blobs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0] != "localhost:5000/multi:1" {
		t.Fatalf("refs %v", refs)
	}
	dirs, err := s.LayerDirs(ctx, refs[0])
	if err != nil || len(dirs) != 2 {
		t.Fatalf("dirs %v %v", dirs, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dirs[0], "b")); string(b) != "top" {
		t.Fatal("top-most layer is not first")
	}
	// layerchain.json of the top layer names its parent's directory.
	chain := layer.ChainIDs(img.diffIDs)
	lc, _ := os.ReadFile(filepath.Join(s.layers.Dir(chain[1]), "layerchain.json"))
	if want, _ := json.Marshal([]string{s.layers.Dir(chain[0])}); string(lc) != string(want) {
		t.Fatalf("layerchain.json %s, want %s", lc, want)
	}

	// The same layout as a directory.
	dir := t.TempDir()
	untar(t, layoutTar(t, []ocispec.Descriptor{entry}, blobs, nil), dir)
	s2 := openStore(t)
	if _, err := s2.LoadLayout(ctx, dir); err != nil {
		t.Fatal(err)
	}
}

func withPlatform(d ocispec.Descriptor, arch string) ocispec.Descriptor {
	d.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
	return d
}

func merge(ms ...map[digest.Digest][]byte) map[digest.Digest][]byte {
	out := map[digest.Digest][]byte{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func untar(t *testing.T, b []byte, dir string) {
	cmd := exec.Command("tar", "-x", "-C", dir)
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
}

func TestLoadHostile(t *testing.T) {
	ctx := context.Background()
	l := layerTar(t, map[string]string{"f": "x"})
	img := makeImage(t, l)

	wrongLayer := makeImage(t, l)
	// The config claims another DiffID than the layer has.
	var cfg ocispec.Image
	var m ocispec.Manifest
	json.Unmarshal(wrongLayer.blobs[wrongLayer.manifest.Digest], &m)
	json.Unmarshal(wrongLayer.blobs[m.Config.Digest], &cfg)
	cfg.RootFS.DiffIDs[0] = digest.FromString("something else")
	cfgRaw, _ := json.Marshal(cfg)
	delete(wrongLayer.blobs, m.Config.Digest)
	m.Config.Digest, m.Config.Size = digest.FromBytes(cfgRaw), int64(len(cfgRaw))
	wrongLayer.blobs[m.Config.Digest] = cfgRaw
	mRaw, _ := json.Marshal(m)
	wrongLayer.blobs[digest.FromBytes(mRaw)] = mRaw
	wrongLayer.manifest = ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(mRaw), Size: int64(len(mRaw))}

	tampered := merge(img.blobs)
	tampered[img.manifest.Digest] = append([]byte(" "), tampered[img.manifest.Digest]...)

	armOnly := makeImage(t, l)

	cases := []struct {
		name    string
		tar     []byte
		wantErr string
	}{
		{"manifest digest mismatch", layoutTar(t, []ocispec.Descriptor{img.manifest}, tampered, nil), "digest mismatch: expected " + img.manifest.Digest.String()},
		{"diffID mismatch", layoutTar(t, []ocispec.Descriptor{wrongLayer.manifest}, wrongLayer.blobs, nil), "diffID mismatch"},
		{"no matching platform", layoutTar(t, []ocispec.Descriptor{withPlatform(armOnly.manifest, "arm64")}, armOnly.blobs, nil), "available: linux/arm64"},
		{"missing blob", layoutTar(t, []ocispec.Descriptor{img.manifest}, map[digest.Digest][]byte{img.manifest.Digest: img.blobs[img.manifest.Digest]}, nil), "not in the tarball"},
		{"docker save path escape", dockerTar(t, `[{"Config":"../../../etc/passwd","RepoTags":["x:1"],"Layers":[]}]`, nil), "not in the tarball"},
		{"not an image", layerTar(t, map[string]string{"etc/passwd": "x"}), "neither an OCI layout"},
		{"garbage", []byte("garbage"), "read tarball"},
		{"bad reference", layoutTar(t, []ocispec.Descriptor{withAnnotation(img.manifest, "UPPER/Case::")}, img.blobs, nil), "invalid argument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t)
			_, err := s.Load(ctx, bytes.NewReader(c.tar))
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err %v, want %q", err, c.wantErr)
			}
			s.GC(ctx)
			s.layers.WaitTrash()
			if u, _ := s.DiskUsage(ctx); u.Layers != 0 || u.Images != 0 {
				t.Fatalf("a failed load left %+v", u)
			}
		})
	}
}

func withAnnotation(d ocispec.Descriptor, ref string) ocispec.Descriptor {
	d.Annotations = map[string]string{annotationRefName: ref}
	return d
}

func dockerTar(t *testing.T, manifest string, files map[string][]byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(manifest)), Typeflag: tar.TypeReg})
	tw.Write([]byte(manifest))
	for n, b := range files {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	tw.Close()
	return buf.Bytes()
}

func TestSaveLoadRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	base := layerTar(t, map[string]string{"a": "base"})
	img := makeImage(t, base, layerTar(t, map[string]string{"b": "top"}))
	if _, err := s.Load(ctx, bytes.NewReader(layoutTar(t, []ocispec.Descriptor{withAnnotation(img.manifest, "example.com/app:v2")}, img.blobs, nil))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, bytes.NewReader(base), "plain", ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	var saved bytes.Buffer
	if err := s.Save(ctx, []string{"example.com/app:v2", "plain"}, &saved); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t)
	refs, err := s2.Load(ctx, &saved)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 {
		t.Fatalf("refs %v", refs)
	}
	for _, r := range []string{"example.com/app:v2", "plain"} {
		a, err1 := s.Image(ctx, r)
		b, err2 := s2.Image(ctx, r)
		if err1 != nil || err2 != nil || a.ID != b.ID || len(a.Layers) != len(b.Layers) || a.Layers[len(a.Layers)-1] != b.Layers[len(b.Layers)-1] {
			t.Fatalf("%s: %v %v %+v %+v", r, err1, err2, a, b)
		}
	}
	// Both images share the base layer: one directory.
	if u, _ := s2.DiskUsage(ctx); u.Layers != 2 {
		t.Fatalf("layers %d, want 2 (base shared)", u.Layers)
	}
}

// startRegistry runs Debian's docker-registry on a free loopback port.
func startRegistry(t *testing.T) string {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644)
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("registry did not start")
	return ""
}

func TestPushPull(t *testing.T) {
	addr := startRegistry(t)
	ctx := context.Background()
	s := openStore(t)
	img := makeImage(t, layerTar(t, map[string]string{"a": "base"}), layerTar(t, map[string]string{"b": strings.Repeat("top", 1e5)}))
	if _, err := s.Load(ctx, bytes.NewReader(layoutTar(t, []ocispec.Descriptor{withAnnotation(img.manifest, "app:1")}, img.blobs, nil))); err != nil {
		t.Fatal(err)
	}
	ref := addr + "/silo/app:1"
	if err := s.Tag(ctx, "app:1", ref); err != nil {
		t.Fatal(err)
	}
	if err := s.Push(ctx, ref, RegistryOptions{}); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t)
	var calls atomic.Int32
	info, err := s2.Pull(ctx, ref, RegistryOptions{Progress: func(Progress) { calls.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if info.Manifest != img.manifest.Digest || calls.Load() < 2 {
		t.Fatalf("pulled %s (progress calls %d), want %s", info.Manifest, calls.Load(), img.manifest.Digest)
	}
	dirs, err := s2.LayerDirs(ctx, ref)
	if err != nil || len(dirs) != 2 {
		t.Fatalf("dirs %v %v", dirs, err)
	}
	// By digest, and a pull of something absent.
	if _, err := s2.Pull(ctx, addr+"/silo/app@"+img.manifest.Digest.String(), RegistryOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Pull(ctx, addr+"/silo/nothing:1", RegistryOptions{}); err == nil || !strings.Contains(err.Error(), "pull "+addr+"/silo/nothing:1") {
		t.Fatalf("pull of a missing image: %v", err)
	}
}
