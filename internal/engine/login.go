package engine

import (
	"context"

	"github.com/silo-containers/silo/internal/storage/auth"
)

// Login checks credentials against a registry (docker login's POST /auth):
// nil when the registry accepts them. Nothing is stored: clients keep
// their credentials and send them with each pull and push.
func (s *Service) Login(ctx context.Context, server, username, password string) error {
	return auth.Check(ctx, server, auth.Credentials{Username: username, Password: password}, nil)
}
