//go:build integration

package integration

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// receivePty accepts one connection on the console socket and returns the pty
// master the runtime sends over it with SCM_RIGHTS.
func receivePty(l *net.UnixListener) (*os.File, error) {
	if err := l.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return nil, err
	}
	conn, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil || len(fds) == 0 {
			continue
		}
		for _, extra := range fds[1:] {
			syscall.Close(extra)
		}
		// Non-blocking, so that reads honour deadlines through the poller.
		if err := syscall.SetNonblock(fds[0], true); err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fds[0]), "pty-master"), nil
	}
	return nil, errors.New("no file descriptor in console socket message")
}

// readPty reads a pty master until the process is gone (EIO once the last
// holder of the slave exits), for at most 10 s.
func readPty(master *os.File) string {
	var out strings.Builder
	buf := make([]byte, 4096)
	_ = master.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, err := master.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String()
		}
	}
}

// ptyResult is what a console socket received: the pty master.
type ptyResult struct {
	f   *os.File
	err error
}

// listenConsole makes a console socket and returns its path and where the
// pty master the runtime sends to it arrives.
func listenConsole(t *testing.T) (string, <-chan ptyResult) {
	t.Helper()
	sock := filepath.Join(shortTempDir(t, "silo-cs-"), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan ptyResult, 1)
	go func() { f, err := receivePty(l); got <- ptyResult{f, err} }()
	return sock, got
}

// TestTerminal runs a shell on a pty: the runtime sends the pty master to
// --console-socket, the test types into it and reads the shell's output.
func TestTerminal(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"sh"}, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 25, Width: 100}
	})

	sock, got := listenConsole(t)
	c.Create("--console-socket", sock)
	r := <-got
	if r.err != nil {
		t.Fatalf("console socket: %v", r.err)
	}
	master := r.f
	defer master.Close()
	c.Start()

	if _, err := master.Write([]byte("tty; stty size; echo h''i; exit 5\n")); err != nil {
		t.Fatal(err)
	}
	o := readPty(master)
	for _, want := range []string{"\r\nhi\r\n", "/dev/pts/", "25 100"} {
		if !strings.Contains(o, want) {
			t.Errorf("terminal output lacks %q: %q", want, o)
		}
	}
	c.WaitStatus("stopped", 5*time.Second)
}

// onTerminal creates and starts c with --console-socket (and flags, env
// added to the runtime's environment) and returns what the process wrote
// on its terminal and the runtime's stderr.
func onTerminal(t *testing.T, c *Container, flags []string, env ...string) (output, stderr string) {
	t.Helper()
	sock, got := listenConsole(t)
	cmd := c.rt.Command(append(flags, "create", "-b", c.Bundle, "--console-socket", sock, c.ID)...)
	cmd.Env = append(os.Environ(), env...)
	if r := runCmd(cmd); r.Err != nil {
		t.Fatalf("create: %s", r)
	} else {
		stderr = r.Stderr
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("console socket: %v", r.err)
	}
	defer r.f.Close()
	c.Start()
	out := readPty(r.f)
	c.WaitStatus("stopped", 5*time.Second)
	c.rt.Run("delete", c.ID)
	return out, stderr
}

