package storage

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// explainAuth puts a registry's 401 in words: without credentials, that
// the registry wants a login and how to give one; with them, that they
// were refused. The registry's own error stays in the chain (the engine
// classifies it). Other errors pass unchanged.
func explainAuth(r name.Reference, opts RegistryOptions, err error) error {
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		return err
	}
	host := r.Context().RegistryStr()
	if opts.Username == "" && opts.Password == "" {
		return fmt.Errorf("registry %s: authentication required, log in with `silo login %s`: %w", host, host, err)
	}
	return fmt.Errorf("registry %s: credentials of user %q refused: %w", host, opts.Username, err)
}
