package attach

import (
	"fmt"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
)

// ParentOption is the driver option naming the host interface, as
// Docker's macvlan driver names it (-o parent=eth0).
const ParentOption = "parent"

// Parent returns the host interface n is built on: the NetAdapterName
// policy or Options["parent"]; "" when neither is given. Two that
// disagree, or a name the kernel would refuse, are invalid.
func Parent(n *network.Network) (string, error) {
	name := ""
	for _, p := range n.Policies {
		if p.Type != network.NetAdapterName {
			continue
		}
		a := p.Settings.NetworkAdapterName
		if a == "" {
			return "", fmt.Errorf("NetAdapterName policy without NetworkAdapterName: %w", errdefs.ErrInvalidArgument)
		}
		if name != "" && name != a {
			return "", fmt.Errorf("two NetAdapterName policies (%q, %q): %w", name, a, errdefs.ErrInvalidArgument)
		}
		name = a
	}
	if o, ok := n.Options[ParentOption]; ok {
		if name != "" && o != name {
			return "", fmt.Errorf("option parent=%q disagrees with NetAdapterName policy %q: %w", o, name, errdefs.ErrInvalidArgument)
		}
		name = o
	}
	if name == "" {
		return "", nil
	}
	if err := ValidIfName(name); err != nil {
		return "", fmt.Errorf("parent interface: %w", err)
	}
	return name, nil
}

// SetParentPolicy records parent as n's NetAdapterName policy when n has
// none, so that inspect shows it the way HNS does whichever way it was
// given.
func SetParentPolicy(n *network.Network, parent string) {
	for _, p := range n.Policies {
		if p.Type == network.NetAdapterName {
			return
		}
	}
	n.Policies = append(n.Policies, network.NetworkPolicy{
		Type:     network.NetAdapterName,
		Settings: network.NetworkPolicySettings{NetworkAdapterName: parent},
	})
}
