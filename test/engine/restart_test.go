//go:build integration

package engine

import (
	"archive/tar"
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

// waitFor polls (in the test) until silo inspect -f format shows want.
func (d *daemon) waitFor(ref, format, want string, within time.Duration) {
	d.T.Helper()
	deadline := time.Now().Add(within)
	for {
		got := strings.TrimSpace(d.Must("inspect", "-f", format, ref))
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			d.T.Fatalf("%s: %q, want %q\nsilod log:\n%s", ref, got, want, d.Tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) pid(ref string) int {
	d.T.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(d.Must("inspect", "-f", "{{.State.Pid}}", ref)))
	if err != nil {
		d.T.Fatal(err)
	}
	return n
}

// tickTimes returns the timestamps of a container's "tick" lines.
func (d *daemon) tickTimes(ref string) []time.Time {
	d.T.Helper()
	var out []time.Time
	for _, l := range strings.Split(d.Must("logs", "-t", ref), "\n") {
		ts, rest, ok := strings.Cut(l, " ")
		if !ok || rest != "tick" {
			continue
		}
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			d.T.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, tm)
	}
	return out
}

// ids returns the ids of all containers.
func (d *daemon) ids() []string {
	d.T.Helper()
	return strings.Fields(d.Must("ps", "-aq", "--no-trunc"))
}

// checkClean checks, with silod still running, that nothing of the
// removed containers ids is left (cleanup checks again after silod).
func (d *daemon) checkClean(ids []string) {
	d.T.Helper()
	others := func() []int {
		var out []int
		for _, p := range harness.ProcessesUnder(d.Root) {
			if p != d.Pid() {
				out = append(out, p)
			}
		}
		return out
	}
	for deadline := time.Now().Add(5 * time.Second); len(others()) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if m := harness.MountsSettled(d.Root); len(m) > 0 {
		d.T.Errorf("mounts left: %v", m)
	}
	if l := harness.LoopsUnder(d.Root); len(l) > 0 {
		d.T.Errorf("loop devices left: %v", l)
	}
	if p := others(); len(p) > 0 {
		d.T.Errorf("processes left: %v", p)
	}
	for _, c := range harness.CgroupsSettled(d.CgroupParent) {
		for _, id := range ids {
			if filepath.Base(c) == id {
				d.T.Errorf("cgroup left: %s", c)
			}
		}
	}
}

// Issue 4, acceptance #3 (scaled): containers keep running and logging
// while silod is killed and restarted; one that exits meanwhile shows its
// code.
func TestContainersSurviveDaemonKill(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	const n = 20
	pids := map[string]int{}
	for i := range n {
		name := fmt.Sprintf("tick%d", i)
		d.Must("run", "-d", "--name", name, "busybox", "sh", "-c", "while true; do echo tick; sleep 1; done")
		pids[name] = d.pid(name)
	}
	d.Must("run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 5; exit 9")
	shortPid := d.pid("short")
	killed := time.Now()
	d.Kill9()
	for deadline := time.Now().Add(20 * time.Second); alive(shortPid); {
		if time.Now().After(deadline) {
			t.Fatal("the short container did not exit")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	restarted := time.Now()
	d.Start()
	for name, pid := range pids {
		got := strings.TrimSpace(d.Must("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", name))
		if got != fmt.Sprintf("running %d", pid) || !alive(pid) {
			t.Errorf("%s: %q, want running %d", name, got, pid)
		}
	}
	d.waitFor("short", "{{.State.Status}} {{.State.ExitCode}}", "exited 9", 10*time.Second)
	time.Sleep(2500 * time.Millisecond) // ticks after the restart
	for name := range pids {
		ticks := d.tickTimes(name)
		if len(ticks) == 0 || !ticks[0].Before(killed) || !ticks[len(ticks)-1].After(restarted) {
			t.Errorf("%s: %d ticks, not both before the kill and after the restart", name, len(ticks))
			continue
		}
		for i := 1; i < len(ticks); i++ {
			if gap := ticks[i].Sub(ticks[i-1]); gap > 3*time.Second {
				t.Errorf("%s: gap of %v in the ticks at %v", name, gap, ticks[i-1])
			}
		}
	}
	ids := d.ids()
	for name := range pids {
		d.Must("rm", "-f", name)
	}
	d.Must("rm", "short")
	if out := d.Must("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("containers left: %q", out)
	}
	d.checkClean(ids)
}

func TestRestartOnFailure(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	d.Must("run", "-d", "--name", "fail", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
	d.waitFor("fail", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", "exited 1 2", 20*time.Second)
	time.Sleep(time.Second)
	d.waitFor("fail", "{{.State.Status}} {{.RestartCount}} {{.HostConfig.RestartPolicy.Name}}", "exited 2 on-failure", 0)
	if _, errOut, code := d.Silo("run", "-d", "--restart", "sometimes", "busybox", "true"); code == 0 || !strings.Contains(errOut, "restart policy") {
		t.Fatalf("bad policy: exit %d: %s", code, errOut)
	}
	ids := d.ids()
	d.Must("rm", "fail")
	d.checkClean(ids)
}

func TestRestartAlways(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	d.Must("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "1000")
	pid := d.pid("always")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.waitFor("always", "{{.State.Status}} {{.RestartCount}}", "running 1", 10*time.Second)
	if p := d.pid("always"); p == pid || !alive(p) {
		t.Fatalf("pid after the restart: %d (was %d)", p, pid)
	}
	d.Must("stop", "-t", "1", "always")
	time.Sleep(time.Second)
	d.waitFor("always", "{{.State.Status}} {{.RestartCount}}", "exited 1", 0)

	// Across silod restarts: unless-stopped stopped by the user stays
	// stopped; always and unless-stopped whose process went while silod
	// was down are started again.
	d.Must("rm", "always")
	d.Must("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "1000")
	d.Must("run", "-d", "--name", "unless", "--restart", "unless-stopped", "busybox", "sleep", "1000")
	d.Must("run", "-d", "--name", "stopped", "--restart", "unless-stopped", "busybox", "sleep", "1000")
	d.Must("stop", "-t", "0", "stopped")
	p1, p2 := d.pid("always"), d.pid("unless")
	d.Kill9()
	_ = syscall.Kill(p1, syscall.SIGKILL)
	_ = syscall.Kill(p2, syscall.SIGKILL)
	for deadline := time.Now().Add(10 * time.Second); alive(p1) || alive(p2); {
		if time.Now().After(deadline) {
			t.Fatal("processes did not die")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	d.Start()
	d.waitFor("always", "{{.State.Status}} {{.RestartCount}}", "running 1", 10*time.Second)
	d.waitFor("unless", "{{.State.Status}} {{.RestartCount}}", "running 1", 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	d.waitFor("stopped", "{{.State.Status}} {{.RestartCount}}", "exited 0", 0)
	ids := d.ids()
	for _, c := range []string{"always", "unless", "stopped"} {
		d.Must("rm", "-f", c)
	}
	d.checkClean(ids)
}

func TestImport(t *testing.T) {
	d := newDaemon(t)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("no /bin/busybox")
	}
	path := filepath.Join(d.Root, "rootfs.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	_ = tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))})
	_, _ = tw.Write(bb)
	_ = tw.WriteHeader(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	id := strings.TrimSpace(d.Must("import", path, "imported:v1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("import printed %q", id)
	}
	if out := d.Must("images"); !strings.Contains(out, "imported") || !strings.Contains(out, "v1") {
		t.Fatalf("images: %s", out)
	}
	if out := d.Must("run", "--rm", "imported:v1", "/bin/sh", "-c", "echo hello"); out != "hello\n" {
		t.Fatalf("run: %q", out)
	}
	// From stdin.
	out, errOut, code := d.Run("/bin/sh", []string{"-c", fmt.Sprintf("%s --host %s --no-start-daemon import - stdin:latest < %s", harness.RepoBin("silo"), d.Host(), path)}, nil)
	if code != 0 || !strings.HasPrefix(out, "sha256:") {
		t.Fatalf("import from stdin: %d %q %s", code, out, errOut)
	}
	d.checkClean(nil)
}
