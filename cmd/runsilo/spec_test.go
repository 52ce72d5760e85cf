package main

import (
	"encoding/json"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/compute/process"
)

func nsTypes(s *specs.Spec) []specs.LinuxNamespaceType {
	var out []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		out = append(out, n.Type)
		if n.Path != "" {
			panic("default spec joins a namespace")
		}
	}
	return out
}

func TestDefaultSpec(t *testing.T) {
	s := defaultSpec(false)
	if s.Version != specs.Version || !strings.HasPrefix(s.Version, "1.") {
		t.Errorf("ociVersion %q", s.Version)
	}
	if s.Root == nil || s.Root.Path != "rootfs" || !s.Root.Readonly {
		t.Errorf("root %+v", s.Root)
	}
	p := s.Process
	if p == nil {
		t.Fatal("no process")
	}
	if !p.Terminal {
		t.Error("terminal is false")
	}
	if !slices.Equal(p.Args, []string{"sh"}) {
		t.Errorf("args %q, want [sh]", p.Args)
	}
	if p.Cwd != "/" {
		t.Errorf("cwd %q", p.Cwd)
	}
	if !p.NoNewPrivileges {
		t.Error("noNewPrivileges is false")
	}
	if !slices.ContainsFunc(p.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=/") }) {
		t.Errorf("env %q lacks PATH", p.Env)
	}
	known := process.CapabilityNames()
	if p.Capabilities == nil {
		t.Fatal("no capabilities")
	}
	for _, set := range [][]string{p.Capabilities.Bounding, p.Capabilities.Effective, p.Capabilities.Permitted} {
		if len(set) == 0 {
			t.Error("empty capability set")
		}
		for _, c := range set {
			if !slices.Contains(known, c) {
				t.Errorf("unknown capability %s", c)
			}
		}
	}
	if slices.Contains(p.Capabilities.Bounding, "CAP_SYS_ADMIN") {
		t.Error("default bounding set has CAP_SYS_ADMIN")
	}
	types := nsTypes(s)
	for _, want := range []specs.LinuxNamespaceType{specs.MountNamespace, specs.PIDNamespace, specs.NetworkNamespace,
		specs.IPCNamespace, specs.UTSNamespace, specs.CgroupNamespace} {
		if !slices.Contains(types, want) {
			t.Errorf("namespaces %q lack %s", types, want)
		}
	}
	if slices.Contains(types, specs.UserNamespace) {
		t.Error("default spec has a user namespace")
	}
	if len(s.Linux.UIDMappings) != 0 || len(s.Linux.GIDMappings) != 0 {
		t.Error("default spec has id mappings without a user namespace")
	}
	if s.Hostname != "" && !slices.Contains(types, specs.UTSNamespace) {
		t.Error("hostname without a uts namespace")
	}
	if r := s.Linux.Resources; r == nil || len(r.Devices) == 0 || r.Devices[0].Allow || r.Devices[0].Access != "rwm" {
		t.Errorf("default device rules should start with deny-all: %+v", s.Linux.Resources)
	}
	dests := map[string]bool{}
	for i, m := range s.Mounts {
		if !path.IsAbs(m.Destination) {
			t.Errorf("mounts[%d].destination %q not absolute", i, m.Destination)
		}
		if dests[m.Destination] {
			t.Errorf("mount %s twice", m.Destination)
		}
		dests[m.Destination] = true
	}
	for _, d := range []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"} {
		if !dests[d] {
			t.Errorf("no mount on %s", d)
		}
	}
	for _, list := range [][]string{s.Linux.MaskedPaths, s.Linux.ReadonlyPaths} {
		for _, p := range list {
			if !path.IsAbs(p) {
				t.Errorf("path %q not absolute", p)
			}
		}
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Error("masked/readonly paths lack runc's defaults")
	}
	for i, r := range p.Rlimits {
		if r.Soft > r.Hard {
			t.Errorf("rlimits[%d] soft above hard", i)
		}
	}
	// It survives a JSON round trip (what `runsilo spec` writes).
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back specs.Spec
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Process == nil || !back.Process.Terminal || len(back.Linux.Namespaces) != len(s.Linux.Namespaces) {
		t.Errorf("round trip lost fields: %s", data)
	}
}

func TestDefaultSpecRootless(t *testing.T) {
	s := defaultSpec(true)
	types := nsTypes(s)
	if !slices.Contains(types, specs.UserNamespace) {
		t.Fatalf("rootless spec has no user namespace: %q", types)
	}
	if !slices.Contains(types, specs.MountNamespace) {
		t.Error("rootless spec lost the mount namespace")
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	if len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0] != (specs.LinuxIDMapping{ContainerID: 0, HostID: uid, Size: 1}) {
		t.Errorf("uid mappings %+v, want 0 -> %d", s.Linux.UIDMappings, uid)
	}
	if len(s.Linux.GIDMappings) != 1 || s.Linux.GIDMappings[0] != (specs.LinuxIDMapping{ContainerID: 0, HostID: gid, Size: 1}) {
		t.Errorf("gid mappings %+v, want 0 -> %d", s.Linux.GIDMappings, gid)
	}
	if s.Linux.Resources != nil {
		t.Error("rootless spec sets cgroup resources")
	}
	// The two calls do not share state.
	if plain := defaultSpec(false); slices.Contains(nsTypes(plain), specs.UserNamespace) {
		t.Error("defaultSpec(true) changed defaultSpec(false)")
	}
}
