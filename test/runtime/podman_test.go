//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Podman runs podman with its state (storage, run dir, tmp dir, network
// config) in one temporary directory. The runtime keeps its default --root:
// podman 4.3 drops --runtime-flag root=... from "delete --force", which would
// leave every container's state and cgroups behind.
type Podman struct {
	t            *testing.T
	Dir          string
	CgroupParent string
	global       []string
	hostBefore   hostNetState
	createdDirs  []string // global directories podman created, removed at the end
}

// hostNetState is the host state that podman networking could leave behind.
type hostNetState struct {
	Netns    []string
	Veths    []string
	Nftables string
}

// readHostNetState snapshots network namespaces, veths and the nft ruleset.
func readHostNetState() hostNetState {
	var s hostNetState
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			// silo's own test namespaces ("silo…": test/harness, the
			// simulated LANs) come and go with the other test packages
			// running at the same time; each of those checks its own.
			if !strings.HasPrefix(e.Name(), "silo") {
				s.Netns = append(s.Netns, e.Name())
			}
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show", "type", "veth").Output(); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(line); len(f) > 1 {
				s.Veths = append(s.Veths, f[1])
			}
		}
	}
	if out, err := exec.Command("nft", "list", "ruleset").Output(); err == nil {
		s.Nftables = string(out)
	}
	return s
}

// newPodman prepares a private podman for the runtime under test and
// registers a teardown that removes all its containers and checks for leaks.
func newPodman(t *testing.T, runtimeBin string) *Podman {
	t.Helper()
	requireBinary(t, "podman", "podman")
	dir := shortTempDir(t, "silo-pm-")
	p := &Podman{
		t:            t,
		Dir:          dir,
		CgroupParent: fmt.Sprintf("/silo-itest-podman-%d", os.Getpid()),
		global: []string{
			"--root", filepath.Join(dir, "storage"),
			"--runroot", filepath.Join(dir, "run"),
			"--tmpdir", filepath.Join(dir, "tmp"),
			"--network-config-dir", filepath.Join(dir, "net"),
			"--runtime", runtimeBin,
			"--cgroup-manager=cgroupfs",
			"--events-backend=file",
			"--storage-driver=vfs",
		},
		hostBefore: readHostNetState(),
	}
	// podman and the runtime create these on first use (a shared bind mount
	// on /run/netns, netavark's IPAM db under /run/containers, the runtime's
	// default --root); they are removed at the end if they are new.
	for _, d := range []string{"/run/netns", "/run/containers", "/run/runc", "/run/runsilo", "/run/crun", "/run/libpod"} {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			p.createdDirs = append(p.createdDirs, d)
		}
	}
	t.Cleanup(p.teardown)
	return p
}

// podman runs "podman GLOBAL args...".
func (p *Podman) podman(args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "podman", append(slices.Clone(p.global), args...)...)
	return runCmd(cmd)
}

// must runs podman and fails the test unless it exits 0.
func (p *Podman) must(t *testing.T, args ...string) string {
	t.Helper()
	res := p.podman(args...)
	if res.Err != nil {
		t.Fatalf("podman failed: %s", res)
	}
	return res.Stdout
}

// runArgs returns "run" arguments shared by every container of the test:
// no image pull, no network unless asked, the test's cgroup parent, and
// rlimits no higher than the host's (podman's default RLIMIT_NOFILE of
// 1048576 cannot be set without CAP_SYS_RESOURCE, which this host lacks).
func (p *Podman) runArgs(extra ...string) []string {
	args := []string{"run", "--pull=never", "--cgroup-parent", p.CgroupParent,
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}
	if !slices.ContainsFunc(extra, func(s string) bool { return strings.HasPrefix(s, "--network") }) {
		args = append(args, "--network", "none")
	}
	return append(args, extra...)
}

