package seccomp

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// flagTsync is not among the runtime-spec constants (the spec only names the
// flags that libseccomp exposes as attributes), but profiles use it and runc
// accepts it, so it is named here.
const flagTsync specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"

// maxErrno is the largest value that fits the 16-bit data field of
// SECCOMP_RET_ERRNO and SECCOMP_RET_TRACE. Larger values cannot be encoded;
// runc silently truncates them, which turns e.g. 65537 into 1 (EPERM), so
// they are refused instead.
const maxErrno = 0xffff

// maxArgIndex is the highest syscall argument index: Linux syscalls take at
// most six arguments.
const maxArgIndex = 5

// knownActions lists the actions in the order `runsilo features` prints them.
var knownActions = []specs.LinuxSeccompAction{
	specs.ActKill,
	specs.ActKillProcess,
	specs.ActKillThread,
	specs.ActTrap,
	specs.ActErrno,
	specs.ActTrace,
	specs.ActAllow,
	specs.ActLog,
	specs.ActNotify,
}

// knownOperators lists the argument comparison operators.
var knownOperators = []specs.LinuxSeccompOperator{
	specs.OpNotEqual,
	specs.OpLessThan,
	specs.OpLessEqual,
	specs.OpEqualTo,
	specs.OpGreaterEqual,
	specs.OpGreaterThan,
	specs.OpMaskedEqual,
}

// knownArchs lists every architecture name the runtime-spec defines. Whether
// the linked libseccomp can build filters for each is a separate question,
// answered by Compile (error) and Features (filtered list).
var knownArchs = []specs.Arch{
	specs.ArchX86,
	specs.ArchX86_64,
	specs.ArchX32,
	specs.ArchARM,
	specs.ArchAARCH64,
	specs.ArchMIPS,
	specs.ArchMIPS64,
	specs.ArchMIPS64N32,
	specs.ArchMIPSEL,
	specs.ArchMIPSEL64,
	specs.ArchMIPSEL64N32,
	specs.ArchPPC,
	specs.ArchPPC64,
	specs.ArchPPC64LE,
	specs.ArchS390,
	specs.ArchS390X,
	specs.ArchPARISC,
	specs.ArchPARISC64,
	specs.ArchRISCV64,
	specs.ArchLOONGARCH64,
	specs.ArchM68K,
	specs.ArchSH,
	specs.ArchSHEB,
}

// knownFlags lists the seccomp(2) filter flags a profile may ask for.
var knownFlags = []specs.LinuxSeccompFlag{
	flagTsync,
	specs.LinuxSeccompFlagLog,
	specs.LinuxSeccompFlagSpecAllow,
	specs.LinuxSeccompFlagWaitKillableRecv,
}

// takesErrno reports whether an action carries a return value in
// SECCOMP_RET_DATA, i.e. whether errnoRet/defaultErrnoRet may be set for it.
func takesErrno(a specs.LinuxSeccompAction) bool {
	return a == specs.ActErrno || a == specs.ActTrace
}

// Validate checks s without compiling it: every error names the offending
// field and value. Compile calls it first; it is exported so that a runtime
// can reject a bad config at `create` time before forking anything.
//
// Unknown syscall names are deliberately not errors (see Compile).
func Validate(s *specs.LinuxSeccomp) error {
	if s == nil {
		return fmt.Errorf("seccomp: no profile (nil linux.seccomp)")
	}
	if err := checkAction("defaultAction", s.DefaultAction); err != nil {
		return err
	}
	// A notifying default would route every syscall, including the ones the
	// runtime needs to hand the listener fd over, to an agent that does not
	// have the fd yet: the container would hang. runc refuses it too.
	if s.DefaultAction == specs.ActNotify {
		return fmt.Errorf("seccomp: defaultAction: %s cannot be the default action", specs.ActNotify)
	}
	if err := checkErrno("defaultErrnoRet", s.DefaultErrnoRet, "defaultAction", s.DefaultAction); err != nil {
		return err
	}
	for _, a := range s.Architectures {
		if !slices.Contains(knownArchs, a) {
			return fmt.Errorf("seccomp: unknown architecture %q", a)
		}
	}
	for i, fl := range s.Flags {
		if !slices.Contains(knownFlags, fl) {
			return fmt.Errorf("seccomp: flags[%d]: unknown flag %q", i, fl)
		}
	}
	for i, sc := range s.Syscalls {
		field := fmt.Sprintf("syscalls[%d]", i)
		if len(sc.Names) == 0 {
			return fmt.Errorf("seccomp: %s.names: must not be empty", field)
		}
		for j, n := range sc.Names {
			if n == "" {
				return fmt.Errorf("seccomp: %s.names[%d]: empty syscall name", field, j)
			}
		}
		if err := checkAction(field+".action", sc.Action); err != nil {
			return err
		}
		if err := checkErrno(field+".errnoRet", sc.ErrnoRet, field+".action", sc.Action); err != nil {
			return err
		}
		if sc.Action == specs.ActNotify {
			// The runtime's init writes to its parent after loading the
			// filter (to pass the listener fd on); if write notified an
			// agent that has not got the fd yet, init would block forever.
			// Same rule as runc.
			if slices.Contains(sc.Names, "write") {
				return fmt.Errorf("seccomp: %s.action: %s cannot be used for the write syscall", field, specs.ActNotify)
			}
			if s.ListenerPath == "" {
				return fmt.Errorf("seccomp: listenerPath: must be set when %s is used (%s)", specs.ActNotify, field)
			}
		}
		for k, arg := range sc.Args {
			af := fmt.Sprintf("%s.args[%d]", field, k)
			if arg.Index > maxArgIndex {
				return fmt.Errorf("seccomp: %s.index: %d out of range (syscalls have arguments 0-%d)", af, arg.Index, maxArgIndex)
			}
			if arg.Op == "" {
				return fmt.Errorf("seccomp: %s.op: must be set", af)
			}
			if !slices.Contains(knownOperators, arg.Op) {
				return fmt.Errorf("seccomp: %s.op: unknown operator %q", af, arg.Op)
			}
		}
	}
	return nil
}

func checkAction(field string, a specs.LinuxSeccompAction) error {
	if a == "" {
		return fmt.Errorf("seccomp: %s: must be set", field)
	}
	if !slices.Contains(knownActions, a) {
		return fmt.Errorf("seccomp: %s: unknown action %q", field, a)
	}
	return nil
}

// checkErrno enforces the runtime-spec rule that an errno may only be given
// for actions that can return one ("the runtime MUST print an error and
// fail"), and that it fits the 16 bits the kernel has for it.
func checkErrno(field string, errno *uint, actionField string, a specs.LinuxSeccompAction) error {
	if errno == nil {
		return nil
	}
	if !takesErrno(a) {
		return fmt.Errorf("seccomp: %s: only valid with %s or %s, but %s is %q", field, specs.ActErrno, specs.ActTrace, actionField, a)
	}
	if *errno > maxErrno {
		return fmt.Errorf("seccomp: %s: %d out of range (max %d)", field, *errno, maxErrno)
	}
	return nil
}

// NeedsNotify reports whether the profile has SCMP_ACT_NOTIFY rules, i.e.
// whether loading it yields a listener fd that the runtime must send to
// s.ListenerPath. It looks at the profile only, so the runtime's parent can
// ask without compiling and gets the same answer as Filter.NeedsNotify in
// the container's init.
func NeedsNotify(s *specs.LinuxSeccomp) bool {
	if s == nil {
		return false
	}
	for _, sc := range s.Syscalls {
		if sc.Action == specs.ActNotify {
			return true
		}
	}
	return false
}
