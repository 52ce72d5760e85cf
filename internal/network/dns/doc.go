// Package dns is the embedded DNS server of user-defined networks: the
// counterpart of Docker's 127.0.0.11 resolver and of the DNS HNS gives
// Windows containers.
//
// One Server serves one network. It answers A, AAAA (and ANY) for the
// names of the network's containers and their aliases, and PTR for their
// addresses, from functions the network service provides (Config.Lookup,
// Config.Reverse); it forwards every other question to upstream servers
// (the host's resolvers) over UDP, retrying over TCP when the answer is
// truncated and moving to the next upstream when one fails. It answers
// SERVFAIL when every upstream failed and never invents NXDOMAIN: a name
// that is not local is only "not found" when an upstream says so.
//
// Seams: the server takes already-open sockets (Start), so the caller can
// open them on a thread inside whichever network namespace serves them
// (network.HostNS.Do with Listen); it imports nothing of silo's network
// service, which avoids an import cycle.
//
// Lifecycle:
//
//	New ──▶ configured ──Start──▶ serving ──Shutdown──▶ stopped
//	(Shutdown before Start stops it too; a stopped server cannot restart)
package dns
