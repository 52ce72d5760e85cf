package attach

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strings"

	"github.com/silo-containers/silo/internal/errdefs"
)

// MaxIfNameLen is the longest interface name the kernel takes (IFNAMSIZ-1).
const MaxIfNameLen = 15

// ValidIfName checks name against the kernel's rules for interface names
// (dev_valid_name): 1 to 15 bytes, not "." or "..", no '/', ':' or space.
func ValidIfName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("interface name: empty: %w", errdefs.ErrInvalidArgument)
	case len(name) > MaxIfNameLen:
		return fmt.Errorf("interface name %q: longer than %d bytes: %w", name, MaxIfNameLen, errdefs.ErrInvalidArgument)
	case name == "." || name == "..":
		return fmt.Errorf("interface name %q: %w", name, errdefs.ErrInvalidArgument)
	case strings.ContainsAny(name, "/: \t\n\r\x00"):
		return fmt.Errorf("interface name %q: contains '/', ':' or white space: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// ObjectName names a network's kernel object: prefix followed by the
// first 8 characters of the network id ("l2br-3f2a9c1d"). An id that
// cannot be part of an interface name is refused.
func ObjectName(prefix, id string) (string, error) {
	if len(id) < 8 {
		return "", fmt.Errorf("network id %q: shorter than 8 characters: %w", id, errdefs.ErrInvalidArgument)
	}
	name := prefix + id[:8]
	if err := ValidIfName(name); err != nil {
		return "", fmt.Errorf("network id %q: %w", id, err)
	}
	return name, nil
}

// HostVethName is the host-side name of an endpoint's veth: "veth" and 8
// hex digits of a hash of the endpoint id, so a retried Join finds the
// pair it made before.
func HostVethName(endpointID string) string {
	sum := sha256.Sum256([]byte(endpointID))
	return "veth" + hex.EncodeToString(sum[:4])
}

// ParseMAC parses an Ethernet MAC in "02:42:ac:11:00:02" or HNS's
// "02-42-AC-11-00-02" form.
func ParseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("MAC address %q: not a 6-byte Ethernet address: %w", s, errdefs.ErrInvalidArgument)
	}
	return mac, nil
}
