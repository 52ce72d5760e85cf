package engine

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestRegistryError(t *testing.T) {
	notFound := &transport.Error{StatusCode: http.StatusNotFound}
	unknown := &transport.Error{StatusCode: http.StatusBadRequest, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode}}}
	denied := &transport.Error{StatusCode: http.StatusUnauthorized}
	other := errors.New("dial tcp: connection refused")
	for _, c := range []struct {
		err  error
		want error
	}{{notFound, errdefs.ErrNotFound}, {unknown, errdefs.ErrNotFound}, {denied, errdefs.ErrInvalidArgument}} {
		if got := registryError(c.err); !errors.Is(got, c.want) || !errors.Is(got, c.err) {
			t.Errorf("registryError(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if got := registryError(other); got != other {
		t.Errorf("registryError(%v) = %v", other, got)
	}
}
