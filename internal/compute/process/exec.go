package process

import (
	"context"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute"
	"github.com/silo-containers/silo/internal/errdefs"
)

// execOrder lists the namespaces exec joins, in order. The user namespace
// comes first, and the child joins it, the time and the mount namespace
// itself (nsPlan); the others are joined on the parent's thread and
// inherited by the child.
var execOrder = []specs.LinuxNamespaceType{
	specs.UserNamespace, specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace,
	specs.UTSNamespace, specs.CgroupNamespace, specs.TimeNamespace, specs.MountNamespace,
}

// initRunsWritableRuntime reports whether the container's init still runs
// this binary from a file that can be written: a direct init before the
// execve of its trampoline (trampoline.go). A process joining its pid
// namespace now could open /proc/<pid>/exe and overwrite the runtime on
// the host (CVE-2019-5736).
func initRunsWritableRuntime(pid int) bool {
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	var init, self unix.Stat_t
	if unix.Stat(exe, &init) != nil || unix.Stat("/proc/self/exe", &self) != nil {
		return false // gone: joining it fails anyway
	}
	return init.Dev == self.Dev && init.Ino == self.Ino && !exeProtected(exe)
}

// CreateProcess starts an extra process in the container (runc exec).
func (c *Container) CreateProcess(ctx context.Context, p *compute.ProcessParams) (compute.Process, error) {
	status := c.b.status(c.st)
	if status != compute.Running && status != compute.Created {
		return nil, fmt.Errorf("cannot exec in container %q in state %s: %w", c.st.ID, status, errdefs.ErrConflict)
	}
	if initRunsWritableRuntime(c.st.Pid) {
		return nil, fmt.Errorf("cannot exec in container %q: its init (pid %d) is still being set up: %w", c.st.ID, c.st.Pid, errdefs.ErrConflict)
	}
	if err := validateProcess(p.Process, true); err != nil {
		return nil, err
	}
	plan := &nsPlan{}
	for _, t := range execOrder {
		path, ok := c.st.Namespaces[t]
		if !ok {
			continue
		}
		switch t {
		case specs.UserNamespace:
			plan.childJoins = append(plan.childJoins, "user:"+path)
		case specs.MountNamespace:
			plan.childJoins = append(plan.childJoins, "mnt:"+path)
		case specs.TimeNamespace:
			// setns of a time namespace wants a single-threaded caller:
			// runsilo-helper's constructor (nsPlan.needsHelper).
			plan.childJoins = append(plan.childJoins, "time:"+path)
		default:
			plan.threadJoins = append(plan.threadJoins, path)
		}
	}
	console, closeConsole, err := consoleOf(p.Process.Terminal, p.Console, p.ConsoleSocket)
	if err != nil {
		return nil, err
	}
	defer closeConsole()
	spec, err := c.st.specOf()
	if err != nil {
		return nil, err
	}
	// As for the container's init (spawnInit): cloned into the cgroup2
	// directory, the v1 ones joined by the child's own thread.
	cg := c.b.cgroupManager(c.st)
	join, err := openCgroupJoin(cg, plan, true)
	if err == nil {
		defer join.close()
		err = join.openTasks(cg)
	}
	if err != nil {
		return nil, fmt.Errorf("exec in container %q: cgroups: %w", c.st.ID, err)
	}
	if join.self && directExecSupported(c.st, spec, p) {
		if proc, err := c.createProcessDirect(p, spec, join, console); err != errNoTrampoline {
			return proc, err
		}
	}
	seccompFilter := c.b.compileSeccompAsync(spec.Linux.Seccomp)
	ch, nums, err := spawn(plan, nil, nil, stdioFiles(p.Stdin, p.Stdout, p.Stderr), p.PreserveFDs, []*os.File{console}, join)
	filter, ferr := seccompFilter()
	if err != nil {
		return nil, err
	}
	defer ch.pipe.Close()
	proc := &execProcess{pid: ch.pid}
	fail := func(err error) (compute.Process, error) {
		ch.kill()
		return nil, fmt.Errorf("exec in container %q: %w", c.st.ID, err)
	}
	parentJoins := join.byParent(ch)
	if parentJoins {
		if err := cg.Apply(ch.pid); err != nil {
			return fail(err)
		}
	}
	if ferr != nil {
		return fail(ferr)
	}
	cfg := &initConfig{
		Seccomp:     filter,
		ID:          c.st.ID,
		Bundle:      c.st.Bundle,
		Rootfs:      c.st.Rootfs,
		Spec:        initSpec(spec),
		Process:     p.Process,
		Exec:        true,
		NewUTSNS:    true,
		ConsoleFd:   nums[0],
		FifoFd:      -1,
		PreserveFds: p.PreserveFDs,
	}
	cfg.CgroupTaskFds = join.taskFds(ch, nums[1:])
	if err := ch.sync.send(&message{Type: msgConfig, Config: cfg}); err != nil {
		return fail(err)
	}
	if _, err := ch.sync.expect(msgReady); err != nil {
		return fail(err)
	}
	if err := ch.sync.send(&message{Type: msgStart}); err != nil {
		return fail(err)
	}
	if err := ch.sync.waitExec(); err != nil {
		_, _ = waitPid(ch.pid)
		return nil, fmt.Errorf("exec in container %q: %w", c.st.ID, err)
	}
	return proc, nil
}

// execProcess is a process started by CreateProcess; the caller is its parent.
type execProcess struct{ pid int }

func (p *execProcess) Pid() int { return p.pid }

func (p *execProcess) Signal(sig unix.Signal) error { return unix.Kill(p.pid, sig) }

func (p *execProcess) Wait(ctx context.Context) (int, error) { return waitPid(p.pid) }
