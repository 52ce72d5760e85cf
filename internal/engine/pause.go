package engine

import (
	"context"
	"fmt"
	"syscall"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Pause and unpause freeze and thaw a running container's processes
// through the runtime (`runsilo pause/resume`: the cgroup freezer), the
// way dockerd goes through containerd. The state is recorded "paused";
// State.Running stays true, as in Docker:
//
//	running ──pause──▶ paused ──unpause──▶ running
//	paused ──kill/stop/rm -f──▶ (SIGKILL, then thawed so it can die) exited
//
// A paused container refuses start and exec (409); silod's restart
// reconnects to it like to a running one.

// Pauser freezes and thaws containers. The engine's Monitors implements
// it when the runtime can (type-asserted, as ExecRunner).
type Pauser interface {
	// Pause freezes every process of the container.
	Pause(ctx context.Context, cfg MonitorConfig) error
	// Resume thaws them.
	Resume(ctx context.Context, cfg MonitorConfig) error
}

func (s *Service) pauser() (Pauser, error) {
	p, ok := s.cfg.Monitors.(Pauser)
	if !ok {
		return nil, fmt.Errorf("pause: the runtime does not support pause: %w", errdefs.ErrNotImplemented)
	}
	return p, nil
}

// Pause freezes a running container.
func (s *Service) Pause(ctx context.Context, ref string) error {
	p, err := s.pauser()
	if err != nil {
		return err
	}
	e, err := s.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	c := s.snapshot(e)
	switch c.State.Status {
	case container.StateRunning:
	case container.StatePaused:
		return fmt.Errorf("container %s is already paused: %w", c.ID[:12], errdefs.ErrConflict)
	default:
		return fmt.Errorf("container %s is not running: %w", c.ID[:12], errdefs.ErrConflict)
	}
	if err := p.Pause(ctx, s.monitorConfig(&c)); err != nil {
		return fmt.Errorf("pause container %s: %w", c.ID[:12], err)
	}
	if err := s.setState(e, func(c *Container) {
		if c.State.Status == container.StateRunning {
			c.State.Status = container.StatePaused
		}
	}); err != nil {
		_ = p.Resume(context.WithoutCancel(ctx), s.monitorConfig(&c))
		return fmt.Errorf("pause container %s: %w", c.ID[:12], err)
	}
	s.emitEntry(e, events.ActionPause, nil)
	return nil
}

// Unpause thaws a paused container.
func (s *Service) Unpause(ctx context.Context, ref string) error {
	p, err := s.pauser()
	if err != nil {
		return err
	}
	e, err := s.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	c := s.snapshot(e)
	if c.State.Status != container.StatePaused {
		return fmt.Errorf("container %s is not paused: %w", c.ID[:12], errdefs.ErrConflict)
	}
	if err := p.Resume(ctx, s.monitorConfig(&c)); err != nil {
		return fmt.Errorf("unpause container %s: %w", c.ID[:12], err)
	}
	if err := s.setState(e, func(c *Container) {
		if c.State.Status == container.StatePaused {
			c.State.Status = container.StateRunning
		}
	}); err != nil {
		return fmt.Errorf("unpause container %s: %w", c.ID[:12], err)
	}
	s.emitEntry(e, events.ActionUnPause, nil)
	return nil
}

// thawIfKilled thaws a paused container after SIGKILL: a frozen process
// does not act on it (cgroup v1 freezer) until thawed. Docker does the
// same. Other signals wait for unpause, as in Docker.
func (s *Service) thawIfKilled(ctx context.Context, e *entry, sig syscall.Signal) {
	if sig != syscall.SIGKILL {
		return
	}
	c := s.snapshot(e)
	if c.State.Status != container.StatePaused {
		return
	}
	p, err := s.pauser()
	if err != nil {
		return
	}
	if err := p.Resume(context.WithoutCancel(ctx), s.monitorConfig(&c)); err != nil {
		s.log.Warn("thaw killed container", "container", c.ID, "err", err)
	}
}
