package process

// The direct init: an init that is not a second exec.
//
// The exec'd init (Init) costs a clone, an execve of this binary and a Go
// runtime start-up (~2.7 ms from "fork init" to "init started" on the
// project machine, against ~0.7 ms for the clone alone); crun pays only a
// fork. For the common containers (directSupported) the parent instead
// compiles every step of the set-up into syscalls with their arguments
// ready (direct_compile.go), and a child made by a raw clone3 of this
// process makes them and executes the container's process.
//
// After syscall.runtime_BeforeFork the child may only run nosplit code,
// the rule syscall.forkAndExecInChild1 follows: it never allocates, never
// takes a lock, never enters the scheduler, and writes no pointer. So the
// executor below is one loop of raw syscalls over prepared steps, and the
// memory they point to is kept alive by directProg (the child sees the
// parent's memory as it was at the clone). gVisor starts its Go-forked
// stubs the same way.

import (
	"syscall"
	"unsafe"
	_ "unsafe" // go:linkname

	"golang.org/x/sys/unix"
)

//go:linkname runtime_BeforeFork syscall.runtime_BeforeFork
func runtime_BeforeFork()

//go:linkname runtime_AfterFork syscall.runtime_AfterFork
func runtime_AfterFork()

//go:linkname runtime_AfterForkInChild syscall.runtime_AfterForkInChild
func runtime_AfterForkInChild()

// dop is one step of the direct init: one syscall.
type dop struct {
	nr   uintptr
	args [6]uintptr
	// argFrom replaces args[argFrom] with slot slotIn (an fd opened by an
	// earlier step); -1 for none.
	argFrom int8
	slotIn  int8
	// slotOut receives the syscall's result; -1 for none.
	slotOut int8
	// okErr is an errno that counts as success (EEXIST for mkdir).
	okErr syscall.Errno
	// skipErr skips the next skipN steps (ENOENT for a masked path).
	skipErr syscall.Errno
	skipN   int32
	// skipOK skips the next skipOK steps when the call succeeds (a mount
	// point that exists needs no mkdir).
	skipOK int32
	// anyErr makes every error a "go on with the next step" (one
	// candidate of several).
	anyErr bool
}

// directProg is a compiled set-up; keep holds the memory its steps point
// to (the child sees the parent's memory as it was at the clone).
type directProg struct {
	ops  []dop
	what []string // what each step does, for error messages
	keep [][]byte
	// strs holds the C strings, in chunks that never move once made.
	strs []byte
}

// cstr returns a NUL-terminated copy of s for a step's argument.
func (p *directProg) cstr(s string) uintptr {
	if len(p.strs)+len(s)+1 > cap(p.strs) {
		p.strs = make([]byte, 0, max(4096, len(s)+1))
		p.keep = append(p.keep, p.strs[:cap(p.strs)])
	}
	start := len(p.strs)
	p.strs = append(append(p.strs, s...), 0)
	return uintptr(unsafe.Pointer(&p.strs[start]))
}

func (p *directProg) buf(b []byte) uintptr {
	p.keep = append(p.keep, b)
	return uintptr(unsafe.Pointer(&b[0]))
}

func (p *directProg) sys(what string, nr uintptr, args ...uintptr) *dop {
	o := dop{nr: nr, argFrom: -1, slotIn: -1, slotOut: -1}
	copy(o.args[:], args)
	p.ops = append(p.ops, o)
	p.what = append(p.what, what)
	return &p.ops[len(p.ops)-1]
}

// cloneArgs is struct clone_args (clone3).
type cloneArgs struct {
	flags, pidfd, childTID, parentTID, exitSignal, stack, stackSize, tls, setTID, setTIDSize, cgroup uint64
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
				i += int(o.skipN)
				continue
			}
			// MSG_NOSIGNAL: after create the parent is gone, and a SIGPIPE
			// would hide the exit status.
			rep[0], rep[1] = uint32(i), uint32(e)
			syscall.RawSyscall6(unix.SYS_SENDTO, uintptr(errFd), uintptr(unsafe.Pointer(&rep[0])), 8, unix.MSG_NOSIGNAL, 0, 0)
			syscall.RawSyscall(unix.SYS_EXIT_GROUP, 1, 0, 0)
		}
		if o.slotOut >= 0 {
			slots[o.slotOut&15] = r
		}
		if e == 0 {
			i += int(o.skipOK)
		}
	}
	syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
	return 0, 0
}
