package cgroups

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// These tests change the host's cgroups under names containing
// "silo-test" and remove everything they make, also on failure.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func uniqueName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("silo-test-%d-%s", os.Getpid(), hex.EncodeToString(b))
}

// shell is a child process that runs commands sent on its stdin in a
// subshell and answers "rc=<status>", so tests can act from inside the
// container's cgroup.
type shell struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startShell(t *testing.T, attr *syscall.SysProcAttr) *shell {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `while read -r c; do ( eval "$c" ); echo "rc=$?"; done`)
	cmd.SysProcAttr = attr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sh := &shell{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(sh.kill)
	return sh
}

func (s *shell) pid() int { return s.cmd.Process.Pid }

// kill stops the shell; it is safe to call more than once.
func (s *shell) kill() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// send writes a command without waiting for its answer.
func (s *shell) send(t *testing.T, c string) {
	t.Helper()
	if _, err := io.WriteString(s.in, c+"\n"); err != nil {
		t.Fatal(err)
	}
}

// answer waits for the status of the last command sent.
func (s *shell) answer(t *testing.T) int {
	t.Helper()
	line, err := s.out.ReadString('\n')
	if err != nil {
		t.Fatalf("shell: %v", err)
	}
	rc, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "rc="))
	if err != nil {
		t.Fatalf("shell said %q", line)
	}
	return rc
}

// run runs c in the shell and returns its exit status.
func (s *shell) run(t *testing.T, c string) int {
	t.Helper()
	s.send(t, c)
	return s.answer(t)
}

// cleanupManager makes sure, even when the test fails, that the processes
// are gone and every directory of m is removed, and checks it.
func cleanupManager(t *testing.T, m Manager, shells ...*shell) {
	t.Helper()
	t.Cleanup(func() {
		_ = m.Thaw() // a frozen v1 task cannot die
		for _, s := range shells {
			s.kill()
		}
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup Destroy: %v", err)
		}
		assertGone(t, m)
	})
}

// assertGone checks that no directory of m is left.
func assertGone(t *testing.T, m Manager) {
	t.Helper()
	var dirs []string
	for _, d := range m.Paths() {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, m.Created()...)
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind (stat: %v)", d, err)
		}
	}
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func expectFile(t *testing.T, dir, name, want string) {
	t.Helper()
	if got := readTrim(t, filepath.Join(dir, name)); got != want {
		t.Errorf("%s/%s = %q, want %q", dir, name, got, want)
	}
}

// procCgroups returns /proc/<pid>/cgroup parsed.
func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := parseSelfCgroup(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// blockDevice returns the major:minor of a real (non-loop) block device.
func blockDevice() (int64, int64, bool) {
	entries, _ := os.ReadDir("/sys/block")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "loop") || strings.HasPrefix(e.Name(), "zram") || strings.HasPrefix(e.Name(), "ram") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "dev"))
		if err != nil {
			continue
		}
		maj, min, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
		a, err1 := strconv.ParseInt(maj, 10, 64)
		c, err2 := strconv.ParseInt(min, 10, 64)
		if ok && err1 == nil && err2 == nil {
			return a, c, true
		}
	}
	return 0, 0, false
}

func ptr[T any](v T) *T { return &v }

