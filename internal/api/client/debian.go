package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DebianOptions are what BuildDebian asks for; empty fields take the
// daemon's defaults (bookworm, the host's Debian mirror, debian:SUITE).
type DebianOptions struct {
	Suite   string
	Include []string
	Mirror  string
	Ref     string
}

// BuildDebian asks the daemon to make a Debian image with debootstrap and
// returns the progress stream (debootstrap's output, then "Loaded image:
// REF"). Closing it, or ending ctx, stops the build.
func (c *Client) BuildDebian(ctx context.Context, o DebianOptions) (io.ReadCloser, error) {
	q := url.Values{}
	for k, v := range map[string]string{"suite": o.Suite, "mirror": o.Mirror, "ref": o.Ref, "include": strings.Join(o.Include, ",")} {
		if v != "" {
			q.Set(k, v)
		}
	}
	resp, err := c.do(ctx, http.MethodPost, "/silo/images/debian", q, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
