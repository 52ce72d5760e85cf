package engine

import (
	"context"
	"fmt"
	"iter"
	"regexp"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/engine/logs"
	"github.com/silo-containers/silo/internal/errdefs"
)

// Filters are docker's list filters: each key with the values it accepts
// (a container passes a key when it matches any of its values).
type Filters map[string][]string

// ListOptions select containers, as `docker ps` does.
type ListOptions struct {
	// All includes containers that are not running.
	All bool
	// Limit returns at most this many (newest first); 0 means no limit.
	Limit int
	// Filters: status, name, id, label, exited.
	Filters Filters
	// Size fills SizeRw, the space the container's writable layer takes,
	// and SizeRootFs, that and its image's (docker ps -s).
	Size bool
}

// List returns containers, newest first.
func (s *Service) List(ctx context.Context, opts ListOptions) ([]container.Summary, error) {
	rest, featureMatch, err := s.featureFilters(opts.Filters) // features.go: volume, health
	if err != nil {
		return nil, err
	}
	match, err := compileFilters(rest)
	if err != nil {
		return nil, err
	}
	out := []container.Summary{}
	imageSizes := map[string]int64{} // containers share images: one lookup each
	for _, e := range s.sortedEntries() {
		c := s.snapshot(e)
		// A status filter asks for non-running containers itself.
		if !opts.All && !c.State.Running() && len(opts.Filters["status"]) == 0 {
			continue
		}
		if !match(&c) || !featureMatch(&c) {
			continue
		}
		sum := summary(&c)
		if opts.Size {
			sum.SizeRw = allocatedBytes(s.sandboxDir(c.ID)) // ops.go
			size, ok := imageSizes[c.ImageID]
			if !ok {
				if img, err := s.cfg.Images.Image(ctx, c.ImageID); err == nil {
					size = img.Size
				}
				imageSizes[c.ImageID] = size
			}
			sum.SizeRootFs = sum.SizeRw + size
		}
		out = append(out, s.decorateSummary(sum, &c)) // features.go
		if opts.Limit > 0 && len(out) == opts.Limit {
			break
		}
	}
	return out, nil
}

// compileFilters checks the filters and returns the predicate.
func compileFilters(f Filters) (func(*Container) bool, error) {
	var preds []func(*Container) bool
	for key, vals := range f {
		if len(vals) == 0 {
			continue
		}
		switch key {
		case "status":
			for _, v := range vals {
				if container.ValidateContainerState(container.ContainerState(v)) != nil {
					return nil, fmt.Errorf("invalid filter 'status=%s': %w", v, errdefs.ErrInvalidArgument)
				}
			}
			preds = append(preds, func(c *Container) bool { return anyOf(vals, string(c.State.Status)) })
		case "name":
			res := make([]*regexp.Regexp, 0, len(vals))
			for _, v := range vals {
				re, err := regexp.Compile(v)
				if err != nil {
					return nil, fmt.Errorf("invalid filter 'name=%s': %v: %w", v, err, errdefs.ErrInvalidArgument)
				}
				res = append(res, re)
			}
			preds = append(preds, func(c *Container) bool {
				for _, re := range res {
					if re.MatchString("/" + c.Name) {
						return true
					}
				}
				return false
			})
		case "id":
			preds = append(preds, func(c *Container) bool {
				for _, v := range vals {
					if strings.HasPrefix(c.ID, v) {
						return true
					}
				}
				return false
			})
		case "label":
			// Every label filter must hold (docker: labels are ANDed).
			preds = append(preds, func(c *Container) bool {
				var labels map[string]string
				if c.Config != nil {
					labels = c.Config.Labels
				}
				return labelsMatch(labels, vals) // imagefilter.go
			})
		case "exited":
			codes := make([]int, 0, len(vals))
			for _, v := range vals {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("invalid filter 'exited=%s': %w", v, errdefs.ErrInvalidArgument)
				}
				codes = append(codes, n)
			}
			preds = append(preds, func(c *Container) bool {
				if c.State.Status != container.StateExited {
					return false
				}
				for _, n := range codes {
					if c.State.ExitCode == n {
						return true
					}
				}
				return false
			})
		case "ancestor":
			preds = append(preds, func(c *Container) bool {
				for _, v := range vals {
					if c.Image == v || strings.HasPrefix(strings.TrimPrefix(c.ImageID, "sha256:"), strings.TrimPrefix(v, "sha256:")) {
						return true
					}
				}
				return false
			})
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", key, errdefs.ErrInvalidArgument)
		}
	}
	return func(c *Container) bool {
		for _, p := range preds {
			if !p(c) {
				return false
			}
		}
		return true
	}, nil
}

func anyOf(vals []string, s string) bool {
	for _, v := range vals {
		if v == s {
			return true
		}
	}
	return false
}

