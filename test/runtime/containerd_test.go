//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireBinary returns the path of a client binary or skips the test.
func requireBinary(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install %s)", name, pkg)
	}
	return p
}

// Containerd is a private containerd daemon: its own config, root, state,
// socket and namespace, all under one temporary directory.
type Containerd struct {
	t         *testing.T
	Dir       string
	Socket    string
	Namespace string
	RuncRoot  string // the runtime's --root, passed with ctr --runc-root
	Runtime   string // the runtime binary under test, passed with --runc-binary
	cmd       *exec.Cmd
	exited    chan error
	// newRunDir is set when /run/containerd (the shims' sockets and fifos,
	// a path containerd does not let us move) did not exist before.
	newRunDir bool
}

// startContainerd starts a private containerd and registers its teardown.
func startContainerd(t *testing.T, runtimeBin string) *Containerd {
	t.Helper()
	bin := requireBinary(t, "containerd", "containerd")
	requireBinary(t, "ctr", "containerd")
	dir := shortTempDir(t, "silo-ctrd-")
	d := &Containerd{
		t:         t,
		Dir:       dir,
		Socket:    filepath.Join(dir, "containerd.sock"),
		Namespace: fmt.Sprintf("silo-itest-ctrd-%d", os.Getpid()),
		RuncRoot:  filepath.Join(dir, "runc"),
		Runtime:   runtimeBin,
		exited:    make(chan error, 1),
	}
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[debug]
  address = %[5]q

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %[6]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.Socket, d.Socket+".ttrpc",
		filepath.Join(dir, "debug.sock"), filepath.Join(dir, "opt"))
	if _, err := os.Stat("/run/containerd"); os.IsNotExist(err) {
		d.newRunDir = true
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin, "--config", cfgPath)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(d.stop)

	if !eventually(20*time.Second, func() bool { return d.ctr("version").Err == nil }) {
		t.Fatalf("containerd did not come up; log:\n%s", readFile(filepath.Join(dir, "containerd.log")))
	}
	return d
}

// ctr runs "ctr -a SOCKET -n NAMESPACE args...".
func (d *Containerd) ctr(args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"-a", d.Socket, "-n", d.Namespace}, args...)...)
	return runCmd(cmd)
}

// mustCtr runs ctr and fails the test unless it exits 0.
func (d *Containerd) mustCtr(t *testing.T, args ...string) string {
	t.Helper()
	res := d.ctr(args...)
	if res.Err != nil {
		t.Fatalf("ctr failed: %s", res)
	}
	return res.Stdout
}

// runArgs returns "run" arguments that select the runtime under test.
func (d *Containerd) runArgs(extra ...string) []string {
	return append([]string{"run", "--runc-binary", d.Runtime, "--runc-root", d.RuncRoot}, extra...)
}

// taskStatus returns the STATUS column of "ctr task ls" for id.
func (d *Containerd) taskStatus(id string) string {
	for _, line := range strings.Split(d.ctr("task", "ls").Stdout, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == id {
			return f[2]
		}
	}
	return ""
}

// taskPid returns the PID column of "ctr task ls" for id, or 0.
func (d *Containerd) taskPid(id string) int {
	for _, line := range strings.Split(d.ctr("task", "ls").Stdout, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == id {
			var pid int
			fmt.Sscanf(f[1], "%d", &pid)
			return pid
		}
	}
	return 0
}

