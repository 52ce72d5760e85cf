package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
)

// networks returns the network service or an error saying there is none.
func (s *Service) networks() (Networks, error) {
	if s.cfg.Networks == nil {
		return nil, fmt.Errorf("networks: this daemon runs without the network service: %w", errdefs.ErrNotImplemented)
	}
	return s.cfg.Networks, nil
}

// NetworkList returns the networks as `docker network ls` lists them.
// Filters: name (substring), id (prefix), driver, label, type
// (builtin/custom).
func (s *Service) NetworkList(ctx context.Context, f Filters) ([]mobynet.Summary, error) {
	ns, err := s.networks()
	if err != nil {
		return nil, err
	}
	match, err := compileNetworkFilters(f)
	if err != nil {
		return nil, err
	}
	all, err := ns.Networks(ctx)
	if err != nil {
		return nil, err
	}
	out := []mobynet.Summary{}
	for _, n := range all {
		if match(n) {
			out = append(out, mobynet.Summary{Network: mobyNetwork(n)})
		}
	}
	return out, nil
}

// builtinNetwork reports whether a network is one docker calls predefined.
func builtinNetwork(n *network.Network) bool {
	return n.Default || n.Type == network.None || n.Type == network.Host
}

func compileNetworkFilters(f Filters) (func(*network.Network) bool, error) {
	var preds []func(*network.Network) bool
	for key, vals := range f {
		if len(vals) == 0 {
			continue
		}
		switch key {
		case "name":
			preds = append(preds, func(n *network.Network) bool {
				return slices.ContainsFunc(vals, func(v string) bool { return strings.Contains(n.Name, v) })
			})
		case "id":
			preds = append(preds, func(n *network.Network) bool {
				return slices.ContainsFunc(vals, func(v string) bool { return strings.HasPrefix(n.ID, v) })
			})
		case "driver":
			preds = append(preds, func(n *network.Network) bool { return slices.Contains(vals, string(n.Type)) })
		case "label":
			preds = append(preds, func(n *network.Network) bool {
				return slices.ContainsFunc(vals, func(v string) bool {
					k, want, hasValue := strings.Cut(v, "=")
					got, ok := n.Labels[k]
					return ok && (!hasValue || got == want)
				})
			})
		case "type":
			for _, v := range vals {
				if v != "builtin" && v != "custom" {
					return nil, fmt.Errorf("invalid filter 'type=%s': want builtin or custom: %w", v, errdefs.ErrInvalidArgument)
				}
			}
			preds = append(preds, func(n *network.Network) bool {
				return slices.Contains(vals, map[bool]string{true: "builtin", false: "custom"}[builtinNetwork(n)])
			})
		case "scope":
			preds = append(preds, func(*network.Network) bool { return slices.Contains(vals, "local") })
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", key, errdefs.ErrInvalidArgument)
		}
	}
	return func(n *network.Network) bool {
		for _, p := range preds {
			if !p(n) {
				return false
			}
		}
		return true
	}, nil
}

// mobyNetwork is a network in docker's shape.
func mobyNetwork(n *network.Network) mobynet.Network {
	out := mobynet.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: string(n.Type),
		EnableIPv4: n.Type != network.None && n.Type != network.Host, EnableIPv6: n.EnableIPv6,
		IPAM:     mobynet.IPAM{Driver: "default", Options: map[string]string{}, Config: []mobynet.IPAMConfig{}},
		Internal: n.Internal || n.Type == network.Internal, Attachable: true,
		Options: maps.Clone(n.Options), Labels: maps.Clone(n.Labels),
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for _, sn := range n.Subnets {
		out.IPAM.Config = append(out.IPAM.Config, mobynet.IPAMConfig{Subnet: sn.Prefix, Gateway: sn.Gateway, IPRange: sn.IPRange})
	}
	return out
}

// NetworkDetail is a network as `network inspect` shows it: docker's
// shape, plus the HNS object (type, subnets with gateways, MAC pool, DNS,
// policies, host interface) and its endpoint count, as Get-HnsNetwork
// shows them. The docker CLI ignores the extra field.
type NetworkDetail struct {
	mobynet.Inspect
	HNS *HNSNetwork `json:"Hns"`
}

// HNSNetwork is the network record with the number of its live endpoints.
type HNSNetwork struct {
	*network.Network
	EndpointCount int `json:"EndpointCount"`
}

