package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/docker/go-connections/nat"
	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
)

// netFlags are `silo run`'s network flags, as docker spells them.
type netFlags struct {
	network, ip, mac     string
	policies             string
	aliases, publish     []string
	expose, addHosts     []string
	dns                  []string
	dnsSearch, dnsOption []string
	publishAll           bool
}

func (f *netFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.network, "network", "", "connect a container to a network (nat, none, host or a network's name)")
	fl.StringVar(&f.network, "net", "", "connect a container to a network")
	_ = fl.MarkHidden("net")
	fl.StringArrayVar(&f.aliases, "network-alias", nil, "add network-scoped alias for the container")
	fl.StringVar(&f.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fl.StringVar(&f.mac, "mac-address", "", "container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a container's port(s) to the host ([ip:][hostPort:]containerPort[/proto])")
	fl.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish all exposed ports to random ports")
	fl.StringArrayVar(&f.expose, "expose", nil, "expose a port or a range of ports")
	fl.StringArrayVar(&f.addHosts, "add-host", nil, "add a custom host-to-IP mapping (host:ip)")
	fl.StringArrayVar(&f.dns, "dns", nil, "set custom DNS servers")
	fl.StringArrayVar(&f.dnsSearch, "dns-search", nil, "set custom DNS search domains")
	fl.StringArrayVar(&f.dnsOption, "dns-option", nil, "set DNS options")
	fl.StringVar(&f.policies, "endpoint-policy", "", `HNS endpoint policies on the container's network as JSON: {"ACLs":[…],"OutBoundNAT":{"Exceptions":[…]},"QOS":{…}}`)
}

// apply puts the flags into the container's configs and returns the
// endpoint settings for the create request.
func (f *netFlags) apply(cfg *container.Config, host *container.HostConfig) (*mobynet.NetworkingConfig, error) {
	host.NetworkMode = container.NetworkMode(f.network)
	host.PublishAllPorts = f.publishAll
	host.ExtraHosts = f.addHosts
	host.DNSSearch, host.DNSOptions = f.dnsSearch, f.dnsOption
	for _, d := range f.dns {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("invalid --dns %q: %w", d, err)
		}
		host.DNS = append(host.DNS, a)
	}
	exposed, bindings, err := parsePublish(f.publish, f.expose)
	if err != nil {
		return nil, err
	}
	if len(exposed) > 0 {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = mobynet.PortSet{}
		}
		for p := range exposed {
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	host.PortBindings = bindings
	es := &mobynet.EndpointSettings{Aliases: f.aliases}
	if f.ip != "" {
		a, err := netip.ParseAddr(f.ip)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("invalid --ip %q: want an IPv4 address", f.ip)
		}
		es.IPAMConfig = &mobynet.EndpointIPAMConfig{IPv4Address: a}
	}
	if f.mac != "" {
		m, err := net.ParseMAC(f.mac)
		if err != nil {
			return nil, fmt.Errorf("invalid --mac-address %q: %w", f.mac, err)
		}
		es.MacAddress = mobynet.HardwareAddr(m)
	}
	if f.policies != "" {
		if !json.Valid([]byte(f.policies)) {
			return nil, fmt.Errorf("invalid --endpoint-policy: not JSON")
		}
		es.DriverOpts = map[string]string{"silo.policies": f.policies}
	}
	if es.IPAMConfig == nil && es.MacAddress == nil && len(es.Aliases) == 0 && es.DriverOpts == nil {
		return nil, nil
	}
	name := f.network
	if name == "" {
		name = "nat"
	}
	return &mobynet.NetworkingConfig{EndpointsConfig: map[string]*mobynet.EndpointSettings{name: es}}, nil
}

