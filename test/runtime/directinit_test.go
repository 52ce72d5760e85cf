//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// probeScript prints what the container's set-up decides: mounts and
// their options, /dev, identity, capabilities, limits, cgroups, names,
// sysctls, masked and read-only paths.
const probeScript = `cat /proc/self/mounts; cut -d' ' -f5- /proc/self/mountinfo | sed 's/shared:[0-9]*/shared/; s/master:[0-9]*/master/'; ls -ln /dev /dev/pts; readlink /dev/fd; readlink /dev/ptmx; readlink /dev/stdin;
hostname; cat /proc/sys/kernel/domainname; id; umask; pwd; grep -E '^(Cap|NoNewPrivs|Seccomp:|SigBlk|SigIgn|SigCgt)' /proc/self/status;
ulimit -n; ulimit -u; cat /proc/self/oom_score_adj; cat /proc/self/cgroup; ls /sys/fs/cgroup;
cat /proc/sys/net/ipv4/ip_forward; cat /proc/kcore 2>&1 | head -c 40; echo; ls /proc/acpi 2>&1;
touch /proc/sys/x 2>&1; touch /x 2>&1; mkdir /tmp/d 2>&1 && rmdir /tmp/d; ls /proc/self/fd; echo done`

// directFlavour is a way the direct init runs: from a read-only runtime
// binary as it is, or from a writable one through the trampoline.
type directFlavour struct {
	name   string
	rt     func(*testing.T) *Runtime
	marker string // in the --debug trace
}

var directFlavours = []directFlavour{
	{"read-only runtime", readOnlyRuntime, "fork init (direct)"},
	{"writable runtime, trampoline", func(t *testing.T) *Runtime { return newRuntimeAt(t, requireRuntime(t)) }, "trampoline made"},
}

// eachDirectFlavour runs fn as a subtest per flavour.
func eachDirectFlavour(t *testing.T, fn func(t *testing.T, f directFlavour)) {
	for _, f := range directFlavours {
		t.Run(f.name, func(t *testing.T) { fn(t, f) })
	}
}

// runBoth runs the container's process once through the direct init and
// once through the exec'd one (SILO_EXEC_INIT=1) and returns both results.
func runBoth(t *testing.T, c *Container, f directFlavour) (direct, execd Result) {
	t.Helper()
	return bothWays(t, c, f.marker, "run", "-b", c.Bundle, c.ID)
}

