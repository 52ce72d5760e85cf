package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestForwardedSignals(t *testing.T) {
	got := map[unix.Signal]bool{}
	for _, s := range forwardedSignals() {
		got[unix.Signal(s)] = true
	}
	tests := []struct {
		sig  unix.Signal
		want bool
	}{
		{unix.SIGTERM, true}, {unix.SIGINT, true}, {unix.SIGHUP, true}, {unix.SIGQUIT, true},
		{unix.SIGUSR1, true}, {unix.SIGUSR2, true}, {unix.SIGCONT, true}, {unix.SIGTSTP, true},
		{34, true}, {64, true},
		{unix.SIGKILL, false}, {unix.SIGSTOP, false}, {unix.SIGSEGV, false}, {unix.SIGURG, false},
		{unix.SIGCHLD, false}, {unix.SIGPIPE, false}, {unix.SIGPROF, false}, {unix.SIGWINCH, false},
		{32, false}, {33, false},
	}
	for _, tt := range tests {
		if got[tt.sig] != tt.want {
			t.Errorf("signal %d (%v) forwarded = %v, want %v", tt.sig, tt.sig, got[tt.sig], tt.want)
		}
	}
}

// TestForwarder runs the forwarder in a child test process: its handlers
// are process-wide and must not stay in this one.
func TestForwarder(t *testing.T) {
	if os.Getenv("SILO_FORWARDER_HELPER") == "1" {
		forwarderHelper(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestForwarder$", "-test.v")
	cmd.Env = append(os.Environ(), "SILO_FORWARDER_HELPER=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("forwarder helper: %v\n%s", err, out)
	}
}

// forwarderHelper checks the three phases of the forwarder against sleep
// processes: signals kept until the pid is known, forwarded while it is,
// dropped after.
func forwarderHelper(t *testing.T) {
	if err := installForwarder(); err != nil {
		t.Fatal(err)
	}
	sleeper := func() *exec.Cmd {
		c := exec.Command("sleep", "30")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
		return c
	}
	killedBy := func(c *exec.Cmd, want syscall.Signal) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("sleep ended with %v, want killed by %v", err, want)
			}
			ws := ee.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != want {
				t.Fatalf("sleep ended with %v, want killed by %v", ws, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("sleep not killed by %v", want)
		}
	}

	// Before the pid is known: kept, then sent.
	first := sleeper()
	if err := unix.Kill(os.Getpid(), unix.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := first.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("sleep got a signal before its pid was given: %v", err)
	}
	forwardTo(first.Process.Pid)
	killedBy(first, syscall.SIGUSR1)

	// While the pid is known: sent at once.
	second := sleeper()
	forwardTo(second.Process.Pid)
	if err := unix.Kill(os.Getpid(), unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	killedBy(second, syscall.SIGTERM)

	// After forwardTo(-1): dropped, and we survive our own SIGTERM.
	third := sleeper()
	forwardTo(-1)
	if err := unix.Kill(os.Getpid(), unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := third.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("sleep got a signal after forwarding stopped: %v", err)
	}
}
