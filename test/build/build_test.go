//go:build integration

package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silo-containers/silo/test/harness"
)

// writeContext makes a build context directory from name → content.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const siteDockerfile = `FROM busybox
RUN mkdir -p /www && echo old > /www/old.html && rm -rf /www/*
WORKDIR /www
COPY index.html .
CMD ["httpd","-f","-p","80","-h","/www"]
`

// noBuildLeftovers checks that no intermediate container is left.
func (d *daemon) noBuildLeftovers(t *testing.T) {
	t.Helper()
	if out := d.Must("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left after the build: %q", out)
	}
	ents, _ := os.ReadDir(filepath.Join(d.Data, "build"))
	for _, e := range ents {
		t.Errorf("build work directory left: %s", e.Name())
	}
}

func TestBuildSite(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	ctx := writeContext(t, map[string]string{"Dockerfile": siteDockerfile, "index.html": "<h1>silo site</h1>\n", ".dockerignore": "secret.txt\n", "secret.txt": "no"})
	out := d.Must("build", "-t", "iis-site", "--progress", "plain", ctx)
	for _, want := range []string{"Step 1/5 : FROM busybox", "Step 2/5 : RUN", "Step 4/5 : COPY index.html .", "Successfully built", "Successfully tagged iis-site"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	d.noBuildLeftovers(t)
	// The seed's run: published on the host's port 8000.
	d.Must("run", "-d", "-p", "8000:80", "--name", "my-running-site", "iis-site")
	if page := d.Fetch(t, "127.0.0.1", "8000"); !strings.HasSuffix(page, "\r\n\r\n<h1>silo site</h1>\n") {
		t.Errorf("http://127.0.0.1:8000/index.html answered %q", page)
	}
	// The RUN's deletion is in the image: the whiteout hid old.html.
	if o, _, code := d.Silo("exec", "my-running-site", "ls", "/www"); code != 0 || strings.TrimSpace(o) != "index.html" {
		t.Errorf("ls /www: %q (exit %d)", o, code)
	}
	d.Must("rm", "-f", "my-running-site")

	// A rebuild with nothing changed: every step from the cache, no container.
	start := time.Now()
	out = d.Must("build", "-t", "iis-site", ctx)
	took := time.Since(start)
	if strings.Count(out, "Using cache") != 4 || strings.Contains(out, "Running in") {
		t.Errorf("rebuild did not use the cache for every step:\n%s", out)
	}
	t.Logf("no-change rebuild: %v", took)
	d.noBuildLeftovers(t)

	// One changed COPY input rebuilds from that step on.
	os.WriteFile(filepath.Join(ctx, "index.html"), []byte("<h1>v2</h1>\n"), 0o644)
	out = d.Must("build", "-t", "iis-site", ctx)
	if strings.Count(out, "Using cache") != 2 {
		t.Errorf("changed COPY input: want the 2 steps before it cached:\n%s", out)
	}
	// The built image's last tag can be removed.
	d.Must("image", "rm", "iis-site")
	// builder prune empties the cache: the next build runs every step.
	if out := d.Must("builder", "prune"); !strings.Contains(out, "Total: ") {
		t.Errorf("prune: %s", out)
	}
	if out := d.Must("build", ctx); strings.Contains(out, "Using cache") {
		t.Errorf("build after prune used the cache:\n%s", out)
	}
	d.noBuildLeftovers(t)
}

func TestBuildMultiStageTargetWhiteout(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	ctx := writeContext(t, map[string]string{"Dockerfile": `ARG MSG=hello
FROM busybox AS builder
ARG MSG
RUN mkdir /out && echo "$MSG from builder" > /out/result.txt && echo gone > /out/tmp && rm /out/tmp
FROM busybox
COPY --from=builder /out/ /app/
COPY --from=busybox /bin/busybox /copied/busybox
RUN rm /bin/vi
LABEL stage=final
`})
	d.Must("build", "-t", "multi", "--build-arg", "MSG=built", ctx)
	out := d.Must("run", "--rm", "multi", "cat", "/app/result.txt")
	if out != "built from builder\n" {
		t.Errorf("result %q", out)
	}
	if _, _, code := d.Silo("run", "--rm", "multi", "ls", "/bin/vi"); code == 0 {
		t.Error("/bin/vi removed in a RUN is still in the image")
	}
	if o := d.Must("run", "--rm", "multi", "/copied/busybox", "echo", "image source"); o != "image source\n" {
		t.Errorf("COPY --from an image: %q", o)
	}
	if _, _, code := d.Silo("run", "--rm", "multi", "ls", "/app/tmp"); code == 0 {
		t.Error("/app/tmp is in the image")
	}
	// --target stops at the builder stage.
	out = d.Must("build", "--target", "builder", "-t", "onlybuilder", ctx)
	if strings.Contains(out, "COPY --from") || strings.Contains(out, "LABEL") {
		t.Errorf("--target built past the builder stage:\n%s", out)
	}
	if o := d.Must("run", "--rm", "onlybuilder", "cat", "/out/result.txt"); o != "hello from builder\n" {
		t.Errorf("builder stage result %q", o)
	}
	d.noBuildLeftovers(t)
}

func TestBuildFailures(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"failing run", map[string]string{"Dockerfile": "FROM busybox\nRUN echo about to fail && false\n"},
			"The command '/bin/sh -c echo about to fail && false' returned a non-zero code: 1"},
		{"bad instruction", map[string]string{"Dockerfile": "FROM busybox\nFROB x\n"}, "dockerfile line 2: unknown instruction: FROB"},
		{"copy parent", map[string]string{"Dockerfile": "FROM busybox\nCOPY ../x /x\n"}, "forbidden path outside the build context: ../x"},
		{"symlink out", map[string]string{"Dockerfile": "FROM busybox\nCOPY link /x\n"}, "symlink link points out of the build context"},
		{"missing image", map[string]string{"Dockerfile": "FROM nosuchimage\n"}, "no such image: nosuchimage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := writeContext(t, tt.files)
			if tt.name == "symlink out" {
				os.Symlink("/etc/shadow", filepath.Join(ctx, "link"))
			}
			out, errOut, code := d.Silo("build", ctx)
			if code == 0 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q, want %q\nstdout: %s", code, errOut, tt.want, out)
			}
			if tt.name == "failing run" && !strings.Contains(out, "about to fail") {
				t.Errorf("the RUN's output is not in the progress:\n%s", out)
			}
			d.noBuildLeftovers(t)
		})
	}
}

func TestDockerCLIBuild(t *testing.T) {
	if !harness.HaveDocker() {
		t.Skip("no docker CLI")
	}
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	ctx := writeContext(t, map[string]string{"Dockerfile": siteDockerfile, "index.html": "<h1>docker</h1>\n"})
	_, errOut, code := d.Run(harness.DockerCLI, []string{"build", "-t", "iis-site-docker", ctx}, append(d.DockerEnv(), "DOCKER_BUILDKIT=0"))
	if code != 0 {
		t.Fatalf("docker build: exit %d: %s\n%s", code, errOut, d.Tail())
	}
	d.DockerOK(t, "run", "-d", "-p", "8000:80", "--name", "my-running-site", "iis-site-docker")
	if page := d.Fetch(t, "127.0.0.1", "8000"); !strings.HasSuffix(page, "\r\n\r\n<h1>docker</h1>\n") {
		t.Errorf("http://127.0.0.1:8000/index.html answered %q", page)
	}
	d.DockerOK(t, "rm", "-f", "my-running-site")
	d.noBuildLeftovers(t)
}

// tarGz makes a gzipped tar of name → content.
func tarGz(files map[string]string) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.String()
}

func TestBuildCopyAddFlags(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	// ADD of a URL: served on loopback by the test itself.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "remote content\n")
	}))
	defer srv.Close()
	df := `FROM busybox
ARG GREETING=hi
ENV APP=/app
COPY --chown=1000:1000 --chmod=640 files/*.txt $APP/
COPY files/ /all/
ADD app.tar.gz /opt/
ADD ` + srv.URL + `/remote.txt /remote/
COPY <<EOT /inline.txt
inline ${GREETING}
EOT
RUN <<EOF
echo "$GREETING" > /greeting
EOF
WORKDIR /app
STOPSIGNAL SIGINT
CMD ["cat", "/greeting"]
`
	ctx := writeContext(t, map[string]string{
		"Dockerfile": df, "files/a.txt": "a\n", "files/b.txt": "b\n", "files/c.log": "ignored\n",
		".dockerignore": "**/*.log\n", "app.tar.gz": tarGz(map[string]string{"dir/x.txt": "from the tar\n"}),
	})
	d.Must("build", "-t", "flags", "--build-arg", "GREETING=yo", "--label", "built.by=test", ctx)
	checks := []struct {
		args []string
		want string
	}{
		{[]string{"stat", "-c", "%u:%g %a", "/app/a.txt", "/app/b.txt"}, "1000:1000 640\n1000:1000 640\n"},
		{[]string{"ls", "/all"}, "a.txt\nb.txt\n"},
		{[]string{"cat", "/opt/dir/x.txt"}, "from the tar\n"},
		{[]string{"cat", "/remote/remote.txt"}, "remote content\n"},
		{[]string{"stat", "-c", "%a", "/remote/remote.txt"}, "600\n"},
		{[]string{"cat", "/inline.txt"}, "inline yo\n"},
		{[]string{"pwd"}, "/app\n"},
		{nil, "yo\n"},
	}
	for _, c := range checks {
		out := d.Must(append([]string{"run", "--rm", "flags"}, c.args...)...)
		if out != c.want {
			t.Errorf("%v: %q, want %q", c.args, out, c.want)
		}
	}
	insp := d.apiGet(t, "/images/flags/json")
	for _, want := range []string{`"built.by":"test"`, `"StopSignal":"SIGINT"`, `"APP=/app"`} {
		if !strings.Contains(insp, want) {
			t.Errorf("inspect lacks %s:\n%s", want, insp)
		}
	}
	d.noBuildLeftovers(t)
}

