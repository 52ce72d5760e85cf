package storage

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestCommit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (whiteouts are 0/0 character devices)")
	}
	ctx := context.Background()
	s := openStore(t)
	base, err := s.Import(ctx, bytes.NewReader(layerTar(t, map[string]string{"etc/a": "a", "etc/b": "b"})), "base", ImportOptions{
		Config: ocispec.ImageConfig{Env: []string{"PATH=/bin"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	upper := t.TempDir()
	os.Mkdir(filepath.Join(upper, "etc"), 0o755)
	os.WriteFile(filepath.Join(upper, "etc", "c"), []byte("c"), 0o644)
	if err := unix.Mknod(filepath.Join(upper, "etc", "a"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		opts       CommitOptions
		wantLayers int
		wantEmpty  bool
		wantErr    error
	}{
		{"layer", CommitOptions{Parent: "base", Dir: upper, CreatedBy: "RUN x", Refs: []string{"built:1"}}, 2, false, nil},
		{"config only", CommitOptions{Parent: "base", Config: dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Cmd: []string{"sh"}}, DockerOCIImageConfigExt: dockerspec.DockerOCIImageConfigExt{Shell: []string{"/bin/ash", "-c"}}}, CreatedBy: "CMD sh"}, 1, true, nil},
		{"empty dir", CommitOptions{Parent: "base", Dir: t.TempDir(), CreatedBy: "RUN true"}, 1, true, nil},
		{"scratch", CommitOptions{Dir: upper, CreatedBy: "COPY"}, 1, false, nil},
		{"missing parent", CommitOptions{Parent: "nope"}, 0, false, errdefs.ErrNotFound},
		{"bad ref", CommitOptions{Parent: "base", Refs: []string{"UPPER"}}, 0, false, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Created = time.Unix(1e9, 0)
			info, err := s.Commit(ctx, tt.opts)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Layers) != tt.wantLayers {
				t.Fatalf("layers %d, want %d", len(info.Layers), tt.wantLayers)
			}
			h := info.Config.History
			if last := h[len(h)-1]; last.CreatedBy != tt.opts.CreatedBy || last.EmptyLayer != tt.wantEmpty {
				t.Errorf("history %+v", last)
			}
			if tt.opts.Parent != "" && len(h) != len(base.Config.History)+1 {
				t.Errorf("history has %d entries", len(h))
			}
		})
	}
	// The committed layer hides etc/a and adds etc/c over the base.
	dirs, err := s.LayerDirs(ctx, "built:1")
	if err != nil || len(dirs) != 2 {
		t.Fatalf("layer dirs %v %v", dirs, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dirs[0], "etc", "a"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("whiteout etc/a in the new layer: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dirs[0], "etc", "c")); string(b) != "c" {
		t.Errorf("etc/c: %q", b)
	}
	// Docker's extension survives, and a child inherits it.
	sh, err := s.Commit(ctx, CommitOptions{Parent: "base", Config: dockerspec.DockerOCIImageConfig{DockerOCIImageConfigExt: dockerspec.DockerOCIImageConfigExt{Shell: []string{"/bin/ash", "-c"}}}, Refs: []string{"shell:1"}, Holder: "build-cache:x"})
	if err != nil {
		t.Fatal(err)
	}
	if dc, err := s.DockerConfig(ctx, sh.ID.String()); err != nil || len(dc.Config.Shell) != 2 {
		t.Errorf("docker config %+v %v", dc.Config, err)
	}
	if err := s.Remove(ctx, "shell:1"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("remove of a held image: %v, want a conflict", err)
	}
	// The commit's config replaces the parent's.
	if img, err := s.Image(ctx, "built:1"); err != nil || len(img.Config.Config.Env) != 0 {
		t.Errorf("config %+v %v", img.Config.Config, err)
	}
}