// parsePublish reads -p and --expose (docker's syntax, parsed by
// go-connections as the docker CLI does).
func parsePublish(publish, expose []string) (mobynet.PortSet, mobynet.PortMap, error) {
	exposed := mobynet.PortSet{}
	var bindings mobynet.PortMap
	for _, spec := range publish {
		maps, err := nat.ParsePortSpec(spec)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid --publish %q: %w", spec, err)
		}
		for _, m := range maps {
			p, err := mobynet.ParsePort(string(m.Port))
			if err != nil {
				return nil, nil, fmt.Errorf("invalid --publish %q: %w", spec, err)
			}
			b := mobynet.PortBinding{HostPort: m.Binding.HostPort}
			if m.Binding.HostIP != "" {
				if b.HostIP, err = netip.ParseAddr(m.Binding.HostIP); err != nil {
					return nil, nil, fmt.Errorf("invalid --publish %q: host address: %w", spec, err)
				}
			}
			if bindings == nil {
				bindings = mobynet.PortMap{}
			}
			exposed[p] = struct{}{}
			bindings[p] = append(bindings[p], b)
		}
	}
	for _, e := range expose {
		proto, ports := nat.SplitProtoPort(e)
		first, last, err := nat.ParsePortRange(ports)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid --expose %q: %w", e, err)
		}
		for n := first; n <= last; n++ {
			p, err := mobynet.ParsePort(strconv.FormatUint(n, 10) + "/" + proto)
			if err != nil {
				return nil, nil, fmt.Errorf("invalid --expose %q: %w", e, err)
			}
			exposed[p] = struct{}{}
		}
	}
	return exposed, bindings, nil
}

// portsColumn is `docker ps`'s PORTS: "127.0.0.1:8000->80/tcp, 443/tcp".
func portsColumn(ports []container.PortSummary) string {
	var out []string
	for _, p := range ports {
		if p.PublicPort == 0 {
			out = append(out, fmt.Sprintf("%d/%s", p.PrivatePort, p.Type))
			continue
		}
		ip := "0.0.0.0"
		if p.IP.IsValid() {
			ip = p.IP.String()
		}
		out = append(out, fmt.Sprintf("%s:%d->%d/%s", ip, p.PublicPort, p.PrivatePort, p.Type))
	}
	return strings.Join(out, ", ")
}

func networkCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks", Args: cobra.NoArgs}
	cmd.AddCommand(networkCreateCommand(g), networkLsCommand(g), networkInspectCommand(g),
		networkRmCommand(g), networkConnectCommand(g), networkDisconnectCommand(g), networkPruneCommand(g),
		networkPolicyCommand(g))
	return cmd
}

func networkCreateCommand(g *globals) *cobra.Command {
	var driver string
	var subnets, gateways, ranges, opts, labels, policies []string
	var internal, ipv6 bool
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network (drivers: nat, transparent, l2bridge, l2tunnel, overlay, internal)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := mobynet.CreateRequest{Name: args[0], Driver: driver, Internal: internal, Options: map[string]string{}, Labels: map[string]string{}}
			if ipv6 {
				req.EnableIPv6 = &ipv6
			}
			if err := keyValues(opts, req.Options, "--opt"); err != nil {
				return err
			}
			if err := keyValues(labels, req.Labels, "--label"); err != nil {
				return err
			}
			if len(policies) > 0 {
				// Each --policy is one HNS policy object; the daemon gets
				// them as one JSON list in an option.
				var list []json.RawMessage
				for _, p := range policies {
					if !json.Valid([]byte(p)) {
						return fmt.Errorf("invalid --policy %q: not JSON", p)
					}
					list = append(list, json.RawMessage(p))
				}
				b, _ := json.Marshal(list)
				req.Options["silo.policies"] = string(b)
			}
			if len(gateways) > len(subnets) || len(ranges) > len(subnets) {
				return fmt.Errorf("every --gateway and --ip-range needs a --subnet")
			}
			if len(subnets) > 0 {
				req.IPAM = &mobynet.IPAM{Driver: "default"}
			}
			for i, s := range subnets {
				var c mobynet.IPAMConfig
				var err error
				if c.Subnet, err = netip.ParsePrefix(s); err != nil {
					return fmt.Errorf("invalid --subnet %q: %w", s, err)
				}
				if i < len(gateways) {
					if c.Gateway, err = netip.ParseAddr(gateways[i]); err != nil {
						return fmt.Errorf("invalid --gateway %q: %w", gateways[i], err)
					}
				}
				if i < len(ranges) {
					if c.IPRange, err = netip.ParsePrefix(ranges[i]); err != nil {
						return fmt.Errorf("invalid --ip-range %q: %w", ranges[i], err)
					}
				}
				req.IPAM.Config = append(req.IPAM.Config, c)
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			resp, err := c.NetworkCreate(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Println(resp.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&driver, "driver", "d", "nat", "driver to manage the network")
	fl.StringArrayVar(&subnets, "subnet", nil, "subnet in CIDR format")
	fl.StringArrayVar(&gateways, "gateway", nil, "gateway for the subnet")
	fl.StringArrayVar(&ranges, "ip-range", nil, "allocate container IPs from a sub-range")
	fl.StringArrayVarP(&opts, "opt", "o", nil, "set driver specific options (parent=eth0, vni=4096…)")
	fl.StringArrayVar(&labels, "label", nil, "set metadata on a network")
	fl.StringArrayVar(&policies, "policy", nil, `add an HNS network policy as JSON, e.g. '{"Type":"RemoteSubnetRoute","Settings":{"ProviderAddress":"10.0.0.2","DestinationPrefix":"10.200.2.0/24"}}'`)
	fl.BoolVar(&internal, "internal", false, "restrict external access to the network")
	fl.BoolVar(&ipv6, "ipv6", false, "enable IPv6 networking")
	return cmd
}

// keyValues adds "k=v" strings to m.
func keyValues(list []string, m map[string]string, flag string) error {
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("invalid %s %q: want key=value", flag, kv)
		}
		m[k] = v
	}
	return nil
}

