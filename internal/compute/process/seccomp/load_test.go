//go:build cgo

package seccomp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Filters are loaded only in re-executed children (the test binary run as
// TestHelperProcess with helperEnv naming a scenario), so the test process
// itself stays unfiltered and a scenario that kills its child does not take
// the test run down.
const helperEnv = "SILO_SECCOMP_TEST_SCENARIO"

// probeDir does not exist, so mkdir fails with ENOENT when it is allowed
// and with the filter's errno when it is not, without touching the disk.
const probeDir = "/nonexistent-silo-seccomp-test/dir"

// helperScenarios run in the child, on a thread locked by TestHelperProcess.
// Returning nil prints PASS and exits 0.
var helperScenarios = map[string]func() error{
	"errno-eperm":       scenarioErrnoEPERM,
	"errno-ret":         scenarioErrnoRet,
	"default-errno-ret": scenarioDefaultErrnoRet,
	"args":              scenarioArgs,
	"kill-process":      scenarioKillProcess,
	"trap":              scenarioTrap,
	"tsync":             func() error { return scenarioTsync(true) },
	"no-tsync":          func() error { return scenarioTsync(false) },
	"notify":            scenarioNotify,
	"flags":             scenarioFlags,
	"no-nnp":            scenarioNoNNP,
	"load-no-alloc":     scenarioLoadNoAlloc,
	"large-profile":     scenarioLargeProfile,
}

func TestHelperProcess(t *testing.T) {
	name := os.Getenv(helperEnv)
	if name == "" {
		t.Skip("only runs as a re-executed child of the seccomp tests")
	}
	scenario := helperScenarios[name]
	if scenario == nil {
		fmt.Printf("FAIL: unknown scenario %q\n", name)
		os.Exit(1)
	}
	// A scenario that is meant to be killed must not leave a core file.
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	// Without TSYNC a filter applies to one thread; keep this goroutine on
	// it. The thread is never unlocked: the process exits from here.
	runtime.LockOSThread()
	if err := scenario(); err != nil {
		fmt.Printf("FAIL: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("PASS")
	os.Exit(0)
}

// runHelper runs a scenario in a child and returns its output and wait
// status.
func runHelper(t *testing.T, name string) (string, syscall.WaitStatus) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	// asyncpreemptoff: a preemption signal arriving on a thread whose
	// filter denies most syscalls could make the runtime's scheduler
	// misbehave; the scenarios do not need preemption.
	cmd.Env = append(os.Environ(), helperEnv+"="+name, "GODEBUG=asyncpreemptoff=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("waiting for child: %v", err)
	}
	return out.String(), cmd.ProcessState.Sys().(syscall.WaitStatus)
}

func TestLoadBehaviour(t *testing.T) {
	names := []string{"errno-eperm", "errno-ret", "default-errno-ret", "args", "tsync", "no-tsync",
		"notify", "flags", "no-nnp", "load-no-alloc", "large-profile"}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, ws := runHelper(t, name)
			if strings.Contains(out, "SKIP:") {
				t.Skip(strings.TrimSpace(out))
			}
			if !ws.Exited() || ws.ExitStatus() != 0 || !strings.Contains(out, "PASS") {
				t.Fatalf("child: %v\n%s", describe(ws), out)
			}
		})
	}
}

func TestLoadKillProcess(t *testing.T) {
	t.Parallel()
	out, ws := runHelper(t, "kill-process")
	if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("child %v, want killed by SIGSYS\n%s", describe(ws), out)
	}
	if strings.Contains(out, "PASS") {
		t.Fatalf("child got past the killing syscall:\n%s", out)
	}
}

func TestLoadTrap(t *testing.T) {
	t.Parallel()
	out, ws := runHelper(t, "trap")
	// SECCOMP_RET_TRAP raises a catchable SIGSYS; the Go runtime treats
	// it as a fatal signal, prints it and exits 2.
	if !ws.Exited() || ws.ExitStatus() != 2 || !strings.Contains(out, "SIGSYS") {
		t.Fatalf("child %v, want exit 2 with a SIGSYS report\n%s", describe(ws), out)
	}
}

func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}

