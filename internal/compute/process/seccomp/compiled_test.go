package seccomp

import (
	"encoding/binary"
	"reflect"
	"runtime"
	"testing"

	seccompprofile "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
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

// TestRunFilterMatchesBPFVM checks runFilter against golang.org/x/net/bpf's
// VM on Docker's default profile (every capability, so every rule) over
// every system call number with a few argument patterns, and on a program
// using the scratch memory, X and the ALU.
func TestRunFilterMatchesBPFVM(t *testing.T) {
	all := []string{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_BOOT", "CAP_SYS_MODULE", "CAP_SYS_NICE", "CAP_SYSLOG", "CAP_SYS_TIME",
		"CAP_SYS_PACCT", "CAP_SYS_RAWIO", "CAP_BPF", "CAP_PERFMON", "CAP_DAC_READ_SEARCH", "CAP_SYS_TTY_CONFIG"}
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}}}
	docker, err := seccompprofile.GetDefaultProfile(s)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Compile(docker)
	if err != nil {
		t.Skipf("compile: %v", err)
	}
	scratch := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0},  // A = nr
		{Code: unix.BPF_ST, K: 3},                              // mem[3] = A
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 16}, // A = args[0] low
		{Code: unix.BPF_MISC | unix.BPF_TAX},                   // X = A
		{Code: unix.BPF_LD | unix.BPF_MEM, K: 3},               // A = nr
		{Code: unix.BPF_ALU | unix.BPF_ADD | unix.BPF_X},       // A += X
		{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: 7}, // A &= 7
		{Code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, K: 4, Jt: 1, Jf: 0},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		{Code: unix.BPF_RET | unix.BPF_A},
	}
	for _, prog := range [][]unix.SockFilter{f.prog, scratch} {
		insns := make([]bpf.Instruction, len(prog))
		for i, in := range prog {
			insns[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}.Disassemble()
		}
		vm, err := bpf.NewVM(insns)
		if err != nil {
			t.Fatal(err)
		}
		for _, arch := range []uint32{unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_AARCH64, unix.AUDIT_ARCH_S390X} {
			for nr := uint32(0); nr < 470; nr++ {
				for _, args := range [][6]uint64{{}, {3, unix.F_SETFD, 1}, {unix.CLONE_NEWUSER}, {0, 0x7ff00000}, {1 << 40, 5}} {
					var data [16]uint32
					data[0], data[1], data[2], data[3] = nr, arch, 0x401000, 0
					for i, a := range args {
						data[4+2*i], data[5+2*i] = uint32(a), uint32(a>>32)
					}
					var be [64]byte
					for i, w := range data {
						binary.BigEndian.PutUint32(be[4*i:], w)
					}
					want, err := vm.Run(be[:])
					got, ok := runFilter(prog, &data)
					if err != nil || !ok || got != uint32(want) {
						t.Fatalf("arch %#x nr %d args %x: runFilter %#x (%v), bpf VM %#x (%v)", arch, nr, args, got, ok, uint32(want), err)
					}
				}
			}
		}
	}
}

// FuzzRunFilter: any program runs to a verdict or a refusal, without a
// panic (jumps past the end, scratch slots out of range, division by zero).
func FuzzRunFilter(f *testing.F) {
	f.Add([]byte{0x20, 0, 0, 0, 0, 0, 0, 0, 0x06, 0, 0, 0, 0, 0, 0xff, 0x7f}, uint32(0))
	f.Fuzz(func(t *testing.T, raw []byte, nr uint32) {
		var prog []unix.SockFilter
		for len(raw) >= 8 {
			prog = append(prog, unix.SockFilter{Code: binary.LittleEndian.Uint16(raw), Jt: raw[2], Jf: raw[3], K: binary.LittleEndian.Uint32(raw[4:])})
			raw = raw[8:]
		}
		data := [16]uint32{nr, unix.AUDIT_ARCH_X86_64}
		runFilter(prog, &data)
	})
}
