package process

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCgroupResourcesDevices(t *testing.T) {
	deny := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	major, minor := int64(10), int64(229)
	fuse := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rwm"}
	tests := []struct {
		name  string
		res   *specs.LinuxResources
		first []specs.LinuxDeviceCgroup
	}{
		{name: "no resources", res: nil},
		{name: "no device rules", res: &specs.LinuxResources{}},
		{name: "deny all", res: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{deny}}, first: []specs.LinuxDeviceCgroup{deny}},
		{
			name:  "deny then fuse",
			res:   &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{deny, fuse}},
			first: []specs.LinuxDeviceCgroup{deny, fuse},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &specs.Spec{Linux: &specs.Linux{Resources: tt.res}}
			r := cgroupResources(s)
			if r == nil {
				t.Fatal("nil resources")
			}
			want := append(append([]specs.LinuxDeviceCgroup{}, tt.first...), alwaysAllowedDevices...)
			if !reflect.DeepEqual(r.Devices, want) {
				t.Errorf("devices\n got  %+v\n want %+v", r.Devices, want)
			}
			if tt.res == nil && s.Linux.Resources != nil {
				t.Error("cgroupResources set the spec's resources")
			}
			if tt.res != nil && len(tt.res.Devices) != len(tt.first) {
				t.Errorf("spec's device list changed length to %d", len(tt.res.Devices))
			}
		})
	}
}

// The spec's slice has spare capacity: appending to it in place would
// write the always-allowed rules into the caller's backing array.
func TestCgroupResourcesDoesNotAlias(t *testing.T) {
	deny := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	backing := make([]specs.LinuxDeviceCgroup, 1, 32)
	backing[0] = deny
	limit := int64(1 << 20)
	s := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{
		Devices: backing,
		Memory:  &specs.LinuxMemory{Limit: &limit},
	}}}
	r1 := cgroupResources(s)
	r2 := cgroupResources(s)
	if got := s.Linux.Resources.Devices; len(got) != 1 || got[0] != deny {
		t.Fatalf("spec's devices changed: %+v", got)
	}
	if spare := backing[:2][1]; !reflect.DeepEqual(spare, specs.LinuxDeviceCgroup{}) {
		t.Errorf("cgroupResources wrote into the spec's backing array: %+v", spare)
	}
	if &r1.Devices[0] == &backing[0] {
		t.Error("result shares the spec's backing array")
	}
	if &r1.Devices[0] == &r2.Devices[0] {
		t.Error("two calls share a backing array")
	}
	if r1 == s.Linux.Resources {
		t.Error("result is the spec's own resources object")
	}
	if r1.Memory == nil || *r1.Memory.Limit != limit {
		t.Errorf("other limits not carried over: %+v", r1.Memory)
	}
	// Changing the result's rules does not touch the global defaults.
	before := append([]specs.LinuxDeviceCgroup{}, alwaysAllowedDevices...)
	for i := range r1.Devices {
		r1.Devices[i].Access = "x"
		r1.Devices[i].Allow = false
	}
	if !reflect.DeepEqual(alwaysAllowedDevices, before) {
		t.Error("editing the result changed alwaysAllowedDevices")
	}
	if len(r2.Devices) != 1+len(alwaysAllowedDevices) || r2.Devices[1].Access == "x" {
		t.Error("editing one result changed another")
	}
}

func TestAlwaysAllowedDevices(t *testing.T) {
	type key struct {
		typ          string
		major, minor int64
	}
	got := map[key]string{}
	for _, d := range alwaysAllowedDevices {
		if !d.Allow {
			t.Errorf("deny rule among the always-allowed: %+v", d)
		}
		k := key{d.Type, -1, -1}
		if d.Major != nil {
			k.major = *d.Major
		}
		if d.Minor != nil {
			k.minor = *d.Minor
		}
		got[k] = d.Access
	}
	for k, access := range map[key]string{
		{"c", -1, -1}: "m", {"b", -1, -1}: "m",
		{"c", 1, 3}: "rwm", {"c", 1, 5}: "rwm", {"c", 1, 7}: "rwm", {"c", 1, 8}: "rwm", {"c", 1, 9}: "rwm",
		{"c", 5, 0}: "rwm", {"c", 5, 1}: "rwm", {"c", 5, 2}: "rwm", {"c", 136, -1}: "rwm", {"c", 10, 200}: "rwm",
	} {
		if got[k] != access {
			t.Errorf("rule %+v: access %q, want %q", k, got[k], access)
		}
	}
}

func TestDevRule(t *testing.T) {
	r := devRule("c", 1, -1, "rw")
	if !r.Allow || r.Type != "c" || r.Access != "rw" || r.Major == nil || *r.Major != 1 || r.Minor != nil {
		t.Errorf("devRule(c, 1, -1, rw) = %+v", r)
	}
	a, b := devRule("c", 4, 4, "r"), devRule("c", 4, 4, "r")
	if a.Major == b.Major {
		t.Error("devRule results share a major pointer")
	}
}
