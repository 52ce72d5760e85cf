//go:build cgo

package seccomp

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func uptr(v uint) *uint { return &v }

// allowWith returns a default-allow profile with the given rules.
func allowWith(rules ...specs.LinuxSyscall) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules}
}

func TestCompileErrors(t *testing.T) {
	deny := specs.LinuxSyscall{Names: []string{"mkdir"}, Action: specs.ActErrno}
	tests := []struct {
		name string
		s    *specs.LinuxSeccomp
		want string // the full error text
	}{
		{"nil", nil, `seccomp: no profile (nil linux.seccomp)`},
		{"no default", &specs.LinuxSeccomp{}, `seccomp: defaultAction: must be set`},
		{"bad default", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO"},
			`seccomp: defaultAction: unknown action "SCMP_ACT_FOO"`},
		{"lower-case default", &specs.LinuxSeccomp{DefaultAction: "scmp_act_allow"},
			`seccomp: defaultAction: unknown action "scmp_act_allow"`},
		{"notify default", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/x"},
			`seccomp: defaultAction: SCMP_ACT_NOTIFY cannot be the default action`},
		{"defaultErrnoRet with allow", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: uptr(1)},
			`seccomp: defaultErrnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, but defaultAction is "SCMP_ACT_ALLOW"`},
		{"defaultErrnoRet too big", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(65536)},
			`seccomp: defaultErrnoRet: 65536 out of range (max 65535)`},
		{"bad arch", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86, "SCMP_ARCH_FOO"}},
			`seccomp: unknown architecture "SCMP_ARCH_FOO"`},
		{"libseccomp alias is not a spec arch", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_AMD64"}},
			`seccomp: unknown architecture "SCMP_ARCH_AMD64"`},
		{"bad flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, "SECCOMP_FILTER_FLAG_FOO"}},
			`seccomp: flags[1]: unknown flag "SECCOMP_FILTER_FLAG_FOO"`},
		{"NEW_LISTENER is not a profile flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NEW_LISTENER"}},
			`seccomp: flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"`},
		{"no names", allowWith(deny, specs.LinuxSyscall{Action: specs.ActErrno}),
			`seccomp: syscalls[1].names: must not be empty`},
		{"empty name", allowWith(specs.LinuxSyscall{Names: []string{"read", ""}, Action: specs.ActErrno}),
			`seccomp: syscalls[0].names[1]: empty syscall name`},
		{"no action", allowWith(specs.LinuxSyscall{Names: []string{"read"}}),
			`seccomp: syscalls[0].action: must be set`},
		{"bad action", allowWith(deny, deny, deny, specs.LinuxSyscall{Names: []string{"read"}, Action: "SCMP_ACT_FOO"}),
			`seccomp: syscalls[3].action: unknown action "SCMP_ACT_FOO"`},
		{"errnoRet with kill", allowWith(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActKillProcess, ErrnoRet: uptr(1)}),
			`seccomp: syscalls[0].errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, but syscalls[0].action is "SCMP_ACT_KILL_PROCESS"`},
		{"errnoRet too big", allowWith(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActTrace, ErrnoRet: uptr(1 << 20)}),
			`seccomp: syscalls[0].errnoRet: 1048576 out of range (max 65535)`},
		{"notify on write", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActNotify}}},
			`seccomp: syscalls[0].action: SCMP_ACT_NOTIFY cannot be used for the write syscall`},
		{"notify without listener", allowWith(specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActNotify}),
			`seccomp: listenerPath: must be set when SCMP_ACT_NOTIFY is used (syscalls[0])`},
		{"arg index", allowWith(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo}, {Index: 6, Op: specs.OpEqualTo}}}),
			`seccomp: syscalls[0].args[1].index: 6 out of range (syscalls have arguments 0-5)`},
		{"no op", allowWith(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0}}}),
			`seccomp: syscalls[0].args[0].op: must be set`},
		{"bad op", allowWith(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_FOO"}}}),
			`seccomp: syscalls[0].args[0].op: unknown operator "SCMP_CMP_FOO"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Compile(tt.s)
			if err == nil {
				t.Fatalf("Compile succeeded (%d insns), want error %q", len(f.Program()), tt.want)
			}
			if err.Error() != tt.want {
				t.Fatalf("Compile error:\n got %q\nwant %q", err, tt.want)
			}
			if verr := Validate(tt.s); verr == nil || verr.Error() != tt.want {
				t.Fatalf("Validate = %v, want the same error as Compile", verr)
			}
		})
	}
}

func TestCompile(t *testing.T) {
	notifyRule := specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActNotify}
	tests := []struct {
		name      string
		s         *specs.LinuxSeccomp
		wantFlags uint
		notify    bool
	}{
		{name: "empty allow", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}},
		{name: "every action", s: &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(uint(unix.ENOSYS)), ListenerPath: "/a",
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read"}, Action: specs.ActAllow},
				{Names: []string{"getpid"}, Action: specs.ActKill},
				{Names: []string{"getppid"}, Action: specs.ActKillThread},
				{Names: []string{"gettid"}, Action: specs.ActKillProcess},
				{Names: []string{"getuid"}, Action: specs.ActTrap},
				{Names: []string{"getgid"}, Action: specs.ActErrno},
				{Names: []string{"geteuid"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV))},
				{Names: []string{"getegid"}, Action: specs.ActTrace},
				{Names: []string{"getpgrp"}, Action: specs.ActTrace, ErrnoRet: uptr(3)},
				{Names: []string{"getsid"}, Action: specs.ActLog},
				{Names: []string{"getpgid"}, Action: specs.ActNotify},
			}},
			wantFlags: unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, notify: true},
		{name: "unknown syscall names are skipped", s: allowWith(
			specs.LinuxSyscall{Names: []string{"no_such_syscall", "mkdirat", "also_not_a_syscall_2099"}, Action: specs.ActErrno},
			specs.LinuxSyscall{Names: []string{"no_such_syscall"}, Action: specs.ActKill})},
		{name: "syscalls of other archs only", s: &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"socketcall", "_llseek", "ipc", "arm_fadvise64_64"}, Action: specs.ActErrno}}}},
		{name: "multiplexed syscalls with x86", s: &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"socket", "connect", "socketcall", "shmget", "ipc"}, Action: specs.ActAllow}}}},
		{name: "rule equal to default is skipped", s: &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(1),
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read"}, Action: specs.ActErrno}, // EPERM == 1: same action
				{Names: []string{"write"}, Action: specs.ActAllow},
			}}},
		{name: "args: repeated index is split", s: allowWith(specs.LinuxSyscall{
			Names: []string{"personality"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0, Op: specs.OpEqualTo},
				{Index: 0, Value: 8, Op: specs.OpEqualTo},
				{Index: 1, Value: 8, Op: specs.OpGreaterThan},
			}})},
		{name: "args: every operator", s: allowWith(
			specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x7E020000, ValueTwo: 0, Op: specs.OpMaskedEqual}}},
			specs.LinuxSyscall{Names: []string{"kill"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpNotEqual}, {Index: 1, Value: 9, Op: specs.OpLessThan}}},
			specs.LinuxSyscall{Names: []string{"tkill"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpLessEqual}, {Index: 1, Value: 9, Op: specs.OpGreaterEqual}}},
			specs.LinuxSyscall{Names: []string{"tgkill"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 2, Value: 9, Op: specs.OpGreaterThan}}})},
		{name: "flags", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Flags: []specs.LinuxSeccompFlag{flagTsync, specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv}},
			// WAIT_KILLABLE_RECV is dropped: nothing notifies.
			wantFlags: unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{name: "flags with notify", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/a",
			Flags:    []specs.LinuxSeccompFlag{flagTsync, specs.LinuxSeccompFlagWaitKillableRecv},
			Syscalls: []specs.LinuxSyscall{notifyRule}},
			wantFlags: unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH |
				unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER,
			notify: true},
		{name: "large profile", s: largeProfile(), wantFlags: unix.SECCOMP_FILTER_FLAG_TSYNC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Compile(tt.s)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			prog := f.Program()
			if len(prog) == 0 || len(prog) > unix.BPF_MAXINSNS {
				t.Fatalf("program has %d instructions", len(prog))
			}
			// Every seccomp program libseccomp emits starts by loading
			// seccomp_data.arch (offset 4) to check the architecture.
			if prog[0].Code != unix.BPF_LD|unix.BPF_W|unix.BPF_ABS || prog[0].K != 4 {
				t.Errorf("first instruction %+v does not load the arch", prog[0])
			}
			if last := prog[len(prog)-1]; last.Code != unix.BPF_RET|unix.BPF_K {
				t.Errorf("last instruction %+v is not a return", last)
			}
			if f.Flags() != tt.wantFlags {
				t.Errorf("Flags() = %#x, want %#x", f.Flags(), tt.wantFlags)
			}
			if f.NeedsNotify() != tt.notify || NeedsNotify(tt.s) != tt.notify {
				t.Errorf("NeedsNotify = %v/%v, want %v", f.NeedsNotify(), NeedsNotify(tt.s), tt.notify)
			}
		})
	}
}

// TestCompileDistinguishesRules checks by program shape that skipped rules
// (unknown names, rules repeating the default) leave no trace and that
// errno values reach the program's return values. The load tests check the
// same things by behaviour.
func TestCompileDistinguishesRules(t *testing.T) {
	compile := func(s *specs.LinuxSeccomp) []unix.SockFilter {
		t.Helper()
		f, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		return f.Program()
	}
	base := compile(allowWith())
	withRule := compile(allowWith(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActErrno}))
	if slices.Equal(base, withRule) {
		t.Fatal("adding a rule did not change the program")
	}
	sameAsDefault := compile(allowWith(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActAllow}))
	if !slices.Equal(base, sameAsDefault) {
		t.Fatal("a rule repeating the default action changed the program")
	}
	unknown := compile(allowWith(specs.LinuxSyscall{Names: []string{"not_a_syscall"}, Action: specs.ActErrno}))
	if !slices.Equal(base, unknown) {
		t.Fatal("an unknown syscall name changed the program")
	}
	// EPERM is the default errno: nil and 1 must compile identically.
	eperm := compile(allowWith(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(1)}))
	if !slices.Equal(withRule, eperm) {
		t.Fatal("errnoRet nil and errnoRet 1 compile differently")
	}
	// The errno is in the program's return value.
	exdev := compile(allowWith(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV))}))
	if !hasRet(exdev, unix.SECCOMP_RET_ERRNO|uint32(unix.EXDEV)) {
		t.Fatal("no RET ERRNO|EXDEV in program")
	}
	defErrno := compile(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(uint(unix.ENOSYS))})
	if !hasRet(defErrno, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)) {
		t.Fatal("no RET ERRNO|ENOSYS for the default action")
	}
	kill := compile(&specs.LinuxSeccomp{DefaultAction: specs.ActKill})
	if !hasRet(kill, unix.SECCOMP_RET_KILL_THREAD) {
		t.Fatal("SCMP_ACT_KILL is not RET_KILL_THREAD")
	}
}

func hasRet(prog []unix.SockFilter, k uint32) bool {
	return slices.ContainsFunc(prog, func(in unix.SockFilter) bool {
		return in.Code == unix.BPF_RET|unix.BPF_K && in.K == k
	})
}

func TestCompileArchs(t *testing.T) {
	// libseccomp 2.5 predates LoongArch, M68K and SuperH; newer versions
	// know them. Either way Compile must fail only for what Features does
	// not list, or for the other byte order, and name the architecture.
	supported := Features().Archs
	bigEndian := []specs.Arch{specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchPPC,
		specs.ArchPPC64, specs.ArchS390, specs.ArchS390X, specs.ArchPARISC, specs.ArchPARISC64, specs.ArchM68K, specs.ArchSHEB}
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("host is big-endian; the table below assumes little-endian")
	}
	for _, a := range knownArchs {
		_, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{a}})
		want := slices.Contains(supported, string(a)) && !slices.Contains(bigEndian, a)
		if (err == nil) != want {
			t.Errorf("%s: Compile error %v, want success: %v", a, err, want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), `seccomp: architecture "`+string(a)+`": `) {
			t.Errorf("%s: error %q does not name the architecture", a, err)
		}
	}
	if _, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchS390X}}); err == nil ||
		!strings.Contains(err.Error(), "byte order") {
		t.Errorf("s390x on a little-endian host: %v", err)
	}
}

func TestCompileConflictingRules(t *testing.T) {
	arg := []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}
	_, err := Compile(allowWith(
		specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActErrno, Args: arg},
		specs.LinuxSyscall{Names: []string{"getpid", "read"}, Action: specs.ActTrap, Args: arg}))
	want := `seccomp: syscalls[1].names[1] "read": an earlier rule has the same syscall and arguments but another action`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Compile = %v, want %s", err, want)
	}
}

func TestFeatures(t *testing.T) {
	f := Features()
	if f.Enabled == nil || !*f.Enabled {
		t.Fatal("seccomp not enabled")
	}
	for _, a := range []string{"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
		"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"} {
		if !slices.Contains(f.Actions, a) {
			t.Errorf("action %s missing", a)
		}
	}
	if len(f.Operators) != 7 || !slices.Contains(f.Operators, "SCMP_CMP_MASKED_EQ") {
		t.Errorf("operators = %v", f.Operators)
	}
	for _, a := range []string{"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_RISCV64"} {
		if !slices.Contains(f.Archs, a) {
			t.Errorf("arch %s missing from %v", a, f.Archs)
		}
	}
	want := []string{"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}
	if !slices.Equal(f.KnownFlags, want) {
		t.Errorf("knownFlags = %v, want %v", f.KnownFlags, want)
	}
	for _, fl := range f.SupportedFlags {
		if !slices.Contains(f.KnownFlags, fl) {
			t.Errorf("supported flag %s is not known", fl)
		}
	}
	// Every flag is older than Linux 5.19; on such a kernel all are
	// supported. Older kernels legitimately report fewer.
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil && kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 5, 19) {
		if !slices.Equal(f.SupportedFlags, want) {
			t.Errorf("supportedFlags = %v on kernel %s, want %v", f.SupportedFlags, unix.ByteSliceToString(u.Release[:]), want)
		}
	}
}

func kernelAtLeast(release string, major, minor int) bool {
	var ma, mi int
	for i, part := range strings.SplitN(release, ".", 3)[:2] {
		n := 0
		for _, c := range part {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		if i == 0 {
			ma = n
		} else {
			mi = n
		}
	}
	return ma > major || (ma == major && mi >= minor)
}

// TestLoadErrorsDoNotAllocate runs Load's failure paths in this (unfiltered)
// process: they install nothing.
func TestLoadErrorsDoNotAllocate(t *testing.T) {
	var nilFilter *Filter
	if _, err := nilFilter.Load(); !errors.Is(err, errNoFilter) {
		t.Fatalf("nil Filter: %v", err)
	}
	ok, err := Compile(allowWith())
	if err != nil {
		t.Fatal(err)
	}
	// A flag bit no kernel knows makes seccomp(2) fail with EINVAL before
	// it looks at anything else.
	bad, err := newFilter(ok.Program(), 1<<30, false)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := bad.Load()
	if fd != -1 || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("Load with a bogus flag = %d, %v; want -1, EINVAL", fd, err)
	}
	var le LoadError
	if !errors.As(err, &le) || !strings.Contains(le.Error(), "seccomp: loading filter: invalid argument") {
		t.Fatalf("error %q is not a LoadError", err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		_, _ = nilFilter.Load()
		_, _ = bad.Load()
	})
	if allocs != 0 {
		t.Fatalf("Load error paths allocate %v times", allocs)
	}
}
