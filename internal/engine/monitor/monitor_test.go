package monitor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/silo-containers/silo/internal/engine/logs"
	"github.com/silo-containers/silo/internal/errdefs"
)

// cgroupParent holds the cgroups of the test containers.
const cgroupParent = "/silo-monitor-test"

var (
	buildOnce  sync.Once
	monitorBin string
	buildErr   error
)

// TestMain removes the silo-monitor the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if monitorBin != "" {
		_ = os.RemoveAll(filepath.Dir(monitorBin))
	}
	os.Exit(code)
}

// env returns the runtime and a freshly built silo-monitor, skipping the
// test unless it runs as root with bin/runsilo built.
func env(t *testing.T) (rt, bin string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..", "..")
	rt = filepath.Join(repo, "bin", "runsilo")
	if _, err := os.Stat(rt); err != nil {
		t.Skip("bin/runsilo not built (make)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "silo-monitor-bin")
		if err != nil {
			buildErr = err
			return
		}
		monitorBin = filepath.Join(dir, "silo-monitor")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", monitorBin, "./cmd/silo-monitor")
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build silo-monitor: %v", buildErr)
	}
	return rt, monitorBin
}

// bundle makes an OCI bundle running args with a busybox rootfs.
func bundle(t *testing.T, rt, id string, terminal bool, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"sh", "echo", "sleep", "cat", "stty", "true"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", app)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(rt, "spec", "--bundle", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runsilo spec: %v: %s", err, out)
	}
	var spec map[string]any
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["args"] = args
	proc["terminal"] = terminal
	spec["linux"].(map[string]any)["cgroupsPath"] = cgroupParent + "/" + id
	data, _ = json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// spawnAndStart launches a monitor and lets it run its container at once.
func spawnAndStart(ctx context.Context, bin string, cfg *Config) error {
	p, err := Spawn(ctx, bin, cfg)
	if err != nil {
		return err
	}
	return p.Start(false)
}

// container is one monitored test container.
type container struct {
	t      *testing.T
	cfg    *Config
	client *Client
}

