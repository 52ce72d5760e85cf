package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Healthchecks, as Docker's: the image's HEALTHCHECK or --health-*
// settings (merged at create, so the container's Config holds the
// effective check) run as an exec in the container, through the engine's
// exec path, every interval while the container runs. A probe that exits
// 0 makes it healthy; Retries failures in a row after the start period
// make it unhealthy; a probe that outlives Timeout is killed and counts as
// a failure. Each change of status is a "health_status: …" event; the
// state shows in inspect (State.Health) and ps ("(healthy)").
//
//	(start) ──▶ starting ──exit 0──▶ healthy ◀──exit 0── unhealthy
//	               │                    │                    ▲
//	               └── Retries failures after StartPeriod ───┘
//
// Each probe's outcome is also stored in the container's record (Health):
// after silod restarts, a running container's check resumes from it, and a
// stopped container shows its last state.

// Docker's defaults.
const (
	defaultProbeInterval      = 30 * time.Second
	defaultProbeTimeout       = 30 * time.Second
	defaultProbeStartInterval = 5 * time.Second
	defaultProbeRetries       = 3
	maxHealthLog              = 5
	maxProbeOutput            = 4096
)

// healthMonitor is the running check of one container.
type healthMonitor struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	health container.Health
}

// healthTable holds the monitors by container id.
type healthTable struct {
	mu sync.Mutex
	m  map[string]*healthMonitor
}

// dockerConfigs is the image store's optional view of docker's config
// extension (HEALTHCHECK); *storage.Store has it.
type dockerConfigs interface {
	DockerConfig(ctx context.Context, ref string) (dockerspec.DockerOCIImage, error)
}

// mergeHealthcheck lays the container's healthcheck over the image's, as
// Docker does at create: no check of its own takes the image's; a check
// without a test takes the image's test; zero durations stay zero (the
// defaults apply when the check runs).
func (s *Service) mergeHealthcheck(ctx context.Context, cfg *container.Config, imageID string) error {
	dc, ok := s.cfg.Images.(dockerConfigs)
	if !ok {
		return nil
	}
	img, err := dc.DockerConfig(ctx, imageID)
	if err != nil {
		return fmt.Errorf("read the image's healthcheck: %w", err)
	}
	ih := img.Config.Healthcheck
	if ih == nil {
		return nil
	}
	if cfg.Healthcheck == nil {
		h := *ih
		cfg.Healthcheck = &h
		return nil
	}
	h := *cfg.Healthcheck
	if len(h.Test) == 0 {
		h.Test = ih.Test
	}
	if h.Interval == 0 {
		h.Interval = ih.Interval
	}
	if h.Timeout == 0 {
		h.Timeout = ih.Timeout
	}
	if h.StartPeriod == 0 {
		h.StartPeriod = ih.StartPeriod
	}
	if h.StartInterval == 0 {
		h.StartInterval = ih.StartInterval
	}
	if h.Retries == 0 {
		h.Retries = ih.Retries
	}
	cfg.Healthcheck = &h
	return nil
}

// probeArgs is the command a check runs; nil when there is no check.
func probeArgs(h *container.HealthConfig) ([]string, error) {
	if h == nil || len(h.Test) == 0 {
		return nil, nil
	}
	switch h.Test[0] {
	case "NONE":
		return nil, nil
	case "CMD":
		if len(h.Test) < 2 {
			return nil, fmt.Errorf("healthcheck CMD without a command: %w", errdefs.ErrInvalidArgument)
		}
		return h.Test[1:], nil
	case "CMD-SHELL":
		if len(h.Test) != 2 {
			return nil, fmt.Errorf("healthcheck CMD-SHELL takes one command string: %w", errdefs.ErrInvalidArgument)
		}
		return []string{"/bin/sh", "-c", h.Test[1]}, nil
	}
	return nil, fmt.Errorf("unknown healthcheck type %q (want NONE, CMD or CMD-SHELL): %w", h.Test[0], errdefs.ErrInvalidArgument)
}

