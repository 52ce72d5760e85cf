package engine

import (
	"fmt"
	"path/filepath"

	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/engine/volume"
	"github.com/silo-containers/silo/internal/errdefs"
)

// features holds the state of the engine's container features beyond the
// core lifecycle: the volume store (mounts.go, volumes.go), the event
// log (events.go) and the healthchecks (health.go). Service.features is set by New (openFeatures) and
// released by Close.
type features struct {
	vols   *volume.Store
	events *eventLog
	health healthTable // health.go
}

// volumesDir is where the local volume driver keeps volumes.
func (s *Service) volumesDir() string { return filepath.Join(s.cfg.DataRoot, "volumes") }

// openFeatures opens what the features keep on disk.
func (s *Service) openFeatures() error {
	vols, err := volume.Open(s.volumesDir())
	if err != nil {
		return err
	}
	s.features.vols, s.features.events = vols, newEventLog()
	return nil
}

// closeFeatures releases them.
func (s *Service) closeFeatures() error {
	if s.features.vols == nil {
		return nil
	}
	return s.features.vols.Close()
}

// decorateSummary adds what the features know of a container to its ps
// row: its mounts and its health.
func (s *Service) decorateSummary(sum container.Summary, c *Container) container.Summary {
	sum.Mounts = s.mountPointsOf(c.ID)
	return s.withHealth(sum, c)
}

// featureFilters takes the ps filters the features answer out of f:
// volume (a volume name or a mount destination) and health (starting,
// healthy, unhealthy, none). It returns the other filters and the
// predicate of these.
func (s *Service) featureFilters(f Filters) (Filters, func(*Container) bool, error) {
	rest := Filters{}
	var preds []func(*Container) bool
	for key, vals := range f {
		switch key {
		case "volume":
			preds = append(preds, func(c *Container) bool {
				for _, m := range s.mountPointsOf(c.ID) {
					if anyOf(vals, m.Name) || anyOf(vals, m.Destination) || anyOf(vals, m.Source) {
						return true
					}
				}
				return false
			})
		case "health":
			for _, v := range vals {
				if err := container.ValidateHealthStatus(container.HealthStatus(v)); err != nil {
					return nil, nil, fmt.Errorf("invalid filter 'health=%s': %w", v, errdefs.ErrInvalidArgument)
				}
			}
			preds = append(preds, func(c *Container) bool {
				status := string(container.NoHealthcheck)
				if h := s.healthOf(c); h != nil && c.State.Running() {
					status = string(h.Status)
				}
				return anyOf(vals, status)
			})
		default:
			rest[key] = vals
		}
	}
	return rest, func(c *Container) bool {
		for _, p := range preds {
			if !p(c) {
				return false
			}
		}
		return true
	}, nil
}
