package process

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directSharesMemory says the direct init's child shares the runtime's
// memory (clone3 CLONE_VM, direct_amd64.s) instead of being a fork: the
// clone then copies no page tables and the runtime takes no copy-on-write
// faults afterwards. The child resets its signal handlers itself (steps
// from compileDirect), as it cannot run runtime_AfterForkInChild.
const directSharesMemory = true

// directCloneVM is in direct_amd64.s: clone3 args, and in the child the
// loop of directFork over ops, on registers only.
//
//go:noescape
func directCloneVM(args *cloneArgs, ops *dop, n int, st *directState) uintptr

// directStart starts the direct init. The child reads p and st and runs
// on stack until it executes the process: the caller keeps p alive until
// then (directKeep).
func directStart(p *directProg, args *cloneArgs, errFd int) (int, syscall.Errno) {
	st := &directState{errFd: uintptr(errFd)}
	stack := make([]byte, 16<<10)
	p.state, p.stack = st, stack
	p.fillSigmask()
	args.flags |= unix.CLONE_VM
	args.stack = uint64(uintptr(unsafe.Pointer(&stack[0])))
	args.stackSize = uint64(len(stack))
	runtime_BeforeFork() // the child starts with every signal blocked
	r := directCloneVM(args, &p.ops[0], len(p.ops), st)
	runtime_AfterFork()
	if e := int64(r); e < 0 {
		return 0, syscall.Errno(-e)
	}
	return int(r), 0
}