// mustLoad compiles and loads s on the current thread. As root it relies on
// CAP_SYS_ADMIN (so Load is seen not to need no_new_privs); otherwise it
// sets no_new_privs first, as a runtime would.
func mustLoad(s *specs.LinuxSeccomp) (*Filter, int, error) {
	f, err := Compile(s)
	if err != nil {
		return nil, -1, err
	}
	if os.Geteuid() != 0 {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return nil, -1, err
		}
	}
	fd, err := f.Load()
	return f, fd, err
}

func load(s *specs.LinuxSeccomp) error {
	_, fd, err := mustLoad(s)
	if err == nil && fd != -1 {
		return fmt.Errorf("listener fd %d without notify rules", fd)
	}
	return err
}

func expectErrno(what string, got, want error) error {
	if !errors.Is(got, want) {
		return fmt.Errorf("%s: got %v, want %v", what, got, want)
	}
	return nil
}

func scenarioErrnoEPERM() error {
	if err := expectErrno("mkdir before filter", unix.Mkdir(probeDir, 0o755), unix.ENOENT); err != nil {
		return err
	}
	if err := load(allowWith(specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno})); err != nil {
		return err
	}
	if err := expectErrno("mkdir", unix.Mkdir(probeDir, 0o755), unix.EPERM); err != nil {
		return err
	}
	return expectErrno("mkdirat", unix.Mkdirat(unix.AT_FDCWD, probeDir, 0o755), unix.EPERM)
}

func scenarioErrnoRet() error {
	err := load(allowWith(
		specs.LinuxSyscall{Names: []string{"mkdirat", "mkdir"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV))},
		specs.LinuxSyscall{Names: []string{"rmdir", "unlinkat"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.ENOTSUP))},
	))
	if err != nil {
		return err
	}
	if err := expectErrno("mkdir", unix.Mkdir(probeDir, 0o755), unix.EXDEV); err != nil {
		return err
	}
	return expectErrno("unlinkat", unix.Unlinkat(unix.AT_FDCWD, probeDir, unix.AT_REMOVEDIR), unix.ENOTSUP)
}

// scenarioDefaultErrnoRet denies everything by default. The Go runtime on
// this thread keeps the few syscalls it may need to run and exit; the
// probes are raw so nothing else runs between them.
func scenarioDefaultErrnoRet() error {
	err := load(&specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uptr(uint(unix.ENOSYS)),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"write", "exit", "exit_group", "futex", "rt_sigreturn", "rt_sigprocmask",
				"sigaltstack", "sched_yield", "nanosleep", "mmap", "munmap", "madvise", "tgkill",
				"getpid", "gettid", "clock_gettime", "epoll_pwait", "getppid"}, Action: specs.ActAllow},
			{Names: []string{"getuid"}, Action: specs.ActErrno}, // errnoRet nil: EPERM
		},
	})
	if err != nil {
		return err
	}
	_, _, e1 := unix.RawSyscall(unix.SYS_GETEGID, 0, 0, 0) // default action
	_, _, e2 := unix.RawSyscall(unix.SYS_GETUID, 0, 0, 0)  // rule without errnoRet
	ppid, _, e3 := unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
	if e1 != unix.ENOSYS || e2 != unix.EPERM || e3 != 0 || ppid == 0 {
		return fmt.Errorf("getegid: %v (want ENOSYS), getuid: %v (want EPERM), getppid: %d %v (want allowed)", e1, e2, ppid, e3)
	}
	return nil
}

func personality(p uintptr) (uintptr, error) {
	r, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, p, 0, 0)
	if e != 0 {
		return r, e
	}
	return r, nil
}

