package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
	"github.com/silo-containers/silo/internal/storage/image"
)

// ImportBackend is what docker import calls; *engine.Service implements
// it. A Backend without it answers 501.
type ImportBackend interface {
	ImportImage(ctx context.Context, rootfs io.Reader, ref string, opts engine.ImportOptions) (storage.ImageInfo, error)
}

var _ ImportBackend = (*engine.Service)(nil)

// imageImport serves POST /images/create?fromSrc=-&repo=&tag=&message=
// (docker import): the rootfs tar is the body. The answer is docker's
// JSON message stream whose status is the new image's id.
func (s *Server) imageImport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if src := q.Get("fromSrc"); src != "-" {
		writeError(w, fmt.Errorf("image import from a URL (fromSrc=%s): not implemented yet: %w", src, errdefs.ErrNotImplemented))
		return
	}
	if len(q["changes"]) > 0 {
		writeError(w, fmt.Errorf("image import with changes: not implemented yet: %w", errdefs.ErrNotImplemented))
		return
	}
	if q.Get("platform") != "" && q.Get("platform") != "linux" && q.Get("platform") != "linux/amd64" {
		writeError(w, fmt.Errorf("image import for platform %q: not supported: %w", q.Get("platform"), errdefs.ErrInvalidArgument))
		return
	}
	b, ok := s.b.(ImportBackend)
	if !ok {
		writeError(w, fmt.Errorf("POST /images/create?fromSrc: not implemented yet: %w", errdefs.ErrNotImplemented))
		return
	}
	ref := ""
	if repo := q.Get("repo"); repo != "" {
		n, err := image.Normalize(withTag(repo, q.Get("tag")))
		if err != nil {
			writeError(w, fmt.Errorf("import: %w: %w", err, errdefs.ErrInvalidArgument))
			return
		}
		ref = n
	}
	if r.Body == nil {
		writeError(w, fmt.Errorf("import: empty request body: %w", errdefs.ErrInvalidArgument))
		return
	}
	info, err := b.ImportImage(r.Context(), r.Body, ref, engine.ImportOptions{Message: q.Get("message")})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(jsonstream.Message{Status: info.ID.String()})
}
