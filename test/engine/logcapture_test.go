//go:build integration

package engine

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/silo-containers/silo/test/harness"
)

// TestLogCapture runs a container with the LogMonitor counterpart on: log
// files inside the container (followed across a rotation and a
// truncation) and its /dev/log socket land in the container's log, next
// to its stdout, and nothing outside the container is read.
func TestLogCapture(t *testing.T) {
	d := newDaemon(t)
	d.Must("image", "build-busybox")

	// A host file the container names through an absolute symlink: with
	// RESOLVE_IN_ROOT the link resolves inside the container, where the
	// path does not exist.
	secret := filepath.Join(d.Root, "secret.log")
	if err := os.WriteFile(secret, []byte("HOST-SECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := strings.Join([]string{
		"mkdir -p /var/log/app",
		"ln -s " + secret + " /var/log/app/evil.log",
		"ln -s ../../../../../../../.." + secret + " /var/log/app/evil2.log",
		"echo one > /var/log/app/a.log",
		"logger -t myapp hello-syslog",
		"sleep 0.6",
		"echo two >> /var/log/app/a.log",
		// Rotation by rename: the old file is drained, the new one read.
		"mv /var/log/app/a.log /var/log/app/a.log.1",
		"echo three > /var/log/app/a.log",
		"sleep 0.6",
		"echo four >> /var/log/app/a.log",
		"sleep 0.6",
		// copytruncate: read again from the start.
		": > /var/log/app/a.log",
		"sleep 0.6",
		"echo five >> /var/log/app/a.log",
		"echo ignored > /var/log/app/b.txt",
		"printf 'no-newline' > /var/log/app/c.log",
		"echo stdout-line",
		"sleep 0.6",
	}, "; ")
	d.Must("run", "-d", "--name", "cap",
		"--log-opt", "capture-files=/var/log/app/*.log",
		"--log-opt", "capture-syslog=true",
		"--log-opt", "max-size=1m",
		"busybox", "sh", "-c", script)
	if code := strings.TrimSpace(d.Must("wait", "cap")); code != "0" {
		t.Fatalf("exit %s; logs:\n%s", code, d.Must("logs", "cap"))
	}
	logs := d.Must("logs", "cap")
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	var fileLines []string
	for _, l := range lines {
		switch l {
		case "one", "two", "three", "four", "five":
			fileLines = append(fileLines, l)
		}
	}
	if strings.Join(fileLines, " ") != "one two three four five" {
		t.Errorf("captured file lines %q; logs:\n%s", fileLines, logs)
	}
	for _, want := range []string{"myapp: hello-syslog", "stdout-line", "no-newline"} {
		if !slices.Contains(lines, want) {
			t.Errorf("no line %q in the logs:\n%s", want, logs)
		}
	}
	for _, bad := range []string{"HOST-SECRET", "ignored"} {
		if strings.Contains(logs, bad) {
			t.Errorf("%q captured:\n%s", bad, logs)
		}
	}
	// The json-file entries name their source in attrs, as Docker's
	// json-file driver writes attributes.
	logPath := strings.TrimSpace(d.Must("inspect", "-f", "{{.LogPath}}", "cap"))
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"log":"one\n","stream":"stdout","attrs":{"source":"/var/log/app/a.log"},"time":"`,
		`{"log":"myapp: hello-syslog\n","stream":"stdout","attrs":{"facility":"user","severity":"notice","source":"syslog"},"time":"`,
		`{"log":"stdout-line\n","stream":"stdout","time":"`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("no %s in %s:\n%s", want, logPath, raw)
		}
	}

	if out := d.Must("logs", "--details", "cap"); !strings.Contains(out, "source=%2Fvar%2Flog%2Fapp%2Fa.log one\n") ||
		!strings.Contains(out, "facility=user,severity=notice,source=syslog myapp: hello-syslog\n") || !strings.Contains(out, "\n stdout-line\n") {
		t.Errorf("silo logs --details:\n%s", out)
	}
	if harness.HaveDocker() {
		out := d.DockerOK(t, "logs", "--details", "cap")
		for _, want := range []string{"source=%2Fvar%2Flog%2Fapp%2Fa.log one\n", "facility=user,severity=notice,source=syslog myapp: hello-syslog\n", " stdout-line\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("docker logs --details: no %q in\n%s", want, out)
			}
		}
		if out := d.DockerOK(t, "logs", "cap"); !slices.Contains(strings.Split(out, "\n"), "myapp: hello-syslog") || !strings.Contains(out, "\nfive\n") {
			t.Errorf("docker logs:\n%s", out)
		}
	}
	d.Must("rm", "cap")

	t.Run("follow while running", func(t *testing.T) {
		d.Must("run", "-d", "--name", "live", "--log-opt", "capture-files=/tmp/x.log",
			"busybox", "sh", "-c", "for i in 1 2 3; do echo line$i >> /tmp/x.log; sleep 0.3; done")
		out := d.Must("logs", "-f", "live")
		if out != "line1\nline2\nline3\n" {
			t.Fatalf("logs -f: %q", out)
		}
		d.Must("rm", "live")
	})

	// The capture is the monitor's: it goes on while silod is down.
	t.Run("silod killed", func(t *testing.T) {
		d.Must("run", "-d", "--name", "alone", "--log-opt", "capture-files=/tmp/x.log", "--log-opt", "capture-syslog=true",
			"busybox", "sh", "-c", "sleep 0.5; for i in 1 2 3 4 5; do echo f$i >> /tmp/x.log; logger -t s s$i; sleep 0.2; done")
		d.Kill9()
		time.Sleep(1500 * time.Millisecond)
		d.Start()
		d.Must("wait", "alone")
		want := "f1 s: s1 f2 s: s2 f3 s: s3 f4 s: s4 f5 s: s5"
		got := strings.Split(strings.TrimSpace(d.Must("logs", "alone")), "\n")
		// Files are polled: order the two sources apart.
		var files, sys []string
		for _, l := range got {
			if strings.HasPrefix(l, "f") {
				files = append(files, l)
			} else {
				sys = append(sys, l)
			}
		}
		if strings.Join(files, " ") != "f1 f2 f3 f4 f5" || strings.Join(sys, ",") != "s: s1,s: s2,s: s3,s: s4,s: s5" {
			t.Fatalf("logs %q, want the lines of %q", got, want)
		}
		d.Must("rm", "alone")
	})

	// Each start binds the socket again (the mount names its path) and
	// files written by an earlier run are not read again.
	t.Run("start again", func(t *testing.T) {
		d.Must("run", "-d", "--name", "again", "--log-opt", "capture-syslog=true", "--log-opt", "capture-files=/again.log",
			"busybox", "sh", "-c", "logger -t run $(cat /proc/uptime); echo file-$(cat /proc/uptime) >> /again.log; sleep 0.6")
		d.Must("wait", "again")
		d.Must("start", "again")
		d.Must("wait", "again")
		logs := d.Must("logs", "again")
		var sys, file int
		for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
			switch {
			case strings.HasPrefix(l, "run: "):
				sys++
			case strings.HasPrefix(l, "file-"):
				file++
			}
		}
		if sys != 2 || file != 2 {
			t.Fatalf("after two runs: %d syslog and %d file lines, want 2 and 2:\n%s", sys, file, logs)
		}
		d.Must("rm", "again")
	})

	t.Run("off by default", func(t *testing.T) {
		out, _, code := d.Silo("run", "--rm", "busybox", "sh", "-c", "ls /dev/log 2>&1; true")
		if code != 0 || !strings.Contains(out, "No such file") {
			t.Fatalf("without capture-syslog: exit %d, %q", code, out)
		}
	})

	// The local driver: its own binary format, rotated and gzipped, read
	// by silo logs and docker logs, followed across rotations by the
	// foreground run (which follows the log).
	t.Run("local driver", func(t *testing.T) {
		var want strings.Builder
		for i := 1; i <= 100; i++ {
			want.WriteString("line " + strconv.Itoa(i) + "\n")
		}
		out, errOut, code := d.Silo("run", "--name", "loc", "--log-driver", "local",
			"--log-opt", "max-size=1k", "--log-opt", "max-file=10",
			"--log-opt", "capture-files=/tmp/cap.log",
			"busybox", "sh", "-c", "for i in $(seq 100); do echo line $i; sleep 0.005; done; echo captured > /tmp/cap.log; sleep 0.6")
		if code != 0 || out != want.String()+"captured\n" {
			t.Fatalf("run: exit %d, stderr %q, stdout %q", code, errOut, out)
		}
		if logs := d.Must("logs", "loc"); logs != want.String()+"captured\n" {
			t.Fatalf("logs: %q", logs)
		}
		if logs := d.Must("logs", "--tail", "2", "loc"); logs != "line 100\ncaptured\n" {
			t.Fatalf("logs --tail 2: %q", logs)
		}
		logPath := strings.TrimSpace(d.Must("inspect", "-f", "{{.LogPath}}", "loc"))
		if filepath.Base(logPath) != "container.log" {
			t.Fatalf("LogPath %s", logPath)
		}
		if gz, _ := filepath.Glob(logPath + ".*.gz"); len(gz) < 2 {
			t.Fatalf("rotated files: %v", gz)
		}
		if raw, _ := os.ReadFile(logPath); strings.Contains(string(raw), `"log"`) {
			t.Fatalf("json in the local log")
		}
		if harness.HaveDocker() {
			if out := d.DockerOK(t, "logs", "--details", "--tail", "1", "loc"); out != "source=%2Ftmp%2Fcap.log captured\n" {
				t.Errorf("docker logs --details: %q", out)
			}
		}
		d.Must("rm", "loc")
		_, errOut, code = d.Silo("run", "--rm", "--log-driver", "syslog", "busybox", "true")
		if code != 125 || !strings.Contains(errOut, `log driver "syslog": only json-file and local are supported`) {
			t.Fatalf("--log-driver syslog: exit %d, %q", code, errOut)
		}
	})

	t.Run("bad options", func(t *testing.T) {
		for _, tc := range []struct{ opt, want string }{
			{"capture-files=var/log/a.log", "want an absolute path"},
			{"capture-files=/var/*/a.log", "only the last element"},
			{"capture-files=/var/log/[", "malformed glob"},
			{"capture-syslog=maybe", "want true or false"},
			{"max-file=0", "max-file"},
			{"bogus=1", "unknown to the json-file driver"},
		} {
			_, errOut, code := d.Silo("run", "--rm", "--log-opt", tc.opt, "busybox", "true")
			if code != 125 || !strings.Contains(errOut, tc.want) {
				t.Errorf("--log-opt %s: exit %d, %q", tc.opt, code, errOut)
			}
		}
		if ps := d.Must("ps", "-aq"); strings.TrimSpace(ps) != "" {
			t.Errorf("a refused create left a container: %q", ps)
		}
	})
}
