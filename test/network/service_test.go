//go:build integration

// Package network holds root integration tests of the network service.
// Every test builds its own "hosts" as network namespaces and sends
// traffic only inside them.
package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
	"github.com/silo-containers/silo/internal/network/netnsutil"
)

// simNS is a namespace made with `ip netns add` for the test: a simulated
// host or an outside machine.
type simNS struct {
	name string
	path string
}

func newSimNS(t *testing.T, prefix string) *simNS {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	n := &simNS{name: prefix + "-" + hex.EncodeToString(b)}
	n.path = "/run/netns/" + n.name
	run(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("delete netns %s: %v: %s", n.name, err, out)
		}
	})
	run(t, "ip", "-n", n.name, "link", "set", "lo", "up")
	return n
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// in runs a command inside the namespace at path and returns its output.
func in(path string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + path}, args...)...).CombinedOutput()
	return string(out), err
}

// background starts a long-running command in a namespace, stopped at
// the end of the test.
func background(t *testing.T, path string, args ...string) {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + path}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// cleanNamespaces removes, at the end of a failed test, the namespaces
// the service left under runDir (a passing test has removed them).
func cleanNamespaces(t *testing.T, runDir string) {
	t.Cleanup(func() {
		entries, _ := os.ReadDir(filepath.Join(runDir, "netns"))
		for _, e := range entries {
			if err := netnsutil.Remove(filepath.Join(runDir, "netns", e.Name())); err != nil {
				t.Error(err)
			}
		}
	})
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func newService(t *testing.T, host *simNS, state, runDir string) *network.Service {
	t.Helper()
	s, err := network.New(context.Background(), network.Config{StateDir: state, RunDir: runDir, HostNetNS: host.path})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestServiceObjects covers the records: pre-defined networks, reference
// resolution, conflicts, namespaces, and that a restart finds it all again
// and leaves nothing behind after removal.
func TestServiceObjects(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	host := newSimNS(t, "silotest-host")
	dir := t.TempDir()
	state, runDir := filepath.Join(dir, "state"), filepath.Join(dir, "run")
	cleanNamespaces(t, runDir)
	s := newService(t, host, state, runDir)

	nets, err := s.Networks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nets {
		names = append(names, n.Name)
	}
	if strings.Join(names, ",") != "host,nat,none" {
		t.Fatalf("networks %v, want host,nat,none", names)
	}
	def, err := s.Network(ctx, "bridge")
	if err != nil || def.Name != "nat" || def.Interface != "silo0" || def.Subnets[0].Prefix.String() != "172.17.0.0/16" || def.Subnets[0].Gateway.String() != "172.17.0.1" {
		t.Fatalf("default network: %+v, %v", def, err)
	}
	if def.MacPool.Start != "02-42-AC-11-00-00" || def.MacPool.End != "02-42-AC-11-FF-FF" {
		t.Fatalf("mac pool %+v", def.MacPool)
	}
	if out, _ := in(host.path, 5*time.Second, "ip", "-4", "addr", "show", "silo0"); !strings.Contains(out, "172.17.0.1/16") {
		t.Fatalf("silo0 in the simulated host: %s", out)
	}

	user, err := s.CreateNetwork(ctx, network.CreateNetworkRequest{Name: "front", Type: "bridge"})
	if err != nil {
		t.Fatal(err)
	}
	if user.Type != network.NAT || user.Subnets[0].Prefix.String() != "172.18.0.0/16" || user.Interface != "br-"+user.ID[:12] {
		t.Fatalf("user network %+v", user)
	}
	errTests := []struct {
		name string
		req  network.CreateNetworkRequest
		want error
	}{
		{"same name", network.CreateNetworkRequest{Name: "front"}, errdefs.ErrConflict},
		{"reserved name", network.CreateNetworkRequest{Name: "bridge"}, errdefs.ErrConflict},
		{"overlap", network.CreateNetworkRequest{Name: "o", Subnets: []network.Subnet{{Prefix: mustPrefix("172.18.5.0/24")}}}, errdefs.ErrConflict},
		{"host type", network.CreateNetworkRequest{Name: "h2", Type: network.Host}, errdefs.ErrForbidden},
		{"unknown type", network.CreateNetworkRequest{Name: "x", Type: "weird"}, errdefs.ErrNotImplemented},
		{"gateway outside", network.CreateNetworkRequest{Name: "g", Subnets: []network.Subnet{{Prefix: mustPrefix("10.9.0.0/24"), Gateway: mustAddr("10.8.0.1")}}}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range errTests {
		if _, err := s.CreateNetwork(ctx, tt.req); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	for ref, want := range map[string]string{user.ID: "front", user.ID[:5]: "front", "front": "front", "default": "nat", "nat": "nat", "none": "none"} {
		if n, err := s.Network(ctx, ref); err != nil || n.Name != want {
			t.Errorf("Network(%q) = %v, %v; want %s", ref, n, err, want)
		}
	}
	if _, err := s.Network(ctx, "nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Network(nosuch): %v", err)
	}
	for _, ref := range []string{"nat", "none", "host"} {
		if err := s.RemoveNetwork(ctx, ref); !errors.Is(err, errdefs.ErrForbidden) {
			t.Errorf("remove pre-defined network %s: %v", ref, err)
		}
	}
	if err := s.RemoveNetwork(ctx, "nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("remove unknown network: %v", err)
	}

	// A namespace with an endpoint keeps the network; a static address
	// already taken conflicts.
	p, err := s.CreateNamespace(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if p2, err := s.CreateNamespace(ctx, "c1"); err != nil || p2 != p {
		t.Fatalf("second CreateNamespace: %s, %v", p2, err)
	}
	ep, err := s.Attach(ctx, network.AttachRequest{Namespace: "c1", Network: "front", Name: "/one", IP: mustAddr("172.18.0.10")})
	if err != nil {
		t.Fatal(err)
	}
	if ep.IfName != "eth0" || ep.Addresses[0].String() != "172.18.0.10/16" || ep.MAC != "02:42:ac:12:00:0a" || ep.Name != "one" {
		t.Fatalf("endpoint %+v", ep)
	}
	if _, err := s.CreateNamespace(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Attach(ctx, network.AttachRequest{Namespace: "c2", Network: "front", IP: mustAddr("172.18.0.10")}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("static address taken: %v", err)
	}
	if _, err := s.Attach(ctx, network.AttachRequest{Namespace: "c1", Network: "front"}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second attach to one network: %v", err)
	}
	if _, err := s.Attach(ctx, network.AttachRequest{Namespace: "nosuch", Network: "front"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("attach of unknown namespace: %v", err)
	}
	// Nothing of the failed attaches is left.
	if out, _ := in(host.path, 5*time.Second, "ip", "-o", "link", "show", "type", "veth"); strings.Count(out, "veth") != 1 {
		t.Fatalf("veths after failed attaches: %s", out)
	}
	if err := s.RemoveNetwork(ctx, "front"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("remove network with endpoints: %v", err)
	}

	// Restart: the records come back; an endpoint whose namespace a crash
	// took away is dropped, a stray namespace file is removed.
	p3, err := s.CreateNamespace(ctx, "c3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Attach(ctx, network.AttachRequest{Namespace: "c3", Network: "front", Name: "three"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// While the service is down, c3's namespace disappears (a reboot
	// empties /run) and a file without a record appears.
	if err := netnsutil.Remove(p3); err != nil {
		t.Fatal(err)
	}
	// A veth on the bridge without a record: a crash inside Attach.
	run(t, "ip", "-n", host.name, "link", "add", "vethdeadbeef", "master", user.Interface, "type", "veth", "peer", "name", "strayp")
	if err := os.WriteFile(filepath.Join(runDir, "netns", "stray"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	s = newService(t, host, state, runDir)
	defer s.Close()
	eps, err := s.Endpoints(ctx, "front")
	if err != nil || len(eps) != 1 || eps[0].ID != ep.ID {
		t.Fatalf("endpoints after restart: %v, %v", eps, err)
	}
	if out, _ := in(host.path, 5*time.Second, "ip", "-o", "link"); strings.Contains(out, "vethdeadbeef") || strings.Contains(out, "strayp") {
		t.Fatalf("stray veth kept: %s", out)
	}
	if _, err := os.Stat(filepath.Join(runDir, "netns", "stray")); !os.IsNotExist(err) {
		t.Fatalf("stray namespace file kept: %v", err)
	}
	if got := s.Lookup(user.ID, "three"); len(got) != 0 {
		t.Fatalf("endpoint of a vanished namespace kept: %v", got)
	}
	if nss, _ := s.Namespaces(ctx); len(nss) != 2 {
		t.Fatalf("namespaces after restart: %d, want c1 and c2", len(nss))
	}
	if got := s.Lookup(user.ID, "ONE"); len(got) != 1 || got[0].String() != "172.18.0.10" {
		t.Fatalf("Lookup(ONE) = %v", got)
	}
	// The restored pool knows the address is taken.
	if _, err := s.Attach(ctx, network.AttachRequest{Namespace: "c2", Network: "front", IP: mustAddr("172.18.0.10")}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("static address taken after restart: %v", err)
	}

	for _, id := range []string{"c1", "c2", "c1"} {
		if err := s.RemoveNamespace(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveNetwork(ctx, user.ID[:12]); err != nil {
		t.Fatal(err)
	}
	out, _ := in(host.path, 5*time.Second, "ip", "-o", "link")
	if strings.Contains(out, "veth") || strings.Contains(out, "br-") {
		t.Fatalf("links left in the simulated host: %s", out)
	}
	if entries, _ := os.ReadDir(filepath.Join(runDir, "netns")); len(entries) != 0 {
		t.Fatalf("namespaces left: %v", entries)
	}
}

// TestParallelAttach attaches and removes many namespaces at once, as
// the engine starting containers in parallel does: every endpoint gets its
// own address and host port, and nothing is left afterwards.
func TestParallelAttach(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	host := newSimNS(t, "silotest-host")
	dir := t.TempDir()
	state, runDir := filepath.Join(dir, "state"), filepath.Join(dir, "run")
	cleanNamespaces(t, runDir)
	s := newService(t, host, state, runDir)
	defer s.Close() // after Purge: a no-op

	// One namespace + endpoint at a time, for the figure.
	const seq = 5
	t0 := time.Now()
	for i := range seq {
		id := fmt.Sprintf("s%d", i)
		if _, err := s.CreateNamespace(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Attach(ctx, network.AttachRequest{Namespace: id, Network: "nat", PortMappings: []network.PortMapping{{InternalPort: 80}}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("create namespace + attach: %v each (sequential)", time.Since(t0)/seq)
	t0 = time.Now()
	for i := range seq {
		if err := s.RemoveNamespace(ctx, fmt.Sprintf("s%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("remove namespace with its endpoint: %v each", time.Since(t0)/seq)

	const n = 12
	eps := make([]*network.Endpoint, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("p%d", i)
			if _, err := s.CreateNamespace(ctx, id); err != nil {
				errs[i] = err
				return
			}
			// docker sends -p 80 as a 0.0.0.0 and a :: binding: one mapping.
			eps[i], errs[i] = s.Attach(ctx, network.AttachRequest{Namespace: id, Network: "nat", Name: id, PortMappings: []network.PortMapping{
				{InternalPort: 80, HostIP: netip.IPv4Unspecified()}, {InternalPort: 80, HostIP: netip.IPv6Unspecified()}}})
		}()
	}
	wg.Wait()
	t.Logf("%d namespaces created and attached in parallel in %v", n, time.Since(start))
	addrs, ports := map[string]bool{}, map[uint16]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("attach %d: %v", i, err)
		}
		if len(eps[i].PortMappings) != 1 {
			t.Fatalf("endpoint %d mappings %+v, want one", i, eps[i].PortMappings)
		}
		addrs[eps[i].Addresses[0].Addr().String()] = true
		ports[eps[i].PortMappings[0].ExternalPort] = true
	}
	if len(addrs) != n || len(ports) != n {
		t.Fatalf("%d distinct addresses and %d distinct ports for %d endpoints", len(addrs), len(ports), n)
	}
	out := nftList(t, host)
	if c := strings.Count(out, "dnat to"); c != n {
		t.Fatalf("%d dnat rules, want %d:\n%s", c, n, out)
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.RemoveNamespace(ctx, fmt.Sprintf("p%d", i))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("remove %d: %v", i, err)
		}
	}
	if out := linksLeft(host.path, "veth"); out != "" {
		t.Fatalf("veths left: %s", out)
	}
	if out := nftList(t, host); strings.Contains(out, "dnat to") {
		t.Fatalf("dnat rules left:\n%s", out)
	}

	// Purge takes down what is left (one namespace with an endpoint, a
	// user network, the default bridge and the table).
	if _, err := s.CreateNetwork(ctx, network.CreateNetworkRequest{Name: "extra"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateNamespace(ctx, "last"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Attach(ctx, network.AttachRequest{Namespace: "last", Network: "extra"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if out, _ := in(host.path, 5*time.Second, "ip", "-o", "link"); strings.Contains(out, "veth") || strings.Contains(out, "br-") || strings.Contains(out, "silo0") {
		t.Fatalf("links left after purge: %s", out)
	}
	if out, err := in(host.path, 5*time.Second, "nft", "list", "tables"); err != nil || strings.Contains(out, "silo") {
		t.Fatalf("tables after purge: %v: %s", err, out)
	}
	if entries, _ := os.ReadDir(filepath.Join(runDir, "netns")); len(entries) != 0 {
		t.Fatalf("namespaces left after purge: %v", entries)
	}
}

// TestIPv6 gives endpoints an IPv6 address next to the IPv4 one; they
// reach each other over both. (No IPv6 NAT rules are rendered.)
func TestIPv6(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	host := newSimNS(t, "silotest-host")
	// A host route inside 172.17.0.0/16: the default network avoids it.
	run(t, "ip", "-n", host.name, "link", "add", "up0", "type", "veth", "peer", "name", "up1")
	run(t, "ip", "-n", host.name, "addr", "add", "172.17.5.1/24", "dev", "up0")
	run(t, "ip", "-n", host.name, "link", "set", "up0", "up")
	dir := t.TempDir()
	state, runDir := filepath.Join(dir, "state"), filepath.Join(dir, "run")
	cleanNamespaces(t, runDir)
	s := newService(t, host, state, runDir)
	defer s.Close()
	if def, err := s.Network(ctx, "nat"); err != nil || def.Subnets[0].Prefix.String() != "172.18.0.0/16" {
		t.Fatalf("default network beside a host route in 172.17.0.0/16: %+v, %v", def, err)
	}
	if _, err := s.CreateNetwork(ctx, network.CreateNetworkRequest{Name: "nov6", Subnets: []network.Subnet{{Prefix: mustPrefix("fd00:5::/64")}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("IPv6 subnet without EnableIPv6: %v", err)
	}
	n, err := s.CreateNetwork(ctx, network.CreateNetworkRequest{Name: "v6", EnableIPv6: true, Subnets: []network.Subnet{{Prefix: mustPrefix("fd00:5::/64")}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Subnets) != 2 || n.Subnets[0].Gateway.String() != "fd00:5::1" || n.Subnets[1].Prefix.String() != "172.19.0.0/16" {
		t.Fatalf("subnets %+v", n.Subnets)
	}
	var paths []string
	var eps []*network.Endpoint
	for _, id := range []string{"v1", "v2"} {
		p, err := s.CreateNamespace(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		defer s.RemoveNamespace(ctx, id)
		ep, err := s.Attach(ctx, network.AttachRequest{Namespace: id, Network: "v6", Name: id})
		if err != nil {
			t.Fatal(err)
		}
		paths, eps = append(paths, p), append(eps, ep)
	}
	if len(eps[0].Addresses) != 2 || eps[0].Addresses[0].String() != "fd00:5::2/64" || len(eps[0].Gateways) != 2 {
		t.Fatalf("endpoint %+v", eps[0])
	}
	for _, a := range eps[1].Addresses {
		if out, err := in(paths[0], 5*time.Second, "busybox", "ping", "-c1", "-W2", a.Addr().String()); err != nil {
			t.Errorf("ping %s: %v: %s", a.Addr(), err, out)
		}
	}
	if out, _ := in(paths[0], 5*time.Second, "ip", "-6", "route", "show", "default"); !strings.Contains(out, "via fd00:5::1") {
		t.Errorf("IPv6 default route: %q", out)
	}
}

// linksLeft waits (up to 3 s) for the links whose listing contains one of
// names to go from the namespace at path, and returns the listing if some
// stay. Removing a namespace leaves its interfaces' deletion, and their
// veth peers', to the kernel's background cleanup: they go a moment later.
func linksLeft(path string, names ...string) string {
	var out string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out, _ = in(path, 5*time.Second, "ip", "-o", "link")
		if !slices.ContainsFunc(names, func(n string) bool { return strings.Contains(out, n) }) {
			return ""
		}
	}
	return out
}
