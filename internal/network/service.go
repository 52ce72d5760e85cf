package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network/ipam"
	"github.com/silo-containers/silo/internal/network/netnsutil"
	"github.com/silo-containers/silo/internal/network/nftrules"
)

// DefaultNetworkName is the name of the default network, "nat" as on
// Windows; "bridge" and "default" resolve to it too.
const DefaultNetworkName = "nat"

// Config configures a Service.
type Config struct {
	// StateDir holds the networks' records (network.db).
	StateDir string
	// RunDir holds the runtime records (runtime.db: endpoints and
	// namespaces) and the namespaces' bind mounts, at RunDir/netns/<id>.
	RunDir string
	// HostNetNS is the namespace networks live in: "" for the daemon's
	// own; tests pass the path of a simulated host.
	HostNetNS string
	// DefaultSubnet is the default network's subnet; zero picks a free
	// one (see ipam.DefaultCandidates).
	DefaultSubnet netip.Prefix
	// Drivers are drivers of further network types (transparent,
	// l2bridge, l2tunnel, overlay); nat and internal are built in.
	Drivers []Driver
	// Logger receives the service's log; nil discards it.
	Logger *slog.Logger
}

// Service is silo's host network service. It is safe for concurrent use.
//
// Lock order: mu, then nothing (drivers' Join runs without mu held).
type Service struct {
	cfg     Config
	log     *slog.Logger
	host    *HostNS
	db      *store
	drivers map[Type]Driver

	mu         sync.Mutex
	networks   map[string]*Network   // by id
	endpoints  map[string]*Endpoint  // by id; only joined endpoints
	namespaces map[string]*Namespace // by id
	pools      map[string][]*ipam.Pool
	ports      map[portKey][]portUse
	pending    map[string]int // network id → attaches under way
	closed     bool
	// leaving counts the background Leave calls and renderings of
	// RemoveNamespace; Close waits for them.
	leaving sync.WaitGroup
	// renderDue: endpoints went away since the last rendering, which a
	// background rendering (or any earlier one) applies; guarded by mu.
	renderDue bool
	// nft is one lasting nftables connection in the host namespace,
	// used under mu only.
	nft *nftables.Conn
	// tableApplied: the nftables table was replaced as a whole since
	// New; later renderings only refill its chains.
	tableApplied bool
}

// New opens the state, makes the pre-defined networks (nat, none, host)
// when missing, sets up every network again, drops what a crash left
// half-made and installs the nftables rules of the whole state.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.StateDir == "" || cfg.RunDir == "" {
		return nil, fmt.Errorf("network service: state and run directories are required: %w", errdefs.ErrInvalidArgument)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, err := OpenHostNS(cfg.HostNetNS)
	if err != nil {
		return nil, err
	}
	db, err := openStore(cfg.StateDir, cfg.RunDir)
	if err != nil {
		host.Close()
		return nil, err
	}
	nft, err := nftables.New(nftables.WithNetNSFd(int(host.NS())), nftables.AsLasting())
	if err != nil {
		db.close()
		host.Close()
		return nil, fmt.Errorf("nftables connection: %w", err)
	}
	s := &Service{
		cfg: cfg, log: log, host: host, db: db, nft: nft,
		drivers:    map[Type]Driver{NAT: natDriver{NAT}, Internal: natDriver{Internal}},
		networks:   map[string]*Network{},
		endpoints:  map[string]*Endpoint{},
		namespaces: map[string]*Namespace{},
		pools:      map[string][]*ipam.Pool{},
		ports:      map[portKey][]portUse{},
		pending:    map[string]int{},
	}
	for _, d := range cfg.Drivers {
		s.drivers[d.Type()] = d
	}
	if err := s.restore(ctx); err != nil {
		nft.CloseLasting()
		db.close()
		host.Close()
		return nil, err
	}
	return s, nil
}

