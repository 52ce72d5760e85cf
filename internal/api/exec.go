package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
)

// ExecBackend is docker exec; *engine.Service implements it. It is apart
// from Backend so that a backend without exec answers 501.
type ExecBackend interface {
	ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error)
	ExecStart(ctx context.Context, id string, detach bool) (bool, engine.Attachment, error)
	ExecResize(ctx context.Context, id string, height, width uint16) error
	ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error)
}

var _ ExecBackend = (*engine.Service)(nil)

func (s *Server) execBackend(w http.ResponseWriter) (ExecBackend, bool) {
	b, ok := s.b.(ExecBackend)
	if !ok {
		writeError(w, fmt.Errorf("exec: not implemented yet: %w", errdefs.ErrNotImplemented))
	}
	return b, ok
}

// containerExec is POST /containers/{id}/exec (ExecCreate).
func (s *Server) containerExec(w http.ResponseWriter, r *http.Request) {
	b, ok := s.execBackend(w)
	if !ok {
		return
	}
	var req container.ExecCreateRequest
	if err := decodeBody(r, &req, maxCreateBody); err != nil {
		writeError(w, err)
		return
	}
	id, err := b.ExecCreate(r.Context(), r.PathValue("id"), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
}

// execStart is POST /exec/{id}/start: with Detach, 200 once the process
// runs; otherwise the connection is hijacked as for attach (101 UPGRADED
// or 200, raw or multiplexed stream) and carries the process's stdio
// until its output ends, after its exit code is recorded.
func (s *Server) execStart(w http.ResponseWriter, r *http.Request) {
	b, ok := s.execBackend(w)
	if !ok {
		return
	}
	// No body is a foreground start.
	var req container.ExecStartRequest
	if raw, err := io.ReadAll(io.LimitReader(r.Body, maxCreateBody)); err != nil {
		writeError(w, err)
		return
	} else if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &req); err != nil {
			writeError(w, fmt.Errorf("malformed request body: %v: %w", err, errdefs.ErrInvalidArgument))
			return
		}
	}
	id := r.PathValue("id")
	// The process outlives a detached request.
	tty, a, err := b.ExecStart(r.Context(), id, req.Detach)
	if err != nil {
		writeError(w, err)
		return
	}
	if req.Detach || a == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	defer a.Close()
	conn, brw, err := hijackStream(w, r, tty)
	if err != nil {
		return
	}
	defer conn.Close()
	if err := brw.Flush(); err != nil {
		return
	}
	info, _ := b.ExecInspect(r.Context(), id)
	copyAttach(conn, hijackedInput(conn, brw), a, info.OpenStdin, false)
}

// execResize is POST /exec/{id}/resize?h=&w=.
func (s *Server) execResize(w http.ResponseWriter, r *http.Request) {
	b, ok := s.execBackend(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	h, herr := strconv.ParseUint(q.Get("h"), 10, 16)
	wd, werr := strconv.ParseUint(q.Get("w"), 10, 16)
	if herr != nil || werr != nil {
		writeError(w, fmt.Errorf("resize: h and w must be numbers from 0 to 65535: %w", errdefs.ErrInvalidArgument))
		return
	}
	if err := b.ExecResize(r.Context(), r.PathValue("id"), uint16(h), uint16(wd)); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// execInspect is GET /exec/{id}/json.
func (s *Server) execInspect(w http.ResponseWriter, r *http.Request) {
	b, ok := s.execBackend(w)
	if !ok {
		return
	}
	info, err := b.ExecInspect(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}
