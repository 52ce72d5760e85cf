package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Restart policies, as Docker's: when a container's process exits (the
// watcher learns it from the monitor), exited asks shouldRestart; a
// container to restart is recorded "restarting" and a timer starts it
// again after the backoff delay: 100 ms, doubled at every restart, at most
// a minute, back to 100 ms once a run lasted 10 s. No loop polls: the exit
// and the timer are the only events.
//
// Stop and rm -f set ManuallyStopped before they signal, so the exit they
// cause restarts nothing; a user's Start clears it and RestartCount. On
// silod's start (restore), a container recorded running whose process is
// gone goes through exited like any exit, and one recorded restarting is
// scheduled again; an unless-stopped container stopped by the user stays
// stopped, an always one is started again (Docker does the same).

const (
	restartMinDelay   = 100 * time.Millisecond
	restartMaxDelay   = time.Minute
	restartResetAfter = 10 * time.Second
)

// restartState is an entry's pending restart; guarded by Service.mu.
type restartState struct {
	timer *time.Timer
	// gen is bumped by every schedule and cancel: a timer that fires
	// with an older generation does nothing.
	gen int
	// delay is the last backoff delay (0: none since the reset).
	delay time.Duration
}

// checkRestartPolicy validates HostConfig.RestartPolicy at create.
func checkRestartPolicy(host *container.HostConfig) error {
	p := host.RestartPolicy
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("create container: "+format+": %w", append(args, errdefs.ErrInvalidArgument)...)
	}
	switch p.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if p.MaximumRetryCount != 0 {
			return invalid("invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case container.RestartPolicyOnFailure:
		if p.MaximumRetryCount < 0 {
			return invalid("invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return invalid("invalid restart policy: unknown policy %q; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", p.Name)
	}
	if host.AutoRemove && hasRestartPolicy(host) {
		return invalid("can't create 'AutoRemove' container with restart policy")
	}
	return nil
}

func hasRestartPolicy(host *container.HostConfig) bool {
	return host != nil && host.RestartPolicy.Name != "" && host.RestartPolicy.Name != container.RestartPolicyDisabled
}

// shouldRestart says whether c's policy restarts it after an exit with
// code. c.RestartCount counts the restarts already made.
func shouldRestart(c *Container, code int) bool {
	if c.ManuallyStopped || c.HostConfig == nil || c.HostConfig.AutoRemove {
		return false
	}
	p := c.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return true
	case container.RestartPolicyOnFailure:
		return code != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// nextRestartDelay is Docker's backoff: ran is how long the last run
// lasted.
func nextRestartDelay(prev, ran time.Duration) time.Duration {
	if ran >= restartResetAfter || prev == 0 {
		return restartMinDelay
	}
	return min(2*prev, restartMaxDelay)
}

// scheduleRestart starts e again after the backoff delay. e is recorded
// restarting.
func (s *Service) scheduleRestart(e *entry, ran time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return // the daemon is stopping: the next one restarts it
	}
	s.stopRestartTimerLocked(e)
	if ran >= restartResetAfter {
		e.restart.delay = 0
	}
	e.restart.delay = nextRestartDelay(e.restart.delay, ran)
	e.restart.gen++
	gen := e.restart.gen
	s.wg.Add(1)
	e.restart.timer = time.AfterFunc(e.restart.delay, func() {
		defer s.wg.Done()
		s.restartNow(e, gen)
	})
}

// stopRestartTimerLocked cancels e's pending restart timer, if any.
// Preconditions: s.mu held.
func (s *Service) stopRestartTimerLocked(e *entry) {
	e.restart.gen++
	if e.restart.timer != nil && e.restart.timer.Stop() {
		s.wg.Done() // the callback will not run
	}
	e.restart.timer = nil
}

// cancelRestart drops e's pending restart; a container recorded
// restarting becomes exited. Preconditions: e.op held.
func (s *Service) cancelRestart(e *entry) {
	s.mu.Lock()
	s.stopRestartTimerLocked(e)
	restarting := e.c.State.Status == container.StateRestarting
	s.mu.Unlock()
	if restarting {
		if err := s.setState(e, func(c *Container) { c.State.Status = container.StateExited }); err != nil {
			s.log.Error("cancel restart", "container", e.c.ID, "err", err)
		}
	}
}

// restartNow is the restart timer's callback.
func (s *Service) restartNow(e *entry, gen int) {
	e.op.Lock()
	defer e.op.Unlock()
	s.mu.Lock()
	_, present := s.ctrs[e.c.ID]
	current := gen == e.restart.gen
	if current {
		e.restart.timer = nil
	}
	c := *e.c
	s.mu.Unlock()
	if !present || !current || s.ctx.Err() != nil || c.State.Status != container.StateRestarting {
		return
	}
	if c.ManuallyStopped {
		s.cancelRestart(e)
		return
	}
	ctx := context.WithoutCancel(s.ctx)
	if err := s.start(ctx, e, true); err != nil {
		s.log.Error("restart by policy", "container", c.ID, "err", err)
		s.cancelRestart(e)
		return
	}
	s.log.Info("restarted by policy", "container", c.ID, "policy", c.HostConfig.RestartPolicy.Name, "count", c.RestartCount+1)
}

// restoreRestart applies the restart policy to a container that was not
// running when silod started: one recorded restarting is restarted, and an
// exited always one (Docker restarts those on the daemon's start, even
// when they were stopped by the user).
func (s *Service) restoreRestart(e *entry) {
	c := s.snapshot(e)
	if c.HostConfig == nil {
		return
	}
	switch {
	case c.State.Status == container.StateRestarting:
	case c.State.Status == container.StateExited && c.HostConfig.RestartPolicy.Name == container.RestartPolicyAlways && !c.HostConfig.AutoRemove:
		if err := s.setState(e, func(c *Container) {
			c.State.Status, c.ManuallyStopped = container.StateRestarting, false
		}); err != nil {
			s.log.Error("restart on daemon start", "container", c.ID, "err", err)
			return
		}
	default:
		return
	}
	s.scheduleRestart(e, 0)
}

// suppressRestart records that the user stopped e (stop, rm -f): its next
// exit restarts nothing, and a pending restart is dropped.
// Preconditions: e.op held.
func (s *Service) suppressRestart(e *entry) error {
	if err := s.setState(e, func(c *Container) { c.ManuallyStopped = true }); err != nil {
		return err
	}
	s.cancelRestart(e)
	return nil
}
