//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestRunExitStatus checks that "run" in the foreground passes the container
// process's output and exit status through.
func TestRunExitStatus(t *testing.T) {
	rt := newRuntime(t)
	for _, tc := range []struct {
		name     string
		args     []string
		wantExit int
		wantOut  string
	}{
		{"true", []string{"/bin/true"}, 0, ""},
		{"false", []string{"/bin/false"}, 1, ""},
		{"exit-3", []string{"sh", "-c", "exit 3"}, 3, ""},
		{"stdout", []string{"echo", "hello"}, 0, "hello\n"},
		{"child-killed-by-signal", []string{"sh", "-c", "sh -c 'kill -9 $$'; exit $?"}, 128 + 9, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRuntimeAt(t, rt.Path)
			c := rt.NewContainer(tc.args)
			res := c.Run()
			if res.ExitCode != tc.wantExit {
				t.Fatalf("exit %d, want %d: %s", res.ExitCode, tc.wantExit, res)
			}
			if res.Stdout != tc.wantOut {
				t.Errorf("stdout %q, want %q", res.Stdout, tc.wantOut)
			}
			if res := rt.Run("state", c.ID); res.Err == nil {
				t.Errorf("state of a container that ran in the foreground still exists: %s", res.Stdout)
			}
		})
	}
}

// TestRunKilled checks that a foreground "run" whose container is killed
// from outside exits with 128+signal, as runc does.
func TestRunKilled(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"sleep", "1000"})
	done := make(chan Result, 1)
	go func() { done <- c.Run() }()
	if !eventually(5*time.Second, func() bool { st, err := rt.State(c.ID); return err == nil && st.Status == "running" }) {
		t.Fatal("foreground container never reached running")
	}
	rt.Must("kill", c.ID, "KILL")
	select {
	case res := <-done:
		if res.ExitCode != 128+9 {
			t.Errorf("exit %d, want %d: %s", res.ExitCode, 128+9, res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after kill")
	}
}

// TestLifecycle walks create -> created -> start -> running -> kill ->
// stopped -> delete, with the error cases on the way.
func TestLifecycle(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"sleep", "1000"})
	c.Create()

	st := c.State()
	if st.Status != "created" || st.Pid <= 0 {
		t.Fatalf("after create: status %q pid %d, want created with pid > 0", st.Status, st.Pid)
	}
	if st.ID != c.ID || st.Bundle != c.Bundle {
		t.Errorf("state id/bundle = %q/%q, want %q/%q", st.ID, st.Bundle, c.ID, c.Bundle)
	}
	if res := rt.Run("create", "-b", c.Bundle, c.ID); res.Err == nil {
		t.Errorf("second create with the same id succeeded")
	}

	c.Start()
	st = c.WaitStatus("running", 5*time.Second)
	if res := rt.Run("start", c.ID); res.Err == nil {
		t.Errorf("start of a running container succeeded")
	}
	if res := rt.Run("delete", c.ID); res.Err == nil {
		t.Fatalf("delete of a running container without -f succeeded")
	}
	if procStart(st.Pid) == "" {
		t.Fatalf("container process %d is gone after a refused delete", st.Pid)
	}

	rt.Must("kill", c.ID, "KILL")
	c.WaitStatus("stopped", 5*time.Second)
	if res := rt.Run("kill", c.ID, "KILL"); res.Err == nil {
		t.Errorf("kill of a stopped container succeeded")
	}

	rt.Must("delete", c.ID)
	if res := rt.Run("state", c.ID); res.Err == nil {
		t.Errorf("state after delete succeeded: %s", res.Stdout)
	}
	if res := rt.Run("delete", c.ID); res.Err == nil {
		t.Errorf("delete of a deleted container succeeded")
	}
}

// TestDeleteForce checks that "delete -f" kills and removes a running container.
func TestDeleteForce(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"sleep", "1000"})
	st := c.RunDetached()
	rt.Must("delete", "-f", c.ID)
	if !eventually(5*time.Second, func() bool { return procStart(st.Pid) == "" }) {
		t.Errorf("process %d still alive after delete -f", st.Pid)
	}
	if res := rt.Run("state", c.ID); res.Err == nil {
		t.Errorf("state after delete -f succeeded")
	}
}

