package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

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
