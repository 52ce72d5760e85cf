//go:build integration

package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-containers/silo/test/harness"
)

// TestVolumes drives named, anonymous and bind volumes, --mount and
// --tmpfs through silo and the docker CLI.
func TestVolumes(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")

	t.Run("named volume keeps data across containers", func(t *testing.T) {
		if out := d.Must("volume", "create", "--label", "env=test", "data"); out != "data\n" {
			t.Fatalf("create: %q", out)
		}
		if out := d.Must("volume", "ls", "-q"); out != "data\n" {
			t.Fatalf("ls: %q", out)
		}
		mp := strings.TrimSpace(d.Must("volume", "inspect", "-f", "{{.Mountpoint}}", "data"))
		if mp != filepath.Join(d.Data, "engine", "volumes", "data", "_data") {
			t.Fatalf("mountpoint %q", mp)
		}
		d.Must("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo hello > /data/f")
		if out := d.Must("run", "--rm", "-v", "data:/data:ro", "busybox", "cat", "/data/f"); out != "hello\n" {
			t.Fatalf("read back: %q", out)
		}
		if b, err := os.ReadFile(filepath.Join(mp, "f")); err != nil || string(b) != "hello\n" {
			t.Fatalf("on the host: %q %v", b, err)
		}
		if _, _, code := d.Silo("run", "--rm", "-v", "data:/data:ro", "busybox", "touch", "/data/g"); code == 0 {
			t.Fatal("wrote to a read-only volume")
		}
	})

	t.Run("volume in use cannot be removed", func(t *testing.T) {
		d.Must("run", "-d", "--name", "holder", "-v", "data:/data", "busybox", "sleep", "60")
		_, errOut, code := d.Silo("volume", "rm", "data")
		if code == 0 || !strings.Contains(errOut, "volume is in use") {
			t.Fatalf("rm in use: exit %d, %q", code, errOut)
		}
		if out := d.Must("inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}", "holder"); out != "volume data /data true\n" {
			t.Fatalf("inspect mounts: %q", out)
		}
		d.Must("rm", "-f", "holder")
		d.Must("volume", "rm", "data")
		if out := d.Must("volume", "ls", "-q"); out != "" {
			t.Fatalf("ls after rm: %q", out)
		}
	})

	t.Run("copy from the image into an empty volume", func(t *testing.T) {
		if out := d.Must("run", "--rm", "-v", "etc:/etc", "busybox", "cat", "/etc/passwd"); !strings.Contains(out, "root:") {
			t.Fatalf("passwd through the volume: %q", out)
		}
		mp := strings.TrimSpace(d.Must("volume", "inspect", "-f", "{{.Mountpoint}}", "etc"))
		if _, err := os.Stat(filepath.Join(mp, "passwd")); err != nil {
			t.Fatal(err)
		}
		d.Must("volume", "rm", "etc")
		// The volume's root takes the image directory's mode.
		want := d.Must("run", "--rm", "busybox", "stat", "-c", "%a %u", "/tmp")
		if got := d.Must("run", "--rm", "-v", "tmpv:/tmp", "busybox", "stat", "-c", "%a %u", "/tmp"); got != want {
			t.Fatalf("volume root %q, image directory %q", got, want)
		}
		d.Must("volume", "rm", "tmpv")
	})

	t.Run("bind mounts", func(t *testing.T) {
		dir := t.TempDir()
		d.Must("run", "--rm", "-v", dir+":/h", "busybox", "sh", "-c", "echo x > /h/y")
		if b, err := os.ReadFile(filepath.Join(dir, "y")); err != nil || string(b) != "x\n" {
			t.Fatalf("bind write: %q %v", b, err)
		}
		if _, _, code := d.Silo("run", "--rm", "-v", dir+":/h:ro", "busybox", "touch", "/h/z"); code == 0 {
			t.Fatal("wrote through a read-only bind")
		}
		made := filepath.Join(dir, "made", "by", "v")
		d.Must("run", "--rm", "-v", made+":/m", "busybox", "true")
		if fi, err := os.Stat(made); err != nil || !fi.IsDir() {
			t.Fatalf("-v did not make the host path: %v", err)
		}
		_, errOut, code := d.Silo("run", "--rm", "--mount", "type=bind,source="+filepath.Join(dir, "nope")+",target=/m", "busybox", "true")
		if code != 125 || !strings.Contains(errOut, "bind source path does not exist") {
			t.Fatalf("--mount with a missing source: exit %d, %q", code, errOut)
		}
		if out := d.Must("run", "--rm", "--mount", "type=bind,src="+dir+",dst=/m,readonly", "busybox", "cat", "/m/y"); out != "x\n" {
			t.Fatalf("--mount bind: %q", out)
		}
	})

	t.Run("tmpfs", func(t *testing.T) {
		out := d.Must("run", "--rm", "--tmpfs", "/t1:size=1m", "--mount", "type=tmpfs,destination=/t2,tmpfs-size=2m",
			"busybox", "sh", "-c", "grep -E ' /t[12] ' /proc/mounts")
		if !strings.Contains(out, "tmpfs /t1 tmpfs") || !strings.Contains(out, "size=1024k") ||
			!strings.Contains(out, "tmpfs /t2 tmpfs") || !strings.Contains(out, "size=2048k") {
			t.Fatalf("tmpfs mounts: %q", out)
		}
	})

	t.Run("anonymous volumes go with rm -v and --rm", func(t *testing.T) {
		d.Must("run", "-d", "--name", "anon", "-v", "/scratch", "busybox", "sleep", "60")
		name := strings.TrimSpace(d.Must("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "anon"))
		if len(name) != 64 {
			t.Fatalf("anonymous volume %q", name)
		}
		if out := d.Must("volume", "ls", "-q", "--filter", "dangling=false"); out != name+"\n" {
			t.Fatalf("ls in use: %q", out)
		}
		d.Must("rm", "-f", "-v", "anon")
		if out := d.Must("volume", "ls", "-q"); out != "" {
			t.Fatalf("rm -v left %q", out)
		}
		d.Must("run", "--rm", "-v", "/scratch", "busybox", "true")
		// --rm removes the container (and its volume) after the exit.
		waitEmpty(t, d, "volume", "ls", "-q")
		d.Must("run", "--name", "keep", "-v", "/scratch", "busybox", "true")
		d.Must("rm", "keep")
		if out := d.Must("volume", "ls", "-q"); out == "" {
			t.Fatal("rm without -v removed the anonymous volume")
		}
		if out := d.Must("volume", "prune", "-f"); !strings.Contains(out, "Deleted Volumes:") {
			t.Fatalf("prune: %q", out)
		}
		if out := d.Must("volume", "ls", "-q"); out != "" {
			t.Fatalf("prune left %q", out)
		}
	})

	t.Run("volumes-from", func(t *testing.T) {
		d.Must("run", "-d", "--name", "src", "-v", "shared:/shared", "busybox", "sh", "-c", "echo from-src > /shared/f; exec sleep 60")
		waitOutput(t, d, "from-src\n", "run", "--rm", "--volumes-from", "src:ro", "busybox", "cat", "/shared/f")
		d.Must("rm", "-f", "src")
		d.Must("volume", "rm", "shared")
	})

	if !harness.HaveDocker() {
		t.Skip("no docker CLI")
	}
	t.Run("docker CLI", func(t *testing.T) {
		d.DockerOK(t, "volume", "create", "dv")
		d.DockerOK(t, "run", "--rm", "-v", "dv:/d", "busybox", "sh", "-c", "echo z > /d/z")
		if out := d.DockerOK(t, "run", "--rm", "--mount", "source=dv,target=/d", "busybox", "cat", "/d/z"); out != "z\n" {
			t.Fatalf("docker read back: %q", out)
		}
		if out := d.DockerOK(t, "volume", "ls", "--format", "{{.Driver}} {{.Name}}"); out != "local dv\n" {
			t.Fatalf("docker volume ls: %q", out)
		}
		if out := d.DockerOK(t, "volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}}", "dv"); out != "dv local local\n" {
			t.Fatalf("docker volume inspect: %q", out)
		}
		d.DockerOK(t, "run", "-d", "--name", "dholder", "-v", "dv:/d", "busybox", "sleep", "60")
		_, errOut, code := d.Run(harness.DockerCLI, []string{"volume", "rm", "dv"}, d.DockerEnv())
		if code == 0 || !strings.Contains(errOut, "in use") {
			t.Fatalf("docker volume rm in use: exit %d %q", code, errOut)
		}
		if out := d.DockerOK(t, "inspect", "-f", "{{range .Mounts}}{{.Name}}:{{.Destination}}{{end}}", "dholder"); out != "dv:/d\n" {
			t.Fatalf("docker inspect mounts: %q", out)
		}
		d.DockerOK(t, "rm", "-f", "-v", "dholder")
		d.DockerOK(t, "volume", "rm", "dv")
		d.DockerOK(t, "volume", "create", "dv2")
		if out := d.DockerOK(t, "volume", "prune", "-a", "-f"); !strings.Contains(out, "dv2") {
			t.Fatalf("docker volume prune -a: %q", out)
		}
	})
}
