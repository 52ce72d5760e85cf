package process

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute"
	"github.com/silo-containers/silo/internal/compute/process/cgroups"
	"github.com/silo-containers/silo/internal/compute/process/helper"
	"github.com/silo-containers/silo/internal/compute/process/seccomp"
	"github.com/silo-containers/silo/internal/errdefs"
)

// InitArg is argv[1] of the container's init: cmd/runsilo hands control to
// Init when it sees it.
const InitArg = "init"

// envInitPipe names the child's fd number of the init pipe.
const envInitPipe = "_SILO_INITPIPE"

// child is a process being set up: its pid and the parent's end of the
// init pipe.
type child struct {
	pid  int
	pipe *os.File
	sync *syncPipe
	// inCgroup is set when the child was cloned into the cgroup2 directory
	// given to spawn.
	inCgroup bool
}

// kill SIGKILLs and reaps the child.
func (c *child) kill() {
	_ = unix.Kill(c.pid, unix.SIGKILL)
	_, _ = waitPid(c.pid)
}

// waitPid reaps pid and returns its shell-style exit status (128+signal).
func waitPid(pid int) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("wait for pid %d: %w", pid, err)
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
}

// spawn starts this binary as "init" with the given namespaces and files.
// extra are fds for the child after the preserved ones; the returned slice
// gives each one's fd number in the child (-1 for a nil entry), followed
// by those of join's tasks files. The child is cloned into join's cgroup2
// directory, if any (clone3 CLONE_INTO_CGROUP; child.inCgroup says
// whether the kernel could).
//
// syscall.ForkExec is used rather than os/exec: os/exec probes pidfd
// support with an extra clone in every new process, a cost on the start
// path that buys us nothing.
func spawn(plan *nsPlan, uidMaps, gidMaps []specs.LinuxIDMapping, stdio [3]*os.File, preserve int, extra []*os.File, join *cgroupJoin) (*child, []int, error) {
	self, err := openSealedExe("/proc/self/exe")
	if err != nil {
		return nil, nil, err
	}
	defer self.Close()
	var helperExe *os.File
	if plan.needsHelper() {
		if helperExe, err = openSealedExe(helper.Path()); err != nil {
			return nil, nil, fmt.Errorf("%s (to join a user or time namespace): %w", helper.Name, err)
		}
		defer helperExe.Close()
	}
	parentEnd, childEnd, err := newInitPipe()
	if err != nil {
		return nil, nil, err
	}
	defer childEnd.Close()
	extra = append(extra, join.tasks...)

	files := make([]uintptr, 0, 3+preserve+len(extra)+2)
	for _, f := range stdio {
		files = append(files, f.Fd())
	}
	for i := 0; i < preserve; i++ {
		files = append(files, uintptr(3+i))
	}
	pipeFd := len(files)
	files = append(files, childEnd.Fd())
	nums := make([]int, len(extra))
	for i, f := range extra {
		nums[i] = -1
		if f != nil {
			nums[i] = len(files)
			files = append(files, f.Fd())
		}
	}
	selfFd := len(files)
	files = append(files, self.Fd())
	exe, argv := "/proc/self/fd/"+strconv.Itoa(selfFd), []string{"runsilo", InitArg}
	if helperExe != nil {
		// The helper joins what the environment lists, then executes the
		// init from its fd (the joined mount namespace may not have it).
		exe, argv = "/proc/self/fd/"+strconv.Itoa(len(files)), []string{helper.Name, "exec", strconv.Itoa(selfFd), "runsilo", InitArg}
		files = append(files, helperExe.Fd())
	}

	attr := &syscall.ProcAttr{
		Env:   append([]string{envInitPipe + "=" + strconv.Itoa(pipeFd)}, plan.env()...),
		Files: files,
		Sys:   &syscall.SysProcAttr{Cloneflags: plan.cloneFlags},
	}
	if plan.cloneFlags&unix.CLONE_NEWUSER != 0 {
		attr.Sys.UidMappings = toSysMaps(uidMaps)
		attr.Sys.GidMappings = toSysMaps(gidMaps)
		attr.Sys.GidMappingsEnableSetgroups = true
		// Become root of the new namespace before exec: a process whose
		// uid is unmapped there would lose its capabilities at execve.
		attr.Sys.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	if Debug {
		attr.Env = append(attr.Env, "_SILO_DEBUG=1")
	}
	if join.dir != nil {
		attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, int(join.dir.Fd())
	}
	trace("fork init")
	var pid int
	err = onJoinedThread(plan.threadJoins, func() error {
		var err error
		pid, err = syscall.ForkExec(exe, argv, attr)
		if attr.Sys.UseCgroupFD && (err == syscall.ENOSYS || err == syscall.E2BIG) {
			// A kernel before 5.7 (no clone3, or no CLONE_INTO_CGROUP):
			// the caller moves the child into its cgroup afterwards.
			attr.Sys.UseCgroupFD = false
			pid, err = syscall.ForkExec(exe, argv, attr)
		}
		return err
	})
	if err != nil {
		parentEnd.Close()
		return nil, nil, fmt.Errorf("start container init: %w", err)
	}
	return &child{pid: pid, pipe: parentEnd, sync: newSyncPipe(parentEnd), inCgroup: attr.Sys.UseCgroupFD}, nums, nil
}

// cgroupJoin is how a new child enters its container's cgroups: cloned
// into the cgroup2 directory, and its thread moving itself into the v1
// ones (cgroups.Manager.TaskFiles), so that no pid is written by the
// parent and the kernel's global lock is not taken. Not for a child in a
// user namespace, whose root may not write the host's cgroup files.
type cgroupJoin struct {
	self bool
	// dir is the cgroup2 directory for spawn; nil without one.
	dir *os.File
	// tasks are the v1 "tasks" files opened for an exec (openTasks),
	// passed to the child.
	tasks []*os.File
}

// A new container's init opens the v1 files itself, by their host paths,
// so a spec that has init join another mount namespace is left to the
// parent as well (exec opens the files for its child: openTasks).
func openCgroupJoin(cg cgroups.Manager, plan *nsPlan, exec bool) (*cgroupJoin, error) {
	j := &cgroupJoin{self: !plan.userNS() && (exec || !plan.joinsMount())}
	if j.self {
		var err error
		if j.dir, err = cg.OpenUnified(); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// openTasks opens the v1 "tasks" files for an exec's child, which cannot
// reach them by path.
func (j *cgroupJoin) openTasks(cg cgroups.Manager) error {
	if !j.self {
		return nil
	}
	for _, name := range cg.TaskFiles() {
		f, err := os.OpenFile(name, os.O_WRONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		j.tasks = append(j.tasks, f)
	}
	return nil
}

func (j *cgroupJoin) close() {
	if j.dir != nil {
		j.dir.Close()
	}
	for _, f := range j.tasks {
		f.Close()
	}
}

// byParent reports whether the parent must move child ch with
// Manager.Apply: in a user namespace, or on a kernel without clone3's
// CLONE_INTO_CGROUP (before 5.7).
func (j *cgroupJoin) byParent(ch *child) bool {
	return !j.self || (j.dir != nil && !ch.inCgroup)
}

// cloneArgs are the clone3 arguments of a direct child: cloned into the
// cgroup2 directory, when there is one.
func (j *cgroupJoin) cloneArgs() *cloneArgs {
	args := &cloneArgs{exitSignal: uint64(unix.SIGCHLD)}
	if j.dir != nil {
		args.flags |= unix.CLONE_INTO_CGROUP
		args.cgroup = uint64(j.dir.Fd())
	}
	return args
}

// taskFds returns the child's fds of the files from openTasks, given the
// fd numbers spawn reported for them; nil when the parent moves the child.
func (j *cgroupJoin) taskFds(ch *child, nums []int) []int {
	if j.byParent(ch) {
		return nil
	}
	return nums
}

func toSysMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, e := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(e.ContainerID), HostID: int(e.HostID), Size: int(e.Size)}
	}
	return out
}

// newInitPipe makes the socketpair between the runtime and an init:
// both ends close-on-exec.
func newInitPipe() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair for init pipe: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "init pipe (parent)"), os.NewFile(uintptr(fds[1]), "init pipe (child)"), nil
}

