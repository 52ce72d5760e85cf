package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/container"
)

func pathStatOf(resp *http.Response) (container.PathStat, error) {
	var st container.PathStat
	raw, err := base64.StdEncoding.DecodeString(resp.Header.Get("X-Docker-Container-Path-Stat"))
	if err != nil {
		return st, fmt.Errorf("decode path stat: %w", err)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("decode path stat: %w", err)
	}
	return st, nil
}

// ContainerStatPath stats a path in a container.
func (c *Client) ContainerStatPath(ctx context.Context, id, path string) (container.PathStat, error) {
	resp, err := c.do(ctx, http.MethodHead, ctrPath(id, "archive"), url.Values{"path": {path}}, nil, "")
	if err != nil {
		return container.PathStat{}, err
	}
	resp.Body.Close()
	return pathStatOf(resp)
}

// CopyFromContainer returns a tar of a path in a container and its stat.
func (c *Client) CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, container.PathStat, error) {
	resp, err := c.do(ctx, http.MethodGet, ctrPath(id, "archive"), url.Values{"path": {path}}, nil, "")
	if err != nil {
		return nil, container.PathStat{}, err
	}
	st, err := pathStatOf(resp)
	if err != nil {
		resp.Body.Close()
		return nil, st, err
	}
	return resp.Body, st, nil
}

// CopyToContainer unpacks the tar r into the directory path of a
// container.
func (c *Client) CopyToContainer(ctx context.Context, id, path string, r io.Reader, copyUIDGID bool) error {
	q := url.Values{"path": {path}, "noOverwriteDirNonDir": {"true"}}
	if copyUIDGID {
		q.Set("copyUIDGID", "true")
	}
	resp, err := c.do(ctx, http.MethodPut, ctrPath(id, "archive"), q, r, "application/x-tar")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// ContainerExport streams a container's root file system as a tar.
func (c *Client) ContainerExport(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, ctrPath(id, "export"), nil, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ContainerChanges lists what a container changed in its file system.
func (c *Client) ContainerChanges(ctx context.Context, id string) ([]container.FilesystemChange, error) {
	var out []container.FilesystemChange
	return out, c.call(ctx, http.MethodGet, ctrPath(id, "changes"), nil, nil, &out)
}
