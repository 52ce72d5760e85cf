package api

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	mobyvolume "github.com/moby/moby/api/types/volume"

	"github.com/silo-containers/silo/internal/engine"
)

// SystemBackend is `docker events` and `docker system df`;
// *engine.Service implements it.
type SystemBackend interface {
	Events(ctx context.Context, opts engine.EventsOptions) (iter.Seq[events.Message], error)
	DiskUsage(ctx context.Context) (engine.DiskUsage, error)
}

var _ SystemBackend = (*engine.Service)(nil)

func (s *Server) systemRoutes() {
	s.mux.HandleFunc("GET /events", s.events)
	s.mux.HandleFunc("GET /system/df", s.systemDF)
}

func (s *Server) system(w http.ResponseWriter, r *http.Request) (SystemBackend, bool) {
	return optional[SystemBackend](s, w, r)
}

// events streams JSON messages, one per event, flushed as they come.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	b, ok := s.system(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var opts engine.EventsOptions
	var err error
	if opts.Filters, err = parseFilters(q.Get("filters")); err != nil {
		writeError(w, err)
		return
	}
	if opts.Since, err = parseTime("since", q.Get("since")); err != nil {
		writeError(w, err)
		return
	}
	if opts.Until, err = parseTime("until", q.Get("until")); err != nil {
		writeError(w, err)
		return
	}
	msgs, err := b.Events(r.Context(), opts)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	for m := range msgs {
		if err := enc.Encode(m); err != nil {
			return
		}
		_ = rc.Flush()
	}
}

// diskUsageResponse carries both shapes of GET /system/df: the one of
// API 1.52+ (ImageUsage, ContainerUsage, …) and the older lists that the
// docker 28 CLI reads (LayersSize, Images, Containers, Volumes).
type diskUsageResponse struct {
	system.DiskUsage
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []mobyvolume.Volume
	BuildCache []build.CacheRecord
}

func (s *Server) systemDF(w http.ResponseWriter, r *http.Request) {
	b, ok := s.system(w, r)
	if !ok {
		return
	}
	du, err := b.DiskUsage(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	resp := diskUsageResponse{
		LayersSize: du.LayersSize, Images: du.Images, Containers: du.Containers, Volumes: du.Volumes,
		BuildCache: []build.CacheRecord{},
	}
	resp.ImageUsage = &image.DiskUsage{Items: du.Images, TotalCount: int64(len(du.Images)), TotalSize: du.LayersSize}
	resp.ContainerUsage = &container.DiskUsage{Items: du.Containers, TotalCount: int64(len(du.Containers))}
	resp.VolumeUsage = &mobyvolume.DiskUsage{Items: du.Volumes, TotalCount: int64(len(du.Volumes))}
	for _, i := range du.Images {
		if i.Containers > 0 {
			resp.ImageUsage.ActiveCount++
		} else {
			resp.ImageUsage.Reclaimable += i.Size
		}
	}
	for _, c := range du.Containers {
		resp.ContainerUsage.TotalSize += c.SizeRw
		if c.State == container.StateRunning || c.State == container.StatePaused {
			resp.ContainerUsage.ActiveCount++
		} else {
			resp.ContainerUsage.Reclaimable += c.SizeRw
		}
	}
	for _, v := range du.Volumes {
		if v.UsageData == nil {
			continue
		}
		resp.VolumeUsage.TotalSize += v.UsageData.Size
		if v.UsageData.RefCount > 0 {
			resp.VolumeUsage.ActiveCount++
		} else {
			resp.VolumeUsage.Reclaimable += v.UsageData.Size
		}
	}
	writeJSON(w, http.StatusOK, resp)
}