// bothWays runs the runtime command args with --debug, once as it is and
// once with SILO_EXEC_INIT=1, and checks from the trace that only the
// first took the direct path (its trace says marker).
func bothWays(t *testing.T, c *Container, marker string, args ...string) (direct, execd Result) {
	t.Helper()
	run := func(env ...string) Result {
		cmd := c.rt.Command(append([]string{"--debug"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		return runCmd(cmd)
	}
	direct, execd = run(), run("SILO_EXEC_INIT=1")
	if !strings.Contains(direct.Stderr, marker) {
		t.Fatalf("%q did not take the direct path: %s", args[0], direct)
	}
	if strings.Contains(execd.Stderr, marker) {
		t.Fatalf("SILO_EXEC_INIT=1 took the direct path: %s", execd)
	}
	return direct, execd
}

// TestDirectInitParity: for specs the direct init takes, the container
// sees exactly what the exec'd init gives it, and fails the same way.
func TestDirectInitParity(t *testing.T) {
	uid, gid := uint32(1000), uint32(1000)
	umask := uint32(0o027)
	adj := 300
	for _, tt := range []struct {
		name string
		opt  SpecOpt
	}{
		{"defaults", func(s *specs.Spec) {}},
		{"read-only root, user, limits, sysctl, devices", func(s *specs.Spec) {
			s.Root.Readonly = true
			s.Domainname = "example.org"
			s.Process.User = specs.User{UID: uid, GID: gid, AdditionalGids: []uint32{10, 20}, Umask: &umask}
			s.Process.Cwd = "/tmp"
			s.Process.OOMScoreAdj = &adj
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NPROC", Hard: 77, Soft: 66})
			s.Process.Capabilities.Ambient = []string{"CAP_KILL"}
			s.Process.Capabilities.Inheritable = []string{"CAP_KILL"}
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
			mode := os.FileMode(0o640)
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/sub/null2", Type: "c", Major: 1, Minor: 3, FileMode: &mode, UID: &uid, GID: &gid}}
			s.Linux.RootfsPropagation = "rslave"
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=1777", "rprivate"}},
				specs.Mount{Destination: "/mnt/shared", Type: "tmpfs", Source: "tmpfs", Options: []string{"shared"}})
		}},
		{"binds", func(s *specs.Spec) {
			dir, _ := os.MkdirTemp("", "silo-bind-")
			t.Cleanup(func() { os.RemoveAll(dir) })
			os.WriteFile(dir+"/f", []byte("bound\n"), 0o644)
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/data/ro", Type: "bind", Source: dir, Options: []string{"rbind", "ro", "nosuid"}},
				specs.Mount{Destination: "/etc/bound", Type: "bind", Source: dir + "/f", Options: []string{"bind", "rprivate"}},
				specs.Mount{Destination: "/data/rro", Type: "none", Source: dir, Options: []string{"rbind", "rro", "nodev"}},
				specs.Mount{Destination: "/data/rel", Type: "bind", Source: "rootfs/etc", Options: []string{"bind"}})
			s.Process.Args = []string{"sh", "-c", probeScript + "; cat /etc/bound /data/ro/f; touch /data/ro/x /etc/bound 2>&1; echo done"}
		}},
		{"joined network namespace (the test's own)", func(s *specs.Spec) {
			for i := range s.Linux.Namespaces {
				if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
					s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
				}
			}
		}},
		{"no cgroup namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.CgroupNamespace })
		}},
		{"seccomp", func(s *specs.Spec) {
			s.Process.NoNewPrivileges = false
			s.Linux.Seccomp = &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			eachDirectFlavour(t, func(t *testing.T, f directFlavour) {
				c := f.rt(t).NewContainer([]string{"sh", "-c", probeScript}, tt.opt)
				direct, execd := runBoth(t, c, f)
				if execd.Err != nil || !strings.Contains(execd.Stdout, "done") {
					t.Fatalf("exec'd init: %s", execd)
				}
				if direct.Stdout != execd.Stdout || direct.ExitCode != execd.ExitCode {
					t.Fatalf("the direct init differs from the exec'd one:\n--- direct (exit %d)\n%s\n--- exec'd (exit %d)\n%s",
						direct.ExitCode, direct.Stdout, execd.ExitCode, execd.Stdout)
				}
			})
		})
	}
	t.Run("missing executable", func(t *testing.T) {
		eachDirectFlavour(t, func(t *testing.T, f directFlavour) {
			c := f.rt(t).NewContainer([]string{"no-such-binary"})
			direct, execd := runBoth(t, c, f)
			for _, r := range []Result{direct, execd} {
				if r.Err == nil || !strings.Contains(r.Stderr, "executable file not found") {
					t.Errorf("run of a missing binary: %s", r)
				}
			}
		})
	})
	t.Run("script without its interpreter", func(t *testing.T) {
		// Found and executable, so only the execve fails: in the
		// trampoline, with a writable runtime.
		eachDirectFlavour(t, func(t *testing.T, f directFlavour) {
			c := f.rt(t).NewContainer([]string{"/bin/script", "arg"})
			if err := os.WriteFile(c.Rootfs+"/bin/script", []byte("#!/no/such/shell\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			direct, execd := runBoth(t, c, f)
			for _, r := range []Result{direct, execd} {
				if r.Err == nil || !strings.Contains(r.Stderr, `exec "/bin/script": no such file or directory`) {
					t.Errorf("run of a script without its interpreter: %s", r)
				}
			}
		})
	})
	t.Run("late failure names the step", func(t *testing.T) {
		// After the fds are closed: reported on the pipe all the same.
		eachDirectFlavour(t, func(t *testing.T, f directFlavour) {
			c := f.rt(t).NewContainer([]string{"true"}, func(s *specs.Spec) { s.Process.Cwd = "/no/such/dir" })
			direct, execd := runBoth(t, c, f)
			for _, r := range []Result{direct, execd} {
				if r.Err == nil || !strings.Contains(r.Stderr, `process.cwd: chdir "/no/such/dir"`) {
					t.Errorf("run with a missing cwd: %s", r)
				}
			}
		})
	})
	t.Run("mount failure names the step", func(t *testing.T) {
		eachDirectFlavour(t, func(t *testing.T, f directFlavour) {
			c := f.rt(t).NewContainer([]string{"true"}, func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=nonsense"}})
			})
			direct, execd := runBoth(t, c, f)
			for _, r := range []Result{direct, execd} {
				if r.Err == nil || !strings.Contains(r.Stderr, "tmpfs on /mnt") {
					t.Errorf("run with a bad tmpfs option: %s", r)
				}
			}
		})
	})
}

