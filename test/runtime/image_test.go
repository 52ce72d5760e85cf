//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testImageRef is the name the busybox test image is imported under.
const testImageRef = "docker.io/silo/busybox:itest"

// buildOCIArchive writes an OCI image layout tar ("oci-archive") holding the
// busybox rootfs as a single layer, and returns its path. containerd imports
// it by the io.containerd.image.name annotation; podman loads it as is.
func buildOCIArchive(t *testing.T) string {
	t.Helper()
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	buildRootfs(t, rootfs)

	var layer bytes.Buffer
	diffID := sha256.New()
	gz := gzip.NewWriter(&layer)
	if err := tarDir(io.MultiWriter(gz, diffID), rootfs); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}

	blobs := map[string][]byte{}
	add := func(b []byte) map[string]any {
		d := sha256.Sum256(b)
		digest := "sha256:" + hex.EncodeToString(d[:])
		blobs[hex.EncodeToString(d[:])] = b
		return map[string]any{"digest": digest, "size": len(b)}
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	layerDesc := add(layer.Bytes())
	layerDesc["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
	config := map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC().Format(time.RFC3339),
		"config": map[string]any{
			"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Cmd": []string{"sh"},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID.Sum(nil))}},
	}
	configDesc := add(mustJSON(config))
	configDesc["mediaType"] = "application/vnd.oci.image.config.v1+json"
	manifest := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        configDesc,
		"layers":        []any{layerDesc},
	}
	manifestDesc := add(mustJSON(manifest))
	manifestDesc["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
	manifestDesc["platform"] = map[string]string{"architecture": "amd64", "os": "linux"}
	manifestDesc["annotations"] = map[string]string{
		"io.containerd.image.name":          testImageRef,
		"org.opencontainers.image.ref.name": "itest",
	}
	index := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{manifestDesc}}

	out := filepath.Join(t.TempDir(), "busybox-oci.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	write := func(name string, b []byte) {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	write("index.json", mustJSON(index))
	for hex, b := range blobs {
		write("blobs/sha256/"+hex, b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tarDir writes the tree under dir as an uncompressed tar with relative names.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.ModTime = time.Unix(0, 0)
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
