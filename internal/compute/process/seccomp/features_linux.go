//go:build cgo

package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
)

// Features returns the seccomp part of `runsilo features` from the linked
// libseccomp: the actions, operators and architectures Compile accepts
// (architectures limited to those the linked libseccomp supports), the
// flags it knows and the subset this kernel supports.
func Features() *features.Seccomp {
	enabled := true
	f := &features.Seccomp{Enabled: &enabled}
	for _, a := range knownActions {
		f.Actions = append(f.Actions, string(a))
	}
	for _, o := range knownOperators {
		f.Operators = append(f.Operators, string(o))
	}
	f.Archs = supportedArchs()
	f.KnownFlags = []string{}
	f.SupportedFlags = []string{}
	for _, fl := range knownFlags {
		f.KnownFlags = append(f.KnownFlags, string(fl))
		if flagSupported(fl) {
			f.SupportedFlags = append(f.SupportedFlags, string(fl))
		}
	}
	return f
}

// flagSupported asks the kernel whether it accepts a filter flag, without
// installing anything: seccomp(SECCOMP_SET_MODE_FILTER, flag, NULL) checks
// the flags first and only then reads the program, so a known flag yields
// EFAULT and an unknown one EINVAL.
func flagSupported(fl specs.LinuxSeccompFlag) bool {
	var flags uintptr
	switch fl {
	case flagTsync:
		flags = unix.SECCOMP_FILTER_FLAG_TSYNC
	case specs.LinuxSeccompFlagLog:
		flags = unix.SECCOMP_FILTER_FLAG_LOG
	case specs.LinuxSeccompFlagSpecAllow:
		flags = unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
	case specs.LinuxSeccompFlagWaitKillableRecv:
		// Only valid together with NEW_LISTENER, which Load adds whenever
		// the flag takes effect.
		flags = unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	default:
		return false
	}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, 0)
	return errno == unix.EFAULT
}
