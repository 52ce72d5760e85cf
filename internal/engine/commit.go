package engine

import (
	"context"
	"fmt"
	"strings"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
	"github.com/silo-containers/silo/internal/storage/sandbox"
)

// CommitOptions are docker commit's.
type CommitOptions struct {
	// Reference tags the new image ("" for none).
	Reference string
	Comment   string
	Author    string
	// Changes are Dockerfile instructions to apply (--change): not
	// supported yet.
	Changes []string
	// Config, when set, replaces fields of the container's config.
	Config *container.Config
}

// Commit makes an image of a container's changes (one layer from its
// sandbox's upper directory) on top of its image, with the container's
// config. A running container is committed as it is (silo has no pause
// yet): files being written meanwhile may be caught half-way.
func (s *Service) Commit(ctx context.Context, ref string, opts CommitOptions) (string, error) {
	if len(opts.Changes) > 0 {
		return "", fmt.Errorf("commit --change: %w", errdefs.ErrNotImplemented)
	}
	e, err := s.lookup(ref)
	if err != nil {
		return "", err
	}
	st, err := s.buildStore()
	if err != nil {
		return "", err
	}
	c := s.snapshot(e)
	base, err := st.DockerConfig(ctx, c.ImageID)
	if err != nil {
		return "", fmt.Errorf("commit container %s: image %s: %w", c.ID[:12], c.ImageID, err)
	}
	cfg := base.Config
	mergeCommitConfig(&cfg, c.Config)
	mergeCommitConfig(&cfg, opts.Config)
	co := storage.CommitOptions{Parent: c.ImageID, Config: cfg, Comment: opts.Comment, Author: opts.Author,
		CreatedBy: strings.TrimSpace(c.Path + " " + strings.Join(c.Args, " "))}
	if opts.Reference != "" {
		co.Refs = []string{opts.Reference}
	}
	info, err := s.commitSandbox(ctx, c.ID, co)
	if err != nil {
		return "", err
	}
	return info.ID.String(), nil
}

// commitSandbox commits the sandbox of container id, mounting it for the
// time of the diff if it is not mounted.
func (s *Service) commitSandbox(ctx context.Context, id string, opts storage.CommitOptions) (storage.ImageInfo, error) {
	st, err := s.buildStore()
	if err != nil {
		return storage.ImageInfo{}, err
	}
	sb, _, mounted, err := sandbox.OpenMounted(ctx, s.sandboxDir(id))
	if err != nil {
		return storage.ImageInfo{}, fmt.Errorf("commit container %s: %w", id[:12], err)
	}
	if !mounted {
		defer func() {
			if err := sb.Unmount(context.WithoutCancel(ctx)); err != nil {
				s.log.Warn("unmount sandbox after commit", "container", id, "err", err)
			}
		}()
	}
	opts.Dir = sb.UpperDir()
	info, err := st.Commit(ctx, opts)
	if err != nil {
		return storage.ImageInfo{}, fmt.Errorf("commit container %s: %w", id[:12], err)
	}
	return info, nil
}

// mergeCommitConfig lays the set fields of c over cfg, as docker commit
// does with the container's config and --change/-c.
func mergeCommitConfig(cfg *dockerspec.DockerOCIImageConfig, c *container.Config) {
	if c == nil {
		return
	}
	if c.User != "" {
		cfg.User = c.User
	}
	if len(c.Env) > 0 {
		cfg.Env = append([]string(nil), c.Env...)
	}
	if len(c.Cmd) > 0 {
		cfg.Cmd = append([]string(nil), c.Cmd...)
	}
	if len(c.Entrypoint) > 0 {
		cfg.Entrypoint = append([]string(nil), c.Entrypoint...)
	}
	if c.WorkingDir != "" {
		cfg.WorkingDir = c.WorkingDir
	}
	if len(c.Labels) > 0 {
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for k, v := range c.Labels {
			cfg.Labels[k] = v
		}
	}
	if c.StopSignal != "" {
		cfg.StopSignal = c.StopSignal
	}
	for p := range c.ExposedPorts {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		cfg.ExposedPorts[p.String()] = struct{}{}
	}
	for v := range c.Volumes {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[v] = struct{}{}
	}
}
