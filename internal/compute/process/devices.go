package process

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func devRule(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
	if major >= 0 {
		r.Major = &major
	}
	if minor >= 0 {
		r.Minor = &minor
	}
	return r
}

// alwaysAllowedDevices are appended to the spec's device cgroup rules, as
// runc does: creating any node (mknod is checked by the device cgroup, and
// /dev is populated from inside it), the default devices, the console and
// ptys, and /dev/net/tun. A spec cannot deny these; it can deny the rest.
var alwaysAllowedDevices = []specs.LinuxDeviceCgroup{
	devRule("c", -1, -1, "m"),
	devRule("b", -1, -1, "m"),
	devRule("c", 1, 3, "rwm"),    // null
	devRule("c", 1, 5, "rwm"),    // zero
	devRule("c", 1, 7, "rwm"),    // full
	devRule("c", 1, 8, "rwm"),    // random
	devRule("c", 1, 9, "rwm"),    // urandom
	devRule("c", 5, 0, "rwm"),    // tty
	devRule("c", 5, 1, "rwm"),    // console
	devRule("c", 5, 2, "rwm"),    // ptmx
	devRule("c", 136, -1, "rwm"), // pts
	devRule("c", 10, 200, "rwm"), // net/tun
}

// cgroupResources returns the limits to apply at create: the spec's, with
// the device rules completed.
func cgroupResources(s *specs.Spec) *specs.LinuxResources {
	r := specs.LinuxResources{}
	if s.Linux.Resources != nil {
		r = *s.Linux.Resources
	}
	r.Devices = append(append([]specs.LinuxDeviceCgroup{}, r.Devices...), alwaysAllowedDevices...)
	return &r
}