// stdioFds are the numbers of the stdioFiles of in, out and errw.
func stdioFds(in, out, errw *os.File) [3]int {
	f := stdioFiles(in, out, errw)
	return [3]int{int(f[0].Fd()), int(f[1].Fd()), int(f[2].Fd())}
}

// stdioFiles picks the files given to the child as fds 0-2: the caller's
// own stdio where none is given.
func stdioFiles(in, out, errw *os.File) [3]*os.File {
	pick := func(f, def *os.File) *os.File {
		if f != nil {
			return f
		}
		return def
	}
	return [3]*os.File{pick(in, os.Stdin), pick(out, os.Stdout), pick(errw, os.Stderr)}
}

// consoleOf returns the console socket of a process with a terminal (nil
// without one): given, the caller's connection, else socket dialled here;
// and what to call once the child has it.
func consoleOf(terminal bool, given *os.File, socket string) (*os.File, func(), error) {
	if !terminal {
		return nil, func() {}, nil
	}
	if given != nil {
		return given, func() {}, nil
	}
	if socket == "" {
		return nil, nil, fmt.Errorf("process.terminal is true but no console socket was given: %w", errdefs.ErrInvalidArgument)
	}
	f, err := dialConsole(socket)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// consoleFd is the fd number of a console socket; -1 for none.
func consoleFd(f *os.File) int {
	if f == nil {
		return -1
	}
	return int(f.Fd())
}

// dialConsole connects to the console socket that receives the pty master.
// Raw syscalls rather than package net: it is one connect, and net would
// add to every runsilo start the cost of a much larger binary.
func dialConsole(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect to console socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// spawnInit starts the init of a new container and drives it to Created
// (or Running when the document says StartOnCreate).
func (c *Container) spawnInit(ctx context.Context, doc *compute.Document, plan *nsPlan) error {
	spec := doc.Spec
	console, closeConsole, err := consoleOf(spec.Process.Terminal, doc.Console, doc.ConsoleSocket)
	if err != nil {
		return err
	}
	defer closeConsole()
	sp, err := c.prepareSpawn(doc, plan)
	if err != nil {
		return err
	}
	defer sp.close()
	fifo, cg, join := sp.fifo, sp.cg, sp.join
	seccompFilter := c.b.compileSeccompAsync(spec.Linux.Seccomp)
	var uidMaps, gidMaps []specs.LinuxIDMapping
	if plan.cloneFlags&unix.CLONE_NEWUSER != 0 {
		uidMaps, gidMaps = spec.Linux.UIDMappings, spec.Linux.GIDMappings
	}
	// The cgroup namespace is made by init once it sits in its cgroup, so
	// that the namespace's root is the container's cgroup.
	newCgroupNS := (plan.cloneFlags|plan.unshare)&unix.CLONE_NEWCGROUP != 0
	plan.cloneFlags &^= unix.CLONE_NEWCGROUP
	plan.unshare &^= unix.CLONE_NEWCGROUP
	ch, nums, err := spawn(plan, uidMaps, gidMaps, stdioFiles(doc.Stdin, doc.Stdout, doc.Stderr), doc.PreserveFDs, []*os.File{console, fifo}, join)
	trace("init forked")
	cgErr := <-sp.cgDone
	trace("cgroups made")
	if err != nil {
		return err
	}
	defer ch.pipe.Close()
	c.child = ch
	pid := ch.pid
	c.st.Pid = pid
	if cgErr != nil {
		return fmt.Errorf("cgroups of %q: %w", c.st.ID, cgErr)
	}
	filter, err := seccompFilter()
	if err != nil {
		return err
	}
	parentJoins := join.byParent(ch)
	cfg := &initConfig{
		Seccomp:      filter,
		ID:           c.st.ID,
		Bundle:       doc.Bundle,
		Rootfs:       c.st.Rootfs,
		Spec:         initSpec(spec),
		Process:      spec.Process,
		NoPivot:      doc.NoPivot,
		NoNewKeyring: doc.NoNewKeyring,
		NewUserNS:    (plan.cloneFlags|plan.unshare)&unix.CLONE_NEWUSER != 0,
		NewMountNS:   hasNamespace(spec.Linux.Namespaces, specs.MountNamespace),
		NewUTSNS:     (plan.cloneFlags|plan.unshare)&unix.CLONE_NEWUTS != 0,
		NewCgroupNS:  newCgroupNS,
		ConsoleFd:    nums[0],
		FifoFd:       nums[1],
		PreserveFds:  doc.PreserveFDs,
		CgroupMounts: cg.MountSources(),
		State:        c.b.ociState(c.st, compute.Created),
	}
	if !parentJoins {
		cfg.CgroupTasks = cg.TaskFiles()
	}
	if err := ch.sync.send(&message{Type: msgConfig, Config: cfg}); err != nil {
		return c.initFailed(ch, err)
	}
	trace("config sent")
	/* sync 1: init starts on its mounts at once; it waits for this message
	   only before it needs to be in its cgroups (the cgroup namespace, a
	   cgroup mount, or the hooks stage at the latest), and then joins the
	   v1 hierarchies itself. When we move it instead, the kernel's global
	   lock may wait for an RCU grace period: that overlaps init's work. */
	if parentJoins {
		if err := cg.Apply(pid); err != nil {
			return c.initFailed(ch, fmt.Errorf("cgroups of %q: %w", c.st.ID, err))
		}
	}
	if c.st.PidStart, err = pidStartTime(pid); err != nil {
		return fmt.Errorf("container %q init (pid %d) died during setup", c.st.ID, pid)
	}
	if err := ch.sync.send(&message{Type: msgCgroup}); err != nil {
		return c.initFailed(ch, err)
	}
	trace("cgroups joined")
	starting, err := c.recordInit(doc, cg)
	if err != nil {
		return err
	}
	/* sync 2: the mounts are made; hooks that run in the runtime's
	   namespaces go now, before pivot_root. */
	if _, err := ch.sync.expect(msgHooks); err != nil {
		return c.initFailed(ch, err)
	}
	if err := c.runCreateHooks(spec); err != nil {
		return err
	}
	if err := ch.sync.send(&message{Type: msgHooksDone}); err != nil {
		return c.initFailed(ch, err)
	}
	/* sync 3: init is ready and waits for start. */
	m, err := ch.sync.recv()
	if err != nil {
		return c.initFailed(ch, err)
	}
	if m.Type == msgSeccomp {
		if err := c.forwardSeccompListener(ch, m.Fd); err != nil {
			return err
		}
		if err := ch.sync.send(&message{Type: msgSeccompOK}); err != nil {
			return c.initFailed(ch, err)
		}
		m, err = ch.sync.recv()
		if err != nil {
			return c.initFailed(ch, err)
		}
	}
	if m.Type != msgReady {
		return c.initFailed(ch, fmt.Errorf("init pipe: got %q, want %q", m.Type, msgReady))
	}
	trace("init ready")
	if doc.StartOnCreate {
		if err := ch.sync.send(&message{Type: msgStart}); err != nil {
			return c.initFailed(ch, err)
		}
		if err := ch.sync.waitExec(); err != nil {
			return err
		}
		return c.markStarted(starting)
	}
	return nil
}

// openFifo makes the exec fifo that `start` writes to, for a create (nil
// for run, whose init waits on its pipe). Opened read+write, so that
// opening never blocks and init's read waits for data.
func (c *Container) openFifo(doc *compute.Document) (*os.File, error) {
	if doc.StartOnCreate {
		return nil, nil
	}
	path := filepath.Join(c.b.dir(c.st.ID), fifoFile)
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return nil, fmt.Errorf("mkfifo %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

// spawnPrep is what both inits need before the clone.
type spawnPrep struct {
	fifo   *os.File // the exec fifo (openFifo); nil for run
	cg     cgroups.Manager
	join   *cgroupJoin
	cgDone <-chan error // the cgroups are made and limited (makeCgroups)
}

// prepareSpawn makes the exec fifo and the cgroups; close releases both
// once the child has them.
func (c *Container) prepareSpawn(doc *compute.Document, plan *nsPlan) (*spawnPrep, error) {
	fifo, err := c.openFifo(doc)
	if err != nil {
		return nil, err
	}
	sp := &spawnPrep{fifo: fifo}
	if sp.cg, sp.join, sp.cgDone, err = c.makeCgroups(doc.Spec, plan); err != nil {
		sp.close()
		return nil, err
	}
	return sp, nil
}

func (sp *spawnPrep) close() {
	if sp.join != nil {
		sp.join.close()
	}
	if sp.fifo != nil {
		sp.fifo.Close()
	}
}

// makeCgroups prepares the container's cgroups: how the child enters them
// (the cgroup2 directory is made now, the child is cloned into it) and a
// goroutine that makes the others and applies the limits while the child
// starts, reporting on the returned channel.
func (c *Container) makeCgroups(spec *specs.Spec, plan *nsPlan) (cgroups.Manager, *cgroupJoin, <-chan error, error) {
	cgroupsPath := spec.Linux.CgroupsPath
	if cgroupsPath == "" {
		cgroupsPath = "/" + c.st.ID // runc's default
	}
	cg, err := cgroups.New(cgroupsPath, c.st.ID)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cgroups of %q: %w", c.st.ID, err)
	}
	c.cg = cg
	join, err := openCgroupJoin(cg, plan, false)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cgroups of %q: %w", c.st.ID, err)
	}
	done := make(chan error, 1)
	go func() {
		err := cg.Apply(0)
		if err == nil {
			err = cg.Set(cgroupResources(spec))
		}
		done <- err
	}()
	return cg, join, done, nil
}

// recordInit writes the state of a container whose init is making its
// mounts: complete now, so that a reader before "ready" sees a live init
// with its fifo (or, for run, the starting marker), i.e. created. It
// returns the marker's path.
func (c *Container) recordInit(doc *compute.Document, cg cgroups.Manager) (string, error) {
	c.st.CgroupPaths = cg.Paths()
	c.st.CgroupCreated = cg.Created()
	c.st.Namespaces = namespacePaths(doc.Spec.Linux.Namespaces, c.st.Pid)
	starting := filepath.Join(c.b.dir(c.st.ID), startingFile)
	if doc.StartOnCreate {
		if err := os.WriteFile(starting, nil, 0o600); err != nil {
			return "", fmt.Errorf("mark container %q starting: %w", c.st.ID, err)
		}
	}
	if err := c.b.saveState(c.st); err != nil {
		return "", err
	}
	trace("state saved")
	return starting, nil
}

// runCreateHooks runs the hooks of the runtime's namespaces, at sync 2.
func (c *Container) runCreateHooks(spec *specs.Spec) error {
	if spec.Hooks == nil {
		return nil
	}
	state := c.b.ociState(c.st, compute.Created)
	//lint:ignore SA1019 prestart is deprecated, yet runtime-spec 1.x still requires running it
	if err := runHooks("prestart", spec.Hooks.Prestart, state); err != nil {
		return err
	}
	return runHooks("createRuntime", spec.Hooks.CreateRuntime, state)
}

// markStarted records that run's process was executed.
func (c *Container) markStarted(starting string) error {
	if err := os.Remove(starting); err != nil {
		return fmt.Errorf("mark container %q started: %w", c.st.ID, err)
	}
	c.runPoststart()
	return nil
}

// forwardSeccompListener copies init's seccomp listener fd (number fd in
// init) with pidfd_getfd and sends it, with the state, to the spec's
// listenerPath, as runc does for seccomp agents.
func (c *Container) forwardSeccompListener(ch *child, fd int) error {
	sc := c.st.spec.Linux.Seccomp // set: this is the create
	pidfd, err := unix.PidfdOpen(ch.pid, 0)
	if err != nil {
		return fmt.Errorf("linux.seccomp: pidfd_open %d: %w", ch.pid, err)
	}
	defer unix.Close(pidfd)
	local, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return fmt.Errorf("linux.seccomp: fetch listener fd from init: %w", err)
	}
	defer unix.Close(local)
	state, err := json.Marshal(c.b.ociState(c.st, compute.Created))
	if err != nil {
		return err
	}
	return seccomp.SendListener(sc.ListenerPath, local, state, sc.ListenerMetadata)
}

// initSpec is the part of the spec init reads, and all that the init pipe
// carries (wire.go): the mounts, devices and paths of the rootfs, hostname,
// sysctls, personality and the hooks init runs itself. The limits, id
// mappings, namespaces and seccomp profile are the parent's business.
func initSpec(s *specs.Spec) *specs.Spec {
	c := &specs.Spec{Hostname: s.Hostname, Domainname: s.Domainname}
	if len(s.Mounts) > 0 {
		c.Mounts = make([]specs.Mount, len(s.Mounts))
		for i, m := range s.Mounts {
			c.Mounts[i] = specs.Mount{Destination: m.Destination, Type: m.Type, Source: m.Source, Options: m.Options}
		}
	}
	if s.Root != nil {
		c.Root = &specs.Root{Path: s.Root.Path, Readonly: s.Root.Readonly}
	}
	if h := s.Hooks; h != nil {
		c.Hooks = &specs.Hooks{CreateContainer: h.CreateContainer, StartContainer: h.StartContainer}
	}
	if l := s.Linux; l != nil {
		c.Linux = &specs.Linux{
			Devices: l.Devices, Sysctl: l.Sysctl, MaskedPaths: l.MaskedPaths,
			ReadonlyPaths: l.ReadonlyPaths, RootfsPropagation: l.RootfsPropagation,
			Personality: l.Personality,
		}
	}
	return c
}

// initFailed turns a broken init pipe into the most useful error: the one
// init reported, or how it died.
func (c *Container) initFailed(ch *child, err error) error {
	if _, ok := err.(*initError); ok {
		return err
	}
	ch.kill()
	c.child = nil
	return fmt.Errorf("container %q init failed: %w", c.st.ID, err)
}

// namespacePaths records where exec finds each namespace of the container.
func namespacePaths(ns []specs.LinuxNamespace, pid int) map[specs.LinuxNamespaceType]string {
	m := map[specs.LinuxNamespaceType]string{}
	for _, n := range ns {
		m[n.Type] = "/proc/" + strconv.Itoa(pid) + "/ns/" + nsFlags[n.Type].proc
	}
	return m
}
