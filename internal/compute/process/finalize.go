package process

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute/process/seccomp"
)

// rlimitNames maps the OCI names to resource numbers.
var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// credentials is the process identity, checked and converted before the
// point of no return so that finalize only makes syscalls.
type credentials struct {
	uid, gid   int
	groups     []int
	umask      *uint32
	bounding   capSet
	effective  capSet
	permitted  capSet
	inheritabl capSet
	ambient    capSet
	hasCaps    bool
	rlimits    []rlimit
	noNewPrivs bool
	cwd        string
}

type rlimit struct {
	res int
	lim unix.Rlimit
}

// newCredentials validates the process's user, capabilities and rlimits.
func newCredentials(p *specs.Process) (*credentials, error) {
	c := &credentials{
		uid: int(p.User.UID), gid: int(p.User.GID), umask: p.User.Umask,
		noNewPrivs: p.NoNewPrivileges, cwd: p.Cwd,
	}
	for _, g := range p.User.AdditionalGids {
		c.groups = append(c.groups, int(g))
	}
	if caps := p.Capabilities; caps != nil {
		var err error
		c.hasCaps = true
		if c.bounding, err = parseCaps("process.capabilities.bounding", caps.Bounding); err != nil {
			return nil, err
		}
		if c.effective, err = parseCaps("process.capabilities.effective", caps.Effective); err != nil {
			return nil, err
		}
		if c.permitted, err = parseCaps("process.capabilities.permitted", caps.Permitted); err != nil {
			return nil, err
		}
		if c.inheritabl, err = parseCaps("process.capabilities.inheritable", caps.Inheritable); err != nil {
			return nil, err
		}
		if c.ambient, err = parseCaps("process.capabilities.ambient", caps.Ambient); err != nil {
			return nil, err
		}
	}
	seen := map[int]bool{}
	for i, r := range p.Rlimits {
		res, ok := rlimitNames[strings.ToUpper(r.Type)]
		if !ok {
			return nil, fmt.Errorf("process.rlimits[%d].type: unknown rlimit %q", i, r.Type)
		}
		if seen[res] {
			return nil, fmt.Errorf("process.rlimits[%d]: %s set twice", i, r.Type)
		}
		seen[res] = true
		if r.Soft > r.Hard {
			return nil, fmt.Errorf("process.rlimits[%d]: %s soft limit %d above hard limit %d", i, r.Type, r.Soft, r.Hard)
		}
		c.rlimits = append(c.rlimits, rlimit{res, unix.Rlimit{Cur: r.Soft, Max: r.Hard}})
	}
	return c, nil
}

// setIDs switches the calling thread (only: execve follows) to uid/gid.
func setIDs(uid, gid int) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return fmt.Errorf("process.user.gid: setresgid(%d): %w", gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return fmt.Errorf("process.user.uid: setresuid(%d): %w", uid, e)
	}
	return nil
}