// TestDirectInitTerminal: a process on a terminal gets the same pty,
// controlling terminal, window size and /dev/console from the direct init
// (both flavours) as from the exec'd init.
func TestDirectInitTerminal(t *testing.T) {
	const probe = `tty; stty size; ls -l /dev/console | cut -d' ' -f1; for fd in 0 1 2; do readlink /proc/self/fd/$fd; done; ` +
		`cut -d' ' -f6-8 /proc/self/stat; ls /proc/self/fd; stty -a | head -1; echo done`
	eachDirectFlavour(t, func(t *testing.T, f directFlavour) {
		c := f.rt(t).NewContainer([]string{"sh", "-c", probe}, func(s *specs.Spec) {
			s.Process.Terminal = true
			s.Process.ConsoleSize = &specs.Box{Height: 25, Width: 100}
		})
		// --debug: the trace says which path was taken (the exec'd init
		// would write its own trace on the terminal).
		direct, stderr := onTerminal(t, c, []string{"--debug"})
		if !strings.Contains(stderr, f.marker) {
			t.Fatalf("did not take the direct path: %s", stderr)
		}
		execd, _ := onTerminal(t, c, nil, "SILO_EXEC_INIT=1")
		if !strings.Contains(execd, "done") || !strings.Contains(execd, "25 100") {
			t.Fatalf("exec'd init: %q", execd)
		}
		if direct != execd {
			t.Fatalf("the direct init's terminal differs from the exec'd one:\n--- direct\n%s\n--- exec'd\n%s", direct, execd)
		}
	})
}

// execOnTerminal runs "exec -t --console-socket S -p PROCESS ID" (flags
// first, env added to the runtime's environment) and returns what the
// process wrote on its terminal and the runtime's result.
func execOnTerminal(t *testing.T, c *Container, flags, env []string, process string) (string, Result) {
	t.Helper()
	sock, got := listenConsole(t)
	cmd := c.rt.Command(append(flags, "exec", "-t", "--console-socket", sock, "-p", process, c.ID)...)
	cmd.Env = append(os.Environ(), env...)
	done := make(chan Result, 1)
	go func() { done <- runCmd(cmd) }()
	var r ptyResult
	select {
	case r = <-got:
	case res := <-done:
		t.Fatalf("exec ended before sending a pty: %s", res)
	}
	if r.err != nil {
		t.Fatalf("console socket: %v", r.err)
	}
	defer r.f.Close()
	return readPty(r.f), <-done
}

// TestDirectExecTerminal: exec -t gets the same pty, controlling terminal
// and session from the direct exec (both flavours) as from the exec'd
// init, and leaves no mount on the container's /dev/console.
func TestDirectExecTerminal(t *testing.T) {
	const probe = `tty; stty size; for fd in 0 1 2; do readlink /proc/self/fd/$fd; done; ` +
		`[ "$(cut -d' ' -f6 /proc/self/stat)" = $$ ] && echo leader; cut -d' ' -f7 /proc/self/stat; ` +
		`[ "$(cut -d' ' -f8 /proc/self/stat)" = $$ ] && echo foreground; ls /proc/self/fd; grep -c ' /dev/console ' /proc/self/mountinfo; echo done`
	eachDirectFlavour(t, func(t *testing.T, f directFlavour) {
		c := f.rt(t).NewContainer([]string{"sleep", "600"})
		c.RunDetached()
		p := `{"args":["sh","-c","` + strings.ReplaceAll(probe, `"`, `\"`) + `"],"cwd":"/","terminal":true,"consoleSize":{"height":30,"width":90},` +
			`"env":["PATH=/bin"],"capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}}`
		pf := filepath.Join(t.TempDir(), "process.json")
		if err := os.WriteFile(pf, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
		marker := "fork exec (direct)"
		if f.marker == "trampoline made" {
			marker = f.marker
		}
		direct, res := execOnTerminal(t, c, []string{"--debug"}, nil, pf)
		if res.Err != nil || !strings.Contains(res.Stderr, marker) {
			t.Fatalf("direct exec: %s", res)
		}
		execd, res := execOnTerminal(t, c, nil, []string{"SILO_EXEC_INIT=1"}, pf)
		if res.Err != nil {
			t.Fatalf("exec'd init: %s", res)
		}
		for _, want := range []string{"done", "30 90", "leader", "foreground"} {
			if !strings.Contains(execd, want) {
				t.Fatalf("exec'd init lacks %q: %q", want, execd)
			}
		}
		if direct != execd {
			t.Fatalf("the direct exec's terminal differs from the exec'd init's:\n--- direct\n%s\n--- exec'd\n%s", direct, execd)
		}
	})
}