// stop removes every task and container of the namespace, stops containerd,
// and checks that nothing (shim, mount, cgroup) is left.
func (d *Containerd) stop() {
	t := d.t
	if d.ctr("version").Err == nil {
		for _, line := range strings.Split(d.ctr("task", "ls", "-q").Stdout, "\n") {
			if id := strings.TrimSpace(line); id != "" {
				d.ctr("task", "kill", "-s", "SIGKILL", id)
				eventually(5*time.Second, func() bool { return d.taskStatus(id) == "STOPPED" })
				d.ctr("task", "delete", "-f", id)
			}
		}
		for _, line := range strings.Split(d.ctr("containers", "ls", "-q").Stdout, "\n") {
			if id := strings.TrimSpace(line); id != "" {
				d.ctr("containers", "delete", id)
			}
		}
		d.ctr("images", "rm", testImageRef)
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("containerd did not stop on SIGTERM")
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
	}
	if shims := pgrepArgs("containerd-shim", d.Namespace); len(shims) > 0 {
		t.Errorf("leak: containerd shims left for namespace %s: %v", d.Namespace, shims)
		for _, p := range shims {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	checkLeaks(t, leakSpec{MountPrefix: d.Dir, CgroupParents: []string{"/" + d.Namespace}})
	if d.newRunDir {
		for _, sub := range []string{"fifo", "s", ""} {
			if err := os.Remove(filepath.Join("/run/containerd", sub)); err != nil && !os.IsNotExist(err) {
				t.Errorf("leak: %v", err)
			}
		}
	}
}

// pgrepArgs returns the pids whose command line contains all of words.
func pgrepArgs(words ...string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		all := true
		for _, w := range words {
			all = all && strings.Contains(cmdline, w)
		}
		if all && procStart(pid) != "" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestContainerd drives the runtime under test through a private containerd
// and ctr: one-shot runs, a detached task with exec/ps/pause/resume/kill/delete,
// and a memory limit.
func TestContainerd(t *testing.T) {
	rtPath := requireRuntime(t)
	d := startContainerd(t, rtPath)
	archive := buildOCIArchive(t)
	d.mustCtr(t, "images", "import", archive)
	if out := d.mustCtr(t, "images", "ls", "-q"); !strings.Contains(out, testImageRef) {
		t.Fatalf("imported image %s not listed: %q", testImageRef, out)
	}
	id := func(name string) string { return fmt.Sprintf("%s-%d", name, idCounter.Add(1)) }

	t.Run("run-exit-status", func(t *testing.T) {
		for _, tc := range []struct {
			args     []string
			wantExit int
			wantOut  string
		}{
			{[]string{"true"}, 0, ""},
			{[]string{"sh", "-c", "exit 3"}, 3, ""},
			{[]string{"echo", "hello"}, 0, "hello\n"},
		} {
			res := d.ctr(append(d.runArgs("--rm", testImageRef, id("ctrd-run")), tc.args...)...)
			if res.ExitCode != tc.wantExit || res.Stdout != tc.wantOut {
				t.Errorf("ctr run %q: exit %d stdout %q, want %d %q\n%s", tc.args, res.ExitCode, res.Stdout, tc.wantExit, tc.wantOut, res)
			}
		}
	})

	t.Run("detached-task", func(t *testing.T) {
		cid := id("ctrd-task")
		d.mustCtr(t, append(d.runArgs("-d", "--null-io", testImageRef, cid), "sleep", "1000")...)
		if !eventually(10*time.Second, func() bool { return d.taskStatus(cid) == "RUNNING" }) {
			t.Fatalf("task %s not RUNNING: %q", cid, d.ctr("task", "ls").Stdout)
		}

		if out := d.mustCtr(t, "task", "exec", "--exec-id", "e1", cid, "echo", "hi"); out != "hi\n" {
			t.Errorf("task exec stdout %q, want %q", out, "hi\n")
		}
		if res := d.ctr("task", "exec", "--exec-id", "e2", cid, "sh", "-c", "exit 5"); res.ExitCode != 5 {
			t.Errorf("task exec exit %d, want 5: %s", res.ExitCode, res)
		}

		ps := d.mustCtr(t, "task", "ps", cid)
		if lines := strings.Split(strings.TrimSpace(ps), "\n"); len(lines) < 2 {
			t.Errorf("task ps lists no process: %q", ps)
		}

		d.mustCtr(t, "task", "pause", cid)
		if !eventually(5*time.Second, func() bool { return d.taskStatus(cid) == "PAUSED" }) {
			t.Errorf("task not PAUSED after pause: %q", d.ctr("task", "ls").Stdout)
		}
		d.mustCtr(t, "task", "resume", cid)
		if !eventually(5*time.Second, func() bool { return d.taskStatus(cid) == "RUNNING" }) {
			t.Errorf("task not RUNNING after resume: %q", d.ctr("task", "ls").Stdout)
		}

		d.mustCtr(t, "task", "kill", "-s", "SIGKILL", cid)
		if !eventually(10*time.Second, func() bool { return d.taskStatus(cid) == "STOPPED" }) {
			t.Errorf("task not STOPPED after kill: %q", d.ctr("task", "ls").Stdout)
		}
		d.mustCtr(t, "task", "delete", cid)
		d.mustCtr(t, "containers", "delete", cid)
		if st := d.taskStatus(cid); st != "" {
			t.Errorf("task still listed after delete: %s", st)
		}
	})

	t.Run("memory-limit", func(t *testing.T) {
		const limit = 64 << 20
		cid := id("ctrd-mem")
		d.mustCtr(t, append(d.runArgs("-d", "--null-io", "--memory-limit", fmt.Sprint(limit), testImageRef, cid), "sleep", "1000")...)
		pid := d.taskPid(cid)
		if pid <= 0 {
			t.Fatalf("no pid for task %s: %q", cid, d.ctr("task", "ls").Stdout)
		}
		if got := readInt(t, cgroupFile(t, pid, "memory", "memory.limit_in_bytes")); got != limit {
			t.Errorf("memory.limit_in_bytes = %d, want %d", got, limit)
		}
		d.mustCtr(t, "task", "kill", "-s", "SIGKILL", cid)
		eventually(10*time.Second, func() bool { return d.taskStatus(cid) == "STOPPED" })
		d.mustCtr(t, "task", "delete", cid)
		d.mustCtr(t, "containers", "delete", cid)
	})
}
