package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
	"github.com/silo-containers/silo/internal/network/embeddeddns"
	"github.com/silo-containers/silo/internal/network/resolvconf"
)

// Networks is what the engine needs of the network service
// (*network.Service satisfies it).
type Networks interface {
	// Network resolves a network by id, id prefix or name.
	Network(ctx context.Context, ref string) (*network.Network, error)
	// CreateNamespace makes (or finds) the network namespace of a
	// container and returns its path.
	CreateNamespace(ctx context.Context, id string) (string, error)
	// RemoveNamespace detaches every endpoint in the namespace and
	// removes it; a missing namespace is not an error.
	RemoveNamespace(ctx context.Context, id string) error
	// Attach connects a namespace to a network.
	Attach(ctx context.Context, req network.AttachRequest) (*network.Endpoint, error)
	// Detach removes one endpoint.
	Detach(ctx context.Context, endpointID string) error
	// SetPolicies replaces a live endpoint's ACLs, outbound NAT and QoS.
	SetPolicies(ctx context.Context, endpointID string, acls []network.ACL, nat *network.OutboundNAT, qos *network.QoS) error
	// Networks lists the networks; CreateNetwork and RemoveNetwork make
	// and delete them.
	Networks(ctx context.Context) ([]*network.Network, error)
	CreateNetwork(ctx context.Context, req network.CreateNetworkRequest) (*network.Network, error)
	RemoveNetwork(ctx context.Context, ref string) error
}

var _ Networks = (*network.Service)(nil)

// NetState is a container's networking as the engine records it.
type NetState struct {
	// NetnsPath is the namespace the container runs in; empty for the
	// "none" and "host" modes (a private or the host's namespace).
	NetnsPath string `json:",omitempty"`
	// Endpoints are the live attachments by network name while the
	// container runs; nil when it is stopped (docker frees addresses and
	// published ports at exit).
	Endpoints map[string]*network.Endpoint `json:",omitempty"`
	// Gateway is the primary endpoint's gateway (for --add-host
	// host-gateway and the hosts file).
	Gateway netip.Addr `json:",omitzero"`
}

// Network modes besides a network's name.
const (
	netModeNone = "none"
	netModeHost = "host"
)

// defaultNetworkName is the default network: "nat", as on Windows; docker's
// "bridge" and "default" name it too.
const defaultNetworkName = "nat"

// networkMode normalises --network: "" and docker's "default"/"bridge"
// become the default network.
func networkMode(host *container.HostConfig) (string, error) {
	m := string(host.NetworkMode)
	switch {
	case m == "" || m == mobynet.NetworkDefault || m == mobynet.NetworkBridge:
		return defaultNetworkName, nil
	case strings.HasPrefix(m, "container:"):
		return "", fmt.Errorf("network mode %q: sharing another container's network is not supported yet: %w", m, errdefs.ErrNotImplemented)
	case strings.HasPrefix(m, "ns:"):
		return "", fmt.Errorf("network mode %q: joining a namespace by path is not allowed: %w", m, errdefs.ErrInvalidArgument)
	}
	return m, nil
}

// attachesNetworks reports whether a mode is served by network endpoints.
func attachesNetworks(mode string) bool { return mode != netModeNone && mode != netModeHost }

