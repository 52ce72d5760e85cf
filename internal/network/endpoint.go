package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network/drivers/nat"
	"github.com/silo-containers/silo/internal/network/nftrules"
)

// AttachRequest asks for an endpoint of a namespace on a network.
type AttachRequest struct {
	// Namespace is an id given to CreateNamespace.
	Namespace string
	// Network is a network reference (id, prefix or name).
	Network string
	// ContainerID and Name (the container's name) identify the endpoint;
	// Name and Aliases are its DNS names on the network.
	ContainerID, Name string
	// IfName defaults to the first free ethN of the namespace.
	IfName string
	// IP is a static address (--ip); zero allocates one.
	IP netip.Addr
	// MAC defaults to 02:42 followed by the IPv4 address.
	MAC          string
	Aliases      []string
	PortMappings []PortMapping
	ACLs         []ACL
	OutboundNAT  *OutboundNAT
	QoS          *QoS
	// DNSServers are the endpoint's own resolvers (docker run --dns):
	// the network's embedded DNS forwards this endpoint's queries to them.
	DNSServers []netip.Addr
}

// Dynamic host ports (-P, -p 80) come from this range, as docker's.
const (
	dynamicPortFirst = 49153
	dynamicPortLast  = 65535
)

// portKey and portUse record which host ports silo's mappings hold.
type portKey struct {
	proto string
	port  uint16
}

type portUse struct {
	hostIP   netip.Addr // invalid or unspecified: every address
	endpoint string
}

// Attach creates an endpoint: addresses, MAC and host ports are
// allocated, the driver builds the interface in the namespace and the
// rules are installed. On failure nothing is left.
func (s *Service) Attach(ctx context.Context, req AttachRequest) (*Endpoint, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("attach: service closed: %w", errdefs.ErrConflict)
	}
	n, ep, err := s.prepareLocked(req)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	d := s.drivers[s.driverType(n)]
	s.pending[n.ID]++
	nc := cloneNetwork(n)
	s.mu.Unlock()

	// The kernel work runs unlocked: parallel container starts do not
	// wait for each other's veths.
	err = d.Join(ctx, s.host, nc, ep)
	if err == nil && ep.QoS != nil {
		err = s.applyQoS(ep)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[n.ID]--
	fail := func(err error) (*Endpoint, error) {
		if lerr := d.Leave(context.WithoutCancel(ctx), s.host, nc, ep); lerr != nil {
			s.log.Warn("undo join", "endpoint", ep.ID, "err", lerr)
		}
		s.releaseLocked(ep)
		return nil, err
	}
	if err != nil {
		return fail(err)
	}
	if _, ok := s.namespaces[ep.Namespace]; !ok {
		return fail(fmt.Errorf("attach to namespace %s: removed meanwhile: %w", ep.Namespace, errdefs.ErrNotFound))
	}
	if err := s.db.put(bucketEndpoints, ep.ID, ep); err != nil {
		return fail(err)
	}
	s.endpoints[ep.ID] = ep
	if err := s.renderLocked(); err != nil {
		delete(s.endpoints, ep.ID)
		s.db.delete(bucketEndpoints, ep.ID)
		s.renderLocked()
		return fail(err)
	}
	s.log.Info("endpoint attached", "endpoint", ep.ID[:12], "network", n.Name, "namespace", ep.Namespace, "addresses", ep.Addresses)
	return cloneEndpoint(ep), nil
}

