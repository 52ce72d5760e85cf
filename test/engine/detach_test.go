//go:build integration

package engine

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/silo-containers/silo/test/harness"
)

// startInPty runs a CLI in a new pty and collects its output.
func startInPty(t *testing.T, ctx context.Context, bin string, env []string, args ...string) (*exec.Cmd, io.Writer, *ptyOutput) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cmd.Environ(), env...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	out := &ptyOutput{}
	go func() { _, _ = io.Copy(out, ptmx) }()
	t.Cleanup(func() { ptmx.Close() })
	return cmd, ptmx, out
}

// waitExit waits for cmd and fails unless it exits with code within d.
func waitExit(t *testing.T, cmd *exec.Cmd, out *ptyOutput, code int, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		if got := cmd.ProcessState.ExitCode(); got != code {
			t.Fatalf("%s: exit %d, want %d; output %q", cmd.Args[0], got, code, out.String())
		}
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not detach; output %q", cmd.Args[0], out.String())
	}
}

// TestDetachKeys detaches from `silo run -it`, `silo attach` (custom
// keys), `docker attach` and a raw API attach with detachKeys: each time
// the client ends and the container runs on.
func TestDetachKeys(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	silo := func(args ...string) []string {
		return append([]string{"--host", d.Host(), "--no-start-daemon"}, args...)
	}
	running := func(t *testing.T, name string) {
		t.Helper()
		if s := d.Must("inspect", "-f", "{{.State.Running}}", name); s != "true\n" {
			t.Fatalf("%s after detach: running %q\n%s", name, s, d.Tail())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	t.Run("run -it ctrl-p ctrl-q", func(t *testing.T) {
		cmd, term, out := startInPty(t, ctx, harness.RepoBin("silo"), nil, silo("run", "-it", "--name", "det", "busybox", "sh")...)
		out.waitFor(t, "# ", 20*time.Second)
		// ctrl-p alone is input (the shell gets it); the pair detaches.
		if _, err := io.WriteString(term, "\x10"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if _, err := io.WriteString(term, "\x10\x11"); err != nil {
			t.Fatal(err)
		}
		waitExit(t, cmd, out, 0, 10*time.Second)
		running(t, "det")
	})

	// docker attach ends a detach with "read escape sequence" and exit 1.
	t.Run("attach with --detach-keys", func(t *testing.T) {
		cmd, term, out := startInPty(t, ctx, harness.RepoBin("silo"), nil, silo("attach", "--detach-keys", "ctrl-a,x", "det")...)
		// The shell is where we left it: it answers.
		out.askUntil(t, term, "echo al''ive\r", "alive", 10*time.Second)
		if _, err := io.WriteString(term, "\x01x"); err != nil {
			t.Fatal(err)
		}
		waitExit(t, cmd, out, 1, 10*time.Second)
		out.waitFor(t, "read escape sequence", 5*time.Second)
		running(t, "det")
	})

	t.Run("bad keys", func(t *testing.T) {
		_, errOut, code := d.Silo("attach", "--detach-keys", "ctrl-1", "det")
		if code == 0 || !strings.Contains(errOut, "invalid key") {
			t.Fatalf("exit %d, %q", code, errOut)
		}
	})

	t.Run("docker attach", func(t *testing.T) {
		if !harness.HaveDocker() {
			t.Skip("no docker CLI")
		}
		cmd, term, out := startInPty(t, ctx, harness.DockerCLI, d.DockerEnv(), "attach", "det")
		out.askUntil(t, term, "echo do''cker\r", "docker", 10*time.Second)
		if _, err := io.WriteString(term, "\x10\x11"); err != nil {
			t.Fatal(err)
		}
		waitExit(t, cmd, out, 1, 10*time.Second)
		running(t, "det")
	})

	t.Run("docker run -it", func(t *testing.T) {
		if !harness.HaveDocker() {
			t.Skip("no docker CLI")
		}
		cmd, term, out := startInPty(t, ctx, harness.DockerCLI, d.DockerEnv(), "run", "-it", "--name", "drun", "busybox", "sh")
		out.waitFor(t, "# ", 20*time.Second)
		if _, err := io.WriteString(term, "\x10\x11"); err != nil {
			t.Fatal(err)
		}
		waitExit(t, cmd, out, 0, 10*time.Second)
		running(t, "drun")
	})

	// The daemon's own watch: an API client sends the keys; the daemon
	// ends the attachment and the container runs on. As dockerd, only with
	// a terminal: to a pipe, the keys are data.
	attach := func(t *testing.T, name string) (net.Conn, *bufio.Reader) {
		t.Helper()
		conn, err := net.Dial("unix", d.Socket)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		req := "POST /containers/" + name + "/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-x HTTP/1.1\r\n" +
			"Host: silo\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("attach: %v %v", resp, err)
		}
		return conn, br
	}
	t.Run("api detachKeys", func(t *testing.T) {
		d.Must("run", "-d", "-i", "-t", "--name", "tcat", "busybox", "cat")
		conn, br := attach(t, "tcat")
		if _, err := io.WriteString(conn, "ping\n"); err != nil {
			t.Fatal(err)
		}
		// The terminal echoes, cat repeats.
		line, err := br.ReadString('\n')
		if err != nil || !strings.Contains(line, "ping") {
			t.Fatalf("echo: %q %v", line, err)
		}
		if _, err := io.WriteString(conn, "\x18"); err != nil {
			t.Fatal(err)
		}
		// The daemon closes the stream.
		if rest, err := io.ReadAll(br); err != nil {
			t.Fatalf("after the detach keys: %q %v", rest, err)
		}
		running(t, "tcat")
	})

	t.Run("api detachKeys without a terminal", func(t *testing.T) {
		d.Must("run", "-d", "-i", "--name", "cat", "busybox", "cat")
		conn, br := attach(t, "cat")
		if _, err := io.WriteString(conn, "\x18\n"); err != nil {
			t.Fatal(err)
		}
		// cat repeats the keys: 8-byte header + "\x18\n".
		frame := make([]byte, 10)
		if _, err := io.ReadFull(br, frame); err != nil || string(frame[8:]) != "\x18\n" {
			t.Fatalf("echo: %q %v", frame, err)
		}
		running(t, "cat")
	})

	t.Run("api bad detachKeys", func(t *testing.T) {
		c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.Socket)
		}}}
		resp, err := c.Post("http://silo/containers/cat/attach?stream=1&stdin=1&detachKeys=ctrl-1", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid key") {
			t.Fatalf("status %d %s", resp.StatusCode, body)
		}
	})
}
