package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/engine/monitor"
	"github.com/silo-containers/silo/internal/errdefs"
)

var lookPath = exec.LookPath

// newMonitors wires the engine's Monitors seam to silo-monitor
// (internal/engine/monitor), found next to silod or on PATH.
func newMonitors(o options, log *slog.Logger) (engine.Monitors, error) {
	runtime, err := findBinary(o.runtime, "runsilo")
	if err != nil {
		return nil, err
	}
	bin, err := findBinary(o.monitor, "silo-monitor")
	if err != nil {
		return nil, err
	}
	log.Info("monitors", "runtime", runtime, "monitor", bin)
	return &monitors{binary: bin, runtime: runtime, runtimeRoot: filepath.Join(o.execRoot, "runtime")}, nil
}

// monitors adapts package monitor to engine.Monitors.
type monitors struct {
	binary, runtime, runtimeRoot string
}

var _ engine.Monitors = (*monitors)(nil)

func (m *monitors) config(cfg engine.MonitorConfig) *monitor.Config {
	return &monitor.Config{
		ID: cfg.ID, Bundle: cfg.Bundle, Runtime: m.runtime, RuntimeRoot: m.runtimeRoot,
		Dir: cfg.StateDir, LogDir: cfg.LogDir, LogDriver: cfg.LogDriver, LogOpts: cfg.LogOptions,
		Terminal: cfg.Terminal, Stdin: cfg.Stdin, HoldOutput: cfg.HoldOutput,
	}
}

// Launch spawns silo-monitor; it sets itself up and waits for Start.
func (m *monitors) Launch(ctx context.Context, cfg engine.MonitorConfig) (engine.PendingMonitor, error) {
	p, err := monitor.Spawn(ctx, m.binary, m.config(cfg))
	if err != nil {
		return nil, err
	}
	return &pendingMonitor{m: m, cfg: cfg, p: p}, nil
}

// pendingMonitor is engine.PendingMonitor over a monitor.Pending.
type pendingMonitor struct {
	m   *monitors
	cfg engine.MonitorConfig
	p   *monitor.Pending
}

func (p *pendingMonitor) Start(ctx context.Context, holdOutput bool) (engine.Monitor, error) {
	if err := p.p.Start(holdOutput); err != nil {
		return nil, err
	}
	return p.m.Open(ctx, p.cfg)
}

func (p *pendingMonitor) Abort() { p.p.Abort() }

// Open connects to the monitor of a running (or just exited) container.
func (m *monitors) Open(ctx context.Context, cfg engine.MonitorConfig) (engine.Monitor, error) {
	c := monitor.NewClient(cfg.StateDir)
	st, err := c.State(ctx)
	if err != nil {
		return nil, err
	}
	return &monitorConn{c: c, pid: st.Pid}, nil
}

// Exited reads the exit status the monitor recorded.
func (m *monitors) Exited(cfg engine.MonitorConfig) (engine.ExitStatus, error) {
	st, err := monitor.ReadExit(cfg.StateDir)
	if err != nil {
		return engine.ExitStatus{}, err
	}
	return exitStatus(st), nil
}

// Delete waits for a lingering monitor to finish deleting the container
// (it reports the exit first, see package monitor), lets it go and removes
// what it and the runtime left: normally the monitor deleted the container
// itself; a monitor that died (kill -9) may have left the runtime's state.
func (m *monitors) Delete(ctx context.Context, cfg engine.MonitorConfig) error {
	if _, err := monitor.NewClient(cfg.StateDir).WaitDeleted(ctx); err != nil && ctx.Err() != nil {
		return fmt.Errorf("delete container %s: %w", cfg.ID, ctx.Err())
	}
	if _, err := os.Stat(filepath.Join(m.runtimeRoot, cfg.ID)); err == nil {
		out, err := exec.CommandContext(ctx, m.runtime, "--root", m.runtimeRoot, "delete", "-f", cfg.ID).CombinedOutput()
		if err != nil {
			return fmt.Errorf("runtime delete %s: %s: %w", cfg.ID, strings.TrimSpace(string(out)), err)
		}
	}
	for _, n := range []string{monitor.ExitName, monitor.StateName} {
		if err := os.Remove(filepath.Join(cfg.StateDir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete monitor state of %s: %w", cfg.ID, err)
		}
	}
	return nil
}

// monitorConn is engine.Monitor over a monitor.Client.
type monitorConn struct {
	c   *monitor.Client
	pid int
}

func (m *monitorConn) Pid() int { return m.pid }

func (m *monitorConn) Signal(ctx context.Context, sig syscall.Signal) error {
	err := m.c.Signal(ctx, sig, false)
	if errdefs.IsNotFound(err) {
		// No monitor: the container is gone.
		return fmt.Errorf("%v: %w", err, errdefs.ErrConflict)
	}
	return err
}

// Wait returns the exit status and lets the monitor quit: the engine,
// its one waiter, has what it needs.
func (m *monitorConn) Wait(ctx context.Context) (engine.ExitStatus, error) {
	st, err := m.c.WaitRelease(ctx)
	if err != nil {
		return engine.ExitStatus{}, err
	}
	return exitStatus(st), nil
}

func (m *monitorConn) Attach(ctx context.Context, o engine.MonitorAttachOptions) (engine.Attachment, error) {
	a, err := m.c.Attach(ctx, monitor.AttachOptions{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, StdinOnce: o.StdinOnce})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (m *monitorConn) Resize(ctx context.Context, rows, cols uint16) error {
	return m.c.Resize(ctx, rows, cols)
}

func (m *monitorConn) Close() error { return nil }

func exitStatus(st *monitor.State) engine.ExitStatus {
	return engine.ExitStatus{Code: st.ExitCode, ExitedAt: st.Finished, OOMKilled: st.OOMKilled}
}
