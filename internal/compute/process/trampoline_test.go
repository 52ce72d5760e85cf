package process

import (
	"testing"

	seccompprofile "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/compute/process/dmz"
	"github.com/silo-containers/silo/internal/compute/process/seccomp"
)

// TestTrampolineUnderProfiles: Docker's default seccomp profile lets every
// call of both trampolines through (so docker's containers get the direct
// paths); a profile that denies one of them gets no trampoline.
func TestTrampolineUnderProfiles(t *testing.T) {
	if !dmz.Supported() {
		t.Skip("trampolines are x86-64 code")
	}
	s := directSpec()
	s.Process.Args = []string{"sh", "-c", "true"}
	s.Process.Env = []string{"PATH=/usr/bin:/bin"}
	docker, err := seccompprofile.GetDefaultProfile(s)
	if err != nil {
		t.Fatal(err)
	}
	compile := func(sc *specs.LinuxSeccomp) *seccomp.Filter {
		f, err := seccomp.Compile(sc)
		if err != nil {
			t.Skipf("compile a profile: %v", err)
		}
		return f
	}
	denyFcntl := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"fcntl"}, Action: specs.ActErrno}}}
	denySetsid := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"setsid"}, Action: specs.ActKillProcess}}}
	for _, tt := range []struct {
		name       string
		profile    *specs.LinuxSeccomp
		init, exec bool
	}{
		{"no filter", nil, true, true},
		{"docker's default", docker, true, true},
		{"fcntl denied", denyFcntl, false, false},
		{"setsid denied (only the exec's calls it)", denySetsid, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var f *seccomp.Filter
			if tt.profile != nil {
				f = compile(tt.profile)
			}
			if got := newTrampoline(s.Process, f, false, true) != nil; got != tt.init {
				t.Errorf("init's trampoline: %v, want %v", got, tt.init)
			}
			if got := newTrampoline(s.Process, f, true, false) != nil; got != tt.exec {
				t.Errorf("exec's trampoline: %v, want %v", got, tt.exec)
			}
		})
	}
}

// BenchmarkNewTrampoline: building an init's trampoline and checking it
// against Docker's default profile, as every container start from a
// writable runtime does.
func BenchmarkNewTrampoline(b *testing.B) {
	s := directSpec()
	docker, err := seccompprofile.GetDefaultProfile(s)
	if err != nil {
		b.Fatal(err)
	}
	f, err := seccomp.Compile(docker)
	if err != nil {
		b.Skipf("compile a profile: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if newTrampoline(s.Process, f, false, true) == nil {
			b.Fatal("refused")
		}
	}
}
