package process

import (
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParseCaps(t *testing.T) {
	tests := []struct {
		name   string
		caps   []string
		want   capSet
		errHas []string
	}{
		{name: "none", caps: nil, want: 0},
		{name: "one", caps: []string{"CAP_CHOWN"}, want: 1 << unix.CAP_CHOWN},
		{
			name: "several",
			caps: []string{"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"},
			want: 1<<unix.CAP_KILL | 1<<unix.CAP_NET_BIND_SERVICE | 1<<unix.CAP_AUDIT_WRITE,
		},
		{name: "duplicates are harmless", caps: []string{"CAP_KILL", "CAP_KILL"}, want: 1 << unix.CAP_KILL},
		{name: "lower case accepted", caps: []string{"cap_sys_admin"}, want: 1 << unix.CAP_SYS_ADMIN},
		{name: "mixed case accepted", caps: []string{"Cap_Net_Raw"}, want: 1 << unix.CAP_NET_RAW},
		{name: "above 32", caps: []string{"CAP_CHECKPOINT_RESTORE", "CAP_BPF"}, want: 1<<unix.CAP_CHECKPOINT_RESTORE | 1<<unix.CAP_BPF},
		{name: "unknown", caps: []string{"CAP_KILL", "CAP_FOO"}, errHas: []string{"field[1]", `"CAP_FOO"`}},
		{name: "no CAP_ prefix", caps: []string{"CHOWN"}, errHas: []string{"field[0]", `"CHOWN"`}},
		{name: "empty name", caps: []string{""}, errHas: []string{"field[0]"}},
		{name: "whitespace not trimmed", caps: []string{" CAP_KILL"}, errHas: []string{"field[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCaps("field", tt.caps)
			if tt.errHas != nil {
				if err == nil {
					t.Fatalf("parseCaps(%q) = %#x, want error", tt.caps, got)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				if got != 0 {
					t.Errorf("parseCaps returned %#x with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseCaps(%q): %v", tt.caps, err)
			}
			if got != tt.want {
				t.Errorf("parseCaps(%q) = %#x, want %#x", tt.caps, got, tt.want)
			}
		})
	}
}

func TestCapabilityNames(t *testing.T) {
	names := CapabilityNames()
	if len(names) != len(capNames) {
		t.Errorf("CapabilityNames() has %d names, capNames %d", len(names), len(capNames))
	}
	seen := map[string]bool{}
	for i, n := range names {
		if n == "" {
			t.Errorf("CapabilityNames()[%d] is empty (gap in the capability numbers)", i)
			continue
		}
		if seen[n] {
			t.Errorf("CapabilityNames() lists %s twice", n)
		}
		seen[n] = true
		if v, ok := capNames[n]; !ok || int(v) != i {
			t.Errorf("CapabilityNames()[%d] = %s, which is capability %d", i, n, v)
		}
		if !strings.HasPrefix(n, "CAP_") {
			t.Errorf("CapabilityNames()[%d] = %q lacks the CAP_ prefix", i, n)
		}
	}
	for _, want := range []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE", "CAP_BPF", "CAP_PERFMON"} {
		if !seen[want] {
			t.Errorf("CapabilityNames() lacks %s", want)
		}
	}
	if names[0] != "CAP_CHOWN" {
		t.Errorf("CapabilityNames()[0] = %s, want CAP_CHOWN", names[0])
	}
	// Every capability must fit the 64-bit capSet.
	for n, v := range capNames {
		if v >= 64 {
			t.Errorf("%s = %d does not fit a capSet", n, v)
		}
	}
}

func TestLastCap(t *testing.T) {
	last := lastCap()
	if last < unix.CAP_AUDIT_READ || last >= 64 {
		t.Errorf("lastCap() = %d, implausible", last)
	}
}

func TestNewCredentials(t *testing.T) {
	umask := uint32(0o027)
	tests := []struct {
		name   string
		proc   specs.Process
		want   *credentials
		errHas []string
	}{
		{
			name: "bare",
			proc: specs.Process{Cwd: "/"},
			want: &credentials{cwd: "/"},
		},
		{
			name: "user, groups, umask",
			proc: specs.Process{
				Cwd: "/home", NoNewPrivileges: true,
				User: specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{5, 27, 100}, Umask: &umask},
			},
			want: &credentials{uid: 1000, gid: 100, groups: []int{5, 27, 100}, umask: &umask, noNewPrivs: true, cwd: "/home"},
		},
		{
			name: "capabilities",
			proc: specs.Process{Cwd: "/", Capabilities: &specs.LinuxCapabilities{
				Bounding: []string{"CAP_KILL", "CAP_CHOWN"}, Effective: []string{"CAP_KILL"},
				Permitted: []string{"cap_kill"}, Inheritable: []string{"CAP_CHOWN"}, Ambient: []string{"CAP_KILL"},
			}},
			want: &credentials{
				cwd: "/", hasCaps: true,
				bounding: 1<<unix.CAP_KILL | 1<<unix.CAP_CHOWN, effective: 1 << unix.CAP_KILL,
				permitted: 1 << unix.CAP_KILL, inheritabl: 1 << unix.CAP_CHOWN, ambient: 1 << unix.CAP_KILL,
			},
		},
		{
			name: "empty capabilities object drops all",
			proc: specs.Process{Cwd: "/", Capabilities: &specs.LinuxCapabilities{}},
			want: &credentials{cwd: "/", hasCaps: true},
		},
		{
			name: "rlimits mapped in order",
			proc: specs.Process{Cwd: "/", Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096},
				{Type: "rlimit_core", Soft: 0, Hard: 0},
				{Type: "RLIMIT_AS", Soft: 1 << 30, Hard: 1 << 30},
			}},
			want: &credentials{cwd: "/", rlimits: []rlimit{
				{unix.RLIMIT_NOFILE, unix.Rlimit{Cur: 1024, Max: 4096}},
				{unix.RLIMIT_CORE, unix.Rlimit{}},
				{unix.RLIMIT_AS, unix.Rlimit{Cur: 1 << 30, Max: 1 << 30}},
			}},
		},
		{
			name:   "rlimit twice",
			proc:   specs.Process{Cwd: "/", Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NPROC"}, {Type: "RLIMIT_CPU"}, {Type: "RLIMIT_NPROC"}}},
			errHas: []string{"process.rlimits[2]", "twice"},
		},
		{
			name:   "rlimit twice, different case",
			proc:   specs.Process{Cwd: "/", Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE"}, {Type: "rlimit_nofile"}}},
			errHas: []string{"process.rlimits[1]", "twice"},
		},
		{
			name:   "unknown rlimit",
			proc:   specs.Process{Cwd: "/", Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_FOO"}}},
			errHas: []string{"process.rlimits[0].type", "RLIMIT_FOO"},
		},
		{
			name:   "soft above hard",
			proc:   specs.Process{Cwd: "/", Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2, Hard: 1}}},
			errHas: []string{"process.rlimits[0]", "soft"},
		},
		{
			name:   "unknown bounding capability",
			proc:   specs.Process{Cwd: "/", Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_FOO"}}},
			errHas: []string{"process.capabilities.bounding[0]"},
		},
		{
			name:   "unknown inheritable capability",
			proc:   specs.Process{Cwd: "/", Capabilities: &specs.LinuxCapabilities{Inheritable: []string{"CAP_KILL", "x"}}},
			errHas: []string{"process.capabilities.inheritable[1]"},
		},
		{
			name:   "unknown permitted capability",
			proc:   specs.Process{Cwd: "/", Capabilities: &specs.LinuxCapabilities{Permitted: []string{"CAP_FOO"}}},
			errHas: []string{"process.capabilities.permitted[0]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newCredentials(&tt.proc)
			if tt.errHas != nil {
				if err == nil {
					t.Fatalf("newCredentials: no error, got %+v", got)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("newCredentials: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("newCredentials\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

// Every OCI rlimit name maps to a distinct resource.
func TestRlimitNames(t *testing.T) {
	seen := map[int]string{}
	for n, r := range rlimitNames {
		if other, ok := seen[r]; ok {
			t.Errorf("%s and %s map to the same resource %d", n, other, r)
		}
		seen[r] = n
	}
	if len(rlimitNames) != 16 {
		t.Errorf("%d rlimits known, Linux has 16", len(rlimitNames))
	}
}

func TestGroupsPtr(t *testing.T) {
	if groupsPtr(nil) != 0 {
		t.Error("groupsPtr(nil) != 0")
	}
	if groupsPtr([]int{1, 2}) == 0 {
		t.Error("groupsPtr([1 2]) == 0")
	}
}

func TestPersonalities(t *testing.T) {
	if _, ok := personalities[specs.PerLinux]; !ok {
		t.Error("LINUX personality unknown")
	}
	if _, ok := personalities[specs.PerLinux32]; !ok {
		t.Error("LINUX32 personality unknown")
	}
	if err := setPersonality(&specs.LinuxPersonality{Domain: "LINUX_FOO"}); err == nil || !strings.Contains(err.Error(), "linux.personality.domain") {
		t.Errorf("setPersonality(LINUX_FOO) = %v", err)
	}
}
