package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
)

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		writeError(w, err)
		return
	}
	list, err := s.b.Images(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if list, err = engine.FilterImages(list, filters); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// imageGet serves GET /images/{name}/json (the name may hold slashes) and
// answers 501 for the other image GETs (/images/{name}/history…).
func (s *Server) imageGet(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("rest")
	name, ok := strings.CutSuffix(rest, "/json")
	if !ok || name == "" {
		if i := strings.LastIndex(rest, "/"); i > 0 {
			writeError(w, fmt.Errorf("GET /images/{name}/%s: not implemented yet: %w", rest[i+1:], errdefs.ErrNotImplemented))
			return
		}
		writeError(w, fmt.Errorf("page not found: GET /images/%s: %w", rest, errdefs.ErrNotFound))
		return
	}
	resp, err := s.b.ImageInspect(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) imageRemove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("rest")
	if name == "" {
		writeError(w, fmt.Errorf("no image name given: %w", errdefs.ErrInvalidArgument))
		return
	}
	resp, err := s.b.RemoveImage(r.Context(), name, boolValue(r, "force"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// imageLoad reads a `docker save` tar from the body and answers with
// docker's JSON message stream ("Loaded image: busybox:latest").
func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil {
		writeError(w, fmt.Errorf("empty request body: %w", errdefs.ErrInvalidArgument))
		return
	}
	refs, err := s.b.LoadImages(r.Context(), r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, ref := range refs {
		what := "Loaded image: "
		if strings.HasPrefix(ref, "sha256:") {
			what = "Loaded image ID: "
		}
		_ = enc.Encode(jsonstream.Message{Stream: what + ref + "\n"})
	}
}

// imageBusybox builds busybox (ref, default busybox:latest) from the
// host's busybox-static, offline.
func (s *Server) imageBusybox(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("ref")
	if ref == "" {
		ref = "busybox:latest"
	}
	id, err := s.b.BuildBusybox(r.Context(), ref)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, jsonstream.Message{Stream: "Loaded image: " + ref + "\n", ID: id})
}
