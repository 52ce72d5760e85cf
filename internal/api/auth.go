package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/registry"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
)

// AuthBackend checks registry credentials (*engine.Service implements it).
type AuthBackend interface {
	Login(ctx context.Context, server, username, password string) error
}

var _ AuthBackend = (*engine.Service)(nil)

// maxAuthBody bounds a login request.
const maxAuthBody = 64 << 10

// auth is POST /auth: docker login. The daemon checks the credentials
// with the registry and keeps nothing; the docker CLI stores them.
func (s *Server) auth(w http.ResponseWriter, r *http.Request) {
	b, ok := optional[AuthBackend](s, w, r)
	if !ok {
		return
	}
	var req registry.AuthConfig
	if err := decodeBody(r, &req, maxAuthBody); err != nil {
		writeError(w, err)
		return
	}
	if req.ServerAddress == "" {
		writeError(w, fmt.Errorf("login: no server address: %w", errdefs.ErrInvalidArgument))
		return
	}
	if err := b.Login(r.Context(), req.ServerAddress, req.Username, req.Password); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, registry.AuthResponse{Status: "Login Succeeded"})
}