// apiGet fetches path from the daemon's API.
func (d *daemon) apiGet(t *testing.T, path string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
	}}}
	resp, err := c.Get("http://silo" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	return string(b)
}

func TestBuildOutsideDockerfileNoNetwork(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	ctx := writeContext(t, map[string]string{"data.txt": "data\n"})
	df := filepath.Join(t.TempDir(), "build.Dockerfile")
	os.WriteFile(df, []byte("FROM busybox\nCOPY data.txt /\nRUN cat /data.txt && ls /sys/class/net > /ifaces\n"), 0o644)
	out := d.Must("build", "-f", df, "--network", "none", "-t", "outside", ctx)
	if !strings.Contains(out, "data\n") {
		t.Errorf("RUN output missing:\n%s", out)
	}
	if o := d.Must("run", "--rm", "outside", "cat", "/ifaces"); o != "lo\n" {
		t.Errorf("interfaces of a --network none RUN: %q", o)
	}
	// The private Dockerfile name did not end up in the image.
	if _, _, code := d.Silo("run", "--rm", "outside", "sh", "-c", "ls -a / | grep -q dockerfile"); code == 0 {
		t.Error("the Dockerfile sent along is in the image")
	}
	// -q prints only the ID.
	if o := strings.TrimSpace(d.Must("build", "-q", "-f", df, "--network", "none", ctx)); !strings.HasPrefix(o, "sha256:") || strings.Contains(o, "\n") {
		t.Errorf("build -q printed %q", o)
	}
	d.noBuildLeftovers(t)
}