func scenarioArgs() error {
	const query = 0xffffffff
	err := load(allowWith(
		// Only the query form of personality is allowed.
		specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: query, Op: specs.OpNotEqual}}},
		// Repeated index: OR of (mask == 022) and (mask == 0777).
		specs.LinuxSyscall{Names: []string{"umask"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV)),
			Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0o022, Op: specs.OpEqualTo},
				{Index: 0, Value: 0o777, Op: specs.OpEqualTo},
			}},
		// Distinct indexes: AND. getpriority(PRIO_PROCESS, 999999) is
		// denied, other who values or which values are not.
		specs.LinuxSyscall{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV)),
			Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: unix.PRIO_PROCESS, Op: specs.OpEqualTo},
				{Index: 1, Value: 999999, Op: specs.OpEqualTo},
			}},
		// MASKED_EQ: value is the mask, valueTwo the datum.
		specs.LinuxSyscall{Names: []string{"setpriority"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.ENOTSUP)),
			Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0xf0, ValueTwo: 0x30, Op: specs.OpMaskedEqual}}},
	))
	if err != nil {
		return err
	}
	if _, err := personality(query); err != nil {
		return fmt.Errorf("personality(query): %v, want allowed", err)
	}
	if err := expectErrno("personality(0)", second(personality(0)), unix.EPERM); err != nil {
		return err
	}
	umask := func(m uintptr) error {
		_, _, e := unix.RawSyscall(unix.SYS_UMASK, m, 0, 0)
		if e != 0 {
			return e
		}
		return nil
	}
	if err := expectErrno("umask(022)", umask(0o022), unix.EXDEV); err != nil {
		return err
	}
	if err := expectErrno("umask(0777)", umask(0o777), unix.EXDEV); err != nil {
		return err
	}
	if err := umask(0o027); err != nil {
		return fmt.Errorf("umask(027): %v, want allowed", err)
	}
	if err := expectErrno("getpriority(PROCESS, 999999)", second(unix.Getpriority(unix.PRIO_PROCESS, 999999)), unix.EXDEV); err != nil {
		return err
	}
	// No such process group: the kernel answers, not the filter.
	if err := expectErrno("getpriority(PGRP, 999999)", second(unix.Getpriority(unix.PRIO_PGRP, 999999)), unix.ESRCH); err != nil {
		return err
	}
	if _, err := unix.Getpriority(unix.PRIO_PROCESS, 0); err != nil {
		return fmt.Errorf("getpriority(PROCESS, 0): %v, want allowed", err)
	}
	// 0x35 & 0xf0 == 0x30: denied. Nice values are clamped to 19, so the
	// allowed call is harmless.
	if err := expectErrno("setpriority(.., 0x35)", unix.Setpriority(unix.PRIO_PROCESS, 0, 0x35), unix.ENOTSUP); err != nil {
		return err
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, 19); err != nil { // 0x13 & 0xf0 == 0x10
		return fmt.Errorf("setpriority(.., 19): %v, want allowed", err)
	}
	return nil
}

func second[T any](_ T, err error) error { return err }

func scenarioKillProcess() error {
	if err := load(allowWith(specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActKillProcess})); err != nil {
		return err
	}
	unix.Getppid()
	return errors.New("getppid returned under SCMP_ACT_KILL_PROCESS")
}

func scenarioTrap() error {
	if err := load(allowWith(specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActTrap})); err != nil {
		return err
	}
	unix.Getppid()
	return errors.New("getppid returned under SCMP_ACT_TRAP")
}

// scenarioTsync loads a filter while another thread already exists and
// checks whether that thread is filtered too.
func scenarioTsync(tsync bool) error {
	ready, probe, result := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		// A thread of its own that exists before the filter is loaded.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		close(ready)
		<-probe
		result <- unix.Mkdir(probeDir, 0o755)
	}()
	<-ready
	s := allowWith(specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno})
	want := unix.ENOENT
	if tsync {
		s.Flags = []specs.LinuxSeccompFlag{flagTsync}
		want = unix.EPERM
	}
	if err := load(s); err != nil {
		return err
	}
	if err := expectErrno("mkdir on the loading thread", unix.Mkdir(probeDir, 0o755), unix.EPERM); err != nil {
		return err
	}
	close(probe)
	return expectErrno("mkdir on another thread", <-result, want)
}

