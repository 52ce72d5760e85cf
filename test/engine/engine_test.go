//go:build integration

package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const cgroupParent = "/silo-itest-engine"

// repoBin returns the path of a binary in the repository's bin/.
func repoBin(name string) string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..", "bin", name)
}

// daemon is one silod under test.
type daemon struct {
	t                        *testing.T
	root, data, exec, socket string
	// netns names the namespace the daemon's networks live in.
	netns string
	cmd   *exec.Cmd
	log   *os.File
}

func newDaemon(t *testing.T) *daemon {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, b := range []string{"silod", "silo-monitor", "runsilo"} {
		if _, err := os.Stat(repoBin(b)); err != nil {
			t.Skipf("bin/%s missing: run make", b)
		}
	}
	if _, err := os.Stat(repoBin("silo")); err != nil {
		t.Skip("bin/silo missing: run make")
	}
	root := t.TempDir()
	d := &daemon{t: t, root: root, data: filepath.Join(root, "data"), exec: filepath.Join(root, "run"),
		socket: filepath.Join(root, "silo.sock")}
	log, err := os.Create(filepath.Join(root, "silod.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.log = log
	d.netns = newHostNetns(t) // network_test.go
	t.Cleanup(func() { d.cleanup() })
	d.start()
	return d
}

func (d *daemon) host() string { return "unix://" + d.socket }

// start runs silod in its own session, as `silo` would, so that killing it
// leaves its monitors alone.
func (d *daemon) start() {
	d.t.Helper()
	d.cmd = exec.Command(repoBin("silod"), "--host", d.host(), "--data-root", d.data, "--exec-root", d.exec,
		"--cgroup-parent", cgroupParent, "--host-netns", "/run/netns/"+d.netns, "--debug")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, _, code := d.silo("version"); code == 0 {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("silod does not answer; log:\n%s", d.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) logText() string {
	b, _ := os.ReadFile(d.log.Name())
	return string(b)
}

// kill9 kills silod with SIGKILL and reaps it.
func (d *daemon) kill9() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_ = d.cmd.Wait()
}

// stop ends silod with SIGTERM, as an init system would.
func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		d.t.Errorf("silod did not stop on SIGTERM")
		d.kill9()
	}
}

// silo runs the CLI against this daemon and returns stdout, stderr and
// the exit code.
func (d *daemon) silo(args ...string) (string, string, int) {
	return d.run(repoBin("silo"), append([]string{"--host", d.host(), "--no-start-daemon"}, args...), nil)
}

// dockerCLI is the stock docker CLI, where the machine has it.
const dockerCLI = "/usr/local/bin/docker"

func haveDocker() bool {
	_, err := os.Stat(dockerCLI)
	return err == nil
}

// dockerEnv points the docker CLI at d, with a config directory of its own.
func (d *daemon) dockerEnv() []string {
	return []string{"DOCKER_HOST=" + d.host(), "DOCKER_CONFIG=" + filepath.Join(d.root, "docker-config")}
}

// dockerOK runs the docker CLI against d and fails the test unless it
// exits 0; it returns the output.
func (d *daemon) dockerOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := d.run(dockerCLI, args, d.dockerEnv())
	if code != 0 {
		t.Fatalf("docker %s: exit %d\n%s%s\n%s", strings.Join(args, " "), code, out, errOut, d.tail())
	}
	return out
}

func (d *daemon) run(bin string, args []string, env []string) (string, string, int) {
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
		d.t.Fatalf("%s %v: %v", bin, args, err)
	}
	return out.String(), errb.String(), code
}

// must runs silo and fails the test unless it exits 0.
func (d *daemon) must(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.silo(args...)
	if code != 0 {
		d.t.Fatalf("silo %s: exit %d\nstdout: %s\nstderr: %s\nsilod log:\n%s", strings.Join(args, " "), code, out, errOut, d.tail())
	}
	return out
}

