package process

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute/process/helper"
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

// The environment that tells the child which namespaces to enter before
// anything else (see nsPlan.env). runsilo-helper's C constructor
// (package nsenter) reads the same names.
const (
	// envNsJoin lists "type:path" pairs, comma separated, joined in order.
	envNsJoin = "_SILO_NSENTER"
	// envNsUnshare holds clone flags (decimal) to unshare after joining.
	envNsUnshare = "_SILO_UNSHARE"
	// envTimeOffsets holds /proc/self/timens_offsets lines for a new time
	// namespace ("boottime 1000 0\n…").
	envTimeOffsets = "_SILO_TIMENS_OFFSETS"
)

// nsPlan says how the child gets each namespace: created by clone,
// joined on the parent's thread (types a threaded process may join, which
// the child inherits), or joined by the child itself (mnt, user, time).
//
// The kernel lets a threaded process join a mount namespace only on a
// thread that has unshared its filesystem context, which the Go init does
// (enterNamespaces). User and time namespaces it refuses to any process
// with a second thread, and a Go program has several before main: for
// those the child is runsilo-helper, whose C constructor joins them before
// its Go runtime starts and which then executes the runsilo init.
type nsPlan struct {
	cloneFlags  uintptr
	threadJoins []string // paths, joined by the parent's locked thread
	childJoins  []string // "type:path", joined in the child
	unshare     uintptr  // flags the child unshares after joining
	// timeOffsets is written for a new time namespace. clone cannot make
	// one (CLONE_NEWTIME shares its bit with the exit signal), so the
	// child unshares it, writes the offsets, and its final execve moves
	// the container's process into it.
	timeOffsets map[string]specs.LinuxTimeOffset
}

// needsHelper reports whether the child must be runsilo-helper: it joins a
// user or time namespace, which only a single-threaded process may.
func (p *nsPlan) needsHelper() bool {
	for _, j := range p.childJoins {
		if strings.HasPrefix(j, "user:") || strings.HasPrefix(j, "time:") {
			return true
		}
	}
	return false
}

// joinsMount reports whether the child joins an existing mount namespace.
func (p *nsPlan) joinsMount() bool {
	for _, j := range p.childJoins {
		if strings.HasPrefix(j, "mnt:") {
			return true
		}
	}
	return false
}

// userNS reports whether the child runs in a user namespace other than the
// runtime's, new or joined. Its root is then not the host's root, and may
// not write the host's cgroup files.
func (p *nsPlan) userNS() bool {
	if (p.cloneFlags|p.unshare)&unix.CLONE_NEWUSER != 0 {
		return true
	}
	for _, j := range p.childJoins {
		if strings.HasPrefix(j, "user:") {
			return true
		}
	}
	return false
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

// env returns the environment entries that tell the child what to enter.
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
		env = append(env, envNsJoin+"="+s)
	}
	if p.unshare != 0 {
		env = append(env, fmt.Sprintf("%s=%d", envNsUnshare, p.unshare))
	}
	if p.unshare&unix.CLONE_NEWTIME != 0 && len(p.timeOffsets) > 0 {
		var b strings.Builder
		for clock, off := range p.timeOffsets {
			fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
		}
		env = append(env, envTimeOffsets+"="+b.String())
	}
	return env
}

// enterNamespaces does in the Go init what runsilo-helper's constructor
// does before its Go runtime starts, for what a threaded process may do:
// join the mount namespaces the environment lists (on this thread, after
// unsharing its filesystem context: the kernel's condition for joining a
// mount namespace), unshare the namespaces it asks for (a new time
// namespace) and write the new time namespace's offsets. The caller is
// locked to the main thread, the one the container's process is executed
// from. With the helper, its constructor consumed the environment already.
func enterNamespaces() error {
	joins, unshare, offsets := os.Getenv(envNsJoin), os.Getenv(envNsUnshare), os.Getenv(envTimeOffsets)
	for _, k := range []string{envNsJoin, envNsUnshare, envTimeOffsets} {
		os.Unsetenv(k)
	}
	if joins != "" {
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare filesystem context to join a mount namespace: %w", err)
		}
		for _, item := range strings.Split(joins, ",") {
			typ, path, _ := strings.Cut(item, ":")
			if typ != "mnt" {
				return fmt.Errorf("join %s namespace %s: only %s can: %w", typ, path, helper.Name, errdefs.ErrNotImplemented)
			}
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open namespace %s: %w", path, err)
			}
			err = unix.Setns(fd, unix.CLONE_NEWNS)
			unix.Close(fd)
			if err != nil {
				return fmt.Errorf("setns %s: %w", path, err)
			}
		}
	}
	if unshare != "" {
		flags, err := strconv.ParseUint(unshare, 10, 64)
		if err != nil {
			return fmt.Errorf("%s=%q: %w", envNsUnshare, unshare, err)
		}
		if flags&unix.CLONE_NEWNS != 0 {
			flags |= unix.CLONE_FS
		}
		if err := unix.Unshare(int(flags)); err != nil {
			return fmt.Errorf("unshare %#x: %w", flags, err)
		}
	}
	if offsets != "" {
		if err := os.WriteFile("/proc/self/timens_offsets", []byte(offsets), 0); err != nil {
			return fmt.Errorf("linux.timeOffsets: write /proc/self/timens_offsets: %w", err)
		}
	}
	return nil
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
		if err := joinNamespaces(paths); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// joinNamespaces joins the namespaces in paths on the calling thread,
// which the caller has locked and never hands back.
func joinNamespaces(paths []string) error {
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("open namespace %s: %w", path, err)
		}
		err = unix.Setns(int(f.Fd()), 0)
		f.Close()
		if err != nil {
			return fmt.Errorf("setns %s: %w", path, err)
		}
	}
	return nil
}
