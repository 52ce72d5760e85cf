package api

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
)

// OpsBackend is pause/unpause, restart, rename, update, top, stats and
// the prunes of containers and images, and image history; *engine.Service
// implements it. It is apart from Backend so that a backend without them
// answers 501.
type OpsBackend interface {
	Pause(ctx context.Context, ref string) error
	Unpause(ctx context.Context, ref string) error
	Restart(ctx context.Context, ref, signal string, timeout *int) error
	Rename(ctx context.Context, ref, name string) error
	Update(ctx context.Context, ref string, upd container.UpdateConfig) error
	Top(ctx context.Context, ref, psArgs string) (container.TopResponse, error)
	Stats(ctx context.Context, ref string, opts engine.StatsOptions) (iter.Seq2[container.StatsResponse, error], error)
	ContainersPrune(ctx context.Context, f engine.Filters) (engine.PruneReport, error)
	ImagesPrune(ctx context.Context, f engine.Filters) (image.PruneReport, error)
	ImageHistory(ctx context.Context, ref string) ([]image.HistoryResponseItem, error)
}

var _ OpsBackend = (*engine.Service)(nil)

func (s *Server) opsRoutes() {
	m := s.mux
	m.HandleFunc("POST /containers/{id}/pause", s.containerPause)
	m.HandleFunc("POST /containers/{id}/unpause", s.containerUnpause)
	m.HandleFunc("POST /containers/{id}/restart", s.containerRestart)
	m.HandleFunc("POST /containers/{id}/rename", s.containerRename)
	m.HandleFunc("POST /containers/{id}/update", s.containerUpdate)
	m.HandleFunc("GET /containers/{id}/top", s.containerTop)
	m.HandleFunc("GET /containers/{id}/stats", s.containerStats)
	m.HandleFunc("POST /containers/prune", s.containersPrune)
	m.HandleFunc("POST /images/prune", s.imagesPrune)
}

func (s *Server) ops(w http.ResponseWriter, r *http.Request) (OpsBackend, bool) {
	return optional[OpsBackend](s, w, r)
}

// noContent runs op and answers 204, or the error.
func (s *Server) noContent(w http.ResponseWriter, r *http.Request, op func(OpsBackend) error) {
	b, ok := s.ops(w, r)
	if !ok {
		return
	}
	if err := op(b); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) containerPause(w http.ResponseWriter, r *http.Request) {
	s.noContent(w, r, func(b OpsBackend) error { return b.Pause(r.Context(), r.PathValue("id")) })
}

func (s *Server) containerUnpause(w http.ResponseWriter, r *http.Request) {
	s.noContent(w, r, func(b OpsBackend) error { return b.Unpause(r.Context(), r.PathValue("id")) })
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request) {
	var timeout *int
	if t := r.URL.Query().Get("t"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			writeError(w, fmt.Errorf("invalid value for t %q: %w", t, errdefs.ErrInvalidArgument))
			return
		}
		timeout = &n
	}
	s.noContent(w, r, func(b OpsBackend) error {
		return b.Restart(r.Context(), r.PathValue("id"), r.URL.Query().Get("signal"), timeout)
	})
}

func (s *Server) containerRename(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		writeError(w, fmt.Errorf("rename: no new name given: %w", errdefs.ErrInvalidArgument))
		return
	}
	s.noContent(w, r, func(b OpsBackend) error { return b.Rename(r.Context(), r.PathValue("id"), name) })
}

// containerUpdate is POST /containers/{id}/update (docker update): new
// resource limits and restart policy; the answer lists no warnings.
func (s *Server) containerUpdate(w http.ResponseWriter, r *http.Request) {
	b, ok := s.ops(w, r)
	if !ok {
		return
	}
	var upd container.UpdateConfig
	if err := decodeBody(r, &upd, maxCreateBody); err != nil {
		writeError(w, err)
		return
	}
	if err := b.Update(r.Context(), r.PathValue("id"), upd); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: []string{}})
}

func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) {
	b, ok := s.ops(w, r)
	if !ok {
		return
	}
	resp, err := b.Top(r.Context(), r.PathValue("id"), r.URL.Query().Get("ps_args"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// containerStats answers one JSON document per sample: a stream (the
// default) until the client goes or the container stops, else one.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) {
	b, ok := s.ops(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	opts := engine.StatsOptions{Stream: q.Get("stream") == "" || boolValue(r, "stream"), OneShot: boolValue(r, "one-shot")}
	if opts.OneShot && opts.Stream {
		writeError(w, fmt.Errorf("cannot have stream=true and one-shot=true: %w", errdefs.ErrInvalidArgument))
		return
	}
	samples, err := b.Stats(r.Context(), r.PathValue("id"), opts)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	for st, err := range samples {
		if err != nil {
			// Headers are sent: the error can only end the stream.
			s.log.Warn("stats", "container", r.PathValue("id"), "err", err)
			return
		}
		if err := enc.Encode(st); err != nil {
			return
		}
		_ = rc.Flush()
	}
}

func (s *Server) containersPrune(w http.ResponseWriter, r *http.Request) {
	b, ok := s.ops(w, r)
	if !ok {
		return
	}
	answerFiltered(w, r, func(ctx context.Context, f engine.Filters) (container.PruneReport, error) {
		rep, err := b.ContainersPrune(ctx, f)
		return container.PruneReport{ContainersDeleted: rep.Deleted, SpaceReclaimed: rep.SpaceReclaimed}, err
	})
}

func (s *Server) imagesPrune(w http.ResponseWriter, r *http.Request) {
	if b, ok := s.ops(w, r); ok {
		answerFiltered(w, r, b.ImagesPrune)
	}
}

// imageHistory is GET /images/{name}/history (dispatched by
// imageGetOrSave: image names hold slashes).
func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request, name string) {
	b, ok := s.ops(w, r)
	if !ok {
		return
	}
	h, err := b.ImageHistory(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}