// TestKillSignal checks that kill delivers the named signal.
func TestKillSignal(t *testing.T) {
	rt := newRuntime(t)
	// PID 1 ignores signals it has no handler for, so trap them.
	c := rt.NewContainer([]string{"sh", "-c", `trap 'echo got-usr1' USR1; trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done`})
	c.RunDetached()
	c.WaitStdout("ready", 5*time.Second)
	rt.Must("kill", c.ID, "USR1")
	c.WaitStdout("got-usr1", 5*time.Second)
	rt.Must("kill", c.ID, "SIGTERM")
	c.WaitStdout("got-term", 5*time.Second)
	c.WaitStatus("stopped", 5*time.Second)
}

// TestList checks "list -q" and "list --format json".
func TestList(t *testing.T) {
	rt := newRuntime(t)
	running := rt.NewContainer([]string{"sleep", "1000"})
	running.RunDetached()
	created := rt.NewContainer([]string{"sleep", "1000"})
	created.Create()

	ids := strings.Fields(rt.Must("list", "-q"))
	slices.Sort(ids)
	want := []string{running.ID, created.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("list -q = %q, want %q", ids, want)
	}

	var list []State
	out := rt.Must("list", "--format", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list --format json: %v: %q", err, out)
	}
	got := map[string]State{}
	for _, s := range list {
		got[s.ID] = s
	}
	for id, status := range map[string]string{running.ID: "running", created.ID: "created"} {
		s, ok := got[id]
		if !ok {
			t.Errorf("list json lacks %s: %s", id, out)
			continue
		}
		if s.Status != status || s.Pid <= 0 {
			t.Errorf("list json %s: status %q pid %d, want %q with pid > 0", id, s.Status, s.Pid, status)
		}
	}

	if out := rt.Must("list"); !strings.Contains(out, "ID") || !strings.Contains(out, running.ID) {
		t.Errorf("list table lacks header or id: %q", out)
	}
}

// TestPs checks "ps" (table, via the host's ps) and "ps --format json".
func TestPs(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"sleep", "1000"})
	st := c.RunDetached()

	var pids []int
	out := rt.Must("ps", "--format", "json", c.ID)
	if err := json.Unmarshal([]byte(out), &pids); err != nil {
		t.Fatalf("ps --format json: %v: %q", err, out)
	}
	if !slices.Contains(pids, st.Pid) {
		t.Errorf("ps json %v lacks init pid %d", pids, st.Pid)
	}

	out = rt.Must("ps", c.ID)
	if !strings.Contains(out, "PID") || !strings.Contains(out, "sleep 1000") || !strings.Contains(out, strconv.Itoa(st.Pid)) {
		t.Errorf("ps table lacks header, command or pid %d: %q", st.Pid, out)
	}
}