// summary is a container as `docker ps` lists it.
func summary(c *Container) container.Summary {
	sum := container.Summary{
		ID:              c.ID,
		Names:           []string{"/" + c.Name},
		Image:           c.Image,
		ImageID:         c.ImageID,
		Command:         strings.Join(append([]string{c.Path}, c.Args...), " "),
		Created:         c.Created.Unix(),
		Ports:           []container.PortSummary{},
		Labels:          map[string]string{},
		State:           c.State.Status,
		Status:          statusString(&c.State),
		Mounts:          []container.MountPoint{},
		NetworkSettings: &container.NetworkSettingsSummary{},
	}
	if c.Config != nil && c.Config.Labels != nil {
		sum.Labels = c.Config.Labels
	}
	if c.HostConfig != nil {
		sum.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
		sum.Ports = portSummaries(c)
		sum.NetworkSettings.Networks = netSettings(c).Networks
	}
	return sum
}

// statusString is the human "Up 3 minutes" / "Exited (0) 2 seconds ago".
func statusString(st *State) string {
	switch st.Status {
	case container.StateRunning:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt))
	case container.StatePaused:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case container.StateExited:
		if st.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", st.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	case container.StateCreated:
		return "Created"
	case container.StateRemoving:
		return "Removal In Progress"
	}
	return string(st.Status)
}

// Inspect returns a container as `docker inspect` shows it.
func (s *Service) Inspect(ctx context.Context, ref string) (container.InspectResponse, error) {
	e, err := s.lookup(ref)
	if err != nil {
		return container.InspectResponse{}, err
	}
	c := s.snapshot(e)
	st := c.State
	resp := container.InspectResponse{
		ID:      c.ID,
		Created: c.Created.Format(time.RFC3339Nano),
		Path:    c.Path,
		Args:    append([]string{}, c.Args...),
		State: &container.State{
			Status:     st.Status,
			Running:    st.Running(),
			Restarting: st.Status == container.StateRestarting,
			Paused:     st.Status == container.StatePaused,
			OOMKilled:  st.OOMKilled,
			Dead:       st.Status == container.StateDead,
			Pid:        st.Pid,
			ExitCode:   st.ExitCode,
			Error:      st.Error,
			StartedAt:  timeOrZero(st.StartedAt),
			FinishedAt: timeOrZero(st.FinishedAt),
		},
		Image:           c.ImageID,
		LogPath:         logFile(s.logDir(c.ID), c.HostConfig), // logcapture.go
		Name:            "/" + c.Name,
		Driver:          "overlay",
		RestartCount:    c.RestartCount,
		Platform:        "linux",
		ExecIDs:         nil,
		HostConfig:      c.HostConfig,
		Mounts:          s.mountPointsOf(c.ID), // mounts.go
		Config:          c.Config,
		NetworkSettings: netSettings(&c),
	}
	resp.State.Health = s.healthOf(&c) // health.go
	return resp, nil
}

// LogsOptions select log entries, as `docker logs` does.
type LogsOptions = logs.Options

// Logs returns the container's log entries. With Follow the sequence ends
// when the container exits (the monitor closes the log), is removed, or
// ctx ends. tty reports whether the container has a terminal (its output
// is one stream, not framed).
func (s *Service) Logs(ctx context.Context, ref string, opts LogsOptions) (tty bool, entries iter.Seq2[logs.Entry, error], err error) {
	e, err := s.lookup(ref)
	if err != nil {
		return false, nil, err
	}
	if !opts.Stdout && !opts.Stderr {
		return false, nil, fmt.Errorf("logs: choose at least one of stdout and stderr: %w", errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	c, removed := *e.c, e.removedCh
	s.mu.Unlock()
	dir := s.logDir(c.ID)
	if c.HostConfig != nil {
		opts.Driver = c.HostConfig.LogConfig.Type
	}
	seq := func(yield func(logs.Entry, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if opts.Follow {
			defer s.follow(e)()
			go func() {
				select {
				case <-removed:
					cancel()
				case <-ctx.Done():
				}
			}()
		}
		for ent, err := range logs.Read(ctx, dir, opts) {
			if !yield(ent, err) {
				return
			}
			if err != nil {
				return
			}
		}
		if opts.Follow && ctx.Err() == nil {
			// The log closes as the process exits; a client that acts on
			// the end of `logs -f` (docker rm, say) must find the exit
			// recorded, so the stream ends only once it is.
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			_, _ = s.Wait(wctx, c.ID, container.WaitConditionNotRunning)
			wcancel()
		}
	}
	return c.Config != nil && c.Config.Tty, seq, nil
}

// Counts are the numbers `docker info` shows.
type Counts struct {
	Containers, Running, Paused, Stopped int
}

// Count counts containers by state.
func (s *Service) Count() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n Counts
	for _, e := range s.ctrs {
		n.Containers++
		switch e.c.State.Status {
		case container.StateRunning:
			n.Running++
		case container.StatePaused:
			n.Paused++
		default:
			n.Stopped++
		}
	}
	return n
}
