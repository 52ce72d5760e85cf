package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/silo-containers/silo/internal/network"
	"github.com/silo-containers/silo/internal/network/drivers/l2bridge"
	"github.com/silo-containers/silo/internal/network/drivers/macvlan"
	"github.com/silo-containers/silo/internal/network/drivers/overlay"
	"github.com/silo-containers/silo/internal/network/embeddeddns"
	"github.com/silo-containers/silo/internal/network/resolvconf"
)

// networks is the network service with the embedded DNS kept in step:
// creating or removing a network starts or stops its DNS server.
type networks struct {
	*network.Service
	dns  *embeddeddns.Manager
	host *network.HostNS
}

// openNetworks starts the network service in the host namespace (silod's
// own, or --host-netns) with every driver, and the embedded DNS.
func openNetworks(ctx context.Context, o options, log *slog.Logger) (*networks, error) {
	svc, err := network.New(ctx, network.Config{
		StateDir:  filepath.Join(o.dataRoot, "network"),
		RunDir:    filepath.Join(o.execRoot, "network"),
		HostNetNS: o.hostNetns,
		Drivers:   []network.Driver{macvlan.NewTransparent(), macvlan.NewL2Tunnel(), l2bridge.New(), overlay.New()},
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("start the network service: %w", err)
	}
	host, err := network.OpenHostNS(o.hostNetns)
	if err != nil {
		svc.Close()
		return nil, err
	}
	n := &networks{Service: svc, host: host,
		dns: embeddeddns.New(host, svc, hostUpstreams(log), log)}
	if err := n.dns.Sync(ctx); err != nil {
		log.Warn("embedded dns", "err", err)
	}
	return n, nil
}

// hostUpstreams are the host's resolvers, where the embedded DNS sends
// the names it does not know.
func hostUpstreams(log *slog.Logger) []netip.AddrPort {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			log.Warn("read /etc/resolv.conf", "err", err)
		}
		return nil
	}
	return resolvconf.HostUpstreams(resolvconf.Parse(b))
}

// CreateNetwork makes a network and its DNS server.
func (n *networks) CreateNetwork(ctx context.Context, req network.CreateNetworkRequest) (*network.Network, error) {
	nw, err := n.Service.CreateNetwork(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := n.dns.Sync(ctx); err != nil {
		return nw, err
	}
	return nw, nil
}

// RemoveNetwork removes a network and its DNS server.
func (n *networks) RemoveNetwork(ctx context.Context, ref string) error {
	if err := n.Service.RemoveNetwork(ctx, ref); err != nil {
		return err
	}
	return n.dns.Sync(ctx)
}

// Close stops the DNS servers and the service.
func (n *networks) Close() error {
	n.dns.Close()
	n.host.Close()
	return n.Service.Close()
}
