//go:build integration

package engine

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-containers/silo/test/harness"
)

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
	addr := harness.StartRegistry(t)
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	ref := addr + "/test/busybox:1"
	d.Must("tag", "busybox", ref)
	if out := d.Must("push", ref); !strings.Contains(out, "The push refers to repository ["+addr+"/test/busybox]") || !strings.Contains(out, "1: digest: sha256:") {
		t.Fatalf("push: %q", out)
	}
	// Drop both names: the image is gone and the pull downloads it.
	d.Must("image", "rm", ref)
	d.Must("image", "rm", "busybox")
	if out := d.Must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("images after rmi: %q", out)
	}
	out := d.Must("pull", ref)
	if !strings.Contains(out, "Pulling from test/busybox") || !strings.Contains(out, "Pull complete") ||
		!strings.Contains(out, "Status: Downloaded newer image for "+ref) {
		t.Fatalf("pull: %q", out)
	}
	if out := d.Must("pull", ref); !strings.Contains(out, "Status: Image is up to date for "+ref) {
		t.Fatalf("second pull: %q", out)
	}
	if out := d.Must("run", "--rm", ref, "echo", "pulled"); out != "pulled\n" {
		t.Fatalf("run: %q", out)
	}
	// Absent image: an error, no stream.
	if _, errOut, code := d.Silo("pull", addr+"/test/nothing:1"); code == 0 || !strings.Contains(errOut, "not found") && !strings.Contains(errOut, "unknown") {
		t.Fatalf("pull of an absent image: exit %d %q", code, errOut)
	}
	if _, errOut, code := d.Silo("push", addr+"/test/nothing:1"); code == 0 || !strings.Contains(errOut, "does not exist locally") {
		t.Fatalf("push of an absent image: exit %d %q", code, errOut)
	}
	// save → rmi → load.
	file := filepath.Join(t.TempDir(), "busybox.tar")
	d.Must("image", "save", "-o", file, ref)
	if names := tarNames(t, file); !contains(names, "manifest.json") {
		t.Fatalf("save tar: %v", names)
	}
	d.Must("image", "rm", ref)
	if out := d.Must("load", "-i", file); !strings.Contains(out, "Loaded image: "+ref) {
		t.Fatalf("load of the saved tar: %q", out)
	}
	if out := d.Must("run", "--rm", ref, "echo", "loaded"); out != "loaded\n" {
		t.Fatalf("run after load: %q", out)
	}
	// run pulls a missing image itself (--pull missing, docker's default),
	// and not with --pull never.
	d.Must("image", "rm", ref)
	if _, errOut, code := d.Silo("run", "--rm", "--pull", "never", ref, "true"); code != 125 || !strings.Contains(errOut, "unable to find image") {
		t.Fatalf("run --pull never of a missing image: exit %d %q", code, errOut)
	}
	out, errOut, code := d.Silo("run", "--rm", ref, "echo", "auto")
	if code != 0 || out != "auto\n" || !strings.Contains(errOut, "Unable to find image '"+ref+"' locally") || !strings.Contains(errOut, "Pull complete") {
		t.Fatalf("run of a missing image: exit %d, %q %q", code, out, errOut)
	}
}

// The stock docker CLI pulls, pushes, tags and saves through silod.
func TestDockerPushPull(t *testing.T) {
	if !harness.HaveDocker() {
		t.Skip("no docker CLI")
	}
	addr := harness.StartRegistry(t)
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	docker, env := harness.DockerCLI, d.DockerEnv()
	dk := func(args ...string) string { t.Helper(); return d.DockerOK(t, args...) }
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
	if _, errOut, code := d.Run(docker, []string{"pull", addr + "/test/nothing:1"}, env); code == 0 || errOut == "" {
		t.Fatalf("docker pull of an absent image: exit %d %q", code, errOut)
	}
}
