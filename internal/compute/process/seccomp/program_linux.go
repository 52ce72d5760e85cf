//go:build cgo

package seccomp

// Turning libseccomp's output into a Filter. Only the cgo build compiles
// programs, so these helpers live behind the same constraint.

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// kernelFlags turns the profile's flag names into seccomp(2) flags. Validate
// has already refused unknown names.
func kernelFlags(names []specs.LinuxSeccompFlag, notify bool) uintptr {
	var flags uintptr
	for _, n := range names {
		switch n {
		case flagTsync:
			flags |= unix.SECCOMP_FILTER_FLAG_TSYNC
		case specs.LinuxSeccompFlagLog:
			flags |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			// The kernel refuses this flag without NEW_LISTENER.
			// libseccomp treats it as "when possible" and so do we:
			// a profile without notify rules simply has nothing to
			// wait on.
			if notify {
				flags |= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
			}
		}
	}
	if notify {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		// On TSYNC failure the kernel returns the id of the thread it
		// could not sync, which would be indistinguishable from a listener
		// fd; it therefore refuses TSYNC|NEW_LISTENER unless failures are
		// reported as ESRCH instead.
		if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 {
			flags |= unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		}
	}
	return flags
}

// decodeBPF turns the raw struct sock_filter array that libseccomp exports
// (host byte order, 8 bytes per instruction) into []unix.SockFilter.
func decodeBPF(raw []byte) ([]unix.SockFilter, error) {
	const insnSize = int(unsafe.Sizeof(unix.SockFilter{}))
	if len(raw) == 0 || len(raw)%insnSize != 0 {
		return nil, fmt.Errorf("seccomp: libseccomp exported %d bytes, not a whole number of %d-byte BPF instructions", len(raw), insnSize)
	}
	prog := make([]unix.SockFilter, len(raw)/insnSize)
	for i := range prog {
		b := raw[i*insnSize:]
		prog[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:2]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:8]),
		}
	}
	return prog, nil
}
