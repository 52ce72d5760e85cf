package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
)

// ImageImport sends a rootfs tarball (docker import) to be tagged ref
// (REPOSITORY[:TAG]) and returns the new image's id.
func (c *Client) ImageImport(ctx context.Context, rootfs io.Reader, ref, message string) (string, error) {
	q := url.Values{"fromSrc": {"-"}}
	if ref != "" {
		q.Set("repo", ref)
	}
	if message != "" {
		q.Set("message", message)
	}
	resp, err := c.do(ctx, http.MethodPost, "/images/create", q, rootfs, "application/x-tar")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	id := ""
	err = ReadProgress(resp.Body, func(m ProgressMessage) {
		if m.Status != "" {
			id = m.Status
		}
	})
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", errors.New("import: the daemon answered no image id")
	}
	return id, nil
}