// planNetworks checks a container's network settings at create: the mode,
// the networks it names and its published ports. It returns the settings
// to record, with the mode normalised and every network present in
// endpoints (the primary one first in the mode).
func (s *Service) planNetworks(ctx context.Context, cfg *container.Config, host *container.HostConfig, netCfg *mobynet.NetworkingConfig) (map[string]*mobynet.EndpointSettings, error) {
	mode, err := networkMode(host)
	if err != nil {
		return nil, err
	}
	for _, h := range host.ExtraHosts {
		if _, err := resolvconf.ParseExtraHost(h); err != nil {
			return nil, err
		}
	}
	if s.cfg.Networks == nil && mode == defaultNetworkName {
		mode = netModeNone
	}
	host.NetworkMode = container.NetworkMode(mode)
	eps := map[string]*mobynet.EndpointSettings{}
	if netCfg != nil {
		for name, es := range netCfg.EndpointsConfig {
			if es == nil {
				es = &mobynet.EndpointSettings{}
			}
			eps[name] = es.Copy()
		}
	}
	if !attachesNetworks(mode) {
		if len(eps) > 0 && !(len(eps) == 1 && eps[mode] != nil) {
			return nil, fmt.Errorf("network mode %q: a container in this mode cannot join other networks: %w", mode, errdefs.ErrInvalidArgument)
		}
		if len(host.PortBindings) > 0 || host.PublishAllPorts {
			return nil, fmt.Errorf("network mode %q: ports cannot be published: %w", mode, errdefs.ErrInvalidArgument)
		}
		return nil, nil
	}
	if s.cfg.Networks == nil {
		return nil, fmt.Errorf("network %q: this daemon runs without the network service: %w", mode, errdefs.ErrNotImplemented)
	}
	// docker run --network NAME sends the same name in EndpointsConfig;
	// the default network may come under any of its names.
	for _, alias := range []string{mobynet.NetworkDefault, mobynet.NetworkBridge} {
		if es, ok := eps[alias]; ok && mode == defaultNetworkName {
			delete(eps, alias)
			eps[mode] = es
		}
	}
	if eps[mode] == nil {
		eps[mode] = &mobynet.EndpointSettings{}
	}
	resolved := make(map[string]*mobynet.EndpointSettings, len(eps))
	for ref, es := range eps {
		n, err := s.cfg.Networks.Network(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", ref, err)
		}
		if n.Type == network.None || n.Type == network.Host {
			return nil, fmt.Errorf("network %s: a %s network cannot be joined with others: %w", ref, n.Type, errdefs.ErrInvalidArgument)
		}
		if _, err := endpointPolicies(es); err != nil {
			return nil, fmt.Errorf("network %s: %w", ref, err)
		}
		es.NetworkID = n.ID
		if ref == mode {
			host.NetworkMode = container.NetworkMode(n.Name)
		}
		resolved[n.Name] = es
	}
	if _, err := portMappings(cfg, host); err != nil {
		return nil, err
	}
	return resolved, nil
}