// teardown removes every container and image and checks that neither
// podman nor the runtime left mounts, cgroups, processes or network state.
func (p *Podman) teardown() {
	t := p.t
	p.podman("rm", "--all", "--force", "--time", "0")
	p.podman("rmi", "--all", "--force")
	// conmon runs "podman container cleanup" on exit; give it a moment.
	eventually(10*time.Second, func() bool { return len(pgrepArgs(p.Dir)) == 0 })
	if procs := pgrepArgs(p.Dir); len(procs) > 0 {
		t.Errorf("leak: processes left that use %s (conmon, slirp4netns, runtime?): %v", p.Dir, procs)
		for _, pid := range procs {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// conmon's own cgroup is podman's business; any other child is a leak.
	for _, mp := range cgroupHierarchies(t) {
		removeTree(filepath.Join(mp, p.CgroupParent, "conmon"))
	}
	checkLeaks(t, leakSpec{MountPrefix: p.Dir, CgroupParents: []string{p.CgroupParent}})

	after := readHostNetState()
	if !slices.Equal(after.Netns, p.hostBefore.Netns) {
		t.Errorf("leak: network namespaces %q, before %q", after.Netns, p.hostBefore.Netns)
	}
	if !slices.Equal(after.Veths, p.hostBefore.Veths) {
		t.Errorf("leak: veths %q, before %q", after.Veths, p.hostBefore.Veths)
	}
	if after.Nftables != p.hostBefore.Nftables {
		t.Errorf("leak: nft ruleset changed:\n%s\nbefore:\n%s", after.Nftables, p.hostBefore.Nftables)
	}
	for _, d := range p.createdDirs {
		switch d {
		case "/run/containers":
			_ = os.RemoveAll(d)
		case "/run/netns":
			if ents, _ := os.ReadDir(d); len(ents) == 0 {
				_ = unix.Unmount(d, unix.MNT_DETACH)
				_ = os.Remove(d)
			}
		default: // a runtime's default state dir: it must be empty by now
			if ents, _ := os.ReadDir(d); len(ents) > 0 {
				t.Errorf("leak: runtime state left in %s: %d entries", d, len(ents))
				continue
			}
			_ = os.Remove(d)
		}
	}
}

// freePort returns a loopback TCP port that is free right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestPodman drives the runtime under test through podman: one-shot runs,
// a detached container with exec/logs/stop, a memory limit, and a published
// port on 127.0.0.1 served by busybox httpd.
func TestPodman(t *testing.T) {
	rtPath := requireRuntime(t)
	p := newPodman(t, rtPath)
	p.must(t, "load", "-q", "-i", buildOCIArchive(t))
	img := testImageRef

	t.Run("run", func(t *testing.T) {
		for _, tc := range []struct {
			flags    []string // extra "podman run" flags
			args     []string
			wantExit int
			wantOut  string
		}{
			{nil, []string{"true"}, 0, ""},
			{nil, []string{"sh", "-c", "exit 3"}, 3, ""},
			{nil, []string{"echo", "hello"}, 0, "hello\n"},
			{[]string{"--user", "1000", "--hostname", "pm-host", "-e", "PM_VAR=x1"}, []string{"sh", "-c", "id -u; hostname; echo $PM_VAR"}, 0, "1000\npm-host\nx1\n"},
			// A terminal: conmon's console socket gets the pty.
			{[]string{"-t"}, []string{"tty"}, 0, "/dev/pts/0\r\n"},
		} {
			args := p.runArgs(append(append([]string{"--rm"}, tc.flags...), img)...)
			res := p.podman(append(args, tc.args...)...)
			if res.ExitCode != tc.wantExit || res.Stdout != tc.wantOut {
				t.Errorf("podman run %q %q: exit %d stdout %q, want %d %q\n%s", tc.flags, tc.args, res.ExitCode, res.Stdout, tc.wantExit, tc.wantOut, res)
			}
		}
	})

	t.Run("detached-exec-logs-stop", func(t *testing.T) {
		name := fmt.Sprintf("pm-d-%d", idCounter.Add(1))
		p.must(t, append(p.runArgs("-d", "--name", name, img), "sh", "-c", "echo hello-logs; exec sleep 1000")...)
		if out := p.must(t, "exec", name, "echo", "from-exec"); out != "from-exec\n" {
			t.Errorf("exec stdout %q", out)
		}
		if res := p.podman("exec", name, "sh", "-c", "exit 4"); res.ExitCode != 4 {
			t.Errorf("exec exit %d, want 4: %s", res.ExitCode, res)
		}
		if !eventually(5*time.Second, func() bool { return strings.Contains(p.podman("logs", name).Stdout, "hello-logs") }) {
			t.Errorf("logs lack hello-logs: %s", p.podman("logs", name))
		}
		p.must(t, "pause", name)
		if st := strings.TrimSpace(p.must(t, "inspect", "-f", "{{.State.Status}}", name)); st != "paused" {
			t.Errorf("status after pause %q", st)
		}
		p.must(t, "unpause", name)
		// sleep as PID 1 ignores SIGTERM: stop escalates to SIGKILL after 1s.
		p.must(t, "stop", "-t", "1", name)
		if st := strings.TrimSpace(p.must(t, "inspect", "-f", "{{.State.Status}}", name)); st != "exited" {
			t.Errorf("status after stop %q, want exited", st)
		}
		p.must(t, "rm", name)
	})

	t.Run("memory-limit", func(t *testing.T) {
		name := fmt.Sprintf("pm-m-%d", idCounter.Add(1))
		p.must(t, append(p.runArgs("-d", "--name", name, "-m", "64m", img), "sleep", "1000")...)
		pid, err := strconv.Atoi(strings.TrimSpace(p.must(t, "inspect", "-f", "{{.State.Pid}}", name)))
		if err != nil || pid <= 0 {
			t.Fatalf("no pid for %s: %v", name, err)
		}
		if got := readInt(t, cgroupFile(t, pid, "memory", "memory.limit_in_bytes")); got != 64<<20 {
			t.Errorf("memory.limit_in_bytes = %d, want %d", got, 64<<20)
		}
		p.must(t, "rm", "-f", "-t", "0", name)
	})

	t.Run("published-port", func(t *testing.T) {
		// Debian 12's podman uses netavark, whose bridge network changes the
		// host (podman0 bridge, nftables chains, net.ipv4.ip_forward). The
		// slirp4netns network with its own port handler forwards
		// 127.0.0.1:PORT in user space and changes nothing on the host.
		requireBinary(t, "slirp4netns", "slirp4netns")
		name := fmt.Sprintf("pm-web-%d", idCounter.Add(1))
		port := freePort(t)
		p.must(t, append(p.runArgs("-d", "--name", name,
			"--network", "slirp4netns:port_handler=slirp4netns",
			"-p", fmt.Sprintf("127.0.0.1:%d:80", port), img),
			"httpd", "-f", "-p", "80", "-h", "/www")...)
		url := fmt.Sprintf("http://127.0.0.1:%d/index.html", port)
		client := &http.Client{Timeout: 2 * time.Second}
		var body string
		var lastErr error
		eventually(15*time.Second, func() bool {
			resp, err := client.Get(url)
			if err != nil {
				lastErr = err
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body, lastErr = string(b), nil
			return resp.StatusCode == http.StatusOK
		})
		if body != rootfsFiles["www/index.html"] {
			t.Errorf("GET %s: body %q, err %v", url, body, lastErr)
		}
		p.must(t, "rm", "-f", "-t", "0", name)
	})
}
