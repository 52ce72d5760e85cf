package main

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Implemented in sigforward_amd64.s.
func sigForwardAddr() uintptr
func sigReturnAddr() uintptr

// kernelSigaction is struct sigaction as rt_sigaction(2) takes it on amd64.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// sa_flags bits (<asm/signal.h>; x/sys/unix does not export them).
// saRestorer tells the kernel that restorer returns from the handler (it
// calls rt_sigreturn); amd64 requires one. saOnstack runs the handler on
// the thread's signal stack, as the Go runtime asks of foreign handlers.
const (
	saRestorer = 0x04000000
	saOnstack  = 0x08000000
	saRestart  = 0x10000000
)

// installForwarder makes every forwarded signal runsilo receives from now
// on go to the pid given to forwardTo; until then they are kept. It is
// never undone: `run` exits after its container.
func installForwarder() error {
	sa := kernelSigaction{
		handler:  sigForwardAddr(),
		flags:    saOnstack | saRestart | saRestorer,
		restorer: sigReturnAddr(),
		mask:     ^uint64(0), // nothing interrupts the handler
	}
	for _, s := range forwardedSignals() {
		_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(s), uintptr(unsafe.Pointer(&sa)), 0, unsafe.Sizeof(sa.mask), 0, 0)
		if errno != 0 {
			return fmt.Errorf("install signal forwarder for %v: %w", s, errno)
		}
	}
	return nil
}
