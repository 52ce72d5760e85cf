//go:build integration

package engine

import (
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/silo-containers/silo/test/harness"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
)

// httpdScript serves one page with busybox httpd in the foreground.
const httpdScript = "mkdir -p /www && echo page-$HOSTNAME > /www/index.html && exec httpd -f -p 80 -h /www"

func TestNetworks(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")

	// A user network: containers find each other by name and by alias
	// through the embedded DNS.
	d.Must("network", "create", "--subnet", "10.123.0.0/24", "appnet")
	out := d.Must("network", "ls")
	for _, n := range []string{"nat", "none", "host", "appnet"} {
		if !strings.Contains(out, n) {
			t.Fatalf("network ls lacks %s:\n%s", n, out)
		}
	}
	d.Must("run", "-d", "--name", "web", "--hostname", "web", "--network", "appnet", "--network-alias", "www", "busybox", "sh", "-c", httpdScript)
	ip := strings.TrimSpace(d.Must("inspect", "-f", "{{.NetworkSettings.Networks.appnet.IPAddress}}", "web"))
	if !strings.HasPrefix(ip, "10.123.0.") {
		t.Fatalf("web's address %q is not on appnet", ip)
	}
	for _, name := range []string{"web", "www"} {
		var got string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			got, _, _ = d.Silo("run", "--rm", "--network", "appnet", "busybox", "sh", "-c", harness.ContainerGet(name, "80"))
			if strings.Contains(got, "page-web") {
				break
			}
		}
		if !strings.Contains(got, "page-web") {
			t.Fatalf("fetch http://%s/ from appnet: %q\n%s", name, got, d.Tail())
		}
	}
	out = d.Must("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", "appnet")
	if !strings.Contains(out, "web") {
		t.Fatalf("network inspect does not list web: %q", out)
	}
	if _, errOut, code := d.Silo("network", "rm", "appnet"); code == 0 || !strings.Contains(errOut, "active endpoints") {
		t.Fatalf("network rm of a used network: exit %d: %s", code, errOut)
	}

	// A published port on the default network, reached from the host on
	// 127.0.0.1 and from another container through the host (hairpin).
	d.Must("run", "-d", "--name", "pub", "--hostname", "pub", "-p", "127.0.0.1:8000:80", "busybox", "sh", "-c", httpdScript)
	if got := d.Fetch(t, "127.0.0.1", "8000"); !strings.Contains(got, "page-pub") {
		t.Fatalf("published port answered %q", got)
	}
	if ps := d.Must("ps"); !strings.Contains(ps, "127.0.0.1:8000->80/tcp") {
		t.Fatalf("ps does not show the published port:\n%s", ps)
	}
	gw := strings.TrimSpace(d.Must("inspect", "-f", "{{.NetworkSettings.Networks.nat.Gateway}}", "pub"))
	if gw == "" {
		t.Fatal("no gateway on the default network")
	}
	// -P picks free host ports for the exposed ones, on every host
	// address: other containers reach it through the host's address on
	// their network (hairpin), and the container reaches itself.
	d.Must("run", "-d", "--name", "auto", "--hostname", "auto", "--expose", "80", "-P", "busybox", "sh", "-c", httpdScript)
	port := strings.TrimSpace(d.Must("inspect", "-f", `{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}`, "auto"))
	if got := d.Fetch(t, "127.0.0.1", port); !strings.Contains(got, "page-auto") {
		t.Fatalf("-P port %s answered %q", port, got)
	}
	if got := d.Must("run", "--rm", "busybox", "sh", "-c", harness.ContainerGet(gw, port)); !strings.Contains(got, "page-auto") {
		t.Fatalf("hairpin through %s:%s answered %q", gw, port, got)
	}
	if got := d.Must("exec", "auto", "sh", "-c", harness.ContainerGet(gw, port)); !strings.Contains(got, "page-auto") {
		t.Fatalf("self hairpin through %s:%s answered %q", gw, port, got)
	}
	// Networks are isolated from each other, as docker's: a container on
	// appnet does not reach auto's address on nat, but does reach its
	// published port through the host (appnet's gateway).
	autoIP := strings.TrimSpace(d.Must("inspect", "-f", "{{.NetworkSettings.Networks.nat.IPAddress}}", "auto"))
	if got, _, _ := d.Silo("run", "--rm", "--network", "appnet", "busybox", "sh", "-c", harness.ContainerGet(autoIP, "80")); strings.Contains(got, "page-auto") {
		t.Fatalf("appnet reached %s on nat directly: %q", autoIP, got)
	}
	appGW := strings.TrimSpace(d.Must("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "appnet"))
	if got := d.Must("run", "--rm", "--network", "appnet", "busybox", "sh", "-c", harness.ContainerGet(appGW, port)); !strings.Contains(got, "page-auto") {
		t.Fatalf("appnet through %s:%s (published port) answered %q", appGW, port, got)
	}
	// A port published on 127.0.0.1 only is not on the gateway address.
	if got, _, _ := d.Silo("run", "--rm", "busybox", "sh", "-c", harness.ContainerGet(gw, "8000")); strings.Contains(got, "page-pub") {
		t.Fatalf("a 127.0.0.1 mapping answered on %s: %q", gw, got)
	}

	// A daemon restart keeps the ports working and adds no rule twice.
	before := d.nftRules(t)
	d.Stop()
	d.Start()
	if got := d.Fetch(t, "127.0.0.1", "8000"); !strings.Contains(got, "page-pub") {
		t.Fatalf("after a restart the published port answered %q", got)
	}
	if after := d.nftRules(t); after != before {
		t.Fatalf("rules changed across a restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// Stopping frees the port; removing frees the endpoint.
	d.Must("rm", "-f", "pub", "auto", "web")
	if rules := d.nftRules(t); strings.Contains(rules, "dnat to") {
		t.Fatalf("port mappings left after rm:\n%s", rules)
	}
	d.Must("network", "rm", "appnet")
	links, _ := d.InHost("ip", "-br", "link")
	if strings.Contains(links, "veth") {
		t.Fatalf("veths left in the host namespace:\n%s", links)
	}
}

// nftRules is silo's nftables table in the daemon's namespace.
func (d *daemon) nftRules(t *testing.T) string {
	t.Helper()
	out, err := d.InHost("nft", "list", "table", "ip", "silo")
	if err != nil {
		t.Fatalf("nft list table ip silo: %v: %s", err, out)
	}
	return out
}

func TestDockerNetworks(t *testing.T) {
	if !harness.HaveDocker() {
		t.Skip("no docker CLI")
	}
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	d.DockerOK(t, "network", "create", "--subnet", "10.124.0.0/24", "dnet")
	if out := d.DockerOK(t, "network", "ls", "--format", "{{.Name}} {{.Driver}}"); !strings.Contains(out, "dnet nat") {
		t.Fatalf("docker network ls:\n%s", out)
	}
	d.DockerOK(t, "run", "-d", "--name", "dweb", "--network", "dnet", "-p", "127.0.0.1:8001:80", "busybox", "sh", "-c", httpdScript)
	if got := d.Fetch(t, "127.0.0.1", "8001"); !strings.Contains(got, "page-") {
		t.Fatalf("docker -p answered %q", got)
	}
	out := d.DockerOK(t, "run", "--rm", "--network", "dnet", "busybox", "sh", "-c", harness.ContainerGet("dweb", "80"))
	if !strings.Contains(out, "page-") {
		t.Fatalf("docker run by name: %q", out)
	}
	out = d.DockerOK(t, "port", "dweb")
	if !strings.Contains(out, "127.0.0.1:8001") {
		t.Fatalf("docker port: %q", out)
	}
	d.DockerOK(t, "rm", "-f", "dweb")
	d.DockerOK(t, "network", "rm", "dnet")
}

// blocked reports whether one GET of addr:port from the daemon's host
// namespace fails to get an answer.
func (d *daemon) blocked(addr, port string) bool {
	cmd := exec.Command("ip", "netns", "exec", d.Netns, "/bin/busybox", "nc", "-w", "2", addr, port)
	cmd.Stdin = strings.NewReader(harness.HTTPGet)
	out, _ := cmd.CombinedOutput()
	return !strings.Contains(string(out), "200 OK")
}

func TestEndpointPolicies(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	block80 := `{"ACLs":[{"Action":"Block","Direction":"In","Protocols":"tcp","LocalPorts":[{"First":80,"Last":80}],"Priority":100}]}`
	// Blocked from the start (policy given at run)…
	d.Must("run", "-d", "--name", "fw", "--hostname", "fw", "-p", "127.0.0.1:8003:80", "--endpoint-policy", block80,
		"busybox", "sh", "-c", httpdScript)
	// run -d returns once sh runs: httpd may not listen yet.
	var out string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, _, _ = d.Silo("exec", "fw", "sh", "-c", harness.ContainerGet("127.0.0.1", "80"))
		if strings.Contains(out, "page-fw") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(out, "page-fw") {
		t.Fatalf("the server does not answer inside the container: %q", out)
	}
	if !d.blocked("127.0.0.1", "8003") {
		t.Fatal("an ACL blocking tcp/80 in let the request through")
	}
	// …opened live…
	d.Must("network", "policy", "fw", "nat", "{}")
	if got := d.Fetch(t, "127.0.0.1", "8003"); !strings.Contains(got, "page-fw") {
		t.Fatalf("after clearing the ACL: %q", got)
	}
	// …and closed live again; inspect shows the record.
	d.Must("network", "policy", "fw", "nat", block80)
	if !d.blocked("127.0.0.1", "8003") {
		t.Fatal("the ACL set live did not block")
	}
	if out := d.Must("inspect", "-f", `{{index .NetworkSettings.Networks.nat.DriverOpts "silo.policies"}}`, "fw"); !strings.Contains(out, `"Block"`) {
		t.Fatalf("inspect does not show the policy: %q", out)
	}
	if _, errOut, code := d.Silo("run", "--rm", "--endpoint-policy", `{"ACLs":[{"Action":"Maybe"}]}`, "busybox", "true"); code == 0 || !strings.Contains(errOut, "acl action") {
		t.Fatalf("a bad ACL: exit %d: %s", code, errOut)
	}
}

// TestContainerDNS: on a user network a container's own --dns servers get
// the names the network does not know, through the embedded DNS.
func TestContainerDNS(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	d.Must("network", "create", "--subnet", "10.125.0.0/24", "dnsnet")
	// The container's resolver: a DNS server of the test's on an address
	// of the daemon's host namespace.
	if out, err := d.InHost("ip", "addr", "add", "10.77.77.77/32", "dev", "lo"); err != nil {
		t.Fatalf("address for the test resolver: %v: %s", err, out)
	}
	stop := serveDNSIn(t, "/run/netns/"+d.Netns, "10.77.77.77:53", "ext.example.", "192.0.2.77")
	defer stop()
	out := d.Must("run", "--rm", "--network", "dnsnet", "--dns", "10.77.77.77", "busybox", "nslookup", "ext.example")
	if !strings.Contains(out, "192.0.2.77") {
		t.Fatalf("nslookup through the container's --dns: %q", out)
	}
	// Without --dns the name is not known (the network's upstreams are
	// the host's, unreachable from the test's namespace).
	if out, _, code := d.Silo("run", "--rm", "--network", "dnsnet", "busybox", "nslookup", "ext.example"); code == 0 && strings.Contains(out, "192.0.2.77") {
		t.Fatalf("the container without --dns got the test resolver's answer: %q", out)
	}
}

// serveDNSIn answers name with addr (A records) on a UDP socket bound to
// listen inside the network namespace at nsPath, until stop.
func serveDNSIn(t *testing.T, nsPath, listen, name, addr string) (stop func()) {
	t.Helper()
	pcc := make(chan net.PacketConn, 1)
	errc := make(chan error, 1)
	go func() {
		// The thread enters the namespace and is thrown away after.
		runtime.LockOSThread()
		ns, err := netns.GetFromPath(nsPath)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		pc, err := net.ListenPacket("udp", listen)
		if err != nil {
			errc <- err
			return
		}
		pcc <- pc
	}()
	var pc net.PacketConn
	select {
	case err := <-errc:
		t.Fatalf("test resolver: %v", err)
	case pc = <-pcc:
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Name == name && q.Qtype == dns.TypeA {
				rr, _ := dns.NewRR(name + " 5 IN A " + addr)
				m.Answer = append(m.Answer, rr)
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	return func() { _ = srv.Shutdown() }
}
