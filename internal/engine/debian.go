package engine

import (
	"context"
	"fmt"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/baseimage"
)

// BuildDebian makes a Debian image with debootstrap on the daemon's host
// (opts.Progress receives its output) and returns the image's ID. Ending
// ctx (the client went away) stops debootstrap and removes its tree.
func (s *Service) BuildDebian(ctx context.Context, opts baseimage.DebianOptions) (string, error) {
	if s.cfg.Debian == nil {
		return "", fmt.Errorf("build debian: no builder configured: %w", errdefs.ErrNotImplemented)
	}
	info, err := s.cfg.Debian(ctx, opts)
	if err != nil {
		return "", err
	}
	return info.ID.String(), nil
}
