package storage

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestExplainAuth(t *testing.T) {
	ref, err := name.ParseReference("127.0.0.1:5000/a/b:1")
	if err != nil {
		t.Fatal(err)
	}
	unauthorized := fmt.Errorf("wrapped: %w", &transport.Error{StatusCode: http.StatusUnauthorized})
	notFound := &transport.Error{StatusCode: http.StatusNotFound}
	plain := errors.New("connection refused")
	for _, tc := range []struct {
		name string
		opts RegistryOptions
		err  error
		want string // "" when err must pass unchanged
	}{
		{"401 anonymous", RegistryOptions{}, unauthorized, "registry 127.0.0.1:5000: authentication required, log in with `silo login 127.0.0.1:5000`"},
		{"401 with credentials", RegistryOptions{Username: "u", Password: "p"}, unauthorized, `registry 127.0.0.1:5000: credentials of user "u" refused`},
		{"404", RegistryOptions{}, notFound, ""},
		{"not a registry answer", RegistryOptions{}, plain, ""},
	} {
		got := explainAuth(ref, tc.opts, tc.err)
		if tc.want == "" {
			if got != tc.err {
				t.Errorf("%s: %v changed to %v", tc.name, tc.err, got)
			}
			continue
		}
		if !strings.HasPrefix(got.Error(), tc.want) {
			t.Errorf("%s: %q, want prefix %q", tc.name, got, tc.want)
		}
		var te *transport.Error
		if !errors.As(got, &te) {
			t.Errorf("%s: the registry's error left the chain", tc.name)
		}
	}
}