// TestTrampolineRefused: a seccomp filter that would stop the trampoline
// (here: its fcntl) sends a container and an exec started from a writable
// runtime through the exec'd init, which works.
func TestTrampolineRefused(t *testing.T) {
	rt := newRuntimeAt(t, requireRuntime(t))
	c := rt.NewContainer([]string{"echo", "started"}, func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"fcntl"}, Action: specs.ActErrno}}}
	})
	r := runCmd(rt.Command("--debug", "run", "-b", c.Bundle, c.ID))
	if r.Err != nil || r.Stdout != "started\n" {
		t.Fatalf("run: %s", r)
	}
	if !strings.Contains(r.Stderr, "trampoline refused") || strings.Contains(r.Stderr, "fork init (direct)") {
		t.Fatalf("run did not fall back to the exec'd init: %s", r.Stderr)
	}
	rt.Run("delete", c.ID)
	c.Spec.Process.Args = []string{"sleep", "600"}
	c.WriteSpec()
	c.RunDetached()
	r = runCmd(rt.Command("--debug", "exec", c.ID, "echo", "exec'd"))
	if r.Err != nil || r.Stdout != "exec'd\n" {
		t.Fatalf("exec: %s", r)
	}
	if !strings.Contains(r.Stderr, "trampoline refused") || strings.Contains(r.Stderr, "fork exec (direct)") {
		t.Fatalf("exec did not fall back to the exec'd init: %s", r.Stderr)
	}
}

// execProbe prints what an exec'd process gets: identity, capabilities,
// signal state, limits, namespaces, cgroups, cwd, environment, fds.
const execProbe = `id; umask; pwd; echo "$FOO"; grep -E '^(Cap|NoNewPrivs|Seccomp:|SigBlk|SigIgn|SigCgt)' /proc/self/status;
ulimit -n; cat /proc/self/oom_score_adj; cat /proc/self/cgroup; ls -l /proc/self/ns | sed 's/.* -> //'; hostname;
ls /proc/self/fd; mkdir /tmp/d 2>&1 && rmdir /tmp/d; echo done`

// execBoth runs "exec [extra...] ID args..." once through the direct exec
// and once through the exec'd init and returns both results.
func execBoth(t *testing.T, c *Container, f directFlavour, extra []string, args ...string) (direct, execd Result) {
	t.Helper()
	a := append(append([]string{"exec"}, extra...), c.ID)
	marker := "fork exec (direct)"
	if f.marker == "trampoline made" {
		marker = f.marker
	}
	return bothWays(t, c, marker, append(a, args...)...)
}