// scenarioNotify loads a notifying filter and plays the seccomp agent on
// another (unfiltered) thread: getppid on the filtered thread returns what
// the agent answers.
func scenarioNotify() error {
	const answer = 4242
	f, fd, err := mustLoad(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		ListenerPath:  "/run/agent.sock",
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}},
	})
	if err != nil {
		return err
	}
	if !f.NeedsNotify() || fd <= 0 {
		return fmt.Errorf("NeedsNotify %v, listener fd %d", f.NeedsNotify(), fd)
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		return fmt.Errorf("listener fd flags %#x, %v: want FD_CLOEXEC", fl, err)
	}
	agent := make(chan error, 1)
	go func() {
		req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
		if err != nil {
			agent <- fmt.Errorf("agent: receive: %w", err)
			return
		}
		if name, _ := req.Data.Syscall.GetName(); name != "getppid" {
			agent <- fmt.Errorf("agent: notified of %q", name)
			return
		}
		agent <- libseccomp.NotifRespond(libseccomp.ScmpFd(fd), &libseccomp.ScmpNotifResp{ID: req.ID, Val: answer})
	}()
	// Syscall, not RawSyscall: this thread blocks until the agent answers.
	r, _, e := unix.Syscall(unix.SYS_GETPPID, 0, 0, 0)
	if err := <-agent; err != nil {
		return err
	}
	if e != 0 || r != answer {
		return fmt.Errorf("getppid = %d, %v; want the agent's %d", r, e, answer)
	}
	return nil
}

func scenarioFlags() error {
	err := load(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid"}, Action: specs.ActLog},
			{Names: []string{"mkdirat"}, Action: specs.ActTrace}, // no tracer: ENOSYS
		},
	})
	if err != nil {
		return err
	}
	if unix.Getppid() <= 0 {
		return errors.New("getppid under SCMP_ACT_LOG failed")
	}
	return expectErrno("mkdirat under SCMP_ACT_TRACE without a tracer", unix.Mkdirat(unix.AT_FDCWD, probeDir, 0o755), unix.ENOSYS)
}

// scenarioNoNNP checks that Load leaves no_new_privs alone: the runtime
// decides it (process.noNewPrivileges).
func scenarioNoNNP() error {
	if os.Geteuid() != 0 {
		fmt.Println("SKIP: loading without no_new_privs needs CAP_SYS_ADMIN")
		os.Exit(0)
	}
	if err := load(allowWith(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActErrno})); err != nil {
		return err
	}
	nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil || nnp != 0 {
		return fmt.Errorf("no_new_privs = %d, %v after Load; want 0", nnp, err)
	}
	return nil
}

func scenarioLoadNoAlloc() error {
	f, err := Compile(allowWith(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActErrno}))
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return err
		}
	}
	var loadErr error
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := f.Load(); err != nil {
			loadErr = err
		}
	})
	if loadErr != nil {
		return loadErr
	}
	if allocs != 0 {
		return fmt.Errorf("Load allocates %v times", allocs)
	}
	return expectErrno("mkdirat", unix.Mkdirat(unix.AT_FDCWD, probeDir, 0o755), unix.EPERM)
}

// scenarioLargeProfile runs ordinary Go code (threads, GC, file I/O) under a
// default-deny, multi-arch, TSYNC profile and checks the kernel's view.
func scenarioLargeProfile() error {
	if err := load(largeProfile()); err != nil {
		return err
	}
	done := make(chan int)
	for i := range 8 {
		go func() {
			runtime.LockOSThread() // force new threads under the filter
			buf := make([]byte, 1<<20)
			done <- len(buf) + i
		}()
	}
	for range 8 {
		<-done
	}
	runtime.GC()
	status, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return err
	}
	if !strings.Contains(string(status), "Seccomp:\t2") {
		return fmt.Errorf("thread not in seccomp filter mode:\n%s", status)
	}
	if err := expectErrno("mkdir", os.Mkdir(probeDir, 0o755), unix.EPERM); err != nil {
		return err
	}
	if _, _, e := unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0); e != unix.ENOSYS {
		return fmt.Errorf("clone3: %v, want the profile's ENOSYS", e)
	}
	if _, err := personality(0xffffffff); err != nil {
		return fmt.Errorf("personality(query): %v", err)
	}
	return expectErrno("personality(0x40000)", second(personality(0x40000)), unix.EPERM)
}
