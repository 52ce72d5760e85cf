package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/engine/logs"
	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
	"github.com/silo-containers/silo/internal/storage/baseimage"
)

// fakeMonitors runs no process: a "container" writes one log line when it
// starts and exits with 137 when killed, or with the code given in its
// command ("exit 3") at once.
type fakeMonitors struct {
	mu      sync.Mutex
	running map[string]*fakeMon
	exited  map[string]ExitStatus
	// gone simulates monitors that died with the daemon down.
	gone bool
	// cfgs are the configs Start got.
	cfgs []MonitorConfig
}

type fakeMon struct {
	m    *fakeMonitors
	id   string
	pid  int
	done chan struct{}
	st   ExitStatus
	once sync.Once
	w    *logs.Writer
}

func newFakeMonitors() *fakeMonitors {
	return &fakeMonitors{running: map[string]*fakeMon{}, exited: map[string]ExitStatus{}}
}

// Launch returns a pending monitor that does what start does on Start.
func (m *fakeMonitors) Launch(ctx context.Context, cfg MonitorConfig) (PendingMonitor, error) {
	return &fakePending{m: m, cfg: cfg}, nil
}

type fakePending struct {
	m   *fakeMonitors
	cfg MonitorConfig
}

func (p *fakePending) Start(ctx context.Context, holdOutput bool) (Monitor, error) {
	cfg := p.cfg
	cfg.HoldOutput = holdOutput
	return p.m.start(cfg)
}

func (p *fakePending) Abort() {}

func (m *fakeMonitors) start(cfg MonitorConfig) (Monitor, error) {
	spec, err := os.ReadFile(filepath.Join(cfg.Bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	if strings.Contains(string(spec), `"nosuchcmd"`) {
		return nil, errors.New(`exec: "nosuchcmd": executable file not found in $PATH`)
	}
	w, err := logs.Open(cfg.LogDir, logs.Config{})
	if err != nil {
		return nil, err
	}
	_ = w.WriteEntry(logs.Stdout, []byte("started\n"), time.Now())
	mon := &fakeMon{m: m, id: cfg.ID, pid: 4242, done: make(chan struct{}), w: w}
	m.mu.Lock()
	m.cfgs = append(m.cfgs, cfg)
	m.running[cfg.ID] = mon
	m.mu.Unlock()
	if strings.Contains(string(spec), `"exit 3"`) {
		mon.exit(3)
	}
	return mon, nil
}

func (m *fakeMonitors) Open(ctx context.Context, cfg MonitorConfig) (Monitor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mon, ok := m.running[cfg.ID]
	if !ok || m.gone {
		return nil, fmt.Errorf("monitor %s: %w", cfg.ID, errdefs.ErrNotFound)
	}
	return mon, nil
}

func (m *fakeMonitors) Exited(cfg MonitorConfig) (ExitStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.exited[cfg.ID]
	if !ok {
		return ExitStatus{}, fmt.Errorf("exit of %s: %w", cfg.ID, errdefs.ErrNotFound)
	}
	return st, nil
}

func (m *fakeMonitors) Delete(ctx context.Context, cfg MonitorConfig) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.exited, cfg.ID)
	return nil
}

func (f *fakeMon) exit(code int) {
	f.once.Do(func() {
		f.st = ExitStatus{Code: code, ExitedAt: time.Now()}
		_ = f.w.WriteEntry(logs.Stderr, []byte(fmt.Sprintf("exit %d\n", code)), time.Now())
		_ = f.w.Close()
		f.m.mu.Lock()
		delete(f.m.running, f.id)
		f.m.exited[f.id] = f.st
		f.m.mu.Unlock()
		close(f.done)
	})
}

