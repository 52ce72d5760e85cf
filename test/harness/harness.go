//go:build integration

// Package harness runs a silod for a root integration test: its own data
// root, exec root, socket, cgroup parent and network namespace (the "host"
// its bridges, nftables table and published ports live in), so tests never
// touch the machine's silo or its networking; and, at the end, the check
// that nothing is left: mounts, loop devices, processes, cgroups.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RepoBin returns the path of a binary in the repository's bin/ (tests run
// in test/<package>).
func RepoBin(name string) string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..", "bin", name)
}

// DockerCLI is the stock docker CLI, where the machine has it.
const DockerCLI = "/usr/local/bin/docker"

// HaveDocker reports whether the docker CLI is installed.
func HaveDocker() bool {
	_, err := os.Stat(DockerCLI)
	return err == nil
}

// Daemon is one silod under test.
type Daemon struct {
	T                        *testing.T
	Root, Data, Exec, Socket string
	// CgroupParent is where its containers' cgroups go.
	CgroupParent string
	// Netns names the namespace (under /run/netns) the daemon's
	// networks live in.
	Netns string
	cmd   *exec.Cmd
	log   *os.File
}

// NewDaemon starts a silod with containers under a cgroup parent of its
// own (cgroupParent plus a unique suffix, so the leak checks of tests
// running at the same time never see each other's containers); the test's
// cleanup removes its containers, stops it and checks that nothing is left.
// It skips the test when not root or when bin/ lacks a binary.
func NewDaemon(t *testing.T, cgroupParent string) *Daemon {
	t.Helper()
	d := Prepare(t, cgroupParent)
	d.Netns = NewHostNetns(t)
	t.Cleanup(d.cleanup)
	d.Start()
	return d
}

// NewDaemonIn starts a silod whose networks live in the existing named
// network namespace netns (a simulated host the test built and removes).
func NewDaemonIn(t *testing.T, cgroupParent, netns string) *Daemon {
	t.Helper()
	d := Prepare(t, cgroupParent)
	d.Netns = netns
	t.Cleanup(d.cleanup)
	d.Start()
	return d
}

