package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	mobynet "github.com/moby/moby/api/types/network"
)

func netPath(ref, op string) string {
	p := "/networks/" + url.PathEscape(ref)
	if op != "" {
		p += "/" + op
	}
	return p
}

// filterQuery encodes docker's filters parameter.
func filterQuery(filters map[string][]string) url.Values {
	q := url.Values{}
	if len(filters) > 0 {
		b, _ := json.Marshal(filters)
		q.Set("filters", string(b))
	}
	return q
}

// NetworkList lists networks.
func (c *Client) NetworkList(ctx context.Context, filters map[string][]string) ([]mobynet.Summary, error) {
	var out []mobynet.Summary
	return out, c.call(ctx, http.MethodGet, "/networks", filterQuery(filters), nil, &out)
}

// NetworkInspect returns one network with its containers.
func (c *Client) NetworkInspect(ctx context.Context, ref string) (mobynet.Inspect, json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, netPath(ref, ""), nil, nil, &raw); err != nil {
		return mobynet.Inspect{}, nil, err
	}
	var n mobynet.Inspect
	return n, raw, json.Unmarshal(raw, &n)
}

// NetworkCreate makes a network.
func (c *Client) NetworkCreate(ctx context.Context, req mobynet.CreateRequest) (mobynet.CreateResponse, error) {
	var out mobynet.CreateResponse
	return out, c.call(ctx, http.MethodPost, "/networks/create", nil, req, &out)
}

// NetworkRemove deletes a network.
func (c *Client) NetworkRemove(ctx context.Context, ref string) error {
	return c.call(ctx, http.MethodDelete, netPath(ref, ""), nil, nil, nil)
}

// NetworkConnect joins a container to a network.
func (c *Client) NetworkConnect(ctx context.Context, ref, ctr string, es *mobynet.EndpointSettings) error {
	return c.call(ctx, http.MethodPost, netPath(ref, "connect"), nil, mobynet.ConnectRequest{Container: ctr, EndpointConfig: es}, nil)
}

// NetworkDisconnect takes a container off a network.
func (c *Client) NetworkDisconnect(ctx context.Context, ref, ctr string, force bool) error {
	return c.call(ctx, http.MethodPost, netPath(ref, "disconnect"), nil, mobynet.DisconnectRequest{Container: ctr, Force: force}, nil)
}

// NetworkPrune removes unused networks and returns their names.
func (c *Client) NetworkPrune(ctx context.Context, filters map[string][]string) ([]string, error) {
	var out mobynet.PruneReport
	return out.NetworksDeleted, c.call(ctx, http.MethodPost, "/networks/prune", filterQuery(filters), nil, &out)
}

// SetEndpointPolicies replaces a container's endpoint policies on a
// network (silo's own endpoint; body: ACLs, OutBoundNAT, QOS as JSON).
func (c *Client) SetEndpointPolicies(ctx context.Context, ctr, network string, policies json.RawMessage) error {
	return c.call(ctx, http.MethodPost, "/silo"+ctrPath(ctr, "networks/"+url.PathEscape(network)+"/policies"), nil, policies, nil)
}
