package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/silo-containers/silo/internal/engine/logs"
	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/sandbox"
)

// Start runs a created or exited container through a new monitor.
func (s *Service) Start(ctx context.Context, ref string) error {
	e, err := s.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	return s.start(ctx, e, false)
}

// start runs e through a new monitor: for the user (which resets the
// restart policy's count and backoff), or byPolicy (restart.go).
// Preconditions: e.op held.
func (s *Service) start(ctx context.Context, e *entry, byPolicy bool) error {
	if !byPolicy {
		s.mu.Lock()
		s.stopRestartTimerLocked(e)
		e.restart.delay = 0
		s.mu.Unlock()
	}
	c := s.snapshot(e)
	fail := func(err error) error { return fmt.Errorf("start container %s: %w", c.ID[:12], err) }
	switch c.State.Status {
	case container.StateRunning:
		return fail(fmt.Errorf("container already started: %w", ErrNotModified))
	case container.StateRemoving:
		return fail(fmt.Errorf("container is being removed: %w", errdefs.ErrConflict))
	case container.StatePaused:
		return fail(fmt.Errorf("cannot start a paused container, try unpause instead: %w", errdefs.ErrConflict))
	}
	if _, _, _, err := sandbox.OpenMounted(ctx, s.sandboxDir(c.ID)); err != nil {
		return fail(err)
	}
	mcfg := s.monitorConfig(&c)
	// What an earlier run left (exit.json, runtime state) goes first.
	if err := s.cfg.Monitors.Delete(ctx, mcfg); err != nil {
		return fail(err)
	}
	// The monitor sets itself up (a process start, its log and control
	// socket) while the network connects. (Launching it at create, ahead,
	// measured slower: on two cores its start-up competes with the
	// create's own work.)
	pm, err := s.cfg.Monitors.Launch(ctx, mcfg)
	if err != nil {
		return fail(err)
	}
	netst, err := s.connectNetworks(ctx, &c)
	if err != nil {
		pm.Abort()
		return fail(err)
	}
	pending := s.takePending(e)
	mon, err := pm.Start(ctx, len(pending) > 0)
	if err != nil {
		if derr := s.disconnectNetworks(context.WithoutCancel(ctx), &c); derr != nil {
			s.log.Error("clean up networks", "container", c.ID, "err", derr)
		}
		failPending(pending)
		code := startErrorCode(err)
		_ = s.setState(e, func(c *Container) {
			c.State.Error, c.State.ExitCode = err.Error(), code
		})
		if code == 126 || code == 127 {
			err = fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		return fail(err)
	}
	err = s.setState(e, func(c *Container) {
		c.State = State{Status: container.StateRunning, Pid: mon.Pid(), StartedAt: time.Now().UTC()}
		c.Net = netst
		c.Health = nil // a new start's check begins at "starting"
		if byPolicy {
			c.RestartCount++
		} else {
			c.RestartCount, c.ManuallyStopped = 0, false
		}
	})
	if err != nil {
		// The container runs but is not recorded as running: stop it
		// rather than lose track of it.
		_ = mon.Signal(context.WithoutCancel(ctx), syscall.SIGKILL)
		mon.Close()
		failPending(pending)
		return fail(err)
	}
	// Before the watcher: once it has the exit it lets the monitor go,
	// and the held output with it.
	connectPending(mon, pending)
	s.watch(e, mon)
	s.emitEntry(e, events.ActionStart, nil) // events.go
	return nil
}

// startErrorCode is the exit code docker gives a process that could not be
// started: 127 when the command is missing, 126 when it cannot run.
func startErrorCode(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "exec format error"), strings.Contains(msg, "is a directory"):
		return 126
	}
	return 128
}

