//go:build integration

package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/silo-containers/silo/test/harness"
)

// waitEmpty waits until silo args prints nothing.
func waitEmpty(t *testing.T, d *daemon, args ...string) {
	t.Helper()
	waitOutput(t, d, "", args...)
}

// waitOutput waits until silo args prints want.
func waitOutput(t *testing.T, d *daemon, want string, args ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, _ := d.Silo(args...)
		if out == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("silo %s: %q, want %q", strings.Join(args, " "), out, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func logLines(d *daemon, ref string) int {
	out, _, _ := d.Silo("logs", ref)
	return strings.Count(out, "\n")
}

// TestPauseRestartRename: pause freezes (the log stops growing, the
// freezer says FROZEN), unpause thaws; a paused container can be killed;
// restart gives a new process; rename frees the old name.
func TestPauseRestartRename(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	d.Must("run", "-d", "--name", "ticker", "busybox", "sh", "-c", "while true; do echo tick; sleep 0.05; done")
	waitFor := func(cond func() bool, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out: %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(func() bool { return logLines(d, "ticker") > 2 }, "ticks")
	d.Must("pause", "ticker")
	if s := d.Must("inspect", "-f", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}", "ticker"); s != "paused true true\n" {
		t.Fatalf("inspect after pause: %q", s)
	}
	if ps := d.Must("ps"); !strings.Contains(ps, "(Paused)") {
		t.Fatalf("ps: %q", ps)
	}
	pid := d.pid("ticker")
	if st := procState(pid); st != "frozen" {
		t.Fatalf("init of a paused container is %q", st)
	}
	n := logLines(d, "ticker")
	time.Sleep(300 * time.Millisecond)
	if m := logLines(d, "ticker"); m != n {
		t.Fatalf("a paused container wrote: %d → %d lines", n, m)
	}
	if _, errOut, code := d.Silo("exec", "ticker", "true"); code == 0 || !strings.Contains(errOut, "paused") {
		t.Fatalf("exec in a paused container: exit %d %q", code, errOut)
	}
	d.Must("unpause", "ticker")
	waitFor(func() bool { return logLines(d, "ticker") > n+2 }, "ticks after unpause")

	// A paused container stays paused across a kill -9 of silod.
	d.Must("pause", "ticker")
	d.Kill9()
	d.Start()
	if s := d.Must("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "ticker"); s != fmt.Sprintf("paused %d\n", pid) {
		t.Fatalf("after a daemon restart: %q", s)
	}
	d.Must("unpause", "ticker")
	if st := procState(pid); st != "thawed" {
		t.Fatalf("after unpause the freezer says %q", st)
	}

	// Restart: a new process, the same container.
	d.Must("restart", "-t", "0", "ticker")
	if p := d.pid("ticker"); p == pid || !alive(p) {
		t.Fatalf("restart: pid %d → %d", pid, p)
	}
	// A paused container is killed (thawed after SIGKILL).
	d.Must("pause", "ticker")
	d.Must("kill", "ticker")
	d.waitFor("ticker", "{{.State.Status}}", "exited", 10*time.Second)
	d.Must("rename", "ticker", "tocker")
	if _, _, code := d.Silo("inspect", "ticker"); code == 0 {
		t.Fatal("the old name still resolves")
	}
	d.Must("run", "--name", "ticker", "busybox", "true")
	if out := d.Must("container", "prune", "-f"); strings.Count(out, "\n") < 4 || !strings.Contains(out, "Deleted Containers:") {
		t.Fatalf("prune: %q", out)
	}
	if out := d.Must("ps", "-aq"); out != "" {
		t.Fatalf("prune left %q", out)
	}

	if !harness.HaveDocker() {
		t.Skip("no docker CLI")
	}
	d.DockerOK(t, "run", "-d", "--name", "dp", "busybox", "sleep", "60")
	d.DockerOK(t, "pause", "dp")
	if s := d.DockerOK(t, "inspect", "-f", "{{.State.Status}}", "dp"); s != "paused\n" {
		t.Fatalf("docker inspect: %q", s)
	}
	d.DockerOK(t, "unpause", "dp")
	d.DockerOK(t, "rename", "dp", "dq")
	d.DockerOK(t, "restart", "-t", "0", "dq")
	d.DockerOK(t, "rm", "-f", "dq")
	d.DockerOK(t, "run", "--name", "dexit", "busybox", "true")
	if out := d.DockerOK(t, "container", "prune", "-f"); !strings.Contains(out, "Deleted Containers:") {
		t.Fatalf("docker container prune: %q", out)
	}
	if out := d.DockerOK(t, "image", "prune", "-f"); !strings.Contains(out, "Total reclaimed space") {
		t.Fatalf("docker image prune: %q", out)
	}
}

// procState is the freezer's view of a process: "frozen" when its
// freezer cgroup says FROZEN (v1) or its cgroup.freeze is 1 (v2).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "gone"
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if strings.Contains(","+parts[1]+",", ",freezer,") {
			st, _ := os.ReadFile("/sys/fs/cgroup/freezer" + parts[2] + "/freezer.state")
			return strings.ToLower(strings.TrimSpace(string(st)))
		}
	}
	return "unknown"
}