// prepareLocked validates req and reserves the endpoint's addresses and
// ports; releaseLocked gives them back.
func (s *Service) prepareLocked(req AttachRequest) (*Network, *Endpoint, error) {
	ns, ok := s.namespaces[req.Namespace]
	if !ok {
		return nil, nil, fmt.Errorf("attach: namespace %q: %w", req.Namespace, errdefs.ErrNotFound)
	}
	n, err := s.resolveLocked(req.Network)
	if err != nil {
		return nil, nil, fmt.Errorf("attach: %w", err)
	}
	if n.Type == None || n.Type == Host {
		return nil, nil, fmt.Errorf("attach to network %s: the %s network has no endpoints: %w", n.Name, n.Type, errdefs.ErrInvalidArgument)
	}
	if _, ok := s.drivers[s.driverType(n)]; !ok {
		return nil, nil, fmt.Errorf("attach to network %s: no driver for type %s: %w", n.Name, n.Type, errdefs.ErrNotImplemented)
	}
	ifnames := map[string]bool{}
	for _, e := range s.endpoints {
		if e.Namespace == ns.ID {
			ifnames[e.IfName] = true
			if e.NetworkID == n.ID {
				return nil, nil, fmt.Errorf("attach namespace %s to network %s: already attached: %w", ns.ID, n.Name, errdefs.ErrConflict)
			}
		}
	}
	ifname := req.IfName
	if ifname == "" {
		for i := 0; ; i++ {
			if ifname = "eth" + strconv.Itoa(i); !ifnames[ifname] {
				break
			}
		}
	} else if ifnames[ifname] {
		return nil, nil, fmt.Errorf("attach namespace %s: interface %s exists: %w", ns.ID, ifname, errdefs.ErrConflict)
	}
	if len(ifname) > 15 || strings.ContainsAny(ifname, "/ \t\n") {
		return nil, nil, fmt.Errorf("attach: interface name %q: %w", ifname, errdefs.ErrInvalidArgument)
	}
	ep := &Endpoint{
		ID: newID(), Name: strings.TrimPrefix(req.Name, "/"), NetworkID: n.ID,
		Namespace: ns.ID, NetnsPath: ns.Path, ContainerID: req.ContainerID, IfName: ifname,
		Aliases: slices.Clone(req.Aliases), ACLs: slices.Clone(req.ACLs), OutboundNAT: req.OutboundNAT, QoS: req.QoS,
		DNSServers: slices.Clone(req.DNSServers),
		Created:    time.Now().UTC(),
	}
	if n.Internal && len(req.PortMappings) > 0 {
		s.log.Info("port mappings ignored on internal network", "network", n.Name)
	} else {
		for _, pm := range req.PortMappings {
			if pm.Protocol == "" {
				pm.Protocol = "tcp"
			}
			pm.Protocol = strings.ToLower(pm.Protocol)
			if pm.HostIP.IsUnspecified() {
				pm.HostIP = netip.Addr{} // 0.0.0.0 and :: both mean every address
			}
			// docker's 0.0.0.0 and :: bindings of one -p become the
			// same mapping: keep one.
			if !slices.Contains(ep.PortMappings, pm) {
				ep.PortMappings = append(ep.PortMappings, pm)
			}
		}
	}
	if err := validatePolicies(ep); err != nil {
		return nil, nil, err
	}

	// Addresses: the static one in its subnet, a free one in the others.
	pools := s.pools[n.ID]
	staticUsed := !req.IP.IsValid()
	for i, p := range pools {
		sub := n.Subnets[i]
		var a netip.Addr
		if req.IP.IsValid() && p.Prefix().Contains(req.IP) {
			if err := p.Reserve(req.IP); err != nil {
				s.releaseLocked(ep)
				return nil, nil, fmt.Errorf("attach to network %s: %w", n.Name, err)
			}
			a, staticUsed = req.IP, true
		} else {
			if a, err = p.Allocate(); err != nil {
				s.releaseLocked(ep)
				return nil, nil, fmt.Errorf("attach to network %s: %w", n.Name, err)
			}
		}
		ep.Addresses = append(ep.Addresses, netip.PrefixFrom(a, sub.Prefix.Bits()))
		if sub.Gateway.IsValid() && !n.Internal && !slices.ContainsFunc(ep.Gateways, func(g netip.Addr) bool { return g.Is4() == sub.Gateway.Is4() }) {
			ep.Gateways = append(ep.Gateways, sub.Gateway)
		}
	}
	if !staticUsed {
		s.releaseLocked(ep)
		return nil, nil, fmt.Errorf("attach to network %s: address %s is in none of its subnets: %w", n.Name, req.IP, errdefs.ErrInvalidArgument)
	}
	ep.MAC = req.MAC
	if ep.MAC == "" {
		ep.MAC = macFor(ep.Addresses)
	} else if hw, err := net.ParseMAC(ep.MAC); err != nil || len(hw) != 6 {
		s.releaseLocked(ep)
		return nil, nil, fmt.Errorf("attach: mac address %q: %w", req.MAC, errdefs.ErrInvalidArgument)
	} else {
		ep.MAC = hw.String()
	}
	if err := s.allocatePortsLocked(ep); err != nil {
		s.releaseLocked(ep)
		return nil, nil, err
	}
	return n, ep, nil
}

