package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	mobynet "github.com/moby/moby/api/types/network"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
)

// EndpointPoliciesOption is the endpoint driver option that carries a
// container's endpoint policies on a network as JSON (`silo run
// --endpoint-policy`, or docker's --network name=N,driver-opt=…): the
// Docker API has no field for ACLs, outbound NAT exceptions or QoS.
const EndpointPoliciesOption = "silo.policies"

// EndpointPolicies are the HNS endpoint policies silo applies besides
// port mappings (which come from -p).
type EndpointPolicies struct {
	ACLs        []network.ACL        `json:"ACLs,omitempty"`
	OutboundNAT *network.OutboundNAT `json:"OutBoundNAT,omitempty"`
	QoS         *network.QoS         `json:"QOS,omitempty"`
}

// endpointPolicies reads the policies of an endpoint's settings.
func endpointPolicies(es *mobynet.EndpointSettings) (EndpointPolicies, error) {
	var p EndpointPolicies
	if es == nil {
		return p, nil
	}
	raw, ok := es.DriverOpts[EndpointPoliciesOption]
	if !ok {
		return p, nil
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("endpoint option %s: want {\"ACLs\":[…],\"OutBoundNAT\":{…},\"QOS\":{…}}: %v: %w",
			EndpointPoliciesOption, err, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// SetEndpointPolicies replaces the ACLs, outbound NAT and QoS of a
// container's endpoint on a network: on the live endpoint when the
// container runs (as HNS modifies a live endpoint), and in the record for
// the next start.
func (s *Service) SetEndpointPolicies(ctx context.Context, ctrRef, netRef string, p EndpointPolicies) error {
	n, err := s.network(ctx, netRef)
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
	es, ok := c.NetworkingConfig[n.Name]
	if !ok {
		return fmt.Errorf("container %s is not connected to network %s: %w", c.Name, n.Name, errdefs.ErrNotFound)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("set endpoint policies: %w", err)
	}
	if c.State.Running() && c.Net != nil && c.Net.Endpoints[n.Name] != nil {
		if err := s.cfg.Networks.SetPolicies(ctx, c.Net.Endpoints[n.Name].ID, p.ACLs, p.OutboundNAT, p.QoS); err != nil {
			return fmt.Errorf("set endpoint policies of %s on %s: %w", c.Name, n.Name, err)
		}
	}
	return s.setState(e, func(c *Container) {
		next := es.Copy()
		if next.DriverOpts == nil {
			next.DriverOpts = map[string]string{}
		}
		next.DriverOpts[EndpointPoliciesOption] = string(raw)
		c.NetworkingConfig = maps.Clone(c.NetworkingConfig)
		c.NetworkingConfig[n.Name] = next
		if c.Net != nil && c.Net.Endpoints[n.Name] != nil {
			st := *c.Net
			st.Endpoints = maps.Clone(st.Endpoints)
			ep := *st.Endpoints[n.Name]
			ep.ACLs, ep.OutboundNAT, ep.QoS = p.ACLs, p.OutboundNAT, p.QoS
			st.Endpoints[n.Name] = &ep
			c.Net = &st
		}
	})
}
