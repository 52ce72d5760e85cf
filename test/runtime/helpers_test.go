//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroupParent is the cgroup (in every hierarchy) under which all containers
// made by these tests live; TestMain removes it at the end.
const cgroupParent = "/silo-itest"

// commandTimeout bounds every runtime invocation, so that a hanging runtime
// fails a test instead of the whole run.
const commandTimeout = 60 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	removeCgroupEverywhere(cgroupParent)
	os.Exit(code)
}

// runtimePath returns the runtime binary under test: $RUNTIME, or the
// repository's bin/runsilo found relative to this source file.
func runtimePath() string {
	if p := os.Getenv("RUNTIME"); p != "" {
		if abs, err := exec.LookPath(p); err == nil {
			p = abs
		}
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "bin", "runsilo")
}

// requireRoot skips the test unless it runs as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("integration tests need root")
	}
}

// requireRuntime returns the path of the runtime under test, skipping the test
// when it does not exist.
func requireRuntime(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	p := runtimePath()
	if st, err := os.Stat(p); err != nil || st.IsDir() {
		t.Skipf("runtime under test %s not found (build it with make, or set RUNTIME=/path/to/runc-compatible-runtime)", p)
	}
	return p
}

// Runtime is one runtime binary with a private --root state directory.
type Runtime struct {
	t    *testing.T
	Path string // absolute path of the runtime binary
	Root string // private state directory passed as --root
}

// newRuntime returns the runtime under test with a fresh state directory.
func newRuntime(t *testing.T) *Runtime {
	t.Helper()
	return newRuntimeAt(t, requireRuntime(t))
}

// readOnlyRuntime returns the runtime under test run from a read-only bind
// mount of its directory (runsilo-helper beside it): its direct init and
// exec then execute the process themselves, with no trampoline (which a
// writable binary needs against CVE-2019-5736).
func readOnlyRuntime(t *testing.T) *Runtime {
	t.Helper()
	src := requireRuntime(t)
	dir := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(filepath.Dir(src), dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s: %v", filepath.Dir(src), err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", dir, err)
	}
	return newRuntimeAt(t, filepath.Join(dir, filepath.Base(src)))
}

// newRuntimeAt returns the runtime binary at path with a fresh state directory.
func newRuntimeAt(t *testing.T, path string) *Runtime {
	t.Helper()
	return &Runtime{t: t, Path: path, Root: t.TempDir()}
}

// Result is the outcome of one command.
type Result struct {
	Args     []string
	Stdout   string
	Stderr   string
	ExitCode int   // -1 when the command did not exit normally
	Err      error // nil when ExitCode is 0
}

// String describes the command and its outcome for failure messages.
func (r Result) String() string {
	return fmt.Sprintf("%q: exit %d, err %v\nstdout: %s\nstderr: %s", r.Args, r.ExitCode, r.Err, r.Stdout, r.Stderr)
}

// runCmd runs cmd to completion, capturing stdout and stderr unless they are set.
func runCmd(cmd *exec.Cmd) Result {
	var stdout, stderr bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &stderr
	}
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	res := Result{Args: cmd.Args, Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	default:
		res.ExitCode = -1
	}
	return res
}

// Command returns "RUNTIME --root ROOT args..." bound to a timeout.
func (r *Runtime) Command(args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	r.t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, r.Path, append([]string{"--root", r.Root}, args...)...)
	cmd.Stdin = nil
	return cmd
}

// Run runs the runtime with args and returns its result.
func (r *Runtime) Run(args ...string) Result {
	return runCmd(r.Command(args...))
}

// Must runs the runtime with args and fails the test unless it exits 0.
func (r *Runtime) Must(args ...string) string {
	r.t.Helper()
	res := r.Run(args...)
	if res.Err != nil {
		r.t.Fatalf("runtime failed: %s", res)
	}
	return res.Stdout
}

// State is the part of "RUNTIME state" output the tests read.
type State struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
}

// State returns the state of container id.
func (r *Runtime) State(id string) (State, error) {
	res := r.Run("state", id)
	var st State
	if res.Err != nil {
		return st, fmt.Errorf("state %s: %s", id, res)
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		return st, fmt.Errorf("state %s: bad json %q: %v", id, res.Stdout, err)
	}
	return st, nil
}

// specTemplate caches "RUNTIME spec" output per runtime binary.
var specTemplate struct {
	sync.Mutex
	byPath map[string][]byte
}