// watch follows a running container until its process exits.
func (s *Service) watch(e *entry, mon Monitor) {
	s.mu.Lock()
	e.mon = mon
	s.mu.Unlock()
	s.startHealth(e) // health.go
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		st, err := mon.Wait(s.ctx)
		if s.ctx.Err() != nil {
			return // the daemon is stopping; the next one reconnects
		}
		if err != nil {
			// The connection broke: the monitor died (or was killed).
			// What it recorded, if anything, says how the container ended.
			var xerr error
			c := s.snapshot(e)
			st, xerr = s.cfg.Monitors.Exited(s.monitorConfig(&c))
			if xerr != nil {
				st = ExitStatus{Code: 255, ExitedAt: time.Now(), Error: fmt.Sprintf("monitor lost: %v", err)}
			}
		}
		s.exited(e, st)
	}()
}

// exited records an exit: the sandbox is unmounted, the record updated,
// waiters woken, and an AutoRemove container removed.
func (s *Service) exited(e *entry, st ExitStatus) {
	ctx := context.WithoutCancel(s.ctx)
	s.mu.Lock()
	c := *e.c
	if e.mon != nil {
		e.mon.Close()
		e.mon = nil
	}
	s.mu.Unlock()
	s.stopHealth(c.ID) // health.go
	autoRemove := c.HostConfig != nil && c.HostConfig.AutoRemove
	// Followers stop at the closed marker; a monitor that died without
	// writing it must not leave them waiting forever.
	marker := filepath.Join(s.logDir(c.ID), logs.ClosedName)
	if _, err := os.Stat(marker); errors.Is(err, os.ErrNotExist) {
		_ = os.WriteFile(marker, nil, 0o640)
	}
	// An AutoRemove container's sandbox is unmounted by its removal, right
	// after; unmounting it here too would only delay the waiters.
	if !autoRemove {
		if sb, err := sandbox.Open(s.sandboxDir(c.ID)); err == nil {
			if err := sb.Unmount(ctx); err != nil {
				s.log.Warn("unmount sandbox after exit", "container", c.ID, "err", err)
			}
		}
	}
	// Addresses and published ports are freed at exit, as docker does;
	// a restart (by policy or by hand) attaches anew. An AutoRemove
	// container's removal, right after, frees them alongside its other
	// steps.
	if !autoRemove {
		if err := s.disconnectNetworks(ctx, &c); err != nil {
			s.log.Warn("disconnect networks after exit", "container", c.ID, "err", err)
		}
	}
	if st.ExitedAt.IsZero() {
		st.ExitedAt = time.Now()
	}
	restart := false
	record := func(c *Container) {
		c.State.Status = container.StateExited
		c.State.Pid = 0
		c.State.ExitCode = st.Code
		c.State.OOMKilled = st.OOMKilled
		c.State.Error = st.Error
		c.State.FinishedAt = st.ExitedAt.UTC()
		if c.Net != nil {
			c.Net = &NetState{NetnsPath: c.Net.NetnsPath}
		}
		if restart = shouldRestart(c, st.Code); restart {
			c.State.Status = container.StateRestarting
		}
	}
	var err error
	if autoRemove {
		// Removed right after: a restart in between finds the exit in the
		// monitor's exit.json and removes the container (restore.go).
		s.setStateUnrecorded(e, record)
	} else {
		err = s.setState(e, record)
	}
	if err != nil {
		restart = false
		s.log.Error("record exit", "container", c.ID, "err", err)
	}
	s.emitEntry(e, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(st.Code)}) // events.go
	s.mu.Lock()
	close(e.exitCh)
	e.exitCh = make(chan struct{})
	s.mu.Unlock()
	if restart {
		s.scheduleRestart(e, st.ExitedAt.Sub(c.State.StartedAt))
	}
	if autoRemove {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			// Let followers (`silo run` printing the output) read the
			// last entries before the log goes away: they end at the
			// closed marker, so this is short unless a client stalls.
			t := time.NewTimer(5 * time.Second)
			select {
			case <-s.followersGone(e):
			case <-t.C:
			case <-s.ctx.Done():
			}
			t.Stop()
			if err := s.Remove(ctx, c.ID, RemoveOptions{RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
				s.log.Error("auto-remove", "container", c.ID, "err", err)
			}
		}()
	}
}