// NetworkInspect returns a network with the containers attached to it.
func (s *Service) NetworkInspect(ctx context.Context, ref string) (NetworkDetail, error) {
	n, err := s.network(ctx, ref)
	if err != nil {
		return NetworkDetail{}, err
	}
	out := mobynet.Inspect{Network: mobyNetwork(n), Containers: map[string]mobynet.EndpointResource{}}
	detail := NetworkDetail{HNS: &HNSNetwork{Network: n}}
	for _, e := range s.sortedEntries() {
		c := s.snapshot(e)
		if c.Net == nil || !c.State.Running() {
			continue
		}
		for _, ep := range c.Net.Endpoints {
			if ep.NetworkID != n.ID {
				continue
			}
			res := mobynet.EndpointResource{Name: c.Name, EndpointID: ep.ID}
			if mac, err := net.ParseMAC(ep.MAC); err == nil {
				res.MacAddress = mobynet.HardwareAddr(mac)
			}
			for _, a := range ep.Addresses {
				if a.Addr().Is4() {
					res.IPv4Address = a
				} else {
					res.IPv6Address = a
				}
			}
			out.Containers[c.ID] = res
			detail.HNS.EndpointCount++
		}
	}
	detail.Inspect = out
	return detail, nil
}

// network resolves a network reference.
func (s *Service) network(ctx context.Context, ref string) (*network.Network, error) {
	ns, err := s.networks()
	if err != nil {
		return nil, err
	}
	return ns.Network(ctx, ref)
}

// PoliciesOption is the driver option that carries a network's HNS
// policies as JSON (`silo network create --policy`, or docker's -o): the
// Docker API has no field for them.
const PoliciesOption = "silo.policies"

// NetworkCreate makes a network from docker's request. Driver names:
// docker's "bridge" is nat; the HNS names (nat, transparent, l2bridge,
// l2tunnel, overlay, internal) are silo's own.
func (s *Service) NetworkCreate(ctx context.Context, req mobynet.CreateRequest) (mobynet.CreateResponse, error) {
	ns, err := s.networks()
	if err != nil {
		return mobynet.CreateResponse{}, err
	}
	if req.Name == "" {
		return mobynet.CreateResponse{}, fmt.Errorf("create network: a name is required: %w", errdefs.ErrInvalidArgument)
	}
	if req.Scope != "" && req.Scope != "local" {
		return mobynet.CreateResponse{}, fmt.Errorf("create network %s: scope %q: only local networks exist: %w", req.Name, req.Scope, errdefs.ErrNotImplemented)
	}
	if req.ConfigOnly || req.ConfigFrom != nil || req.Ingress {
		return mobynet.CreateResponse{}, fmt.Errorf("create network %s: config-only and ingress networks are swarm features: %w", req.Name, errdefs.ErrNotImplemented)
	}
	typ := network.Type(req.Driver)
	switch req.Driver {
	case "", "bridge":
		typ = network.NAT
	case "null":
		typ = network.None
	}
	creq := network.CreateNetworkRequest{
		Name: req.Name, Type: typ, Options: maps.Clone(req.Options), Labels: req.Labels, Internal: req.Internal,
		EnableIPv6: req.EnableIPv6 != nil && *req.EnableIPv6,
	}
	if raw, ok := creq.Options[PoliciesOption]; ok {
		delete(creq.Options, PoliciesOption)
		if err := json.Unmarshal([]byte(raw), &creq.Policies); err != nil {
			return mobynet.CreateResponse{}, fmt.Errorf("create network %s: option %s: want a JSON list of HNS policies: %v: %w",
				req.Name, PoliciesOption, err, errdefs.ErrInvalidArgument)
		}
	}
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return mobynet.CreateResponse{}, fmt.Errorf("create network %s: IPAM driver %q: only the default exists: %w", req.Name, req.IPAM.Driver, errdefs.ErrNotImplemented)
		}
		for _, c := range req.IPAM.Config {
			if !c.Subnet.IsValid() {
				return mobynet.CreateResponse{}, fmt.Errorf("create network %s: an IPAM entry without a subnet: %w", req.Name, errdefs.ErrInvalidArgument)
			}
			creq.Subnets = append(creq.Subnets, network.Subnet{Prefix: c.Subnet, Gateway: c.Gateway, IPRange: c.IPRange})
		}
	}
	n, err := ns.CreateNetwork(ctx, creq)
	if err != nil {
		return mobynet.CreateResponse{}, err
	}
	return mobynet.CreateResponse{ID: n.ID}, nil
}

// NetworkRemove deletes a network no container uses.
func (s *Service) NetworkRemove(ctx context.Context, ref string) error {
	n, err := s.network(ctx, ref)
	if err != nil {
		return err
	}
	if builtinNetwork(n) {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.Name, errdefs.ErrForbidden)
	}
	if users := s.networkUsers(n); len(users) > 0 {
		return fmt.Errorf("error while removing network: network %s has active endpoints (containers %s): %w",
			n.Name, strings.Join(users, ", "), errdefs.ErrForbidden)
	}
	return s.cfg.Networks.RemoveNetwork(ctx, n.ID)
}

// networkUsers are the names of the containers (running or not) that
// join n.
func (s *Service) networkUsers(n *network.Network) []string {
	var users []string
	for _, e := range s.sortedEntries() {
		c := s.snapshot(e)
		for _, es := range c.NetworkingConfig {
			if es != nil && es.NetworkID == n.ID {
				users = append(users, c.Name)
			}
		}
	}
	return users
}