// validatePolicies checks ep's policies render (ACL protocols and ports,
// mapping protocols and ports).
func validatePolicies(ep *Endpoint) error {
	for _, pm := range ep.PortMappings {
		switch pm.Protocol {
		case "tcp", "udp", "sctp":
		default:
			return fmt.Errorf("port mapping protocol %q: %w", pm.Protocol, errdefs.ErrInvalidArgument)
		}
		if pm.InternalPort == 0 {
			return fmt.Errorf("port mapping %s: no container port: %w", pm.Protocol, errdefs.ErrInvalidArgument)
		}
		if pm.HostIP.IsValid() && pm.HostIP.Is6() && !pm.HostIP.IsUnspecified() {
			return fmt.Errorf("port mapping on host address %s: IPv6 host addresses are not supported: %w", pm.HostIP, errdefs.ErrNotImplemented)
		}
	}
	for _, a := range ep.ACLs {
		if a.Action != Allow && a.Action != Block {
			return fmt.Errorf("acl action %q: %w", a.Action, errdefs.ErrInvalidArgument)
		}
		if a.Direction != In && a.Direction != Out {
			return fmt.Errorf("acl direction %q: %w", a.Direction, errdefs.ErrInvalidArgument)
		}
	}
	_, err := nftrules.Render(nftrules.State{Endpoints: []nftrules.Endpoint{ruleEndpoint(ep, nil)}})
	return err
}

// allocatePortsLocked checks explicit host ports and picks free ones for
// mappings asking for port 0.
func (s *Service) allocatePortsLocked(ep *Endpoint) error {
	for i := range ep.PortMappings {
		pm := &ep.PortMappings[i]
		if pm.ExternalPort != 0 {
			if other := s.portHolderLocked(pm.Protocol, pm.HostIP, pm.ExternalPort); other != "" {
				return fmt.Errorf("publish %s port %d: already allocated to endpoint %s: %w", pm.Protocol, pm.ExternalPort, other[:12], errdefs.ErrConflict)
			}
			if !s.bindable(pm.Protocol, pm.HostIP, pm.ExternalPort) {
				return fmt.Errorf("publish %s port %d: in use on the host: %w", pm.Protocol, pm.ExternalPort, errdefs.ErrConflict)
			}
		} else {
			port, err := s.freePortLocked(pm.Protocol, pm.HostIP)
			if err != nil {
				return err
			}
			pm.ExternalPort = port
		}
		k := portKey{pm.Protocol, pm.ExternalPort}
		s.ports[k] = append(s.ports[k], portUse{hostIP: pm.HostIP, endpoint: ep.ID})
	}
	return nil
}

// portHolderLocked returns the endpoint holding proto/port on hostIP (or
// on every address), "" when free.
func (s *Service) portHolderLocked(proto string, hostIP netip.Addr, port uint16) string {
	for _, u := range s.ports[portKey{proto, port}] {
		if !u.hostIP.IsValid() || u.hostIP.IsUnspecified() || !hostIP.IsValid() || hostIP.IsUnspecified() || u.hostIP == hostIP {
			return u.endpoint
		}
	}
	return ""
}

