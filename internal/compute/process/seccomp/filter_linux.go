package seccomp

import (
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"unsafe"

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
func (f *Filter) Allows(arch uint32, nr uintptr, args [6]uint64, ip uint64) bool {
	if f == nil || len(f.prog) == 0 {
		return true
	}
	// struct seccomp_data in the kernel's (native) layout, as the 32-bit
	// words the program loads.
	var raw [64]byte
	ne := binary.NativeEndian
	ne.PutUint32(raw[0:], uint32(nr))
	ne.PutUint32(raw[4:], arch)
	ne.PutUint64(raw[8:], ip)
	for i, a := range args {
		ne.PutUint64(raw[16+8*i:], a)
	}
	var data [16]uint32
	for i := range data {
		data[i] = ne.Uint32(raw[4*i:])
	}
	ret, ok := runFilter(f.prog, &data)
	if !ok {
		return false
	}
	switch ret & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_LOG:
		return true
	}
	return false
}

// runFilter runs a seccomp program over data as the kernel does and
// returns its verdict; false for a program the kernel would not have
// loaded (it allows nothing then).
//
// Written here rather than taken from golang.org/x/net/bpf's VM, which the
// tests check it against: that VM needs each instruction converted to an
// interface value first, ~400 µs and 9000 allocations for Docker's default
// profile at every container start; this is allocation-free and takes
// microseconds.
func runFilter(prog []unix.SockFilter, data *[16]uint32) (uint32, bool) {
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		k := in.K
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if k%4 != 0 || k >= 64 {
				return 0, false
			}
			a = data[k/4]
		case unix.BPF_LD | unix.BPF_W | unix.BPF_LEN:
			a = 64
		case unix.BPF_LDX | unix.BPF_W | unix.BPF_LEN:
			x = 64
		case unix.BPF_LD | unix.BPF_IMM:
			a = k
		case unix.BPF_LDX | unix.BPF_IMM:
			x = k
		case unix.BPF_LD | unix.BPF_MEM, unix.BPF_LDX | unix.BPF_MEM, unix.BPF_ST, unix.BPF_STX:
			if k >= 16 {
				return 0, false
			}
			switch in.Code {
			case unix.BPF_LD | unix.BPF_MEM:
				a = mem[k]
			case unix.BPF_LDX | unix.BPF_MEM:
				x = mem[k]
			case unix.BPF_ST:
				mem[k] = a
			default:
				mem[k] = x
			}
		case unix.BPF_MISC | unix.BPF_TAX:
			x = a
		case unix.BPF_MISC | unix.BPF_TXA:
			a = x
		case unix.BPF_RET | unix.BPF_K:
			return k, true
		case unix.BPF_RET | unix.BPF_A:
			return a, true
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(k)
		default:
			src := k
			if in.Code&unix.BPF_X != 0 {
				src = x
			}
			switch in.Code & 0x07 { // class
			case unix.BPF_ALU:
				switch in.Code & 0xf0 {
				case unix.BPF_ADD:
					a += src
				case unix.BPF_SUB:
					a -= src
				case unix.BPF_MUL:
					a *= src
				case unix.BPF_DIV:
					if src == 0 {
						return 0, true // the kernel's verdict: kill
					}
					a /= src
				case unix.BPF_AND:
					a &= src
				case unix.BPF_OR:
					a |= src
				case unix.BPF_XOR:
					a ^= src
				case unix.BPF_LSH:
					a <<= src & 31
				case unix.BPF_RSH:
					a >>= src & 31
				case unix.BPF_NEG:
					a = -a
				default:
					return 0, false
				}
			case unix.BPF_JMP:
				var taken bool
				switch in.Code & 0xf0 {
				case unix.BPF_JEQ:
					taken = a == src
				case unix.BPF_JGT:
					taken = a > src
				case unix.BPF_JGE:
					taken = a >= src
				case unix.BPF_JSET:
					taken = a&src != 0
				default:
					return 0, false
				}
				if taken {
					pc += int(in.Jt)
				} else {
					pc += int(in.Jf)
				}
			default:
				return 0, false
			}
		}
	}
	return 0, false
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
