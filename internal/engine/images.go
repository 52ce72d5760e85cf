package engine

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
)

// Images lists the images, as `docker images` does.
func (s *Service) Images(ctx context.Context) ([]image.Summary, error) {
	infos, err := s.cfg.Images.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]image.Summary, 0, len(infos))
	for _, i := range infos {
		sum := image.Summary{
			ID:          i.ID.String(),
			Created:     created(i).Unix(),
			Labels:      i.Config.Config.Labels,
			RepoTags:    tagRefs(i.RepoTags),
			RepoDigests: digestRefs(i.RepoTags),
			Size:        i.Size,
			Containers:  -1,
			SharedSize:  -1,
		}
		if sum.Labels == nil {
			sum.Labels = map[string]string{}
		}
		out = append(out, sum)
	}
	return out, nil
}

// tagRefs are the name:tag references among an image's references;
// digestRefs the name@digest ones (an image pulled by digest), which
// docker lists apart as RepoDigests.
func tagRefs(refs []string) []string {
	out := []string{}
	for _, r := range refs {
		if !strings.Contains(r, "@") {
			out = append(out, r)
		}
	}
	return out
}

func digestRefs(refs []string) []string {
	out := []string{}
	for _, r := range refs {
		if strings.Contains(r, "@") {
			out = append(out, r)
		}
	}
	return out
}

// created is the image's creation time, or when it entered the store.
func created(i storage.ImageInfo) time.Time {
	if i.Config.Created != nil && !i.Config.Created.IsZero() {
		return *i.Config.Created
	}
	return i.Created
}

// ImageInspect returns an image as `docker image inspect` shows it.
func (s *Service) ImageInspect(ctx context.Context, ref string) (image.InspectResponse, error) {
	i, err := s.cfg.Images.Image(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return image.InspectResponse{}, fmt.Errorf("no such image: %s: %w", ref, errdefs.ErrNotFound)
		}
		return image.InspectResponse{}, err
	}
	layers := make([]string, 0, len(i.DiffIDs))
	for _, d := range i.DiffIDs {
		layers = append(layers, d.String())
	}
	return image.InspectResponse{
		ID:           i.ID.String(),
		RepoTags:     tagRefs(i.RepoTags),
		RepoDigests:  digestRefs(i.RepoTags),
		Created:      created(i).UTC().Format(time.RFC3339Nano),
		Author:       i.Config.Author,
		Config:       &dockerspec.DockerOCIImageConfig{ImageConfig: i.Config.Config},
		Architecture: i.Config.Architecture,
		Variant:      i.Config.Variant,
		Os:           i.Config.OS,
		Size:         i.Size,
		RootFS:       image.RootFS{Type: "layers", Layers: layers},
	}, nil
}

// LoadImages loads a `docker save` (or OCI layout) tar and returns the
// references it brought in.
func (s *Service) LoadImages(ctx context.Context, r io.Reader) ([]string, error) {
	return s.cfg.Images.Load(ctx, r)
}

// RemoveImage drops an image reference (or, given an ID, all of them).
// An image a container uses needs force.
func (s *Service) RemoveImage(ctx context.Context, ref string, force bool) ([]image.DeleteResponse, error) {
	i, err := s.cfg.Images.Image(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("no such image: %s: %w", ref, errdefs.ErrNotFound)
		}
		return nil, err
	}
	if err := s.cfg.Images.Remove(ctx, ref, storage.RemoveOptions{Force: force}); err != nil {
		return nil, err
	}
	var out []image.DeleteResponse
	if _, err := s.cfg.Images.Image(ctx, i.ID.String()); errdefs.IsNotFound(err) {
		for _, t := range i.RepoTags {
			out = append(out, image.DeleteResponse{Untagged: t})
		}
		out = append(out, image.DeleteResponse{Deleted: i.ID.String()})
	} else {
		out = append(out, image.DeleteResponse{Untagged: ref})
	}
	return out, nil
}

// BuildBusybox makes the image ref from the host's busybox-static, offline,
// and returns its ID.
func (s *Service) BuildBusybox(ctx context.Context, ref string) (string, error) {
	if s.cfg.Busybox == nil {
		return "", fmt.Errorf("build busybox: no builder configured: %w", errdefs.ErrNotImplemented)
	}
	info, err := s.cfg.Busybox(ctx, ref)
	if err != nil {
		return "", err
	}
	return info.ID.String(), nil
}