// TestExec runs processes inside a running container.
func TestExec(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"sleep", "1000"})
	c.RunDetached()

	procFile := filepath.Join(t.TempDir(), "process.json")
	p := specs.Process{
		Args: []string{"sh", "-c", `echo "from-json $SILO_VAR $(pwd) $(id -u)"; exit 4`},
		Env:  []string{"PATH=/bin", "SILO_VAR=json-env"},
		Cwd:  "/home/silo",
		User: specs.User{UID: 1000, GID: 1000},
	}
	data, _ := json.Marshal(p)
	if err := os.WriteFile(procFile, data, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		extra    []string
		args     []string
		wantExit int
		wantOut  string
	}{
		{"stdout", nil, []string{"echo", "hi"}, 0, "hi\n"},
		{"exit-code", nil, []string{"sh", "-c", "exit 7"}, 7, ""},
		{"env", []string{"--env", "FOO=bar"}, []string{"sh", "-c", `echo "$FOO"`}, 0, "bar\n"},
		{"cwd", []string{"--cwd", "/tmp"}, []string{"pwd"}, 0, "/tmp\n"},
		{"user", []string{"--user", "1000:1000"}, []string{"id", "-u"}, 0, "1000\n"},
		{"same-pid-namespace", nil, []string{"sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"}, 0, "sleep 1000 "},
		{"process-json", []string{"-p", procFile}, nil, 4, "from-json json-env /home/silo 1000\n"},
		{"missing-binary", nil, []string{"/no/such/binary"}, -2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := c.Exec(tc.extra, tc.args...)
			if tc.wantExit == -2 {
				if res.Err == nil {
					t.Fatalf("exec of a missing binary succeeded: %s", res)
				}
				return
			}
			if res.ExitCode != tc.wantExit || res.Stdout != tc.wantOut {
				t.Errorf("got exit %d stdout %q, want %d %q\n%s", res.ExitCode, res.Stdout, tc.wantExit, tc.wantOut, res)
			}
		})
	}

	// exec -d leaves the process running in the container.
	if res := c.detachedCommand("exec", "-d", c.ID, "sleep", "999"); res.Err != nil {
		t.Fatalf("exec -d: %s", res)
	}
	var pids []int
	if !eventually(5*time.Second, func() bool {
		_ = json.Unmarshal([]byte(rt.Must("ps", "--format", "json", c.ID)), &pids)
		return len(pids) == 2
	}) {
		t.Errorf("after exec -d: pids %v, want 2", pids)
	}

	// An exec into a stopped container fails.
	rt.Must("kill", c.ID, "KILL")
	c.WaitStatus("stopped", 5*time.Second)
	if res := c.Exec(nil, "true"); res.Err == nil {
		t.Errorf("exec into a stopped container succeeded")
	}
}

// TestExecUserNamespace: exec joins the container's user namespace (the
// part runsilo hands to runsilo-helper, as a threaded Go process may not)
// and runs as its root, with the container's mapping.
func TestExecUserNamespace(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	})
	// The namespace's root is an unprivileged host user: it must be able
	// to reach the rootfs through the test's private temporary directories.
	for _, d := range []string{filepath.Dir(c.Bundle), c.Bundle} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.RunDetached()
	res := c.Exec(nil, "sh", "-c", "id -u; cat /proc/self/uid_map")
	if fields := strings.Fields(res.Stdout); res.ExitCode != 0 || len(fields) != 4 || fields[0] != "0" || fields[2] != "100000" {
		t.Fatalf("exec in a user namespace: %s", res)
	}
	rt.Must("kill", c.ID, "KILL")
	c.WaitStatus("stopped", 5*time.Second)
}

// TestPauseResume freezes and thaws a container.
func TestPauseResume(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done"})
	c.RunDetached()
	count := func() string { b, _ := os.ReadFile(filepath.Join(c.Rootfs, "tmp/count")); return string(b) }
	if !eventually(5*time.Second, func() bool { return count() != "" }) {
		t.Fatal("counter never started")
	}

	rt.Must("pause", c.ID)
	c.WaitStatus("paused", 5*time.Second)
	time.Sleep(100 * time.Millisecond)
	frozen := count()
	time.Sleep(300 * time.Millisecond)
	if now := count(); now != frozen {
		t.Errorf("paused container still runs: count %q -> %q", frozen, now)
	}
	if res := rt.Run("pause", c.ID); res.Err == nil {
		t.Logf("note: pause of a paused container succeeded (runc accepts it too)")
	}

	rt.Must("resume", c.ID)
	c.WaitStatus("running", 5*time.Second)
	if !eventually(5*time.Second, func() bool { return count() != frozen }) {
		t.Errorf("resumed container does not run: count stays %q", frozen)
	}
	if res := rt.Run("resume", c.ID); res.Err == nil {
		t.Errorf("resume of a running container succeeded")
	}
}

