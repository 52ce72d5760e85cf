// Package resolvconf makes a container's /etc/resolv.conf and /etc/hosts
// the way Docker does, from the host's resolv.conf and the container's
// settings (--dns, --dns-search, --dns-option, --hostname, --add-host).
//
// Two kinds of network get two kinds of resolv.conf:
//   - on a user-defined network the only nameserver is the network's
//     embedded DNS server (internal/network/dns, at the gateway), which
//     forwards what it cannot answer to the host's nameservers (loopback
//     ones included: the server runs in the host's network namespace);
//   - on the default network the container gets the host's nameservers
//     itself, minus the loopback ones (127.0.0.0/8, ::1), which cannot be
//     reached from another network namespace. When none is left, the
//     container gets none and a warning says so: silo does not invent
//     public resolvers as Docker does (8.8.8.8).
//
// The package only computes file contents; writing them (and bind
// mounting them into the container) is the engine's job.
package resolvconf