// checkHealthConfig validates a container's healthcheck at create.
func checkHealthConfig(h *container.HealthConfig) error {
	if h == nil {
		return nil
	}
	if _, err := probeArgs(h); err != nil {
		return err
	}
	const min = time.Millisecond
	for name, d := range map[string]time.Duration{"interval": h.Interval, "timeout": h.Timeout, "start period": h.StartPeriod, "start interval": h.StartInterval} {
		if d != 0 && d < min {
			return fmt.Errorf("healthcheck %s %v: must be at least %v: %w", name, d, min, errdefs.ErrInvalidArgument)
		}
	}
	if h.Retries < 0 {
		return fmt.Errorf("healthcheck retries %d: cannot be negative: %w", h.Retries, errdefs.ErrInvalidArgument)
	}
	return nil
}

// startHealth starts the check of a container that now runs (after start
// or a reconnect on silod's start); it does nothing without a check.
func (s *Service) startHealth(e *entry) {
	c := s.snapshot(e)
	if c.Config == nil {
		return
	}
	args, err := probeArgs(c.Config.Healthcheck)
	if err != nil || args == nil {
		return
	}
	if _, ok := s.cfg.Monitors.(ExecRunner); !ok {
		s.log.Warn("healthcheck: the runtime has no exec", "container", c.ID)
		return
	}
	health := container.Health{Status: container.Starting, Log: []*container.HealthcheckResult{}}
	if c.Health != nil {
		// A reconnect after silod restarted: go on from the last probe.
		health = copyHealth(c.Health)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	hm := &healthMonitor{cancel: cancel, done: make(chan struct{}), health: health}
	t := &s.features.health
	t.mu.Lock()
	if t.m == nil {
		t.m = map[string]*healthMonitor{}
	}
	if old := t.m[c.ID]; old != nil {
		old.cancel()
	}
	t.m[c.ID] = hm
	t.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(hm.done)
		s.runHealth(ctx, e, hm, *c.Config.Healthcheck, args)
	}()
}

// stopHealth ends a container's check (its exit); the last state stays
// for inspect until the next start.
func (s *Service) stopHealth(id string) {
	t := &s.features.health
	t.mu.Lock()
	hm := t.m[id]
	t.mu.Unlock()
	if hm != nil {
		hm.cancel()
	}
}

// forgetHealth drops a removed container's state.
func (s *Service) forgetHealth(id string) {
	t := &s.features.health
	t.mu.Lock()
	hm := t.m[id]
	delete(t.m, id)
	t.mu.Unlock()
	if hm != nil {
		hm.cancel()
	}
}

// healthOf is a container's health for inspect: its check's, or the last
// one recorded (nil without a check).
func (s *Service) healthOf(c *Container) *container.Health {
	t := &s.features.health
	t.mu.Lock()
	hm := t.m[c.ID]
	t.mu.Unlock()
	if hm == nil {
		if c.Health == nil {
			return nil
		}
		h := copyHealth(c.Health)
		return &h
	}
	hm.mu.Lock()
	defer hm.mu.Unlock()
	h := copyHealth(&hm.health)
	return &h
}

// copyHealth copies h with its own log slice (the results are not changed
// once made).
func copyHealth(h *container.Health) container.Health {
	c := *h
	c.Log = append([]*container.HealthcheckResult{}, h.Log...)
	return c
}

// withHealth adds the health to a ps row: in Status, as Docker
// ("Up 3 minutes (healthy)"), and in Health.
func (s *Service) withHealth(sum container.Summary, c *Container) container.Summary {
	if !c.State.Running() {
		return sum
	}
	h := s.healthOf(c)
	if h == nil {
		return sum
	}
	sum.Health = &container.HealthSummary{Status: h.Status, FailingStreak: h.FailingStreak}
	if h.Status == container.Starting {
		sum.Status += " (health: starting)"
	} else {
		sum.Status += " (" + string(h.Status) + ")"
	}
	return sum
}