func (f *fakeMon) Pid() int { return f.pid }
func (f *fakeMon) Signal(ctx context.Context, sig syscall.Signal) error {
	// Like sleep as pid 1, the fake ignores SIGTERM.
	if sig == syscall.SIGKILL {
		go f.exit(128 + int(sig))
	}
	return nil
}
func (f *fakeMon) Wait(ctx context.Context) (ExitStatus, error) {
	select {
	case <-f.done:
		return f.st, nil
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
}
func (f *fakeMon) Close() error { return nil }

// Attach gives "started\n" as output, then EOF at the exit; input is
// echoed back.
func (f *fakeMon) Attach(ctx context.Context, o MonitorAttachOptions) (Attachment, error) {
	r, w := io.Pipe()
	go func() {
		_, _ = w.Write([]byte("started\n"))
		<-f.done
		w.Close()
	}()
	return &fakeAttachment{r: r, w: w}, nil
}

func (f *fakeMon) Resize(ctx context.Context, rows, cols uint16) error { return nil }

type fakeAttachment struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (a *fakeAttachment) Read(p []byte) (int, error)  { return a.r.Read(p) }
func (a *fakeAttachment) Write(p []byte) (int, error) { return len(p), nil }
func (a *fakeAttachment) CloseWrite() error           { return nil }
func (a *fakeAttachment) Close() error                { return a.r.Close() }

type fixture struct {
	root   string
	images *storage.Store
	mons   *fakeMonitors
}

func setup(t *testing.T) *fixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, mounts)")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("needs mkfs.ext4")
	}
	if _, err := os.Stat(baseimage.DefaultBusybox); err != nil {
		t.Skip("needs busybox-static")
	}
	root := t.TempDir()
	// Runs before the directory's removal: a test that left a sandbox
	// mounted fails, and leaves nothing mounted on the host.
	t.Cleanup(func() {
		infos, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(root))
		slices.SortFunc(infos, func(a, b *mountinfo.Info) int { return strings.Compare(b.Mountpoint, a.Mountpoint) })
		for _, m := range infos {
			t.Errorf("mount left: %s", m.Mountpoint)
			_ = unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
		}
	})
	ctx := context.Background()
	images, err := storage.Open(ctx, filepath.Join(root, "image"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { images.Close() })
	if _, err := baseimage.Busybox(ctx, images, "", ""); err != nil {
		t.Fatal(err)
	}
	return &fixture{root: root, images: images, mons: newFakeMonitors()}
}

func (f *fixture) open(t *testing.T) *Service {
	t.Helper()
	return f.openWith(t, f.mons)
}

