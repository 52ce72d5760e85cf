//go:build integration

package integration

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// sha256File returns the hex sha256 of a file.
func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// randomToken returns a random hex string for markers.
func randomToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// attackScript is the container init of the CVE-2019-5736 test. It waits for
// a process in the container whose executable is not busybox (the runtime
// re-executed through /proc/self/exe), opens that executable read-only, lets
// the runtime go on by reading /fifo (the runtime is blocked opening it as its
// --log), and then tries for two seconds to write to the executable through
// /proc/self/fd/5: the way the original exploit overwrote the host's runc.
const attackScript = `
echo ready > /ready
i=0
while [ $i -lt 3000 ]; do
  i=$((i+1))
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = 1 ] && continue
    exe=$(readlink "$d/exe" 2>/dev/null) || continue
    case "$exe" in ""|/bin/busybox) continue;; esac
    echo "target pid=$p exe=$exe" >> /result
    (
      exec 5< "$d/exe" || { echo "open-failed" >> /result; exit 1; }
      echo "opened" >> /result
      cat /fifo > /dev/null &
      n=0
      while [ $n -lt 200 ]; do
        if printf 'PWNED' >> /proc/self/fd/5 2>/dev/null; then echo "WROTE-TO-RUNTIME" >> /result; break; fi
        n=$((n+1))
        usleep 10000
      done
    )
    echo "finished" >> /result
    exec sleep 1000
  done
  usleep 5000
done
echo "no-target" >> /result
echo "finished" >> /result
exec sleep 1000
`