// freePortLocked picks a port of the dynamic range held by no mapping
// and bindable in the host namespace.
func (s *Service) freePortLocked(proto string, hostIP netip.Addr) (uint16, error) {
	var found uint16
	err := s.host.Do(func() error {
		for p := dynamicPortFirst; p <= dynamicPortLast; p++ {
			if s.portHolderLocked(proto, hostIP, uint16(p)) == "" && bindableHere(proto, hostIP, uint16(p)) {
				found = uint16(p)
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if found == 0 {
		return 0, fmt.Errorf("publish %s port: no free port in %d-%d: %w", proto, dynamicPortFirst, dynamicPortLast, errdefs.ErrConflict)
	}
	return found, nil
}

// bindable reports whether proto/port can be bound on hostIP in the host
// namespace: a host service there would be shadowed by the DNAT.
func (s *Service) bindable(proto string, hostIP netip.Addr, port uint16) bool {
	ok := false
	s.host.Do(func() error { ok = bindableHere(proto, hostIP, port); return nil })
	return ok
}

func bindableHere(proto string, hostIP netip.Addr, port uint16) bool {
	host := ""
	if hostIP.IsValid() && !hostIP.IsUnspecified() {
		host = hostIP.String()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	switch proto {
	case "tcp":
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			return false
		}
		l.Close()
	case "udp":
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true // sctp: no check without an SCTP socket helper
}

// reserveLocked marks a restored endpoint's addresses and ports as used.
func (s *Service) reserveLocked(n *Network, ep *Endpoint) error {
	for _, a := range ep.Addresses {
		for _, p := range s.pools[n.ID] {
			if p.Prefix().Contains(a.Addr()) {
				if err := p.Reserve(a.Addr()); err != nil {
					s.releaseLocked(ep)
					return err
				}
			}
		}
	}
	for _, pm := range ep.PortMappings {
		if other := s.portHolderLocked(pm.Protocol, pm.HostIP, pm.ExternalPort); other != "" {
			s.releaseLocked(ep)
			return fmt.Errorf("%s port %d held by endpoint %s: %w", pm.Protocol, pm.ExternalPort, other[:12], errdefs.ErrConflict)
		}
		k := portKey{pm.Protocol, pm.ExternalPort}
		s.ports[k] = append(s.ports[k], portUse{hostIP: pm.HostIP, endpoint: ep.ID})
	}
	return nil
}

// releaseLocked gives back ep's addresses and ports.
func (s *Service) releaseLocked(ep *Endpoint) {
	for _, a := range ep.Addresses {
		for _, p := range s.pools[ep.NetworkID] {
			if p.Prefix().Contains(a.Addr()) {
				p.Release(a.Addr())
			}
		}
	}
	for k, uses := range s.ports {
		uses = slices.DeleteFunc(uses, func(u portUse) bool { return u.endpoint == ep.ID })
		if len(uses) == 0 {
			delete(s.ports, k)
		} else {
			s.ports[k] = uses
		}
	}
}

// Detach removes an endpoint: its interface, addresses, ports and rules.
func (s *Service) Detach(ctx context.Context, endpointID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, err := s.endpointLocked(endpointID)
	if err != nil {
		return err
	}
	if err := s.detachLocked(ctx, ep); err != nil {
		return err
	}
	return s.renderLocked()
}

// detachLocked removes ep without rendering the rules.
func (s *Service) detachLocked(ctx context.Context, ep *Endpoint) error {
	if n, ok := s.networks[ep.NetworkID]; ok {
		if d, ok := s.drivers[s.driverType(n)]; ok {
			if err := d.Leave(ctx, s.host, n, ep); err != nil {
				return err
			}
		}
	}
	return s.forgetLocked(ep)
}

// forgetLocked drops an endpoint's record and frees its address and ports;
// its interface is the caller's business.
func (s *Service) forgetLocked(ep *Endpoint) error {
	if err := s.db.delete(bucketEndpoints, ep.ID); err != nil {
		return err
	}
	delete(s.endpoints, ep.ID)
	s.releaseLocked(ep)
	s.log.Info("endpoint detached", "endpoint", ep.ID[:12], "namespace", ep.Namespace)
	return nil
}

// SetPolicies replaces an endpoint's ACLs, outbound NAT and QoS on the
// live endpoint, as HNS modifies a live endpoint's policies.
func (s *Service) SetPolicies(ctx context.Context, endpointID string, acls []ACL, outbound *OutboundNAT, qos *QoS) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, err := s.endpointLocked(endpointID)
	if err != nil {
		return err
	}
	next := cloneEndpoint(ep)
	next.ACLs, next.OutboundNAT, next.QoS = slices.Clone(acls), outbound, qos
	if err := validatePolicies(next); err != nil {
		return fmt.Errorf("set policies of endpoint %s: %w", ep.ID[:12], err)
	}
	qosChanged := !qosEqual(ep.QoS, qos)
	if qosChanged {
		if err := s.applyQoS(next); err != nil {
			return err
		}
	}
	if err := s.db.put(bucketEndpoints, next.ID, next); err != nil {
		return err
	}
	s.endpoints[next.ID] = next
	if err := s.renderLocked(); err != nil {
		s.endpoints[ep.ID] = ep
		s.db.put(bucketEndpoints, ep.ID, ep)
		if qosChanged {
			s.applyQoS(ep)
		}
		return err
	}
	return nil
}

func qosEqual(a, b *QoS) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// applyQoS sets (or clears) the egress limit of ep's interface.
func (s *Service) applyQoS(ep *Endpoint) error {
	var rate uint64
	if ep.QoS != nil {
		rate = ep.QoS.MaximumOutgoingBandwidthInBytes
	}
	return nat.SetQoS(ep.NetnsPath, ep.IfName, rate)
}

// Endpoint returns one endpoint by id or unique id prefix.
func (s *Service) Endpoint(ctx context.Context, id string) (*Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, err := s.endpointLocked(id)
	if err != nil {
		return nil, err
	}
	return cloneEndpoint(ep), nil
}

func (s *Service) endpointLocked(id string) (*Endpoint, error) {
	if ep, ok := s.endpoints[id]; ok {
		return ep, nil
	}
	var found *Endpoint
	if id != "" {
		for eid, ep := range s.endpoints {
			if strings.HasPrefix(eid, id) {
				if found != nil {
					return nil, fmt.Errorf("endpoint %s is ambiguous: %w", id, errdefs.ErrInvalidArgument)
				}
				found = ep
			}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("endpoint %s: %w", id, errdefs.ErrNotFound)
	}
	return found, nil
}

// Endpoints returns the endpoints of a network ("" for all), oldest first.
func (s *Service) Endpoints(ctx context.Context, networkRef string) ([]*Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var id string
	if networkRef != "" {
		n, err := s.resolveLocked(networkRef)
		if err != nil {
			return nil, err
		}
		id = n.ID
	}
	var out []*Endpoint
	for _, ep := range s.endpoints {
		if id == "" || ep.NetworkID == id {
			out = append(out, cloneEndpoint(ep))
		}
	}
	slices.SortFunc(out, func(a, b *Endpoint) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Lookup returns the addresses that name (a container name, alias or
// short container id; case-insensitive) has on a network given by id or
// name: what the embedded DNS server answers.
func (s *Service) Lookup(networkID, name string) []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.networks[networkID]
	if !ok {
		if n = s.byNameLocked(networkID); n == nil {
			return nil
		}
	}
	name = strings.TrimSuffix(name, ".")
	var out []netip.Addr
	for _, ep := range s.endpoints {
		if ep.NetworkID != n.ID || !answersTo(ep, name) {
			continue
		}
		for _, a := range ep.Addresses {
			out = append(out, a.Addr())
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

func answersTo(ep *Endpoint, name string) bool {
	if name == "" {
		return false
	}
	if strings.EqualFold(ep.Name, name) {
		return true
	}
	for _, a := range ep.Aliases {
		if strings.EqualFold(a, name) {
			return true
		}
	}
	return len(ep.ContainerID) >= 12 && strings.EqualFold(ep.ContainerID[:12], name)
}

// renderLocked installs the rules of the whole state.
func (s *Service) renderLocked() error {
	s.renderDue = false
	var st nftrules.State
	for _, n := range s.networks {
		if n.Type != NAT && n.Type != Internal {
			continue
		}
		rn := nftrules.Network{Name: n.Name, Bridge: n.Interface, Masquerade: !n.Internal, Isolated: n.Internal}
		for _, sub := range n.Subnets {
			rn.Subnets = append(rn.Subnets, sub.Prefix)
		}
		for _, p := range n.Policies {
			if p.Type == OutBoundNATPolicy {
				rn.Exceptions = append(rn.Exceptions, p.Settings.Exceptions...)
			}
		}
		st.Networks = append(st.Networks, rn)
	}
	for _, ep := range s.endpoints {
		st.Endpoints = append(st.Endpoints, ruleEndpoint(ep, s.networks[ep.NetworkID]))
	}
	// Stable order: the same state renders the same table.
	slices.SortFunc(st.Networks, func(a, b nftrules.Network) int { return strings.Compare(a.Bridge, b.Bridge) })
	slices.SortFunc(st.Endpoints, func(a, b nftrules.Endpoint) int { return strings.Compare(a.ID, b.ID) })
	rs, err := nftrules.Render(st)
	if err != nil {
		return err
	}
	if s.tableApplied {
		// The usual change: refill the chains, keep the hooks.
		err := nftrules.Update(s.nft, rs)
		if err == nil || !nftrules.NeedsApply(err) {
			return err
		}
		// The table went away under us (nft flush ruleset): rebuild it.
	}
	// The first rendering after New replaces the table as a whole, so
	// whatever an older daemon or a crash left is gone.
	if err := nftrules.Apply(s.nft, rs); err != nil {
		return err
	}
	s.tableApplied = true
	return nil
}

// ruleEndpoint converts an endpoint for rendering; n may be nil.
func ruleEndpoint(ep *Endpoint, n *Network) nftrules.Endpoint {
	re := nftrules.Endpoint{ID: ep.ID}
	for _, a := range ep.Addresses {
		if a.Addr().Is4() {
			re.Addr = a.Addr()
			break
		}
	}
	if n != nil {
		re.Bridge = n.Interface
		re.Masquerade = (n.Type == NAT) && !n.Internal
	}
	if ep.OutboundNAT != nil {
		re.HasOutboundNAT = true
		re.NATExceptions = slices.Clone(ep.OutboundNAT.Exceptions)
	}
	for _, pm := range ep.PortMappings {
		re.PortMappings = append(re.PortMappings, nftrules.PortMapping{Protocol: pm.Protocol, HostIP: pm.HostIP, HostPort: pm.ExternalPort, Port: pm.InternalPort})
	}
	for _, a := range ep.ACLs {
		ra := nftrules.ACL{Block: a.Action == Block, In: a.Direction == In, Protocol: a.Protocol,
			LocalAddresses: a.LocalAddresses, RemoteAddresses: a.RemoteAddresses, Priority: a.Priority}
		for _, p := range a.LocalPorts {
			ra.LocalPorts = append(ra.LocalPorts, nftrules.PortRange{First: p.First, Last: max(p.Last, p.First)})
		}
		for _, p := range a.RemotePorts {
			ra.RemotePorts = append(ra.RemotePorts, nftrules.PortRange{First: p.First, Last: max(p.Last, p.First)})
		}
		re.ACLs = append(re.ACLs, ra)
	}
	return re
}

// macFor is docker's MAC for an address set: 02:42 + the IPv4 address, or
// random bits after 02:42 when there is none.
func macFor(addrs []netip.Prefix) string {
	for _, a := range addrs {
		if a.Addr().Is4() {
			b := a.Addr().As4()
			return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
		}
	}
	id := newID()
	return "02:42:" + id[0:2] + ":" + id[2:4] + ":" + id[4:6] + ":" + id[6:8]
}

func cloneEndpoint(ep *Endpoint) *Endpoint {
	c := *ep
	c.Addresses = slices.Clone(ep.Addresses)
	c.Gateways = slices.Clone(ep.Gateways)
	c.Aliases = slices.Clone(ep.Aliases)
	c.PortMappings = slices.Clone(ep.PortMappings)
	c.ACLs = slices.Clone(ep.ACLs)
	c.DNSServers = slices.Clone(ep.DNSServers)
	return &c
}
