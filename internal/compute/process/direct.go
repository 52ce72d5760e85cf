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
// The child's executor is one loop of raw syscalls over the prepared
// steps. On amd64 (direct_amd64.s) the child shares the runtime's memory
// (clone3 CLONE_VM): no page tables copied, no copy-on-write faults in the
// runtime afterwards (-0.9 ms a container on the project machine); it
// runs on registers only, and the runtime keeps the steps alive until the
// child executes the process (directKeep). Elsewhere (direct_other.go)
// the child is a fork running the same loop in Go, which after
// syscall.runtime_BeforeFork may only call nosplit code, the rule
// syscall.forkAndExecInChild1 follows: it never allocates, never takes a
// lock, never enters the scheduler. gVisor starts its Go-forked stubs the
// same way.

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

// dop is one step of the direct init: one syscall. Every field is a
// machine word (the bool aside), at offsets direct_amd64.s relies on
// (TestDopLayout).
type dop struct {
	nr   uintptr
	args [6]uintptr
	// argFrom replaces args[argFrom] with slot slotIn (an fd opened by an
	// earlier step); -1 for none.
	argFrom int
	slotIn  int
	// slotOut receives the syscall's result; -1 for none.
	slotOut int
	// okErr is an errno that counts as success (EEXIST for mkdir).
	okErr syscall.Errno
	// skipErr skips the next skipN steps (ENOENT for a masked path).
	skipErr syscall.Errno
	skipN   int
	// skipOK skips the next skipOK steps when the call succeeds (a mount
	// point that exists needs no mkdir).
	skipOK int
	// anyErr makes every error a "go on with the next step" (one
	// candidate of several).
	anyErr bool
	// exitParent ends the caller at once, without touching memory, when
	// the call returns a positive value: the parent's side of a clone in
	// the child (exec's first child, after making the second).
	exitParent bool
}

// directProg is a compiled set-up; keep holds the memory its steps point
// to.
type directProg struct {
	ops  []dop
	what []string // what each step does, for error messages
	// trampoline says what the trampoline's steps do, if the child
	// executes one (its records are markTrampoline + step).
	trampoline []string
	keep       [][]byte
	// strs holds the C strings, in chunks that never move once made.
	strs []byte
	// sigmask is the mask a child sharing the runtime's memory restores
	// (the forking thread's, read just before the clone); state and stack
	// are that child's.
	sigmask *uint64
	state   *directState
	stack   []byte
}

// directState is what a child sharing the runtime's memory writes: its
// slots, a copy of the step's arguments, the failure record; and the fd it
// reports on. Layout known to direct_amd64.s.
type directState struct {
	slots   [16]uintptr
	scratch [6]uintptr
	rep     [2]uint32
	errFd   uintptr
}

// fillSigmask records the calling thread's signal mask for the child.
func (p *directProg) fillSigmask() {
	if p.sigmask == nil {
		return
	}
	var set unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, nil, &set); err == nil {
		*p.sigmask = set.Val[0]
	}
}

// directKeep holds the programs of created containers whose children
// still read them (they share this process's memory until they execute
// the container's process); runsilo create exits soon after.
var directKeep []*directProg

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
	flags      uint64
	_          [3]uint64 // pidfd, child_tid, parent_tid
	exitSignal uint64
	stack      uint64
	stackSize  uint64
	_          [3]uint64 // tls, set_tid, set_tid_size
	cgroup     uint64
}
