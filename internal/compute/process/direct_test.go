package process

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute"
	"github.com/silo-containers/silo/internal/compute/process/dmz"
)

// directSpec is runc's default spec, which the direct init takes.
func directSpec() *specs.Spec {
	caps := []string{"CAP_KILL"}
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"/bin/true"}, Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro"}},
		},
		Linux: &specs.Linux{
			Namespaces:  []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "mount"}, {Type: "uts"}},
			MaskedPaths: []string{"/proc/kcore"}, ReadonlyPaths: []string{"/proc/sys"},
		},
	}
}

func TestDirectSupported(t *testing.T) {
	pretendSafeExe(t)
	if !haveDirectKernel() {
		t.Skip("kernel without mount_setattr")
	}
	for _, tt := range []struct {
		name string
		edit func(*specs.Spec, *compute.Document)
		want bool
	}{
		{"runc defaults", func(*specs.Spec, *compute.Document) {}, true},
		{"terminal", func(s *specs.Spec, _ *compute.Document) { s.Process.Terminal = true }, true},
		{"preserved fds up to the fixed ones", func(_ *specs.Spec, d *compute.Document) { d.PreserveFDs = firstFixedFd - 3 }, false},
		{"bind mount", func(s *specs.Spec, _ *compute.Document) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: "/etc/hosts", Options: []string{"rbind", "ro", "nosuid", "rprivate"}})
		}, true},
		{"bind mount with a flag mount_setattr does not set", func(s *specs.Spec, _ *compute.Document) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: "/etc/hosts", Options: []string{"rbind", "sync"}})
		}, false},
		{"overlay mount", func(s *specs.Spec, _ *compute.Document) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "overlay", Source: "overlay"})
		}, false},
		{"user namespace", func(s *specs.Spec, _ *compute.Document) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "user"})
		}, false},
		{"joined network namespace", func(s *specs.Spec, _ *compute.Document) {
			s.Linux.Namespaces[1].Path = "/proc/self/ns/net"
		}, true},
		{"joined mount namespace", func(s *specs.Spec, _ *compute.Document) {
			s.Linux.Namespaces[2].Path = "/proc/self/ns/mnt"
		}, false},
		{"createContainer hook", func(s *specs.Spec, _ *compute.Document) {
			s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/true"}}}
		}, false},
		{"prestart hook (the runtime's)", func(s *specs.Spec, _ *compute.Document) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true"}}}
		}, true},
		{"seccomp notify", func(s *specs.Spec, _ *compute.Document) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
		}, false},
		{"plain seccomp", func(s *specs.Spec, _ *compute.Document) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
		}, true},
		{"no pivot", func(_ *specs.Spec, d *compute.Document) { d.NoPivot = true }, false},
		{"apparmor", func(s *specs.Spec, _ *compute.Document) { s.Process.ApparmorProfile = "x" }, false},
		{"no capabilities object", func(s *specs.Spec, _ *compute.Document) { s.Process.Capabilities = nil }, false},
		{"shared mount namespace", func(s *specs.Spec, _ *compute.Document) {
			s.Linux.Namespaces = s.Linux.Namespaces[:2]
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := directSpec()
			doc := &compute.Document{ID: "c", Spec: s, StartOnCreate: true}
			tt.edit(s, doc)
			plan, err := planNamespaces(s.Linux.Namespaces)
			if err != nil {
				t.Fatal(err)
			}
			if got := directSupported(doc, plan); got != tt.want {
				t.Errorf("directSupported = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("SILO_EXEC_INIT=1", func(t *testing.T) {
		t.Setenv("SILO_EXEC_INIT", "1")
		s := directSpec()
		plan, _ := planNamespaces(s.Linux.Namespaces)
		if directSupported(&compute.Document{Spec: s}, plan) {
			t.Error("SILO_EXEC_INIT=1 did not turn the direct init off")
		}
	})
}

// pretendSafeExe makes the test binary count as one a container cannot
// write to (selfExeSafe), as a read-only mounted runsilo is.
func pretendSafeExe(t *testing.T) {
	old := selfExeSafe
	selfExeSafe = func() bool { return true }
	t.Cleanup(func() { selfExeSafe = old })
}

// TestWritableExePolicy: with this (test) binary writable, the direct
// paths need a trampoline, and the direct init a pid namespace of its own.
func TestWritableExePolicy(t *testing.T) {
	if exeProtected("/proc/self/exe") {
		t.Skip("the test binary is on a read-only mount")
	}
	if !haveDirectKernel() {
		t.Skip("kernel without mount_setattr")
	}
	supported := func(edit func(*specs.Spec, *compute.Document)) bool {
		s := directSpec()
		doc := &compute.Document{ID: "c", Spec: s, StartOnCreate: true}
		edit(s, doc)
		plan, err := planNamespaces(s.Linux.Namespaces)
		if err != nil {
			t.Fatal(err)
		}
		return directSupported(doc, plan)
	}
	if got := supported(func(*specs.Spec, *compute.Document) {}); got != dmz.Supported() {
		t.Errorf("new pid namespace: directSupported = %v, want %v (trampolines on this machine)", got, dmz.Supported())
	}
	if supported(func(s *specs.Spec, _ *compute.Document) { s.Linux.Namespaces[0].Path = "/proc/self/ns/pid" }) {
		t.Error("directSupported with a joined pid namespace and a writable runtime")
	}
	if supported(func(s *specs.Spec, _ *compute.Document) { s.Linux.Namespaces = s.Linux.Namespaces[1:] }) {
		t.Error("directSupported with the host's pid namespace and a writable runtime")
	}
	if supported(func(_ *specs.Spec, d *compute.Document) { d.PreserveFDs = 1000 }) {
		t.Error("directSupported with preserved fds over the trampoline's")
	}
	s := directSpec()
	if got := directExecSupported(&containerState{}, s, &compute.ProcessParams{Process: s.Process}); got != dmz.Supported() {
		t.Errorf("directExecSupported = %v with a writable runtime, want %v (trampolines on this machine)", got, dmz.Supported())
	}
	if directExecSupported(&containerState{}, s, &compute.ProcessParams{Process: s.Process, PreserveFDs: 1000}) {
		t.Error("directExecSupported with preserved fds over the trampoline's")
	}
}

// trampolineConfig is a directConfig for s whose child executes a
// trampoline (a stand-in file: the steps are only compiled).
func trampolineConfig(t *testing.T, s *specs.Spec, fifoFd int) *directConfig {
	t.Helper()
	creds, err := newCredentials(s.Process)
	if err != nil {
		t.Fatal(err)
	}
	tramp, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tramp.Close() })
	return &directConfig{spec: s, id: "c", rootfs: "/b/rootfs", creds: creds, syncFd: 7, fifoFd: fifoFd, stdio: [3]int{0, 1, 2},
		trampoline: &trampoline{file: tramp, steps: []string{"hello"}}}
}

