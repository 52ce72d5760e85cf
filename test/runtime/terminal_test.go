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

// TestTerminal runs a shell on a pty: the runtime sends the pty master to
// --console-socket, the test types into it and reads the shell's output.
func TestTerminal(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"sh"}, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 25, Width: 100}
	})

	sock := filepath.Join(shortTempDir(t, "silo-cs-"), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type recv struct {
		f   *os.File
		err error
	}
	got := make(chan recv, 1)
	go func() { f, err := receivePty(l); got <- recv{f, err} }()

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
	var out strings.Builder
	buf := make([]byte, 4096)
	_ = master.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, err := master.Read(buf)
		out.Write(buf[:n])
		if err != nil { // EIO once the shell (the last holder of the slave) exits
			break
		}
	}
	o := out.String()
	for _, want := range []string{"\r\nhi\r\n", "/dev/pts/", "25 100"} {
		if !strings.Contains(o, want) {
			t.Errorf("terminal output lacks %q: %q", want, o)
		}
	}
	c.WaitStatus("stopped", 5*time.Second)
}