// portMappings turns -p and -P into the primary endpoint's PortMapping
// policies: each binding of PortBindings, and with PublishAllPorts every
// exposed port without one on a free host port.
func portMappings(cfg *container.Config, host *container.HostConfig) ([]network.PortMapping, error) {
	var out []network.PortMapping
	add := func(p mobynet.Port, b mobynet.PortBinding) error {
		pm := network.PortMapping{Protocol: string(p.Proto()), InternalPort: p.Num(), HostIP: b.HostIP}
		if pm.HostIP.IsUnspecified() {
			pm.HostIP = netip.Addr{}
		}
		if pm.HostIP.IsValid() && !pm.HostIP.Is4() {
			return fmt.Errorf("publish %s on %s: only IPv4 host addresses are supported: %w", p, b.HostIP, errdefs.ErrNotImplemented)
		}
		if b.HostPort != "" {
			first, last, isRange := strings.Cut(b.HostPort, "-")
			n, err := strconv.ParseUint(first, 10, 16)
			if err != nil || n == 0 {
				return fmt.Errorf("publish %s: invalid host port %q: %w", p, b.HostPort, errdefs.ErrInvalidArgument)
			}
			if isRange && last != first {
				return fmt.Errorf("publish %s: host port range %q: ranges are not supported yet: %w", p, b.HostPort, errdefs.ErrNotImplemented)
			}
			pm.ExternalPort = uint16(n)
		}
		out = append(out, pm)
		return nil
	}
	ports := slices.SortedFunc(maps.Keys(host.PortBindings), comparePorts)
	for _, p := range ports {
		bindings := host.PortBindings[p]
		if len(bindings) == 0 {
			bindings = []mobynet.PortBinding{{}}
		}
		for _, b := range bindings {
			if err := add(p, b); err != nil {
				return nil, err
			}
		}
	}
	if host.PublishAllPorts && cfg != nil {
		for _, p := range slices.SortedFunc(maps.Keys(cfg.ExposedPorts), comparePorts) {
			if _, bound := host.PortBindings[p]; bound {
				continue
			}
			if err := add(p, mobynet.PortBinding{}); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func comparePorts(a, b mobynet.Port) int {
	if a.Num() != b.Num() {
		return int(a.Num()) - int(b.Num())
	}
	return strings.Compare(string(a.Proto()), string(b.Proto()))
}

// connectNetworks gives a starting container its endpoints: the namespace
// (made at create, again after a reboot), one endpoint per network with
// the primary one carrying the published ports, then the hosts and
// resolv.conf files. On failure nothing of it stays.
func (s *Service) connectNetworks(ctx context.Context, c *Container) (_ *NetState, err error) {
	if c.Net == nil || c.Net.NetnsPath == "" {
		return c.Net, s.writeEtcFiles(ctx, c, nil)
	}
	if _, err := s.cfg.Networks.CreateNamespace(ctx, c.ID); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if rerr := s.cfg.Networks.RemoveNamespace(context.WithoutCancel(ctx), c.ID); rerr != nil {
				s.log.Error("clean up network namespace", "container", c.ID, "err", rerr)
			}
		}
	}()
	primary := string(c.HostConfig.NetworkMode)
	ports, err := portMappings(c.Config, c.HostConfig)
	if err != nil {
		return nil, err
	}
	st := &NetState{NetnsPath: c.Net.NetnsPath, Endpoints: map[string]*network.Endpoint{}}
	// The primary network first: it is eth0 and gives the default route.
	names := slices.Sorted(maps.Keys(c.NetworkingConfig))
	names = slices.DeleteFunc(names, func(n string) bool { return n == primary })
	names = append([]string{primary}, names...)
	for i, name := range names {
		es := c.NetworkingConfig[name]
		if es == nil {
			es = &mobynet.EndpointSettings{}
		}
		req := network.AttachRequest{
			Namespace: c.ID, Network: es.NetworkID, ContainerID: c.ID, Name: c.Name,
			IfName: "eth" + strconv.Itoa(i), Aliases: es.Aliases,
		}
		if req.Network == "" {
			req.Network = name
		}
		if es.IPAMConfig != nil {
			req.IP = es.IPAMConfig.IPv4Address
		}
		if len(es.MacAddress) > 0 {
			req.MAC = net.HardwareAddr(es.MacAddress).String()
		}
		if name == primary {
			req.PortMappings = ports
		}
		pol, err := endpointPolicies(es)
		if err != nil {
			return nil, err
		}
		req.ACLs, req.OutboundNAT, req.QoS = pol.ACLs, pol.OutboundNAT, pol.QoS
		req.DNSServers = c.HostConfig.DNS
		ep, err := s.cfg.Networks.Attach(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("connect to network %s: %w", name, err)
		}
		st.Endpoints[name] = ep
		if name == primary && len(ep.Gateways) > 0 {
			st.Gateway = ep.Gateways[0]
		}
	}
	if err := s.writeEtcFiles(ctx, c, st); err != nil {
		return nil, err
	}
	return st, nil
}

// disconnectNetworks removes a stopped container's endpoints and
// namespace; the namespace path stays recorded for the next start.
func (s *Service) disconnectNetworks(ctx context.Context, c *Container) error {
	if c.Net == nil || c.Net.NetnsPath == "" || s.cfg.Networks == nil {
		return nil
	}
	if err := s.cfg.Networks.RemoveNamespace(ctx, c.ID); err != nil {
		return fmt.Errorf("disconnect container %s from its networks: %w", c.ID[:12], err)
	}
	return nil
}

// etcFiles are the files the engine writes for a container and
// bind-mounts over the image's, as docker does.
var etcFiles = []string{"hostname", "hosts", "resolv.conf"}

// etcMounts returns the container's etc files by their path in the
// container; the files exist (empty) once this returns.
func (s *Service) etcMounts(id string) (map[string]string, error) {
	srcs := map[string]string{}
	for _, name := range etcFiles {
		p := filepath.Join(s.ctrDir(id), name)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		f.Close()
		srcs["/etc/"+name] = p
	}
	return srcs, nil
}

// writeEtcFiles writes hostname, hosts and resolv.conf for a container
// about to start. The files are rewritten in place, never replaced: a
// bind mount holds on to the inode it was made with.
func (s *Service) writeEtcFiles(ctx context.Context, c *Container, st *NetState) error {
	hostname := ""
	if c.Config != nil {
		hostname = c.Config.Hostname
		if c.Config.Domainname != "" {
			hostname += "." + c.Config.Domainname
		}
	}
	mode := string(c.HostConfig.NetworkMode)
	if mode == netModeHost {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("read the host's name: %w", err)
		}
		hostname = h
	}
	hosts, err := hostsFile(c, st, mode, hostname)
	if err != nil {
		return err
	}
	resolv, err := s.resolvConf(ctx, c, st)
	if err != nil {
		return err
	}
	files := map[string][]byte{"hostname": []byte(hostname + "\n"), "hosts": hosts, "resolv.conf": resolv}
	for _, name := range etcFiles {
		if err := os.WriteFile(filepath.Join(s.ctrDir(c.ID), name), files[name], 0o644); err != nil {
			return fmt.Errorf("write the container's %s: %w", name, err)
		}
	}
	return nil
}