// openWith opens a Service on f's roots with mons as its monitors (the
// fake ones with an extra seam).
func (f *fixture) openWith(t *testing.T, mons Monitors) *Service {
	t.Helper()
	s, err := New(context.Background(), Config{
		DataRoot: filepath.Join(f.root, "engine"), ExecRoot: filepath.Join(f.root, "run"),
		Images: f.images, Monitors: mons, CgroupParent: "/silo-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func create(t *testing.T, s *Service, name string, cmd ...string) string {
	t.Helper()
	resp, err := s.Create(context.Background(), CreateRequest{Name: name, Config: &container.Config{Image: "busybox", Cmd: cmd}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

func TestLifecycle(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	ctx := context.Background()
	id := create(t, s, "web", "sleep", "60")

	c, err := s.Inspect(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != id || c.State.Status != container.StateCreated || c.HostConfig.Isolation != container.IsolationProcess || c.Path != "sleep" {
		t.Fatalf("inspect after create: %+v %+v", c, c.State)
	}
	if _, err := os.Stat(filepath.Join(f.root, "engine/containers", id, "config.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, CreateRequest{Name: "web", Config: &container.Config{Image: "busybox"}}); !errdefs.IsConflict(err) {
		t.Fatalf("second create with the same name: %v", err)
	}
	if err := s.Start(ctx, id[:12]); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, "web"); !errors.Is(err, ErrNotModified) {
		t.Fatalf("start of a running container: %v", err)
	}
	list, _ := s.List(ctx, ListOptions{})
	if len(list) != 1 || list[0].Names[0] != "/web" || !strings.HasPrefix(list[0].Status, "Up") {
		t.Fatalf("list: %+v", list)
	}
	if err := s.Remove(ctx, "web", RemoveOptions{}); !errdefs.IsConflict(err) {
		t.Fatalf("remove running without force: %v", err)
	}
	waited := make(chan int, 1)
	go func() {
		code, _ := s.Wait(ctx, "web", container.WaitConditionNextExit)
		waited <- code
	}()
	zero := 0
	if err := s.Stop(ctx, "web", "", &zero); err != nil {
		t.Fatal(err)
	}
	if code := <-waited; code != 137 {
		t.Fatalf("wait: code %d, want 137", code)
	}
	c, _ = s.Inspect(ctx, "web")
	if c.State.Running || c.State.Status != container.StateExited || c.State.ExitCode != 137 || c.State.FinishedAt == "0001-01-01T00:00:00Z" {
		t.Fatalf("state after stop: %+v", c.State)
	}
	_, entries, err := s.Logs(ctx, "web", LogsOptions{Stdout: true, Stderr: true, Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for e, err := range entries {
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, e.Stream+":"+string(e.Line))
	}
	if fmt.Sprint(lines) != fmt.Sprint([]string{"stdout:started\n", "stderr:exit 137\n"}) {
		t.Fatalf("logs %q", lines)
	}
	if err := s.Remove(ctx, "web", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Inspect(ctx, id); !errdefs.IsNotFound(err) {
		t.Fatalf("inspect after remove: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.root, "engine/containers", id)); !os.IsNotExist(err) {
		t.Fatalf("container directory left: %v", err)
	}
	s.Close()
}

func TestAutoRemoveAndWaitRemoved(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	defer s.Close()
	ctx := context.Background()
	resp, err := s.Create(ctx, CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", "exit 3"}},
		HostConfig: &container.HostConfig{AutoRemove: true}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.Inspect(ctx, resp.ID)
	if !validName.MatchString(c.Name) || !strings.Contains(c.Name, "_") {
		t.Fatalf("generated name %q", c.Name)
	}
	done := make(chan int, 1)
	go func() {
		code, _ := s.Wait(ctx, resp.ID, container.WaitConditionRemoved)
		done <- code
	}()
	time.Sleep(10 * time.Millisecond)
	if err := s.Start(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 3 {
			t.Fatalf("code %d, want 3", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not removed")
	}
	if _, err := s.Inspect(ctx, resp.ID); !errdefs.IsNotFound(err) {
		t.Fatalf("still there: %v", err)
	}
}

func TestStartFailure(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	defer s.Close()
	ctx := context.Background()
	id := create(t, s, "", "nosuchcmd")
	err := s.Start(ctx, id)
	if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "executable file not found") {
		t.Fatalf("start: %v", err)
	}
	c, _ := s.Inspect(ctx, id)
	if c.State.ExitCode != 127 || c.State.Status != container.StateCreated {
		t.Fatalf("state %+v", c.State)
	}
	if err := s.Remove(ctx, id, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestCreateErrors(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	defer s.Close()
	tests := []struct {
		name string
		req  CreateRequest
		is   error
		msg  string
	}{
		{"no config", CreateRequest{}, errdefs.ErrInvalidArgument, "config cannot be empty"},
		{"no image", CreateRequest{Config: &container.Config{}}, errdefs.ErrInvalidArgument, "no image"},
		{"unknown image", CreateRequest{Config: &container.Config{Image: "nope"}}, errdefs.ErrNotFound, "no such image: nope"},
		{"hyperv", CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{Isolation: "hyperv"}},
			errdefs.ErrNotImplemented, "isolation hyperv: the vm backend is not available yet"},
		{"vm", CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{Isolation: "vm"}},
			errdefs.ErrNotImplemented, "isolation vm: the vm backend is not available yet"},
		{"bad isolation", CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{Isolation: "jail"}},
			errdefs.ErrInvalidArgument, "invalid isolation"},
		{"bad name", CreateRequest{Name: "a b", Config: &container.Config{Image: "busybox"}}, errdefs.ErrInvalidArgument, "invalid container name"},
		{"bad storage opt", CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{StorageOpt: map[string]string{"quota": "1"}}},
			errdefs.ErrInvalidArgument, "only size"},
		{"tiny size", CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{StorageOpt: map[string]string{"size": "1k"}}},
			errdefs.ErrInvalidArgument, "size"},
		{"relative workdir", CreateRequest{Config: &container.Config{Image: "busybox", WorkingDir: "rel"}}, errdefs.ErrInvalidArgument, "not absolute"},
		{"restart policy", CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "sometimes"}}},
			errdefs.ErrInvalidArgument, "restart policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Create(context.Background(), tt.req)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err %v, want %v containing %q", err, tt.is, tt.msg)
			}
		})
	}
	// Failed creates leave nothing behind.
	ents, _ := os.ReadDir(filepath.Join(f.root, "engine/containers"))
	if len(ents) != 0 {
		t.Fatalf("left: %v", ents)
	}
}

func TestListFilters(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	defer s.Close()
	ctx := context.Background()
	a, err := s.Create(ctx, CreateRequest{Name: "alpha", Config: &container.Config{Image: "busybox", Cmd: []string{"true"}, Labels: map[string]string{"tier": "web"}}})
	if err != nil {
		t.Fatal(err)
	}
	b := create(t, s, "beta", "sh", "-c", "exit 3")
	if err := s.Start(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(ctx, b, container.WaitConditionNotRunning); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	tests := []struct {
		name string
		opts ListOptions
		want []string
		err  bool
	}{
		{"running only", ListOptions{}, nil, false},
		{"all", ListOptions{All: true}, []string{"/beta", "/alpha"}, false},
		{"limit", ListOptions{Limit: 1, All: true}, []string{"/beta"}, false},
		{"status", ListOptions{Filters: Filters{"status": {"exited"}}}, []string{"/beta"}, false},
		{"status created", ListOptions{Filters: Filters{"status": {"created"}}}, []string{"/alpha"}, false},
		{"name", ListOptions{All: true, Filters: Filters{"name": {"alp"}}}, []string{"/alpha"}, false},
		{"id", ListOptions{All: true, Filters: Filters{"id": {a.ID[:8]}}}, []string{"/alpha"}, false},
		{"label key", ListOptions{All: true, Filters: Filters{"label": {"tier"}}}, []string{"/alpha"}, false},
		{"label value", ListOptions{All: true, Filters: Filters{"label": {"tier=db"}}}, nil, false},
		{"exited", ListOptions{All: true, Filters: Filters{"exited": {"3"}}}, []string{"/beta"}, false},
		{"bad status", ListOptions{Filters: Filters{"status": {"sleepy"}}}, nil, true},
		{"bad key", ListOptions{Filters: Filters{"color": {"red"}}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := s.List(ctx, tt.opts)
			if (err != nil) != tt.err {
				t.Fatalf("err %v", err)
			}
			var names []string
			for _, c := range list {
				names = append(names, c.Names[0])
			}
			if fmt.Sprint(names) != fmt.Sprint(tt.want) {
				t.Fatalf("got %v, want %v", names, tt.want)
			}
		})
	}
	// ps -s: sizes only when asked; the root file system's includes the
	// image's.
	plain, _ := s.List(ctx, ListOptions{All: true})
	sized, _ := s.List(ctx, ListOptions{All: true, Size: true})
	if len(sized) != 2 || plain[0].SizeRw != 0 || plain[0].SizeRootFs != 0 {
		t.Fatalf("sizes without Size: %+v", plain)
	}
	img, err := f.images.Image(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range sized {
		if c.SizeRw <= 0 || c.SizeRootFs != c.SizeRw+img.Size {
			t.Errorf("%s: SizeRw %d, SizeRootFs %d (image %d)", c.Names[0], c.SizeRw, c.SizeRootFs, img.Size)
		}
	}
	for _, id := range []string{a.ID, b} {
		if err := s.Remove(ctx, id, RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
}

// A restarted service reconnects to running containers, records the exit
// of those that ended meanwhile, and deletes half-made container dirs.
func TestRestore(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	ctx := context.Background()
	keep := create(t, s, "keep", "sleep", "60")
	gone := create(t, s, "gone", "sleep", "60")
	for _, id := range []string{keep, gone} {
		if err := s.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// While the daemon is away: "gone" exits, a create crashes half-way.
	f.mons.mu.Lock()
	mon := f.mons.running[gone]
	f.mons.mu.Unlock()
	mon.exit(7)
	orphan := filepath.Join(f.root, "engine/containers", strings.Repeat("f", 64))
	if err := os.MkdirAll(orphan, 0o700); err != nil {
		t.Fatal(err)
	}

	s = f.open(t)
	defer s.Close()
	c, _ := s.Inspect(ctx, "keep")
	if !c.State.Running || c.State.Pid != 4242 {
		t.Fatalf("keep: %+v", c.State)
	}
	c, _ = s.Inspect(ctx, "gone")
	if c.State.Running || c.State.ExitCode != 7 {
		t.Fatalf("gone: %+v", c.State)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatalf("orphan left: %v", err)
	}
	// The reconnected container is watched again.
	if err := s.Kill(ctx, "keep", "KILL"); err != nil {
		t.Fatal(err)
	}
	if code, _ := s.Wait(ctx, "keep", container.WaitConditionNotRunning); code != 137 {
		t.Fatalf("keep exit %d", code)
	}
	for _, id := range []string{keep, gone} {
		if err := s.Remove(ctx, id, RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRestoreAutoRemove: an AutoRemove container that is not running when
// the daemon starts is removed (docker does the same), whether it never
// started or its removal was cut short; one still running stays.
func TestRestoreAutoRemove(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	ctx := context.Background()
	ids := map[string]string{}
	for _, name := range []string{"created", "running"} {
		resp, err := s.Create(ctx, CreateRequest{Name: name, Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "60"}},
			HostConfig: &container.HostConfig{AutoRemove: true}})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = resp.ID
	}
	if err := s.Start(ctx, "running"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = f.open(t)
	defer s.Close()
	if _, err := s.Inspect(ctx, "created"); !errdefs.IsNotFound(err) {
		t.Fatalf("created AutoRemove container after restore: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.root, "engine/containers", ids["created"])); !os.IsNotExist(err) {
		t.Fatalf("its directory: %v", err)
	}
	if c, err := s.Inspect(ctx, "running"); err != nil || !c.State.Running {
		t.Fatalf("running AutoRemove container after restore: %+v, %v", c, err)
	}
	if err := s.Kill(ctx, "running", "KILL"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(ctx, "running", container.WaitConditionRemoved); err != nil {
		t.Fatal(err)
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in   string
		want syscall.Signal
		err  bool
	}{
		{"KILL", syscall.SIGKILL, false},
		{"sigterm", syscall.SIGTERM, false},
		{"SIGUSR1", syscall.SIGUSR1, false},
		{"9", syscall.SIGKILL, false},
		{"SIGRTMIN+1", 35, false},
		{"0", 0, true},
		{"65", 0, true},
		{"", 0, true},
		{"NOPE", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSignal(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseSignal(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestNames(t *testing.T) {
	for i := 0; i < 100; i++ {
		if n := generateName(i % 2); !validName.MatchString(n) {
			t.Fatalf("generated invalid name %q", n)
		}
	}
	tests := []struct {
		in, want string
		err      bool
	}{
		{"web", "web", false},
		{"/web", "web", false},
		{"a", "", true},
		{"-x", "", true},
		{"a/b", "", true},
	}
	for _, tt := range tests {
		got, err := checkName(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("checkName(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestAttachBeforeStart(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	defer s.Close()
	ctx := context.Background()
	resp, err := s.Create(ctx, CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"sh"}, Tty: true, OpenStdin: true}})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.ID
	tty, a, err := s.Attach(ctx, id, AttachOptions{Stdin: true, Stdout: true, Stderr: true})
	if err != nil || !tty {
		t.Fatalf("attach: tty %v, %v", tty, err)
	}
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(a)
		got <- string(b)
	}()
	if err := s.Resize(ctx, id, 24, 80); !errdefs.IsConflict(err) {
		t.Fatalf("resize before start: %v", err)
	}
	if err := s.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	f.mons.mu.Lock()
	cfg := f.mons.cfgs[len(f.mons.cfgs)-1]
	f.mons.mu.Unlock()
	if !cfg.Terminal || !cfg.Stdin || !cfg.HoldOutput {
		t.Fatalf("monitor config %+v", cfg)
	}
	if err := s.Resize(ctx, id, 24, 80); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case out := <-got:
		if out != "started\n" {
			t.Fatalf("output %q", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("attachment did not end")
	}
	a.Close()

	// An attachment whose container is removed ends.
	if _, err := s.Wait(ctx, id, container.WaitConditionNotRunning); err != nil {
		t.Fatal(err)
	}
	_, a2, err := s.Attach(ctx, id, AttachOptions{Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, id, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := a2.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("read after remove: %d %v", n, err)
	}
}