// TestEventsStats checks the one-shot JSON of "events --stats".
func TestEventsStats(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"sleep", "1000"})
	c.RunDetached()

	out := rt.Must("events", "--stats", c.ID)
	var ev struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			CPU struct {
				Usage struct {
					Total uint64 `json:"total"`
				} `json:"usage"`
			} `json:"cpu"`
			Memory struct {
				Usage struct {
					Usage uint64 `json:"usage"`
					Limit uint64 `json:"limit"`
				} `json:"usage"`
			} `json:"memory"`
			Pids *struct {
				Current uint64 `json:"current"`
			} `json:"pids"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("events --stats: %v: %q", err, out)
	}
	if ev.Type != "stats" || ev.ID != c.ID {
		t.Errorf("type/id = %q/%q, want stats/%s", ev.Type, ev.ID, c.ID)
	}
	if ev.Data.CPU.Usage.Total == 0 {
		t.Errorf("no cpu usage in %s", out)
	}
	if ev.Data.Memory.Usage.Usage == 0 || ev.Data.Memory.Usage.Limit == 0 {
		t.Errorf("no memory usage/limit in %s", out)
	}
	if ev.Data.Pids == nil || ev.Data.Pids.Current < 1 {
		t.Errorf("no pids.current in %s", out)
	}
}

// TestMemoryLimit checks linux.resources.memory.limit from config.json and
// "update --memory" against the cgroup the container's process is in.
func TestMemoryLimit(t *testing.T) {
	rt := newRuntime(t)
	limit := int64(256 << 20)
	c := rt.NewContainer([]string{"sleep", "1000"}, func(s *specs.Spec) {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	})
	st := c.RunDetached()
	file := cgroupFile(t, st.Pid, "memory", "memory.limit_in_bytes")
	if !strings.Contains(file, c.CgroupsPath) {
		t.Errorf("container's memory cgroup %s is not at cgroupsPath %s", file, c.CgroupsPath)
	}
	if got := readInt(t, file); got != limit {
		t.Errorf("memory.limit_in_bytes from config = %d, want %d", got, limit)
	}

	for _, tc := range []struct {
		arg  string
		want int64
	}{
		{"134217728", 128 << 20},
		{"64m", 64 << 20},
	} {
		rt.Must("update", "--memory", tc.arg, c.ID)
		if got := readInt(t, file); got != tc.want {
			t.Errorf("after update --memory %s: memory.limit_in_bytes = %d, want %d", tc.arg, got, tc.want)
		}
	}

	// update -r reads a LinuxResources document.
	pidsLimit := int64(42)
	res := specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &pidsLimit}}
	data, _ := json.Marshal(res)
	rfile := filepath.Join(t.TempDir(), "resources.json")
	if err := os.WriteFile(rfile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rt.Must("update", "-r", rfile, c.ID)
	if got := readInt(t, cgroupFile(t, st.Pid, "pids", "pids.max")); got != pidsLimit {
		t.Errorf("after update -r: pids.max = %d, want %d", got, pidsLimit)
	}
}

// TestProcessConfig runs one-shot containers whose config.json sets a process
// or rootfs property, and checks what the process sees.
func TestProcessConfig(t *testing.T) {
	rt := newRuntime(t)
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "data.txt"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nofile := specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1024}

	for _, tc := range []struct {
		name     string
		opt      SpecOpt
		args     []string
		wantExit int
		want     []string // regexps the stdout must match
		check    func(t *testing.T, c *Container)
	}{
		{
			name: "hostname",
			opt:  func(s *specs.Spec) { s.Hostname = "silo-host-42" },
			args: []string{"hostname"},
			want: []string{`^silo-host-42\n$`},
		},
		{
			name: "readonly-rootfs",
			opt:  func(s *specs.Spec) { s.Root.Readonly = true },
			args: []string{"sh", "-c", "touch /x 2>&1; echo rc=$?; echo ok > /tmp/y 2>/dev/null || echo tmp-ro"},
			want: []string{`Read-only file system`, `rc=1`, `tmp-ro`},
			check: func(t *testing.T, c *Container) {
				if _, err := os.Stat(filepath.Join(c.Rootfs, "x")); err == nil {
					t.Errorf("readonly rootfs got /x written")
				}
			},
		},
		{
			name: "user",
			opt: func(s *specs.Spec) {
				s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{100}}
			},
			args: []string{"id"},
			want: []string{`uid=1000\(silo\) gid=1000\(silo\)`, `groups=.*100\(users\)`},
		},
		{
			name: "env-and-cwd",
			opt: func(s *specs.Spec) {
				s.Process.Env = append(s.Process.Env, "SILO_FOO=bar baz")
				s.Process.Cwd = "/home/silo"
			},
			args: []string{"sh", "-c", `echo "foo=$SILO_FOO"; pwd`},
			want: []string{`^foo=bar baz\n/home/silo\n$`},
		},
		{
			name: "tmpfs-mount",
			opt: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "size=1m"}})
			},
			args: []string{"sh", "-c", "grep ' /scratch ' /proc/mounts; echo x > /scratch/f && cat /scratch/f"},
			want: []string{`tmpfs /scratch tmpfs rw,nosuid.*size=1024k`, `\nx\n$`},
		},
		{
			name: "bind-mount",
			opt: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: hostDir, Options: []string{"rbind", "rw"}})
			},
			args: []string{"sh", "-c", "cat /data/data.txt; echo from-container > /data/out.txt"},
			want: []string{`^from-host\n$`},
			check: func(t *testing.T, c *Container) {
				b, err := os.ReadFile(filepath.Join(hostDir, "out.txt"))
				if err != nil || string(b) != "from-container\n" {
					t.Errorf("file written through the bind mount: %q, %v", b, err)
				}
			},
		},
		{
			name: "readonly-bind-mount",
			opt: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: hostDir, Options: []string{"rbind", "ro"}})
			},
			args: []string{"sh", "-c", "cat /data/data.txt; touch /data/new 2>/dev/null && echo writable || echo readonly"},
			want: []string{`^from-host\nreadonly\n$`},
		},
		{
			name: "rlimits",
			opt:  func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{nofile} },
			args: []string{"cat", "/proc/self/limits"},
			want: []string{`Max open files\s+512\s+1024\s`},
		},
		{
			// Sysctls are written before /proc/sys becomes read-only (it is
			// in runc spec's readonlyPaths); podman sets this one by default.
			name: "sysctl",
			opt: func(s *specs.Spec) {
				s.Linux.Sysctl = map[string]string{"net.ipv4.ping_group_range": "0 0"}
			},
			args: []string{"cat", "/proc/sys/net/ipv4/ping_group_range"},
			want: []string{`^0\s+0\n$`},
		},
		{
			name: "pid-namespace",
			args: []string{"sh", "-c", "echo $$; ps -o pid,comm | wc -l"},
			want: []string{`^1\n`},
		},
		{
			name: "default-capabilities",
			args: []string{"grep", "-E", "^(CapEff|CapBnd|NoNewPrivs)", "/proc/self/status"},
			// runc spec: AUDIT_WRITE, KILL, NET_BIND_SERVICE; noNewPrivileges true
			want: []string{`CapEff:\s+0+20000420\n`, `CapBnd:\s+0+20000420\n`, `NoNewPrivs:\s+1`},
		},
		{
			// /proc/keys and /proc/acpi are in runc spec's maskedPaths and
			// exist on this host; /proc/sys is in readonlyPaths.
			name: "masked-and-readonly-paths",
			args: []string{"sh", "-c", "wc -c < /proc/keys; ls /proc/acpi | wc -l; echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-ro"},
			want: []string{`^0\n0\nsys-ro\n$`},
		},
		{
			name: "network-namespace-has-only-lo",
			args: []string{"sh", "-c", "ls /sys/class/net"},
			want: []string{`^lo\n$`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRuntimeAt(t, rt.Path)
			var opts []SpecOpt
			if tc.opt != nil {
				opts = append(opts, tc.opt)
			}
			c := rt.NewContainer(tc.args, opts...)
			res := c.Run()
			if res.ExitCode != tc.wantExit {
				t.Fatalf("exit %d, want %d: %s", res.ExitCode, tc.wantExit, res)
			}
			for _, w := range tc.want {
				if !regexp.MustCompile(w).MatchString(res.Stdout) {
					t.Errorf("stdout %q does not match %q", res.Stdout, w)
				}
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}
