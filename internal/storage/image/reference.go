package image

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/silo-containers/silo/internal/errdefs"
)

const (
	defaultDomain = "docker.io"
	legacyDomain  = "index.docker.io"
	defaultTag    = "latest"
)

// Normalize turns a user's image reference into docker's full form:
// "busybox" → "docker.io/library/busybox:latest", "localhost:5000/a" →
// "localhost:5000/a:latest"; a digest reference keeps its digest
// ("name@sha256:…", no tag added).
func Normalize(ref string) (string, error) {
	if ref == "" || len(ref) > 4096 {
		return "", fmt.Errorf("reference %q: %w", ref, errdefs.ErrInvalidArgument)
	}
	rest, dgst, hasDigest := strings.Cut(ref, "@")
	domain, remainder := defaultDomain, rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		first := rest[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			domain, remainder = first, rest[i+1:]
		}
	}
	if domain == legacyDomain {
		domain = defaultDomain
	}
	if domain == defaultDomain && !strings.Contains(remainder, "/") {
		remainder = "library/" + remainder
	}
	// A tag is a ":" after the last "/".
	hasTag := strings.LastIndexByte(remainder, ':') > strings.LastIndexByte(remainder, '/')
	if !hasTag && !hasDigest {
		remainder += ":" + defaultTag
	}
	out := domain + "/" + remainder
	if hasDigest {
		out += "@" + dgst
	}
	if _, err := name.ParseReference(out, name.StrictValidation); err != nil {
		return "", fmt.Errorf("reference %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// Familiar shortens a normalized reference for display, like docker:
// "docker.io/library/busybox:latest" → "busybox:latest".
func Familiar(ref string) string {
	s := strings.TrimPrefix(ref, defaultDomain+"/")
	if s != ref {
		s = strings.TrimPrefix(s, "library/")
	}
	return s
}

// IsLocalRegistry reports whether the reference names a registry on this
// machine (plain HTTP is used for those).
func IsLocalRegistry(ref string) bool {
	host, _, _ := strings.Cut(ref, "/")
	h := host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		h = host[:i]
	}
	return h == "localhost" || h == "[::1]" || strings.HasPrefix(h, "127.")
}
