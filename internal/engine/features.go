package engine

import (
	"path/filepath"

	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/engine/volume"
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
