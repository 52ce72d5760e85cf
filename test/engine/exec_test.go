//go:build integration

package engine

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/silo-containers/silo/test/harness"
)

// TestExec drives `silo exec` (and the stock docker CLI's exec) against a
// running container.
func TestExec(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	d.Must("run", "-d", "--name", "web", "-e", "FROM_CTR=c", "busybox", "sleep", "60")
	defer d.Must("rm", "-f", "web")

	if out, errOut, code := d.Silo("exec", "web", "echo", "hi"); code != 0 || out != "hi\n" {
		t.Fatalf("silo exec web echo hi: exit %d, %q %q\n%s", code, out, errOut, d.Tail())
	}
	if out, errOut, code := d.Silo("exec", "web", "sh", "-c", "exit 7"); code != 7 {
		t.Fatalf("silo exec exit 7: exit %d, %q %q", code, out, errOut)
	}
	if out, errOut, code := d.Silo("exec", "web", "sh", "-c", "echo out; echo err >&2"); code != 0 || out != "out\n" || errOut != "err\n" {
		t.Fatalf("silo exec streams: exit %d, %q %q", code, out, errOut)
	}
	// Env merged, workdir, user.
	out, errOut, code := d.Silo("exec", "-e", "X=1", "-w", "/tmp", "-u", "nobody", "web", "sh", "-c", "echo $FROM_CTR $X $(pwd) $(id -u)")
	if code != 0 || out != "c 1 /tmp 65534\n" {
		t.Fatalf("silo exec -e -w -u: exit %d, %q %q", code, out, errOut)
	}
	if out, errOut, code := d.Silo("exec", "web", "nosuchcmd"); code != 127 && code != 126 {
		t.Fatalf("silo exec nosuchcmd: exit %d, %q %q", code, out, errOut)
	} else if !strings.Contains(out+errOut, "nosuchcmd") {
		t.Fatalf("silo exec nosuchcmd: no message: %q %q", out, errOut)
	}
	for i := 0; i < 5; i++ {
		if out, errOut, code := d.Silo("exec", "-t", "web", "echo", "hi"); code != 0 || out != "hi\r\n" {
			t.Fatalf("silo exec -t web echo hi: exit %d, %q %q", code, out, errOut)
		}
	}
	if out, errOut, code := d.Silo("exec", "nosuchctr", "true"); code != 1 {
		t.Fatalf("silo exec nosuchctr: exit %d, %q %q", code, out, errOut)
	}

	t.Run("i", func(t *testing.T) {
		cmd := exec.Command(harness.RepoBin("silo"), "--host", d.Host(), "--no-start-daemon", "exec", "-i", "web", "cat")
		cmd.Stdin = strings.NewReader("data\n")
		got, err := cmd.Output()
		if err != nil || string(got) != "data\n" {
			t.Fatalf("echo data | silo exec -i web cat: %q, %v\n%s", got, err, d.Tail())
		}
	})

	t.Run("d", func(t *testing.T) {
		d.Must("exec", "-d", "web", "sh", "-c", "echo bg > /tmp/bg")
		deadline := time.Now().Add(10 * time.Second)
		for {
			if out, _, _ := d.Silo("exec", "web", "cat", "/tmp/bg"); out == "bg\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("silo exec -d did not run")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("it", func(t *testing.T) {
		testExecIt(t, d, harness.RepoBin("silo"), []string{"--host", d.Host(), "--no-start-daemon"}, nil)
	})

	if !harness.HaveDocker() {
		return
	}
	docker, env := harness.DockerCLI, d.DockerEnv()
	t.Run("docker", func(t *testing.T) {
		if out, errOut, code := d.Run(docker, []string{"exec", "web", "echo", "hi"}, env); code != 0 || out != "hi\n" {
			t.Fatalf("docker exec web echo hi: exit %d, %q %q\n%s", code, out, errOut, d.Tail())
		}
		if out, errOut, code := d.Run(docker, []string{"exec", "web", "sh", "-c", "exit 7"}, env); code != 7 {
			t.Fatalf("docker exec exit 7: exit %d, %q %q", code, out, errOut)
		}
		if out, errOut, code := d.Run(docker, []string{"exec", "web", "nosuchcmd"}, env); code != 127 && code != 126 {
			t.Fatalf("docker exec nosuchcmd: exit %d, %q %q", code, out, errOut)
		}
		cmd := exec.Command(docker, "exec", "-i", "web", "cat")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader("data\n")
		if got, err := cmd.Output(); err != nil || string(got) != "data\n" {
			t.Fatalf("echo data | docker exec -i web cat: %q, %v", got, err)
		}
	})
	t.Run("docker it", func(t *testing.T) {
		testExecIt(t, d, docker, nil, env)
	})
}

// testExecIt runs `exec -it web sh` through a pty: the terminal size
// reaches the shell, and `exit 3` is the exit code.
func testExecIt(t *testing.T, d *daemon, bin string, pre, env []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(pre, "exec", "-it", "web", "sh")...)
	cmd.Env = append(os.Environ(), env...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	out := &ptyOutput{}
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(out, ptmx); close(copied) }()
	out.waitFor(t, "# ", 20*time.Second)
	out.askUntil(t, ptmx, "stty size\r", "30 100", 10*time.Second)
	if _, err := ptmx.WriteString("echo x''y; exit 3\r"); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("%s exec -it: %v, want exit 3; output %q\n%s", bin, err, out.String(), d.Tail())
	}
	ptmx.Close()
	<-copied
	if !strings.Contains(out.String(), "xy") {
		t.Fatalf("no xy in %q", out.String())
	}
}