// Kill sends a signal (default SIGKILL) to a running container.
func (s *Service) Kill(ctx context.Context, ref, signal string) error {
	e, err := s.lookup(ref)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = ParseSignal(signal); err != nil {
			return err
		}
	}
	return s.signal(ctx, e, sig)
}

func (s *Service) signal(ctx context.Context, e *entry, sig syscall.Signal) error {
	s.mu.Lock()
	mon, id := e.mon, e.c.ID
	running := e.c.State.Running()
	s.mu.Unlock()
	if !running || mon == nil {
		return fmt.Errorf("cannot kill container %s: container is not running: %w", id[:12], errdefs.ErrConflict)
	}
	if err := mon.Signal(ctx, sig); err != nil {
		return fmt.Errorf("kill container %s with signal %d: %w", id[:12], sig, err)
	}
	s.emitEntry(e, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))}) // events.go
	s.thawIfKilled(ctx, e, sig)                                                            // pause.go
	return nil
}

// Stop sends the container's stop signal, waits timeout (nil: the
// container's StopTimeout or 10 s; negative: forever) for it to exit, then
// kills it.
func (s *Service) Stop(ctx context.Context, ref string, signal string, timeout *int) (err error) {
	e, err := s.lookup(ref)
	if err != nil {
		return err
	}
	defer func() {
		if err == nil {
			s.emitEntry(e, events.ActionStop, nil) // events.go
		}
	}()
	e.op.Lock()
	defer e.op.Unlock()
	c := s.snapshot(e)
	if c.State.Status == container.StateRestarting {
		return s.suppressRestart(e)
	}
	if !c.State.Running() {
		return fmt.Errorf("stop container %s: %w", c.ID[:12], ErrNotModified)
	}
	if err := s.suppressRestart(e); err != nil {
		return fmt.Errorf("stop container %s: %w", c.ID[:12], err)
	}
	defer s.cancelRestart(e) // an exit just before the flag was set
	if signal == "" && c.Config != nil {
		signal = c.Config.StopSignal
	}
	sig := syscall.SIGTERM
	if signal != "" {
		if sig, err = ParseSignal(signal); err != nil {
			return err
		}
	}
	wait := 10
	if timeout != nil {
		wait = *timeout
	} else if c.Config != nil && c.Config.StopTimeout != nil {
		wait = *c.Config.StopTimeout
	}
	exit := s.exitChan(e)
	// A conflict while the record still says running means the monitor
	// reported the exit and the watcher is recording it: wait for that.
	waitExit := func() error {
		select {
		case <-exit:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("stop container %s: %w", c.ID[:12], ctx.Err())
		}
	}
	if err := s.signal(ctx, e, sig); err != nil {
		if !s.snapshot(e).State.Running() {
			return nil // exited meanwhile
		}
		if errdefs.IsConflict(err) {
			return waitExit()
		}
		return err
	}
	if wait != 0 {
		var timer <-chan time.Time
		if wait > 0 {
			t := time.NewTimer(time.Duration(wait) * time.Second)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-exit:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("stop container %s: %w", c.ID[:12], ctx.Err())
		case <-timer:
		}
	}
	if err := s.signal(ctx, e, syscall.SIGKILL); err != nil && !errdefs.IsConflict(err) && s.snapshot(e).State.Running() {
		return err
	}
	return waitExit()
}

func (s *Service) exitChan(e *entry) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return e.exitCh
}

