package main

// #cgo CFLAGS: -Wall -O2
// #include "sigforward.h"
import "C"

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwardedSignals lists what `run` passes on to the container: every
// signal but the ones the kernel will not let us catch (KILL, STOP), the
// ones the Go runtime needs for itself (faults, SIGPROF, SIGURG for
// preemption, SIGCHLD, SIGPIPE for its EPIPE handling, and glibc's 32 and
// 33), and SIGWINCH, which is a resize of the bridged terminal (or nothing).
func forwardedSignals() []C.int {
	var sigs []C.int
	for s := unix.Signal(1); s <= 64; s++ {
		switch s {
		case unix.SIGKILL, unix.SIGSTOP, unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL,
			unix.SIGTRAP, unix.SIGSYS, unix.SIGPROF, unix.SIGURG, unix.SIGCHLD, unix.SIGPIPE,
			unix.SIGWINCH, 32, 33:
			continue
		}
		sigs = append(sigs, C.int(s))
	}
	return sigs
}

// installForwarder makes every forwarded signal runsilo receives from now
// on go to the pid given to forwardTo; until then they are kept. It is
// never undone: `run` exits after its container.
func installForwarder() error {
	sigs := forwardedSignals()
	if errno := C.silo_forward_install(&sigs[0], C.int(len(sigs))); errno != 0 {
		return fmt.Errorf("install signal forwarder: %w", syscall.Errno(errno))
	}
	return nil
}

// forwardTo starts forwarding to pid (sending the signals kept so far);
// forwardTo(-1) drops signals from then on, e.g. once the pid is reaped and
// could name another process.
func forwardTo(pid int) { C.silo_forward_to(C.int(pid)) }