func networkLsCommand(g *globals) *cobra.Command {
	var quiet, noTrunc bool
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, f, err := connectFiltered(cmd, g, filters)
			if err != nil {
				return err
			}
			list, err := c.NetworkList(cmd.Context(), f)
			if err != nil {
				return err
			}
			if quiet {
				for _, n := range list {
					fmt.Println(shortID(n.ID, noTrunc))
				}
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE\tSUBNET")
			for _, n := range list {
				var subnets []string
				for _, c := range n.IPAM.Config {
					subnets = append(subnets, c.Subnet.String())
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", shortID(n.ID, noTrunc), n.Name, n.Driver, n.Scope, strings.Join(subnets, ","))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate the output")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "provide filter values (e.g. 'driver=nat')")
	return cmd
}

func networkInspectCommand(g *globals) *cobra.Command {
	return inspectCommandFor("inspect [OPTIONS] NETWORK [NETWORK...]", "Display detailed information on one or more networks", networkInspector, g)
}

func networkRmCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			var failed error
			for _, ref := range args {
				if err := c.NetworkRemove(cmd.Context(), ref); err != nil {
					fmt.Fprintln(os.Stderr, "silo:", err)
					failed = err
					continue
				}
				fmt.Println(ref)
			}
			if failed != nil {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}

func networkConnectCommand(g *globals) *cobra.Command {
	var ip string
	var aliases []string
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			es := &mobynet.EndpointSettings{Aliases: aliases}
			if ip != "" {
				a, err := netip.ParseAddr(ip)
				if err != nil {
					return fmt.Errorf("invalid --ip %q: %w", ip, err)
				}
				es.IPAMConfig = &mobynet.EndpointIPAMConfig{IPv4Address: a}
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			return c.NetworkConnect(cmd.Context(), args[0], args[1], es)
		},
	}
	cmd.Flags().StringVar(&ip, "ip", "", "IPv4 address")
	cmd.Flags().StringArrayVar(&aliases, "alias", nil, "add network-scoped alias for the container")
	return cmd
}

func networkDisconnectCommand(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			return c.NetworkDisconnect(cmd.Context(), args[0], args[1], force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the container to disconnect from a network")
	return cmd
}

func networkPruneCommand(g *globals) *cobra.Command {
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, f, err := connectFiltered(cmd, g, filters)
			if err != nil {
				return err
			}
			deleted, err := c.NetworkPrune(cmd.Context(), f)
			if err != nil {
				return err
			}
			if len(deleted) > 0 {
				fmt.Println("Deleted Networks:")
				for _, n := range deleted {
					fmt.Println(n)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. 'label=<key>=<value>')")
	// docker asks for confirmation; -f is accepted for scripts.
	cmd.Flags().BoolP("force", "f", false, "do not prompt for confirmation")
	return cmd
}

func networkPolicyCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "policy CONTAINER NETWORK POLICIES",
		Short: `Replace a container's endpoint policies on a network, live: {"ACLs":[…],"OutBoundNAT":{…},"QOS":{…}} ('{}' clears them)`,
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !json.Valid([]byte(args[2])) {
				return fmt.Errorf("invalid policies %q: not JSON", args[2])
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			return c.SetEndpointPolicies(cmd.Context(), args[0], args[1], json.RawMessage(args[2]))
		},
	}
}
