package process

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute/process/nsenter"
	"github.com/silo-containers/silo/internal/errdefs"
)

// nsFlags maps the OCI namespace types to clone flags and /proc/pid/ns names.
var nsFlags = map[specs.LinuxNamespaceType]struct {
	flag uintptr
	proc string
}{
	specs.PIDNamespace:     {unix.CLONE_NEWPID, "pid"},
	specs.NetworkNamespace: {unix.CLONE_NEWNET, "net"},
	specs.MountNamespace:   {unix.CLONE_NEWNS, "mnt"},
	specs.IPCNamespace:     {unix.CLONE_NEWIPC, "ipc"},
	specs.UTSNamespace:     {unix.CLONE_NEWUTS, "uts"},
	specs.UserNamespace:    {unix.CLONE_NEWUSER, "user"},
	specs.CgroupNamespace:  {unix.CLONE_NEWCGROUP, "cgroup"},
	specs.TimeNamespace:    {unix.CLONE_NEWTIME, "time"},
}

// nsPlan says how the child gets each namespace: created by clone,
// joined on the parent's thread (types a threaded process may join, which
// the child inherits), or joined by the child's C constructor (user, mnt).
type nsPlan struct {
	cloneFlags  uintptr
	threadJoins []string // paths, joined by the parent's locked thread
	childJoins  []string // "type:path", joined by nsenter in the child
	unshare     uintptr  // flags nsenter unshares after joining (user ns joined)
	// timeOffsets is written for a new time namespace. clone cannot make
	// one (CLONE_NEWTIME shares its bit with the exit signal), so nsenter
	// unshares it in the child, writes the offsets, and the child's final
	// execve moves the container's process into it.
	timeOffsets map[string]specs.LinuxTimeOffset
}

// has reports whether the spec lists a namespace of type t.
func hasNamespace(ns []specs.LinuxNamespace, t specs.LinuxNamespaceType) bool {
	for _, n := range ns {
		if n.Type == t {
			return true
		}
	}
	return false
}

// planNamespaces checks linux.namespaces and decides how each is obtained.
func planNamespaces(ns []specs.LinuxNamespace) (*nsPlan, error) {
	p := &nsPlan{}
	seen := map[specs.LinuxNamespaceType]bool{}
	var userPath, mntPath string
	for i, n := range ns {
		info, ok := nsFlags[n.Type]
		if !ok {
			return nil, fmt.Errorf("linux.namespaces[%d].type: unknown namespace type %q: %w", i, n.Type, errdefs.ErrInvalidArgument)
		}
		if seen[n.Type] {
			return nil, fmt.Errorf("linux.namespaces[%d]: namespace %q listed twice: %w", i, n.Type, errdefs.ErrInvalidArgument)
		}
		seen[n.Type] = true
		if n.Path == "" {
			if n.Type == specs.TimeNamespace {
				p.unshare |= unix.CLONE_NEWTIME
				continue
			}
			p.cloneFlags |= info.flag
			continue
		}
		if err := checkNamespacePath(n.Path, info.flag); err != nil {
			return nil, fmt.Errorf("linux.namespaces[%d].path: %w", i, err)
		}
		switch n.Type {
		case specs.UserNamespace:
			userPath = n.Path
		case specs.MountNamespace:
			mntPath = n.Path
		case specs.TimeNamespace:
			// setns of a time namespace wants a single-threaded caller.
			p.childJoins = append(p.childJoins, "time:"+n.Path)
		default:
			p.threadJoins = append(p.threadJoins, n.Path)
		}
	}
	if userPath != "" {
		p.childJoins = append(p.childJoins, "user:"+userPath)
		// New namespaces must be owned by the joined user namespace, so the
		// child makes them after joining it instead of clone making them now.
		if p.cloneFlags&unix.CLONE_NEWPID != 0 {
			return nil, fmt.Errorf("linux.namespaces: joining a user namespace while creating a pid namespace is not supported: %w", errdefs.ErrNotImplemented)
		}
		p.unshare, p.cloneFlags = p.unshare|p.cloneFlags, 0
	}
	if mntPath != "" {
		p.childJoins = append(p.childJoins, "mnt:"+mntPath)
	}
	return p, nil
}

// checkNamespacePath makes sure path is a namespace file of the right type.
func checkNamespacePath(path string, flag uintptr) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer unix.Close(fd)
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("%s is not a namespace file: %w", path, err)
	}
	if uintptr(typ) != flag {
		return fmt.Errorf("%s is a namespace of another type: %w", path, errdefs.ErrInvalidArgument)
	}
	return nil
}

// env returns the environment entries that drive nsenter in the child.
func (p *nsPlan) env() []string {
	var env []string
	if len(p.childJoins) > 0 {
		s := ""
		for i, j := range p.childJoins {
			if i > 0 {
				s += ","
			}
			s += j
		}
		env = append(env, nsenter.EnvJoin+"="+s)
	}
	if p.unshare != 0 {
		env = append(env, fmt.Sprintf("%s=%d", nsenter.EnvUnshare, p.unshare))
	}
	if p.unshare&unix.CLONE_NEWTIME != 0 && len(p.timeOffsets) > 0 {
		var b strings.Builder
		for clock, off := range p.timeOffsets {
			fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
		}
		env = append(env, nsenter.EnvTimeOffsets+"="+b.String())
	}
	return env
}

// onJoinedThread runs fn on a fresh OS thread that has joined the
// namespaces in paths (a child forked from it inherits them). The thread is
// never handed back to the Go scheduler: it exits with the goroutine.
func onJoinedThread(paths []string, fn func() error) error {
	if len(paths) == 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: the tainted thread dies with us
		for _, path := range paths {
			f, err := os.Open(path)
			if err != nil {
				errc <- fmt.Errorf("open namespace %s: %w", path, err)
				return
			}
			err = unix.Setns(int(f.Fd()), 0)
			f.Close()
			if err != nil {
				errc <- fmt.Errorf("setns %s: %w", path, err)
				return
			}
		}
		errc <- fn()
	}()
	return <-errc
}
