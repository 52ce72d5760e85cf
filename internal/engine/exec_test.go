package engine

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestMergeExecEnv(t *testing.T) {
	got := mergeExecEnv([]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3"})
	if want := []string{"PATH=/bin", "A=2", "B=3"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestExecProcess(t *testing.T) {
	bundle := t.TempDir()
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs/etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "rootfs/etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(bundle, "rootfs/etc/group"), []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
	spec := specs.Spec{
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"sleep", "60"}, Env: []string{"PATH=/bin", "A=1"}, Cwd: "/", Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}}},
	}
	raw, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := execProcess(bundle, container.ExecCreateRequest{Cmd: []string{"sh", "-c", "id"}, Env: []string{"A=2"}, WorkingDir: "/tmp", User: "nobody", Tty: true, ConsoleSize: &[2]uint{30, 100}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Args, []string{"sh", "-c", "id"}) || !slices.Equal(p.Env, []string{"PATH=/bin", "A=2"}) || p.Cwd != "/tmp" ||
		p.User.UID != 65534 || p.User.GID != 65534 || !p.Terminal || p.ConsoleSize == nil || p.ConsoleSize.Height != 30 ||
		p.Capabilities == nil || p.Capabilities.Bounding[0] != "CAP_CHOWN" {
		t.Fatalf("process %+v", p)
	}
	if _, err := execProcess(bundle, container.ExecCreateRequest{Cmd: []string{"id"}, User: "nosuchuser"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("unknown user: %v", err)
	}
}

// execMonitors adds a fake ExecRunner to fakeMonitors: each process
// prints its arguments and exits 3, or does not start ("nosuchcmd").
type execMonitors struct {
	*fakeMonitors
	mu   sync.Mutex
	runs []ExecRun
}

func (m *execMonitors) RunExec(ctx context.Context, cfg MonitorConfig, r ExecRun) (ExecProcess, error) {
	m.mu.Lock()
	m.runs = append(m.runs, r)
	m.mu.Unlock()
	p := &fakeExecProc{}
	if r.Process.Args[0] == "nosuchcmd" {
		p.out = strings.NewReader("exec: \"nosuchcmd\": executable file not found in $PATH\n")
		p.exit = ExecExit{Code: 1, Message: "exec: \"nosuchcmd\": executable file not found in $PATH"}
	} else {
		p.out = strings.NewReader(strings.Join(r.Process.Args, " ") + "\n")
		p.exit = ExecExit{Code: 3, Started: true}
		p.pid = 42
	}
	return p, nil
}

type fakeExecProc struct {
	out  io.Reader
	exit ExecExit
	pid  int
}

func (p *fakeExecProc) Stdin() io.WriteCloser          { return nil }
func (p *fakeExecProc) Stdout() io.Reader              { return p.out }
func (p *fakeExecProc) Stderr() io.Reader              { return strings.NewReader("") }
func (p *fakeExecProc) Resize(rows, cols uint16) error { return nil }
func (p *fakeExecProc) Pid() int                       { return p.pid }
func (p *fakeExecProc) Wait() ExecExit                 { return p.exit }

func TestExecLifecycle(t *testing.T) {
	f := setup(t)
	mons := &execMonitors{fakeMonitors: f.mons}
	s := f.openWith(t, mons)
	defer s.Close()
	ctx := context.Background()
	id := create(t, s, "web", "sleep", "60")
	if _, err := s.ExecCreate(ctx, "web", container.ExecCreateRequest{Cmd: []string{"echo"}}); !errdefs.IsConflict(err) {
		t.Fatalf("exec in a created container: %v", err)
	}
	if err := s.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Remove(ctx, id, RemoveOptions{Force: true}) }()
	if _, err := s.ExecCreate(ctx, "web", container.ExecCreateRequest{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("exec without a command: %v", err)
	}
	if _, err := s.ExecCreate(ctx, "nope", container.ExecCreateRequest{Cmd: []string{"echo"}}); !errdefs.IsNotFound(err) {
		t.Fatalf("exec in an unknown container: %v", err)
	}
	for _, tt := range []struct {
		cmd  string
		out  string
		code int
	}{
		{"echo", "echo hi\n", 3},
		{"nosuchcmd", "exec: \"nosuchcmd\": executable file not found in $PATH\n", 127},
	} {
		xid, err := s.ExecCreate(ctx, "web", container.ExecCreateRequest{Cmd: []string{tt.cmd, "hi"}, Env: []string{"X=1"}, AttachStdout: true, AttachStderr: true})
		if err != nil {
			t.Fatal(err)
		}
		if info, err := s.ExecInspect(ctx, xid); err != nil || info.Running || info.ExitCode != nil || info.ContainerID != id {
			t.Fatalf("inspect before start: %+v %v", info, err)
		}
		tty, a, err := s.ExecStart(ctx, xid, false)
		if err != nil || tty {
			t.Fatalf("start: %v %v", tty, err)
		}
		raw, err := io.ReadAll(a)
		if err != nil {
			t.Fatal(err)
		}
		// One stdout frame.
		if len(raw) < 8 || raw[0] != 1 || string(raw[8:]) != tt.out {
			t.Fatalf("%s: output %q", tt.cmd, raw)
		}
		info, err := s.ExecInspect(ctx, xid)
		if err != nil || info.Running || info.ExitCode == nil || *info.ExitCode != tt.code {
			t.Fatalf("%s: inspect after the output: %+v %v", tt.cmd, info, err)
		}
		if _, _, err := s.ExecStart(ctx, xid, false); !errdefs.IsConflict(err) {
			t.Fatalf("second start: %v", err)
		}
	}
	if env := mons.runs[0].Process.Env; !slices.Contains(env, "X=1") || len(env) < 2 {
		t.Fatalf("env %q", env)
	}
	if _, err := s.ExecInspect(ctx, "nope"); !errdefs.IsNotFound(err) {
		t.Fatalf("inspect unknown: %v", err)
	}
}