// hostsFile is the container's /etc/hosts: localhost, --add-host
// entries (host-gateway is the primary network's gateway) and its own
// addresses under its hostname; with --network host, the host's file.
func hostsFile(c *Container, st *NetState, mode, hostname string) ([]byte, error) {
	if mode == netModeHost {
		b, err := os.ReadFile("/etc/hosts")
		if err != nil {
			return nil, fmt.Errorf("read the host's /etc/hosts: %w", err)
		}
		return b, nil
	}
	cfg := resolvconf.HostsConfig{Hostname: hostname, ExtraHosts: c.HostConfig.ExtraHosts}
	if st != nil {
		if st.Gateway.IsValid() {
			cfg.HostGateway = []netip.Addr{st.Gateway}
		}
		if ep := st.Endpoints[mode]; ep != nil {
			for _, a := range ep.Addresses {
				cfg.Addrs = append(cfg.Addrs, a.Addr())
			}
		}
	}
	return resolvconf.Hosts(cfg)
}

// resolvConf is the container's /etc/resolv.conf: the network's embedded
// DNS server on a user-defined network, else the host's resolvers (less
// the loopback ones a container cannot reach), with --dns, --dns-search
// and --dns-option applied.
func (s *Service) resolvConf(ctx context.Context, c *Container, st *NetState) ([]byte, error) {
	if string(c.HostConfig.NetworkMode) == netModeHost && len(c.HostConfig.DNS) == 0 &&
		len(c.HostConfig.DNSSearch) == 0 && len(c.HostConfig.DNSOptions) == 0 {
		b, err := os.ReadFile(hostResolvConf)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil // the host has none: neither does the container
		}
		return b, err
	}
	host, err := resolvconf.Load(hostResolvConf)
	if err != nil && !errdefs.IsNotFound(err) {
		return nil, err
	}
	cfg := resolvconf.Config{Host: host, Overrides: resolvconf.Overrides{
		Search: c.HostConfig.DNSSearch, Options: c.HostConfig.DNSOptions}}
	for _, a := range c.HostConfig.DNS {
		cfg.Overrides.Nameservers = append(cfg.Overrides.Nameservers, a.String())
	}
	if st != nil && st.Gateway.IsValid() {
		primary := string(c.HostConfig.NetworkMode)
		if n, err := s.cfg.Networks.Network(ctx, primary); err == nil && embeddeddns.Serves(n) {
			cfg.EmbeddedDNS = st.Gateway
		}
	}
	res, err := resolvconf.Generate(cfg)
	if err != nil {
		return nil, fmt.Errorf("resolv.conf: %w", err)
	}
	for _, w := range res.Warnings {
		s.log.Warn("resolv.conf", "container", c.ID, "warning", w)
	}
	return res.Content, nil
}