// checkFrozen freezes m, checks that the shell stops answering, thaws it
// and checks the answer arrives.
func checkFrozen(t *testing.T, m Manager, sh *shell) {
	t.Helper()
	if err := m.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if f, err := m.Frozen(); err != nil || !f {
		t.Fatalf("Frozen() = %v, %v after Freeze", f, err)
	}
	sh.send(t, "true")
	got := make(chan struct{})
	go func() {
		_, _ = sh.out.Peek(1)
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("frozen shell answered")
	case <-time.After(200 * time.Millisecond):
	}
	if err := m.Thaw(); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if f, err := m.Frozen(); err != nil || f {
		t.Fatalf("Frozen() = %v, %v after Thaw", f, err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("thawed shell did not answer")
	}
	if rc := sh.answer(t); rc != 0 {
		t.Fatalf("rc %d", rc)
	}
}

// checkDevices runs device accesses in the shell (which is in m's cgroup)
// against the rules [deny all, /dev/null rwm, /dev/zero r], then after an
// update to [allow all, deny /dev/null w].
func checkDevices(t *testing.T, m Manager, sh *shell) {
	t.Helper()
	err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "r"},
	}})
	if err != nil {
		t.Fatalf("Set devices: %v", err)
	}
	for c, want := range map[string]bool{
		"true >/dev/null": true, "true </dev/null": true, "true </dev/zero": true,
		"true >/dev/zero": false, "true </dev/full": false, "true <>/dev/zero": false,
	} {
		if ok := sh.run(t, c+" 2>/dev/null") == 0; ok != want {
			t.Errorf("%q succeeded: %v, want %v", c, ok, want)
		}
	}
	err = m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: true, Access: "rwm"},
		{Allow: false, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "w"},
	}})
	if err != nil {
		t.Fatalf("Set devices (update): %v", err)
	}
	for c, want := range map[string]bool{
		"true </dev/null": true, "true >/dev/null": false, "true </dev/full": true, "true >/dev/zero": true,
	} {
		if ok := sh.run(t, c+" 2>&-") == 0; ok != want {
			t.Errorf("after update %q succeeded: %v, want %v", c, ok, want)
		}
	}
}

