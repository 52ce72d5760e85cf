package baseimage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/silo-containers/silo/internal/storage"
)

func TestBusybox(t *testing.T) {
	if _, err := os.Stat(DefaultBusybox); err != nil {
		t.Skip("busybox-static not installed")
	}
	ctx := context.Background()
	s, err := storage.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	info, err := Busybox(ctx, s, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.RepoTags) != 1 || info.RepoTags[0] != "docker.io/library/busybox:latest" || len(info.Layers) != 1 {
		t.Fatalf("image: %+v", info)
	}
	if info.Config.Config.Cmd[0] != "sh" || info.Config.Architecture != "amd64" {
		t.Fatalf("config: %+v", info.Config)
	}
	// Same binary, same image.
	again, err := Busybox(ctx, s, "", "busybox:again")
	if err != nil || again.ID != info.ID {
		t.Fatalf("not reproducible: %s vs %s (%v)", again.ID, info.ID, err)
	}
	dirs, err := s.LayerDirs(ctx, "busybox")
	if err != nil || len(dirs) != 1 {
		t.Fatalf("layer dirs %v %v", dirs, err)
	}
	root := dirs[0]
	for _, p := range []string{"bin/busybox", "bin/sh", "etc/passwd", "etc/group", "tmp"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(root, "tmp")); fi.Mode()&os.ModeSticky == 0 {
		t.Error("/tmp is not sticky")
	}
	if os.Geteuid() == 0 {
		// The image works: run an applet chrooted into the layer.
		out, err := exec.Command("chroot", root, "/bin/sh", "-c", "echo hi; ls /etc/passwd").CombinedOutput()
		if err != nil || string(out) != "hi\n/etc/passwd\n" {
			t.Fatalf("chroot sh: %q %v", out, err)
		}
	}
}
