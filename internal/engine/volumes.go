package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	mobyvolume "github.com/moby/moby/api/types/volume"

	"github.com/silo-containers/silo/internal/engine/volume"
	"github.com/silo-containers/silo/internal/errdefs"
)

// The volumes API (docker volume create/ls/inspect/rm/prune) over the
// volume store; mounts.go puts volumes into containers.

// VolumeCreate makes a named volume (a random name when none is given),
// or returns the existing one of that name.
func (s *Service) VolumeCreate(ctx context.Context, req mobyvolume.CreateRequest) (mobyvolume.Volume, error) {
	if req.ClusterVolumeSpec != nil {
		return mobyvolume.Volume{}, fmt.Errorf("create volume: cluster volumes need swarm: %w", errdefs.ErrNotImplemented)
	}
	name := req.Name
	if name == "" {
		name = newID()
	}
	_, getErr := s.features.vols.Get(name)
	isNew := getErr != nil
	v, err := s.features.vols.Create(ctx, volume.CreateOptions{Name: name, Driver: req.Driver, Labels: req.Labels, Options: req.DriverOpts})
	if err != nil {
		return mobyvolume.Volume{}, err
	}
	if isNew {
		s.emitVolume(events.ActionCreate, name, nil)
	}
	return s.volumeAPI(volume.Info{Volume: v}, false), nil
}

// volumeAPI is a volume as the API shows it; withUsage adds its size and
// reference count (docker system df).
func (s *Service) volumeAPI(v volume.Info, withUsage bool) mobyvolume.Volume {
	out := mobyvolume.Volume{
		Name: v.Name, Driver: v.Driver, Labels: v.Labels, Options: v.Options,
		Mountpoint: s.features.vols.Path(v.Name), Scope: "local",
		CreatedAt: v.CreatedAt.Format(time.RFC3339),
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if withUsage {
		size, err := volume.DirSize(out.Mountpoint)
		if err != nil {
			size = -1
		}
		out.UsageData = &mobyvolume.UsageData{Size: size, RefCount: int64(len(v.Users))}
	}
	return out
}

// VolumeInspect returns one volume.
func (s *Service) VolumeInspect(ctx context.Context, name string) (mobyvolume.Volume, error) {
	list, err := s.features.vols.List()
	if err != nil {
		return mobyvolume.Volume{}, err
	}
	for _, v := range list {
		if v.Name == name {
			return s.volumeAPI(v, false), nil
		}
	}
	return mobyvolume.Volume{}, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
}

// VolumeList returns the volumes that pass the filters: name (substring),
// driver, label (key or key=value), dangling (true: unused).
func (s *Service) VolumeList(ctx context.Context, f Filters) (mobyvolume.ListResponse, error) {
	match, err := volumeFilter(f, true)
	if err != nil {
		return mobyvolume.ListResponse{}, err
	}
	list, err := s.features.vols.List()
	if err != nil {
		return mobyvolume.ListResponse{}, err
	}
	out := mobyvolume.ListResponse{Volumes: []mobyvolume.Volume{}, Warnings: []string{}}
	for _, v := range list {
		if match(&v.Volume, len(v.Users)) {
			out.Volumes = append(out.Volumes, s.volumeAPI(v, false))
		}
	}
	return out, nil
}

// volumeFilter compiles volume filters; dangling is allowed in lists,
// not in prune.
func volumeFilter(f Filters, allowDangling bool) (func(v *volume.Volume, users int) bool, error) {
	var preds []func(*volume.Volume, int) bool
	for key, vals := range f {
		if len(vals) == 0 {
			continue
		}
		switch key {
		case "name":
			preds = append(preds, func(v *volume.Volume, _ int) bool {
				for _, x := range vals {
					if strings.Contains(v.Name, x) {
						return true
					}
				}
				return false
			})
		case "driver":
			preds = append(preds, func(v *volume.Volume, _ int) bool { return anyOf(vals, v.Driver) })
		case "label", "label!":
			neg := key == "label!"
			preds = append(preds, func(v *volume.Volume, _ int) bool {
				for _, x := range vals {
					k, want, hasVal := strings.Cut(x, "=")
					got, ok := v.Labels[k]
					if (ok && (!hasVal || got == want)) == neg {
						return false
					}
				}
				return true
			})
		case "dangling":
			if !allowDangling {
				return nil, fmt.Errorf("invalid filter 'dangling': %w", errdefs.ErrInvalidArgument)
			}
			want := map[string]bool{"true": true, "1": true, "false": false, "0": false}
			var wants []bool
			for _, x := range vals {
				b, ok := want[strings.ToLower(x)]
				if !ok {
					return nil, fmt.Errorf("invalid filter 'dangling=%s': %w", x, errdefs.ErrInvalidArgument)
				}
				wants = append(wants, b)
			}
			preds = append(preds, func(_ *volume.Volume, users int) bool {
				for _, b := range wants {
					if b == (users == 0) {
						return true
					}
				}
				return false
			})
		case "all":
			// prune's: handled by the caller.
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", key, errdefs.ErrInvalidArgument)
		}
	}
	return func(v *volume.Volume, users int) bool {
		for _, p := range preds {
			if !p(v, users) {
				return false
			}
		}
		return true
	}, nil
}

// VolumeRemove deletes a volume; one in use is a conflict.
func (s *Service) VolumeRemove(ctx context.Context, name string, force bool) error {
	if err := s.features.vols.Remove(ctx, name, force); err != nil {
		return err
	}
	s.emitVolume(events.ActionDestroy, name, nil)
	return nil
}

// VolumePrune removes unused volumes: anonymous ones, or all with the
// filter all=true (Docker 23+), further selected by label filters.
func (s *Service) VolumePrune(ctx context.Context, f Filters) (mobyvolume.PruneReport, error) {
	all := false
	for _, v := range f["all"] {
		switch strings.ToLower(v) {
		case "1", "true":
			all = true
		case "0", "false":
		default:
			return mobyvolume.PruneReport{}, fmt.Errorf("invalid filter 'all=%s': %w", v, errdefs.ErrInvalidArgument)
		}
	}
	match, err := volumeFilter(f, false)
	if err != nil {
		return mobyvolume.PruneReport{}, err
	}
	names, freed, err := s.features.vols.Prune(ctx, volume.PruneOptions{All: all, Match: func(v *volume.Volume) bool { return match(v, 0) }})
	for _, n := range names {
		s.emitVolume(events.ActionDestroy, n, nil)
	}
	if names == nil {
		names = []string{}
	}
	return mobyvolume.PruneReport{VolumesDeleted: names, SpaceReclaimed: freed}, err
}

// VolumesUsage lists every volume with its size and reference count
// (docker system df).
func (s *Service) VolumesUsage(ctx context.Context) ([]mobyvolume.Volume, error) {
	list, err := s.features.vols.List()
	if err != nil {
		return nil, err
	}
	out := make([]mobyvolume.Volume, 0, len(list))
	for _, v := range list {
		out = append(out, s.volumeAPI(v, true))
	}
	return out, nil
}
