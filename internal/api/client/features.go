package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
)

// VolumeCreate creates a volume (or returns the existing one).
func (c *Client) VolumeCreate(ctx context.Context, req volume.CreateRequest) (volume.Volume, error) {
	var v volume.Volume
	return v, c.call(ctx, http.MethodPost, "/volumes/create", nil, req, &v)
}

// VolumeList lists volumes.
func (c *Client) VolumeList(ctx context.Context, filters map[string][]string) (volume.ListResponse, error) {
	var out volume.ListResponse
	return out, c.call(ctx, http.MethodGet, "/volumes", filterQuery(filters), nil, &out)
}

// VolumeInspect returns a volume, decoded and raw.
func (c *Client) VolumeInspect(ctx context.Context, name string) (volume.Volume, []byte, error) {
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, "/volumes/"+url.PathEscape(name), nil, nil, &raw); err != nil {
		return volume.Volume{}, nil, err
	}
	var v volume.Volume
	err := json.Unmarshal(raw, &v)
	return v, raw, err
}

// VolumeRemove removes a volume.
func (c *Client) VolumeRemove(ctx context.Context, name string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	return c.call(ctx, http.MethodDelete, "/volumes/"+url.PathEscape(name), q, nil, nil)
}

// VolumePrune removes unused volumes.
func (c *Client) VolumePrune(ctx context.Context, filters map[string][]string) (volume.PruneReport, error) {
	var out volume.PruneReport
	return out, c.call(ctx, http.MethodPost, "/volumes/prune", filterQuery(filters), nil, &out)
}

// ContainerRemoveVolumes removes a container and its anonymous volumes
// (rm -v).
func (c *Client) ContainerRemoveVolumes(ctx context.Context, id string, force bool) error {
	q := url.Values{"v": {"1"}}
	if force {
		q.Set("force", "1")
	}
	return c.call(ctx, http.MethodDelete, ctrPath(id, ""), q, nil, nil)
}

// ContainerPause freezes a container.
func (c *Client) ContainerPause(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, ctrPath(id, "pause"), nil, nil, nil)
}

// ContainerUnpause thaws a container.
func (c *Client) ContainerUnpause(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, ctrPath(id, "unpause"), nil, nil, nil)
}

// ContainerRestart restarts a container; timeout nil is the daemon's
// default.
func (c *Client) ContainerRestart(ctx context.Context, id, signal string, timeout *int) error {
	q := url.Values{}
	if timeout != nil {
		q.Set("t", strconv.Itoa(*timeout))
	}
	if signal != "" {
		q.Set("signal", signal)
	}
	return c.call(ctx, http.MethodPost, ctrPath(id, "restart"), q, nil, nil)
}

// ContainerRename renames a container.
func (c *Client) ContainerRename(ctx context.Context, id, name string) error {
	return c.call(ctx, http.MethodPost, ctrPath(id, "rename"), url.Values{"name": {name}}, nil, nil)
}

// ContainerUpdate changes a container's limits and restart policy.
func (c *Client) ContainerUpdate(ctx context.Context, id string, upd container.UpdateConfig) (container.UpdateResponse, error) {
	var out container.UpdateResponse
	return out, c.call(ctx, http.MethodPost, ctrPath(id, "update"), nil, upd, &out)
}

// ContainerTop lists a container's processes.
func (c *Client) ContainerTop(ctx context.Context, id, psArgs string) (container.TopResponse, error) {
	q := url.Values{}
	if psArgs != "" {
		q.Set("ps_args", psArgs)
	}
	var out container.TopResponse
	return out, c.call(ctx, http.MethodGet, ctrPath(id, "top"), q, nil, &out)
}

// ContainerStats opens a stats stream (one document per sample), or a
// single answer without stream.
func (c *Client) ContainerStats(ctx context.Context, id string, stream bool) (*json.Decoder, io.Closer, error) {
	q := url.Values{"stream": {strconv.FormatBool(stream)}}
	resp, err := c.do(ctx, http.MethodGet, ctrPath(id, "stats"), q, nil, "")
	if err != nil {
		return nil, nil, err
	}
	return json.NewDecoder(resp.Body), resp.Body, nil
}

// ContainersPrune removes stopped containers.
func (c *Client) ContainersPrune(ctx context.Context, filters map[string][]string) (container.PruneReport, error) {
	var out container.PruneReport
	return out, c.call(ctx, http.MethodPost, "/containers/prune", filterQuery(filters), nil, &out)
}

// ImagesPrune removes dangling (or, with dangling=false, unused) images.
func (c *Client) ImagesPrune(ctx context.Context, filters map[string][]string) (image.PruneReport, error) {
	var out image.PruneReport
	return out, c.call(ctx, http.MethodPost, "/images/prune", filterQuery(filters), nil, &out)
}

// ImageHistory returns an image's history, newest first.
func (c *Client) ImageHistory(ctx context.Context, ref string) ([]image.HistoryResponseItem, error) {
	var out []image.HistoryResponseItem
	return out, c.call(ctx, http.MethodGet, "/images/"+ref+"/history", nil, nil, &out)
}

// EventsOptions select events.
type EventsOptions struct {
	// Since and Until are unix seconds or RFC 3339 ("" for none).
	Since, Until string
	Filters      map[string][]string
}

// Events streams events to fn until the stream ends, fn returns an
// error or ctx ends.
func (c *Client) Events(ctx context.Context, opts EventsOptions, fn func(events.Message) error) error {
	q := filterQuery(opts.Filters)
	if opts.Since != "" {
		q.Set("since", opts.Since)
	}
	if opts.Until != "" {
		q.Set("until", opts.Until)
	}
	resp, err := c.do(ctx, http.MethodGet, "/events", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m events.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read events: %w", err)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
}

// DiskUsage returns what `system df` shows.
func (c *Client) DiskUsage(ctx context.Context) (system.DiskUsage, error) {
	var out system.DiskUsage
	return out, c.call(ctx, http.MethodGet, "/system/df", nil, nil, &out)
}
