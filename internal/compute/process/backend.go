package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute"
	"github.com/silo-containers/silo/internal/compute/process/cgroups"
	"github.com/silo-containers/silo/internal/errdefs"
)

// Backend runs containers as namespaced, cgroup-limited process trees.
// Its state lives in Root, one directory per container.
type Backend struct {
	// Root is the state directory (runsilo's --root).
	Root string
}

var _ compute.Backend = (*Backend)(nil)

// New returns a backend keeping its state under root.
func New(root string) *Backend { return &Backend{Root: root} }

// List returns the ids of the containers in the state directory.
func (b *Backend) List(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(b.Root)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", b.Root, err)
	}
	var ids []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(b.Root, e.Name(), stateFile)); err == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Open returns the container with that id.
func (b *Backend) Open(ctx context.Context, id string) (compute.System, error) {
	st, err := b.loadState(id)
	if err != nil {
		return nil, err
	}
	return &Container{b: b, st: st}, nil
}

func (b *Backend) cgroupManager(st *containerState) cgroups.Manager {
	return cgroups.Load(st.CgroupPaths, st.CgroupCreated)
}

// Create makes a container from an OCI bundle and leaves it Created (or,
// with StartOnCreate, Running as a child of the caller).
func (b *Backend) Create(ctx context.Context, doc *compute.Document) (compute.System, error) {
	if err := checkID(doc.ID); err != nil {
		return nil, err
	}
	spec := doc.Spec
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	plan, err := planNamespaces(spec.Linux.Namespaces)
	if err != nil {
		return nil, err
	}
	plan.timeOffsets = spec.Linux.TimeOffsets
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(doc.Bundle, rootfs)
	}
	if fi, err := os.Stat(rootfs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("root.path %q: not a directory: %w", spec.Root.Path, errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(b.Root, 0o700); err != nil {
		return nil, fmt.Errorf("create state root %s: %w", b.Root, err)
	}
	dir := b.dir(doc.ID)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if os.IsExist(err) {
			return nil, fmt.Errorf("container %q: %w", doc.ID, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("create state dir %s: %w", dir, err)
	}
	c := &Container{b: b, st: &containerState{
		ID:          doc.ID,
		Bundle:      doc.Bundle,
		Rootfs:      rootfs,
		Created:     time.Now().UTC(),
		Owner:       "",
		Annotations: spec.Annotations,
		RawSpec:     doc.SpecJSON,
		spec:        spec,
	}}
	ok := false
	defer func() {
		if !ok {
			c.abort()
		}
	}()
	spawnFn := c.spawnInit
	if directSupported(doc, plan) {
		spawnFn = c.spawnDirect
	}
	if err := spawnFn(ctx, doc, plan); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// Container is one container of the process backend.
type Container struct {
	b  *Backend
	st *containerState
	// child is the init process when this Container created it (run).
	child *child
	// cg is set while the container is being created.
	cg cgroups.Manager
}

var _ compute.System = (*Container)(nil)

// ID returns the container id.
func (c *Container) ID() string { return c.st.ID }

// abort undoes a failed create: init is killed, cgroups and state removed.
func (c *Container) abort() {
	if c.child != nil {
		c.child.kill()
	}
	if c.cg != nil {
		_ = c.cg.Destroy()
	}
	_ = os.RemoveAll(c.b.dir(c.st.ID))
}

// Properties reports the container's current state.
func (c *Container) Properties(ctx context.Context) (*compute.Properties, error) {
	return &compute.Properties{
		ID:          c.st.ID,
		State:       c.b.status(c.st),
		Pid:         c.st.Pid,
		Bundle:      c.st.Bundle,
		Created:     c.st.Created,
		Owner:       c.st.Owner,
		Annotations: c.st.Annotations,
	}, nil
}

// Pid returns the host pid of the container's init.
func (c *Container) Pid() int { return c.st.Pid }

// Rootfs returns the absolute path of the container's root file system.
func (c *Container) Rootfs() string { return c.st.Rootfs }

// Spec returns the container's OCI spec (as created, plus updates).
func (c *Container) Spec() (*specs.Spec, error) { return c.st.specOf() }

// Start lets a Created container run its process. The fifo handshake is
// what makes "create" and "start" two commands: init blocks reading the
// fifo, start writes one byte to it.
func (c *Container) Start(ctx context.Context) error {
	if s := c.b.status(c.st); s != compute.Created {
		return fmt.Errorf("cannot start container %q in state %s: %w", c.st.ID, s, errdefs.ErrConflict)
	}
	fifo := filepath.Join(c.b.dir(c.st.ID), fifoFile)
	fd, err := unix.Open(fifo, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("start container %q: open %s: %w", c.st.ID, fifo, err)
	}
	defer unix.Close(fd)
	// Whoever unlinks the fifo owns the start; a concurrent start loses here.
	if err := os.Remove(fifo); err != nil {
		return fmt.Errorf("start container %q: already started: %w", c.st.ID, errdefs.ErrConflict)
	}
	if _, err := unix.Write(fd, []byte{0}); err != nil {
		return fmt.Errorf("start container %q: write %s: %w", c.st.ID, fifo, err)
	}
	waitFifoClosed(fd)
	c.runPoststart()
	return nil
}

// waitFifoClosed waits (up to 10s) until init has executed the process:
// init holds the fifo's only read end close-on-exec, so once it is gone a
// write fails with EPIPE. Poststart hooks must run after that point.
func waitFifoClosed(fd int) {
	deadline := time.Now().Add(10 * time.Second)
	for delay := 20 * time.Microsecond; time.Now().Before(deadline); delay = min(2*delay, 5*time.Millisecond) {
		if _, err := unix.Write(fd, []byte{0}); err != nil {
			return // EPIPE: no reader left (or the pipe is full: init is stuck)
		}
		time.Sleep(delay)
	}
}

// Signal sends sig to init, or with all to every process in the cgroup.
func (c *Container) Signal(ctx context.Context, sig unix.Signal, all bool) error {
	status := c.b.status(c.st)
	if status == compute.Stopped && !all {
		return fmt.Errorf("container %q is not running: %w", c.st.ID, errdefs.ErrConflict)
	}
	if all {
		return c.signalAll(sig)
	}
	if err := unix.Kill(c.st.Pid, sig); err != nil {
		return fmt.Errorf("signal %d to container %q (pid %d): %w", sig, c.st.ID, c.st.Pid, err)
	}
	return nil
}

// signalAll signals every process of the container. A frozen cgroup is
// thawed afterwards so that SIGKILL can take effect.
func (c *Container) signalAll(sig unix.Signal) error {
	cg := c.b.cgroupManager(c.st)
	pids, err := cg.Pids()
	if err != nil {
		return fmt.Errorf("list processes of %q: %w", c.st.ID, err)
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal %d to pid %d of %q: %w", sig, pid, c.st.ID, err)
		}
	}
	if sig == unix.SIGKILL {
		if frozen, _ := cg.Frozen(); frozen {
			_ = cg.Thaw()
		}
	}
	return nil
}

// Pause freezes the container.
func (c *Container) Pause(ctx context.Context) error {
	if s := c.b.status(c.st); s != compute.Running && s != compute.Created {
		return fmt.Errorf("cannot pause container %q in state %s: %w", c.st.ID, s, errdefs.ErrConflict)
	}
	return c.b.cgroupManager(c.st).Freeze()
}

// Resume thaws the container.
func (c *Container) Resume(ctx context.Context) error {
	if s := c.b.status(c.st); s != compute.Paused {
		return fmt.Errorf("cannot resume container %q in state %s: %w", c.st.ID, s, errdefs.ErrConflict)
	}
	return c.b.cgroupManager(c.st).Thaw()
}

// Pids lists the container's processes.
func (c *Container) Pids(ctx context.Context) ([]int, error) {
	return c.b.cgroupManager(c.st).Pids()
}

// Stats reads the container's cgroup counters.
func (c *Container) Stats(ctx context.Context) (*cgroups.Stats, error) {
	return c.b.cgroupManager(c.st).Stats()
}

// Update changes the resource limits and records them in the state.
func (c *Container) Update(ctx context.Context, r *specs.LinuxResources) error {
	if s := c.b.status(c.st); s == compute.Stopped {
		return fmt.Errorf("cannot update container %q: it is stopped: %w", c.st.ID, errdefs.ErrConflict)
	}
	if err := c.b.cgroupManager(c.st).Set(r); err != nil {
		return fmt.Errorf("update container %q: %w", c.st.ID, err)
	}
	spec, err := c.st.specOf()
	if err != nil {
		return err
	}
	mergeResources(spec, r)
	c.st.RawSpec = nil // encoded again from spec
	return c.b.saveState(c.st)
}

// Wait waits for init to exit when this Container is its parent.
func (c *Container) Wait(ctx context.Context) (int, error) {
	if c.child == nil {
		return -1, fmt.Errorf("wait for container %q: not a child of this process: %w", c.st.ID, errdefs.ErrNotImplemented)
	}
	return waitPid(c.child.pid)
}

// Delete removes the container. Without force only a stopped container
// can be deleted; with force its processes are killed first.
func (c *Container) Delete(ctx context.Context, force bool) error {
	status := c.b.status(c.st)
	if status != compute.Stopped {
		if !force {
			return fmt.Errorf("cannot delete container %q in state %s: %w", c.st.ID, status, errdefs.ErrConflict)
		}
		c.killAndWait()
	}
	cg := c.b.cgroupManager(c.st)
	// Processes that outlive init (no pid namespace) die with the container.
	if pids, _ := cg.Pids(); len(pids) > 0 {
		c.killAndWait()
	}
	trace("delete: cgroups")
	if err := cg.Destroy(); err != nil {
		return fmt.Errorf("delete container %q: %w", c.st.ID, err)
	}
	trace("delete: cgroups removed")
	c.runPoststop()
	if err := os.RemoveAll(c.b.dir(c.st.ID)); err != nil {
		return fmt.Errorf("delete container %q: remove state: %w", c.st.ID, err)
	}
	trace("delete: state removed")
	return nil
}

// killAndWait SIGKILLs every process of the container and waits (up to a
// second) until they are gone: for init through a pidfd, which wakes us
// the moment it exits, then for the rest of the cgroup with short sleeps
// that grow (a fixed 5 ms sleep made every forced delete of a running
// container take at least that long).
func (c *Container) killAndWait() {
	cg := c.b.cgroupManager(c.st)
	_ = c.signalAll(unix.SIGKILL)
	if c.st.initAlive() {
		_ = unix.Kill(c.st.Pid, unix.SIGKILL)
		waitInitExit(c.st, time.Second)
	}
	deadline := time.Now().Add(time.Second)
	resend := time.Now().Add(100 * time.Millisecond)
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 5*time.Millisecond) {
		pids, err := cg.Pids()
		if (err != nil || len(pids) == 0) && !c.st.initAlive() {
			return
		}
		now := time.Now()
		if now.After(deadline) {
			return
		}
		if now.After(resend) {
			// Processes forked while we were killing.
			_ = c.signalAll(unix.SIGKILL)
			resend = now.Add(100 * time.Millisecond)
		}
		time.Sleep(delay)
	}
}

// waitInitExit waits up to timeout for the container's init to exit. The
// pidfd is checked against the recorded start time after it is opened, so
// it cannot name a process that reused the pid.
func waitInitExit(st *containerState, timeout time.Duration) {
	fd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if !st.initAlive() {
		return
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(pfd, int(timeout.Milliseconds()))
		if err != unix.EINTR {
			return
		}
	}
}
