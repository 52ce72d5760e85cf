package seccomp

import (
	"reflect"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestMarshalRoundTrip(t *testing.T) {
	f, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}},
	})
	if err != nil {
		t.Skipf("compile: %v", err)
	}
	data, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	g, err := UnmarshalFilter(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Program(), g.Program()) || f.Flags() != g.Flags() || f.NeedsNotify() != g.NeedsNotify() {
		t.Fatal("round trip changed the filter")
	}
	for _, bad := range [][]byte{nil, []byte("junk"), data[:len(data)-3], append([]byte("XXXXXXXX"), data[8:]...)} {
		if _, err := UnmarshalFilter(bad); err == nil {
			t.Errorf("UnmarshalFilter(%q...) accepted a corrupt filter", bad[:min(len(bad), 8)])
		}
	}
}

func TestAllows(t *testing.T) {
	arch := map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}[runtime.GOARCH]
	if arch == 0 {
		t.Skipf("no test architecture for %s", runtime.GOARCH)
	}
	denyList, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"fcntl"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 1, Value: unix.F_SETFD, Op: specs.OpEqualTo}}},
			{Names: []string{"mkdirat"}, Action: specs.ActKillProcess},
			{Names: []string{"fchmodat"}, Action: specs.ActLog},
		},
	})
	if err != nil {
		t.Skipf("compile: %v", err)
	}
	allowList, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"read", "execve"}, Action: specs.ActAllow}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    *Filter
		arch uint32
		nr   uintptr
		args [6]uint64
		want bool
	}{
		{"not named", denyList, arch, unix.SYS_READ, [6]uint64{3}, true},
		{"arg matches", denyList, arch, unix.SYS_FCNTL, [6]uint64{3, unix.F_SETFD, 1}, false},
		{"arg differs", denyList, arch, unix.SYS_FCNTL, [6]uint64{3, unix.F_GETFD}, true},
		{"killed", denyList, arch, unix.SYS_MKDIRAT, [6]uint64{}, false},
		{"logged", denyList, arch, unix.SYS_FCHMODAT, [6]uint64{}, true},
		{"other architecture", denyList, unix.AUDIT_ARCH_S390X, unix.SYS_READ, [6]uint64{}, false},
		{"allow list", allowList, arch, unix.SYS_EXECVE, [6]uint64{}, true},
		{"not on the allow list", allowList, arch, unix.SYS_FCNTL, [6]uint64{3, unix.F_SETFD, 1}, false},
		{"no filter", nil, arch, unix.SYS_FCNTL, [6]uint64{}, true},
	}
	for _, tt := range tests {
		if got := tt.f.Allows(tt.arch, tt.nr, tt.args, 0x401000); got != tt.want {
			t.Errorf("%s: Allows = %v, want %v", tt.name, got, tt.want)
		}
	}
}
