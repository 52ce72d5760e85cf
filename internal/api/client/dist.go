package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
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

// EncodeAuth makes docker's X-Registry-Auth header for credentials of
// one registry: base64url of a registry.AuthConfig.
func EncodeAuth(username, password, server string) (string, error) {
	b, err := json.Marshal(registry.AuthConfig{Username: username, Password: password, ServerAddress: server})
	if err != nil {
		return "", fmt.Errorf("encode registry credentials: %w", err)
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// authHeader carries auth (from EncodeAuth) as X-Registry-Auth; empty
// auth sends none, and the daemon reaches the registry anonymously.
func authHeader(auth string) http.Header {
	h := http.Header{}
	if auth != "" {
		h.Set("X-Registry-Auth", auth)
	}
	return h
}

// ImagePull asks the daemon to pull ref with the credentials auth (from
// EncodeAuth, or empty) and returns its progress stream.
func (c *Client) ImagePull(ctx context.Context, ref, auth string) (io.ReadCloser, error) {
	resp, err := c.doHeader(ctx, http.MethodPost, "/images/create", url.Values{"fromImage": {ref}}, nil, authHeader(auth))
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImagePush asks the daemon to push ref with the credentials auth (from
// EncodeAuth, or empty) and returns its progress stream.
func (c *Client) ImagePush(ctx context.Context, ref, auth string) (io.ReadCloser, error) {
	resp, err := c.doHeader(ctx, http.MethodPost, "/images/"+ref+"/push", nil, nil, authHeader(auth))
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
