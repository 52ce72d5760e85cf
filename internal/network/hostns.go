package network

import (
	"fmt"
	"runtime"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// HostNS is the network namespace silo's networks live in: the daemon's
// own namespace in production, a namespace made by a test (a "simulated
// host") in tests. Every netlink and nftables call of the service and
// the drivers goes through it, which is what lets tests build several
// hosts on one machine without touching the real one.
type HostNS struct {
	// ns is a handle on the namespace; closed by Close.
	ns netns.NsHandle
	// Link is a netlink handle bound to the namespace.
	Link *netlink.Handle
}

// OpenHostNS opens the namespace at path ("" for the caller's own).
func OpenHostNS(path string) (*HostNS, error) {
	var (
		ns  netns.NsHandle
		err error
	)
	if path == "" {
		ns, err = netns.Get()
	} else {
		ns, err = netns.GetFromPath(path)
	}
	if err != nil {
		return nil, fmt.Errorf("open host network namespace %q: %w", path, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink handle in host network namespace %q: %w", path, err)
	}
	return &HostNS{ns: ns, Link: h}, nil
}

// NS returns the namespace handle (owned by h: do not close it).
func (h *HostNS) NS() netns.NsHandle { return h.ns }

// NFT returns an nftables connection bound to the namespace. Each call
// opens a new connection; the caller flushes and closes it.
func (h *HostNS) NFT() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(h.ns)))
	if err != nil {
		return nil, fmt.Errorf("nftables connection: %w", err)
	}
	return c, nil
}

// Do runs fn on an OS thread that has entered the namespace: for what
// only the current namespace serves (/proc/sys/net sysctls, listening
// sockets). The thread is thrown away afterwards rather than moved back,
// so no goroutine ever runs in the wrong namespace.
func (h *HostNS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the goroutine's exit ends the thread.
		if err := netns.Set(h.ns); err != nil {
			errc <- fmt.Errorf("enter host network namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Close releases the handles.
func (h *HostNS) Close() error {
	h.Link.Close()
	return h.ns.Close()
}
