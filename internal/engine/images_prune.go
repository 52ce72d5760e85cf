package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/image"

	"github.com/silo-containers/silo/internal/engine/volume"
	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
)

// ImagesPrune removes dangling images (no tag), or with the filter
// dangling=false every image no container uses; until and label filters
// select further. Images a container uses are never removed.
func (s *Service) ImagesPrune(ctx context.Context, f Filters) (image.PruneReport, error) {
	danglingOnly := true
	for _, v := range f["dangling"] {
		switch strings.ToLower(v) {
		case "1", "true":
		case "0", "false":
			danglingOnly = false
		default:
			return image.PruneReport{}, fmt.Errorf("invalid filter 'dangling=%s': %w", v, errdefs.ErrInvalidArgument)
		}
	}
	rest := Filters{}
	for k, v := range f {
		if k != "dangling" {
			rest[k] = v
		}
	}
	match, err := compilePruneFilters(rest)
	if err != nil {
		return image.PruneReport{}, err
	}
	used := map[string]bool{}
	for _, e := range s.sortedEntries() {
		c := s.snapshot(e)
		used[c.ImageID] = true
	}
	list, err := s.cfg.Images.List(ctx)
	if err != nil {
		return image.PruneReport{}, err
	}
	rep := image.PruneReport{ImagesDeleted: []image.DeleteResponse{}}
	var errs []error
	for _, i := range list {
		id := i.ID.String()
		if used[id] || danglingOnly && len(i.RepoTags) > 0 || !match(created(i), i.Config.Config.Labels) {
			continue
		}
		if err := s.cfg.Images.Remove(ctx, id, storage.RemoveOptions{}); err != nil {
			if !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) {
				errs = append(errs, err)
			}
			continue
		}
		for _, t := range i.RepoTags {
			rep.ImagesDeleted = append(rep.ImagesDeleted, image.DeleteResponse{Untagged: t})
		}
		rep.ImagesDeleted = append(rep.ImagesDeleted, image.DeleteResponse{Deleted: id})
		rep.SpaceReclaimed += uint64(i.Size)
	}
	return rep, errors.Join(errs...)
}

// ImageHistory lists an image's history, newest first, as `docker
// history`: the layers' sizes on the entries that made a layer, the
// image's id and tags on the newest entry, "<missing>" on the others.
func (s *Service) ImageHistory(ctx context.Context, ref string) ([]image.HistoryResponseItem, error) {
	i, err := s.cfg.Images.Image(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("no such image: %s: %w", ref, errdefs.ErrNotFound)
		}
		return nil, err
	}
	dirs, err := s.cfg.Images.LayerDirs(ctx, i.ID.String())
	if err != nil {
		return nil, err
	}
	// LayerDirs is top-most first; history is oldest first.
	sizes := make([]int64, len(dirs))
	for k, d := range dirs {
		n, _ := volume.DirSize(d)
		sizes[len(dirs)-1-k] = n
	}
	hist := i.Config.History
	out := make([]image.HistoryResponseItem, 0, len(hist)+1)
	layer := 0
	for _, h := range hist {
		item := image.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: nil}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && layer < len(sizes) {
			item.Size = sizes[layer]
			layer++
		}
		out = append(out, item)
	}
	// An image without history (or with fewer entries than layers)
	// still shows its layers.
	for ; layer < len(sizes); layer++ {
		out = append(out, image.HistoryResponseItem{ID: "<missing>", Size: sizes[layer]})
	}
	if len(out) == 0 {
		out = append(out, image.HistoryResponseItem{})
	}
	for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
		out[l], out[r] = out[r], out[l]
	}
	out[0].ID = i.ID.String()
	out[0].Tags = append([]string{}, i.RepoTags...)
	return out, nil
}
