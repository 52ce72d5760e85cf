package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/engine"
)

var _ engine.ExecRunner = (*monitors)(nil)

// RunExec runs `runsilo exec -p process.json --pid-file F ID` in the
// foreground: silod is the runtime's parent, and runsilo, the process's
// waiter, exits with its code (see internal/engine/exec.go for why silod,
// not the monitor). Without a terminal the process has pipes; with one,
// runsilo hands its pty master to a console socket of ours. The pid file
// tells a process that ran from a runtime that failed to start it.
func (m *monitors) RunExec(ctx context.Context, cfg engine.MonitorConfig, r engine.ExecRun) (engine.ExecProcess, error) {
	// Not under cfg.StateDir: the console socket's path must fit in a
	// sockaddr_un (108 bytes).
	dir, err := os.MkdirTemp("", "silo-exec-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	raw, err := json.Marshal(r.Process)
	if err != nil {
		return nil, err
	}
	procPath, pidPath := filepath.Join(dir, "process.json"), filepath.Join(dir, "pid")
	if err := os.WriteFile(procPath, raw, 0o600); err != nil {
		return nil, err
	}
	args := []string{"--root", m.runtimeRoot, "exec", "-p", procPath, "--pid-file", pidPath}
	x := &execProc{exited: make(chan struct{}), pidPath: pidPath}
	var childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	var ln *net.UnixListener
	if r.Process.Terminal {
		sock := filepath.Join(dir, "console.sock")
		if ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"}); err != nil {
			return nil, err
		}
		defer ln.Close()
		args = append(args, "--console-socket", sock)
	}
	cmd := exec.Command(m.runtime, append(args, cfg.ID)...)
	// Not killed with silod's process group signals (^C of a foreground
	// silod): as Docker's, the exec dies with its container or by itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	switch {
	case r.Process.Terminal:
		cmd.Stderr = &x.msg
	default:
		if r.Stdin {
			pr, pw, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			cmd.Stdin, x.stdin = pr, pw
			childEnds = append(childEnds, pr)
		}
		if r.Output {
			or, ow, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			er, ew, err := os.Pipe()
			if err != nil {
				or.Close()
				ow.Close()
				return nil, err
			}
			cmd.Stdout, cmd.Stderr = ow, ew
			childEnds = append(childEnds, ow, ew)
			x.stdout = or
			x.stderrDone = make(chan struct{})
			x.stderr = &teeCapture{r: er, buf: &x.msg, done: x.stderrDone}
		} else {
			cmd.Stderr = &x.msg
		}
	}
	if err := cmd.Start(); err != nil {
		x.closeParentEnds()
		return nil, fmt.Errorf("start the runtime: %w", err)
	}
	ok = true
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
				x.code = 128 + int(st.Signal())
			} else {
				x.code = ee.ExitCode()
			}
		default:
			x.code = 126
		}
		x.started = x.readPid() > 0
		close(x.exited)
		os.RemoveAll(dir)
	}()
	if ln != nil {
		got := make(chan *os.File, 1)
		go func() {
			defer close(got)
			conn, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			defer conn.Close()
			if f, err := recvFd(conn); err == nil {
				got <- f
			}
		}()
		var f *os.File
		select {
		case f = <-got:
		case <-x.exited:
			// A quick process may be done already: its output waits in
			// the master, if the runtime handed it over.
			ln.Close()
			f = <-got
		}
		if f != nil {
			x.master = f
			go func() {
				<-x.exited
				// Left to the reader to drain what the process wrote last.
				time.Sleep(10 * time.Second)
				f.Close()
			}()
		}
	}
	// Wait until the process runs (pid file) or the runtime gave up.
	for x.readPid() == 0 {
		select {
		case <-x.exited:
			return x, nil
		case <-time.After(5 * time.Millisecond):
		}
	}
	return x, nil
}

// recvFd receives one file descriptor (the pty master) on conn.
func recvFd(conn *net.UnixConn) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("console socket: no fd in message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, errors.New("console socket: bad rights")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

// execProc is engine.ExecProcess over a foreground `runsilo exec`.
type execProc struct {
	stdin          *os.File
	stdout, master *os.File
	stderr         io.Reader
	stderrDone     chan struct{}
	msg            lockedBuffer // the runtime's stderr, or the start of it
	pidPath        string

	pidMu sync.Mutex
	pid   int

	exited  chan struct{}
	code    int  // set before exited closes
	started bool // set before exited closes
}

func (x *execProc) closeParentEnds() {
	for _, f := range []*os.File{x.stdin, x.stdout} {
		if f != nil {
			f.Close()
		}
	}
	if t, ok := x.stderr.(*teeCapture); ok {
		t.r.Close()
	}
}

func (x *execProc) readPid() int {
	x.pidMu.Lock()
	defer x.pidMu.Unlock()
	if x.pid == 0 {
		if b, err := os.ReadFile(x.pidPath); err == nil {
			x.pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	return x.pid
}

func (x *execProc) Stdin() io.WriteCloser {
	switch {
	case x.master != nil:
		return x.master
	case x.stdin != nil:
		return x.stdin
	}
	return nil
}

func (x *execProc) Stdout() io.Reader {
	switch {
	case x.master != nil:
		return x.master
	case x.stdout != nil:
		return x.stdout
	}
	select {
	case <-x.exited:
		if !x.started {
			// A terminal exec that did not start: the runtime's message.
			return strings.NewReader(x.msg.String())
		}
	default:
	}
	return nil
}

func (x *execProc) Stderr() io.Reader { return x.stderr }

func (x *execProc) Resize(rows, cols uint16) error {
	if x.master == nil {
		return nil
	}
	return unix.IoctlSetWinsize(int(x.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
}

func (x *execProc) Pid() int { return x.readPid() }

func (x *execProc) Wait() engine.ExecExit {
	<-x.exited
	if !x.started && x.stderrDone != nil {
		// The message is on its way through the stderr pipe.
		select {
		case <-x.stderrDone:
		case <-time.After(2 * time.Second):
		}
	}
	return engine.ExecExit{Code: x.code, Started: x.started, Message: x.msg.String()}
}

// teeCapture reads r, keeping the first 4 KiB in buf; done closes at the
// end of r.
type teeCapture struct {
	r    *os.File
	buf  *lockedBuffer
	done chan struct{}
	once sync.Once
}

func (t *teeCapture) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.buf.writeCapped(p[:n], 4096)
	}
	if err != nil {
		t.once.Do(func() { close(t.done); t.r.Close() })
	}
	return n, err
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.writeCapped(p, 64<<10)
	return len(p), nil
}

func (l *lockedBuffer) writeCapped(p []byte, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := max - l.b.Len(); room > 0 {
		if len(p) > room {
			p = p[:room]
		}
		l.b.Write(p)
	}
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
