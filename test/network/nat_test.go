//go:build integration

package network

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/silo-containers/silo/internal/network"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }

// wget fetches url from inside the namespace at path.
func wget(path, url string) (string, error) { return wgetWithin(path, url, 8*time.Second) }

// wgetWithin is wget with a timeout (for requests expected to fail).
func wgetWithin(path, url string, timeout time.Duration) (string, error) {
	out, err := in(path, timeout, "busybox", "wget", "-q", "-O", "-", url) // -T crashes busybox 1.35
	return strings.TrimSpace(out), err
}

// eventually retries fn until it succeeds (servers take a moment to
// listen) or 5 s pass.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = fn(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

func expectBody(path, url, want string) func() error {
	return func() error {
		got, err := wget(path, url)
		if err != nil {
			return fmt.Errorf("wget %s: %v: %s", url, err, got)
		}
		// busybox httpd listens on IPv6 and shows IPv4 peers mapped.
		got = strings.TrimSuffix(strings.TrimPrefix(got, "[::ffff:"), "]")
		if got != want {
			return fmt.Errorf("wget %s = %q, want %q", url, got, want)
		}
		return nil
	}
}

// TestNAT runs the nat driver end to end on a simulated host: two
// endpoints reach each other; a published port answers on the host's
// 127.0.0.1 and, by hairpin, to endpoints; an ACL blocks and unblocks a
// port live; outbound NAT masquerades except for an exception; QoS sets a
// token bucket; a restart keeps the mappings without duplicating rules;
// removal leaves nothing.
func TestNAT(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	host := newSimNS(t, "silotest-host")
	outside := newSimNS(t, "silotest-out")
	// The outside machine: a veth to the simulated host, a route back to
	// the container subnets (for unmasqueraded traffic).
	vh, vo := "sh"+host.name[len(host.name)-8:], "so"+host.name[len(host.name)-8:]
	run(t, "ip", "-n", host.name, "link", "add", vh, "type", "veth", "peer", "name", vo, "netns", outside.name)
	run(t, "ip", "-n", host.name, "addr", "add", "10.250.0.1/24", "dev", vh)
	run(t, "ip", "-n", host.name, "link", "set", vh, "up")
	run(t, "ip", "-n", outside.name, "addr", "add", "10.250.0.2/24", "dev", vo)
	run(t, "ip", "-n", outside.name, "link", "set", vo, "up")
	run(t, "ip", "-n", outside.name, "route", "add", "172.16.0.0/12", "via", "10.250.0.1")

	dir := t.TempDir()
	state, runDir := filepath.Join(dir, "state"), filepath.Join(dir, "run")
	cleanNamespaces(t, runDir)
	s := newService(t, host, state, runDir)
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	if _, err := s.CreateNetwork(ctx, network.CreateNetworkRequest{Name: "front"}); err != nil {
		t.Fatal(err)
	}

	// Web content and a CGI script printing the client's address.
	www := filepath.Join(dir, "www")
	os.MkdirAll(filepath.Join(www, "cgi-bin"), 0o755)
	os.WriteFile(filepath.Join(www, "index.html"), []byte("hello from web\n"), 0o644)
	os.WriteFile(filepath.Join(www, "cgi-bin", "ip"), []byte("#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"$REMOTE_ADDR\"\n"), 0o755)

	webNS, err := s.CreateNamespace(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	clientNS, err := s.CreateNamespace(ctx, "client")
	if err != nil {
		t.Fatal(err)
	}
	web, err := s.Attach(ctx, network.AttachRequest{Namespace: "web", Network: "front", ContainerID: strings.Repeat("ab", 32), Name: "web", Aliases: []string{"www"},
		PortMappings: []network.PortMapping{
			{Protocol: "tcp", InternalPort: 80, ExternalPort: 8000, HostIP: mustAddr("127.0.0.1")},
			{InternalPort: 80}, // -p 80: a dynamic host port on every address
		}})
	if err != nil {
		t.Fatal(err)
	}
	dyn := web.PortMappings[1].ExternalPort
	if dyn < 49153 {
		t.Fatalf("dynamic port %d", dyn)
	}
	client, err := s.Attach(ctx, network.AttachRequest{Namespace: "client", Network: "front", Name: "client"})
	if err != nil {
		t.Fatal(err)
	}
	webIP, clientIP := web.Addresses[0].Addr().String(), client.Addresses[0].Addr().String()
	background(t, webNS, "busybox", "httpd", "-f", "-p", "80", "-h", www)
	background(t, outside.path, "busybox", "httpd", "-f", "-p", "8000", "-h", www)

	t.Run("ping", func(t *testing.T) {
		eventually(t, "ping "+webIP, func() error {
			if out, err := in(clientNS, 5*time.Second, "busybox", "ping", "-c1", "-W1", webIP); err != nil {
				return fmt.Errorf("%w: %s", err, out)
			}
			return nil
		})
	})
	t.Run("lookup", func(t *testing.T) {
		for _, name := range []string{"WEB", "www", "abababababab"} {
			if got := s.Lookup("front", name); len(got) != 1 || got[0].String() != webIP {
				t.Errorf("Lookup(%s) = %v", name, got)
			}
		}
		if got := s.Lookup("nat", "web"); len(got) != 0 {
			t.Errorf("Lookup on another network = %v", got)
		}
	})
	t.Run("published on host localhost", func(t *testing.T) {
		eventually(t, "host 127.0.0.1:8000", expectBody(host.path, "http://127.0.0.1:8000/", "hello from web"))
		eventually(t, "host 127.0.0.1:dyn", expectBody(host.path, "http://127.0.0.1:"+strconv.Itoa(int(dyn))+"/", "hello from web"))
	})
	t.Run("published from outside", func(t *testing.T) {
		eventually(t, "outside → host:dyn", expectBody(outside.path, "http://10.250.0.1:"+strconv.Itoa(int(dyn))+"/", "hello from web"))
		// 8000 is published on 127.0.0.1 only: the outside reaches its
		// own server, not the endpoint's... so ask the host address.
		if got, err := wgetWithin(outside.path, "http://10.250.0.1:8000/", 2*time.Second); err == nil {
			t.Fatalf("127.0.0.1-only mapping answered on 10.250.0.1: %q", got)
		}
	})
	t.Run("hairpin", func(t *testing.T) {
		for _, addr := range []string{"10.250.0.1", "172.18.0.1"} {
			url := "http://" + addr + ":" + strconv.Itoa(int(dyn)) + "/"
			eventually(t, "client → "+url, expectBody(clientNS, url, "hello from web"))
			eventually(t, "web → itself "+url, expectBody(webNS, url, "hello from web"))
		}
	})
	t.Run("acl", func(t *testing.T) {
		block := []network.ACL{{Action: network.Block, Direction: network.In, Protocol: "tcp", LocalPorts: []network.PortRange{{First: 80, Last: 80}}, Priority: 100}}
		if err := s.SetPolicies(ctx, web.ID, block, nil, nil); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ ns, url string }{
			{host.path, "http://127.0.0.1:8000/"},
			{clientNS, "http://" + webIP + "/"},
			{outside.path, "http://10.250.0.1:" + strconv.Itoa(int(dyn)) + "/"},
		} {
			if got, err := wgetWithin(c.ns, c.url, 2*time.Second); err == nil {
				t.Errorf("blocked %s answered %q", c.url, got)
			}
		}
		// Ping is not blocked by a tcp rule.
		if out, err := in(clientNS, 5*time.Second, "busybox", "ping", "-c1", "-W1", webIP); err != nil {
			t.Errorf("ping under a tcp block: %v: %s", err, out)
		}
		if err := s.SetPolicies(ctx, web.ID, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		eventually(t, "after unblock", expectBody(host.path, "http://127.0.0.1:8000/", "hello from web"))
		eventually(t, "after unblock, direct", expectBody(clientNS, "http://"+webIP+"/", "hello from web"))
	})
	t.Run("outbound nat", func(t *testing.T) {
		url := "http://10.250.0.2:8000/cgi-bin/ip"
		eventually(t, "masqueraded", expectBody(clientNS, url, "10.250.0.1"))
		exc := &network.OutboundNAT{Exceptions: []netip.Prefix{mustPrefix("10.250.0.0/24")}}
		if err := s.SetPolicies(ctx, client.ID, nil, exc, nil); err != nil {
			t.Fatal(err)
		}
		eventually(t, "exception", expectBody(clientNS, url, clientIP))
		// Another prefix as exception: masqueraded again.
		exc = &network.OutboundNAT{Exceptions: []netip.Prefix{mustPrefix("10.99.0.0/16")}}
		if err := s.SetPolicies(ctx, client.ID, nil, exc, nil); err != nil {
			t.Fatal(err)
		}
		eventually(t, "other exception", expectBody(clientNS, url, "10.250.0.1"))
	})
	t.Run("qos", func(t *testing.T) {
		if err := s.SetPolicies(ctx, client.ID, nil, nil, &network.QoS{MaximumOutgoingBandwidthInBytes: 1 << 20}); err != nil {
			t.Fatal(err)
		}
		out, _ := in(clientNS, 5*time.Second, "tc", "qdisc", "show", "dev", "eth0")
		if !strings.Contains(out, "tbf") || !strings.Contains(out, "rate 8388Kbit") {
			t.Fatalf("qdisc with qos: %s", out)
		}
		if err := s.SetPolicies(ctx, client.ID, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		if out, _ := in(clientNS, 5*time.Second, "tc", "qdisc", "show", "dev", "eth0"); strings.Contains(out, "tbf") {
			t.Fatalf("qdisc after removing qos: %s", out)
		}
	})
	t.Run("internal", func(t *testing.T) {
		priv, err := s.CreateNetwork(ctx, network.CreateNetworkRequest{Name: "priv", Internal: true})
		if err != nil {
			t.Fatal(err)
		}
		p1, _ := s.CreateNamespace(ctx, "p1")
		p2, _ := s.CreateNamespace(ctx, "p2")
		defer s.RemoveNamespace(ctx, "p1")
		defer s.RemoveNamespace(ctx, "p2")
		e1, err := s.Attach(ctx, network.AttachRequest{Namespace: "p1", Network: "priv", Name: "p1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Attach(ctx, network.AttachRequest{Namespace: "p2", Network: "priv", Name: "p2"}); err != nil {
			t.Fatal(err)
		}
		// A fresh endpoint may miss the first echo (neighbour discovery on
		// a loaded machine): ping until it answers.
		eventually(t, "ping on internal network", func() error {
			if out, err := in(p2, 5*time.Second, "busybox", "ping", "-c1", "-W1", e1.Addresses[0].Addr().String()); err != nil {
				return fmt.Errorf("%w: %s", err, out)
			}
			return nil
		})
		if out, _ := in(p1, 5*time.Second, "ip", "route"); strings.Contains(out, "default") {
			t.Fatalf("internal endpoint has a default route: %s", out)
		}
		// Even with a route added by hand, nothing is forwarded off the
		// internal bridge.
		if out, err := in(p1, 5*time.Second, "ip", "route", "add", "default", "via", priv.Subnets[0].Gateway.String()); err != nil {
			t.Fatalf("add route: %v: %s", err, out)
		}
		if out, err := in(p1, 3*time.Second, "busybox", "ping", "-c1", "-W1", "10.250.0.2"); err == nil {
			t.Fatalf("internal endpoint reached the outside: %s", out)
		}
	})

	// Restart: the published port still answers; the table has no
	// duplicate rule.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	before := nftList(t, host)
	s = newService(t, host, state, runDir)
	closed = false
	after := nftList(t, host)
	if before != after {
		t.Errorf("restart changed the rules:\n%s\n---\n%s", before, after)
	}
	seen, chain := map[string]bool{}, ""
	for _, l := range strings.Split(after, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "chain ") {
			chain = l
		}
		if l == "" || l == "}" || strings.HasPrefix(l, "type ") || strings.HasPrefix(l, "chain ") {
			continue
		}
		l = chain + " " + l
		if seen[l] {
			t.Errorf("duplicate rule after restart: %s", l)
		}
		seen[l] = true
	}
	eventually(t, "published port after restart", expectBody(host.path, "http://127.0.0.1:8000/", "hello from web"))
	eventually(t, "hairpin after restart", expectBody(clientNS, "http://172.18.0.1:"+strconv.Itoa(int(dyn))+"/", "hello from web"))

	// Removal. The rules of removed endpoints go in the background.
	for _, id := range []string{"web", "client"} {
		if err := s.RemoveNamespace(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "port rules gone after the namespaces", func() error {
		if out := nftList(t, host); strings.Contains(out, "dnat to") {
			return fmt.Errorf("dnat rules left:\n%s", out)
		}
		return nil
	})
	for _, n := range []string{"front", "priv"} {
		if err := s.RemoveNetwork(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if after := nftList(t, host); strings.Contains(after, "dnat to") || strings.Contains(after, "br-") {
		t.Errorf("rules left after removal:\n%s", after)
	}
	if out := linksLeft(host.path, "veth", "br-"); out != "" {
		t.Errorf("links left: %s", out)
	}
	if entries, _ := os.ReadDir(filepath.Join(runDir, "netns")); len(entries) != 0 {
		t.Errorf("namespaces left: %v", entries)
	}
}

func nftList(t *testing.T, host *simNS) string {
	t.Helper()
	out, err := in(host.path, 5*time.Second, "nft", "list", "table", "ip", "silo")
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, out)
	}
	return out
}
