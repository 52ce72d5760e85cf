//go:build integration

// Package storage holds root integration tests of image storage through
// silod: a multi-layer image pushed to and pulled from a loopback
// registry, run, changed, pushed again and pulled by digest; save/load.
package storage

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/silo-containers/silo/test/harness"
)

const cgroupParent = "/silo-itest-storage"

// multiLayer is built on busybox: three layers of its own, one of which
// deletes a file an earlier one made (a whiteout).
const multiLayer = `FROM busybox
RUN echo one > /one && echo gone > /gone && mkdir /d
RUN rm /gone && echo two > /d/two
COPY three /three
`

func TestMultiLayerRoundTrip(t *testing.T) {
	addr := harness.StartRegistry(t)
	d := harness.NewDaemon(t, cgroupParent)
	d.Must("image", "build-busybox")
	ctx := t.TempDir()
	for name, body := range map[string]string{"Dockerfile": multiLayer, "three": "three\n"} {
		if err := os.WriteFile(filepath.Join(ctx, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ref := addr + "/test/multi:1"
	d.Must("build", "-q", "-t", ref, ctx)
	layers := strings.TrimSpace(d.Must("image", "inspect", "-f", "{{len .RootFS.Layers}}", ref))
	if layers != "4" {
		t.Fatalf("the image has %s layers, want 4 (busybox + 3)", layers)
	}
	d.Must("push", ref)

	// Nothing local any more: the pull downloads every layer.
	d.Must("image", "rm", ref)
	d.Must("builder", "prune")
	d.Must("image", "rm", "busybox")
	if out := d.Must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("images left before the pull: %q", out)
	}
	d.Must("pull", ref)
	check := "cat /one /d/two /three && ! test -e /gone && echo whiteout-ok"
	if out := d.Must("run", "--rm", ref, "sh", "-c", check); out != "one\ntwo\nthree\nwhiteout-ok\n" {
		t.Fatalf("pulled image: %q", out)
	}

	// Change it in a container, commit, push under a new tag; pull that
	// back by digest alone.
	d.Must("run", "--name", "change", ref, "sh", "-c", "echo four > /four && rm /one")
	ref2 := addr + "/test/multi:2"
	d.Must("commit", "change", ref2)
	d.Must("rm", "change")
	out := d.Must("push", ref2)
	m := regexp.MustCompile(`2: digest: (sha256:[0-9a-f]{64})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("push printed no digest: %q", out)
	}
	byDigest := addr + "/test/multi@" + m[1]
	d.Must("image", "rm", ref2)
	d.Must("image", "rm", ref)
	d.Must("pull", byDigest)
	if out := d.Must("run", "--rm", byDigest, "sh", "-c", "cat /four /d/two && ! test -e /one && echo ok"); out != "four\ntwo\nok\n" {
		t.Fatalf("image pulled by digest: %q", out)
	}
	if out := d.Must("image", "inspect", "-f", "{{.RepoDigests}}", byDigest); !strings.Contains(out, m[1]) {
		t.Errorf("RepoDigests lack %s: %s", m[1], out)
	}

	// save → rm → load gives the same image back under its name.
	id := strings.TrimSpace(d.Must("image", "inspect", "-f", "{{.Id}}", byDigest))
	saved := addr + "/test/multi:saved"
	d.Must("tag", byDigest, saved)
	file := filepath.Join(t.TempDir(), "multi.tar")
	d.Must("image", "save", "-o", file, saved)
	d.Must("image", "rm", byDigest)
	d.Must("image", "rm", saved)
	if out := d.Must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("images left before the load: %q", out)
	}
	d.Must("load", "-i", file)
	if got := strings.TrimSpace(d.Must("image", "inspect", "-f", "{{.Id}}", saved)); got != id {
		t.Fatalf("loaded image id %s, want %s", got, id)
	}
	if out := d.Must("run", "--rm", saved, "cat", "/four"); out != "four\n" {
		t.Fatalf("loaded image: %q", out)
	}
}
