package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	mobyvolume "github.com/moby/moby/api/types/volume"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/errdefs"
)

func readSpec(t *testing.T, s *Service, id string) *specs.Spec {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.ctrDir(id), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sp specs.Spec
	if err := json.Unmarshal(raw, &sp); err != nil {
		t.Fatal(err)
	}
	return &sp
}

func specMount(sp *specs.Spec, dest string) *specs.Mount {
	for i := range sp.Mounts {
		if sp.Mounts[i].Destination == dest {
			return &sp.Mounts[i]
		}
	}
	return nil
}

func TestVolumesInContainers(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	defer s.Close()
	ctx := context.Background()
	hostDir := filepath.Join(t.TempDir(), "made-by-v")
	resp, err := s.Create(ctx, CreateRequest{Name: "v1",
		Config: &container.Config{Image: "busybox", Cmd: []string{"true"}, Volumes: map[string]struct{}{"/anon": {}}},
		HostConfig: &container.HostConfig{
			Binds:  []string{hostDir + ":/host:ro", "etcvol:/etc"},
			Mounts: []mount.Mount{{Type: mount.TypeTmpfs, Target: "/scratch", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20}}},
			Tmpfs:  map[string]string{"/run/x": "size=64k"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.ID
	if fi, err := os.Stat(hostDir); err != nil || !fi.IsDir() {
		t.Fatalf("-v did not make the host directory: %v", err)
	}
	sp := readSpec(t, s, id)
	for dest, want := range map[string]string{
		"/host": "bind rbind,rprivate,ro", "/etc": "bind rbind,rprivate",
		"/scratch": "tmpfs noexec,nosuid,nodev,size=1048576", "/run/x": "tmpfs noexec,nosuid,nodev,size=64k",
		"/anon": "bind rbind,rprivate",
	} {
		m := specMount(sp, dest)
		if m == nil {
			t.Fatalf("no mount on %s: %+v", dest, sp.Mounts)
		}
		if got := m.Type + " " + strings.Join(m.Options, ","); got != want {
			t.Errorf("mount %s: %q, want %q", dest, got, want)
		}
	}
	// The named volume was made and filled from the image's /etc.
	v, err := s.VolumeInspect(ctx, "etcvol")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "passwd")); err != nil {
		t.Fatalf("copy-up of /etc: %v", err)
	}
	if specMount(sp, "/etc").Source != v.Mountpoint {
		t.Fatalf("etc source %s, want %s", specMount(sp, "/etc").Source, v.Mountpoint)
	}
	c, err := s.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Mounts) != 5 {
		t.Fatalf("inspect mounts: %+v", c.Mounts)
	}
	var anon string
	for _, m := range c.Mounts {
		if m.Destination == "/anon" {
			anon = m.Name
		}
		if m.Destination == "/host" && (m.RW || m.Type != mount.TypeBind || m.Source != hostDir) {
			t.Errorf("bind mount point %+v", m)
		}
	}
	if len(anon) != 64 {
		t.Fatalf("anonymous volume name %q", anon)
	}
	for v, want := range map[string]int{"etcvol": 1, "/host": 1, hostDir: 1, "nope": 0} {
		if l, err := s.List(ctx, ListOptions{All: true, Filters: Filters{"volume": {v}}}); err != nil || len(l) != want {
			t.Errorf("ps --filter volume=%s: %d, want %d (%v)", v, len(l), want, err)
		}
	}
	// In use: removal is a conflict; prune leaves it.
	if err := s.VolumeRemove(ctx, "etcvol", false); !errdefs.IsConflict(err) {
		t.Fatalf("remove in use: %v", err)
	}
	if rep, err := s.VolumePrune(ctx, Filters{"all": {"true"}}); err != nil || len(rep.VolumesDeleted) != 0 {
		t.Fatalf("prune in use: %+v %v", rep, err)
	}
	// --volumes-from copies binds and volumes, not tmpfs.
	resp2, err := s.Create(ctx, CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"true"}},
		HostConfig: &container.HostConfig{VolumesFrom: []string{"v1:ro"}}})
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := s.Inspect(ctx, resp2.ID)
	if len(c2.Mounts) != 3 {
		t.Fatalf("volumes-from mounts: %+v", c2.Mounts)
	}
	for _, m := range c2.Mounts {
		if m.RW {
			t.Errorf("volumes-from :ro gave a writable mount %+v", m)
		}
	}
	if err := s.Remove(ctx, resp2.ID, RemoveOptions{RemoveVolumes: true}); err != nil {
		t.Fatal(err)
	}
	// rm -v of the second container kept the anonymous volume: v1 uses it.
	if _, err := s.VolumeInspect(ctx, anon); err != nil {
		t.Fatalf("anonymous volume of another container removed: %v", err)
	}
	if err := s.Remove(ctx, id, RemoveOptions{RemoveVolumes: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VolumeInspect(ctx, anon); !errdefs.IsNotFound(err) {
		t.Fatalf("rm -v left the anonymous volume: %v", err)
	}
	if _, err := s.VolumeInspect(ctx, "etcvol"); err != nil {
		t.Fatalf("rm -v removed a named volume: %v", err)
	}
	if err := s.VolumeRemove(ctx, "etcvol", false); err != nil {
		t.Fatalf("remove unused: %v", err)
	}
}

func TestMountErrors(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	defer s.Close()
	ctx := context.Background()
	for name, host := range map[string]*container.HostConfig{
		"duplicate":       {Binds: []string{"a1:/x", "b1:/x"}},
		"bad name":        {Binds: []string{"a/b:/x"}},
		"relative dest":   {Binds: []string{"/tmp:x"}},
		"root dest":       {Binds: []string{"/tmp:/"}},
		"bad mode":        {Binds: []string{"/tmp:/x:bogus"}},
		"missing source":  {Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/no/such/dir", Target: "/x"}}},
		"tmpfs source":    {Mounts: []mount.Mount{{Type: mount.TypeTmpfs, Source: "x", Target: "/x"}}},
		"volumes-from ro": {VolumesFrom: []string{"nosuch"}},
	} {
		_, err := s.Create(ctx, CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: host})
		if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) && !errdefs.IsNotFound(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if list, _ := s.List(ctx, ListOptions{All: true}); len(list) != 0 {
		t.Fatalf("failed creates left containers: %+v", list)
	}
	if vl, _ := s.VolumeList(ctx, nil); len(vl.Volumes) != 0 {
		t.Fatalf("failed creates left volumes: %+v", vl.Volumes)
	}
}

func TestVolumeAPI(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	defer s.Close()
	ctx := context.Background()
	v, err := s.VolumeCreate(ctx, mobyvolume.CreateRequest{Name: "data", Labels: map[string]string{"env": "test"}})
	if err != nil || v.Name != "data" || v.Scope != "local" || v.Driver != "local" {
		t.Fatalf("create: %+v %v", v, err)
	}
	gen, err := s.VolumeCreate(ctx, mobyvolume.CreateRequest{})
	if err != nil || len(gen.Name) != 64 {
		t.Fatalf("create without a name: %+v %v", gen, err)
	}
	for _, tc := range []struct {
		f    Filters
		want int
	}{
		{nil, 2}, {Filters{"name": {"dat"}}, 1}, {Filters{"label": {"env=test"}}, 1},
		{Filters{"label": {"env=prod"}}, 0}, {Filters{"dangling": {"true"}}, 2}, {Filters{"driver": {"local"}}, 2},
	} {
		l, err := s.VolumeList(ctx, tc.f)
		if err != nil || len(l.Volumes) != tc.want {
			t.Errorf("list %v: %d volumes, want %d (%v)", tc.f, len(l.Volumes), tc.want, err)
		}
	}
	if _, err := s.VolumeList(ctx, Filters{"bogus": {"x"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad filter: %v", err)
	}
	// Named volumes survive a plain prune (anonymous only since Docker 23).
	if rep, err := s.VolumePrune(ctx, nil); err != nil || len(rep.VolumesDeleted) != 0 {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	rep, err := s.VolumePrune(ctx, Filters{"all": {"true"}, "label": {"env=test"}})
	if err != nil || len(rep.VolumesDeleted) != 1 || rep.VolumesDeleted[0] != "data" {
		t.Fatalf("prune all with label: %+v %v", rep, err)
	}
	du, err := s.DiskUsage(ctx)
	if err != nil || len(du.Volumes) != 1 || du.Volumes[0].UsageData == nil || len(du.Images) != 1 {
		t.Fatalf("disk usage: %+v %v", du, err)
	}
}

// pausingMonitors adds the Pauser seam to the fake monitors, recording
// the calls.
type pausingMonitors struct {
	*fakeMonitors
	mu    sync.Mutex
	calls []string
}

func (p *pausingMonitors) Pause(ctx context.Context, cfg MonitorConfig) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "pause")
	return nil
}

func (p *pausingMonitors) Resume(ctx context.Context, cfg MonitorConfig) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "resume")
	return nil
}

func TestPauseRenameRestartEvents(t *testing.T) {
	f := setup(t)
	pm := &pausingMonitors{fakeMonitors: f.mons}
	s := f.openWith(t, pm)
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	seq, err := s.Events(ctx, EventsOptions{Filters: Filters{"type": {"container"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan events.Message, 64)
	go func() {
		for m := range seq {
			got <- m
		}
	}()
	id := create(t, s, "pp", "sleep", "60")
	if err := s.Pause(ctx, "pp"); !errdefs.IsConflict(err) {
		t.Fatalf("pause of a created container: %v", err)
	}
	if err := s.Start(ctx, "pp"); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(ctx, "pp"); err != nil {
		t.Fatal(err)
	}
	c, _ := s.Inspect(ctx, "pp")
	if !c.State.Paused || !c.State.Running || c.State.Status != container.StatePaused {
		t.Fatalf("state after pause: %+v", c.State)
	}
	if list, _ := s.List(ctx, ListOptions{}); len(list) != 1 || !strings.HasSuffix(list[0].Status, "(Paused)") {
		t.Fatalf("ps of a paused container: %+v", list)
	}
	if err := s.Start(ctx, "pp"); !errdefs.IsConflict(err) {
		t.Fatalf("start of a paused container: %v", err)
	}
	if _, err := s.ExecCreate(ctx, "pp", container.ExecCreateRequest{Cmd: []string{"true"}}); !errdefs.IsConflict(err) {
		t.Fatalf("exec in a paused container: %v", err)
	}
	if err := s.Unpause(ctx, "pp"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unpause(ctx, "pp"); !errdefs.IsConflict(err) {
		t.Fatalf("unpause of a running container: %v", err)
	}
	if err := s.Rename(ctx, "pp", "qq"); err != nil {
		t.Fatal(err)
	}
	create(t, s, "other", "true")
	if _, err := s.Stats(ctx, "other", StatsOptions{Stream: true}); !errdefs.IsConflict(err) {
		t.Fatalf("stats stream of a created container: %v", err)
	}
	one, err := s.Stats(ctx, "other", StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for st, err := range one {
		if err != nil || st.Name != "/other" || st.MemoryStats.Usage != 0 {
			t.Fatalf("stats of a created container: %+v %v", st, err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d samples", n)
	}
	if err := s.Rename(ctx, "qq", "other"); !errdefs.IsConflict(err) {
		t.Fatalf("rename to a taken name: %v", err)
	}
	if _, err := s.Inspect(ctx, "pp"); !errdefs.IsNotFound(err) {
		t.Fatalf("old name still resolves: %v", err)
	}
	// The old name is free again.
	create(t, s, "pp", "true")
	// Pause, then kill: the container is thawed so that it can die.
	if err := s.Pause(ctx, "qq"); err != nil {
		t.Fatal(err)
	}
	zero := 0
	if err := s.Restart(ctx, "qq", "", &zero); err != nil {
		t.Fatal(err)
	}
	c, _ = s.Inspect(ctx, "qq")
	if c.State.Status != container.StateRunning {
		t.Fatalf("after restart: %+v", c.State)
	}
	pm.mu.Lock()
	calls := strings.Join(pm.calls, ",")
	pm.mu.Unlock()
	if calls != "pause,resume,pause,resume" {
		t.Fatalf("pauser calls %q", calls)
	}
	if err := s.Remove(ctx, "qq", RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.ContainersPrune(ctx, nil)
	if err != nil || len(rep.Deleted) != 2 {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	want := []string{"create", "start", "pause", "unpause", "rename", "create", "create", "pause", "kill", "kill", "die", "stop", "start", "restart", "kill", "die", "destroy", "destroy", "destroy"}
	var seen []string
	deadline := time.After(5 * time.Second)
	for len(seen) < len(want) {
		select {
		case m := <-got:
			if m.Actor.ID == id || m.Action == events.ActionCreate || m.Action == events.ActionDestroy {
				seen = append(seen, string(m.Action))
			}
		case <-deadline:
			t.Fatalf("events %v, want %v", seen, want)
		}
	}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Fatalf("events\n %v, want\n %v", seen, want)
	}
	// A bounded query replays the log and ends.
	past, err := s.Events(ctx, EventsOptions{Since: start, Until: time.Now(), Filters: Filters{"event": {"rename"}}})
	if err != nil {
		t.Fatal(err)
	}
	n = 0
	for m := range past {
		if m.Actor.Attributes["oldName"] != "/pp" || m.Actor.Attributes["name"] != "qq" {
			t.Errorf("rename event %+v", m)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d rename events", n)
	}
}

func TestEventLogRing(t *testing.T) {
	l := newEventLog()
	for i := 0; i < eventLogSize+10; i++ {
		l.publish(events.Message{TimeNano: int64(i)})
	}
	past, _, cancel := l.subscribe()
	cancel()
	if len(past) != eventLogSize || past[0].TimeNano != 10 || past[len(past)-1].TimeNano != eventLogSize+9 {
		t.Fatalf("ring: %d events, first %d, last %d", len(past), past[0].TimeNano, past[len(past)-1].TimeNano)
	}
}

func TestEventFilters(t *testing.T) {
	msg := events.Message{Type: events.ContainerEventType, Action: "health_status: healthy",
		Actor: events.Actor{ID: "abcdef", Attributes: map[string]string{"name": "web", "image": "busybox", "tier": "1"}}}
	for _, tc := range []struct {
		f    Filters
		want bool
	}{
		{Filters{"event": {"health_status"}}, true},
		{Filters{"event": {"die", "health_status: healthy"}}, true},
		{Filters{"event": {"die"}}, false},
		{Filters{"container": {"web"}}, true},
		{Filters{"container": {"abc"}}, true},
		{Filters{"container": {"xyz"}}, false},
		{Filters{"label": {"tier=1"}}, true},
		{Filters{"label": {"tier=2"}}, false},
		{Filters{"type": {"volume"}}, false},
		{Filters{"image": {"busybox"}, "type": {"container"}}, true},
	} {
		match, err := compileEventFilters(tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if match(&msg) != tc.want {
			t.Errorf("filters %v: %v, want %v", tc.f, !tc.want, tc.want)
		}
	}
	if _, err := compileEventFilters(Filters{"bogus": {"1"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad filter: %v", err)
	}
}

func TestFilterPS(t *testing.T) {
	out := []byte("UID          PID    PPID  C STIME TTY          TIME CMD\n" +
		"root           1       0  0 10:00 ?        00:00:01 /sbin/init splash\n" +
		"root        4242       1  0 10:01 ?        00:00:00 sleep 60\n" +
		"root        4243    4242  0 10:01 ?        00:00:00 sh -c echo hi\n")
	top, err := filterPS(out, []int{4242, 4243})
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Titles) != 8 || len(top.Processes) != 2 || top.Processes[1][7] != "sh -c echo hi" || top.Processes[0][1] != "4242" {
		t.Fatalf("top %+v", top)
	}
	if _, err := filterPS([]byte("USER COMMAND\nroot x\n"), []int{1}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("no PID column: %v", err)
	}
	// Short rows do not panic.
	if top, err := filterPS([]byte("PID A B CMD\n7\n"), []int{7}); err != nil || len(top.Processes) != 1 {
		t.Fatalf("short row: %+v %v", top, err)
	}
}

func TestStatsParsers(t *testing.T) {
	ns, err := parseProcStatCPU("cpu  100 5 50 1000 10 1 2 0 0 0")
	if err != nil || ns != 1168*1e7 {
		t.Fatalf("proc stat: %d %v", ns, err)
	}
	if _, err := parseProcStatCPU("intr 1 2 3"); err == nil {
		t.Fatal("bad /proc/stat line accepted")
	}
	if n := parseMemTotal("MemTotal:        2048 kB\nMemFree: 1 kB\n"); n != 2048*1024 {
		t.Fatalf("memtotal %d", n)
	}
	dev := "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		"    lo:    100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n" +
		"  eth0:   1500      10    1    2    0     0          0         0      700       5    0    3    0     0       0          0\n"
	m := parseNetDev(dev)
	if len(m) != 1 || m["eth0"].RxBytes != 1500 || m["eth0"].TxBytes != 700 || m["eth0"].TxDropped != 3 || m["eth0"].RxErrors != 1 {
		t.Fatalf("net dev %+v", m)
	}
}

func TestParseUntil(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1h", now.Add(-time.Hour), true},
		{"1700000000", time.Unix(1700000000, 0), true},
		{"2024-01-02T03:04:05Z", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), true},
		{"yesterday", time.Time{}, false},
	} {
		got, err := parseUntil(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if tc.ok && got.Sub(tc.want).Abs() > time.Second {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestTarInRootContained: archiving a path inside a root follows no
// symlink out of it, whatever the tree holds.
func TestTarInRootContained(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "data/sub"), 0o755))
	must(os.WriteFile(filepath.Join(root, "data/sub/f"), []byte("content"), 0o644))
	must(os.Link(filepath.Join(root, "data/sub/f"), filepath.Join(root, "data/hard")))
	must(os.Symlink(outside, filepath.Join(root, "data/escape")))        // absolute, out of the root
	must(os.Symlink("../../../../..", filepath.Join(root, "data/up")))   // relative, up and out
	must(os.Symlink("/data/sub", filepath.Join(root, "link-to-sub")))    // absolute inside the root
	must(os.Symlink(outside+"/secret", filepath.Join(root, "evil-top"))) // the start itself

	names := func(p string, follow bool) map[string]string {
		t.Helper()
		var buf bytes.Buffer
		if err := writeTarInRoot(context.Background(), &buf, root, p, "x", follow); err != nil {
			t.Fatalf("archive %s: %v", p, err)
		}
		out := map[string]string{}
		tr := tar.NewReader(&buf)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			out[h.Name] = string(h.Typeflag) + ":" + h.Linkname + ":" + string(b)
		}
	}
	got := names("/data", false)
	for name, want := range map[string]string{
		"x/":       "5::",
		"x/hard":   "0::content",
		"x/sub/f":  "1:x/hard:",
		"x/escape": "2:" + outside + ":",
		"x/up":     "2:../../../../..:",
		"x/sub/":   "5::",
	} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q (all: %v)", name, got[name], want, got)
		}
	}
	// Following the start's symlink resolves it inside the root.
	if got := names("/link-to-sub", true); got["x/f"] != "0::content" {
		t.Errorf("followed in-root link: %v", got)
	}
	// An absolute symlink out of the root resolves to the root's own
	// path, which does not exist: nothing of the host is read.
	var buf bytes.Buffer
	err := writeTarInRoot(context.Background(), &buf, root, "/evil-top", "x", true)
	if !errdefs.IsNotFound(err) {
		t.Fatalf("escaping start: %v", err)
	}
	if strings.Contains(buf.String(), "host secret") {
		t.Fatal("the host's file was read")
	}
	if got := names("/data/up/data/sub/f", true); got["x"] != "0::content" {
		t.Errorf("../ above the root stays in the root: %v", got)
	}
}
