//go:build integration

package engine

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startRegistry runs Debian's docker-registry on a free loopback port and
// stops it when the test ends (as internal/storage's tests do).
func startRegistry(t *testing.T) string {
	t.Helper()
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
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	// Its request log is noise here: kept in the temp dir.
	if log, err := os.Create(filepath.Join(dir, "registry.log")); err == nil {
		cmd.Stdout, cmd.Stderr = log, log
		defer log.Close()
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("registry did not start")
	return ""
}

// tarNames lists the entries of a tar file.
func tarNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		names = append(names, h.Name)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// silo tag, push, rmi, pull, run, save against a local registry.
func TestPushPull(t *testing.T) {
	addr := startRegistry(t)
	d := newDaemon(t)
	d.must("image", "build-busybox")
	ref := addr + "/test/busybox:1"
	d.must("tag", "busybox", ref)
	if out := d.must("push", ref); !strings.Contains(out, "The push refers to repository ["+addr+"/test/busybox]") || !strings.Contains(out, "1: digest: sha256:") {
		t.Fatalf("push: %q", out)
	}
	// Drop both names: the image is gone and the pull downloads it.
	d.must("image", "rm", ref)
	d.must("image", "rm", "busybox")
	if out := d.must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("images after rmi: %q", out)
	}
	out := d.must("pull", ref)
	if !strings.Contains(out, "Pulling from test/busybox") || !strings.Contains(out, "Pull complete") ||
		!strings.Contains(out, "Status: Downloaded newer image for "+ref) {
		t.Fatalf("pull: %q", out)
	}
	if out := d.must("pull", ref); !strings.Contains(out, "Status: Image is up to date for "+ref) {
		t.Fatalf("second pull: %q", out)
	}
	if out := d.must("run", "--rm", ref, "echo", "pulled"); out != "pulled\n" {
		t.Fatalf("run: %q", out)
	}
	// Absent image: an error, no stream.
	if _, errOut, code := d.silo("pull", addr+"/test/nothing:1"); code == 0 || !strings.Contains(errOut, "not found") && !strings.Contains(errOut, "unknown") {
		t.Fatalf("pull of an absent image: exit %d %q", code, errOut)
	}
	if _, errOut, code := d.silo("push", addr+"/test/nothing:1"); code == 0 || !strings.Contains(errOut, "does not exist locally") {
		t.Fatalf("push of an absent image: exit %d %q", code, errOut)
	}
	// save → rmi → load.
	file := filepath.Join(t.TempDir(), "busybox.tar")
	d.must("image", "save", "-o", file, ref)
	if names := tarNames(t, file); !contains(names, "manifest.json") {
		t.Fatalf("save tar: %v", names)
	}
	d.must("image", "rm", ref)
	if out := d.must("load", "-i", file); !strings.Contains(out, "Loaded image: "+ref) {
		t.Fatalf("load of the saved tar: %q", out)
	}
	if out := d.must("run", "--rm", ref, "echo", "loaded"); out != "loaded\n" {
		t.Fatalf("run after load: %q", out)
	}
}

// The stock docker CLI pulls, pushes, tags and saves through silod.
func TestDockerPushPull(t *testing.T) {
	if !haveDocker() {
		t.Skip("no docker CLI")
	}
	addr := startRegistry(t)
	d := newDaemon(t)
	d.must("image", "build-busybox")
	docker, env := dockerCLI, d.dockerEnv()
	dk := func(args ...string) string { t.Helper(); return d.dockerOK(t, args...) }
	ref := addr + "/test/dbox:2"
	dk("tag", "busybox", ref)
	if out := dk("push", ref); !strings.Contains(out, "2: digest: sha256:") {
		t.Fatalf("docker push: %q", out)
	}
	dk("rmi", ref)
	dk("rmi", "busybox")
	if out := dk("pull", ref); !strings.Contains(out, "Downloaded newer image for "+ref) {
		t.Fatalf("docker pull: %q", out)
	}
	if out := dk("run", "--rm", ref, "echo", "pulled"); out != "pulled\n" {
		t.Fatalf("docker run: %q", out)
	}
	file := filepath.Join(t.TempDir(), "dbox.tar")
	dk("save", "-o", file, ref)
	if names := tarNames(t, file); !contains(names, "manifest.json") {
		t.Fatalf("docker save tar: %v", names)
	}
	if _, errOut, code := d.run(docker, []string{"pull", addr + "/test/nothing:1"}, env); code == 0 || errOut == "" {
		t.Fatalf("docker pull of an absent image: exit %d %q", code, errOut)
	}
}
