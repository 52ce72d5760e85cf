package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/jsonstream"
)

// ProgressMessage is one line of docker's JSON progress stream (pull,
// push), with the legacy top-level "error" string.
type ProgressMessage struct {
	jsonstream.Message
	ErrorMessage string `json:"error,omitempty"`
}

// Err returns the error the message reports, if any.
func (m *ProgressMessage) Err() error {
	if m.Error != nil && m.Error.Message != "" {
		return errors.New(m.Error.Message)
	}
	if m.ErrorMessage != "" {
		return errors.New(m.ErrorMessage)
	}
	return nil
}

// ReadProgress decodes a progress stream, calling fn for every message,
// and returns the first error the stream reports.
func ReadProgress(r io.Reader, fn func(ProgressMessage)) error {
	dec := json.NewDecoder(r)
	for {
		var m ProgressMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := m.Err(); err != nil {
			return err
		}
		fn(m)
	}
}

// ImagePull asks the daemon to pull ref and returns its progress stream.
// Registries are reached anonymously.
func (c *Client) ImagePull(ctx context.Context, ref string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodPost, "/images/create", url.Values{"fromImage": {ref}}, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImagePush asks the daemon to push ref and returns its progress stream.
func (c *Client) ImagePush(ctx context.Context, ref string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodPost, "/images/"+ref+"/push", nil, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImageTag gives image src the reference dst.
func (c *Client) ImageTag(ctx context.Context, src, dst string) error {
	return c.call(ctx, http.MethodPost, "/images/"+src+"/tag", url.Values{"repo": {dst}}, nil, nil)
}

// ImageSave returns the `docker save` tar of refs.
func (c *Client) ImageSave(ctx context.Context, refs []string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, "/images/get", url.Values{"names": refs}, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
