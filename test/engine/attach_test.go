//go:build integration

package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/net/websocket"

	"github.com/silo-containers/silo/test/harness"
)

// ptyOutput collects what a process writes to a pty master.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *ptyOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *ptyOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// askUntil writes cmd to the terminal every 200 ms until o contains want:
// for answers that change asynchronously (a resize reaching the container).
func (o *ptyOutput) askUntil(t *testing.T, term io.Writer, cmd, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(o.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q after %q: %q", want, cmd, o.String())
		}
		_, _ = io.WriteString(term, cmd)
		time.Sleep(200 * time.Millisecond)
	}
}

// waitFor polls o until it contains s.
func (o *ptyOutput) waitFor(t *testing.T, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(o.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output: %q", s, o.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunInteractive drives `silo run -it` through a real pty, and
// `silo run -i` through a pipe.
func TestRunInteractive(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")

	t.Run("it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, harness.RepoBin("silo"), "--host", d.Host(), "--no-start-daemon", "run", "--rm", "-it", "busybox", "sh")
		ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		out := &ptyOutput{}
		copied := make(chan struct{})
		go func() { _, _ = io.Copy(out, ptmx); close(copied) }()
		// The shell's prompt: it came before any input, so the attach
		// made before the start got it.
		out.waitFor(t, "# ", 20*time.Second)
		// The terminal size made it into the container.
		if _, err := ptmx.WriteString("stty size\r"); err != nil {
			t.Fatal(err)
		}
		out.waitFor(t, "30 100", 10*time.Second)
		if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
			t.Fatal(err)
		}
		// SIGWINCH → resize: poll, the resize is asynchronous.
		out.askUntil(t, ptmx, "stty size\r", "40 120", 10*time.Second)
		if _, err := ptmx.WriteString("echo h''i; exit 5\r"); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 5 {
			t.Fatalf("silo run -it: %v, want exit 5; output %q\n%s", err, out.String(), d.Tail())
		}
		ptmx.Close()
		<-copied
		if !strings.Contains(out.String(), "\r\nhi\r\n") {
			t.Fatalf("no hi in %q", out.String())
		}
	})

	t.Run("i", func(t *testing.T) {
		cmd := exec.Command(harness.RepoBin("silo"), "--host", d.Host(), "--no-start-daemon", "run", "--rm", "-i", "busybox", "cat")
		cmd.Stdin = strings.NewReader("hello\n")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		got, err := cmd.Output()
		if err != nil || string(got) != "hello\n" {
			t.Fatalf("echo hello | silo run -i busybox cat: %q, %v\n%s\n%s", got, err, stderr.String(), d.Tail())
		}
	})

	t.Run("t without i", func(t *testing.T) {
		out, errOut, code := d.Silo("run", "--rm", "-t", "busybox", "sh", "-c", "echo out; echo err >&2; exit 2")
		if code != 2 || out != "out\r\nerr\r\n" {
			t.Fatalf("silo run -t: exit %d, %q %q", code, out, errOut)
		}
	})

	t.Run("attach over a websocket", func(t *testing.T) {
		id := strings.TrimSpace(d.Must("run", "-d", "-i", "busybox", "sh", "-c", "read x; echo got $x; echo err >&2"))
		conn, err := net.Dial("unix", d.Socket)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := websocket.NewConfig("ws://silo/containers/"+id+"/attach/ws?stream=1&stdin=1&stdout=1&stderr=1", "http://silo")
		if err != nil {
			t.Fatal(err)
		}
		ws, err := websocket.NewClient(cfg, conn)
		if err != nil {
			t.Fatalf("websocket handshake: %v\n%s", err, d.Tail())
		}
		defer ws.Close()
		_ = ws.SetDeadline(time.Now().Add(10 * time.Second))
		if err := websocket.Message.Send(ws, []byte("it\n")); err != nil {
			t.Fatal(err)
		}
		// The output, stdout and stderr alike, raw, until the container
		// exits and the server closes.
		var got []byte
		for {
			var msg []byte
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				break
			}
			got = append(got, msg...)
		}
		// stdout and stderr are two pipes: their order is not kept.
		lines := strings.Split(strings.TrimSpace(string(got)), "\n")
		slices.Sort(lines)
		if strings.Join(lines, ",") != "err,got it" {
			t.Fatalf("websocket attach: %q", got)
		}
		d.Must("rm", "-f", id)
	})

	t.Run("attach", func(t *testing.T) {
		id := strings.TrimSpace(d.Must("run", "-d", "-i", "busybox", "sh", "-c", "read x; echo got $x; exit 4"))
		cmd := exec.Command(harness.RepoBin("silo"), "--host", d.Host(), "--no-start-daemon", "attach", id)
		cmd.Stdin = strings.NewReader("it\n")
		got, err := cmd.Output()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 4 || string(got) != "got it\n" {
			t.Fatalf("silo attach: %q, %v", got, err)
		}
		d.Must("rm", id)
	})
}

// TestDockerRunForeground runs the stock docker CLI without -d: it
// attaches before the start.
func TestDockerRunForeground(t *testing.T) {
	if !harness.HaveDocker() {
		t.Skip("no docker CLI")
	}
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	docker, env := harness.DockerCLI, d.DockerEnv()
	out, errOut, code := d.Run(docker, []string{"run", "--rm", "busybox", "echo", "hi"}, env)
	if code != 0 || out != "hi\n" {
		t.Fatalf("docker run --rm busybox echo hi: exit %d, %q %q\n%s", code, out, errOut, d.Tail())
	}
	out, errOut, code = d.Run(docker, []string{"run", "--rm", "busybox", "sh", "-c", "exit 3"}, env)
	if code != 3 {
		t.Fatalf("docker run exit 3: exit %d, %q %q\n%s", code, out, errOut, d.Tail())
	}
	t.Run("it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, docker, "run", "--rm", "-it", "busybox", "sh")
		cmd.Env = append(os.Environ(), env...)
		ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		out := &ptyOutput{}
		go func() { _, _ = io.Copy(out, ptmx) }()
		out.waitFor(t, "# ", 20*time.Second)
		if _, err := ptmx.WriteString("stty size; echo h''i; exit 5\r"); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 5 {
			t.Fatalf("docker run -it: %v, want exit 5; output %q\n%s", err, out.String(), d.Tail())
		}
		out.waitFor(t, "hi", 5*time.Second)
		out.waitFor(t, "30 100", time.Second)
	})
	cmd := exec.Command(docker, "run", "--rm", "-i", "busybox", "cat")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("hello\n")
	got, err := cmd.Output()
	if err != nil || string(got) != "hello\n" {
		t.Fatalf("docker run -i cat: %q, %v", got, err)
	}
	if ps, _, _ := d.Run(docker, []string{"ps", "-aq"}, env); strings.TrimSpace(ps) != "" {
		t.Fatalf("containers left: %q", ps)
	}
}
