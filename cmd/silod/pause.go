package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/engine"
)

var _ engine.Pauser = (*monitors)(nil)

// Pause runs `runsilo pause ID`: the runtime freezes the container's
// cgroup and reports it paused from then on.
func (m *monitors) Pause(ctx context.Context, cfg engine.MonitorConfig) error {
	return m.runtimeCmd(ctx, "pause", cfg.ID)
}

// Resume runs `runsilo resume ID`.
func (m *monitors) Resume(ctx context.Context, cfg engine.MonitorConfig) error {
	return m.runtimeCmd(ctx, "resume", cfg.ID)
}

func (m *monitors) runtimeCmd(ctx context.Context, verb, id string) error {
	out, err := exec.CommandContext(ctx, m.runtime, "--root", m.runtimeRoot, verb, id).CombinedOutput()
	if err != nil {
		return fmt.Errorf("runtime %s %s: %s: %w", verb, id, strings.TrimSpace(string(out)), err)
	}
	return nil
}

var _ engine.Updater = (*monitors)(nil)

// Update runs `runsilo update -r - ID` with the resources on stdin.
func (m *monitors) Update(ctx context.Context, cfg engine.MonitorConfig, r *specs.LinuxResources) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("runtime update %s: %w", cfg.ID, err)
	}
	cmd := exec.CommandContext(ctx, m.runtime, "--root", m.runtimeRoot, "update", "-r", "-", cfg.ID)
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("runtime update %s: %s: %w", cfg.ID, strings.TrimSpace(string(out)), err)
	}
	return nil
}
