package dns

import (
	"context"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNetns runs fn on a thread inside ns; the thread is thrown away
// afterwards, as network.HostNS.Do does.
func inNetns(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// newNetns makes a network namespace with loopback up. It is not bound
// anywhere: it disappears with its last handle and socket.
func newNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	type made struct {
		ns  netns.NsHandle
		err error
	}
	c := make(chan made, 1)
	go func() {
		// netns.New moves the thread into the new namespace: the thread
		// is locked and thrown away with the goroutine.
		runtime.LockOSThread()
		ns, err := netns.New()
		c <- made{ns, err}
	}()
	m := <-c
	ns, err := m.ns, m.err
	if err != nil {
		t.Skipf("cannot make a network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return ns
}

// TestInNamespace runs the server the way the network service does: its
// sockets opened by Listen on port 53 on a thread inside a namespace (a
// simulated host), its upstream reached through a Dial that dials from
// there too, and a client in that namespace.
func TestInNamespace(t *testing.T) {
	ns := newNetns(t)

	// The upstream: a real DNS server on 127.0.0.2:53 in the namespace.
	var upPC net.PacketConn
	if err := inNetns(ns, func() error {
		var err error
		upPC, err = net.ListenPacket("udp", "127.0.0.2:53")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	up := &mdns.Server{PacketConn: upPC, Handler: mdns.HandlerFunc(answerA("198.51.100.7"))}
	started := make(chan struct{})
	up.NotifyStartedFunc = func() { close(started) }
	go up.ActivateAndServe()
	<-started
	defer up.Shutdown()

	s, err := New(Config{
		Lookup:    testLookup,
		Upstreams: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.2:53")},
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			var c net.Conn
			err := inNetns(ns, func() error {
				var d net.Dialer
				var err error
				c, err = d.DialContext(ctx, network, address)
				return err
			})
			return c, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	listen := netip.MustParseAddrPort("127.0.0.1:53")
	var pc net.PacketConn
	var ln net.Listener
	if err := inNetns(ns, func() error {
		var err error
		pc, ln, err = Listen(listen)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(pc, ln); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()

	for _, tt := range []struct{ network, name, want string }{
		{"udp", "web.", "10.88.0.2"},
		{"tcp", "db.", "10.88.0.3"},
		{"udp", "example.org.", "198.51.100.7"},
	} {
		var r *mdns.Msg
		err := inNetns(ns, func() error {
			m := new(mdns.Msg)
			m.SetQuestion(tt.name, mdns.TypeA)
			c := &mdns.Client{Net: tt.network, Timeout: 3 * time.Second}
			var err error
			r, _, err = c.Exchange(m, listen.String())
			return err
		})
		if err != nil {
			t.Fatalf("%s over %s: %v", tt.name, tt.network, err)
		}
		if got := answers(r); len(got) != 1 || got[0] != tt.want {
			t.Fatalf("%s over %s: answers %v, want %s", tt.name, tt.network, got, tt.want)
		}
	}
}