// TestCompileTrampolineTail: with a trampoline, the init keeps the pipe and
// the fifo at the trampoline's fds, closes every other fd, and ends in the
// execveat of the trampoline, after the process's identity is set up; the
// trampoline says "ready" (no such step of the init's own).
func TestCompileTrampolineTail(t *testing.T) {
	p, err := compileDirect(trampolineConfig(t, directSpec(), 8))
	if err != nil {
		t.Fatal(err)
	}
	requireOrder(t, p, "lookup /bin/true", "init pipe for the trampoline", "exec fifo for the trampoline", "trampoline",
		"close fds", "close fds", "close fds", "process.cwd", "process.capabilities: capset", "execute the trampoline")
	last := p.ops[len(p.ops)-1]
	if last.nr != unix.SYS_EXECVEAT || last.args[0] != trampFd || last.args[4] != unix.AT_EMPTY_PATH {
		t.Errorf("last step %s: %+v", p.what[len(p.ops)-1], last)
	}
	var closed [][2]uintptr
	for i, o := range p.ops {
		if p.what[i] == "ready" || p.what[i] == "wait for start on exec fifo" {
			t.Errorf("step %d: %s in the init", i, p.what[i])
		}
		if o.nr == unix.SYS_CLOSE_RANGE && o.args[2] == 0 {
			closed = append(closed, [2]uintptr{o.args[0], o.args[1]})
		}
	}
	// The init pipe (7) stays open too: failed steps are reported on it.
	if want := [][2]uintptr{{3, 6}, {8, trampFd - 1}, {trampFifoFd + 1, ^uintptr(0)}}; !slices.Equal(closed, want) {
		t.Errorf("closed fd ranges %v, want %v", closed, want)
	}
}

