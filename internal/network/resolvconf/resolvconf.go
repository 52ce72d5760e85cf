package resolvconf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/silo-containers/silo/internal/errdefs"
)

// HostPath is where the host's resolver configuration lives.
const HostPath = "/etc/resolv.conf"

// DNSPort is the port nameservers listen on.
const DNSPort = 53

// maxNameservers is how many nameservers glibc and musl read (MAXNS);
// further lines are ignored by the resolver.
const maxNameservers = 3

// File is a parsed resolv.conf.
type File struct {
	// Nameservers are the addresses of the nameserver lines, in order.
	Nameservers []netip.Addr
	// Search is the search list: from the last "search" or "domain" line,
	// as the C resolvers use it ("domain d" is a search list of one).
	Search []string
	// Domain is the value of the last "domain" line, if any.
	Domain string
	// Options are the words of every "options" line, in order.
	Options []string
	// Other are the lines with any other directive (sortlist, lookup…),
	// with their whitespace normalised, copied into containers' files.
	Other []string
	// Invalid are the values of nameserver lines that are not addresses.
	Invalid []string
}

// Parse reads a resolv.conf. It never fails: as the C resolvers do, it
// skips what it does not understand (recording bad nameserver values in
// Invalid).
func Parse(data []byte) *File {
	f := &File{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	// Lines are short, but a long one must not stop the parse: give the
	// scanner room for any line of the file.
	sc.Buffer(make([]byte, 0, 4096), len(data)+1)
	for sc.Scan() {
		f.parseLine(sc.Text())
	}
	return f
}

func (f *File) parseLine(line string) {
	fields := strings.Fields(line)
	if len(fields) == 0 || fields[0][0] == '#' || fields[0][0] == ';' {
		return
	}
	switch fields[0] {
	case "nameserver":
		if len(fields) < 2 {
			return
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil {
			f.Invalid = append(f.Invalid, fields[1])
			return
		}
		// An IPv4-mapped address is the IPv4 server.
		f.Nameservers = append(f.Nameservers, a.Unmap())
	case "domain":
		if len(fields) < 2 {
			return
		}
		f.Domain = fields[1]
		f.Search = []string{fields[1]}
	case "search":
		if len(fields) < 2 {
			return
		}
		f.Search = append([]string(nil), fields[1:]...)
	case "options":
		f.Options = append(f.Options, fields[1:]...)
	default:
		f.Other = append(f.Other, strings.Join(fields, " "))
	}
}

// Load reads and parses the resolv.conf at path. A missing file is an
// empty configuration (the C resolvers then use 127.0.0.1), reported as
// ErrNotFound so the caller can tell.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{}, fmt.Errorf("read resolv.conf %s: %w", path, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read resolv.conf %s: %w", path, err)
	}
	return Parse(data), nil
}

// HostUpstreams are the servers a network's embedded DNS server forwards
// to: every nameserver of the host's file, loopback ones included, since
// the server runs in the host's network namespace.
func HostUpstreams(host *File) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range host.Nameservers {
		if a.IsUnspecified() {
			// "nameserver 0.0.0.0" means the local host to glibc.
			a = loopbackOf(a)
		}
		out = append(out, netip.AddrPortFrom(a, DNSPort))
	}
	return out
}

func loopbackOf(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return netip.IPv6Loopback()
}

// Overrides are a container's own DNS settings (docker run --dns,
// --dns-search, --dns-option), as the API carries them. Each non-empty
// list replaces the host's.
type Overrides struct {
	Nameservers []string
	// Search "." alone means no search list.
	Search  []string
	Options []string
}

// Config says how to make a container's resolv.conf.
type Config struct {
	// Host is the host's parsed resolv.conf (nil means empty).
	Host *File
	// Overrides are the container's own settings.
	Overrides Overrides
	// EmbeddedDNS is the address of the network's DNS server; set for a
	// user-defined network, zero for the default network.
	EmbeddedDNS netip.Addr
	// IPv6 tells whether the container has IPv6 connectivity; without
	// it, IPv6 nameservers are left out on the default network.
	IPv6 bool
}

// Result is a container's resolv.conf and what the embedded DNS server
// needs to serve it.
type Result struct {
	// Content is the file.
	Content []byte
	// Upstreams are the servers the container's queries go to through
	// the embedded DNS server: the host's nameservers, or the container's
	// --dns servers when it has some. Set only with EmbeddedDNS.
	Upstreams []netip.AddrPort
	// OwnUpstreams is true when Upstreams are the container's own (--dns)
	// rather than the host's: the server must use them for this
	// container's queries only (dns.Config.ClientUpstreams).
	OwnUpstreams bool
	// Warnings are what the user should be told (docker run prints them).
	Warnings []string
}