// Wait blocks until the container reaches condition and returns its exit
// code: not-running (returns at once unless it runs), next-exit, removed.
func (s *Service) Wait(ctx context.Context, ref string, condition container.WaitCondition) (int, error) {
	s.mu.Lock()
	e, err := s.lookupLocked(ref)
	if err != nil {
		s.mu.Unlock()
		return 0, err
	}
	exit, removed, running, code := e.exitCh, e.removedCh, e.c.State.Running(), e.c.State.ExitCode
	s.mu.Unlock()
	switch condition {
	case "", container.WaitConditionNotRunning:
		if !running {
			return code, nil
		}
		fallthrough
	case container.WaitConditionNextExit:
		select {
		case <-exit:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	case container.WaitConditionRemoved:
		select {
		case <-removed:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	default:
		return 0, fmt.Errorf("invalid wait condition %q: %w", condition, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return e.c.State.ExitCode, nil
}

// RemoveOptions tune Remove.
type RemoveOptions struct {
	// Force kills a running container first.
	Force bool
	// RemoveVolumes removes the container's anonymous volumes (rm -v).
	RemoveVolumes bool
}

// Remove deletes a container: its sandbox (unmounted first), bundle, logs
// and record. A running container needs Force.
func (s *Service) Remove(ctx context.Context, ref string, opts RemoveOptions) error {
	e, err := s.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	s.mu.Lock()
	_, present := s.ctrs[e.c.ID]
	c := *e.c
	s.mu.Unlock()
	if !present {
		return fmt.Errorf("no such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	fail := func(err error) error { return fmt.Errorf("remove container %s: %w", c.ID[:12], err) }
	if c.State.Status == container.StateRestarting {
		if !opts.Force {
			return fail(fmt.Errorf("container is restarting: stop the container before removing or force remove: %w", errdefs.ErrConflict))
		}
		if err := s.suppressRestart(e); err != nil {
			return fail(err)
		}
	}
	if c.State.Running() {
		if !opts.Force {
			return fail(fmt.Errorf("container is running: stop the container before removing or force remove: %w", errdefs.ErrConflict))
		}
		if err := s.suppressRestart(e); err != nil {
			return fail(err)
		}
		defer s.cancelRestart(e)
		exit := s.exitChan(e)
		// A conflict means the monitor saw the exit already and the
		// watcher has yet to record it: wait for that.
		if err := s.signal(ctx, e, syscall.SIGKILL); err != nil && !errdefs.IsConflict(err) && s.snapshot(e).State.Running() {
			return fail(err)
		}
		select {
		case <-exit:
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(30 * time.Second):
			return fail(fmt.Errorf("container did not exit after SIGKILL: %w", errdefs.ErrConflict))
		}
	}
	failPending(s.takePending(e))
	// The removal is recorded, so that restore finishes one that a crash
	// cut short. An AutoRemove container needs no record (restore removes
	// every AutoRemove container that is not running, as docker does):
	// that spares `run --rm` a database commit.
	removing := func(c *Container) { c.State.Status = container.StateRemoving }
	if c.HostConfig != nil && c.HostConfig.AutoRemove {
		s.setStateUnrecorded(e, removing)
	} else if err := s.setState(e, removing); err != nil {
		return fail(err)
	}
	if err := s.removeFiles(ctx, &c); err != nil {
		return fail(err)
	}
	if err := s.db.delete(c.ID); err != nil {
		return fail(err)
	}
	s.mu.Lock()
	delete(s.ctrs, c.ID)
	close(e.removedCh)
	s.mu.Unlock()
	s.releaseMounts(ctx, c.ID, opts.RemoveVolumes) // mounts.go
	s.forgetHealth(c.ID)                           // health.go
	s.emit(events.ActionDestroy, &c, nil)          // events.go
	return nil
}

// removeFiles deletes what a container holds on disk, in the image store
// and in the network service. Every step accepts that an earlier, crashed
// removal did part of it. The steps overlap where they can, and what the
// caller need not wait for goes to the background, since `run --rm` waits
// for the removal:
//   - the network namespace and endpoints go in a goroutine of their own;
//   - the container directory is renamed into the trash, where it is
//     unmounted and deleted in the background (restore empties the trash
//     of a daemon that stopped before it was done);
//   - the image hold goes next. The overlay in the trash may use the
//     image's layers a moment longer; should the image be deleted
//     meanwhile, nothing runs in that overlay any more, and what is
//     unlinked under it stays readable until the unmount;
//   - the runtime's leftovers (cgroups, state) are deleted by the monitor
//     right after it reported the exit. For a container with a pid
//     namespace of its own (none of its processes outlives its init) the
//     removal does not wait for that: the background waits, then deletes
//     the monitor's directory (restore sweeps runtime state and monitor
//     directories without a container). One that shares a pid namespace
//     may have left processes that hold the sandbox: its runtime leftovers
//     go first. The engine's cgroup parent stays until Close: removing it
//     when it empties raced with the next container's runtime creating
//     its cgroup under it (ENODEV on the parent's cpuset).
func (s *Service) removeFiles(ctx context.Context, c *Container) error {
	ownPidNS := c.HostConfig == nil || c.HostConfig.PidMode == ""
	if !ownPidNS {
		if err := s.cfg.Monitors.Delete(ctx, s.monitorConfig(c)); err != nil {
			return err
		}
	}
	// The network namespace and endpoints go meanwhile: nothing below
	// depends on them.
	netDone := make(chan error, 1)
	go func() { netDone <- s.disconnectNetworks(ctx, c) }()
	err := s.trashCtrDir(ctx, c.ID)
	if err == nil {
		s.refillSpares(c.SandboxSize) // spares.go
		if rerr := s.cfg.Images.Release(ctx, c.ID); rerr != nil {
			s.log.Warn("release image", "container", c.ID, "err", rerr)
		}
	}
	if err := errors.Join(err, <-netDone); err != nil {
		return err
	}
	// The rest goes in the background: the monitor's own delete through
	// the runtime (a runtime start-up, cgroups, runtime state), then the
	// monitor's directory. Nothing of the
	// container runs any more (see above), and nothing else is named
	// after it; restore finishes what a stop cut short.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		bg := context.WithoutCancel(ctx)
		if ownPidNS {
			if err := s.cfg.Monitors.Delete(bg, s.monitorConfig(c)); err != nil {
				s.log.Warn("delete container through the runtime", "container", c.ID, "err", err)
			}
		}
		if err := os.RemoveAll(s.stateDir(c.ID)); err != nil {
			s.log.Warn("remove monitor directory", "container", c.ID, "err", err)
		}
	}()
	return nil
}

// trashCtrDir moves the container's directory into the trash, where it
// is unmounted and deleted in the background: a rename carries the mounts
// below the directory along, so neither the unmount (an ext4 file system
// to close, a loop device to detach) nor the deletion is on the caller's
// path. Where the rename fails it unmounts and deletes the directory in
// place.
func (s *Service) trashCtrDir(ctx context.Context, id string) error {
	dir := s.ctrDir(id)
	trashed := filepath.Join(s.trashDir(), id)
	if err := os.Rename(dir, trashed); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // an earlier removal got this far
		}
		s.log.Warn("move container directory to the trash", "container", id, "err", err)
		return s.deleteCtrDir(ctx, dir)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.deleteCtrDir(context.WithoutCancel(ctx), trashed); err != nil {
			s.log.Warn("empty the trash", "container", id, "err", err)
		}
	}()
	return nil
}

// deleteCtrDir deletes a container directory: its sandbox through the
// sandbox package (which unmounts it first and refuses while anything is
// still mounted), then the rest.
func (s *Service) deleteCtrDir(ctx context.Context, dir string) error {
	sb, err := sandbox.Open(filepath.Join(dir, "sandbox"))
	switch {
	case err == nil:
		if err := sb.Remove(ctx); err != nil {
			return err
		}
	case !errdefs.IsNotFound(err):
		return err
	}
	return os.RemoveAll(dir)
}

// emptyTrash deletes what a daemon that stopped left in the trash.
func (s *Service) emptyTrash(ctx context.Context) {
	ents, err := os.ReadDir(s.trashDir())
	if err != nil {
		s.log.Warn("list the trash", "err", err)
		return
	}
	for _, d := range ents {
		if err := s.deleteCtrDir(ctx, filepath.Join(s.trashDir(), d.Name())); err != nil {
			s.log.Error("empty the trash", "dir", d.Name(), "err", err)
		}
	}
}