// runHealth probes until ctx ends.
func (s *Service) runHealth(ctx context.Context, e *entry, hm *healthMonitor, cfg container.HealthConfig, args []string) {
	interval, timeout, startInterval := cfg.Interval, cfg.Timeout, cfg.StartInterval
	if interval == 0 {
		interval = defaultProbeInterval
	}
	if timeout == 0 {
		timeout = defaultProbeTimeout
	}
	if startInterval == 0 {
		startInterval = defaultProbeStartInterval
	}
	retries := cfg.Retries
	if retries == 0 {
		retries = defaultProbeRetries
	}
	started := time.Now()
	inStart := func() bool { return time.Since(started) < cfg.StartPeriod }
	for {
		wait := interval
		if inStart() && cfg.StartInterval != 0 {
			wait = startInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		c := s.snapshot(e)
		if c.State.Status == container.StatePaused {
			continue // a frozen container cannot answer
		}
		if !c.State.Running() {
			return
		}
		res := s.probe(ctx, &c, args, timeout)
		if ctx.Err() != nil {
			return
		}
		hm.mu.Lock()
		old := hm.health.Status
		hm.health.Log = append(hm.health.Log, res)
		if len(hm.health.Log) > maxHealthLog {
			hm.health.Log = hm.health.Log[len(hm.health.Log)-maxHealthLog:]
		}
		if res.ExitCode == 0 {
			hm.health.Status, hm.health.FailingStreak = container.Healthy, 0
		} else if !(inStart() && old == container.Starting) {
			// Failures in the start period do not count while the
			// container has never been healthy.
			hm.health.FailingStreak++
			if hm.health.FailingStreak >= retries {
				hm.health.Status = container.Unhealthy
			}
		}
		now := hm.health.Status
		record := copyHealth(&hm.health)
		hm.mu.Unlock()
		// One commit per probe, as Docker writes its state on each: the
		// interval is seconds at least. A container removed meanwhile has
		// no record to update, and its check ends with the removal.
		if err := s.setState(e, func(c *Container) { c.Health = &record }); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			s.log.Warn("healthcheck: record the result", "container", c.ID, "err", err)
		}
		if now != old {
			s.emit(events.ActionHealthStatus+events.Action(": "+string(now)), &c, nil)
		}
	}
}

// probe runs the check once.
func (s *Service) probe(ctx context.Context, c *Container, args []string, timeout time.Duration) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now()}
	fail := func(code int, msg string) *container.HealthcheckResult {
		res.End, res.ExitCode, res.Output = time.Now(), code, msg
		return res
	}
	runner := s.cfg.Monitors.(ExecRunner)
	mc := s.monitorConfig(c)
	proc, err := execProcess(mc.Bundle, container.ExecCreateRequest{Cmd: args})
	if err != nil {
		return fail(-1, err.Error())
	}
	p, err := runner.RunExec(context.WithoutCancel(ctx), mc, ExecRun{Process: proc, Output: true})
	if err != nil {
		return fail(-1, err.Error())
	}
	out := &limitedBuffer{max: maxProbeOutput}
	var wg sync.WaitGroup
	for _, r := range []io.Reader{p.Stdout(), p.Stderr()} {
		if r == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(out, r)
		}()
	}
	exited := make(chan ExecExit, 1)
	go func() {
		wg.Wait()
		exited <- p.Wait()
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ex := <-exited:
		if !ex.Started {
			return fail(-1, ex.Message)
		}
		return fail(ex.Code, out.String())
	case <-t.C:
	case <-ctx.Done():
	}
	// Hung (or the daemon stops): kill the probe, as Docker does.
	if pid := p.Pid(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
	}
	return fail(-1, fmt.Sprintf("Health check exceeded timeout (%v)", timeout))
}

// limitedBuffer keeps the first max bytes written to it, safely from two
// writers.
type limitedBuffer struct {
	mu  sync.Mutex
	b   strings.Builder
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// prepareHealth merges the image's healthcheck into cfg and checks the
// result (create).
func (s *Service) prepareHealth(ctx context.Context, cfg *container.Config, imageID string) error {
	if err := s.mergeHealthcheck(ctx, cfg, imageID); err != nil {
		return err
	}
	return checkHealthConfig(cfg.Healthcheck)
}
