package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Host is the address to contact for a registry key (Docker Hub's key
// is a URL; the others are hosts already).
func Host(registry string) string {
	if k := Key(registry); k != hubKey {
		return k
	}
	return "index.docker.io"
}

// Check asks registry whether it accepts c: nil when it does; an error
// wrapping errdefs.ErrForbidden when it answers 401 (wrong username or
// password); another error when it cannot be reached or answers
// otherwise. Registries on loopback addresses are reached over plain
// HTTP, as pulls do. rt nil is http.DefaultTransport.
func Check(ctx context.Context, registry string, c Credentials, rt http.RoundTripper) error {
	host := Host(registry)
	if c.Username == "" || c.Password == "" {
		return fmt.Errorf("login %s: username and password are required: %w", host, errdefs.ErrInvalidArgument)
	}
	reg, err := name.NewRegistry(host)
	if err != nil {
		return fmt.Errorf("login %s: %v: %w", host, err, errdefs.ErrInvalidArgument)
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	// For a bearer challenge this already fetches a token with c: a
	// registry that refuses them fails here.
	tr, err := transport.NewWithContext(ctx, reg, &authn.Basic{Username: c.Username, Password: c.Password}, rt, nil)
	if err != nil {
		return loginError(host, err)
	}
	// The scheme is rewritten to the one the ping found.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("login %s: incorrect username or password: %w", host, errdefs.ErrForbidden)
	}
	return fmt.Errorf("login %s: GET /v2/ answered %s", host, resp.Status)
}

func loginError(host string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("login %s: incorrect username or password: %w", host, errdefs.ErrForbidden)
	}
	return fmt.Errorf("login %s: %w", host, err)
}