// Generate makes a container's resolv.conf.
func Generate(cfg Config) (Result, error) {
	host := cfg.Host
	if host == nil {
		host = &File{}
	}
	ov, err := parseOverrides(cfg.Overrides)
	if err != nil {
		return Result{}, err
	}
	var res Result

	search := host.Search
	if ov.search != nil {
		search = ov.search
	}
	options := host.Options
	if ov.options != nil {
		options = ov.options
	}

	var servers []netip.Addr
	var comment string
	if cfg.EmbeddedDNS.IsValid() {
		servers = []netip.Addr{cfg.EmbeddedDNS.Unmap()}
		res.Upstreams = HostUpstreams(host)
		if ov.servers != nil {
			res.OwnUpstreams = true
			res.Upstreams = nil
			for _, a := range ov.servers {
				// The server runs in the host's namespace: a loopback
				// --dns (meaning the container's own loopback, as in
				// Docker) is out of its reach.
				if a.IsLoopback() || a.IsUnspecified() {
					res.Warnings = append(res.Warnings, fmt.Sprintf("dns server %s is a loopback address: the network's DNS server cannot reach the container's loopback; ignored", a))
					continue
				}
				res.Upstreams = append(res.Upstreams, netip.AddrPortFrom(a, DNSPort))
			}
		}
		if len(res.Upstreams) == 0 {
			res.Warnings = append(res.Warnings, "no upstream nameserver: only names on the network will resolve")
		}
		// Names of the network have no dots: ask for them as they are
		// before trying the search list (Docker's ndots:0), unless the
		// user or the host chose a valid ndots.
		options = withoutInvalidNdots(options)
		if !hasOption(options, "ndots") {
			options = append(options, "ndots:0")
		}
		comment = fmt.Sprintf("# Generated by silo: embedded DNS server %s; upstreams %s", cfg.EmbeddedDNS.Unmap(), formatUpstreams(res.Upstreams))
	} else {
		if ov.servers != nil {
			servers = ov.servers
		} else {
			for _, a := range host.Nameservers {
				switch {
				case a.IsLoopback() || a.IsUnspecified():
					// Reachable in the host's namespace only.
				case a.Is6() && !cfg.IPv6:
				case a.Zone() != "":
					// Scoped to a host interface the container does not have.
				default:
					servers = append(servers, a)
				}
			}
			if len(servers) == 0 && len(host.Nameservers) > 0 {
				res.Warnings = append(res.Warnings, "the host's nameservers are all loopback (or unreachable) addresses: the container has no nameserver; use --dns or a user-defined network")
			}
		}
		if len(servers) == 0 && len(host.Nameservers) == 0 && ov.servers == nil {
			res.Warnings = append(res.Warnings, "the host has no nameserver: the container has none either")
		}
		comment = "# Generated by silo from the host's resolv.conf"
	}
	if len(servers) > maxNameservers {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d nameservers: the resolver uses only the first %d", len(servers), maxNameservers))
	}

	var b bytes.Buffer
	b.WriteString(comment)
	b.WriteByte('\n')
	for _, a := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	for _, l := range host.Other {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	res.Content = b.Bytes()
	return res, nil
}

func formatUpstreams(ups []netip.AddrPort) string {
	if len(ups) == 0 {
		return "none"
	}
	s := make([]string, len(ups))
	for i, u := range ups {
		s[i] = u.Addr().String()
	}
	return strings.Join(s, " ")
}

type overrides struct {
	servers []netip.Addr
	search  []string
	options []string
}

// parseOverrides checks the user's settings: they end up as words of
// the file, so whitespace or a comment character would change its
// meaning. nil lists mean "not overridden"; an empty non-nil search
// list means "no search list" (--dns-search .).
func parseOverrides(o Overrides) (overrides, error) {
	var out overrides
	for _, s := range o.Nameservers {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return overrides{}, fmt.Errorf("dns server %q: not an IP address: %w", s, errdefs.ErrInvalidArgument)
		}
		out.servers = append(out.servers, a)
	}
	if len(o.Search) > 0 {
		out.search = []string{}
		for _, s := range o.Search {
			if s == "." {
				continue
			}
			if err := ValidateSearchDomain(s); err != nil {
				return overrides{}, err
			}
			out.search = append(out.search, s)
		}
	}
	for _, s := range o.Options {
		if err := ValidateOption(s); err != nil {
			return overrides{}, err
		}
		out.options = append(out.options, s)
	}
	return out, nil
}

// ValidateSearchDomain checks a --dns-search value: a domain name
// (letters, digits, '-' and '_' in labels of 1 to 63 characters, 253 at
// most, an optional final dot), or "." for "no search list".
func ValidateSearchDomain(s string) error {
	if s == "." {
		return nil
	}
	name := strings.TrimSuffix(s, ".")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("dns search domain %q: bad length: %w", s, errdefs.ErrInvalidArgument)
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("dns search domain %q: bad label %q: %w", s, l, errdefs.ErrInvalidArgument)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("dns search domain %q: character %q: %w", s, c, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}

// ValidateOption checks a --dns-option value: one word of printable
// characters that does not start a comment.
func ValidateOption(s string) error {
	if s == "" || s[0] == '#' || s[0] == ';' {
		return fmt.Errorf("dns option %q: empty or a comment: %w", s, errdefs.ErrInvalidArgument)
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f {
			return fmt.Errorf("dns option %q: whitespace or control character: %w", s, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func hasOption(options []string, name string) bool {
	for _, o := range options {
		if k, _, _ := strings.Cut(o, ":"); k == name {
			return true
		}
	}
	return false
}

// withoutInvalidNdots drops ndots options whose value is not a
// non-negative number: the resolver would ignore them, and the embedded
// server needs a working ndots.
func withoutInvalidNdots(options []string) []string {
	var out []string
	for _, o := range options {
		if k, v, _ := strings.Cut(o, ":"); k == "ndots" {
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				continue
			}
		}
		out = append(out, o)
	}
	return out
}