// restore loads the records and brings the kernel back in line with them.
func (s *Service) restore(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	nets, err := load[Network](s.db, bucketNetworks)
	if err != nil {
		return err
	}
	eps, err := load[Endpoint](s.db, bucketEndpoints)
	if err != nil {
		return err
	}
	nss, err := load[Namespace](s.db, bucketNamespaces)
	if err != nil {
		return err
	}
	for _, n := range nets {
		s.networks[n.ID] = n
	}

	// Namespaces: a record whose mount is gone (a reboot) is dropped; a
	// mount without a record (a crash in CreateNamespace) is removed.
	for _, ns := range nss {
		if netnsutil.IsNamespace(ns.Path) {
			s.namespaces[ns.ID] = ns
			continue
		}
		s.log.Info("dropping namespace record without namespace", "namespace", ns.ID)
		netnsutil.Remove(ns.Path)
		if err := s.db.delete(bucketNamespaces, ns.ID); err != nil {
			return err
		}
	}
	if entries, err := os.ReadDir(s.netnsDir()); err == nil {
		for _, e := range entries {
			if _, ok := s.namespaces[e.Name()]; !ok {
				s.log.Info("removing namespace without record", "namespace", e.Name())
				if err := netnsutil.Remove(filepath.Join(s.netnsDir(), e.Name())); err != nil {
					s.log.Warn("remove stray namespace", "namespace", e.Name(), "err", err)
				}
			}
		}
	}

	// Pre-defined networks.
	for _, pre := range []struct {
		name string
		typ  Type
	}{{"none", None}, {"host", Host}} {
		if s.byNameLocked(pre.name) == nil {
			n := &Network{ID: newID(), Name: pre.name, Type: pre.typ, Created: time.Now().UTC()}
			if err := s.db.put(bucketNetworks, n.ID, n); err != nil {
				return err
			}
			s.networks[n.ID] = n
		}
	}
	if s.defaultLocked() == nil {
		req := CreateNetworkRequest{Name: DefaultNetworkName, Type: NAT}
		if s.cfg.DefaultSubnet.IsValid() {
			req.Subnets = []Subnet{{Prefix: s.cfg.DefaultSubnet}}
		}
		if _, err := s.createNetworkLocked(ctx, req, true); err != nil {
			return fmt.Errorf("create default network: %w", err)
		}
	}

	// Every network's kernel objects and address pools.
	for _, n := range s.networks {
		pools, err := newPools(n)
		if err != nil {
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
		s.pools[n.ID] = pools
		if n.Type == None || n.Type == Host {
			continue
		}
		d, ok := s.drivers[s.driverType(n)]
		if !ok {
			s.log.Warn("no driver for network type", "network", n.Name, "type", n.Type)
			continue
		}
		if err := d.Setup(ctx, s.host, n); err != nil {
			if n.Default {
				return err
			}
			s.log.Warn("set up network", "network", n.Name, "err", err)
		}
	}

	// Endpoints: one whose namespace or network is gone is what a crash
	// or a reboot left; its host side is removed and its record dropped.
	for _, ep := range eps {
		n := s.networks[ep.NetworkID]
		ns := s.namespaces[ep.Namespace]
		if n != nil && ns != nil {
			if err := s.reserveLocked(n, ep); err == nil {
				s.endpoints[ep.ID] = ep
				continue
			} else {
				s.log.Warn("endpoint's addresses or ports conflict; dropping it", "endpoint", ep.ID, "err", err)
			}
		}
		s.log.Info("dropping stale endpoint", "endpoint", ep.ID, "namespace", ep.Namespace)
		if n != nil {
			if d, ok := s.drivers[s.driverType(n)]; ok {
				if err := d.Leave(ctx, s.host, n, ep); err != nil {
					s.log.Warn("leave stale endpoint", "endpoint", ep.ID, "err", err)
				}
			}
		}
		if err := s.db.delete(bucketEndpoints, ep.ID); err != nil {
			return err
		}
	}
	s.pruneVethsLocked()
	return s.renderLocked()
}

// pruneVethsLocked removes veths on the bridges of nat and internal
// networks that no endpoint record names: what a crash between a driver's
// Join and the record's commit left.
func (s *Service) pruneVethsLocked() {
	known := map[string]bool{}
	for _, ep := range s.endpoints {
		known[ep.HostIfName] = true
	}
	bridges := map[int]bool{}
	for _, n := range s.networks {
		if n.Type != NAT && n.Type != Internal {
			continue
		}
		if l, err := s.host.Link.LinkByName(n.Interface); err == nil {
			bridges[l.Attrs().Index] = true
		}
	}
	links, err := s.host.Link.LinkList()
	if err != nil {
		s.log.Warn("list links", "err", err)
		return
	}
	for _, l := range links {
		a := l.Attrs()
		if l.Type() != "veth" || !bridges[a.MasterIndex] || !strings.HasPrefix(a.Name, "veth") || known[a.Name] {
			continue
		}
		s.log.Info("removing stray veth", "interface", a.Name)
		if err := s.host.Link.LinkDel(l); err != nil {
			s.log.Warn("remove stray veth", "interface", a.Name, "err", err)
		}
	}
}

// Close releases the service's handles. Kernel objects and rules stay:
// containers keep their networking while the daemon restarts.
func (s *Service) Close() error {
	s.leaving.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.db.close()
	if nerr := s.nft.CloseLasting(); err == nil {
		err = nerr
	}
	if herr := s.host.Close(); err == nil {
		err = herr
	}
	return err
}

// Purge removes everything the service made in the kernel: every
// namespace with its endpoints, every network's kernel objects (bridges)
// and the nftables table; then it closes the service. Network records
// stay, so a later New builds the networks again. It is for tests and
// for uninstalling, not for a daemon's shutdown (Close keeps containers'
// networking up).
func (s *Service) Purge(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("purge: service closed: %w", errdefs.ErrConflict)
	}
	var ids []string
	for id := range s.namespaces {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := s.RemoveNamespace(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	for _, ep := range s.endpoints { // endpoints of vanished namespaces
		if err := s.detachLocked(ctx, ep); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range s.networks {
		if d, ok := s.drivers[s.driverType(n)]; ok && n.Type != None && n.Type != Host {
			if err := d.Teardown(ctx, s.host, n); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := nftrules.Delete(s.nft); err != nil {
		errs = append(errs, err)
	}
	s.renderDue = false // the table is gone: no background rendering brings it back
	s.mu.Unlock()
	if err := s.Close(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("purge network service: %w", errors.Join(errs...))
	}
	return nil
}

// CreateNetworkRequest asks for a network.
type CreateNetworkRequest struct {
	Name string
	// Type is the driver; "" and "bridge" mean nat, "private" internal.
	Type Type
	// Subnets: none picks a free IPv4 subnet (nat, internal, overlay).
	Subnets    []Subnet
	Options    map[string]string
	Labels     map[string]string
	Internal   bool
	EnableIPv6 bool
	Policies   []NetworkPolicy
	DNS        DNS
}

// CreateNetwork creates a network and its kernel objects.
func (s *Service) CreateNetwork(ctx context.Context, req CreateNetworkRequest) (*Network, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("create network %q: service closed: %w", req.Name, errdefs.ErrConflict)
	}
	n, err := s.createNetworkLocked(ctx, req, false)
	if err != nil {
		return nil, err
	}
	pools, _ := newPools(n)
	s.pools[n.ID] = pools
	return cloneNetwork(n), nil
}

// reservedNames cannot name a user network: they resolve to the
// pre-defined ones.
var reservedNames = []string{"bridge", "default", "none", "host", DefaultNetworkName}

func (s *Service) createNetworkLocked(ctx context.Context, req CreateNetworkRequest, isDefault bool) (*Network, error) {
	if req.Name == "" {
		return nil, fmt.Errorf("create network: name is required: %w", errdefs.ErrInvalidArgument)
	}
	if s.byNameLocked(req.Name) != nil || (!isDefault && slices.Contains(reservedNames, req.Name)) {
		return nil, fmt.Errorf("create network %q: a network with that name exists: %w", req.Name, errdefs.ErrConflict)
	}
	typ := normalizeType(req.Type)
	switch typ {
	case None, Host:
		return nil, fmt.Errorf("create network %q: only one %s network is allowed: %w", req.Name, typ, errdefs.ErrForbidden)
	}
	d, ok := s.drivers[typ]
	if !ok {
		return nil, fmt.Errorf("create network %q: no driver for type %q: %w", req.Name, req.Type, errdefs.ErrNotImplemented)
	}
	if typ == NAT && req.Internal {
		d = s.drivers[Internal]
	}
	n := &Network{
		ID: newID(), Name: req.Name, Type: typ, Subnets: slices.Clone(req.Subnets),
		DNS: req.DNS, Policies: slices.Clone(req.Policies), Options: req.Options, Labels: req.Labels,
		Internal: req.Internal || typ == Internal, EnableIPv6: req.EnableIPv6, Default: isDefault,
		Created: time.Now().UTC(),
	}
	for i := range n.Subnets {
		n.Subnets[i].Prefix = n.Subnets[i].Prefix.Masked()
		if n.Subnets[i].Prefix.Addr().Is6() && !n.EnableIPv6 {
			return nil, fmt.Errorf("create network %q: IPv6 subnet %s needs IPv6 enabled: %w", req.Name, n.Subnets[i].Prefix, errdefs.ErrInvalidArgument)
		}
	}
	bridged := typ == NAT || typ == Internal || typ == Overlay
	if bridged && !slices.ContainsFunc(n.Subnets, func(s Subnet) bool { return s.Prefix.Addr().Is4() }) {
		p, err := s.pickSubnetLocked()
		if err != nil {
			return nil, fmt.Errorf("create network %q: %w", req.Name, err)
		}
		n.Subnets = append(n.Subnets, Subnet{Prefix: p})
	}
	if n.EnableIPv6 && !slices.ContainsFunc(n.Subnets, func(s Subnet) bool { return s.Prefix.Addr().Is6() }) {
		return nil, fmt.Errorf("create network %q: IPv6 needs an IPv6 subnet: %w", req.Name, errdefs.ErrInvalidArgument)
	}
	if bridged {
		for i := range n.Subnets {
			if !n.Subnets[i].Gateway.IsValid() {
				n.Subnets[i].Gateway = ipam.FirstHost(n.Subnets[i].Prefix)
			}
		}
	}
	for _, sub := range n.Subnets {
		if other := s.overlappingLocked(sub.Prefix); other != nil {
			return nil, fmt.Errorf("create network %q: subnet %s overlaps network %s: %w", req.Name, sub.Prefix, other.Name, errdefs.ErrConflict)
		}
	}
	if _, err := newPools(n); err != nil {
		return nil, fmt.Errorf("create network %q: %w", req.Name, err)
	}
	n.MacPool = macPool(n)
	if err := d.Validate(n); err != nil {
		return nil, fmt.Errorf("create network %q: %w", req.Name, err)
	}
	if err := d.Setup(ctx, s.host, n); err != nil {
		d.Teardown(ctx, s.host, n)
		return nil, err
	}
	if err := s.db.put(bucketNetworks, n.ID, n); err != nil {
		d.Teardown(ctx, s.host, n)
		return nil, err
	}
	s.networks[n.ID] = n
	if err := s.renderLocked(); err != nil {
		delete(s.networks, n.ID)
		s.db.delete(bucketNetworks, n.ID)
		d.Teardown(ctx, s.host, n)
		return nil, err
	}
	s.log.Info("network created", "network", n.Name, "id", n.ID[:12], "type", n.Type)
	return n, nil
}

// RemoveNetwork removes a network without endpoints.
func (s *Service) RemoveNetwork(ctx context.Context, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.resolveLocked(ref)
	if err != nil {
		return err
	}
	if n.Default || n.Type == None || n.Type == Host {
		return fmt.Errorf("remove network %s: %s is a pre-defined network and cannot be removed: %w", ref, n.Name, errdefs.ErrForbidden)
	}
	if c := s.countLocked(n.ID); c > 0 || s.pending[n.ID] > 0 {
		return fmt.Errorf("remove network %s: %d active endpoints: %w", n.Name, c+s.pending[n.ID], errdefs.ErrConflict)
	}
	if d, ok := s.drivers[s.driverType(n)]; ok {
		if err := d.Teardown(ctx, s.host, n); err != nil {
			return err
		}
	}
	if err := s.db.delete(bucketNetworks, n.ID); err != nil {
		return err
	}
	delete(s.networks, n.ID)
	delete(s.pools, n.ID)
	s.log.Info("network removed", "network", n.Name, "id", n.ID[:12])
	return s.renderLocked()
}

// Network returns the network named by ref: a full id, a name, a unique
// id prefix, or "bridge"/"default" for the default network.
func (s *Service) Network(ctx context.Context, ref string) (*Network, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.resolveLocked(ref)
	if err != nil {
		return nil, err
	}
	return cloneNetwork(n), nil
}

// Networks returns every network, the pre-defined ones first, then by
// name.
func (s *Service) Networks(ctx context.Context) ([]*Network, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Network, 0, len(s.networks))
	for _, n := range s.networks {
		out = append(out, cloneNetwork(n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// resolveLocked finds a network: exact id, exact name, the default
// network's aliases, then a unique id prefix.
func (s *Service) resolveLocked(ref string) (*Network, error) {
	if ref == "" {
		return nil, fmt.Errorf("network: empty reference: %w", errdefs.ErrInvalidArgument)
	}
	if n, ok := s.networks[ref]; ok {
		return n, nil
	}
	if n := s.byNameLocked(ref); n != nil {
		return n, nil
	}
	if ref == "bridge" || ref == "default" {
		if n := s.defaultLocked(); n != nil {
			return n, nil
		}
	}
	var found []*Network
	for id, n := range s.networks {
		if strings.HasPrefix(id, ref) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("network %s: %w", ref, errdefs.ErrNotFound)
	}
	return nil, fmt.Errorf("network %s is ambiguous (%d matches found on id prefix): %w", ref, len(found), errdefs.ErrInvalidArgument)
}

func (s *Service) byNameLocked(name string) *Network {
	for _, n := range s.networks {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (s *Service) defaultLocked() *Network {
	for _, n := range s.networks {
		if n.Default {
			return n
		}
	}
	return nil
}

func (s *Service) countLocked(networkID string) int {
	c := 0
	for _, ep := range s.endpoints {
		if ep.NetworkID == networkID {
			c++
		}
	}
	return c
}

func (s *Service) overlappingLocked(p netip.Prefix) *Network {
	for _, n := range s.networks {
		for _, sub := range n.Subnets {
			if sub.Prefix.Overlaps(p) {
				return n
			}
		}
	}
	return nil
}

// pickSubnetLocked picks a default-pool subnet overlapping no network
// and no route of the host namespace.
func (s *Service) pickSubnetLocked() (netip.Prefix, error) {
	var taken []netip.Prefix
	for _, n := range s.networks {
		for _, sub := range n.Subnets {
			taken = append(taken, sub.Prefix)
		}
	}
	routes, err := s.host.Link.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("list host routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue // default route
		}
		if a, ok := netip.AddrFromSlice(r.Dst.IP); ok {
			ones, _ := r.Dst.Mask.Size()
			taken = append(taken, netip.PrefixFrom(a.Unmap(), ones))
		}
	}
	return ipam.PickSubnet(ipam.DefaultCandidates(), taken)
}

// driverType is the driver key of n (internal nat networks use the
// internal driver).
func (s *Service) driverType(n *Network) Type {
	if n.Type == NAT && n.Internal {
		return Internal
	}
	return n.Type
}

func (s *Service) netnsDir() string { return filepath.Join(s.cfg.RunDir, "netns") }

func normalizeType(t Type) Type {
	switch strings.ToLower(string(t)) {
	case "", "bridge", "nat":
		return NAT
	case "private", "internal":
		return Internal
	}
	return Type(strings.ToLower(string(t)))
}

// newPools returns one address pool per subnet of n.
func newPools(n *Network) ([]*ipam.Pool, error) {
	var pools []*ipam.Pool
	for _, sub := range n.Subnets {
		p, err := ipam.NewPool(sub.Prefix, sub.IPRange, sub.Gateway)
		if err != nil {
			return nil, err
		}
		pools = append(pools, p)
	}
	return pools, nil
}

// macPool is the range of docker-style MACs (02:42 + IPv4 address) of
// n's first IPv4 subnet.
func macPool(n *Network) MacPool {
	for _, s := range n.Subnets {
		if s.Prefix.Addr().Is4() {
			a, b := s.Prefix.Addr().As4(), ipam.LastAddr(s.Prefix).As4()
			return MacPool{
				Start: fmt.Sprintf("02-42-%02X-%02X-%02X-%02X", a[0], a[1], a[2], a[3]),
				End:   fmt.Sprintf("02-42-%02X-%02X-%02X-%02X", b[0], b[1], b[2], b[3]),
			}
		}
	}
	return MacPool{}
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails: it crashes the program instead
	return hex.EncodeToString(b)
}

func cloneNetwork(n *Network) *Network {
	c := *n
	c.Subnets = slices.Clone(n.Subnets)
	c.Policies = slices.Clone(n.Policies)
	return &c
}