func TestCommit(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	d.Must("run", "--name", "work", "busybox", "sh", "-c", "echo made > /made.txt && rm /bin/vi")
	id := strings.TrimSpace(d.Must("commit", "-m", "by test", "-a", "tester", "work", "committed:v1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("commit printed %q", id)
	}
	if o := d.Must("run", "--rm", "committed:v1", "cat", "/made.txt"); o != "made\n" {
		t.Errorf("committed file: %q", o)
	}
	if _, _, code := d.Silo("run", "--rm", "committed:v1", "ls", "/bin/vi"); code == 0 {
		t.Error("a file the container deleted is in the committed image")
	}
	// The container's sandbox is unmounted again after the commit.
	if m := harness.MountsSettled(d.Data); len(m) != 0 {
		t.Errorf("mounts after commit of a stopped container: %v", m)
	}
	if harness.HaveDocker() {
		d.DockerOK(t, "commit", "work", "bydocker")
		if o := d.Must("run", "--rm", "bydocker", "cat", "/made.txt"); o != "made\n" {
			t.Errorf("docker commit: %q", o)
		}
		// --change is not supported yet: refused, not ignored.
		if _, _, code := d.Run(harness.DockerCLI, []string{"commit", "--change", "CMD [\"x\"]", "work", "changed"}, d.DockerEnv()); code == 0 {
			t.Error("commit --change was accepted")
		}
	}
}

// TestCachePersists rebuilds after a daemon restart and a forced GC (an
// image removal): every step still comes from the cache.
func TestCachePersists(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	ctx := writeContext(t, map[string]string{"Dockerfile": siteDockerfile, "index.html": "x\n"})
	d.Must("build", "-t", "site", ctx)
	d.Stop()
	d.Start()
	// Removing an unrelated image runs the store's GC.
	d.Must("image", "tag", "busybox", "other")
	d.Must("image", "rm", "other")
	time.Sleep(500 * time.Millisecond) // the GC runs in the background
	out := d.Must("build", "-t", "site", ctx)
	if strings.Count(out, "Using cache") != 4 || strings.Contains(out, "Running in") {
		t.Errorf("after a restart the cache was not used:\n%s", out)
	}
	d.noBuildLeftovers(t)
}
