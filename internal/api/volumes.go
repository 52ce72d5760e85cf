package api

import (
	"context"
	"net/http"

	mobyvolume "github.com/moby/moby/api/types/volume"

	"github.com/silo-containers/silo/internal/engine"
)

// VolumeBackend is the volumes API; *engine.Service implements it. It is
// apart from Backend so that a backend without volumes answers 501.
type VolumeBackend interface {
	VolumeCreate(ctx context.Context, req mobyvolume.CreateRequest) (mobyvolume.Volume, error)
	VolumeInspect(ctx context.Context, name string) (mobyvolume.Volume, error)
	VolumeList(ctx context.Context, f engine.Filters) (mobyvolume.ListResponse, error)
	VolumeRemove(ctx context.Context, name string, force bool) error
	VolumePrune(ctx context.Context, f engine.Filters) (mobyvolume.PruneReport, error)
}

var _ VolumeBackend = (*engine.Service)(nil)

func (s *Server) volumeRoutes() {
	m := s.mux
	m.HandleFunc("GET /volumes", s.volumeList)
	m.HandleFunc("POST /volumes/create", s.volumeCreate)
	m.HandleFunc("POST /volumes/prune", s.volumePrune)
	m.HandleFunc("GET /volumes/{name}", s.volumeInspect)
	m.HandleFunc("DELETE /volumes/{name}", s.volumeRemove)
}

func (s *Server) volumes(w http.ResponseWriter, r *http.Request) (VolumeBackend, bool) {
	return optional[VolumeBackend](s, w, r)
}

func (s *Server) volumeList(w http.ResponseWriter, r *http.Request) {
	if b, ok := s.volumes(w, r); ok {
		answerFiltered(w, r, b.VolumeList)
	}
}

func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request) {
	b, ok := s.volumes(w, r)
	if !ok {
		return
	}
	var req mobyvolume.CreateRequest
	if err := decodeBody(r, &req, maxCreateBody); err != nil {
		writeError(w, err)
		return
	}
	v, err := b.VolumeCreate(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request) {
	b, ok := s.volumes(w, r)
	if !ok {
		return
	}
	v, err := b.VolumeInspect(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) volumeRemove(w http.ResponseWriter, r *http.Request) {
	b, ok := s.volumes(w, r)
	if !ok {
		return
	}
	if err := b.VolumeRemove(r.Context(), r.PathValue("name"), boolValue(r, "force")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request) {
	if b, ok := s.volumes(w, r); ok {
		answerFiltered(w, r, b.VolumePrune)
	}
}
