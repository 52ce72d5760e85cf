package main

import (
	"fmt"
	"io"
	"os"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// terminalBridge connects a container's pty to runsilo's own stdio, for
// `run`/`exec` of a terminal process without --console-socket.
type terminalBridge struct {
	local, remote *os.File
	master        *os.File
	ours          console.Console // our stdin, in raw mode while attached
	copied        chan struct{}
}

func newTerminalBridge() (*terminalBridge, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socketpair: %w", err)
	}
	return &terminalBridge{
		local:  os.NewFile(uintptr(fds[0]), "console (local)"),
		remote: os.NewFile(uintptr(fds[1]), "console (remote)"),
		copied: make(chan struct{}),
	}, nil
}

// recvMaster reads the pty master that the container's init sent.
func recvMaster(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, 0)
	if err != nil {
		return nil, fmt.Errorf("receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive pty master: no fd in message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("receive pty master: bad rights")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

// attach receives the master and starts copying in both directions.
func (t *terminalBridge) attach() error {
	t.remote.Close()
	master, err := recvMaster(t.local)
	if err != nil {
		return err
	}
	t.master = master
	if c, err := console.ConsoleFromFile(os.Stdin); err == nil {
		if err := c.SetRaw(); err == nil {
			t.ours = c
		}
	}
	t.resize()
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	go func() {
		_, _ = io.Copy(os.Stdout, master)
		close(t.copied)
	}()
	return nil
}

// resize copies our window size to the container's terminal.
func (t *terminalBridge) resize() {
	if t.ours == nil || t.master == nil {
		return
	}
	if ws, err := t.ours.Size(); err == nil {
		_ = unix.IoctlSetWinsize(int(t.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Height, Col: ws.Width})
	}
}

// drain waits until the output after the process's exit is copied.
func (t *terminalBridge) drain() {
	if t.master != nil {
		<-t.copied
	}
}

// Close restores our terminal and closes the sockets.
func (t *terminalBridge) Close() error {
	if t.ours != nil {
		_ = t.ours.Reset()
	}
	if t.master != nil {
		t.master.Close()
	}
	t.local.Close()
	return nil
}
