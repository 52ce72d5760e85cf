// Package l2bridge is the l2bridge network driver: a Linux bridge
// "l2br-<id[:8]>" that enslaves the host interface named by the
// NetAdapterName policy, with one veth per endpoint plugged into it.
// Containers share the host's L2 segment and subnet.
//
// A port of a bridge no longer does IP itself, so Setup moves the host
// interface's addresses and routes onto the bridge (which takes the
// interface's MAC, so neighbours' ARP caches stay right) and Teardown
// moves them back. Each move adds on the destination before removing from
// the source and switches routes with one replace each, so a crash at any
// step leaves every address on one device or the other and a rerun
// finishes the move.
//
// Unlike HNS l2bridge, container MACs are not rewritten to the host's:
// each container keeps the MAC of its endpoint on the segment (ipvlan L2,
// which would share the host's MAC, is not in this kernel).
package l2bridge