// finalize is the point of no return: identity, capabilities, rlimits,
// no_new_privs, seccomp, execve, in that order. Seccomp comes last so that
// the filter does not have to allow the setup syscalls; rlimits come just
// before it because RLIMIT_AS can make a Go program's next allocation fail.
func finalize(p *specs.Process, c *credentials, filter *seccomp.Filter, argv0 string, pers *specs.LinuxPersonality) error {
	if err := os.Chdir(c.cwd); err != nil {
		return fmt.Errorf("process.cwd: chdir %q: %w", c.cwd, err)
	}
	if err := checkCwd(); err != nil {
		return err
	}
	if pers != nil {
		if err := setPersonality(pers); err != nil {
			return err
		}
	}
	// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the
	// process may be about to lose: load it now, while we are still root
	// with every capability. The remaining steps (setgroups, setresuid,
	// capset, prlimit, execve) then run under the filter, as with runc.
	if filter != nil && !c.noNewPrivs {
		if _, err := filter.Load(); err != nil {
			return fmt.Errorf("linux.seccomp: load filter: %w", err)
		}
		filter = nil
	}
	if c.hasCaps {
		// Drop the bounding set while CAP_SETPCAP is still effective.
		last := lastCap()
		for i := uint(0); i <= last; i++ {
			if c.bounding&(1<<i) == 0 {
				if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil && err != unix.EINVAL {
					return fmt.Errorf("process.capabilities.bounding: drop capability %d: %w", i, err)
				}
			}
		}
	}
	// Keep the permitted set across the uid change; capset trims it below.
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_KEEPCAPS): %w", err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(c.groups)), groupsPtr(c.groups), 0); e != 0 {
		// setgroups is refused in a user namespace with setgroups=deny;
		// that is only an error when groups were asked for.
		if len(c.groups) > 0 || e != unix.EPERM {
			return fmt.Errorf("process.user.additionalGids: setgroups: %w", e)
		}
	}
	if err := setIDs(c.uid, c.gid); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_KEEPCAPS): %w", err)
	}
	if c.hasCaps {
		if err := capset(c.effective, c.permitted, c.inheritabl); err != nil {
			return err
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %w", err)
		}
		for i := uint(0); i < 64; i++ {
			if c.ambient&(1<<i) != 0 {
				// Ambient needs the cap in permitted and inheritable; runc
				// ignores failures here, and so do we.
				_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(i), 0, 0)
			}
		}
	}
	if c.umask != nil {
		unix.Umask(int(*c.umask))
	}
	// Everything execve needs is built now: after the rlimits below, the Go
	// runtime may not be able to allocate.
	argv0p, err := unix.BytePtrFromString(argv0)
	if err != nil {
		return fmt.Errorf("process.args[0]: %w", err)
	}
	argvp, envp, err := execVectors(p)
	if err != nil {
		return err
	}
	for _, r := range c.rlimits {
		lim := r.lim
		if err := unix.Prlimit(0, r.res, &lim, nil); err != nil {
			return fmt.Errorf("process.rlimits: setrlimit %d: %w", r.res, err)
		}
	}
	if c.noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("process.noNewPrivileges: %w", err)
		}
	}
	if filter != nil {
		if _, err := filter.Load(); err != nil {
			return fmt.Errorf("linux.seccomp: load filter: %w", err)
		}
	}
	trace("execve")
	_, _, e := unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(argv0p)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])))
	return fmt.Errorf("exec %q: %w", argv0, e)
}

// execVectors builds execve's NULL-terminated argv and envp.
func execVectors(p *specs.Process) (argv, envp []*byte, err error) {
	if argv, err = syscall.SlicePtrFromStrings(p.Args); err != nil {
		return nil, nil, fmt.Errorf("process.args: %w", err)
	}
	if envp, err = syscall.SlicePtrFromStrings(p.Env); err != nil {
		return nil, nil, fmt.Errorf("process.env: %w", err)
	}
	return argv, envp, nil
}

func groupsPtr(g []int) uintptr {
	if len(g) == 0 {
		return 0
	}
	gids := make([]uint32, len(g))
	for i, v := range g {
		gids[i] = uint32(v)
	}
	return uintptr(unsafe.Pointer(&gids[0]))
}

// capset sets the thread's capability sets (version 3: two 32-bit words).
func capset(eff, perm, inh capSet) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
		{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("process.capabilities: capset: %w", err)
	}
	return nil
}

// personalities maps the OCI domain names.
var personalities = map[specs.LinuxPersonalityDomain]uintptr{
	specs.PerLinux:   0x0000,
	specs.PerLinux32: 0x0008,
}

func setPersonality(p *specs.LinuxPersonality) error {
	dom, ok := personalities[p.Domain]
	if !ok {
		return fmt.Errorf("linux.personality.domain: unknown domain %q", p.Domain)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, dom, 0, 0); e != 0 {
		return fmt.Errorf("linux.personality: personality(%#x): %w", dom, e)
	}
	return nil
}
