//go:build integration

package engine

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-containers/silo/test/harness"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// cpStdin runs `silo cp - CONTAINER:DIR` with tarball on stdin.
func (d *daemon) cpStdin(t *testing.T, tarball []byte, dest string) (string, int) {
	t.Helper()
	cmd := exec.Command(harness.RepoBin("silo"), "--host", d.Host(), "--no-start-daemon", "cp", "-", dest)
	cmd.Stdin = bytes.NewReader(tarball)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func tarOf(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := []byte(h.Linkname)
		if h.Typeflag == tar.TypeReg {
			h.Size, h.Linkname = int64(len(body)), ""
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(body)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// TestCopy: silo cp and docker cp both ways, on running and stopped
// containers, through volumes; hostile symlinks and tars stay inside.
func TestCopy(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	d.Must("run", "-d", "--name", "cp", "-v", "vol:/vol", "busybox", "sh", "-c",
		"mkdir -p /data/sub; echo a > /data/f; echo b > /data/sub/g; ln -sfn /etc/passwd /data/link; ln -sfn / /data/escape; echo v > /vol/x; touch /ready; exec sleep 120")
	waitOutput(t, d, "", "exec", "cp", "test", "-f", "/ready")
	tmp := t.TempDir()

	d.Must("cp", "cp:/data", filepath.Join(tmp, "out"))
	if readFile(t, filepath.Join(tmp, "out/f")) != "a\n" || readFile(t, filepath.Join(tmp, "out/sub/g")) != "b\n" {
		t.Fatal("cp of a directory to a new name")
	}
	if l, err := os.Readlink(filepath.Join(tmp, "out/link")); err != nil || l != "/etc/passwd" {
		t.Fatalf("symlink copied as %q %v", l, err)
	}
	d.Must("cp", "cp:/data/f", filepath.Join(tmp, "f2"))
	if readFile(t, filepath.Join(tmp, "f2")) != "a\n" {
		t.Fatal("cp of a file")
	}
	os.Mkdir(filepath.Join(tmp, "into"), 0o755)
	d.Must("cp", "cp:/data/.", filepath.Join(tmp, "into"))
	if readFile(t, filepath.Join(tmp, "into/sub/g")) != "b\n" {
		t.Fatal("cp of a directory's content")
	}
	d.Must("cp", "cp:/vol/x", filepath.Join(tmp, "x"))
	if readFile(t, filepath.Join(tmp, "x")) != "v\n" {
		t.Fatal("cp from a volume of a running container")
	}
	// The container's symlink to / is resolved in the container.
	hostname := strings.TrimSpace(d.Must("exec", "cp", "cat", "/etc/hostname"))
	d.Must("cp", "cp:/data/escape/etc/hostname", filepath.Join(tmp, "hn"))
	if got := strings.TrimSpace(readFile(t, filepath.Join(tmp, "hn"))); got != hostname {
		t.Fatalf("hostname through the symlink: %q, want the container's %q", got, hostname)
	}

	// Into the container.
	os.MkdirAll(filepath.Join(tmp, "in/deep"), 0o755)
	os.WriteFile(filepath.Join(tmp, "in/deep/h"), []byte("from host\n"), 0o644)
	d.Must("cp", filepath.Join(tmp, "in"), "cp:/data")
	if out := d.Must("exec", "cp", "cat", "/data/in/deep/h"); out != "from host\n" {
		t.Fatalf("cp into a directory: %q", out)
	}
	if out := d.Must("exec", "cp", "stat", "-c", "%u:%g", "/data/in/deep/h"); out != "0:0\n" {
		t.Fatalf("owner %q", out)
	}
	d.Must("cp", filepath.Join(tmp, "in/deep/h"), "cp:/renamed")
	if out := d.Must("exec", "cp", "cat", "/renamed"); out != "from host\n" {
		t.Fatalf("cp to a new name: %q", out)
	}
	// A hostile tar: a symlink to / and a file through it; ".." names.
	evil := tarOf(t,
		tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/", Mode: 0o777},
		tar.Header{Name: "l/tmp/silo-cp-escape", Typeflag: tar.TypeReg, Linkname: "pwned", Mode: 0o644},
	)
	d.cpStdin(t, evil, "cp:/data")
	if _, err := os.Stat("/tmp/silo-cp-escape"); err == nil {
		os.Remove("/tmp/silo-cp-escape")
		t.Fatal("a tar wrote outside the container")
	}
	if out, code := d.cpStdin(t, tarOf(t, tar.Header{Name: "../../up", Typeflag: tar.TypeReg, Linkname: "x", Mode: 0o644}), "cp:/data"); code == 0 {
		t.Fatalf("a .. entry was accepted: %q", out)
	}
	if _, _, code := d.Silo("cp", "cp:/no/such", tmp); code == 0 {
		t.Fatal("cp of a missing path succeeded")
	}

	// A stopped container: the sandbox is mounted for the copy only.
	d.Must("stop", "-t", "0", "cp")
	d.Must("cp", "cp:/data/f", filepath.Join(tmp, "f3"))
	d.Must("cp", "cp:/vol/x", filepath.Join(tmp, "x3"))
	d.Must("cp", filepath.Join(tmp, "in/deep/h"), "cp:/data/while-stopped")
	if readFile(t, filepath.Join(tmp, "f3")) != "a\n" || readFile(t, filepath.Join(tmp, "x3")) != "v\n" {
		t.Fatal("cp from a stopped container")
	}
	if m := harness.MountsUnder(d.Data); len(m) != 0 {
		t.Fatalf("a stopped container's sandbox stays mounted: %v", m)
	}
	d.Must("start", "cp")
	if out := d.Must("exec", "cp", "cat", "/data/while-stopped"); out != "from host\n" {
		t.Fatalf("cp into a stopped container: %q", out)
	}

	if !harness.HaveDocker() {
		t.Skip("no docker CLI")
	}
	d.DockerOK(t, "cp", "cp:/data/sub", filepath.Join(tmp, "dsub"))
	if readFile(t, filepath.Join(tmp, "dsub/g")) != "b\n" {
		t.Fatal("docker cp from a container")
	}
	d.DockerOK(t, "cp", filepath.Join(tmp, "in"), "cp:/vol")
	if out := d.Must("exec", "cp", "cat", "/vol/in/deep/h"); out != "from host\n" {
		t.Fatalf("docker cp into a volume: %q", out)
	}
	d.DockerOK(t, "cp", filepath.Join(tmp, "f2"), "cp:/data/f2")
	if out := d.Must("exec", "cp", "cat", "/data/f2"); out != "a\n" {
		t.Fatalf("docker cp of a file: %q", out)
	}
}