// TestCVE_2019_5736 checks that a process in the container cannot overwrite
// the runtime binary on the host through /proc/<pid>/exe when the runtime is
// made to execute itself inside the container, either directly (exec of
// /proc/self/exe) or through a "#!/proc/self/exe" script replacing /bin/sh.
// The runtime under test is a copy, so a vulnerable runtime damages only the
// copy; the test fails if the copy's sha256 changes.
func TestCVE_2019_5736(t *testing.T) {
	orig := requireRuntime(t)
	for _, tc := range []struct {
		name string
		exec []string // process given to "exec"
	}{
		{"exec-proc-self-exe", []string{"/proc/self/exe", "--log", "/fifo", "list"}},
		{"shebang-bin-sh", []string{"/bin/sh"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			copyPath := filepath.Join(t.TempDir(), filepath.Base(orig))
			if err := copyFile(orig, copyPath, 0o755); err != nil {
				t.Fatal(err)
			}
			before := sha256File(t, copyPath)
			rt := newRuntimeAt(t, copyPath)

			c := rt.NewContainer([]string{"/bin/busybox", "sh", "/attack.sh"})
			if err := os.WriteFile(filepath.Join(c.Rootfs, "attack.sh"), []byte(attackScript), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(filepath.Join(c.Rootfs, "fifo"), 0o666); err != nil {
				t.Fatal(err)
			}
			// /bin/sh becomes a script whose interpreter is the runtime
			// itself; its one argument makes the runtime block on the fifo.
			sh := filepath.Join(c.Rootfs, "bin/sh")
			_ = os.Remove(sh)
			if err := os.WriteFile(sh, []byte("#!/proc/self/exe --log=/fifo\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			c.RunDetached()
			if !eventually(10*time.Second, func() bool { _, err := os.Stat(filepath.Join(c.Rootfs, "ready")); return err == nil }) {
				t.Fatalf("attack script did not start; stderr: %s", readFile(c.StderrPath))
			}

			st := c.State()
			stopWatch := make(chan struct{})
			watched := make(chan []heldExe, 1)
			procsFile := filepath.Join(cgroupMounts(t)["pids"], c.CgroupsPath, "cgroup.procs")
			go func() {
				watched <- holdExecutables(st.Pid, procsFile, filepath.Join(c.Rootfs, "bin/busybox"), stopWatch)
			}()
			done := make(chan Result, 1)
			go func() { done <- c.Exec(nil, tc.exec...) }()
			resultPath := filepath.Join(c.Rootfs, "result")
			var res Result
			select {
			case res = <-done:
			case <-time.After(20 * time.Second):
				// The runtime still blocks on the fifo because the attack
				// never saw it: killing the container ends it.
				rt.Run("kill", c.ID, "KILL")
				res = <-done
			}
			// The attack's write attempts last two seconds after the
			// runtime it caught has exited.
			eventually(3*time.Second, func() bool { return strings.Contains(readFile(resultPath), "finished") })
			close(stopWatch)
			// The fast attacker: the same reopen-for-write through a held
			// descriptor, done from Go for every executable seen in the
			// container's pid namespace (a shell loop can miss a runtime that
			// lives a few milliseconds).
			for _, h := range <-watched {
				w, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", h.f.Fd()), os.O_WRONLY|os.O_APPEND, 0)
				if err == nil {
					if _, err = w.Write([]byte("PWNED")); err == nil {
						t.Errorf("CVE-2019-5736: executable %s of a process in the container can be written through /proc/<pid>/exe", h.name)
					}
					w.Close()
				}
				t.Logf("held executable %s: reopen for write: %v", h.name, err)
				h.f.Close()
			}
			result := readFile(resultPath)
			t.Logf("exec %q: exit %d; attack log:\n%s", tc.exec, res.ExitCode, result)
			if !strings.Contains(result, "opened") {
				t.Logf("note: the attack never got hold of a runtime executable in the container (the runtime may not run itself there); only the binary check below applies")
			}
			if after := sha256File(t, copyPath); after != before {
				t.Errorf("CVE-2019-5736: the runtime binary on the host was modified from inside the container (sha256 %s -> %s)", before, after)
			}
			if strings.Contains(result, "WROTE-TO-RUNTIME") {
				t.Errorf("CVE-2019-5736: the container wrote to the runtime's executable via /proc/self/fd")
			}
		})
	}
}

// TestCVE_2019_5736_Entrypoint: a container whose own process is
// /proc/self/exe runs the binary of whatever made the execve inside the
// container: the exec'd init's read-only clone of the runtime, or the
// direct init's trampoline (from a writable runtime). That must not be the
// writable file on the host, neither while it runs nor once it has exited.
func TestCVE_2019_5736_Entrypoint(t *testing.T) {
	for _, tc := range []struct{ name, execInit string }{{"trampoline", ""}, {"exec-init", "1"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SILO_EXEC_INIT", tc.execInit)
			testEntrypointSelfExe(t)
		})
	}
}

func testEntrypointSelfExe(t *testing.T) {
	orig := requireRuntime(t)
	copyPath := filepath.Join(t.TempDir(), filepath.Base(orig))
	if err := copyFile(orig, copyPath, 0o755); err != nil {
		t.Fatal(err)
	}
	before := sha256File(t, copyPath)
	rt := newRuntimeAt(t, copyPath)
	// The runtime logs the unknown command's error to its --log file: the
	// fifo holds it there. The trampoline, run again, just fails.
	c := rt.NewContainer([]string{"/proc/self/exe", "--log", "/fifo", "no-such-command"})
	fifo := filepath.Join(c.Rootfs, "fifo")
	if err := syscall.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	c.Create()
	// Waiting for start, the init runs the exec'd init's clone of the
	// runtime, or the trampoline: neither is the writable file either.
	hold := func() (name string, tryWrite func(when string)) {
		exe := fmt.Sprintf("/proc/%d/exe", c.State().Pid)
		held, err := os.OpenFile(exe, unix.O_PATH, 0)
		if err != nil {
			t.Logf("the process is gone (status %s): %v", c.State().Status, err)
			return "", func(string) {}
		}
		t.Cleanup(func() { held.Close() })
		name, _ = os.Readlink(exe)
		return name, func(when string) {
			w, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", held.Fd()), os.O_WRONLY|os.O_APPEND, 0)
			if err == nil {
				_, err = w.Write([]byte("PWNED"))
				w.Close()
				if err == nil {
					t.Errorf("CVE-2019-5736: the container's process runs %s, writable %s", name, when)
				}
			}
			t.Logf("%s (%s): reopen for write: %v", name, when, err)
		}
	}
	name, tryWriteWaiting := hold()
	tryWriteWaiting("waiting for start")
	if trampoline := os.Getenv("SILO_EXEC_INIT") != "1"; trampoline && !strings.Contains(name, "memfd:runsilo-init") {
		t.Errorf("waiting for start, the init runs %q, not the trampoline", name)
	}
	c.Start()
	_, tryWrite := hold()
	tryWrite("while it runs")
	// Lets a process blocked on the fifo go on and exit.
	if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
		time.Sleep(50 * time.Millisecond)
		r.Close()
	}
	c.WaitStatus("stopped", 10*time.Second)
	tryWriteWaiting("after it exited")
	tryWrite("after it exited")
	if after := sha256File(t, copyPath); after != before {
		t.Errorf("CVE-2019-5736: the runtime binary on the host was modified (sha256 %s -> %s)", before, after)
	}
}

// heldExe is an executable of a container process, opened through
// /proc/<pid>/exe.
type heldExe struct {
	f    *os.File
	name string
}

// holdExecutables polls the container's cgroup.procs until stop is closed
// and, for every process in the pid namespace of initPid that runs something
// other than busybox, opens /proc/<pid>/exe read-only and keeps it open: what
// a process in the container can do to any process it can see.
func holdExecutables(initPid int, procsFile, busybox string, stop <-chan struct{}) []heldExe {
	var held []heldExe
	nsOf := func(pid int) string { l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); return l }
	initNS := nsOf(initPid)
	var bb syscall.Stat_t
	_ = syscall.Stat(busybox, &bb)
	seen := map[[2]uint64]bool{}
	for {
		select {
		case <-stop:
			return held
		default:
		}
		b, _ := os.ReadFile(procsFile)
		for _, p := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(p)
			if pid == initPid || nsOf(pid) != initNS {
				continue
			}
			f, err := os.Open(fmt.Sprintf("/proc/%d/exe", pid))
			if err != nil {
				continue
			}
			var st syscall.Stat_t
			if err := syscall.Fstat(int(f.Fd()), &st); err != nil || seen[[2]uint64{st.Dev, st.Ino}] || (st.Dev == bb.Dev && st.Ino == bb.Ino) {
				f.Close()
				continue
			}
			seen[[2]uint64{st.Dev, st.Ino}] = true
			target, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			held = append(held, heldExe{f, fmt.Sprintf("%q (pid %d)", target, pid)})
		}
	}
}

