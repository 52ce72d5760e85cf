package cgroups

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// deviceRule is a validated linux.resources.devices entry.
type deviceRule struct {
	allow bool
	// typ is 'a', 'b' or 'c'.
	typ byte
	// major and minor are -1 for "any".
	major, minor int64
	// access is a subset of "rwm" in that order, never empty.
	access string
}

// parseDeviceRule validates r and fills in the defaults: an unset type is
// "a" (all) and, like crun, an unset access is "rwm".
func parseDeviceRule(r specs.LinuxDeviceCgroup) (deviceRule, error) {
	d := deviceRule{allow: r.Allow, major: -1, minor: -1}
	switch r.Type {
	case "", "a":
		d.typ = 'a'
	case "b", "c":
		d.typ = r.Type[0]
	default:
		return d, fmt.Errorf("invalid device type %q", r.Type)
	}
	for _, p := range []struct {
		in  *int64
		out *int64
	}{{r.Major, &d.major}, {r.Minor, &d.minor}} {
		if p.in == nil || *p.in == -1 {
			continue
		}
		// The eBPF program compares against 32-bit immediates; real device
		// numbers are 12 (major) and 20 (minor) bits.
		if *p.in < 0 || *p.in > math.MaxInt32 {
			return d, fmt.Errorf("invalid device number %d", *p.in)
		}
		*p.out = *p.in
	}
	var seen [3]bool
	for _, c := range r.Access {
		i := strings.IndexRune("rwm", c)
		if i < 0 {
			return d, fmt.Errorf("invalid device access %q", r.Access)
		}
		seen[i] = true
	}
	for i, c := range "rwm" {
		if seen[i] || r.Access == "" {
			d.access += string(c)
		}
	}
	return d, nil
}

// anyDevice reports whether d covers every device with every access.
func (d deviceRule) anyDevice() bool {
	return d.typ == 'a' && d.major == -1 && d.minor == -1 && d.access == "rwm"
}

// v1Lines returns what to write to devices.allow or devices.deny. In v1 a
// type "a" entry always means every device with every access (and resets
// the exception list), so a narrower "a" rule becomes a "b" and a "c" line.
func (d deviceRule) v1Lines() []string {
	if d.anyDevice() {
		return []string{"a"}
	}
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	rest := num(d.major) + ":" + num(d.minor) + " " + d.access
	if d.typ == 'a' {
		return []string{"b " + rest, "c " + rest}
	}
	return []string{string(d.typ) + " " + rest}
}

func (m *manager) setDevices(r *specs.LinuxResources) error {
	if len(r.Devices) == 0 {
		return nil
	}
	rules := make([]deviceRule, len(r.Devices))
	for i, d := range r.Devices {
		var err error
		if rules[i], err = parseDeviceRule(d); err != nil {
			return err
		}
	}
	if dir, ok := m.v1["devices"]; ok {
		return setDevicesV1(dir, rules)
	}
	if m.v2 != "" {
		// Device control on cgroup2 is an eBPF program, not a controller,
		// so it works on the unified tree of a hybrid host too.
		return setDevicesBPF(m.v2, rules)
	}
	return errors.New("devices: no devices cgroup")
}

// setDevicesV1 starts from "deny everything" (unless the first rule says
// so already) and writes the rules in order: the kernel's allow and deny
// updates then give the later rule precedence, as runc did before its
// emulator.
func setDevicesV1(dir string, rules []deviceRule) error {
	if !(rules[0].anyDevice() && !rules[0].allow) {
		if err := writeFile(dir, "devices.deny", "a"); err != nil {
			return err
		}
	}
	for _, d := range rules {
		file := "devices.deny"
		if d.allow {
			file = "devices.allow"
		}
		for _, line := range d.v1Lines() {
			if err := writeFile(dir, file, line); err != nil {
				return err
			}
		}
	}
	return nil
}
