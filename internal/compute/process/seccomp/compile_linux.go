//go:build cgo

package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// optimizeThreshold is the rule count above which libseccomp is asked for a
// binary tree (O(log n) per syscall) instead of a linear chain. Small
// filters stay linear because libseccomp <= 2.5.4 builds broken trees for
// filters without rules; runc uses the same cut-off.
const optimizeThreshold = 32

// Compile validates s and compiles it. Errors name the offending field and
// value, e.g. `seccomp: syscalls[3].action: unknown action "SCMP_ACT_FOO"`.
//
// Syscall names that libseccomp does not know for any architecture are
// skipped rather than refused, as runc does: profiles list syscalls that
// only newer kernels and libseccomp versions know about.
//
// Compile uses libseccomp and allocates freely; call it before tightening
// rlimits, then Load the result.
func Compile(s *specs.LinuxSeccomp) (*Filter, error) {
	if err := Validate(s); err != nil {
		return nil, err
	}
	defAct := scmpAction(s.DefaultAction, s.DefaultErrnoRet)
	lf, err := newScmpFilter(defAct)
	if err != nil {
		return nil, fmt.Errorf("seccomp: creating libseccomp filter: %w", err)
	}
	defer lf.release()

	// The native architecture is in every new libseccomp filter already;
	// AddArch ignores duplicates.
	for _, a := range s.Architectures {
		arch, err := scmpArch(a)
		if err == nil {
			err = lf.addArch(arch)
		}
		if errors.Is(err, syscall.EDOM) {
			// libseccomp builds one program per filter and cannot mix
			// byte orders (e.g. s390x on x86_64).
			return nil, fmt.Errorf("seccomp: architecture %q: byte order differs from the native architecture's: %w", a, err)
		}
		if err != nil {
			return nil, fmt.Errorf("seccomp: architecture %q: %w", a, err)
		}
	}

	// no_new_privs is the runtime's decision (process.noNewPrivileges).
	// libseccomp's default is to set it whenever it loads a filter; Load
	// never lets libseccomp load, but clearing the attribute makes sure no
	// libseccomp code path sets it on the runtime's behalf.
	if err := lf.setNoNewPrivs(false); err != nil {
		return nil, fmt.Errorf("seccomp: clearing no_new_privs attribute: %w", err)
	}
	// Likewise, LOG is a seccomp(2) flag that Load passes itself; setting
	// the attribute as well makes libseccomp check that the kernel and
	// library support it, so an unsupported flag fails here, early, rather
	// than in Load inside the container.
	if slices.Contains(s.Flags, specs.LinuxSeccompFlagLog) {
		if err := lf.setLog(true); err != nil {
			return nil, fmt.Errorf("seccomp: flags: %s: %w", specs.LinuxSeccompFlagLog, err)
		}
	}

	nrules := 0
	for _, sc := range s.Syscalls {
		nrules += len(sc.Names)
	}
	if nrules > optimizeThreshold {
		// Not fatal: an old libseccomp without the attribute produces a
		// slower but equivalent filter.
		_ = lf.setOptimize(2)
	}

	for i, sc := range s.Syscalls {
		if err := addRules(lf, defAct, i, sc); err != nil {
			return nil, err
		}
	}

	raw, err := exportBPF(lf)
	if err != nil {
		return nil, err
	}
	prog, err := decodeBPF(raw)
	if err != nil {
		return nil, err
	}
	notify := NeedsNotify(s)
	return newFilter(prog, kernelFlags(s.Flags, notify), notify)
}

// addRules adds the rules of s.Syscalls[i].
func addRules(lf *scmpFilter, defAct scmpAct, i int, sc specs.LinuxSyscall) error {
	act := scmpAction(sc.Action, sc.ErrnoRet)
	// libseccomp refuses rules that repeat the default action; they are
	// no-ops anyway (profiles have them when a generic profile's default
	// is tightened or loosened).
	if act == defAct {
		return nil
	}

	conds := make([]scmpCond, 0, len(sc.Args))
	var seen [maxArgIndex + 1]int
	split := false
	for k, arg := range sc.Args {
		op := scmpOperator(arg.Op)
		if arg.Index > maxArgIndex || op == cmpInvalid {
			return fmt.Errorf("seccomp: syscalls[%d].args[%d]: index %d or operator %q invalid", i, k, arg.Index, arg.Op)
		}
		conds = append(conds, scmpCond{arg: arg.Index, op: op, a: arg.Value, b: arg.ValueTwo})
		seen[arg.Index]++
		if seen[arg.Index] > 1 {
			split = true
		}
	}

	for j, name := range sc.Names {
		nr, ok := syscallNumber(name)
		if !ok {
			// Unknown to this libseccomp on every architecture: the
			// kernel cannot have it either as far as the filter is
			// concerned. Skip, as runc does.
			continue
		}
		if err := addRule(lf, nr, act, conds, split); err != nil {
			if errors.Is(err, syscall.EEXIST) {
				return fmt.Errorf("seccomp: syscalls[%d].names[%d] %q: an earlier rule has the same syscall and arguments but another action: %w", i, j, name, err)
			}
			return fmt.Errorf("seccomp: syscalls[%d].names[%d] %q: %w", i, j, name, err)
		}
	}
	return nil
}