// TestCompileDirectOrder checks that the steps come in the exec'd init's
// order, and that every fd but the init pipe is closed before the chdir
// into the process's cwd (CVE-2024-21626).
func TestCompileDirectOrder(t *testing.T) {
	s := directSpec()
	creds, err := newCredentials(s.Process)
	if err != nil {
		t.Fatal(err)
	}
	p, err := compileDirect(&directConfig{spec: s, id: "c", rootfs: "/b/rootfs", creds: creds,
		tasks: []string{"/sys/fs/cgroup/memory/c/tasks"}, syncFd: 7, fifoFd: -1, stdio: [3]int{0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	requireOrder(t, p, "make / rslave", "root.path: bind", "mounts[0] (proc on /proc)", "wait for cgroups",
		"join cgroup /sys/fs/cgroup/memory/c/tasks", "mounts[2] (cgroup on /sys/fs/cgroup)", "device /dev/null",
		"mounts made", "pivot_root", "linux.readonlyPaths /proc/sys", "linux.maskedPaths /proc/kcore",
		"lookup /bin/true", "ready", "close fds", "process.cwd", "process.capabilities: capset", `exec "/bin/true"`)
}

// TestCompileTerminal: a pty after the rootfs is done, its master sent
// from the fixed fd the message names, its slave on stdio before the
// controlling terminal is set; a missing console socket is an error.
func TestCompileTerminal(t *testing.T) {
	s := directSpec()
	s.Process.Terminal = true
	s.Process.ConsoleSize = &specs.Box{Height: 25, Width: 80}
	creds, err := newCredentials(s.Process)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &directConfig{spec: s, id: "c", rootfs: "/b/rootfs", creds: creds, syncFd: 7, fifoFd: -1, console: 9, stdio: [3]int{0, 1, 2}}
	p, err := compileDirect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	requireOrder(t, p, "pivot_root", "linux.maskedPaths", "process.terminal: open /dev/ptmx", "process.terminal: unlockpt",
		"process.terminal: open the pty's slave", "process.consoleSize", "/dev/console",
		"process.terminal: send the pty master", "close the console socket", "process.terminal: stdio",
		"process.terminal: set controlling terminal", "lookup /bin/true", "ready")
	for i, o := range p.ops {
		if o.nr != unix.SYS_SENDMSG {
			continue
		}
		var msg *unix.Msghdr
		for _, k := range p.keep {
			if len(k) > 0 && uintptr(unsafe.Pointer(&k[0])) == o.args[1] {
				msg = (*unix.Msghdr)(unsafe.Pointer(&k[0]))
			}
		}
		if msg == nil {
			t.Fatalf("step %d: the message is not among the kept memory", i)
		}
		rights, err := unix.ParseSocketControlMessage(unsafe.Slice(msg.Control, msg.Controllen))
		if err != nil || len(rights) != 1 {
			t.Fatalf("step %d: control message: %v", i, err)
		}
		if fds, err := unix.ParseUnixRights(&rights[0]); err != nil || len(fds) != 1 || fds[0] != consoleMasterFd || o.args[0] != 9 {
			t.Errorf("step %d sends %v (%v) on fd %d, want [%d] on 9", i, fds, err, o.args[0], consoleMasterFd)
		}
	}
	cfg.console = -1
	if _, err := compileDirect(cfg); err == nil {
		t.Error("a terminal without a console socket compiled")
	}
}

// requireOrder fails unless p's steps include steps whose descriptions
// start with order, in that order.
func requireOrder(t *testing.T, p *directProg, order ...string) {
	t.Helper()
	i := 0
	for _, w := range p.what {
		if i < len(order) && strings.HasPrefix(w, order[i]) {
			i++
		}
	}
	if i < len(order) {
		t.Fatalf("step %q missing or out of order in:\n%s", order[i], strings.Join(p.what, "\n"))
	}
	if len(p.what) != len(p.ops) {
		t.Fatalf("%d descriptions for %d steps", len(p.what), len(p.ops))
	}
}

// TestCompileDirectExecOrder: the first child joins every namespace, the
// mount namespace last, and its cgroups before it clones the second
// (and only the clone ends it); the second sets the process up.
func TestCompileDirectExecOrder(t *testing.T) {
	s := directSpec()
	adj := 100
	s.Process.OOMScoreAdj = &adj
	creds, err := newCredentials(s.Process)
	if err != nil {
		t.Fatal(err)
	}
	joins := []nsJoin{{fd: 10, flag: unix.CLONE_NEWPID, path: "/proc/1/ns/pid"}, {fd: 11, flag: unix.CLONE_NEWNS, path: "/proc/1/ns/mnt"}}
	p, err := compileDirectExec(&directConfig{spec: s, id: "c", creds: creds, syncFd: 7, fifoFd: -1, stdio: [3]int{0, 1, 2}}, joins, []int{12})
	if err != nil {
		t.Fatal(err)
	}
	requireOrder(t, p, "mark fds close-on-exec", "join namespace /proc/1/ns/pid", "join namespace /proc/1/ns/mnt",
		"join cgroup", "clone the exec process", "exec process started", "setsid", "process.oomScoreAdj",
		"lookup /bin/true", "close fds", "process.cwd", "process.capabilities: capset", `exec "/bin/true"`)
	for i, o := range p.ops {
		if o.exitParent != (o.nr == unix.SYS_CLONE3) {
			t.Errorf("step %d (%s): exitParent %v", i, p.what[i], o.exitParent)
		}
	}
}

func TestDirectExecSupported(t *testing.T) {
	pretendSafeExe(t)
	if !haveDirectKernel() {
		t.Skip("kernel without mount_setattr")
	}
	st := &containerState{Namespaces: map[specs.LinuxNamespaceType]string{
		specs.PIDNamespace: "/proc/1/ns/pid", specs.MountNamespace: "/proc/1/ns/mnt"}}
	for _, tt := range []struct {
		name string
		edit func(*containerState, *compute.ProcessParams)
		want bool
	}{
		{"plain", func(*containerState, *compute.ProcessParams) {}, true},
		{"terminal", func(_ *containerState, p *compute.ProcessParams) { p.Process.Terminal = true }, true},
		{"preserved fds up to the fixed ones", func(_ *containerState, p *compute.ProcessParams) { p.PreserveFDs = firstFixedFd - 3 }, false},
		{"apparmor profile", func(_ *containerState, p *compute.ProcessParams) { p.Process.ApparmorProfile = "x" }, false},
		{"no capabilities", func(_ *containerState, p *compute.ProcessParams) { p.Process.Capabilities = nil }, false},
		{"user namespace", func(st *containerState, _ *compute.ProcessParams) {
			st.Namespaces[specs.UserNamespace] = "/proc/1/ns/user"
		}, false},
		{"time namespace", func(st *containerState, _ *compute.ProcessParams) {
			st.Namespaces[specs.TimeNamespace] = "/proc/1/ns/time"
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := directSpec()
			st := &containerState{Namespaces: maps.Clone(st.Namespaces)}
			p := &compute.ProcessParams{Process: s.Process}
			tt.edit(st, p)
			if got := directExecSupported(st, s, p); got != tt.want {
				t.Errorf("directExecSupported = %v, want %v", got, tt.want)
			}
		})
	}
}

func BenchmarkCompileDirect(b *testing.B) {
	s := directSpec()
	creds, err := newCredentials(s.Process)
	if err != nil {
		b.Fatal(err)
	}
	cfg := &directConfig{spec: s, id: "c", rootfs: "/b/rootfs", creds: creds,
		tasks: []string{"/sys/fs/cgroup/memory/c/tasks"}, syncFd: 7, fifoFd: -1, stdio: [3]int{0, 1, 2}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := compileDirect(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDopLayout pins the offsets direct_amd64.s reads.
func TestDopLayout(t *testing.T) {
	var o dop
	var st directState
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(dop)", unsafe.Sizeof(o), 120},
		{"nr", unsafe.Offsetof(o.nr), 0}, {"args", unsafe.Offsetof(o.args), 8},
		{"argFrom", unsafe.Offsetof(o.argFrom), 56}, {"slotIn", unsafe.Offsetof(o.slotIn), 64},
		{"slotOut", unsafe.Offsetof(o.slotOut), 72}, {"okErr", unsafe.Offsetof(o.okErr), 80},
		{"skipErr", unsafe.Offsetof(o.skipErr), 88}, {"skipN", unsafe.Offsetof(o.skipN), 96},
		{"skipOK", unsafe.Offsetof(o.skipOK), 104}, {"anyErr", unsafe.Offsetof(o.anyErr), 112},
		{"exitParent", unsafe.Offsetof(o.exitParent), 113},
		{"slots", unsafe.Offsetof(st.slots), 0}, {"scratch", unsafe.Offsetof(st.scratch), 128},
		{"rep", unsafe.Offsetof(st.rep), 176}, {"errFd", unsafe.Offsetof(st.errFd), 184},
		{"sizeof(cloneArgs)", unsafe.Sizeof(cloneArgs{}), 88},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d (direct_amd64.s)", c.name, c.got, c.want)
		}
	}
}

// TestCompileDirectExecTrampoline: with a trampoline the first child sets
// the whole process up (oom_score_adj through the host's /proc, before the
// joins) and executes the trampoline; it clones nothing itself.
func TestCompileDirectExecTrampoline(t *testing.T) {
	s := directSpec()
	adj := 100
	s.Process.OOMScoreAdj = &adj
	joins := []nsJoin{{fd: 10, flag: unix.CLONE_NEWPID, path: "/proc/1/ns/pid"}, {fd: 11, flag: unix.CLONE_NEWNS, path: "/proc/1/ns/mnt"}}
	p, err := compileDirectExec(trampolineConfig(t, s, -1), joins, []int{12})
	if err != nil {
		t.Fatal(err)
	}
	requireOrder(t, p, "process.oomScoreAdj", "join namespace /proc/1/ns/pid", "join namespace /proc/1/ns/mnt", "join cgroup",
		"lookup /bin/true", "init pipe for the trampoline", "trampoline", "close fds", "process.cwd", "process.capabilities: capset",
		"execute the trampoline")
	for i, o := range p.ops {
		if o.nr == unix.SYS_CLONE3 || o.nr == unix.SYS_SETSID || o.exitParent {
			t.Errorf("step %d (%s) in the first child", i, p.what[i])
		}
	}
}

func TestInitRunsWritableRuntime(t *testing.T) {
	if exeProtected("/proc/self/exe") {
		t.Skip("the test binary is on a read-only mount")
	}
	for _, tt := range []struct {
		name string
		pid  int
		want bool
	}{{"this binary", os.Getpid(), true}, {"another binary", 1, false}, {"no such process", 1 << 30, false}} {
		if got := initRunsWritableRuntime(tt.pid); got != tt.want {
			t.Errorf("%s: initRunsWritableRuntime = %v, want %v", tt.name, got, tt.want)
		}
	}
}