// readFile returns a file's content, or "" if it cannot be read.
func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestCVE_2024_21626 checks that a working directory naming a file descriptor
// of the runtime (/proc/self/fd/N) cannot leave the container: the process
// must either be refused or see only the container's files. A host marker
// file is looked up through "../../.." from the cwd; it must stay invisible.
func TestCVE_2024_21626(t *testing.T) {
	rt := newRuntime(t)
	token := randomToken()
	marker := filepath.Join(t.TempDir(), "marker-"+token)
	if err := os.WriteFile(marker, []byte("HOST-MARKER-"+token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", 40)
	probe := fmt.Sprintf("readlink /proc/self/cwd; cat %s%s 2>&1; ls %s 2>&1", up, strings.TrimPrefix(marker, "/"), up+strings.TrimPrefix(filepath.Dir(marker), "/"))
	leaked := func(t *testing.T, how string, res Result) {
		t.Helper()
		if strings.Contains(res.Stdout, "HOST-MARKER-") || strings.Contains(res.Stdout, "marker-"+token) {
			t.Errorf("CVE-2024-21626: %s reached the host through a leaked fd: %s", how, res)
		}
	}

	t.Run("run", func(t *testing.T) {
		for fd := 3; fd <= 12; fd++ {
			c := newRuntimeAt(t, rt.Path).NewContainer([]string{"sh", "-c", probe}, func(s *specs.Spec) {
				s.Process.Cwd = fmt.Sprintf("/proc/self/fd/%d", fd)
			})
			res := c.Run()
			leaked(t, fmt.Sprintf("process.cwd /proc/self/fd/%d", fd), res)
		}
	})

	t.Run("exec", func(t *testing.T) {
		c := newRuntimeAt(t, rt.Path).NewContainer([]string{"sleep", "1000"})
		c.RunDetached()
		for fd := 3; fd <= 12; fd++ {
			res := c.Exec([]string{"--cwd", fmt.Sprintf("/proc/self/fd/%d", fd)}, "sh", "-c", probe)
			leaked(t, fmt.Sprintf("exec --cwd /proc/self/fd/%d", fd), res)
		}
	})
}

// TestNoLeakedFds checks that the container's processes (init and exec'd) have
// no file descriptors beyond stdio: a leaked descriptor of the runtime is the
// root of CVE-2024-21626.
func TestNoLeakedFds(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"sleep", "1000"})
	c.RunDetached()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"init", []string{"ls", "-l", "/proc/1/fd"}},
		{"exec", []string{"sh", "-c", "exec ls -l /proc/self/fd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := c.Exec(nil, tc.args...)
			if res.Err != nil {
				t.Fatalf("%s", res)
			}
			for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
				f := strings.Fields(line)
				if len(f) < 9 || f[0] == "total" {
					continue
				}
				fd := f[8]
				if fd == "0" || fd == "1" || fd == "2" {
					continue
				}
				// ls itself holds the directory it lists open.
				if tc.name == "exec" && len(f) == 9 {
					continue
				}
				if tc.name == "exec" && len(f) >= 11 && strings.HasPrefix(f[10], "/proc/") {
					continue
				}
				t.Errorf("container process has an extra fd: %s", line)
			}
		})
	}
}