func start(t *testing.T, id string, terminal, stdin bool, args ...string) *container {
	t.Helper()
	rt, bin := env(t)
	base := t.TempDir()
	cfg := &Config{
		ID: id, Bundle: bundle(t, rt, id, terminal, args...), Runtime: rt,
		RuntimeRoot: filepath.Join(base, "runtime"), Dir: filepath.Join(base, "monitor"),
		LogOpts: map[string]string{"max-size": "1m", "max-file": "2"}, Terminal: terminal, Stdin: stdin,
		Grace: 2 * time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := spawnAndStart(ctx, bin, cfg); err != nil {
		t.Fatal(err)
	}
	c := &container{t: t, cfg: cfg, client: NewClient(cfg.Dir)}
	t.Cleanup(c.cleanup)
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// cleanup kills what a failed test left and checks that nothing leaked.
func (c *container) cleanup() {
	t := c.t
	st, _ := c.client.State(context.Background())
	if st != nil && st.Status == StatusRunning {
		_ = c.client.Signal(context.Background(), syscall.SIGKILL, false)
		_, _ = c.client.Wait(context.Background())
	}
	var mpid int
	if ex, err := ReadExit(c.cfg.Dir); err == nil {
		mpid = ex.MonitorPid
	}
	_ = c.client.Release(context.Background())
	if mpid != 0 {
		deadline := time.Now().Add(5 * time.Second)
		for alive(mpid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(mpid) {
			t.Errorf("monitor %d still running after release", mpid)
			_ = syscall.Kill(mpid, syscall.SIGKILL)
		}
	}
	if entries, _ := os.ReadDir(c.cfg.RuntimeRoot); len(entries) > 0 {
		t.Errorf("runtime state left: %v", entries)
	}
	for _, h := range []string{"memory", "pids", "cpu", "freezer", "devices", "blkio", "unified"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h, cgroupParent, c.cfg.ID)); err == nil {
			t.Errorf("cgroup left in %s", h)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(mi, []byte(c.cfg.Bundle)) {
		t.Errorf("mounts of %s left", c.cfg.Bundle)
	}
	if entries, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup/memory", cgroupParent)); len(entries) == 0 {
		_ = os.Remove(filepath.Join("/sys/fs/cgroup/memory", cgroupParent))
	}
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	return i < 0 || len(data) < i+3 || data[i+2] != 'Z'
}

func (c *container) logLines() []string {
	var out []string
	for e, err := range logs.Read(context.Background(), c.cfg.LogDir, logs.Options{Tail: -1, Stdout: true, Stderr: true}) {
		if err != nil {
			c.t.Fatal(err)
		}
		out = append(out, e.Stream+":"+string(e.Line))
	}
	return out
}

func TestExitCodeAndLogs(t *testing.T) {
	c := start(t, "mon-exit", false, false, "sh", "-c", "echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; echo out2; exit 3")
	st, err := c.client.Wait(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusExited || st.ExitCode != 3 || st.Signal != 0 || st.OOMKilled || st.Finished.Before(st.Started) {
		t.Fatalf("state %+v", st)
	}
	ex, err := ReadExit(c.cfg.Dir)
	if err != nil || ex.ExitCode != 3 || ex.ID != "mon-exit" {
		t.Fatalf("exit.json: %+v, %v", ex, err)
	}
	want := []string{"stdout:out1\n", "stderr:err1\n", "stdout:out2\n"}
	if got := c.logLines(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("log %q, want %q", got, want)
	}
	if err := c.client.Signal(ctx(t), syscall.SIGTERM, false); !errdefs.IsConflict(err) {
		t.Fatalf("signal after exit: %v, want a conflict", err)
	}
}

func TestSurvivesDaemonAttachKill(t *testing.T) {
	c := start(t, "mon-long", false, false, "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done")
	st, err := c.client.State(ctx(t))
	if err != nil || st.Status != StatusRunning || st.Pid <= 0 {
		t.Fatalf("state %+v, %v", st, err)
	}
	// The monitor leads a session of its own: the "daemon" (this test)
	// can go, and signals for the daemon's terminal or session do not
	// reach it.
	if sid := sessionOf(t, st.MonitorPid); sid != st.MonitorPid {
		t.Fatalf("monitor %d is in session %d, not its own", st.MonitorPid, sid)
	}
	// The daemon side drops its connection mid-wait and comes back.
	wctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if _, err := c.client.Wait(wctx); err == nil {
		t.Fatal("wait returned while running")
	}
	cancel()
	c2 := NewClient(c.cfg.Dir)
	if st, err := c2.State(ctx(t)); err != nil || st.Status != StatusRunning {
		t.Fatalf("after reconnect: %+v, %v", st, err)
	}
	a, err := c2.Attach(ctx(t), AttachOptions{Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(Demux(a, pw, io.Discard)) }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "tick ") {
		t.Fatalf("attach read %q, %v", line, err)
	}
	a.Close()
	if err := c2.Signal(ctx(t), syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	st, err = c2.Wait(ctx(t))
	if err != nil || st.ExitCode != 137 || st.Signal != int(syscall.SIGKILL) {
		t.Fatalf("after kill: %+v, %v", st, err)
	}
	if lines := c.logLines(); len(lines) < 2 || lines[0] != "stdout:tick 0\n" {
		t.Fatalf("log %q", lines)
	}
}

// sessionOf reads the session id of pid from /proc/PID/stat (the fields
// after the command: state, ppid, pgrp, session).
func sessionOf(t *testing.T, pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	sid, _ := strconv.Atoi(f[3])
	return sid
}

func TestTerminalAttach(t *testing.T) {
	c := start(t, "mon-tty", true, true, "sh")
	a, err := c.client.Attach(ctx(t), AttachOptions{Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !a.TTY {
		t.Fatal("attachment of a terminal container is not a tty")
	}
	if err := c.client.Resize(ctx(t), 33, 101); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	go func() { _, _ = io.Copy(out, a) }()
	if _, err := a.Write([]byte("echo hello-$((40+2)); stty size\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "hello-42")
	waitFor(t, out, "33 101")
	if _, err := a.Write([]byte("exit 7\n")); err != nil {
		t.Fatal(err)
	}
	st, err := c.client.Wait(ctx(t))
	if err != nil || st.ExitCode != 7 {
		t.Fatalf("state %+v, %v", st, err)
	}
	if got := strings.Join(c.logLines(), ""); !strings.Contains(got, "hello-42\r\n") {
		t.Fatalf("log %q", got)
	}
}

func TestStdinOnce(t *testing.T) {
	c := start(t, "mon-stdin", false, true, "cat")
	a, err := c.client.Attach(ctx(t), AttachOptions{Stdin: true, Stdout: true, StdinOnce: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	out := &syncBuffer{}
	go func() { _ = Demux(a, out, io.Discard) }()
	if _, err := a.Write([]byte("through cat\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "through cat")
	if err := a.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	st, err := c.client.Wait(ctx(t))
	if err != nil || st.ExitCode != 0 {
		t.Fatalf("cat after stdin EOF: %+v, %v", st, err)
	}
}

func TestExitWhileNobodyListens(t *testing.T) {
	c := start(t, "mon-alone", false, false, "sh", "-c", "echo bye; sleep 0.2; exit 5")
	deadline := time.Now().Add(10 * time.Second)
	var ex *State
	for {
		var err error
		if ex, err = ReadExit(c.cfg.Dir); err == nil {
			break
		}
		if !errdefs.IsNotFound(err) || time.Now().After(deadline) {
			t.Fatalf("exit.json: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ex.ExitCode != 5 {
		t.Fatalf("exit %+v", ex)
	}
	// After the grace period the monitor is gone and the socket with it;
	// the exit status stays on disk.
	for alive(ex.MonitorPid) {
		if time.Now().After(deadline) {
			t.Fatal("monitor did not exit after its grace period")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.client.State(ctx(t)); !errdefs.IsNotFound(err) {
		t.Fatalf("state of a gone monitor: %v, want not found", err)
	}
	if ex, err := ReadExit(c.cfg.Dir); err != nil || ex.ExitCode != 5 {
		t.Fatalf("exit.json after the monitor: %+v, %v", ex, err)
	}
	if got := c.logLines(); len(got) != 1 || got[0] != "stdout:bye\n" {
		t.Fatalf("log %q", got)
	}
}

// TestSignalDispositions: the container inherits no ignored signal from
// the monitor.
func TestSignalDispositions(t *testing.T) {
	c := start(t, "mon-sigs", false, false, "sh", "-c", "while read l; do case $l in SigIgn*) echo $l;; esac; done < /proc/self/status")
	if _, err := c.client.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	got := c.logLines()
	if len(got) != 1 {
		t.Fatalf("log %q", got)
	}
	mask, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(got[0], "stdout:SigIgn:")), 16, 64)
	if err != nil {
		t.Fatalf("log %q: %v", got, err)
	}
	// SIGHUP, SIGINT, SIGPIPE. (SIGQUIT comes ignored from runsilo itself:
	// `runsilo run` shows it too.)
	if bad := mask & (1<<(syscall.SIGHUP-1) | 1<<(syscall.SIGINT-1) | 1<<(syscall.SIGPIPE-1)); bad != 0 {
		t.Fatalf("container ignores signals %#x", bad)
	}
}

// TestIdleMemory measures idle monitors of sleeping containers. Pss
// shares the binary's pages among the monitors, so it is what each
// container costs the host; the goal is at most 2 MB.
func TestIdleMemory(t *testing.T) {
	const n = 5
	var pids []int
	for i := range n {
		c := start(t, "mon-idle-"+strconv.Itoa(i), false, false, "sleep", "1000")
		st, err := c.client.State(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, st.MonitorPid)
	}
	time.Sleep(time.Second) // idle: setup done, nobody connected
	var rss, pss, anon int
	for _, pid := range pids {
		r := smapsRollup(t, pid)
		rss, pss, anon = rss+r["Rss"], pss+r["Pss"], anon+r["Pss_Anon"]
	}
	t.Logf("idle monitor, average of %d: Rss %d kB, Pss %d kB (Pss_Anon %d kB)", n, rss/n, pss/n, anon/n)
	if pss/n > 2048 {
		t.Errorf("Pss %d kB per idle monitor: over the 2 MB goal", pss/n)
	}
	// The containers are killed by the cleanups, which check for leaks.
}

func smapsRollup(t *testing.T, pid int) map[string]int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[2] == "kB" {
			out[strings.TrimSuffix(f[0], ":")], _ = strconv.Atoi(f[1])
		}
	}
	return out
}

func TestStartFails(t *testing.T) {
	rt, bin := env(t)
	base := t.TempDir()
	b := bundle(t, rt, "mon-bad", false, "/no/such/binary")
	cfg := &Config{ID: "mon-bad", Bundle: b, Runtime: rt, RuntimeRoot: filepath.Join(base, "rt"), Dir: filepath.Join(base, "mon")}
	err := spawnAndStart(ctx(t), bin, cfg)
	if err == nil || !strings.Contains(err.Error(), "runtime run") {
		t.Fatalf("start of a bad container: %v", err)
	}
	if entries, _ := os.ReadDir(cfg.RuntimeRoot); len(entries) > 0 {
		t.Errorf("runtime state left: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, SocketName)); err == nil {
		t.Error("socket left")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, b *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output %q", s, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWaitAndDelete checks when the exit is reported relative to the
// runtime's delete: with a pid namespace of its own the container is
// deleted after the report (WaitDeleted waits for it); sharing the host's
// pid namespace, processes may outlive init, and the delete that kills
// them comes before the report, so that nothing of the container runs any
// more once Wait returns.
func TestWaitAndDelete(t *testing.T) {
	t.Run("own pid namespace", func(t *testing.T) {
		c := start(t, "mon-del-own", false, false, "sh", "-c", "echo bye")
		if _, err := c.client.Wait(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if got := c.logLines(); len(got) != 1 || got[0] != "stdout:bye\n" {
			t.Fatalf("log at the exit report: %q", got)
		}
		if _, err := c.client.WaitDeleted(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if entries, _ := os.ReadDir(c.cfg.RuntimeRoot); len(entries) > 0 {
			t.Fatalf("runtime state left after WaitDeleted: %v", entries)
		}
	})
	t.Run("wait and release", func(t *testing.T) {
		c := start(t, "mon-del-rel", false, false, "true")
		st, err := c.client.WaitRelease(ctx(t))
		if err != nil || st.Status != StatusExited || st.MonitorPid <= 0 {
			t.Fatalf("WaitRelease: %+v, %v", st, err)
		}
		// Gone once the container is deleted, well before its grace
		// period (2 s) ends.
		deadline := time.Now().Add(time.Second)
		for alive(st.MonitorPid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(st.MonitorPid) {
			t.Fatal("the monitor did not quit after WaitRelease")
		}
	})
	t.Run("host pid namespace", func(t *testing.T) {
		rt, bin := env(t)
		base := t.TempDir()
		// The sleep does not hold the output: the output drains at once,
		// yet the sleep still runs when init exits.
		dir := bundle(t, rt, "mon-del-host", false, "sh", "-c", "sleep 100 >/dev/null 2>&1 & echo started")
		withoutPidNamespace(t, dir)
		cfg := &Config{
			ID: "mon-del-host", Bundle: dir, Runtime: rt,
			RuntimeRoot: filepath.Join(base, "runtime"), Dir: filepath.Join(base, "monitor"), Grace: 2 * time.Second,
		}
		if err := spawnAndStart(ctx(t), bin, cfg); err != nil {
			t.Fatal(err)
		}
		c := &container{t: t, cfg: cfg, client: NewClient(cfg.Dir)}
		t.Cleanup(c.cleanup)
		if _, err := c.client.Wait(ctx(t)); err != nil {
			t.Fatal(err)
		}
		// The delete killed the sleep, and that came before the report.
		if entries, _ := os.ReadDir(cfg.RuntimeRoot); len(entries) > 0 {
			t.Fatalf("runtime state left at the exit report: %v", entries)
		}
		if got := c.logLines(); len(got) != 1 || got[0] != "stdout:started\n" {
			t.Fatalf("log %q", got)
		}
	})
}

// withoutPidNamespace makes the bundle in dir share the host's pid
// namespace.
func withoutPidNamespace(t *testing.T, dir string) {
	t.Helper()
	var spec map[string]any
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err == nil {
		err = json.Unmarshal(data, &spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	linux := spec["linux"].(map[string]any)
	var kept []any
	for _, ns := range linux["namespaces"].([]any) {
		if ns.(map[string]any)["type"] != "pid" {
			kept = append(kept, ns)
		}
	}
	linux["namespaces"] = kept
	data, _ = json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAbort: a monitor told not to start (its caller's preparation
// failed) quits having run nothing: no runtime state, no control socket,
// no exit status.
func TestAbort(t *testing.T) {
	rt, bin := env(t)
	base := t.TempDir()
	cfg := &Config{
		ID: "mon-abort", Bundle: bundle(t, rt, "mon-abort", false, "sleep", "100"), Runtime: rt,
		RuntimeRoot: filepath.Join(base, "runtime"), Dir: filepath.Join(base, "monitor"), Grace: 2 * time.Second,
	}
	p, err := Spawn(ctx(t), bin, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.Abort()
	if entries, _ := os.ReadDir(cfg.RuntimeRoot); len(entries) > 0 {
		t.Errorf("runtime state after abort: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, SocketName)); !os.IsNotExist(err) {
		t.Errorf("control socket after abort: %v", err)
	}
	if _, err := ReadExit(cfg.Dir); err == nil {
		t.Error("an exit status after abort")
	}
	if _, err := NewClient(cfg.Dir).State(ctx(t)); !errdefs.IsNotFound(err) {
		t.Errorf("state after abort: %v, want not found", err)
	}
}
