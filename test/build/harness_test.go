//go:build integration

package build

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

const cgroupParent = "/silo-itest-build"

// repoBin returns the path of a binary in the repository's bin/.
func repoBin(name string) string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..", "bin", name)
}

// daemon is one silod under test.
type daemon struct {
	t                        *testing.T
	root, data, exec, socket string
	cmd                      *exec.Cmd
	log                      *os.File
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
		"--cgroup-parent", cgroupParent, "--debug")
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
