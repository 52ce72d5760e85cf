package seccomp

import (
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Filter is a compiled seccomp program ready to load.
//
// It holds everything seccomp(2) needs, already in the kernel's layout, so
// that Load is a single system call with no allocation and no libseccomp.
type Filter struct {
	prog []unix.SockFilter
	// fprog points into prog. It is built once by newFilter so that Load
	// does not have to construct it (and possibly heap-allocate it) at the
	// point where the caller may be under a tight RLIMIT_AS.
	fprog  unix.SockFprog
	flags  uintptr
	notify bool
}

// Program returns a copy of the compiled BPF instructions, for inspection
// and tests.
func (f *Filter) Program() []unix.SockFilter {
	return slices.Clone(f.prog)
}

// Flags returns the seccomp(2) flags Load will pass (SECCOMP_FILTER_FLAG_*),
// including NEW_LISTENER when the profile notifies.
func (f *Filter) Flags() uint {
	return uint(f.flags)
}

// NeedsNotify reports whether the profile has SCMP_ACT_NOTIFY rules, so Load
// returns a listener fd that the runtime must pass to the profile's
// listenerPath (see SendListener).
func (f *Filter) NeedsNotify() bool {
	return f.notify
}

// Allows reports whether the filter lets system call nr with args, made
// at ip by a process of architecture arch (AUDIT_ARCH_*), through:
// SECCOMP_RET_ALLOW or SECCOMP_RET_LOG. The runtime asks before it makes
// calls of its own after loading the filter (the exec trampoline).
//
// The program runs in golang.org/x/net/bpf's VM. That VM loads words big
// endian and the kernel natively, so it is given seccomp_data with each
// 32-bit word byte-swapped to match; a program it cannot run allows
// nothing.
func (f *Filter) Allows(arch uint32, nr uintptr, args [6]uint64, ip uint64) bool {
	if f == nil || len(f.prog) == 0 {
		return true
	}
	insns := make([]bpf.Instruction, len(f.prog))
	for i, in := range f.prog {
		insns[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}.Disassemble()
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		return false
	}
	// struct seccomp_data in the kernel's (native) layout.
	var data [64]byte
	ne := binary.NativeEndian
	ne.PutUint32(data[0:], uint32(nr))
	ne.PutUint32(data[4:], arch)
	ne.PutUint64(data[8:], ip)
	for i, a := range args {
		ne.PutUint64(data[16+8*i:], a)
	}
	for i := 0; i < len(data); i += 4 {
		binary.BigEndian.PutUint32(data[i:], ne.Uint32(data[i:]))
	}
	ret, err := vm.Run(data[:])
	if err != nil {
		return false
	}
	switch uint32(ret) & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_LOG:
		return true
	}
	return false
}

// errNoFilter is preallocated so that Load allocates nothing even when
// misused.
var errNoFilter = errors.New("seccomp: Load on a nil or empty Filter")

// LoadError is an errno from seccomp(2) in Load. It is a bare integer type
// so that returning it does not allocate; errors.Is(err, unix.EACCES) works.
type LoadError unix.Errno

// Error describes the failure, with a hint for the common causes.
func (e LoadError) Error() string {
	msg := "seccomp: loading filter: " + unix.Errno(e).Error()
	switch unix.Errno(e) {
	case unix.EACCES:
		msg += " (the thread needs no_new_privs or CAP_SYS_ADMIN)"
	case unix.EINVAL:
		msg += " (a flag or the program is not supported by this kernel)"
	case unix.ESRCH:
		msg += " (TSYNC: another thread has a diverging seccomp filter)"
	}
	return msg
}

// Unwrap returns the errno.
func (e LoadError) Unwrap() error { return unix.Errno(e) }

// TsyncError reports that SECCOMP_FILTER_FLAG_TSYNC could not apply the
// filter to every thread: the kernel names the first thread that was not
// synchronised (it has a diverging filter or is not in the same state).
type TsyncError struct {
	// Tid is the thread the kernel could not synchronise.
	Tid int
}

// Error names the thread.
func (e *TsyncError) Error() string {
	return "seccomp: loading filter: TSYNC failed for thread " + strconv.Itoa(e.Tid)
}

// Load installs the filter on the calling thread with one raw seccomp(2)
// call (SECCOMP_SET_MODE_FILTER with the profile's flags), or on all threads
// when the profile asks for SECCOMP_FILTER_FLAG_TSYNC. Without TSYNC the
// caller must have locked its goroutine to the OS thread (and execve from
// that same thread) for the filter to reach the container process.
//
// It does not allocate and does not call into libseccomp: the caller may
// already be under a tight RLIMIT_AS and about to execve. The thread needs
// no_new_privs or CAP_SYS_ADMIN in its user namespace; the runtime decides
// which, so Load never sets no_new_privs itself.
//
// If the profile uses SCMP_ACT_NOTIFY, Load returns the listener fd (opened
// O_CLOEXEC by the kernel); otherwise it returns -1.
func (f *Filter) Load() (listenerFd int, err error) {
	if f == nil || len(f.prog) == 0 {
		return -1, errNoFilter
	}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP,
		unix.SECCOMP_SET_MODE_FILTER, f.flags, uintptr(unsafe.Pointer(&f.fprog)))
	// f owns the program the kernel just copied; keep it reachable until
	// the call has returned.
	runtime.KeepAlive(f)
	if errno != 0 {
		return -1, LoadError(errno)
	}
	if f.notify {
		return int(r), nil
	}
	// With TSYNC (and no listener) a positive return is the id of a thread
	// that could not be synchronised; the filter was not installed.
	if r != 0 {
		return -1, &TsyncError{Tid: int(r)}
	}
	return -1, nil
}
