//go:build integration

package build

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silo-containers/silo/internal/storage/baseimage"
	"github.com/silo-containers/silo/test/harness"
)

// The Debian tests reach the host's Debian mirror (the one apt uses,
// baseimage.DefaultMirror) from the host, as apt does: containers have no
// uplink, so the packages a build needs go in at debootstrap time. There
// is no cache between runs: debootstrap of bookworm with gcc took about a
// minute here, and every run checks the whole path.

// needDebootstrap skips the test without debootstrap or without a
// reachable mirror.
func needDebootstrap(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		if _, err := os.Stat("/usr/sbin/debootstrap"); err != nil {
			t.Skip("debootstrap not installed (apt-get install debootstrap)")
		}
	}
	mirror := baseimage.DefaultMirror()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, mirror+"/dists/bookworm/Release", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Skipf("debian mirror %s unreachable (no network?): %v", mirror, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Skipf("debian mirror %s: %s", mirror, resp.Status)
	}
}

// siloLong runs silo against d with a long timeout (debootstrap takes
// minutes; harness.Run allows one).
func siloLong(t *testing.T, d *daemon, timeout time.Duration, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.RepoBin("silo"), append([]string{"--host", d.Host(), "--no-start-daemon"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// noDebootstrapLeftovers checks that the daemon kept no debootstrap tree.
func noDebootstrapLeftovers(t *testing.T, d *daemon) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(d.Data, "debootstrap"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("debootstrap tree left: %s", e.Name())
	}
}

// processesBesidesSilod lists the processes under d's root other than
// silod itself (whose command line names the root).
func processesBesidesSilod(d *daemon) []int {
	var out []int
	for _, p := range harness.ProcessesUnder(d.Root) {
		if p != d.Pid() {
			out = append(out, p)
		}
	}
	return out
}

const helloC = `#include <stdio.h>

int main(void)
{
	printf("hello from C, compiled on debian, running on busybox\n");
	return 0;
}
`

const helloDockerfile = `FROM debian:bookworm AS build
WORKDIR /src
COPY hello.c .
RUN gcc -static -O2 -o /hello hello.c
FROM busybox
COPY --from=build /hello /hello
CMD ["/hello"]
`

// TestDebianMultiStageC is issue 6's acceptance 2: debian:bookworm made
// with debootstrap (with gcc), a C program compiled in a builder stage on
// it and copied into a busybox stage; --target stops at the builder.
func TestDebianMultiStageC(t *testing.T) {
	needDebootstrap(t)
	d := newDaemon(t)

	start := time.Now()
	out, errOut, err := siloLong(t, d, 4*time.Minute, "image", "build-debian", "--include", "gcc,libc6-dev")
	took := time.Since(start)
	if err != nil {
		t.Fatalf("build-debian: %v\nstdout:\n%s\nstderr: %s\nsilod log:\n%s", err, out, errOut, d.Tail())
	}
	imported := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Imported ") {
			imported = " (" + l + ")"
		}
	}
	t.Logf("build-debian --include gcc,libc6-dev: %v%s", took.Round(time.Second), imported)
	for _, want := range []string{"I: Retrieving", "I: Base system installed successfully.", "Importing the tree as debian:bookworm", "Loaded image: debian:bookworm"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
	noDebootstrapLeftovers(t, d)
	if v := d.Must("run", "--rm", "debian:bookworm", "cat", "/etc/debian_version"); !strings.HasPrefix(v, "12.") {
		t.Errorf("/etc/debian_version: %q", v)
	}
	if insp := d.Must("image", "inspect", "debian:bookworm"); !strings.Contains(insp, `"Cmd": [`) || !strings.Contains(insp, `"bash"`) {
		t.Errorf("debian config lacks Cmd [bash]:\n%s", insp)
	}
	// No apt lists or downloaded packages in the image.
	if o := d.Must("run", "--rm", "debian:bookworm", "sh", "-c", "ls /var/cache/apt/archives/*.deb /var/lib/apt/lists/*_Packages 2>/dev/null | wc -l"); strings.TrimSpace(o) != "0" {
		t.Errorf("apt caches in the image: %s", o)
	}

	d.Must("image", "build-busybox")
	ctx := writeContext(t, map[string]string{"Dockerfile": helloDockerfile, "hello.c": helloC})
	start = time.Now()
	out = d.Must("build", "-t", "hello-c", ctx)
	t.Logf("multi-stage build: %v", time.Since(start).Round(100*time.Millisecond))
	for _, want := range []string{"FROM debian:bookworm AS build", "RUN gcc -static -O2 -o /hello hello.c", "COPY --from=build /hello /hello", "Successfully tagged hello-c"} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	if o := d.Must("run", "--rm", "hello-c"); o != "hello from C, compiled on debian, running on busybox\n" {
		t.Errorf("silo run --rm hello-c: %q", o)
	}
	// The final image is busybox plus the binary: no compiler.
	if _, _, code := d.Silo("run", "--rm", "hello-c", "ls", "/usr/bin/gcc"); code == 0 {
		t.Error("gcc is in the busybox stage")
	}
	d.noBuildLeftovers(t)

	// --target build: the builder stage only.
	out = d.Must("build", "--target", "build", "-t", "hello-build", ctx)
	if strings.Contains(out, "FROM busybox") || strings.Contains(out, "COPY --from") || strings.Contains(out, "CMD") {
		t.Errorf("--target built past the build stage:\n%s", out)
	}
	if o := d.Must("run", "--rm", "hello-build", "gcc", "--version"); !strings.Contains(o, "gcc (Debian 12") {
		t.Errorf("gcc --version in the build stage: %q", o)
	}
	if o := d.Must("run", "--rm", "hello-build", "/hello"); o != "hello from C, compiled on debian, running on busybox\n" {
		t.Errorf("/hello in the build stage: %q", o)
	}
	d.noBuildLeftovers(t)
}

// TestDebianBuildCancel interrupts build-debian (as Ctrl-C does) while
// dpkg installs into the tree: the daemon stops debootstrap and its
// children, drops its mounts and tree, and tags nothing.
func TestDebianBuildCancel(t *testing.T) {
	needDebootstrap(t)
	d := newDaemon(t)
	cmd := exec.Command(harness.RepoBin("silo"), "--host", d.Host(), "--no-start-daemon", "image", "build-debian", "-t", "debian:cancel")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the second stage (dpkg in the tree, /proc mounted there).
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(3 * time.Minute)
	inSecondStage := false
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("build-debian ended before its second stage: %s\n%s", errb.String(), d.Tail())
			}
			if strings.HasPrefix(l, "I: Installing core packages") {
				inSecondStage = true
			}
			if inSecondStage && strings.HasPrefix(l, "I: Unpacking") {
				break wait
			}
		case <-deadline:
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no second stage after 3 minutes\n%s", d.Tail())
		}
	}
	interrupted := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines {
		}
	}()
	cmd.Wait()

	// The daemon notices the closed connection and cleans up.
	var left []string
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		ents, _ := os.ReadDir(filepath.Join(d.Data, "debootstrap"))
		left = left[:0]
		for _, e := range ents {
			left = append(left, e.Name())
		}
		if len(left) == 0 && len(processesBesidesSilod(d)) == 0 {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("debootstrap trees left: %v", left)
	} else {
		t.Logf("tree and processes gone %v after the interrupt", time.Since(interrupted).Round(10*time.Millisecond))
	}
	if p := processesBesidesSilod(d); len(p) > 0 {
		t.Errorf("processes left: %v", p)
	}
	if m := harness.MountsSettled(d.Root); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	if _, _, code := d.Silo("image", "inspect", "debian:cancel"); code == 0 {
		t.Error("an interrupted build tagged its image")
	}
}