func (d *daemon) tail() string {
	l := strings.Split(d.logText(), "\n")
	if len(l) > 40 {
		l = l[len(l)-40:]
	}
	return strings.Join(l, "\n")
}

// cleanup removes every container, stops silod and checks that nothing
// is left: mounts, loop devices, cgroups, processes.
func (d *daemon) cleanup() {
	t := d.t
	if d.cmd != nil && d.cmd.ProcessState == nil {
		ids := strings.Fields(func() string { o, _, _ := d.silo("ps", "-aq", "--no-trunc"); return o }())
		for _, id := range ids {
			d.silo("rm", "-f", id)
		}
		d.stop()
	}
	// Monitors exit right after the exit they report: give them a moment.
	for deadline := time.Now().Add(3 * time.Second); len(processesUnder(d.root)) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if m := mountsUnder(d.root); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
		for i := len(m) - 1; i >= 0; i-- {
			_ = syscall.Unmount(m[i], syscall.MNT_DETACH)
		}
	}
	if l := loopsUnder(d.root); len(l) > 0 {
		t.Errorf("loop devices left: %v", l)
	}
	if p := processesUnder(d.root); len(p) > 0 {
		for _, pid := range p {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			t.Errorf("process left: %d %q", pid, bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))
		}
		for _, pid := range p {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if c := cgroupsLeft(); len(c) > 0 {
		t.Errorf("cgroups left: %v", c)
	}
	removeCgroupParent()
	if d.netns != "" {
		if out, err := exec.Command("ip", "netns", "del", d.netns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", d.netns, err, out)
		}
	}
}

