// Package client is a small client of the Engine API served by silod (and
// by dockerd): net/http over a unix socket or TCP, with the moby API types
// on the wire. It is what cmd/silo uses; it keeps the CLI free of the moby
// client module's dependencies, which would slow every `silo` start.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/common"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/system"
)

// DefaultHost is where silod listens unless told otherwise.
const DefaultHost = "unix:///run/silo/silo.sock"

// Client talks to one daemon.
type Client struct {
	http *http.Client
	// base is the URL prefix of every request (http://silo or http://HOST:PORT).
	base string
	host string
}

// New returns a client for host: unix:///path or tcp://host:port.
func New(host string) (*Client, error) {
	if host == "" {
		host = DefaultHost
	}
	c := &Client{host: host}
	switch {
	case strings.HasPrefix(host, "unix://"):
		path := strings.TrimPrefix(host, "unix://")
		if path == "" {
			return nil, fmt.Errorf("host %q: no socket path", host)
		}
		tr := &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
			DisableCompression: true,
		}
		c.http, c.base = &http.Client{Transport: tr}, "http://silo"
	case strings.HasPrefix(host, "tcp://"):
		addr := strings.TrimPrefix(host, "tcp://")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("host %q: %w", host, err)
		}
		c.http, c.base = &http.Client{Transport: &http.Transport{DisableCompression: true}}, "http://"+addr
	default:
		return nil, fmt.Errorf("host %q: want unix:///path or tcp://host:port", host)
	}
	return c, nil
}

// Host returns the daemon address.
func (c *Client) Host() string { return c.host }

// Error is an answer of the daemon with an error status.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// IsNotFound reports whether err is a 404 of the daemon.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// IsUnreachable reports whether err means no daemon answers at the host.
func IsUnreachable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return false
	}
	var op *net.OpError
	return errors.As(err, &op)
}

// do sends a request and returns the response when its status is a
// success; otherwise the daemon's message as an *Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, ctype string) (*http.Response, error) {
	h := http.Header{}
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	return c.doHeader(ctx, method, path, q, body, h)
}

// doHeader is do with the request's headers given.
func (c *Client) doHeader(ctx context.Context, method, path string, q url.Values, body io.Reader, h http.Header) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header = h
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var er common.ErrorResponse
		if json.Unmarshal(raw, &er) != nil || er.Message == "" {
			er.Message = strings.TrimSpace(string(raw))
			if er.Message == "" {
				er.Message = resp.Status
			}
		}
		return nil, &Error{Status: resp.StatusCode, Message: er.Message}
	}
	return resp, nil
}

// call sends in as JSON (when not nil) and decodes the answer into out
// (when not nil).
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	ctype := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, method, path, q, body, ctype)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

// Ping checks that the daemon answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, "/_ping", nil, nil, nil)
}

// Version returns the daemon's version.
func (c *Client) Version(ctx context.Context) (system.VersionResponse, error) {
	var v system.VersionResponse
	return v, c.call(ctx, http.MethodGet, "/version", nil, nil, &v)
}

// Info returns the daemon's system information.
func (c *Client) Info(ctx context.Context) (system.Info, error) {
	var v system.Info
	return v, c.call(ctx, http.MethodGet, "/info", nil, nil, &v)
}

// ContainerCreate creates a container.
func (c *Client) ContainerCreate(ctx context.Context, name string, cfg *container.Config, host *container.HostConfig, netCfg *network.NetworkingConfig) (container.CreateResponse, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	var resp container.CreateResponse
	err := c.call(ctx, http.MethodPost, "/containers/create", q, container.CreateRequest{Config: cfg, HostConfig: host, NetworkingConfig: netCfg}, &resp)
	return resp, err
}

func ctrPath(id, op string) string {
	p := "/containers/" + url.PathEscape(id)
	if op != "" {
		p += "/" + op
	}
	return p
}

// ContainerStart starts a container.
func (c *Client) ContainerStart(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, ctrPath(id, "start"), nil, nil, nil)
}

// ContainerStop stops a container; timeout nil is the daemon's default.
func (c *Client) ContainerStop(ctx context.Context, id, signal string, timeout *int) error {
	q := url.Values{}
	if timeout != nil {
		q.Set("t", strconv.Itoa(*timeout))
	}
	if signal != "" {
		q.Set("signal", signal)
	}
	return c.call(ctx, http.MethodPost, ctrPath(id, "stop"), q, nil, nil)
}

// ContainerKill signals a container.
func (c *Client) ContainerKill(ctx context.Context, id, signal string) error {
	q := url.Values{}
	if signal != "" {
		q.Set("signal", signal)
	}
	return c.call(ctx, http.MethodPost, ctrPath(id, "kill"), q, nil, nil)
}

// ContainerRemove removes a container.
func (c *Client) ContainerRemove(ctx context.Context, id string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	return c.call(ctx, http.MethodDelete, ctrPath(id, ""), q, nil, nil)
}

