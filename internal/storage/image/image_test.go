package image

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestNormalize(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	for _, c := range []struct{ in, out string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest"},
		{"docker.io/busybox", "docker.io/library/busybox:latest"},
		{"index.docker.io/library/busybox:x", "docker.io/library/busybox:x"},
		{"user/app", "docker.io/user/app:latest"},
		{"localhost/app", "localhost/app:latest"},
		{"localhost:5000/a/b:v1", "localhost:5000/a/b:v1"},
		{"127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"},
		{"quay.io/org/app@" + d, "quay.io/org/app@" + d},
		{"app:v1@" + d, "docker.io/library/app:v1@" + d},
	} {
		got, err := Normalize(c.in)
		if err != nil || got != c.out {
			t.Errorf("Normalize(%q) = %q, %v; want %q", c.in, got, err, c.out)
		}
	}
	for _, in := range []string{"", "UPPER", "a b", "app@sha256:zz", "a:b:c", strings.Repeat("a", 5000)} {
		if _, err := Normalize(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Normalize(%q) = %v, want invalid argument", in, err)
		}
	}
	if Familiar("docker.io/library/busybox:latest") != "busybox:latest" || Familiar("docker.io/u/a:1") != "u/a:1" {
		t.Error("Familiar")
	}
}

func TestSelectPlatform(t *testing.T) {
	desc := func(arch, variant string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(arch + variant),
			Platform: &ocispec.Platform{OS: "linux", Architecture: arch, Variant: variant}}
	}
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{desc("arm", "v7"), desc("amd64", ""), desc("arm64", "v8")}}
	got, err := SelectPlatform(idx, Platform)
	if err != nil || got.Digest != digest.FromString("amd64") {
		t.Fatalf("select: %v %v", got.Digest, err)
	}
	idx.Manifests = idx.Manifests[:1]
	_, err = SelectPlatform(idx, Platform)
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "available: linux/arm/v7") {
		t.Fatalf("no match: %v", err)
	}
}

func TestParseManifest(t *testing.T) {
	cases := []struct{ name, raw, wantErr string }{
		{"schema1", `{"schemaVersion":1}`, "schema version 1"},
		{"bad digest", `{"schemaVersion":2,"config":{"digest":"sha256:zz"}}`, "config: digest"},
		{"bad layer type", `{"schemaVersion":2,"config":{"digest":"sha256:` + strings.Repeat("a", 64) + `"},"layers":[{"mediaType":"text/html","digest":"sha256:` + strings.Repeat("b", 64) + `"}]}`, "not supported"},
		{"not json", `{`, "invalid argument"},
	}
	for _, c := range cases {
		if _, err := ParseManifest([]byte(c.raw)); err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: %v, want %q", c.name, err, c.wantErr)
		}
	}
}

func TestDB(t *testing.T) {
	db, err := OpenDB(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := digest.FromString("manifest")
	if err := db.Put(Record{Manifest: m, Config: digest.FromString("cfg")}, "docker.io/library/a:1"); err != nil {
		t.Fatal(err)
	}
	if err := db.Tag("docker.io/library/a:2", m); err != nil {
		t.Fatal(err)
	}
	if err := db.Tag("x:1", digest.FromString("none")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("tag of missing image: %v", err)
	}
	if refs := db.Refs(m); len(refs) != 2 {
		t.Fatalf("refs %v", refs)
	}
	db.Hold("c1", m)
	db.Untag("docker.io/library/a:1", false)
	if _, err := db.Untag("docker.io/library/a:2", false); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("untag of held image: %v", err)
	}
	db.Untag("docker.io/library/a:2", true)
	if live, removed, _ := db.Prune(); len(live) != 1 || len(removed) != 0 {
		t.Fatal("held image pruned")
	}
	db.Release("c1")
	if live, removed, _ := db.Prune(); len(live) != 0 || len(removed) != 1 {
		t.Fatal("released image kept")
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"busybox", "localhost:5000/a:b", "a@sha256:" + strings.Repeat("0", 64), "index.docker.io/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Normalize(s)
		if err != nil {
			return
		}
		// Normal forms are fixed points.
		if again, err := Normalize(n); err != nil || again != n {
			t.Fatalf("Normalize(%q) = %q, again %q %v", s, n, again, err)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:` + strings.Repeat("a", 64) + `"}}`))
	f.Add([]byte(`{"manifests":[{"platform":{"os":"linux"}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		DetectMediaType(b)
		ParseManifest(b)
		if idx, err := ParseIndex(b); err == nil {
			SelectPlatform(idx, Platform)
		}
		ParseConfig(b)
	})
}