// Prepare checks the prerequisites and lays out a daemon's directories
// without starting it (for tests that start silod their own way).
func Prepare(t *testing.T, cgroupParent string) *Daemon {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, b := range []string{"silod", "silo-monitor", "runsilo", "runsilo-helper", "silo"} {
		if _, err := os.Stat(RepoBin(b)); err != nil {
			t.Skipf("bin/%s missing: run make", b)
		}
	}
	root := t.TempDir()
	d := &Daemon{T: t, Root: root, Data: filepath.Join(root, "data"), Exec: filepath.Join(root, "run"),
		Socket: filepath.Join(root, "silo.sock"), CgroupParent: fmt.Sprintf("%s-%d", cgroupParent, time.Now().UnixNano()%1e9)}
	log, err := os.Create(filepath.Join(root, "silod.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.log = log
	return d
}

// NewHostNetns makes a named network namespace with lo up and returns its
// name; the test's cleanup deletes it, and with it every bridge, veth and
// nftables table a daemon made in it.
func NewHostNetns(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("silo-itest-%d", time.Now().UnixNano()%1e9)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v: %s", name, err, out)
	}
	return name
}

// Host is the daemon's API address.
func (d *Daemon) Host() string { return "unix://" + d.Socket }

// Start runs silod in its own session, as `silo` would, so that killing it
// leaves its monitors alone, and waits until it answers.
func (d *Daemon) Start() {
	d.T.Helper()
	args := []string{"--host", d.Host(), "--data-root", d.Data, "--exec-root", d.Exec,
		"--cgroup-parent", d.CgroupParent, "--debug"}
	if d.Netns != "" {
		args = append(args, "--host-netns", "/run/netns/"+d.Netns)
	}
	d.cmd = exec.Command(RepoBin("silod"), args...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := d.cmd.Start(); err != nil {
		d.T.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, _, code := d.Silo("version"); code == 0 {
			return
		}
		if time.Now().After(deadline) {
			d.T.Fatalf("silod does not answer; log:\n%s", d.LogText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LogText is silod's log so far.
func (d *Daemon) LogText() string {
	b, _ := os.ReadFile(d.log.Name())
	return string(b)
}

// Tail is the end of silod's log, for failure messages.
func (d *Daemon) Tail() string {
	l := strings.Split(d.LogText(), "\n")
	if len(l) > 40 {
		l = l[len(l)-40:]
	}
	return strings.Join(l, "\n")
}

// Pid is silod's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Kill9 kills silod with SIGKILL and reaps it.
func (d *Daemon) Kill9() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_ = d.cmd.Wait()
}

// Stop ends silod with SIGTERM, as an init system would.
func (d *Daemon) Stop() {
	if d.cmd == nil || d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		d.T.Errorf("silod did not stop on SIGTERM")
		d.Kill9()
	}
}

// Silo runs the CLI against this daemon and returns stdout, stderr and
// the exit code.
func (d *Daemon) Silo(args ...string) (string, string, int) {
	return d.Run(RepoBin("silo"), append([]string{"--host", d.Host(), "--no-start-daemon"}, args...), nil)
}

// Must runs silo and fails the test unless it exits 0; it returns stdout.
func (d *Daemon) Must(args ...string) string {
	d.T.Helper()
	out, errOut, code := d.Silo(args...)
	if code != 0 {
		d.T.Fatalf("silo %s: exit %d\nstdout: %s\nstderr: %s\nsilod log:\n%s", strings.Join(args, " "), code, out, errOut, d.Tail())
	}
	return out
}

// DockerEnv points the docker CLI at d, with a config directory of its own.
func (d *Daemon) DockerEnv() []string {
	return []string{"DOCKER_HOST=" + d.Host(), "DOCKER_CONFIG=" + filepath.Join(d.Root, "docker-config")}
}

// DockerOK runs the docker CLI against d and fails the test unless it
// exits 0; it returns the output.
func (d *Daemon) DockerOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := d.Run(DockerCLI, args, d.DockerEnv())
	if code != 0 {
		t.Fatalf("docker %s: exit %d\n%s%s\n%s", strings.Join(args, " "), code, out, errOut, d.Tail())
	}
	return out
}

// Run runs a command (with env added to the test's) and returns stdout,
// stderr and the exit code.
func (d *Daemon) Run(bin string, args []string, env []string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		d.T.Fatalf("%s %v: %v", bin, args, err)
	}
	return out.String(), errb.String(), code
}

// InHost runs a command inside the daemon's host namespace.
func (d *Daemon) InHost(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", d.Netns}, args...)...).CombinedOutput()
	return string(out), err
}

// cleanup removes every container, stops silod and checks that nothing
// is left: mounts, loop devices, cgroups, processes.
func (d *Daemon) cleanup() {
	if d.cmd != nil && d.cmd.ProcessState == nil {
		ids := strings.Fields(func() string { o, _, _ := d.Silo("ps", "-aq", "--no-trunc"); return o }())
		for _, id := range ids {
			d.Silo("rm", "-f", id)
		}
		d.Stop()
	}
	d.CheckClean()
}

// CheckClean fails the test for what the daemon left: mounts and loop
// devices under its root, processes naming it, cgroups under its parent.
// It removes what it finds, so one leak does not fail the next test.
func (d *Daemon) CheckClean() {
	t := d.T
	// Monitors exit right after the exit they report: give them a moment.
	for deadline := time.Now().Add(3 * time.Second); len(ProcessesUnder(d.Root)) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if m := MountsSettled(d.Root); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
		for i := len(m) - 1; i >= 0; i-- {
			_ = syscall.Unmount(m[i], syscall.MNT_DETACH)
		}
	}
	if l := LoopsUnder(d.Root); len(l) > 0 {
		t.Errorf("loop devices left: %v", l)
	}
	if p := ProcessesUnder(d.Root); len(p) > 0 {
		for _, pid := range p {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			t.Errorf("process left: %d %q", pid, bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))
		}
		for _, pid := range p {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if c := CgroupsLeft(d.CgroupParent); len(c) > 0 {
		t.Errorf("cgroups left: %v", c)
	}
	RemoveCgroupParent(d.CgroupParent)
}

// MountsSettled is MountsUnder once the background unmounts are done: a
// removed container's sandbox is unmounted in the trash just after the
// removal returns. It waits up to 5 s for the mounts and loop devices
// under root to go and returns the mounts still there.
func MountsSettled(root string) []string {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if len(MountsUnder(root)) == 0 && len(LoopsUnder(root)) == 0 {
			break
		}
	}
	return MountsUnder(root)
}

// CgroupsSettled is CgroupsLeft once a removal's background steps are
// done (the runtime deletes a removed container's cgroups just after the
// removal returns): it waits up to 5 s for them to go.
func CgroupsSettled(parent string) []string {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if len(CgroupsLeft(parent)) == 0 {
			break
		}
	}
	return CgroupsLeft(parent)
}

