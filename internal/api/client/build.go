package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
)

// ImageBuild sends a build context tar with the /build query q and
// returns the progress stream.
func (c *Client) ImageBuild(ctx context.Context, tar io.Reader, q url.Values) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodPost, "/build", q, tar, "application/x-tar")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ContainerCommit makes an image of container id (POST /commit) and
// returns its ID.
func (c *Client) ContainerCommit(ctx context.Context, q url.Values) (string, error) {
	var out struct {
		ID string `json:"Id"`
	}
	resp, err := c.do(ctx, http.MethodPost, "/commit", q, nil, "")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// BuildPrune empties the build cache and returns the image IDs it named.
func (c *Client) BuildPrune(ctx context.Context) ([]string, error) {
	var out struct{ CachesDeleted []string }
	if err := c.call(ctx, http.MethodPost, "/build/prune", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.CachesDeleted, nil
}
