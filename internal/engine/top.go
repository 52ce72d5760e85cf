package engine

import (
	"context"
	"fmt"
	"os/exec"
	"path"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/compute/process/cgroups"
	"github.com/silo-containers/silo/internal/errdefs"
)

// Top and stats read the container's cgroup on the host, the job object
// of the container: which processes it holds, what they use. The cgroup
// is the one the spec names (ocispec: CgroupParent/ID).

// cgroupOf returns the cgroup manager of a running (or paused) container.
func (s *Service) cgroupOf(ref string) (*entry, Container, cgroups.Manager, error) {
	e, err := s.lookup(ref)
	if err != nil {
		return nil, Container{}, nil, err
	}
	c := s.snapshot(e)
	if !c.State.Running() {
		return nil, c, nil, fmt.Errorf("container %s is not running: %w", c.ID[:12], errdefs.ErrConflict)
	}
	m, err := cgroups.New(path.Join("/", s.cfg.CgroupParent, c.ID), c.ID)
	if err != nil {
		return nil, c, nil, fmt.Errorf("cgroup of container %s: %w", c.ID[:12], err)
	}
	return e, c, m, nil
}

// Top lists the container's processes as `ps` shows them: ps runs on the
// host with psArgs (default -ef, as Docker) and only the rows of the
// container's pids are kept.
func (s *Service) Top(ctx context.Context, ref, psArgs string) (container.TopResponse, error) {
	_, c, m, err := s.cgroupOf(ref)
	if err != nil {
		return container.TopResponse{}, err
	}
	pids, err := m.Pids()
	if err != nil {
		return container.TopResponse{}, fmt.Errorf("top %s: %w", c.ID[:12], err)
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	out, err := exec.CommandContext(ctx, "ps", strings.Fields(psArgs)...).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return container.TopResponse{}, fmt.Errorf("top %s: ps %s: %s: %w", c.ID[:12], psArgs, msg, errdefs.ErrInvalidArgument)
	}
	return filterPS(out, pids)
}

// filterPS keeps the header and the rows of ps output whose PID column
// is one of pids.
func filterPS(out []byte, pids []int) (container.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return container.TopResponse{}, fmt.Errorf("ps printed nothing: %w", errdefs.ErrInvalidArgument)
	}
	titles := strings.Fields(lines[0])
	pidCol := -1
	for i, t := range titles {
		if t == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return container.TopResponse{}, fmt.Errorf("couldn't find PID field in ps output: %w", errdefs.ErrInvalidArgument)
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	resp := container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, l := range lines[1:] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		fields := strings.Fields(l)
		if len(fields) <= pidCol {
			continue
		}
		pid, err := strconv.Atoi(fields[pidCol])
		if err != nil || !want[pid] {
			continue
		}
		// The last column (the command) keeps its spaces.
		row := fields
		if len(fields) >= len(titles) {
			row = append(append([]string{}, fields[:len(titles)-1]...), strings.Join(fields[len(titles)-1:], " "))
		}
		resp.Processes = append(resp.Processes, row)
	}
	return resp, nil
}