// TestRootLifecycle exercises a v1 (or hybrid) container from Apply to
// Destroy with an absolute cgroups path whose parent does not exist.
func TestRootLifecycle(t *testing.T) {
	requireRoot(t)
	if mode := Mode(); mode != Legacy && mode != Hybrid {
		t.Skipf("host is %v", mode)
	}
	base := uniqueName(t)
	path := "/" + base + "/ctr"
	m, err := New(path, "ctr")
	if err != nil {
		t.Fatal(err)
	}
	sh := startShell(t, nil)
	cleanupManager(t, m, sh)

	if err := m.Apply(sh.pid()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	paths := m.Paths()
	cg := procCgroups(t, sh.pid())
	for c := range paths {
		if cg[c] != path {
			t.Errorf("pid in %q cgroup %q, want %q", c, cg[c], path)
		}
	}
	if got, want := len(m.Created()), len(m.MountSources()); got != want {
		t.Errorf("Created() = %v, want one parent per hierarchy (%d)", m.Created(), want)
	}
	for _, d := range m.Created() {
		if filepath.Base(d) != base {
			t.Errorf("created %s, want only %s parents", d, base)
		}
	}

	mem, cpu, pids := paths["memory"], paths["cpu"], paths["pids"]
	hasSwap := exists(mem, "memory.memsw.limit_in_bytes")
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{
			Limit: ptr[int64](64 << 20), Reservation: ptr[int64](32 << 20),
			Swappiness: ptr[uint64](10), DisableOOMKiller: ptr(false), CheckBeforeUpdate: ptr(true),
			KernelTCP: ptr[int64](64 << 20),
		},
		CPU: &specs.LinuxCPU{
			Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000),
			Cpus: "0", Mems: "0",
		},
		Pids:    &specs.LinuxPids{Limit: ptr[int64](100)},
		Network: &specs.LinuxNetwork{ClassID: ptr[uint32](7)}, // no net_cls here: ignored
	}
	if hasSwap {
		r.Memory.Swap = ptr[int64](128 << 20)
	}
	if exists(cpu, "cpu.cfs_burst_us") {
		r.CPU.Burst = ptr[uint64](1000)
	}
	if exists(cpu, "cpu.idle") {
		r.CPU.Idle = ptr[int64](0)
	}
	maj, min, hasDev := blockDevice()
	if hasDev {
		r.BlockIO = &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: maj, Minor: min}, Rate: 1 << 20},
		}}
	}
	hugeDir, _, hasHuge := m.(*manager).target("hugetlb", "hugetlb")
	hasHuge = hasHuge && slices.Contains(hugePageSizes(), "2MB")
	if hasHuge {
		r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}
	}
	if Mode() == Hybrid {
		r.Unified = map[string]string{"cgroup.max.depth": "3"}
	}
	if err := m.Set(r); err != nil {
		t.Fatalf("Set: %v", err)
	}
	expectFile(t, mem, "memory.limit_in_bytes", strconv.Itoa(64<<20))
	expectFile(t, mem, "memory.soft_limit_in_bytes", strconv.Itoa(32<<20))
	expectFile(t, mem, "memory.swappiness", "10")
	if hasSwap {
		expectFile(t, mem, "memory.memsw.limit_in_bytes", strconv.Itoa(128<<20))
	}
	if exists(mem, "memory.kmem.tcp.limit_in_bytes") {
		expectFile(t, mem, "memory.kmem.tcp.limit_in_bytes", strconv.Itoa(64<<20))
	}
	expectFile(t, cpu, "cpu.shares", "512")
	expectFile(t, cpu, "cpu.cfs_quota_us", "50000")
	expectFile(t, cpu, "cpu.cfs_period_us", "100000")
	if r.CPU.Burst != nil {
		expectFile(t, cpu, "cpu.cfs_burst_us", "1000")
	}
	expectFile(t, paths["cpuset"], "cpuset.cpus", "0")
	expectFile(t, paths["cpuset"], "cpuset.mems", "0")
	expectFile(t, pids, "pids.max", "100")
	if hasDev {
		expectFile(t, paths["blkio"], "blkio.throttle.read_bps_device", fmt.Sprintf("%d:%d %d", maj, min, 1<<20))
	}
	if hasHuge {
		name := "hugetlb.2MB.limit_in_bytes"
		if _, v1 := paths["hugetlb"]; !v1 {
			name = "hugetlb.2MB.max"
		}
		expectFile(t, hugeDir, name, strconv.Itoa(4<<20))
	}
	if r.Unified != nil {
		expectFile(t, paths[""], "cgroup.max.depth", "3")
	}

	// update: shrink memory and swap, then grow them (the write order
	// differs), and refuse a limit below usage.
	for _, lim := range []int64{32 << 20, 256 << 20} {
		u := &specs.LinuxMemory{Limit: ptr(lim)}
		if hasSwap {
			u.Swap = ptr(2 * lim)
		}
		if err := m.Set(&specs.LinuxResources{Memory: u}); err != nil {
			t.Fatalf("Set memory %d: %v", lim, err)
		}
		expectFile(t, mem, "memory.limit_in_bytes", strconv.FormatInt(lim, 10))
	}
	// v1 charges do not follow a moved task: allocate in the group first.
	if rc := sh.run(t, "x=$(cat /proc/self/status)"); rc != 0 {
		t.Fatalf("rc %d", rc)
	}
	usage, err := readUint(mem, "memory.usage_in_bytes")
	if err != nil || usage < 8192 {
		t.Fatalf("memory usage %d, %v", usage, err)
	}
	err = m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(usage / 2)), CheckBeforeUpdate: ptr(true)}})
	if err == nil || !strings.Contains(err.Error(), "below the current usage") {
		t.Errorf("limit below usage with checkBeforeUpdate: error %v", err)
	}
	err = m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "4096"}})
	if err == nil || !strings.Contains(err.Error(), "cpuset.cpus=\"4096\"") {
		t.Errorf("bad cpuset: error %v, want one naming the file and value", err)
	}

	if _, ok := paths["devices"]; ok {
		checkDevices(t, m, sh)
		expectFile(t, paths["devices"], "devices.list", "a *:* rwm")
		// The create-time order, as a runtime sends it.
		err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](136), Access: "rwm"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		expectFile(t, paths["devices"], "devices.list", "c 1:3 rwm\nc 136:* rwm")
	}

	checkFrozen(t, m, sh)

	// Pids is recursive: move the shell into a child cgroup of the
	// container in every hierarchy (which Destroy must then remove too).
	for _, d := range dirsOf(m) {
		sub := filepath.Join(d, "sub")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(d, "/cpuset/") {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if err := writeFile(sub, f, readTrim(t, filepath.Join(d, f))); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := writeFile(sub, "cgroup.procs", strconv.Itoa(sh.pid())); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := m.Pids(); err != nil || !slices.Equal(got, []int{sh.pid()}) {
		t.Errorf("Pids() = %v, %v; want [%d]", got, err, sh.pid())
	}

	if rc := sh.run(t, "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; x=$(cat /proc/self/status)"); rc != 0 {
		t.Fatalf("rc %d", rc)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.CPU.Usage.Total == 0 || len(st.CPU.Usage.Percpu) != runtime.NumCPU() {
		t.Errorf("cpu stats %+v", st.CPU)
	}
	if st.Memory.Usage.Limit != 256<<20 || st.Memory.Raw == nil {
		t.Errorf("memory stats %+v", st.Memory.Usage)
	}
	if st.Pids.Current != 1 || st.Pids.Limit != 100 {
		t.Errorf("pids stats %+v", st.Pids)
	}
	if !slices.Equal(st.CPUSet.CPUs, []uint16{0}) {
		t.Errorf("cpuset stats %+v", st.CPUSet)
	}
	if _, ok := st.Hugetlb["2MB"]; hasHuge && !ok {
		t.Errorf("hugetlb stats %+v", st.Hugetlb)
	}

	subdirs := map[string]bool{}
	for _, ms := range m.MountSources() {
		subdirs[ms.Subdir] = true
		if ms.HostPath != paths[ms.Subdir] && ms.Subdir != "systemd" && ms.Subdir != "unified" && !strings.Contains(ms.Subdir, ",") {
			t.Errorf("mount source %+v, want host path %q", ms, paths[ms.Subdir])
		}
	}
	for _, want := range []string{"memory", "systemd"} {
		if _, ok := paths["name="+want]; (ok || want == "memory") && !subdirs[want] {
			t.Errorf("no %q mount source in %v", want, subdirs)
		}
	}
	if Mode() == Hybrid && !subdirs["unified"] {
		t.Errorf("no unified mount source in %v", subdirs)
	}

	// A later runtime process destroys through Load.
	lm := Load(m.Paths(), m.Created())
	if got, err := lm.Pids(); err != nil || !slices.Equal(got, []int{sh.pid()}) {
		t.Errorf("loaded Pids() = %v, %v", got, err)
	}
	sh.kill()
	if err := lm.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	assertGone(t, lm)
	if err := lm.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if _, err := lm.Stats(); err == nil {
		t.Error("Stats after Destroy: want error")
	}
	if _, err := lm.Pids(); err == nil {
		t.Error("Pids after Destroy: want error")
	}
}

// dirsOf returns m's distinct directories.
func dirsOf(m Manager) []string {
	var out []string
	for _, d := range m.Paths() {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// TestRootRelative checks that a relative path lands below the caller's
// own cgroup and that only the parents Apply made are removed.
func TestRootRelative(t *testing.T) {
	requireRoot(t)
	if mode := Mode(); mode != Legacy && mode != Hybrid {
		t.Skipf("host is %v", mode)
	}
	own, err := readSelfCgroup()
	if err != nil {
		t.Fatal(err)
	}
	rel := uniqueName(t) + "/a/ctr"
	m, err := New(rel, "ctr")
	if err != nil {
		t.Fatal(err)
	}
	sh := startShell(t, nil)
	cleanupManager(t, m, sh)
	if err := m.Apply(sh.pid()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	cg := procCgroups(t, sh.pid())
	for c := range m.Paths() {
		if want := filepath.Join(own[c], rel); cg[c] != want {
			t.Errorf("pid in %q cgroup %q, want %q", c, cg[c], want)
		}
	}
	if got, want := len(m.Created()), 2*len(dirsOf(m)); got != want {
		t.Errorf("created %d parents, want %d: %v", got, want, m.Created())
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-1)}, Pids: &specs.LinuxPids{Limit: ptr[int64](-1)}}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	expectFile(t, m.Paths()["pids"], "pids.max", "max")
	if got, err := m.Pids(); err != nil || !slices.Equal(got, []int{sh.pid()}) {
		t.Errorf("Pids() = %v, %v", got, err)
	}
	sh.kill()
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	assertGone(t, m)
	for c, p := range m.Paths() {
		if _, err := os.Stat(filepath.Dir(filepath.Dir(filepath.Dir(p)))); err != nil {
			t.Errorf("own %s cgroup: %v", c, err)
		}
	}
}

// TestRootSelfJoin enters a container's cgroups the way the runtime's
// init does: cloned into the cgroup2 directory (OpenUnified, clone3 with
// CLONE_INTO_CGROUP), then writing "0" to each of TaskFiles itself.
func TestRootSelfJoin(t *testing.T) {
	requireRoot(t)
	path := "/" + uniqueName(t) + "/ctr"
	m, err := New(path, "ctr")
	if err != nil {
		t.Fatal(err)
	}
	cleanupManager(t, m)
	dir, err := m.OpenUnified()
	if err != nil {
		t.Fatalf("OpenUnified: %v", err)
	}
	if err := m.Apply(0); err != nil {
		t.Fatalf("Apply(0): %v", err)
	}
	mode := Mode()
	if (dir != nil) != (mode != Legacy) {
		t.Errorf("OpenUnified on a %v host = %v", mode, dir)
	}
	if (len(m.TaskFiles()) > 0) != (mode != Unified) {
		t.Errorf("TaskFiles on a %v host = %v", mode, m.TaskFiles())
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	attr := &syscall.ProcAttr{Files: []uintptr{0, w.Fd(), 2}, Sys: &syscall.SysProcAttr{}}
	if dir != nil {
		defer dir.Close()
		attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, int(dir.Fd())
	}
	argv := append([]string{"sh", "-c", `for f; do echo 0 > "$f" || exit 1; done; cat /proc/self/cgroup`, "sh"}, m.TaskFiles()...)
	pid, err := syscall.ForkExec(sh, argv, attr)
	w.Close()
	if err != nil {
		t.Fatalf("start sh: %v", err)
	}
	out, _ := io.ReadAll(r)
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("sh: %v, status %v: %s", err, ws, out)
	}
	cg, err := parseSelfCgroup(strings.NewReader(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	for c := range m.Paths() {
		if cg[c] != path {
			t.Errorf("process in %q cgroup %q, want %q", c, cg[c], path)
		}
	}
}

// TestRootUnified runs the v2 code: on a v2 host on the host itself, on a
// hybrid host on its cgroup2 mount taken as if it were the only one.
func TestRootUnified(t *testing.T) {
	requireRoot(t)
	host, err := hostLayout()
	if err != nil || host.unified == nil {
		t.Skip("no cgroup2 mount")
	}
	l := &layout{mode: Unified, unified: host.unified}
	path := "/" + uniqueName(t) + "/ctr"
	m, err := newManager(l, nil, path)
	if err != nil {
		t.Fatal(err)
	}
	sh := startShell(t, nil)
	cleanupManager(t, m, sh)
	if err := m.Apply(sh.pid()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	dir := m.Paths()[""]
	if cg := procCgroups(t, sh.pid()); cg[""] != path {
		t.Fatalf("pid in %q, want %q", cg[""], path)
	}
	ctrls := strings.Fields(readTrim(t, filepath.Join(dir, "cgroup.controllers")))
	parentCtrls := strings.Fields(readTrim(t, filepath.Join(host.unified.mountpoint, "cgroup.controllers")))
	slices.Sort(ctrls)
	slices.Sort(parentCtrls)
	if !slices.Equal(ctrls, parentCtrls) {
		t.Errorf("container controllers %v, want all of the root's %v", ctrls, parentCtrls)
	}

	r := &specs.LinuxResources{Unified: map[string]string{"cgroup.max.descendants": "7"}}
	hasHuge := slices.Contains(ctrls, "hugetlb") && slices.Contains(hugePageSizes(), "2MB")
	if hasHuge {
		r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}
	}
	if slices.Contains(ctrls, "memory") {
		r.Memory = &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Reservation: ptr[int64](-1)}
	}
	if slices.Contains(ctrls, "pids") {
		r.Pids = &specs.LinuxPids{Limit: ptr[int64](50)}
	}
	if slices.Contains(ctrls, "cpu") {
		r.CPU = &specs.LinuxCPU{Shares: ptr[uint64](1024), Quota: ptr[int64](20000)}
	}
	if err := m.Set(r); err != nil {
		t.Fatalf("Set: %v", err)
	}
	expectFile(t, dir, "cgroup.max.descendants", "7")
	if hasHuge {
		expectFile(t, dir, "hugetlb.2MB.max", strconv.Itoa(4<<20))
	}
	if r.Memory != nil {
		expectFile(t, dir, "memory.max", strconv.Itoa(64<<20))
		expectFile(t, dir, "memory.low", "max")
	}
	if r.Pids != nil {
		expectFile(t, dir, "pids.max", "50")
	}
	if r.CPU != nil {
		expectFile(t, dir, "cpu.weight", "39")
		expectFile(t, dir, "cpu.max", "20000 100000")
		if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr[uint64](50000)}}); err != nil {
			t.Fatal(err)
		}
		expectFile(t, dir, "cpu.max", "20000 50000")
	}
	err = m.Set(&specs.LinuxResources{Unified: map[string]string{"nosuch.file": "1"}})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "nosuch.file")) {
		t.Errorf("unknown unified file: error %v", err)
	}
	if err := m.Set(&specs.LinuxResources{Unified: map[string]string{"../cgroup.procs": "1"}}); err == nil {
		t.Error("unified key with a slash: want error")
	}

	checkDevices(t, m, sh)
	cgfd, err := syscall.Open(dir, syscall.O_DIRECTORY|syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := attachedDevicePrograms(cgfd)
	syscall.Close(cgfd)
	if err != nil || len(ids) != 1 {
		t.Errorf("attached device programs %v, %v; want exactly one", ids, err)
	}

	checkFrozen(t, m, sh)

	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(sub, "cgroup.procs", strconv.Itoa(sh.pid())); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Pids(); err != nil || !slices.Equal(got, []int{sh.pid()}) {
		t.Errorf("Pids() = %v, %v", got, err)
	}
	if rc := sh.run(t, "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done"); rc != 0 {
		t.Fatalf("rc %d", rc)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.CPU.Usage.Total == 0 {
		t.Errorf("cpu stats %+v", st.CPU)
	}
	if _, ok := st.Hugetlb["2MB"]; hasHuge && !ok {
		t.Errorf("hugetlb stats %+v", st.Hugetlb)
	}
	if r.Pids != nil && st.Pids.Current != 1 {
		t.Errorf("pids stats %+v", st.Pids)
	}
	if ms := m.MountSources(); len(ms) != 1 || ms[0].Subdir != "" || ms[0].HostPath != dir || ms[0].Version != 2 {
		t.Errorf("MountSources() = %+v", ms)
	}

	sh.kill()
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	assertGone(t, m)
}

// TestRootDestroyMissing checks that a Manager whose directories never
// existed destroys cleanly.
func TestRootDestroyMissing(t *testing.T) {
	requireRoot(t)
	if Mode() == Unavailable {
		t.Skip("no cgroups")
	}
	m, err := New("", uniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := Load(m.Paths(), []string{"/sys/fs/cgroup/memory/silo-test-nonexistent"}).Destroy(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkRootApplyDestroy measures the cgroup work of a container start
// and removal: New, Apply (directories only), Set of a few limits, Destroy.
func BenchmarkRootApplyDestroy(b *testing.B) {
	if os.Geteuid() != 0 || Mode() == Unavailable {
		b.Skip("needs root and cgroups")
	}
	base := fmt.Sprintf("/silo-test-bench-%d", os.Getpid())
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](100)},
		CPU:    &specs.LinuxCPU{Shares: ptr[uint64](512)},
	}
	for i := 0; b.Loop(); i++ {
		m, err := New(fmt.Sprintf("%s/c%d", base, i), "c")
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Apply(0); err != nil {
			b.Fatal(err)
		}
		if err := m.Set(r); err != nil {
			b.Fatal(err)
		}
		if err := m.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
}