// ContainerWait registers a wait and returns once the daemon has it in
// place; the result comes on the channel (exactly one value).
func (c *Client) ContainerWait(ctx context.Context, id string, cond container.WaitCondition) (<-chan WaitResult, error) {
	q := url.Values{}
	if cond != "" {
		q.Set("condition", string(cond))
	}
	resp, err := c.do(ctx, http.MethodPost, ctrPath(id, "wait"), q, nil, "")
	if err != nil {
		return nil, err
	}
	ch := make(chan WaitResult, 1)
	go func() {
		defer resp.Body.Close()
		var w container.WaitResponse
		if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
			ch <- WaitResult{Err: fmt.Errorf("wait for container %s: %w", id, err)}
			return
		}
		r := WaitResult{Code: int(w.StatusCode)}
		if w.Error != nil && w.Error.Message != "" {
			r.Err = errors.New(w.Error.Message)
		}
		ch <- r
	}()
	return ch, nil
}

// WaitResult is the end of a wait.
type WaitResult struct {
	Code int
	Err  error
}

// ContainerList lists containers.
func (c *Client) ContainerList(ctx context.Context, all, size bool, filters map[string][]string) ([]container.Summary, error) {
	q := url.Values{}
	if all {
		q.Set("all", "1")
	}
	if size {
		q.Set("size", "1")
	}
	if len(filters) > 0 {
		f := map[string]map[string]bool{}
		for k, vs := range filters {
			f[k] = map[string]bool{}
			for _, v := range vs {
				f[k][v] = true
			}
		}
		b, _ := json.Marshal(f)
		q.Set("filters", string(b))
	}
	var out []container.Summary
	return out, c.call(ctx, http.MethodGet, "/containers/json", q, nil, &out)
}

// ContainerInspect returns a container's details, decoded and raw.
func (c *Client) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, []byte, error) {
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, ctrPath(id, "json"), nil, nil, &raw); err != nil {
		return container.InspectResponse{}, nil, err
	}
	var v container.InspectResponse
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, raw, fmt.Errorf("decode container %s: %w", id, err)
	}
	return v, raw, nil
}

// ImageInspect returns an image's details, decoded and raw.
func (c *Client) ImageInspect(ctx context.Context, ref string) (image.InspectResponse, []byte, error) {
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, "/images/"+ref+"/json", nil, nil, &raw); err != nil {
		return image.InspectResponse{}, nil, err
	}
	var v image.InspectResponse
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, raw, fmt.Errorf("decode image %s: %w", ref, err)
	}
	return v, raw, nil
}

// LogsOptions select log entries.
type LogsOptions struct {
	Follow, Timestamps bool
	// Details shows each entry's attributes (the source of a captured
	// line) before it.
	Details bool
	// Tail is a number or "all" ("" is all).
	Tail string
	// Since is unix seconds or RFC 3339 ("" for none).
	Since string
}

// ContainerLogs copies a container's logs to stdout and stderr (demuxed
// unless tty) until the stream ends or ctx is done.
func (c *Client) ContainerLogs(ctx context.Context, id string, opts LogsOptions, tty bool, stdout, stderr io.Writer) error {
	body, err := c.OpenLogs(ctx, id, opts)
	if err != nil {
		return err
	}
	return CopyLogs(body, tty, stdout, stderr)
}

// OpenLogs starts a logs request and returns the stream once the daemon
// answered (so that a follow is in place before the container starts).
func (c *Client) OpenLogs(ctx context.Context, id string, opts LogsOptions) (io.ReadCloser, error) {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}}
	if opts.Follow {
		q.Set("follow", "1")
	}
	if opts.Timestamps {
		q.Set("timestamps", "1")
	}
	if opts.Details {
		q.Set("details", "1")
	}
	if opts.Tail != "" {
		q.Set("tail", opts.Tail)
	}
	if opts.Since != "" {
		q.Set("since", opts.Since)
	}
	resp, err := c.do(ctx, http.MethodGet, ctrPath(id, "logs"), q, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// CopyLogs copies a logs stream and closes it.
func CopyLogs(body io.ReadCloser, tty bool, stdout, stderr io.Writer) error {
	defer body.Close()
	var err error
	if tty {
		_, err = io.Copy(stdout, body)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, body)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// ImageList lists images.
func (c *Client) ImageList(ctx context.Context, filters map[string][]string) ([]image.Summary, error) {
	var out []image.Summary
	return out, c.call(ctx, http.MethodGet, "/images/json", filterQuery(filters), nil, &out)
}

// ImageRemove removes an image reference.
func (c *Client) ImageRemove(ctx context.Context, ref string, force bool) ([]image.DeleteResponse, error) {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	var out []image.DeleteResponse
	return out, c.call(ctx, http.MethodDelete, "/images/"+ref, q, nil, &out)
}

// ImageLoad sends a `docker save` tar and returns the daemon's messages.
func (c *Client) ImageLoad(ctx context.Context, r io.Reader) ([]string, error) {
	resp, err := c.do(ctx, http.MethodPost, "/images/load", nil, r, "application/x-tar")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readMessages(resp.Body)
}

// BuildBusybox asks the daemon to build busybox offline under ref.
func (c *Client) BuildBusybox(ctx context.Context, ref string) ([]string, error) {
	q := url.Values{}
	if ref != "" {
		q.Set("ref", ref)
	}
	resp, err := c.do(ctx, http.MethodPost, "/silo/images/busybox", q, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readMessages(resp.Body)
}

func readMessages(r io.Reader) ([]string, error) {
	var out []string
	dec := json.NewDecoder(r)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		if m.Error != nil {
			return out, errors.New(m.Error.Message)
		}
		if m.Stream != "" {
			out = append(out, strings.TrimRight(m.Stream, "\n"))
		}
	}
}

// WaitReady pings until the daemon answers or timeout passes.
func (c *Client) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
