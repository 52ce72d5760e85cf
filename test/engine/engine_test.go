//go:build integration

package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silo-containers/silo/test/harness"
)

const cgroupParent = "/silo-itest-engine"

// daemon is one silod under test (test/harness), with this package's
// helpers.
type daemon struct{ *harness.Daemon }

func newDaemon(t *testing.T) *daemon {
	return &daemon{harness.NewDaemon(t, cgroupParent)}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

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

	if out := d.Must("image", "build-busybox"); !strings.Contains(out, "busybox:latest") {
		t.Fatalf("build-busybox: %q", out)
	}
	if out := d.Must("images"); !strings.Contains(out, "busybox") {
		t.Fatalf("images: %q", out)
	}

	t.Run("run --rm echo", func(t *testing.T) {
		out, errOut, code := d.Silo("run", "--rm", "busybox", "echo", "hello")
		if code != 0 || out != "hello\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q\n%s", code, out, errOut, d.Tail())
		}
		if ps := d.Must("ps", "-aq"); strings.TrimSpace(ps) != "" {
			t.Errorf("--rm left a container: %q", ps)
		}
	})

	t.Run("exit code", func(t *testing.T) {
		out, errOut, code := d.Silo("run", "--name", "three", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
		if code != 3 || out != "out\n" || errOut != "err\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if s := d.Must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "three"); s != "exited 3\n" {
			t.Errorf("inspect: %q", s)
		}
		d.Must("rm", "three")
	})

	t.Run("command not found", func(t *testing.T) {
		_, errOut, code := d.Silo("run", "--rm", "busybox", "/no/such/command")
		if code != 127 {
			t.Fatalf("exit %d, want 127; stderr %q", code, errOut)
		}
	})

	t.Run("isolation hyperv", func(t *testing.T) {
		_, errOut, code := d.Silo("run", "--rm", "--isolation", "hyperv", "busybox", "true")
		if code != 125 || !strings.Contains(errOut, "isolation hyperv: the vm backend is not available yet") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("-it needs a terminal", func(t *testing.T) {
		_, errOut, code := d.Silo("run", "-it", "busybox", "sh")
		if code != 125 || !strings.Contains(errOut, "the input device is not a TTY") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})

	id := strings.TrimSpace(d.Must("run", "-d", "--name", "web", "-m", "64m", "-l", "tier=web", "busybox", "sh", "-c", "echo ready; exec sleep 60"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	if ps := d.Must("ps"); !strings.Contains(ps, "web") || !strings.Contains(ps, id[:12]) {
		t.Fatalf("ps: %q", ps)
	}
	if ps := d.Must("ps", "-q", "--filter", "label=tier=web"); strings.TrimSpace(ps) != id[:12] {
		t.Fatalf("ps filtered: %q", ps)
	}
	if iso := d.Must("inspect", "-f", "{{.HostConfig.Isolation}}", "web"); iso != "process\n" {
		t.Fatalf("isolation %q", iso)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if logs := d.Must("logs", "web"); logs == "ready\n" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("logs: %q", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if logs := d.Must("logs", "-t", "--tail", "1", "web"); !strings.HasSuffix(logs, "Z ready\n") {
		t.Fatalf("logs -t: %q", logs)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(d.Must("inspect", "-f", "{{.State.Pid}}", "web")))
	if err != nil || !alive(pid) {
		t.Fatalf("pid %d: %v", pid, err)
	}
	if limit := memoryLimit(t, pid); limit != 64<<20 {
		t.Fatalf("memory limit %d, want %d", limit, 64<<20)
	}
	t.Logf("web: pid %d, memory limit 64 MiB in its cgroup", pid)

	// kill -9 of silod leaves the container running; a new silod finds it.
	d.Kill9()
	if !alive(pid) {
		t.Fatal("the container died with silod")
	}
	d.Start()
	if s := d.Must("inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "web"); s != fmt.Sprintf("true %d\n", pid) {
		t.Fatalf("after restart: %q", s)
	}
	if ps := d.Must("ps", "-q"); !strings.Contains(ps, id[:12]) {
		t.Fatalf("ps after restart: %q", ps)
	}
	t.Logf("web survived kill -9 of silod and was found by the new one")

	t.Run("logs -f", func(t *testing.T) {
		d.Must("run", "-d", "--name", "counter", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done")
		if out := d.Must("logs", "-f", "counter"); out != "1\n2\n3\n" {
			t.Fatalf("logs -f: %q", out)
		}
		if out := d.Must("logs", "--tail", "1", "counter"); out != "3\n" {
			t.Fatalf("logs --tail 1: %q", out)
		}
		d.Must("rm", "counter")
	})

	// SIGTERM of silod leaves the container running too.
	d.Stop()
	if !alive(pid) {
		t.Fatal("the container died when silod stopped")
	}
	d.Start()

	d.Must("stop", "-t", "1", "web")
	if s := d.Must("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", "web"); s != "false 137\n" && s != "false 143\n" {
		t.Fatalf("after stop: %q", s)
	}
	if alive(pid) {
		t.Fatal("container process alive after stop")
	}
	if code := strings.TrimSpace(d.Must("wait", "web")); code != "137" && code != "143" {
		t.Fatalf("wait: %q", code)
	}
	d.Must("rm", "web")
	if _, _, code := d.Silo("inspect", "web"); code == 0 {
		t.Fatal("inspect after rm succeeded")
	}
}

// A container that exits while silod is down shows its exit code after
// the restart.
func TestExitWhileDaemonDown(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	d.Must("run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 1; exit 5")
	d.Kill9()
	time.Sleep(2 * time.Second)
	d.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := d.Must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "short")
		if s == "exited 5\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %q", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.Must("rm", "short")
}

// The stock docker CLI drives silod.
func TestDockerCLI(t *testing.T) {
	if !harness.HaveDocker() {
		t.Skip("no docker CLI")
	}
	d := newDaemon(t)
	d.Must("image", "build-busybox")

	dk := func(args ...string) string { t.Helper(); return d.DockerOK(t, args...) }
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
	d := &daemon{harness.Prepare(t, cgroupParent)}
	args := []string{"--host", d.Host(), "--data-root", d.Data, "--exec-root", d.Exec}
	// The silod that silo starts inherits the environment: its networks
	// go into a namespace of the test's.
	netns := harness.NewHostNetns(t)
	t.Setenv("SILO_HOST_NETNS", "/run/netns/"+netns)
	t.Cleanup(func() {
		b, err := os.ReadFile(filepath.Join(d.Exec, "silod.pid"))
		if err != nil {
			return
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for deadline := time.Now().Add(10 * time.Second); alive(pid) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		d.CheckClean()
	})
	out, errOut, code := d.Run(harness.RepoBin("silo"), append(args, "version"), nil)
	if code != 0 || !strings.Contains(out, "Server:") || !strings.Contains(errOut, "started silod") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	out, _, code = d.Run(harness.RepoBin("silo"), append(args, "ps"), nil)
	if code != 0 || !strings.Contains(out, "CONTAINER ID") {
		t.Fatalf("second command: exit %d: %s", code, out)
	}
}