// MountsUnder lists the mount points under root.
func MountsUnder(root string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], root) {
			out = append(out, fields[4])
		}
	}
	return out
}

// LoopsUnder lists the loop devices backed by files under root.
func LoopsUnder(root string) []string {
	var out []string
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.HasPrefix(strings.TrimSpace(string(b)), root) {
			out = append(out, f)
		}
	}
	return out
}

// ProcessesUnder finds processes whose command line or root mentions root
// (monitors, containers).
func ProcessesUnder(root string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		rt, _ := os.Readlink(filepath.Join("/proc", e.Name(), "root"))
		if bytes.Contains(cmd, []byte(root)) || strings.HasPrefix(rt, root) {
			out = append(out, pid)
		}
	}
	return out
}

// cgroupDirs are the directories of a cgroup parent in every hierarchy.
func cgroupDirs(parent string) []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + parent)
	if d := "/sys/fs/cgroup" + parent; exists(d) {
		dirs = append(dirs, d)
	}
	more, _ := filepath.Glob("/sys/fs/cgroup/unified" + parent)
	return append(dirs, more...)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// CgroupsLeft lists the cgroups under parent in every hierarchy.
func CgroupsLeft(parent string) []string {
	var out []string
	for _, d := range cgroupDirs(parent) {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if e.IsDir() {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}

// RemoveCgroupParent removes parent's (empty) directories.
func RemoveCgroupParent(parent string) {
	for _, d := range cgroupDirs(parent) {
		_ = os.Remove(d)
	}
}

// HTTPGet is the request Fetch sends, and ContainerGet's.
const HTTPGet = "GET /index.html HTTP/1.0\r\n\r\n"

// Fetch gets /index.html from addr:port inside the daemon's host
// namespace, retrying for a while as the server comes up, and returns the
// whole answer. busybox nc speaks the HTTP: Debian's static busybox wget
// crashes on this kernel when run on the host.
func (d *Daemon) Fetch(t *testing.T, addr, port string) string {
	t.Helper()
	var out string
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		cmd := exec.Command("ip", "netns", "exec", d.Netns, "/bin/busybox", "nc", "-w", "2", addr, port)
		cmd.Stdin = strings.NewReader(HTTPGet)
		var b []byte
		b, err = cmd.CombinedOutput()
		if out = string(b); err == nil && strings.Contains(out, "200 OK") {
			return out
		}
	}
	t.Fatalf("GET http://%s:%s/index.html in %s: %v: %s\n%s", addr, port, d.Netns, err, out, d.Tail())
	return ""
}

// ContainerGet is a shell command that fetches /index.html from addr:port
// inside a container (busybox sh and nc).
func ContainerGet(addr, port string) string {
	return fmt.Sprintf(`printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 3 %s %s`, addr, port)
}

// StartRegistry runs Debian's docker-registry on a free loopback port
// until the test ends and returns its address; it skips the test when the
// registry is not installed.
func StartRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	// Its request log is noise here: kept in the temp dir.
	if log, err := os.Create(filepath.Join(dir, "registry.log")); err == nil {
		cmd.Stdout, cmd.Stderr = log, log
		defer log.Close()
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("registry did not start")
	return ""
}
