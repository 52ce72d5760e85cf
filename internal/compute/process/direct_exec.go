package process

// The direct exec: runsilo exec without a second exec of this binary.
//
// Like the direct init (direct.go), the parent compiles the set-up into
// syscalls and a raw clone makes them. There are two children, as in crun
// and runc's nsexec: the first joins the container's namespaces and
// cgroups while it is still outside the container's pid namespace, so no
// process of the container can see it, let alone ptrace it, before it is
// in the container's mount namespace; it then clones the second with
// CLONE_PARENT (a child of the runtime, which waits for it) and exits. The
// second is a fork, not a sharer of the runtime's memory: it is visible to
// the container until it executes the process, and a process there with
// CAP_SYS_PTRACE must not reach the runtime through it.
//
// From a writable runtime binary the second child must not be this binary
// at all (CVE-2019-5736): the first child then sets the whole process up
// and executes the trampoline (trampoline.go), which clones the process
// into the pid namespace.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute"
	"github.com/silo-containers/silo/internal/compute/process/dmz"
	"github.com/silo-containers/silo/internal/compute/process/seccomp"
)

// markExecChild is the second child's first record: the runtime learns
// its pid from the record's credentials (SO_PASSCRED), translated by the
// kernel into the runtime's pid namespace.
const markExecChild = 0xffffff04

// directExecSupported reports whether the direct exec can start p in
// container st: not in a user or time namespace (their setns wants a
// single-threaded caller, and the first child shares the runtime's
// memory), and what directProcessOK asks of any direct child.
func directExecSupported(st *containerState, spec *specs.Spec, p *compute.ProcessParams) bool {
	if _, ok := st.Namespaces[specs.UserNamespace]; ok {
		return false
	}
	if _, ok := st.Namespaces[specs.TimeNamespace]; ok {
		return false
	}
	// The second child runs in the container's pid namespace, in sight of
	// its processes: it may be this binary only when that cannot be
	// written (selfExeSafe), else it is the trampoline's.
	return directProcessOK(spec, p.Process, [3]*os.File{p.Stdin, p.Stdout, p.Stderr}, p.PreserveFDs) &&
		(selfExeSafe() || dmz.Supported())
}

// errNoTrampoline is createProcessDirect's answer, before it started
// anything, when the process would need a trampoline it cannot have
// (makeTrampoline): the exec'd init starts it.
var errNoTrampoline = errors.New("exec: no trampoline")

// nsJoin is a namespace the first child joins: an open fd and its type.
type nsJoin struct {
	fd   int
	flag uintptr
	path string
}

// createProcessDirect is CreateProcess through the direct exec.
func (c *Container) createProcessDirect(p *compute.ProcessParams, spec *specs.Spec, join *cgroupJoin, console *os.File) (compute.Process, error) {
	fail := func(err error) (compute.Process, error) {
		return nil, fmt.Errorf("exec in container %q: %w", c.st.ID, err)
	}
	var joins []nsJoin
	defer func() {
		for _, j := range joins {
			unix.Close(j.fd)
		}
	}()
	// In execOrder, the mount namespace last (no user or time namespace
	// here: directExecSupported).
	for _, t := range execOrder {
		path, ok := c.st.Namespaces[t]
		if !ok {
			continue
		}
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(fmt.Errorf("open namespace %s: %w", path, err))
		}
		joins = append(joins, nsJoin{fd: fd, flag: nsFlags[t].flag, path: path})
	}
	filter, creds, err := c.b.directIdentity(spec.Linux.Seccomp, p.Process)
	if err != nil {
		return fail(err)
	}
	var tramp *trampoline
	if !selfExeSafe() {
		if tramp = makeTrampoline(p.Process, filter, true, false); tramp == nil {
			return nil, errNoTrampoline
		}
		defer tramp.file.Close()
	}
	pipe, childEnd, err := newInitPipe()
	if err != nil {
		return fail(err)
	}
	defer pipe.Close()
	defer childEnd.Close() // on failure; closed at once after the clone
	if err := unix.SetsockoptInt(int(pipe.Fd()), unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return fail(fmt.Errorf("init pipe: SO_PASSCRED: %w", err))
	}
	es := *spec
	es.Process = p.Process
	cfg := &directConfig{
		spec: &es, id: c.st.ID, creds: creds, filter: filter, syncFd: int(childEnd.Fd()), fifoFd: -1, console: consoleFd(console), preserve: p.PreserveFDs,
		stdio: stdioFds(p.Stdin, p.Stdout, p.Stderr), trampoline: tramp,
	}
	var tasks []int
	for _, f := range join.tasks {
		tasks = append(tasks, int(f.Fd()))
	}
	prog, err := compileDirectExec(cfg, joins, tasks)
	if err != nil {
		return fail(err)
	}
	// Until they execute the process, the children's memory is this
	// process's (the first's shared, the second's copied): not dumpable,
	// so that only a process with CAP_SYS_PTRACE could read it.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err))
	}
	trace("fork exec (direct)")
	runtime.LockOSThread() // the signal mask the child restores is this thread's
	pid1, errno := startDirect(prog, join.cloneArgs(), int(childEnd.Fd()))
	runtime.UnlockOSThread()
	childEnd.Close()
	// The first child reads prog until it has cloned the second.
	defer runtime.KeepAlive(prog)
	if errno != 0 {
		return fail(fmt.Errorf("clone3: %w", errno))
	}
	link := &directLink{id: c.st.ID, ch: &child{pid: pid1, pipe: pipe}, prog: prog}
	pid2, err := link.execChild()
	if err != nil {
		return fail(err)
	}
	_, _ = waitPid(pid1) // gone once it has cloned the second
	link.ch = &child{pid: pid2, pipe: pipe}
	if err := link.waitExec(); err != nil {
		return fail(err)
	}
	trace("exec process started")
	return &execProcess{pid: pid2}, nil
}

