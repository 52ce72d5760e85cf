package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/baseimage"
)

// DebianBackend builds Debian base images with debootstrap;
// *engine.Service implements it.
type DebianBackend interface {
	BuildDebian(ctx context.Context, opts baseimage.DebianOptions) (string, error)
}

var _ DebianBackend = (*engine.Service)(nil)

// debianOptions reads the query of POST /silo/images/debian: suite,
// include (comma-separated, may repeat), mirror and ref.
func debianOptions(r *http.Request) baseimage.DebianOptions {
	q := r.URL.Query()
	opts := baseimage.DebianOptions{Suite: q.Get("suite"), Mirror: q.Get("mirror"), Ref: q.Get("ref")}
	for _, v := range q["include"] {
		opts.Include = append(opts.Include, strings.Split(v, ",")...)
	}
	if opts.Suite == "" {
		opts.Suite = baseimage.DefaultSuite
	}
	if opts.Ref == "" {
		opts.Ref = "debian:" + opts.Suite
	}
	return opts
}

// imageDebian builds a Debian image (default debian:bookworm) with
// debootstrap and streams its output as {"stream": …} messages; the last
// one names the image. Errors before the first line are HTTP errors
// (a bad suite is 400, no debootstrap 501), later ones error lines. The
// request's context ends the build when the client goes away.
func (s *Server) imageDebian(w http.ResponseWriter, r *http.Request) {
	b, ok := s.b.(DebianBackend)
	if !ok {
		writeError(w, fmt.Errorf("build debian: %w", errdefs.ErrNotImplemented))
		return
	}
	opts := debianOptions(r)
	p := newProgressStream(w)
	opts.Progress = streamWriterFunc(func(s string) { p.send(jsonstream.Message{Stream: s}) })
	id, err := b.BuildDebian(r.Context(), opts)
	if err != nil {
		p.fail(err)
		return
	}
	p.send(jsonstream.Message{Stream: "Loaded image: " + opts.Ref + "\n", ID: id})
}
