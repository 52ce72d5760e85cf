package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
)

// ArchiveBackend is docker cp, export and diff: a container's files;
// *engine.Service implements it.
type ArchiveBackend interface {
	StatPath(ctx context.Context, ref, path string) (container.PathStat, error)
	ArchivePath(ctx context.Context, ref, path string, head func(container.PathStat) io.Writer) error
	ExtractToDir(ctx context.Context, ref, path string, r io.Reader, opts engine.ExtractOptions) error
	Export(ctx context.Context, ref string, w io.Writer) error
	Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error)
}

var _ ArchiveBackend = (*engine.Service)(nil)

// pathStatHeader carries a PathStat, base64 JSON, as Docker.
const pathStatHeader = "X-Docker-Container-Path-Stat"

func (s *Server) archiveRoutes() {
	s.mux.HandleFunc("HEAD /containers/{id}/archive", s.archiveHead)
	s.mux.HandleFunc("GET /containers/{id}/archive", s.archiveGet)
	s.mux.HandleFunc("PUT /containers/{id}/archive", s.archivePut)
	s.mux.HandleFunc("GET /containers/{id}/export", s.containerExport)
	s.mux.HandleFunc("GET /containers/{id}/changes", s.containerChanges)
}

func (s *Server) archiveBackend(w http.ResponseWriter, r *http.Request) (ArchiveBackend, bool) {
	return optional[ArchiveBackend](s, w, r)
}

// containerExport is GET /containers/{id}/export (docker export): the
// container's root file system as a tar.
func (s *Server) containerExport(w http.ResponseWriter, r *http.Request) {
	b, ok := s.archiveBackend(w, r)
	if !ok {
		return
	}
	sw := &startedWriter{w: w, start: func() {
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
	}}
	if err := b.Export(r.Context(), r.PathValue("id"), sw); err != nil {
		if !sw.started {
			writeError(w, err)
			return
		}
		// Headers are sent: the error can only end the stream.
		s.log.Warn("export", "container", r.PathValue("id"), "err", err)
		return
	}
	sw.begin()
}

// containerChanges is GET /containers/{id}/changes (docker diff).
func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) {
	b, ok := s.archiveBackend(w, r)
	if !ok {
		return
	}
	changes, err := b.Changes(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, changes)
}

// startedWriter sends the response's headers on the first write, so that
// an error before any output can still be an error status.
type startedWriter struct {
	w       io.Writer
	start   func()
	started bool
}

// begin sends the headers once.
func (sw *startedWriter) begin() {
	if !sw.started {
		sw.started = true
		sw.start()
	}
}

// Write sends the headers before the first bytes.
func (sw *startedWriter) Write(p []byte) (int, error) {
	sw.begin()
	return sw.w.Write(p)
}

func (s *Server) archives(w http.ResponseWriter, r *http.Request) (ArchiveBackend, string, bool) {
	b, ok := s.archiveBackend(w, r)
	if !ok {
		return nil, "", false
	}
	p := r.URL.Query().Get("path")
	if p == "" {
		writeError(w, fmt.Errorf("archive: no path given: %w", errdefs.ErrInvalidArgument))
		return nil, "", false
	}
	return b, p, true
}

func setPathStat(w http.ResponseWriter, st container.PathStat) {
	raw, _ := json.Marshal(st)
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(raw))
}

func (s *Server) archiveHead(w http.ResponseWriter, r *http.Request) {
	b, p, ok := s.archives(w, r)
	if !ok {
		return
	}
	st, err := b.StatPath(r.Context(), r.PathValue("id"), p)
	if err != nil {
		writeError(w, err)
		return
	}
	setPathStat(w, st)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) archiveGet(w http.ResponseWriter, r *http.Request) {
	b, p, ok := s.archives(w, r)
	if !ok {
		return
	}
	started := false
	err := b.ArchivePath(r.Context(), r.PathValue("id"), p, func(st container.PathStat) io.Writer {
		setPathStat(w, st)
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		started = true
		return w
	})
	if err != nil {
		if !started {
			writeError(w, err)
			return
		}
		// Headers are sent: the error can only end the stream.
		s.log.Warn("archive", "container", r.PathValue("id"), "path", p, "err", err)
	}
}

func (s *Server) archivePut(w http.ResponseWriter, r *http.Request) {
	b, p, ok := s.archives(w, r)
	if !ok {
		return
	}
	opts := engine.ExtractOptions{NoOverwriteDirNonDir: boolValue(r, "noOverwriteDirNonDir"), CopyUIDGID: boolValue(r, "copyUIDGID")}
	if err := b.ExtractToDir(r.Context(), r.PathValue("id"), p, r.Body, opts); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