// baseSpec returns a fresh copy of the spec that "RUNTIME spec" generates.
func (r *Runtime) baseSpec() *specs.Spec {
	r.t.Helper()
	specTemplate.Lock()
	defer specTemplate.Unlock()
	data, ok := specTemplate.byPath[r.Path]
	if !ok {
		dir := r.t.TempDir()
		cmd := r.Command("spec")
		cmd.Dir = dir
		if res := runCmd(cmd); res.Err != nil {
			r.t.Fatalf("spec: %s", res)
		}
		var err error
		if data, err = os.ReadFile(filepath.Join(dir, "config.json")); err != nil {
			r.t.Fatalf("spec wrote no config.json: %v", err)
		}
		if specTemplate.byPath == nil {
			specTemplate.byPath = map[string][]byte{}
		}
		specTemplate.byPath[r.Path] = data
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		r.t.Fatalf("parse spec: %v", err)
	}
	return &s
}

var idCounter atomic.Int64

var nonIDChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// uniqueID returns a container id derived from the test name, unique in this
// process and across concurrent test processes.
func uniqueID(t *testing.T) string {
	name := strings.ToLower(nonIDChars.ReplaceAllString(t.Name(), "-"))
	if len(name) > 32 {
		name = name[len(name)-32:]
	}
	name = strings.TrimRight(strings.TrimLeft(name, "-._"), "-.") // an id starts with a letter or digit
	return fmt.Sprintf("%s-%d-%d", name, os.Getpid(), idCounter.Add(1))
}

// SpecOpt adjusts a container's spec before config.json is written.
type SpecOpt func(*specs.Spec)

// Container is a bundle in t.TempDir() and the id it runs under.
type Container struct {
	t           *testing.T
	rt          *Runtime
	ID          string
	Bundle      string
	Rootfs      string
	Spec        *specs.Spec
	CgroupsPath string
	// StdoutPath and StderrPath receive the output of detached containers.
	StdoutPath string
	StderrPath string

	mu   sync.Mutex
	pids []procID // init pids seen, checked for leftovers at cleanup
}

// procID identifies a process across pid reuse.
type procID struct {
	pid   int
	start string
}

// NewContainer builds a busybox bundle whose process runs args, applies opts
// and writes config.json. Its cleanup kills and force-deletes the container and
// then checks that nothing leaked.
func (r *Runtime) NewContainer(args []string, opts ...SpecOpt) *Container {
	t := r.t
	t.Helper()
	c := &Container{t: t, rt: r, ID: uniqueID(t), Bundle: t.TempDir()}
	c.Rootfs = filepath.Join(c.Bundle, "rootfs")
	c.CgroupsPath = cgroupParent + "/" + c.ID
	c.StdoutPath = filepath.Join(c.Bundle, "stdout.log")
	c.StderrPath = filepath.Join(c.Bundle, "stderr.log")
	buildRootfs(t, c.Rootfs)

	s := r.baseSpec()
	s.Root = &specs.Root{Path: "rootfs"}
	s.Process.Terminal = false
	s.Process.Args = args
	s.Hostname = "silo-itest"
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	s.Linux.CgroupsPath = c.CgroupsPath
	for _, o := range opts {
		o(s)
	}
	c.Spec = s
	c.WriteSpec()

	t.Cleanup(func() {
		r.Run("kill", c.ID, "KILL")
		r.Run("delete", "-f", c.ID)
		c.mu.Lock()
		pids := c.pids
		c.mu.Unlock()
		checkLeaks(t, leakSpec{MountPrefix: c.Bundle, CgroupPaths: []string{c.CgroupsPath}, Procs: pids})
	})
	return c
}

// WriteSpec (re)writes config.json from c.Spec.
func (c *Container) WriteSpec() {
	c.t.Helper()
	data, err := json.MarshalIndent(c.Spec, "", "\t")
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Bundle, "config.json"), data, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// Run runs the container in the foreground ("run -b BUNDLE ID") and returns
// the container process's output and exit status.
func (c *Container) Run(extra ...string) Result {
	args := append([]string{"run", "-b", c.Bundle}, extra...)
	return c.rt.Run(append(args, c.ID)...)
}