// addRule adds one syscall's rule. libseccomp ANDs the comparisons within a
// rule and cannot compare the same argument twice in one rule, so a rule
// that does (e.g. personality arg0 == A, arg0 == B) is split into one rule
// per comparison, which libseccomp ORs. That is how runc reads such profiles
// (Docker's default profile relies on it): when any index repeats, every
// comparison becomes its own rule.
func addRule(lf *scmpFilter, nr int32, act scmpAct, conds []scmpCond, split bool) error {
	switch {
	case split:
		for _, c := range conds {
			if err := lf.addRule(nr, act, []scmpCond{c}); err != nil {
				return err
			}
		}
		return nil
	default:
		return lf.addRule(nr, act, conds)
	}
}

// exportBPF makes libseccomp write the program into a memfd (ExportBPF only
// writes to file descriptors; a pipe could fill up and deadlock) and reads
// it back.
func exportBPF(lf *scmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("silo-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: memfd_create for BPF export: %w", err)
	}
	file := os.NewFile(uintptr(fd), "memfd:silo-seccomp-bpf")
	defer file.Close()
	if err := lf.exportBPF(file); err != nil {
		return nil, fmt.Errorf("seccomp: exporting BPF: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seccomp: reading exported BPF: %w", err)
	}
	raw, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("seccomp: reading exported BPF: %w", err)
	}
	return raw, nil
}

// scmpAction maps a validated action. SCMP_ACT_KILL is the historical name
// for killing the thread, as in runc and libseccomp. ERRNO and TRACE default
// to EPERM, which is what the runtime-spec prescribes for a missing errnoRet.
func scmpAction(a specs.LinuxSeccompAction, errno *uint) scmpAct {
	ret := uint16(unix.EPERM)
	if errno != nil {
		// Validate bounds it to 16 bits.
		ret = uint16(*errno)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return actKillThread
	case specs.ActKillProcess:
		return actKillProcess
	case specs.ActTrap:
		return actTrap
	case specs.ActErrno:
		return actErrno(ret)
	case specs.ActTrace:
		return actTrace(ret)
	case specs.ActAllow:
		return actAllow
	case specs.ActLog:
		return actLog
	case specs.ActNotify:
		return actNotify
	}
	return actInvalid
}

// scmpOperator maps a validated operator. For MASKED_EQ the runtime-spec's
// value is the mask and valueTwo the datum, which is the operand order
// libseccomp expects.
func scmpOperator(op specs.LinuxSeccompOperator) scmpOp {
	switch op {
	case specs.OpNotEqual:
		return cmpNotEqual
	case specs.OpLessThan:
		return cmpLess
	case specs.OpLessEqual:
		return cmpLessOrEqual
	case specs.OpEqualTo:
		return cmpEqual
	case specs.OpGreaterEqual:
		return cmpGreaterEqual
	case specs.OpGreaterThan:
		return cmpGreater
	case specs.OpMaskedEqual:
		return cmpMaskedEqual
	}
	return cmpInvalid
}

// scmpArch maps a runtime-spec architecture name: libseccomp's own names
// are the spec's without the SCMP_ARCH_ prefix, in lower case.
func scmpArch(a specs.Arch) (uint32, error) {
	name := strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_"))
	token, ok := archToken(name)
	if !ok {
		return 0, fmt.Errorf("unknown to this libseccomp")
	}
	return token, nil
}

// supportedArchs lists the architectures the linked libseccomp knows (older
// versions lack e.g. LoongArch), found by adding each to a scratch filter.
// An architecture of the other byte order is known but cannot join a filter
// for this host (EDOM); it is still listed, as runc lists it, because it is
// recognised and usable on hosts of that byte order.
func supportedArchs() []string {
	var out []string
	for _, a := range knownArchs {
		arch, err := scmpArch(a)
		if err != nil {
			continue
		}
		lf, err := newScmpFilter(actAllow)
		if err != nil {
			return nil
		}
		err = lf.addArch(arch)
		lf.release()
		if err == nil || errors.Is(err, syscall.EDOM) {
			out = append(out, string(a))
		}
	}
	return out
}
