//go:build !amd64

package process

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directSharesMemory: on this architecture the direct init's child is a
// fork (directFork); see direct_amd64.go.
const directSharesMemory = false

// directStart starts the direct init as a fork.
func directStart(p *directProg, args *cloneArgs, errFd int) (int, syscall.Errno) {
	return directFork(p, args, errFd)
}

// directFork clones this process and, in the child, runs p. It returns
// the child's pid in the parent. errFd is the child's end of the init
// pipe: a failed step writes its index and errno there.
//
//go:noinline
//go:norace
//go:nocheckptr
func directFork(p *directProg, args *cloneArgs, errFd int) (int, syscall.Errno) {
	var slots [16]uintptr
	var rep [2]uint32
	ops := p.ops
	runtime_BeforeFork()
	r1, _, e := syscall.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(args)), unsafe.Sizeof(*args), 0)
	if e != 0 || r1 != 0 {
		runtime_AfterFork()
		return int(r1), e
	}
	runtime_AfterForkInChild()
	for i := 0; i < len(ops); i++ {
		o := &ops[i]
		a := o.args
		if o.argFrom >= 0 && o.argFrom < 6 {
			a[o.argFrom] = slots[o.slotIn&15]
		}
		r, _, e := syscall.RawSyscall6(o.nr, a[0], a[1], a[2], a[3], a[4], a[5])
		if e != 0 && e != o.okErr {
			if e == o.skipErr || o.anyErr {
				i += o.skipN
				continue
			}
			// MSG_NOSIGNAL: after create the parent is gone, and a SIGPIPE
			// would hide the exit status.
			rep[0], rep[1] = uint32(i), uint32(e)
			syscall.RawSyscall6(unix.SYS_SENDTO, uintptr(errFd), uintptr(unsafe.Pointer(&rep[0])), 8, unix.MSG_NOSIGNAL, 0, 0)
			syscall.RawSyscall(unix.SYS_EXIT_GROUP, 1, 0, 0)
		}
		if e == 0 && o.exitParent && r != 0 {
			syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
		}
		if o.slotOut >= 0 {
			slots[o.slotOut&15] = r
		}
		if e == 0 {
			i += o.skipOK
		}
	}
	syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
	return 0, 0
}