// detachedCommand runs a runtime command whose container keeps running: the
// container inherits the command's stdio, so they are files (pipes would keep
// the command "running" until the container exits).
func (c *Container) detachedCommand(args ...string) Result {
	c.t.Helper()
	cmd := c.rt.Command(args...)
	out, err := os.OpenFile(c.StdoutPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.OpenFile(c.StderrPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer errf.Close()
	before, _ := os.ReadFile(c.StderrPath)
	cmd.Stdout, cmd.Stderr = out, errf
	res := runCmd(cmd)
	after, _ := os.ReadFile(c.StderrPath)
	res.Stderr = string(after[len(before):])
	return res
}

// Create runs "create -b BUNDLE [extra] ID" and fails the test on error.
func (c *Container) Create(extra ...string) {
	c.t.Helper()
	args := append([]string{"create", "-b", c.Bundle}, extra...)
	if res := c.detachedCommand(append(args, c.ID)...); res.Err != nil {
		c.t.Fatalf("create: %s", res)
	}
	c.rememberPid()
}

// Start runs "start ID" and fails the test on error.
func (c *Container) Start() {
	c.t.Helper()
	c.rt.Must("start", c.ID)
}

// RunDetached creates and starts the container and waits until it is running.
func (c *Container) RunDetached() State {
	c.t.Helper()
	c.Create()
	c.Start()
	return c.WaitStatus("running", 5*time.Second)
}

// Exec runs "exec [extra...] ID args..." in the foreground.
func (c *Container) Exec(extra []string, args ...string) Result {
	a := append(append([]string{"exec"}, extra...), c.ID)
	return c.rt.Run(append(a, args...)...)
}

// State returns the container's state, failing the test on error.
func (c *Container) State() State {
	c.t.Helper()
	st, err := c.rt.State(c.ID)
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// WaitStatus polls the state until its status is want.
func (c *Container) WaitStatus(want string, timeout time.Duration) State {
	c.t.Helper()
	var st State
	deadline := time.Now().Add(timeout)
	for {
		var err error
		st, err = c.rt.State(c.ID)
		if err == nil && st.Status == want {
			return st
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("container %s: status %q (err %v), want %q", c.ID, st.Status, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stdout returns what the detached container wrote to its stdout so far.
func (c *Container) Stdout() string {
	b, _ := os.ReadFile(c.StdoutPath)
	return string(b)
}

// WaitStdout polls the detached container's stdout until it contains want.
func (c *Container) WaitStdout(want string, timeout time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := c.Stdout()
		if strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("stdout of %s never contained %q; got %q", c.ID, want, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rememberPid records the init pid so that cleanup can check it is gone.
func (c *Container) rememberPid() {
	st, err := c.rt.State(c.ID)
	if err != nil || st.Pid <= 0 {
		return
	}
	if start := procStart(st.Pid); start != "" {
		c.mu.Lock()
		c.pids = append(c.pids, procID{st.Pid, start})
		c.mu.Unlock()
	}
}

// procStart returns field 22 (starttime) of /proc/pid/stat, or "" if the
// process does not exist or is a zombie.
func procStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return ""
	}
	return f[19]
}

// busyboxPath is the host's static busybox.
func busyboxPath(t testing.TB) string {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("busybox-static not installed (apt-get install busybox-static)")
	return ""
}

var applets struct {
	once sync.Once
	list []string
	err  error
}

// busyboxApplets returns the applet names of the host busybox.
func busyboxApplets(t testing.TB) []string {
	bb := busyboxPath(t)
	applets.once.Do(func() {
		out, err := exec.Command(bb, "--list").Output()
		applets.list, applets.err = strings.Fields(string(out)), err
	})
	if applets.err != nil {
		t.Fatalf("busybox --list: %v", applets.err)
	}
	return applets.list
}

// rootfsFiles are the regular files every test rootfs gets besides busybox.
var rootfsFiles = map[string]string{
	"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" +
		"silo:x:1000:1000:silo:/home/silo:/bin/sh\n",
	"etc/group": "root:x:0:\nusers:x:100:\nnogroup:x:65534:\nsilo:x:1000:\n",
	"etc/hosts": "127.0.0.1\tlocalhost\n",
	// resolv.conf is left empty: the tests never resolve names.
	"etc/resolv.conf": "",
	"www/index.html":  "hello from silo\n",
}

// buildRootfs makes a busybox root filesystem in dir.
func buildRootfs(t testing.TB, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "sbin", "usr/bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/silo", "www", "var/run", "run", "mnt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(dir, "home/silo"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(busyboxPath(t), filepath.Join(dir, "bin/busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets(t) {
		if a == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	for name, content := range rootfsFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// copyFile copies src to dst with mode.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// mountInfo is one line of /proc/self/mountinfo.
type mountInfo struct {
	MountPoint string
	FSType     string
	Super      string // super block options
}

// readMountInfo parses /proc/self/mountinfo.
func readMountInfo(t testing.TB) []mountInfo {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var ms []mountInfo
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		ms = append(ms, mountInfo{MountPoint: unescapeMount(f[4]), FSType: g[0], Super: g[2]})
	}
	return ms
}

// unescapeMount undoes the octal escapes (\040 etc.) of mountinfo paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupMounts returns the mount point of every cgroup hierarchy (v1 and v2),
// keyed by controller ("memory", "cpu", ...; "name=systemd"; "" for cgroup2).
func cgroupMounts(t testing.TB) map[string]string {
	m := map[string]string{}
	for _, mi := range readMountInfo(t) {
		switch mi.FSType {
		case "cgroup2":
			m[""] = mi.MountPoint
		case "cgroup":
			for _, opt := range strings.Split(mi.Super, ",") {
				if opt != "rw" && opt != "ro" {
					m[opt] = mi.MountPoint
				}
			}
		}
	}
	return m
}

// cgroupHierarchies returns the distinct cgroup mount points.
func cgroupHierarchies(t testing.TB) []string {
	seen := map[string]bool{}
	var out []string
	for _, mp := range cgroupMounts(t) {
		if !seen[mp] {
			seen[mp] = true
			out = append(out, mp)
		}
	}
	return out
}

// cgroupFile returns the path of file in the cgroup of pid for controller
// ("" for the cgroup2 hierarchy), from /proc/pid/cgroup.
func cgroupFile(t testing.TB, pid int, controller, file string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	mounts := cgroupMounts(t)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return filepath.Join(mounts[controller], parts[2], file)
			}
		}
	}
	t.Fatalf("pid %d has no %q cgroup: %s", pid, controller, b)
	return ""
}

// readInt reads a file holding one integer.
func readInt(t testing.TB, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// leakSpec says what a finished test must not leave behind.
type leakSpec struct {
	MountPrefix string   // no mount at or under this host path
	CgroupPaths []string // these cgroups exist in no hierarchy
	Procs       []procID // these processes are gone
	// CgroupParents may exist (runtimes create but never remove the parents
	// of a cgroupsPath) but must have no child cgroup left; the check
	// removes them.
	CgroupParents []string
}

// checkLeaks reports (as test errors) mounts, cgroups and processes that the
// runtime left behind, then removes them so the host stays clean.
func checkLeaks(t testing.TB, ls leakSpec) {
	t.Helper()
	if ls.MountPrefix != "" {
		var leaked []string
		for _, mi := range readMountInfo(t) {
			if mi.MountPoint == ls.MountPrefix || strings.HasPrefix(mi.MountPoint, ls.MountPrefix+"/") {
				leaked = append(leaked, mi.MountPoint)
			}
		}
		if len(leaked) > 0 {
			t.Errorf("leak: mounts left under %s: %q", ls.MountPrefix, leaked)
			for i := len(leaked) - 1; i >= 0; i-- {
				_ = unix.Unmount(leaked[i], unix.MNT_DETACH)
			}
		}
	}
	for _, cg := range ls.CgroupPaths {
		var dirs []string
		for _, mp := range cgroupHierarchies(t) {
			if _, err := os.Stat(filepath.Join(mp, cg)); err == nil {
				dirs = append(dirs, filepath.Join(mp, cg))
			}
		}
		if procs := procsInCgroup(cg); len(procs) > 0 {
			t.Errorf("leak: processes still in cgroup %s: %v", cg, procs)
			for _, p := range procs {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		if len(dirs) > 0 {
			t.Errorf("leak: cgroup %s left in %q", cg, dirs)
			removeCgroupEverywhere(cg)
		}
	}
	for _, parent := range ls.CgroupParents {
		for _, mp := range cgroupHierarchies(t) {
			ents, _ := os.ReadDir(filepath.Join(mp, parent))
			for _, e := range ents {
				if e.IsDir() {
					t.Errorf("leak: cgroup %s left in %s", filepath.Join(parent, e.Name()), mp)
				}
			}
		}
		if procs := procsInCgroup(parent); len(procs) > 0 {
			t.Errorf("leak: processes still in cgroup %s: %v", parent, procs)
			for _, p := range procs {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		removeCgroupEverywhere(parent)
	}
	for _, p := range ls.Procs {
		if procStart(p.pid) == p.start {
			t.Errorf("leak: container process %d still running", p.pid)
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
}

// procsInCgroup scans /proc for processes whose cgroup (in any hierarchy) is
// cg or below it.
func procsInCgroup(cg string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cgroup")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) == 3 && (parts[2] == cg || strings.HasPrefix(parts[2], cg+"/")) {
				if procStart(pid) != "" {
					pids = append(pids, pid)
				}
				break
			}
		}
	}
	return pids
}

// removeCgroupEverywhere removes cgroup cg (and its children) from every
// hierarchy, freezing nothing: it is for cleanup after the processes are gone.
func removeCgroupEverywhere(cg string) {
	if cg == "" || cg == "/" {
		return
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok || !(strings.HasPrefix(post, "cgroup ") || strings.HasPrefix(post, "cgroup2 ")) {
			continue
		}
		f := strings.Fields(pre)
		if len(f) < 5 {
			continue
		}
		removeTree(filepath.Join(unescapeMount(f[4]), cg))
	}
}

// removeTree rmdirs a cgroup directory tree bottom-up, retrying briefly while
// the kernel still counts exiting tasks.
func removeTree(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() {
			removeTree(filepath.Join(dir, e.Name()))
		}
	}
	for i := 0; i < 50; i++ {
		if err := unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shortTempDir returns a temporary directory with a short path (unix socket
// paths are limited to 108 bytes), removed at cleanup.
func shortTempDir(t testing.TB, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// eventually polls cond every 20ms until it is true or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
