package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/silo-containers/silo/internal/build"
	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
)

// BuildBackend is what /build and /commit call; *engine.Service
// implements it.
type BuildBackend interface {
	Build(ctx context.Context, r io.Reader, opts build.Options) (string, error)
	Commit(ctx context.Context, ref string, opts engine.CommitOptions) (string, error)
	BuildPrune(ctx context.Context) ([]string, error)
}

var _ BuildBackend = (*engine.Service)(nil)

func (s *Server) builds(w http.ResponseWriter, what string) (BuildBackend, bool) {
	b, ok := s.b.(BuildBackend)
	if !ok {
		writeError(w, fmt.Errorf("%s: not implemented yet: %w", what, errdefs.ErrNotImplemented))
	}
	return b, ok
}

// buildOptions reads /build's query: t (repeated), dockerfile, buildargs
// and labels (JSON objects), target, nocache, pull, networkmode. q, rm and
// forcerm are accepted: intermediate containers are always removed, and
// q only changes what the handler streams.
func buildOptions(r *http.Request) (build.Options, error) {
	q := r.URL.Query()
	opts := build.Options{
		Dockerfile:  q.Get("dockerfile"),
		Tags:        q["t"],
		Target:      q.Get("target"),
		NoCache:     boolParam(q.Get("nocache")),
		NetworkMode: q.Get("networkmode"),
	}
	if p := q.Get("pull"); p != "" && p != "0" && p != "false" {
		opts.Pull = true
	}
	if v := q.Get("buildargs"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.BuildArgs); err != nil {
			return opts, fmt.Errorf("buildargs: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	if v := q.Get("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.Labels); err != nil {
			return opts, fmt.Errorf("labels: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	switch opts.NetworkMode {
	case "", "default", "bridge", "none":
	default:
		return opts, fmt.Errorf("networkmode %q: RUN steps use the default network or none: %w", opts.NetworkMode, errdefs.ErrNotImplemented)
	}
	if v := q.Get("remote"); v != "" {
		return opts, fmt.Errorf("remote build contexts: %w", errdefs.ErrNotImplemented)
	}
	if v := q.Get("version"); v == "2" {
		return opts, fmt.Errorf("the BuildKit builder (version=2): silo serves the classic builder; set DOCKER_BUILDKIT=0: %w", errdefs.ErrNotImplemented)
	}
	return opts, nil
}

func boolParam(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// streamWriterFunc turns progress text into {"stream": …} messages.
type streamWriterFunc func(string)

func (f streamWriterFunc) Write(p []byte) (int, error) {
	f(string(p))
	return len(p), nil
}

// build serves POST /build: the body is the context tar; the answer is
// the classic JSON message stream ending in {"aux":{"ID":…}} or an error
// line, as the docker CLI's legacy builder reads it.
func (s *Server) build(w http.ResponseWriter, r *http.Request) {
	b, ok := s.builds(w, "build")
	if !ok {
		return
	}
	opts, err := buildOptions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	quiet := boolParam(r.URL.Query().Get("q"))
	p := newProgressStream(w)
	opts.Out = streamWriterFunc(func(s string) {
		if !quiet {
			p.send(jsonstream.Message{Stream: s})
		}
	})
	// Headers go before the (possibly long) build, so clients see a
	// live stream; errors then come as error lines. The context is still
	// being read then: HTTP/1 needs full duplex for that.
	_ = http.NewResponseController(w).EnableFullDuplex()
	p.mu.Lock()
	p.startLocked()
	p.flushLocked()
	p.mu.Unlock()
	id, err := b.Build(r.Context(), r.Body, opts)
	if err != nil {
		if code, ok := build.ExitCode(err); ok {
			msg := err.Error()
			p.mu.Lock()
			_ = p.enc.Encode(wireMessage{Message: jsonstream.Message{Error: &jsonstream.Error{Code: code, Message: msg}}, ErrorMessage: msg})
			p.flushLocked()
			p.mu.Unlock()
			return
		}
		p.fail(err)
		return
	}
	aux, _ := json.Marshal(map[string]string{"ID": id})
	raw := json.RawMessage(aux)
	p.send(jsonstream.Message{Aux: &raw})
	if quiet {
		p.send(jsonstream.Message{Stream: id + "\n"})
	}
}

// commit serves POST /commit?container=&repo=&tag=&comment=&author= with
// an optional container config as the body.
func (s *Server) commit(w http.ResponseWriter, r *http.Request) {
	b, ok := s.builds(w, "commit")
	if !ok {
		return
	}
	q := r.URL.Query()
	opts := engine.CommitOptions{Comment: q.Get("comment"), Author: q.Get("author"), Changes: q["changes"]}
	if repo := q.Get("repo"); repo != "" {
		opts.Reference = withTag(repo, q.Get("tag"))
	}
	if r.ContentLength != 0 && r.Body != nil {
		var cfg container.Config
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&cfg); err != nil && err != io.EOF {
			writeError(w, fmt.Errorf("commit: config: %v: %w", err, errdefs.ErrInvalidArgument))
			return
		}
		opts.Config = &cfg
	}
	id, err := b.Commit(r.Context(), q.Get("container"), opts)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"Id": id})
}

// buildPrune serves POST /build/prune: the classic builder's cache is
// emptied (filters and keep-storage are not supported: all goes).
func (s *Server) buildPrune(w http.ResponseWriter, r *http.Request) {
	b, ok := s.builds(w, "build prune")
	if !ok {
		return
	}
	q := r.URL.Query()
	if q.Get("filters") != "" && q.Get("filters") != "{}" || q.Get("keep-storage") != "" {
		writeError(w, fmt.Errorf("build prune: filters and keep-storage: %w", errdefs.ErrNotImplemented))
		return
	}
	ids, err := b.BuildPrune(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if ids == nil {
		ids = []string{}
	}
	// Space comes back when the store's GC has run; it is not known here.
	writeJSON(w, http.StatusOK, map[string]any{"CachesDeleted": ids, "SpaceReclaimed": 0})
}
