package main

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The signal forwarder of `run` and foreground `exec`: every signal runsilo
// receives is the container's, as with runc.
//
// It is not os/signal: signal.Notify enables each signal with a round trip
// to the runtime's signal-mask thread, and for the 60-odd forwarded signals
// that was ~250 context switches (~2.8 ms measured) on every container's
// start path. On amd64 a handler in assembly (sigforward_amd64.s) is
// installed with rt_sigaction instead: it only calls kill(2) and uses
// atomic instructions, so it is async-signal-safe and never enters the Go
// runtime. Other architectures use os/signal (sigforward_other.go).

// forwardTarget is where signals go: 0 = not yet known (keep them),
// > 0 = that pid, < 0 = drop them. Go code uses sync/atomic on it; the
// handler reads it with a plain load (atomic on amd64).
var forwardTarget int32

// forwardPending has bit (sig - 1) set for each signal kept while
// forwardTarget was 0. The handler sets bits with LOCK OR.
var forwardPending uint64

// forwardedSignals lists what is passed on to the container: every signal
// but the ones the kernel will not let us catch (KILL, STOP), the ones the
// Go runtime needs for itself (faults, SIGPROF, SIGURG for preemption,
// SIGCHLD, SIGPIPE for its EPIPE handling, and 32 and 33, which C
// libraries reserve), and SIGWINCH, which is a resize of the bridged
// terminal (or nothing).
func forwardedSignals() []unix.Signal {
	var sigs []unix.Signal
	for s := unix.Signal(1); s <= 64; s++ {
		switch s {
		case unix.SIGKILL, unix.SIGSTOP, unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL,
			unix.SIGTRAP, unix.SIGSYS, unix.SIGPROF, unix.SIGURG, unix.SIGCHLD, unix.SIGPIPE,
			unix.SIGWINCH, 32, 33:
			continue
		}
		sigs = append(sigs, s)
	}
	return sigs
}

// forwardTo starts forwarding to pid (sending the signals kept so far);
// forwardTo(-1) drops signals from then on, e.g. once the pid is reaped and
// could name another process.
func forwardTo(pid int) {
	atomic.StoreInt32(&forwardTarget, int32(pid))
	if pid < 0 {
		atomic.StoreUint64(&forwardPending, 0)
		return
	}
	// A handler that saw target 0 and set its bit after this Swap sees the
	// new target when it checks again, and sends the set itself.
	if pid > 0 {
		sendPending(pid, atomic.SwapUint64(&forwardPending, 0))
	}
}

// sendPending sends pid each signal whose bit is set in bits.
func sendPending(pid int, bits uint64) {
	for s := 1; s <= 64; s++ {
		if bits&(1<<(s-1)) != 0 {
			_ = unix.Kill(pid, unix.Signal(s))
		}
	}
}
