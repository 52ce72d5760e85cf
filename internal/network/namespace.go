package network

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network/netnsutil"
)

// CreateNamespace makes a network namespace bind-mounted at
// RunDir/netns/<id> with lo up and returns its path. Asking again for an
// existing one returns its path.
func (s *Service) CreateNamespace(ctx context.Context, id string) (string, error) {
	if !validNamespaceID(id) {
		return "", fmt.Errorf("create namespace %q: invalid id: %w", id, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", fmt.Errorf("create namespace %s: service closed: %w", id, errdefs.ErrConflict)
	}
	if ns, ok := s.namespaces[id]; ok && netnsutil.IsNamespace(ns.Path) {
		return ns.Path, nil
	}
	path := filepath.Join(s.netnsDir(), id)
	if err := netnsutil.Create(path); err != nil {
		return "", fmt.Errorf("create namespace %s: %w", id, err)
	}
	if err := loUp(path); err != nil {
		netnsutil.Remove(path)
		return "", fmt.Errorf("create namespace %s: %w", id, err)
	}
	ns := &Namespace{ID: id, Path: path, Created: time.Now().UTC()}
	if err := s.db.put(bucketNamespaces, id, ns); err != nil {
		netnsutil.Remove(path)
		return "", err
	}
	s.namespaces[id] = ns
	return path, nil
}

// RemoveNamespace detaches every endpoint in the namespace, unmounts it
// and removes its file. A missing namespace is not an error.
//
// The namespace is unmounted first and its endpoints' records, addresses
// and ports freed; the drivers' Leave then runs in the background. Once
// the last reference to the namespace is gone the kernel deletes the
// interfaces in it, and their veth peers, on its own, while deleting a
// link ourselves waits for an RCU grace period (some 20 ms a link): off
// the path of every `run --rm`, Leave mostly finds nothing left to do, and
// removes what a namespace still held by some process would keep.
func (s *Service) RemoveNamespace(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, ok := s.namespaces[id]
	if !ok {
		return nil
	}
	if err := netnsutil.Remove(ns.Path); err != nil {
		return fmt.Errorf("remove namespace %s: %w", id, err)
	}
	var errs []error
	var gone []*Endpoint
	for _, ep := range s.endpoints {
		if ep.Namespace == id {
			if err := s.forgetLocked(ep); err != nil {
				errs = append(errs, err)
				continue
			}
			gone = append(gone, ep)
		}
	}
	forgot := len(gone) > 0
	s.leaveLater(gone)
	if forgot {
		s.renderLater()
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove namespace %s: %w", id, errors.Join(errs...))
	}
	if err := s.db.delete(bucketNamespaces, id); err != nil {
		return err
	}
	delete(s.namespaces, id)
	return nil
}

// renderLater renders the nftables table in the background, for
// endpoints that went away: their rules may stay a moment (they name
// addresses and ports the service has already freed, and the next attach
// renders the whole state before it returns), and the caller (a container
// removal) does not wait for the netlink batch. Called with mu held.
func (s *Service) renderLater() {
	if s.renderDue {
		return // a rendering is on its way
	}
	s.renderDue = true
	s.leaving.Add(1)
	go func() {
		defer s.leaving.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.renderDue || s.closed {
			return // rendered meanwhile
		}
		if err := s.renderLocked(); err != nil {
			s.log.Warn("render nftables table", "err", err)
		}
	}()
}

// leaveLater runs the drivers' Leave of endpoints already forgotten, in
// the background. Called with mu held.
func (s *Service) leaveLater(eps []*Endpoint) {
	type leave struct {
		d  Driver
		n  *Network
		ep *Endpoint
	}
	var todo []leave
	for _, ep := range eps {
		if n, ok := s.networks[ep.NetworkID]; ok {
			if d, ok := s.drivers[s.driverType(n)]; ok {
				todo = append(todo, leave{d, n, ep})
			}
		}
	}
	if len(todo) == 0 {
		return
	}
	s.leaving.Add(1)
	go func() {
		defer s.leaving.Done()
		for _, l := range todo {
			if err := l.d.Leave(context.Background(), s.host, l.n, l.ep); err != nil {
				s.log.Warn("remove endpoint interface", "endpoint", l.ep.ID[:12], "err", err)
			}
		}
	}()
}

// Namespaces returns the namespaces the service made.
func (s *Service) Namespaces(ctx context.Context) ([]*Namespace, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Namespace, 0, len(s.namespaces))
	for _, ns := range s.namespaces {
		c := *ns
		out = append(out, &c)
	}
	return out, nil
}

func loUp(path string) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle in %s: %w", path, err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in %s: %w", path, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up in %s: %w", path, err)
	}
	return nil
}

// validNamespaceID reports whether id can name a file in RunDir/netns.
func validNamespaceID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\x00")
}