// TestCVE_2021_30465 checks that mount destinations are resolved inside the
// rootfs: a destination under a symlink that points at a host directory
// (absolutely, or by climbing with "..") must not create or mount anything in
// that host directory; the mount must appear inside the container instead.
func TestCVE_2021_30465(t *testing.T) {
	rt := newRuntime(t)
	hostDir := t.TempDir() // the directory the symlinks aim at
	token := randomToken()
	if err := os.WriteFile(filepath.Join(hostDir, "marker"), []byte(token), 0o644); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir() // bind source
	if err := os.WriteFile(filepath.Join(src, "from-source"), []byte("bound-"+token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel := strings.Repeat("../", 30) + strings.TrimPrefix(hostDir, "/")

	for _, tc := range []struct {
		name   string
		target string // symlink target of /link in the rootfs
		dest   string // mount destination
		typ    string
	}{
		{"absolute-symlink-parent-bind", hostDir, "/link/sub", "bind"},
		{"relative-symlink-parent-bind", rel, "/link/sub", "bind"},
		{"absolute-symlink-final-bind", hostDir, "/link", "bind"},
		{"relative-symlink-final-tmpfs", rel, "/link", "tmpfs"},
		{"root-symlink-parent-tmpfs", "/", "/link" + hostDir + "/sub", "tmpfs"},
		{"dotdot-destination-bind", "", "/../../../../../../.." + hostDir + "/sub", "bind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := specs.Mount{Destination: tc.dest, Type: "tmpfs", Source: "tmpfs", Options: []string{"size=80k"}}
			if tc.typ == "bind" {
				m = specs.Mount{Destination: tc.dest, Type: "bind", Source: src, Options: []string{"rbind", "ro"}}
			}
			c := newRuntimeAt(t, rt.Path).NewContainer(
				[]string{"sh", "-c", "cat /proc/self/mountinfo; echo ---; ls -a " + tc.dest + " 2>&1; cat " + tc.dest + "/from-source 2>&1; true"},
				func(s *specs.Spec) { s.Mounts = append(s.Mounts, m) })
			if tc.target != "" {
				if err := os.Symlink(tc.target, filepath.Join(c.Rootfs, "link")); err != nil {
					t.Fatal(err)
				}
			}
			res := c.Run()

			ents, err := os.ReadDir(hostDir)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != 1 || ents[0].Name() != "marker" || readFile(filepath.Join(hostDir, "marker")) != token {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("CVE-2021-30465: the host directory the symlink points at was changed: %q", names)
			}
			for _, mi := range readMountInfo(t) {
				if mi.MountPoint == hostDir || strings.HasPrefix(mi.MountPoint, hostDir+"/") {
					t.Errorf("CVE-2021-30465: mount on the host at %s", mi.MountPoint)
				}
			}
			if res.Err != nil {
				t.Logf("runtime refused the mount (acceptable): %s", res)
				return
			}
			// The mount took effect inside the container: for a bind, its
			// content is visible at the destination seen from inside.
			if tc.typ == "bind" && !strings.Contains(res.Stdout, "bound-"+token) {
				t.Errorf("bind mount not visible at %s inside the container:\n%s", tc.dest, res.Stdout)
			}
			if tc.typ == "tmpfs" && !strings.Contains(res.Stdout, "size=80k") {
				t.Errorf("tmpfs mount missing inside the container:\n%s", res.Stdout)
			}
		})
	}
}