// NetworkPrune removes the user's networks no container uses.
func (s *Service) NetworkPrune(ctx context.Context, f Filters) ([]string, error) {
	for k := range f {
		if k != "label" {
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	match, err := compileNetworkFilters(Filters{"label": f["label"]})
	if err != nil {
		return nil, err
	}
	list, err := s.cfg.Networks.Networks(ctx)
	if err != nil {
		return nil, err
	}
	deleted := []string{}
	for _, n := range list {
		if builtinNetwork(n) || !match(n) || len(s.networkUsers(n)) > 0 {
			continue
		}
		if err := s.cfg.Networks.RemoveNetwork(ctx, n.ID); err != nil {
			return deleted, err
		}
		deleted = append(deleted, n.Name)
	}
	return deleted, nil
}

// NetworkConnect joins a container to another network: recorded for the
// next start, and attached at once when the container runs.
func (s *Service) NetworkConnect(ctx context.Context, ref, ctrRef string, es *mobynet.EndpointSettings) error {
	n, err := s.network(ctx, ref)
	if err != nil {
		return err
	}
	if n.Type == network.None || n.Type == network.Host {
		return fmt.Errorf("connect to network %s: containers cannot join a %s network: %w", n.Name, n.Type, errdefs.ErrForbidden)
	}
	e, err := s.lookup(ctrRef)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	c := s.snapshot(e)
	if c.Net == nil {
		return fmt.Errorf("connect container %s to %s: a container in network mode %q cannot join networks: %w",
			c.Name, n.Name, c.HostConfig.NetworkMode, errdefs.ErrForbidden)
	}
	if _, ok := c.NetworkingConfig[n.Name]; ok {
		return fmt.Errorf("container %s is already connected to network %s: %w", c.Name, n.Name, errdefs.ErrForbidden)
	}
	if es == nil {
		es = &mobynet.EndpointSettings{}
	}
	es = es.Copy()
	es.NetworkID = n.ID
	var ep *network.Endpoint
	if c.State.Running() {
		req := network.AttachRequest{Namespace: c.ID, Network: n.ID, ContainerID: c.ID, Name: c.Name,
			IfName: "eth" + strconv.Itoa(len(c.NetworkingConfig)), Aliases: es.Aliases}
		if es.IPAMConfig != nil {
			req.IP = es.IPAMConfig.IPv4Address
		}
		pol, err := endpointPolicies(es)
		if err != nil {
			return err
		}
		req.ACLs, req.OutboundNAT, req.QoS = pol.ACLs, pol.OutboundNAT, pol.QoS
		if ep, err = s.cfg.Networks.Attach(ctx, req); err != nil {
			return fmt.Errorf("connect container %s to %s: %w", c.Name, n.Name, err)
		}
	}
	err = s.setState(e, func(c *Container) {
		c.NetworkingConfig = maps.Clone(c.NetworkingConfig)
		c.NetworkingConfig[n.Name] = es
		if ep != nil {
			st := *c.Net
			st.Endpoints = maps.Clone(st.Endpoints)
			st.Endpoints[n.Name] = ep
			c.Net = &st
		}
	})
	if err != nil && ep != nil {
		_ = s.cfg.Networks.Detach(context.WithoutCancel(ctx), ep.ID)
	}
	return err
}

// NetworkDisconnect takes a container off a network.
func (s *Service) NetworkDisconnect(ctx context.Context, ref, ctrRef string) error {
	n, err := s.network(ctx, ref)
	if err != nil {
		return err
	}
	e, err := s.lookup(ctrRef)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	c := s.snapshot(e)
	if _, ok := c.NetworkingConfig[n.Name]; !ok {
		return fmt.Errorf("container %s is not connected to network %s: %w", c.Name, n.Name, errdefs.ErrNotFound)
	}
	if string(c.HostConfig.NetworkMode) == n.Name && len(c.NetworkingConfig) == 1 {
		return fmt.Errorf("disconnect container %s from %s: it is the container's only network: %w", c.Name, n.Name, errdefs.ErrForbidden)
	}
	if c.Net != nil && c.Net.Endpoints[n.Name] != nil {
		if err := s.cfg.Networks.Detach(ctx, c.Net.Endpoints[n.Name].ID); err != nil {
			return fmt.Errorf("disconnect container %s from %s: %w", c.Name, n.Name, err)
		}
	}
	return s.setState(e, func(c *Container) {
		c.NetworkingConfig = maps.Clone(c.NetworkingConfig)
		delete(c.NetworkingConfig, n.Name)
		if c.Net != nil && c.Net.Endpoints != nil {
			st := *c.Net
			st.Endpoints = maps.Clone(st.Endpoints)
			delete(st.Endpoints, n.Name)
			c.Net = &st
		}
		if string(c.HostConfig.NetworkMode) == n.Name {
			// Another network becomes the primary one.
			for name := range c.NetworkingConfig {
				hc := *c.HostConfig
				hc.NetworkMode = container.NetworkMode(name)
				c.HostConfig = &hc
				break
			}
		}
	})
}
