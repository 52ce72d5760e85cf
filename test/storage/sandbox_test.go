//go:build integration

package storage

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/silo-containers/silo/test/harness"
)

const (
	gib = int64(1) << 30
	mib = int64(1) << 20
)

// TestSandboxLimit: a container writing 2 GiB into a 1 GiB sandbox gets
// ENOSPC, the host loses at most ~1.1 GiB while it holds that data and
// gets it back when the container is removed.
func TestSandboxLimit(t *testing.T) {
	d := harness.NewDaemon(t, cgroupParent)
	d.Must("image", "build-busybox")
	sandboxes := filepath.Join(d.Data, "engine", "containers")

	free0 := freeBytes(t, d.Data)
	// The lowest free space seen while the container runs and after,
	// sampled every 50 ms until stopSampling.
	minFree := free0
	stop, done := make(chan struct{}), make(chan struct{})
	stopSampling := sync.OnceFunc(func() { close(stop); <-done })
	defer stopSampling()
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			// Not freeBytes: t.Fatal must not be called from here.
			var st syscall.Statfs_t
			if syscall.Statfs(d.Data, &st) != nil {
				continue
			}
			minFree = min(minFree, int64(st.Bfree)*st.Bsize)
		}
	}()
	start := time.Now()
	out, errOut, code := d.Silo("run", "--name", "big", "--storage-opt", "size=1G", "busybox",
		"sh", "-c", "dd if=/dev/zero of=/big bs=1M count=2048")
	took := time.Since(start)
	if code == 0 {
		t.Fatalf("dd of 2 GiB into a 1 GiB sandbox succeeded:\n%s%s", out, errOut)
	}
	if !strings.Contains(out+errOut, "No space left on device") {
		t.Fatalf("exit %d without ENOSPC:\nstdout: %s\nstderr: %s\n%s", code, out, errOut, d.Tail())
	}
	stopSampling() // minFree is ours from here
	t.Logf("dd hit ENOSPC after %v: %s", took.Round(time.Millisecond), lastLine(out+errOut))

	ids := strings.Fields(d.Must("ps", "-aq", "--no-trunc", "--filter", "name=big"))
	if len(ids) != 1 {
		t.Fatalf("containers named big: %v", ids)
	}
	img := filepath.Join(sandboxes, ids[0], "sandbox", "sandbox.img")
	imgBytes := allocated(t, img)
	drop := free0 - minFree
	t.Logf("sandbox image holds %d MiB; host free space dropped by at most %d MiB", imgBytes/mib, drop/mib)
	// The image holds what dd wrote (about 1 GiB: the data reached the
	// disk, this is not a test of a sparse file) and never more than
	// the sandbox size plus ext4's metadata.
	if imgBytes < 900*mib || imgBytes > gib+gib/100 {
		t.Errorf("sandbox image allocates %d MiB, want about 1024", imgBytes/mib)
	}
	// The host file system lost about that, not 2 GiB (other work on the
	// machine moves statfs a little: hence 1.1).
	if drop > gib+gib/10 {
		t.Errorf("host free space dropped by %d MiB, want at most 1126", drop/mib)
	}

	d.Must("rm", "big")
	// The directory goes to the engine's trash and is deleted in the
	// background: wait for the space to come back.
	var free1 int64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		free1 = freeBytes(t, d.Data)
		if free0-free1 < 100*mib || time.Now().After(deadline) {
			break
		}
	}
	if _, err := os.Stat(filepath.Join(sandboxes, ids[0])); !os.IsNotExist(err) {
		t.Errorf("container directory still there after rm: %v", err)
	}
	if free0-free1 >= 100*mib {
		t.Errorf("after rm the host has %d MiB less free space than before the run", (free0-free1)/mib)
	}
	if trash := diskUsage(t, filepath.Join(d.Data, "engine", "trash")); trash > mib {
		t.Errorf("engine trash still holds %d KiB", trash>>10)
	}
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

// TestSandboxesShareLayers: two containers of one image mount the same
// layer directories as their overlay lower layers, and the data root grows
// by the sandboxes' metadata only, not by a copy of the image.
func TestSandboxesShareLayers(t *testing.T) {
	d := harness.NewDaemon(t, cgroupParent)
	d.Must("image", "build-busybox")
	// An image whose own layer is big enough to see a copy of it: 16 MiB
	// of random data (incompressible, not sparse).
	ctx := t.TempDir()
	df := "FROM busybox\nRUN head -c 16777216 /dev/urandom > /blob\n"
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Must("build", "-q", "-t", "shared:1", ctx)
	d.Must("builder", "prune")

	layersRoot := filepath.Join(d.Data, "image", "layers")
	before := settledUsage(t, d.Data) // after the build's clean-up
	var lowers [][]string
	for _, name := range []string{"one", "two"} {
		id := strings.TrimSpace(d.Must("run", "-d", "--name", name, "shared:1", "sh", "-c", "wc -c < /blob; exec sleep 600"))
		sb := filepath.Join(d.Data, "engine", "containers", id, "sandbox")
		l := overlayLowers(t, filepath.Join(sb, "rootfs"))
		var chain []string
		b, err := os.ReadFile(filepath.Join(sb, "layerchain.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &chain); err != nil {
			t.Fatalf("layerchain.json of %s: %v", name, err)
		}
		if !slices.Equal(l, chain) {
			t.Errorf("%s: overlay lowers %v, layerchain.json %v", name, l, chain)
		}
		lowers = append(lowers, l)
	}
	after := diskUsage(t, d.Data)
	t.Logf("lower layers: %v", lowers[0])
	if len(lowers[0]) != 2 {
		t.Errorf("container one has %d lower layers, want 2 (busybox + RUN)", len(lowers[0]))
	}
	if !slices.Equal(lowers[0], lowers[1]) {
		t.Errorf("the containers' lower layers differ:\n%v\n%v", lowers[0], lowers[1])
	}
	for _, l := range lowers[0] {
		if filepath.Dir(filepath.Dir(l)) != layersRoot || filepath.Base(l) != "diff" {
			t.Errorf("lower layer %s is not a directory of the layer store %s", l, layersRoot)
		}
	}
	// The layer with the blob is on disk once. (The containers run: a
	// sandbox is mounted from create to removal, and growth counts what
	// their first seconds of running add, logs and all.)
	blobLayer := diskUsage(t, lowers[0][0])
	growth := after - before
	t.Logf("top layer %d KiB on disk; data root grew by %d KiB for two containers", blobLayer>>10, growth>>10)
	if blobLayer < 16*mib {
		t.Fatalf("the top layer holds %d KiB, want the 16 MiB blob", blobLayer>>10)
	}
	if growth > 4*mib {
		t.Errorf("two containers grew the data root by %d KiB: more than their sandboxes' metadata (layers copied?)", growth>>10)
	}
	for _, name := range []string{"one", "two"} {
		var out string
		for deadline := time.Now().Add(10 * time.Second); out == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			out = strings.TrimSpace(d.Must("logs", name))
		}
		if out != "16777216" {
			t.Errorf("%s reads %q bytes of /blob, want 16777216", name, out)
		}
	}
	d.Must("rm", "-f", "one", "two")
}