func mountsUnder(root string) []string {
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

func loopsUnder(root string) []string {
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

// processesUnder finds processes whose command line or root mentions root
// (monitors, containers).
func processesUnder(root string) []int {
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

// cgroupDirs are the directories of the test's cgroup parent in every
// hierarchy.
func cgroupDirs() []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + cgroupParent)
	if d := "/sys/fs/cgroup" + cgroupParent; exists(d) {
		dirs = append(dirs, d)
	}
	more, _ := filepath.Glob("/sys/fs/cgroup/unified" + cgroupParent)
	return append(dirs, more...)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func cgroupsLeft() []string {
	var out []string
	for _, d := range cgroupDirs() {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if e.IsDir() {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}

func removeCgroupParent() {
	for _, d := range cgroupDirs() {
		_ = os.Remove(d)
	}
}

// memoryLimit reads the memory limit of the cgroup of pid, on the host.
func memoryLimit(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var file string
		switch {
		case strings.Contains(","+parts[1]+",", ",memory,"):
			file = filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes")
		case parts[0] == "0" && parts[1] == "" && exists("/sys/fs/cgroup/cgroup.controllers"):
			file = filepath.Join("/sys/fs/cgroup", parts[2], "memory.max")
		default:
			continue
		}
		v, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
		if err != nil {
			t.Fatalf("%s: %q", file, v)
		}
		return n
	}
	t.Fatalf("no memory cgroup for pid %d in %q", pid, b)
	return 0
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func TestEngine(t *testing.T) {
	d := newDaemon(t)

	if out := d.must("image", "build-busybox"); !strings.Contains(out, "busybox:latest") {
		t.Fatalf("build-busybox: %q", out)
	}
	if out := d.must("images"); !strings.Contains(out, "busybox") {
		t.Fatalf("images: %q", out)
	}

	t.Run("run --rm echo", func(t *testing.T) {
		out, errOut, code := d.silo("run", "--rm", "busybox", "echo", "hello")
		if code != 0 || out != "hello\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q\n%s", code, out, errOut, d.tail())
		}
		if ps := d.must("ps", "-aq"); strings.TrimSpace(ps) != "" {
			t.Errorf("--rm left a container: %q", ps)
		}
	})

	t.Run("exit code", func(t *testing.T) {
		out, errOut, code := d.silo("run", "--name", "three", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
		if code != 3 || out != "out\n" || errOut != "err\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if s := d.must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "three"); s != "exited 3\n" {
			t.Errorf("inspect: %q", s)
		}
		d.must("rm", "three")
	})

	t.Run("command not found", func(t *testing.T) {
		_, errOut, code := d.silo("run", "--rm", "busybox", "/no/such/command")
		if code != 127 {
			t.Fatalf("exit %d, want 127; stderr %q", code, errOut)
		}
	})

	t.Run("isolation hyperv", func(t *testing.T) {
		_, errOut, code := d.silo("run", "--rm", "--isolation", "hyperv", "busybox", "true")
		if code != 125 || !strings.Contains(errOut, "isolation hyperv: the vm backend is not available yet") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("-it needs a terminal", func(t *testing.T) {
		_, errOut, code := d.silo("run", "-it", "busybox", "sh")
		if code != 125 || !strings.Contains(errOut, "the input device is not a TTY") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})

	id := strings.TrimSpace(d.must("run", "-d", "--name", "web", "-m", "64m", "-l", "tier=web", "busybox", "sh", "-c", "echo ready; exec sleep 60"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	if ps := d.must("ps"); !strings.Contains(ps, "web") || !strings.Contains(ps, id[:12]) {
		t.Fatalf("ps: %q", ps)
	}
	if ps := d.must("ps", "-q", "--filter", "label=tier=web"); strings.TrimSpace(ps) != id[:12] {
		t.Fatalf("ps filtered: %q", ps)
	}
	if iso := d.must("inspect", "-f", "{{.HostConfig.Isolation}}", "web"); iso != "process\n" {
		t.Fatalf("isolation %q", iso)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if logs := d.must("logs", "web"); logs == "ready\n" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("logs: %q", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if logs := d.must("logs", "-t", "--tail", "1", "web"); !strings.HasSuffix(logs, "Z ready\n") {
		t.Fatalf("logs -t: %q", logs)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(d.must("inspect", "-f", "{{.State.Pid}}", "web")))
	if err != nil || !alive(pid) {
		t.Fatalf("pid %d: %v", pid, err)
	}
	if limit := memoryLimit(t, pid); limit != 64<<20 {
		t.Fatalf("memory limit %d, want %d", limit, 64<<20)
	}
	t.Logf("web: pid %d, memory limit 64 MiB in its cgroup", pid)

	// kill -9 of silod leaves the container running; a new silod finds it.
	d.kill9()
	if !alive(pid) {
		t.Fatal("the container died with silod")
	}
	d.start()
	if s := d.must("inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "web"); s != fmt.Sprintf("true %d\n", pid) {
		t.Fatalf("after restart: %q", s)
	}
	if ps := d.must("ps", "-q"); !strings.Contains(ps, id[:12]) {
		t.Fatalf("ps after restart: %q", ps)
	}
	t.Logf("web survived kill -9 of silod and was found by the new one")

	t.Run("logs -f", func(t *testing.T) {
		d.must("run", "-d", "--name", "counter", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done")
		if out := d.must("logs", "-f", "counter"); out != "1\n2\n3\n" {
			t.Fatalf("logs -f: %q", out)
		}
		if out := d.must("logs", "--tail", "1", "counter"); out != "3\n" {
			t.Fatalf("logs --tail 1: %q", out)
		}
		d.must("rm", "counter")
	})

	// SIGTERM of silod leaves the container running too.
	d.stop()
	if !alive(pid) {
		t.Fatal("the container died when silod stopped")
	}
	d.start()

	d.must("stop", "-t", "1", "web")
	if s := d.must("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", "web"); s != "false 137\n" && s != "false 143\n" {
		t.Fatalf("after stop: %q", s)
	}
	if alive(pid) {
		t.Fatal("container process alive after stop")
	}
	if code := strings.TrimSpace(d.must("wait", "web")); code != "137" && code != "143" {
		t.Fatalf("wait: %q", code)
	}
	d.must("rm", "web")
	if _, _, code := d.silo("inspect", "web"); code == 0 {
		t.Fatal("inspect after rm succeeded")
	}
}

// A container that exits while silod is down shows its exit code after
// the restart.
func TestExitWhileDaemonDown(t *testing.T) {
	d := newDaemon(t)
	d.must("image", "build-busybox")
	d.must("run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 1; exit 5")
	d.kill9()
	time.Sleep(2 * time.Second)
	d.start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := d.must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "short")
		if s == "exited 5\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %q", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.must("rm", "short")
}

// The stock docker CLI drives silod.
func TestDockerCLI(t *testing.T) {
	if !haveDocker() {
		t.Skip("no docker CLI")
	}
	d := newDaemon(t)
	d.must("image", "build-busybox")

	dk := func(args ...string) string { t.Helper(); return d.dockerOK(t, args...) }
	if v := dk("version", "--format", "{{.Server.Version}}"); strings.TrimSpace(v) == "" {
		t.Fatalf("version: %q", v)
	}
	dk("ps")
	id := strings.TrimSpace(dk("run", "-d", "busybox", "sleep", "5"))
	if ps := dk("ps", "-q", "--no-trunc"); !strings.Contains(ps, id) {
		t.Fatalf("docker ps: %q does not list %s", ps, id)
	}
	if iso := dk("inspect", "-f", "{{.HostConfig.Isolation}}", id); strings.TrimSpace(iso) != "process" {
		t.Fatalf("isolation %q", iso)
	}
	dk("rm", "-f", id)
	dk("run", "-d", "--name", "talk", "busybox", "sh", "-c", "echo hi; exec sleep 30")
	deadline := time.Now().Add(10 * time.Second)
	for dk("logs", "talk") != "hi\n" {
		if time.Now().After(deadline) {
			t.Fatalf("docker logs: %q", dk("logs", "talk"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	dk("stop", "-t", "1", "talk")
	if code := strings.TrimSpace(dk("wait", "talk")); code != "137" {
		t.Fatalf("docker wait: %q", code)
	}
	dk("rm", "talk")
	if ps := dk("ps", "-aq"); strings.TrimSpace(ps) != "" {
		t.Fatalf("docker ps -a after rm: %q", ps)
	}
}

// silo starts silod when nothing answers on the socket.
func TestAutostart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, b := range []string{"silod", "silo-monitor", "runsilo", "silo"} {
		if _, err := os.Stat(repoBin(b)); err != nil {
			t.Skipf("bin/%s missing: run make", b)
		}
	}
	root := t.TempDir()
	d := &daemon{t: t, root: root, data: filepath.Join(root, "data"), exec: filepath.Join(root, "run"), socket: filepath.Join(root, "silo.sock")}
	args := []string{"--host", d.host(), "--data-root", d.data, "--exec-root", d.exec}
	// The silod that silo starts inherits the environment: its networks
	// go into a namespace of the test's.
	netns := newHostNetns(t)
	t.Setenv("SILO_HOST_NETNS", "/run/netns/"+netns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", netns).Run() })
	t.Cleanup(func() {
		b, err := os.ReadFile(filepath.Join(d.exec, "silod.pid"))
		if err != nil {
			return
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for deadline := time.Now().Add(10 * time.Second); alive(pid) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		removeCgroupParent()
	})
	out, errOut, code := d.run(repoBin("silo"), append(args, "version"), nil)
	if code != 0 || !strings.Contains(out, "Server:") || !strings.Contains(errOut, "started silod") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	out, _, code = d.run(repoBin("silo"), append(args, "ps"), nil)
	if code != 0 || !strings.Contains(out, "CONTAINER ID") {
		t.Fatalf("second command: exit %d: %s", code, out)
	}
}
