//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// seccompCacheDir is where runsilo keeps compiled profiles.
const seccompCacheDir = "/var/cache/runsilo/seccomp"

// TestSeccompFilter: a profile that denies mkdir with EPERM is in force in
// the container's process. The profile names a syscall no kernel has (the
// compiler skips unknown names, as runc's does) that is new on every run,
// so it is never in runsilo's cache: runsilo, built without cgo, compiles
// it through runsilo-helper. The test removes the cache entry it made.
func TestSeccompFilter(t *testing.T) {
	rt := newRuntime(t)
	marker := fmt.Sprintf("silo_test_%d", time.Now().UnixNano())
	t.Cleanup(func() { removeCacheEntries(t, marker) })
	c := rt.NewContainer([]string{"sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?"}, func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat", marker}, Action: specs.ActErrno}},
		}
	})
	res := c.Run()
	if !strings.Contains(res.Stdout, "Operation not permitted") || !strings.Contains(res.Stdout, "rc=1") {
		t.Fatalf("mkdir under a denying filter: %s", res)
	}
	if removeCacheEntries(t, marker) != 1 {
		t.Fatalf("no cache entry for the new profile in %s", seccompCacheDir)
	}
}

// removeCacheEntries removes the seccomp cache entries whose key holds
// marker and returns how many there were.
func removeCacheEntries(t *testing.T, marker string) int {
	t.Helper()
	entries, _ := os.ReadDir(seccompCacheDir)
	n := 0
	for _, e := range entries {
		p := filepath.Join(seccompCacheDir, e.Name())
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(marker)) {
			if err := os.Remove(p); err != nil {
				t.Error(err)
			}
			n++
		}
	}
	return n
}

// TestSeccompNotify: with SCMP_ACT_NOTIFY rules the runtime sends the
// listener fd and the container state to listenerPath, as runc does for
// seccomp agents.
func TestSeccompNotify(t *testing.T) {
	rt := newRuntime(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type got struct {
		state specs.ContainerProcessState
		fds   int
		err   error
	}
	gotc := make(chan got, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			gotc <- got{err: err}
			return
		}
		defer conn.Close()
		buf := make([]byte, 64<<10)
		oob := make([]byte, unix.CmsgSpace(4*4))
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			gotc <- got{err: err}
			return
		}
		var g got
		g.err = json.Unmarshal(buf[:n], &g.state)
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
			if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil {
				g.fds = len(fds)
				for _, fd := range fds {
					unix.Close(fd)
				}
			}
		}
		gotc <- g
	}()
	c := rt.NewContainer([]string{"true"}, func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction:    specs.ActAllow,
			ListenerPath:     sock,
			ListenerMetadata: "silo-test",
			Syscalls:         []specs.LinuxSyscall{{Names: []string{"swapon"}, Action: specs.ActNotify}},
		}
	})
	res := c.Run()
	if res.ExitCode != 0 {
		t.Fatalf("run with a notify profile: %s", res)
	}
	select {
	case g := <-gotc:
		if g.err != nil {
			t.Fatalf("agent: %v", g.err)
		}
		if g.fds != 1 || g.state.State.ID != c.ID || g.state.Metadata != "silo-test" {
			t.Fatalf("agent got %d fds, state %+v", g.fds, g.state)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no listener fd reached the agent")
	}
}

// TestTimeNamespace: a new time namespace with a boottime offset makes
// the container's uptime start near the offset.
func TestTimeNamespace(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"cat", "/proc/uptime"}, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1000000}}
	})
	res := c.Run()
	if res.ExitCode != 0 {
		t.Fatalf("run with a time namespace: %s", res)
	}
	if !strings.HasPrefix(res.Stdout, "10") || len(strings.Fields(res.Stdout)[0]) < 8 {
		t.Fatalf("uptime in the container %q, want 1000000+ seconds", res.Stdout)
	}
}

// TestExecTimeNamespace: exec joins the container's time namespace (only
// a single-threaded process may: runsilo-helper does it) and sees its
// offset.
func TestExecTimeNamespace(t *testing.T) {
	rt := newRuntime(t)
	c := rt.NewContainer([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1000000}}
	})
	c.RunDetached()
	res := c.Exec(nil, "cat", "/proc/uptime")
	if res.ExitCode != 0 || !strings.HasPrefix(res.Stdout, "10") || len(strings.Fields(res.Stdout)[0]) < 8 {
		t.Fatalf("uptime in an exec %q, want 1000000+ seconds: %s", res.Stdout, res)
	}
	rt.Must("kill", c.ID, "KILL")
	c.WaitStatus("stopped", 5*time.Second)
}
