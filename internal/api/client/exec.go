package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/container"
)

// ExecCreate creates an exec instance in a running container.
func (c *Client) ExecCreate(ctx context.Context, id string, req container.ExecCreateRequest) (string, error) {
	var resp container.ExecCreateResponse
	err := c.call(ctx, http.MethodPost, ctrPath(id, "exec"), nil, req, &resp)
	return resp.ID, err
}

// ExecStartDetached starts an exec instance without attaching to it (the
// attached start hijacks the connection: cmd/silo does it).
func (c *Client) ExecStartDetached(ctx context.Context, id string, tty bool) error {
	return c.call(ctx, http.MethodPost, "/exec/"+url.PathEscape(id)+"/start", nil, container.ExecStartRequest{Detach: true, Tty: tty}, nil)
}

// ExecInspect returns an exec instance's state.
func (c *Client) ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error) {
	var resp container.ExecInspectResponse
	err := c.call(ctx, http.MethodGet, "/exec/"+url.PathEscape(id)+"/json", nil, nil, &resp)
	return resp, err
}