// TestDirectExecParity: a process the direct exec starts sees what the
// exec'd init gives it, and fails the same way: from a read-only runtime,
// and from a writable one through the trampoline.
func TestDirectExecParity(t *testing.T) {
	for _, tt := range []struct {
		name  string
		opt   SpecOpt
		extra []string
	}{
		{"defaults", func(s *specs.Spec) {}, nil},
		{"user, cwd, env, capabilities", func(s *specs.Spec) {}, []string{"--cwd", "/tmp", "-u", "1000:1000", "-e", "FOO=bar", "--cap", "CAP_NET_RAW"}},
		{"container's seccomp and limits", func(s *specs.Spec) {
			s.Process.NoNewPrivileges = false
			adj := 200
			s.Process.OOMScoreAdj = &adj
			s.Linux.Seccomp = &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
			}
		}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			eachDirectFlavour(t, func(t *testing.T, f directFlavour) {
				c := f.rt(t).NewContainer([]string{"sleep", "600"}, tt.opt)
				c.RunDetached()
				direct, execd := execBoth(t, c, f, tt.extra, "sh", "-c", execProbe)
				if execd.Err != nil || !strings.Contains(execd.Stdout, "done") {
					t.Fatalf("exec'd init: %s", execd)
				}
				if direct.Stdout != execd.Stdout || direct.ExitCode != execd.ExitCode {
					t.Fatalf("the direct exec differs from the exec'd init:\n--- direct (exit %d)\n%s\n--- exec'd (exit %d)\n%s",
						direct.ExitCode, direct.Stdout, execd.ExitCode, execd.Stdout)
				}
			})
		})
	}
	eachDirectFlavour(t, func(t *testing.T, f directFlavour) {
		c := f.rt(t).NewContainer([]string{"sleep", "600"})
		c.RunDetached()
		for _, tt := range []struct {
			name  string
			extra []string
			args  []string
			code  int
			err   string
		}{
			{"exit status", nil, []string{"sh", "-c", "exit 7"}, 7, ""},
			{"session leader", nil, []string{"sh", "-c", `[ "$(cut -d' ' -f6 /proc/$$/stat)" = $$ ]`}, 0, ""},
			{"missing executable", nil, []string{"no-such-binary"}, 1, "executable file not found"},
			{"missing cwd", []string{"--cwd", "/no/such/dir"}, []string{"true"}, 1, `chdir "/no/such/dir"`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				direct, execd := execBoth(t, c, f, tt.extra, tt.args...)
				for _, r := range []Result{direct, execd} {
					if r.ExitCode != tt.code || !strings.Contains(r.Stderr, tt.err) {
						t.Errorf("want exit %d and %q: %s", tt.code, tt.err, r)
					}
				}
			})
		}
	})
}

// TestExecRefusedDuringSetUp: while a direct init from a writable runtime
// is still the runtime's binary (here: during the createRuntime hooks),
// exec refuses to put a process beside it, which could open its
// /proc/<pid>/exe (CVE-2019-5736).
func TestExecRefusedDuringSetUp(t *testing.T) {
	rt := newRuntimeAt(t, requireRuntime(t))
	out := filepath.Join(t.TempDir(), "exec.out")
	var c *Container
	c = rt.NewContainer([]string{"true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c",
			`id=$(sed 's/.*"id": *"\([^"]*\)".*/\1/'); "$0" --root "$1" exec "$id" true >"$2" 2>&1; echo "exit $?" >>"$2"`,
			rt.Path, rt.Root, out}}}}
	})
	r := runCmd(rt.Command("--debug", "run", "-b", c.Bundle, c.ID))
	if r.Err != nil || !strings.Contains(r.Stderr, "trampoline made") {
		t.Fatalf("run: %s", r)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "is still being set up") || !strings.Contains(string(got), "exit 1") {
		t.Fatalf("exec during set-up: %s", got)
	}
}