// execChild reads the second child's first record and returns its pid,
// which the record's credentials carry.
func (l *directLink) execChild() (int, error) {
	var rec [8]byte
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	fd := int(l.ch.pipe.Fd())
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(fd, rec[:], oob, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err == nil && n == 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && n < len(rec) {
		_, err = io.ReadFull(l.ch.pipe, rec[n:])
	}
	if err != nil {
		return 0, l.fail(fmt.Errorf("init pipe: %w", err))
	}
	v, err := l.decode(rec)
	if err == nil && v != markExecChild {
		err = fmt.Errorf("init pipe: got %#x, want %#x", v, uint32(markExecChild))
	}
	if err != nil {
		return 0, l.abandon(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err == nil && len(msgs) == 1 {
		var cred *unix.Ucred
		if cred, err = unix.ParseUnixCredentials(&msgs[0]); err == nil && cred.Pid > 0 {
			return int(cred.Pid), nil
		}
	}
	return 0, l.fail(fmt.Errorf("init pipe: no credentials with the exec process's first record (%v)", err))
}

// compileDirectExec turns an exec's set-up into the steps of its two
// children (see the top of this file).
func compileDirectExec(c *directConfig, joins []nsJoin, tasks []int) (*directProg, error) {
	b := newDirectBuilder(c.syncFd, 160)
	p := b.p
	b.prologue(c)
	adj := c.spec.Process.OOMScoreAdj
	if c.trampoline != nil && adj != nil {
		// The first child sets the process up: through the host's /proc
		// while it can (the container's has no pid for it).
		b.writeFile("process.oomScoreAdj", "/proc/self/oom_score_adj", strconv.Itoa(*adj))
	}
	for _, j := range joins {
		p.sys("join namespace "+j.path, unix.SYS_SETNS, uintptr(j.fd), j.flag)
	}
	zero := p.buf([]byte("0"))
	for _, fd := range tasks {
		p.sys("join cgroup (v1 tasks file)", unix.SYS_WRITE, uintptr(fd), zero, 1)
	}
	if c.trampoline != nil {
		// The trampoline clones the process into the pid namespace (and
		// sets the controlling terminal, as the session leader).
		if c.spec.Process.Terminal {
			if err := b.terminal(c, false); err != nil {
				return nil, err
			}
		}
		b.lookPath(c.spec.Process)
		if err := b.trampolineFds(c); err != nil {
			return nil, err
		}
		return p, b.finalize(c, nil)
	}
	// CLONE_PARENT makes the second child the runtime's, with the first's
	// exit signal (clone3 wants none given).
	args := keepStruct(p, &cloneArgs{flags: unix.CLONE_PARENT})
	p.sys("clone the exec process", unix.SYS_CLONE3, args, unsafe.Sizeof(cloneArgs{})).exitParent = true
	b.sync("exec process started", markExecChild, false)
	p.sys("setsid", unix.SYS_SETSID)
	if c.spec.Process.Terminal {
		if err := b.terminal(c, false); err != nil {
			return nil, err
		}
		b.ctty()
	}
	if adj != nil {
		b.writeFile("process.oomScoreAdj", "/proc/self/oom_score_adj", strconv.Itoa(*adj))
	}
	return p, b.finalize(c, b.lookPath(c.spec.Process))
}

// directIdentity prepares what a direct child applies last: the seccomp
// filter (from the cache, or compiled now) and the process's credentials.
func (b *Backend) directIdentity(sc *specs.LinuxSeccomp, proc *specs.Process) (*seccomp.Filter, *credentials, error) {
	var filter *seccomp.Filter
	if sc != nil {
		data, err := b.compiledSeccomp(sc)
		if err == nil && len(data) > 0 {
			filter, err = seccomp.UnmarshalFilter(data)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	creds, err := newCredentials(proc)
	if err != nil {
		return nil, nil, err
	}
	return filter, creds, nil
}