// TestTopStatsEvents: top lists the container's processes, stats gives
// sane numbers (memory within the limit, pids), events report the
// lifecycle, system df and image history answer; silo and docker.
func TestTopStatsEvents(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	start := time.Now()
	d.Must("run", "-d", "--name", "busy", "-m", "64m", "--init", "busybox", "sh", "-c", "sleep 300 & sleep 301")
	pid := d.pid("busy")

	// Until the init has started the command.
	var top string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if top = d.Must("top", "busy"); strings.Contains(top, "sleep 301") && strings.Contains(top, "sleep 300") {
			break
		}
	}
	if !strings.Contains(top, "PID") || !strings.Contains(top, "sleep 300") || !strings.Contains(top, "sleep 301") ||
		!strings.Contains(top, "/sbin/docker-init") || !strings.Contains(top, strconv.Itoa(pid)) {
		t.Fatalf("top: %q", top)
	}
	if strings.Contains(top, "silod") || strings.Contains(top, "silo-monitor") {
		t.Fatalf("top shows host processes: %q", top)
	}
	if out := d.Must("top", "busy", "-o", "pid,comm"); !strings.Contains(out, "COMMAND") || !strings.Contains(out, "docker-init") {
		t.Fatalf("top -o pid,comm: %q", out)
	}

	stats := d.Must("stats", "--no-stream", "busy")
	// busy   0.00%   380KiB / 64MiB   0.58%   0B / 0B   0B / 0B   4
	re := regexp.MustCompile(`busy\s+([0-9.]+)%\s+([0-9.]+)(B|KiB|MiB) / 64MiB\s+([0-9.]+)%.*\s(\d+)\n`)
	m := re.FindStringSubmatch(stats)
	if m == nil {
		t.Fatalf("stats: %q", stats)
	}
	if pids, _ := strconv.Atoi(m[5]); pids != 3 {
		t.Fatalf("stats pids %s, want 3 (init and two sleeps: sh execs the last one): %q", m[5], stats)
	}
	if mem, _ := strconv.ParseFloat(m[2], 64); mem <= 0 {
		t.Fatalf("stats memory %s: %q", m[2], stats)
	}

	d.Must("stop", "-t", "1", "busy")
	d.Must("rm", "busy")
	until := time.Now()
	ev := d.Must("events", "--since", strconv.FormatInt(start.Unix(), 10), "--until", strconv.FormatInt(until.Unix()+1, 10),
		"--filter", "container=busy")
	var actions []string
	for _, l := range strings.Split(strings.TrimSpace(ev), "\n") {
		f := strings.Fields(l)
		if len(f) > 2 {
			actions = append(actions, f[2])
		}
	}
	if got := strings.Join(actions, " "); got != "create start kill die stop destroy" {
		t.Fatalf("events %q:\n%s", got, ev)
	}

	if out := d.Must("system", "df"); !strings.Contains(out, "Images") || !strings.Contains(out, "Local Volumes") {
		t.Fatalf("system df: %q", out)
	}
	if out := d.Must("image", "history", "busybox"); !strings.Contains(out, "IMAGE") || strings.Count(out, "\n") < 2 {
		t.Fatalf("history: %q", out)
	}
	_, errOut, code := d.Silo("run", "--rm", "--init", "--entrypoint", "", "busybox")
	if code != 125 || !strings.Contains(errOut, "no command") {
		t.Fatalf("--init without a command: %d %q", code, errOut)
	}

	if !harness.HaveDocker() {
		t.Skip("no docker CLI")
	}
	d.DockerOK(t, "run", "-d", "--name", "dbusy", "-m", "32m", "busybox", "sleep", "300")
	if out := d.DockerOK(t, "top", "dbusy"); !strings.Contains(out, "sleep 300") {
		t.Fatalf("docker top: %q", out)
	}
	out := d.DockerOK(t, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}} {{.CPUPerc}}", "dbusy")
	if !regexp.MustCompile(`^dbusy [0-9.]+(B|KiB|MiB) / 32MiB 1 [0-9.]+%\n$`).MatchString(out) {
		t.Fatalf("docker stats: %q", out)
	}
	d.DockerOK(t, "rm", "-f", "dbusy")
	ev = d.DockerOK(t, "events", "--since", strconv.FormatInt(until.Unix(), 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container=dbusy", "--format", "{{.Action}}")
	if got := strings.Fields(ev); strings.Join(got, " ") != "create start kill die destroy" {
		t.Fatalf("docker events: %q", ev)
	}
	if out := d.DockerOK(t, "system", "df"); !strings.Contains(out, "Images") {
		t.Fatalf("docker system df: %q", out)
	}
	if out := d.DockerOK(t, "history", "busybox"); !strings.Contains(out, "IMAGE") {
		t.Fatalf("docker history: %q", out)
	}
}

// TestHealthcheckAndInit: --health-* runs the check through exec; the
// status goes starting → unhealthy → healthy as the check's file comes
// and goes, shows in inspect and ps, and makes health_status events;
// --init runs tini as process 1.
func TestHealthcheckAndInit(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	start := time.Now()
	d.Must("run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok", "--health-interval", "200ms", "--health-retries", "2",
		"busybox", "sleep", "120")
	if s := d.Must("inspect", "-f", "{{.State.Health.Status}}", "hc"); s != "starting\n" {
		t.Fatalf("first status %q", s)
	}
	d.waitFor("hc", "{{.State.Health.Status}}", "unhealthy", 10*time.Second)
	if ps := d.Must("ps"); !strings.Contains(ps, "(unhealthy)") {
		t.Fatalf("ps: %q", ps)
	}
	d.Must("exec", "hc", "touch", "/tmp/ok")
	d.waitFor("hc", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "healthy 0", 10*time.Second)
	if ps := d.Must("ps"); !strings.Contains(ps, "(healthy)") {
		t.Fatalf("ps: %q", ps)
	}
	ev := d.Must("events", "--since", strconv.FormatInt(start.Unix(), 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "event=health_status")
	if !strings.Contains(ev, "health_status: unhealthy") || !strings.Contains(ev, "health_status: healthy") {
		t.Fatalf("events: %q", ev)
	}
	d.Must("rm", "-f", "hc")
	// A check that hangs is killed at its timeout and counts as failed.
	d.Must("run", "-d", "--name", "hang", "--health-cmd", "sleep 30", "--health-interval", "100ms", "--health-timeout", "200ms",
		"--health-retries", "1", "busybox", "sleep", "120")
	d.waitFor("hang", "{{.State.Health.Status}}", "unhealthy", 10*time.Second)
	if out := d.Must("inspect", "-f", "{{(index .State.Health.Log 0).Output}}", "hang"); !strings.Contains(out, "exceeded timeout") {
		t.Fatalf("timeout output %q", out)
	}
	d.Must("rm", "-f", "hang")
	if s := d.Must("run", "--rm", "--no-healthcheck", "busybox", "true"); s != "" {
		t.Fatalf("--no-healthcheck: %q", s)
	}
	// The image's HEALTHCHECK (from a build) applies; --no-healthcheck
	// turns it off.
	ctxDir := t.TempDir()
	if err := os.WriteFile(ctxDir+"/Dockerfile", []byte("FROM busybox\nHEALTHCHECK --interval=200ms --retries=1 CMD test -e /tmp/sick && exit 1 || exit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Must("build", "-t", "checked", ctxDir)
	d.Must("run", "-d", "--name", "img", "checked", "sleep", "120")
	d.waitFor("img", "{{.State.Health.Status}}", "healthy", 10*time.Second)
	d.Must("exec", "img", "touch", "/tmp/sick")
	d.waitFor("img", "{{.State.Health.Status}}", "unhealthy", 10*time.Second)
	d.Must("run", "-d", "--name", "nohc", "--no-healthcheck", "checked", "sleep", "120")
	if s := d.Must("inspect", "-f", "{{.State.Health}} {{.Config.Healthcheck.Test}}", "nohc"); s != "<nil> [NONE]\n" {
		t.Fatalf("--no-healthcheck over the image's: %q", s)
	}
	d.Must("rm", "-f", "img", "nohc")

	// --init: tini is process 1 and reaps; the command's exit code comes through.
	out := d.Must("run", "--rm", "--init", "busybox", "ps", "-o", "pid,args")
	if !regexp.MustCompile(`(?m)^\s*1\s+/sbin/docker-init -- ps -o pid,args$`).MatchString(out) {
		t.Fatalf("--init ps: %q", out)
	}
	if _, _, code := d.Silo("run", "--rm", "--init", "busybox", "sh", "-c", "exit 7"); code != 7 {
		t.Fatalf("--init exit code %d, want 7", code)
	}

	if !harness.HaveDocker() {
		t.Skip("no docker CLI")
	}
	d.DockerOK(t, "run", "-d", "--name", "dhc", "--health-cmd", "true", "--health-interval", "200ms", "busybox", "sleep", "120")
	d.waitFor("dhc", "{{.State.Health.Status}}", "healthy", 10*time.Second)
	if out := d.DockerOK(t, "ps", "--format", "{{.Status}}"); !strings.Contains(out, "(healthy)") {
		t.Fatalf("docker ps: %q", out)
	}
	if out := d.DockerOK(t, "inspect", "-f", "{{.State.Health.Status}}", "dhc"); out != "healthy\n" {
		t.Fatalf("docker inspect: %q", out)
	}
	d.DockerOK(t, "rm", "-f", "dhc")
	if out := d.DockerOK(t, "run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline"); !strings.HasPrefix(out, "/sbin/docker-init") {
		t.Fatalf("docker --init: %q", out)
	}
}

// TestDockerUpdate: `docker update` changes a running container's memory
// limit in its cgroup and its restart policy, keeps them for the next
// start, and refuses what Docker refuses.
func TestDockerUpdate(t *testing.T) {
	if !harness.HaveDocker() {
		t.Skip("no docker CLI")
	}
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	d.DockerOK(t, "run", "-d", "--name", "du", "-m", "64m", "--memory-swap", "128m", "busybox", "sleep", "300")
	pid := func() int {
		p, err := strconv.Atoi(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Pid}}", "du")))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	d.DockerOK(t, "update", "--memory", "96m", "--memory-swap", "192m", "--pids-limit", "50", "--restart", "on-failure:3", "du")
	if limit := memoryLimit(t, pid()); limit != 96<<20 {
		t.Fatalf("memory limit after update %d, want %d", limit, 96<<20)
	}
	if s := d.DockerOK(t, "inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "du"); s != fmt.Sprintf("%d 50 on-failure:3\n", 96<<20) {
		t.Fatalf("inspect after update: %q", s)
	}
	// Above the swap limit without a new one: refused, nothing changed.
	if _, errOut, code := d.Run(harness.DockerCLI, []string{"update", "--memory", "256m", "du"}, d.DockerEnv()); code == 0 || !strings.Contains(errOut, "memoryswap") {
		t.Fatalf("update above the swap limit: exit %d, %q", code, errOut)
	}
	d.DockerOK(t, "restart", "-t", "0", "du")
	if limit := memoryLimit(t, pid()); limit != 96<<20 {
		t.Fatalf("memory limit after a restart %d, want %d", limit, 96<<20)
	}
	// ps --format and -s, silo against docker.
	for _, args := range [][]string{
		{"ps", "--format", `{{.Names}} {{.State}} {{.Image}} {{.Command}}`},
		{"ps", "--format", `table {{.Names}}\t{{.Status}}`},
		{"ps", "-s", "--format", "{{.Names}}"},
	} {
		if silo, docker := d.Must(args...), d.DockerOK(t, args...); silo != docker || silo == "" {
			t.Errorf("%q: silo %q, docker %q", args, silo, docker)
		}
	}
	if out := d.Must("ps", "-s", "--format", "{{.Size}}"); !strings.Contains(out, "virtual") {
		t.Errorf("ps -s: %q", out)
	}
	// silo's own CLI.
	if out := d.Must("update", "-m", "80m", "du"); out != "du\n" {
		t.Fatalf("silo update printed %q", out)
	}
	if limit := memoryLimit(t, pid()); limit != 80<<20 {
		t.Fatalf("memory limit after silo update %d, want %d", limit, 80<<20)
	}
	d.DockerOK(t, "rm", "-f", "du")
}

// TestDiffExport: diff lists what a container added, changed and deleted
// (not the mount points the runtime made), export gives its root file
// system as a tar without what it deleted; silo and docker.
func TestDiffExport(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	d.Must("run", "--name", "dx", "-v", "/data", "busybox", "sh", "-c", "touch /tmp/x; rm /bin/ls; mkdir -p /new/dir; echo hi > /etc/motd")
	want := "C /bin\nD /bin/ls\nC /etc\nA /etc/motd\nA /new\nA /new/dir\nC /tmp\nA /tmp/x\n"
	if out := d.Must("diff", "dx"); out != want {
		t.Fatalf("silo diff:\n%s\nwant:\n%s", out, want)
	}
	file := filepath.Join(t.TempDir(), "dx.tar")
	d.Must("export", "-o", file, "dx")
	names := map[string]bool{}
	for _, n := range tarNames(t, file) {
		names[n] = true
	}
	for _, n := range []string{"./tmp/x", "./new/dir/", "./etc/motd", "./bin/sh"} {
		if !names[n] {
			t.Errorf("export lacks %s", n)
		}
	}
	if names["./bin/ls"] {
		t.Error("export has the deleted /bin/ls")
	}
	if !harness.HaveDocker() {
		t.Skip("no docker CLI")
	}
	if out := d.DockerOK(t, "diff", "dx"); out != want {
		t.Fatalf("docker diff:\n%s\nwant:\n%s", out, want)
	}
	file2 := filepath.Join(t.TempDir(), "dx2.tar")
	d.DockerOK(t, "export", "-o", file2, "dx")
	if got := tarNames(t, file2); len(got) != len(names) {
		t.Fatalf("docker export: %d entries, silo export %d", len(got), len(names))
	}
	d.DockerOK(t, "rm", "-v", "dx")
}

// TestRunFlags: silo run's environment-file, security and resource flags
// reach the container; create, container ls and rmi.
func TestRunFlags(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("A=1\n# a comment\n\nFROM_HOST\nC=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FROM_HOST", "x")
	for _, tc := range []struct {
		args []string
		out  string
		code int
	}{
		{[]string{"--env-file", envFile, "-e", "C=flag", "busybox", "sh", "-c", "echo $A $FROM_HOST $C"}, "1 x flag\n", 0},
		{[]string{"--read-only", "busybox", "sh", "-c", "touch /x 2>/dev/null || echo refused"}, "refused\n", 0},
		{[]string{"--cap-drop", "chown", "busybox", "sh", "-c", "chown 1 /tmp 2>/dev/null || echo refused"}, "refused\n", 0},
		{[]string{"--security-opt", "no-new-privileges", "busybox", "sh", "-c", "grep NoNewPrivs /proc/self/status"}, "NoNewPrivs:\t1\n", 0},
		{[]string{"--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n"}, "100\n", 0},
	} {
		args := append([]string{"run", "--rm"}, tc.args...)
		out, errOut, code := d.Silo(args...)
		if out != tc.out || code != tc.code {
			t.Errorf("silo %q: exit %d, %q %q; want %q", args, code, out, errOut, tc.out)
		}
	}
	id := strings.TrimSpace(d.Must("create", "--name", "cr", "--cpu-shares", "512", "--cpuset-cpus", "0", "-m", "64m", "--memory-swap", "128m", "busybox", "echo", "created"))
	if len(id) != 64 {
		t.Fatalf("create printed %q", id)
	}
	if s := d.Must("inspect", "-f", "{{.State.Status}} {{.HostConfig.CPUShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.MemorySwap}}", "cr"); s != fmt.Sprintf("created 512 0 %d\n", 128<<20) {
		t.Fatalf("created container: %q", s)
	}
	if out := d.Must("container", "ls", "-a", "--format", "{{.Names}} {{.State}}"); !strings.Contains(out, "cr created") {
		t.Fatalf("container ls: %q", out)
	}
	d.Must("start", "cr")
	if code := d.Must("wait", "cr"); code != "0\n" {
		t.Fatalf("wait: %q", code)
	}
	if out := d.Must("logs", "cr"); out != "created\n" {
		t.Fatalf("logs: %q", out)
	}
	d.Must("rm", "cr")
	d.Must("tag", "busybox", "silo-test-rmi:1")
	if out := d.Must("rmi", "silo-test-rmi:1"); !strings.Contains(out, "Untagged: silo-test-rmi:1") {
		t.Fatalf("rmi: %q", out)
	}
	// images NAME, --filter, --format: silo against docker.
	d.Must("tag", "busybox", "silo-test-images:7")
	for _, args := range [][]string{
		{"images", "--format", "{{.Repository}}:{{.Tag}}", "silo-test-images"},
		{"images", "--filter", "reference=silo-test-*:7", "--format", "table {{.Repository}}\t{{.Tag}}"},
		{"images", "--filter", "dangling=true", "-q"},
	} {
		silo := d.Must(args...)
		if docker, _, code := d.Run(harness.DockerCLI, args, d.DockerEnv()); harness.HaveDocker() && (code != 0 || docker != silo) {
			t.Errorf("%q: silo %q, docker %q (exit %d)", args, silo, docker, code)
		}
	}
	if out := d.Must("images", "--format", "{{.Repository}}:{{.Tag}}", "silo-test-images"); out != "silo-test-images:7\n" {
		t.Fatalf("images NAME: %q", out)
	}
	d.Must("rmi", "silo-test-images:7")
	// system prune and system info.
	gone := strings.TrimSpace(d.Must("create", "busybox", "true"))
	if out := d.Must("system", "prune", "-f"); !strings.Contains(out, "Deleted Containers:\n"+gone) || !strings.Contains(out, "Total reclaimed space") {
		t.Fatalf("system prune: %q", out)
	}
	if out := d.Must("ps", "-aq"); out != "" {
		t.Fatalf("after system prune: %q", out)
	}
	if out := d.Must("system", "info"); out == "" {
		t.Fatal("system info printed nothing")
	}
}