// hostResolvConf is where the host's resolvers are read from.
const hostResolvConf = "/etc/resolv.conf"

// netSettings is a container's NetworkSettings as docker inspect shows
// them.
func netSettings(c *Container) *container.NetworkSettings {
	ns := &container.NetworkSettings{Networks: map[string]*mobynet.EndpointSettings{}, Ports: mobynet.PortMap{}}
	if c.Net != nil && c.State.Running() {
		ns.SandboxKey = c.Net.NetnsPath
		ns.SandboxID = c.ID
	}
	for name, es := range c.NetworkingConfig {
		out := es.Copy()
		if c.Net != nil && c.State.Running() {
			if ep := c.Net.Endpoints[name]; ep != nil {
				fillEndpointSettings(out, ep)
			}
		}
		ns.Networks[name] = out
	}
	mode := ""
	if c.HostConfig != nil {
		mode = string(c.HostConfig.NetworkMode)
	}
	if mode != "" && !attachesNetworks(mode) {
		ns.Networks[mode] = &mobynet.EndpointSettings{}
	}
	if c.Config != nil {
		for p := range c.Config.ExposedPorts {
			ns.Ports[p] = nil
		}
	}
	if c.Net != nil && c.State.Running() {
		if ep := c.Net.Endpoints[mode]; ep != nil {
			for _, pm := range ep.PortMappings {
				p, err := mobynet.ParsePort(fmt.Sprintf("%d/%s", pm.InternalPort, pm.Protocol))
				if err != nil {
					continue
				}
				host := pm.HostIP
				if !host.IsValid() {
					host = netip.IPv4Unspecified()
				}
				ns.Ports[p] = append(ns.Ports[p], mobynet.PortBinding{HostIP: host, HostPort: strconv.Itoa(int(pm.ExternalPort))})
			}
		}
	}
	return ns
}

// fillEndpointSettings copies a live endpoint's addresses into docker's
// shape.
func fillEndpointSettings(out *mobynet.EndpointSettings, ep *network.Endpoint) {
	out.EndpointID = ep.ID
	out.NetworkID = ep.NetworkID
	if mac, err := net.ParseMAC(ep.MAC); err == nil {
		out.MacAddress = mobynet.HardwareAddr(mac)
	}
	for _, a := range ep.Addresses {
		if a.Addr().Is4() && !out.IPAddress.IsValid() {
			out.IPAddress, out.IPPrefixLen = a.Addr(), a.Bits()
		} else if a.Addr().Is6() && !out.GlobalIPv6Address.IsValid() {
			out.GlobalIPv6Address, out.GlobalIPv6PrefixLen = a.Addr(), a.Bits()
		}
	}
	for _, g := range ep.Gateways {
		if g.Is4() && !out.Gateway.IsValid() {
			out.Gateway = g
		} else if g.Is6() && !out.IPv6Gateway.IsValid() {
			out.IPv6Gateway = g
		}
	}
	out.DNSNames = append([]string{}, ep.Aliases...)
}

// portSummaries are the published ports `docker ps` shows.
func portSummaries(c *Container) []container.PortSummary {
	out := []container.PortSummary{}
	ns := netSettings(c)
	for p, bindings := range ns.Ports {
		if len(bindings) == 0 {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
			continue
		}
		for _, b := range bindings {
			n, _ := strconv.ParseUint(b.HostPort, 10, 16)
			out = append(out, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: uint16(n), Type: string(p.Proto())})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PrivatePort != out[j].PrivatePort {
			return out[i].PrivatePort < out[j].PrivatePort
		}
		return out[i].PublicPort < out[j].PublicPort
	})
	return out
}
