package engine

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/engine/ocispec"
	"github.com/silo-containers/silo/internal/errdefs"
)

// Update (docker update) changes a container's resource limits and restart
// policy. As in Docker, each limit given (non-zero) replaces the
// container's; the rest stay. The bundle's config.json gets the new
// limits, so a later start has them; a running (or paused) container's
// cgroups change at once, through the runtime (`runsilo update`). The
// record changes last: a failure leaves the container as it was.

// Updater changes a running container's limits. The engine's Monitors
// implements it when the runtime can (type-asserted, as Pauser).
type Updater interface {
	// Update applies r to the container's cgroups.
	Update(ctx context.Context, cfg MonitorConfig, r *specs.LinuxResources) error
}

// Update applies upd to the container ref.
func (s *Service) Update(ctx context.Context, ref string, upd container.UpdateConfig) error {
	e, err := s.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	c := s.snapshot(e)
	host := *c.HostConfig
	if err := mergeUpdate(&host, &upd); err != nil {
		return fmt.Errorf("update container %s: %w", c.ID[:12], err)
	}
	spec, err := readBundleSpec(s.ctrDir(c.ID)) // create.go
	if err != nil {
		return fmt.Errorf("update container %s: %w", c.ID[:12], err)
	}
	path := bundleSpecPath(s.ctrDir(c.ID))
	old := spec.Linux.Resources
	if err := ocispec.UpdateLimits(spec, &host.Resources); err != nil {
		return fmt.Errorf("update container %s: %w", c.ID[:12], err)
	}
	if err := writeJSONAtomic(path, spec); err != nil {
		return fmt.Errorf("update container %s: %w", c.ID[:12], err)
	}
	undo := func() {
		spec.Linux.Resources = old
		if err := writeJSONAtomic(path, spec); err != nil {
			s.log.Warn("update: restore config.json", "container", c.ID, "err", err)
		}
	}
	if c.State.Running() {
		u, ok := s.cfg.Monitors.(Updater)
		if !ok {
			undo()
			return fmt.Errorf("update container %s: the runtime cannot change a running container's limits: %w", c.ID[:12], errdefs.ErrNotImplemented)
		}
		if err := u.Update(ctx, s.monitorConfig(&c), spec.Linux.Resources); err != nil {
			undo()
			return fmt.Errorf("update container %s: %w", c.ID[:12], err)
		}
	}
	if err := s.setState(e, func(c *Container) { c.HostConfig = &host }); err != nil {
		undo()
		return fmt.Errorf("update container %s: %w", c.ID[:12], err)
	}
	s.emitEntry(e, events.ActionUpdate, nil) // events.go
	return nil
}

// mergeUpdate lays upd over host as dockerd does: every limit that is set
// replaces the container's, and a restart policy with a name replaces
// its policy.
func mergeUpdate(host *container.HostConfig, upd *container.UpdateConfig) error {
	r, u := &host.Resources, &upd.Resources
	if len(u.Devices) > 0 || len(u.DeviceCgroupRules) > 0 || len(u.Ulimits) > 0 {
		return fmt.Errorf("devices and ulimits cannot be updated: %w", errdefs.ErrInvalidArgument)
	}
	if u.Memory < 0 || u.MemoryReservation < 0 || u.CPUShares < 0 || u.NanoCPUs < 0 || u.CPUQuota < 0 || u.CPUPeriod < 0 {
		return fmt.Errorf("negative limit: %w", errdefs.ErrInvalidArgument)
	}
	if u.Memory != 0 {
		// A swap limit below the new memory limit would be refused by the
		// kernel; Docker asks for both together.
		if r.MemorySwap > 0 && u.Memory > r.MemorySwap && u.MemorySwap == 0 {
			return fmt.Errorf("memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time: %w", errdefs.ErrConflict)
		}
		r.Memory = u.Memory
	}
	setIf(&r.MemorySwap, u.MemorySwap)
	setIf(&r.MemoryReservation, u.MemoryReservation)
	setIf(&r.BlkioWeight, u.BlkioWeight)
	setIf(&r.CPUShares, u.CPUShares)
	setIf(&r.CPUPeriod, u.CPUPeriod)
	setIf(&r.CPUQuota, u.CPUQuota)
	setIf(&r.CpusetCpus, u.CpusetCpus)
	setIf(&r.CpusetMems, u.CpusetMems)
	// --cpus against a quota or period (old or new) is refused by the
	// spec's mapping, as Docker refuses it.
	setIf(&r.NanoCPUs, u.NanoCPUs)
	if u.PidsLimit != nil {
		r.PidsLimit = u.PidsLimit
	}
	if upd.RestartPolicy.Name != "" {
		if host.AutoRemove && !upd.RestartPolicy.IsNone() {
			return fmt.Errorf("restart policy cannot be updated because AutoRemove is enabled for the container: %w", errdefs.ErrConflict)
		}
		if err := container.ValidateRestartPolicy(upd.RestartPolicy); err != nil {
			return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		host.RestartPolicy = upd.RestartPolicy
	}
	return nil
}

// setIf sets *dst to v unless v is its type's zero value.
func setIf[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}
