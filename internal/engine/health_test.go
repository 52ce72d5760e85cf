package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
)

func TestProbeArgs(t *testing.T) {
	for _, tc := range []struct {
		test []string
		want string
		err  bool
	}{
		{nil, "", false},
		{[]string{"NONE"}, "", false},
		{[]string{"CMD", "true", "x"}, "true x", false},
		{[]string{"CMD-SHELL", "exit 1"}, "/bin/sh -c exit 1", false},
		{[]string{"CMD"}, "", true},
		{[]string{"CMD-SHELL", "a", "b"}, "", true},
		{[]string{"BOGUS"}, "", true},
	} {
		args, err := probeArgs(&container.HealthConfig{Test: tc.test})
		if (err != nil) != tc.err || strings.Join(args, " ") != tc.want {
			t.Errorf("%q: %q %v", tc.test, args, err)
		}
	}
	for _, h := range []*container.HealthConfig{
		{Test: []string{"CMD", "true"}, Interval: time.Microsecond},
		{Test: []string{"CMD", "true"}, Retries: -1},
	} {
		if err := checkHealthConfig(h); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: %v", h, err)
		}
	}
}

// scriptedProbes is an ExecRunner whose processes exit with the codes of
// a script, one per run (the last repeats).
type scriptedProbes struct {
	*fakeMonitors
	mu    sync.Mutex
	codes []int
	runs  int
}

func (m *scriptedProbes) RunExec(ctx context.Context, cfg MonitorConfig, r ExecRun) (ExecProcess, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	code := m.codes[min(m.runs, len(m.codes)-1)]
	m.runs++
	return &fakeExecProc{out: strings.NewReader("probe " + strings.Join(r.Process.Args, " ")), exit: ExecExit{Code: code, Started: true}, pid: 0}, nil
}

// openProbed opens a Service on f whose probes exit with codes.
func openProbed(t *testing.T, f *fixture, codes ...int) *Service {
	t.Helper()
	return f.openWith(t, &scriptedProbes{fakeMonitors: f.mons, codes: codes})
}

func TestHealthTransitions(t *testing.T) {
	f := setup(t)
	s := openProbed(t, f, 1, 0, 1, 1, 1)
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seq, err := s.Events(ctx, EventsOptions{Filters: Filters{"event": {"health_status"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 16)
	go func() {
		for m := range seq {
			got <- string(m.Action)
		}
	}()
	resp, err := s.Create(ctx, CreateRequest{Name: "hc", Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "60"},
		Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "check"}, Interval: 20 * time.Millisecond, Retries: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{"health_status: healthy", "health_status: unhealthy"}
	for _, w := range want {
		select {
		case a := <-got:
			if a != w {
				t.Fatalf("event %q, want %q", a, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %q event", w)
		}
	}
	c, _ := s.Inspect(ctx, "hc")
	h := c.State.Health
	if h == nil || h.Status != container.Unhealthy || h.FailingStreak < 2 || len(h.Log) == 0 || h.Log[len(h.Log)-1].Output != "probe /bin/sh -c check" {
		t.Fatalf("health %+v", h)
	}
	list, _ := s.List(ctx, ListOptions{})
	if len(list) != 1 || !strings.HasSuffix(list[0].Status, "(unhealthy)") || list[0].Health == nil {
		t.Fatalf("ps: %+v", list)
	}
	for h, want := range map[string]int{"unhealthy": 1, "healthy": 0, "none": 0} {
		if l, err := s.List(ctx, ListOptions{Filters: Filters{"health": {h}}}); err != nil || len(l) != want {
			t.Errorf("ps --filter health=%s: %d, want %d (%v)", h, len(l), want, err)
		}
	}
	if _, err := s.List(ctx, ListOptions{Filters: Filters{"health": {"sick"}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad health filter: %v", err)
	}
	if err := s.Remove(ctx, "hc", RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if s.healthOf(&Container{ID: resp.ID}) != nil {
		t.Fatal("health state kept after removal")
	}
}

func TestImageHealthcheckMerged(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	defer s.Close()
	ctx := context.Background()
	base, err := f.images.DockerConfig(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	cfg := base.Config
	cfg.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Minute, Retries: 7}
	if _, err := f.images.Commit(ctx, storage.CommitOptions{Parent: "busybox", Config: cfg, Refs: []string{"hc:latest"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		own  *container.HealthConfig
		want string
	}{
		{nil, "[CMD true] 1m0s 7"},
		{&container.HealthConfig{Interval: time.Second}, "[CMD true] 1s 7"},
		{&container.HealthConfig{Test: []string{"NONE"}}, "[NONE] 1m0s 7"},
		{&container.HealthConfig{Test: []string{"CMD-SHELL", "x"}, Retries: 1}, "[CMD-SHELL x] 1m0s 1"},
	} {
		resp, err := s.Create(ctx, CreateRequest{Config: &container.Config{Image: "hc:latest", Cmd: []string{"true"}, Healthcheck: tc.own}})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := s.Inspect(ctx, resp.ID)
		h := c.Config.Healthcheck
		if got := fmt.Sprintf("%v %v %d", h.Test, h.Interval, h.Retries); got != tc.want {
			t.Errorf("own %+v: %s, want %s", tc.own, got, tc.want)
		}
		if err := s.Remove(ctx, resp.ID, RemoveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestApplyInit(t *testing.T) {
	on, off := true, false
	bin := filepath.Join(t.TempDir(), "tini")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := initBinary
	defer func() { initBinary = old }()
	initBinary = bin
	for _, tc := range []struct {
		host *container.HostConfig
		want string
	}{
		{nil, "sleep 1"},
		{&container.HostConfig{Init: &off}, "sleep 1"},
		{&container.HostConfig{Init: &on}, "/sbin/docker-init -- sleep 1"},
	} {
		sp := &specs.Spec{Process: &specs.Process{Args: []string{"sleep", "1"}}}
		if err := applyInit(sp, tc.host); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(sp.Process.Args, " "); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.host, got, tc.want)
		}
		if got := strings.Join(withoutInit(sp.Process.Args, tc.host), " "); got != "sleep 1" {
			t.Errorf("withoutInit: %q", got)
		}
		if m := specMount(sp, initPath); (m != nil) != (tc.want != "sleep 1") || m != nil && (m.Source != bin || !slices.Contains(m.Options, "ro")) {
			t.Errorf("init mount %+v", m)
		}
	}
	initBinary = filepath.Join(t.TempDir(), "missing")
	err := applyInit(&specs.Spec{Process: &specs.Process{Args: []string{"x"}}}, &container.HostConfig{Init: &on})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "apt-get install tini") {
		t.Fatalf("missing tini: %v", err)
	}
}

func TestImagesPruneAndHistory(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	defer s.Close()
	ctx := context.Background()
	h, err := s.ImageHistory(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) == 0 || !strings.HasPrefix(h[0].ID, "sha256:") || len(h[0].Tags) != 1 || !strings.HasSuffix(h[0].Tags[0], "busybox:latest") {
		t.Fatalf("history %+v", h)
	}
	var size int64
	for _, i := range h {
		size += i.Size
	}
	if size <= 0 {
		t.Fatalf("history without layer sizes: %+v", h)
	}
	if _, err := s.ImageHistory(ctx, "nope"); !errdefs.IsNotFound(err) {
		t.Fatalf("history of a missing image: %v", err)
	}
	base, err := f.images.DockerConfig(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.images.Commit(ctx, storage.CommitOptions{Parent: "busybox", Config: base.Config, Comment: "x", Refs: []string{"other:1"}}); err != nil {
		t.Fatal(err)
	}
	// busybox is used by a container: never pruned; other:1 is tagged:
	// only pruned with dangling=false.
	id := create(t, s, "user", "true")
	rep, err := s.ImagesPrune(ctx, nil)
	if err != nil || len(rep.ImagesDeleted) != 0 {
		t.Fatalf("prune dangling: %+v %v", rep, err)
	}
	rep, err = s.ImagesPrune(ctx, Filters{"dangling": {"false"}})
	if err != nil || len(rep.ImagesDeleted) != 2 || !strings.HasSuffix(rep.ImagesDeleted[0].Untagged, "other:1") {
		t.Fatalf("prune all: %+v %v", rep, err)
	}
	if _, err := s.cfg.Images.Image(ctx, "busybox"); err != nil {
		t.Fatalf("an image in use was pruned: %v", err)
	}
	if _, err := s.ImagesPrune(ctx, Filters{"dangling": {"maybe"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad filter: %v", err)
	}
	_ = s.Remove(ctx, id, RemoveOptions{})
}

// TestHealthSurvivesRestart: the check of a running container resumes
// from its recorded state when silod comes back (not from "starting"),
// and a stopped container keeps showing its last state.
func TestHealthSurvivesRestart(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	s := openProbed(t, f, 0)
	resp, err := s.Create(ctx, CreateRequest{Name: "hc", Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "60"},
		Healthcheck: &container.HealthConfig{Test: []string{"CMD", "check"}, Interval: 20 * time.Millisecond, Retries: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
	healthy := func(s *Service) *container.Health {
		var h *container.Health
		eventually(t, 5*time.Second, func() bool {
			c, _ := s.Inspect(ctx, "hc")
			h = c.State.Health
			return h != nil && h.Status == container.Healthy
		})
		return h
	}
	before := healthy(s)
	s.Close()

	// Probes fail from now on: ten in a row (200 ms at least) make it
	// unhealthy; right after the restart it is still healthy, with the
	// earlier results in its log.
	s = openProbed(t, f, 1)
	c, _ := s.Inspect(ctx, "hc")
	h := c.State.Health
	if h == nil || h.Status != container.Healthy || len(h.Log) < len(before.Log) || h.Log[0].Start.UnixNano() != before.Log[0].Start.UnixNano() {
		t.Fatalf("health after the restart %+v, want the recorded %+v", h, before)
	}
	eventually(t, 10*time.Second, func() bool {
		c, _ := s.Inspect(ctx, "hc")
		return c.State.Health != nil && c.State.Health.Status == container.Unhealthy
	})
	if err := s.Kill(ctx, "hc", "KILL"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(ctx, "hc", container.WaitConditionNotRunning); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openProbed(t, f, 0)
	defer s.Close()
	c, _ = s.Inspect(ctx, "hc")
	if c.State.Running || c.State.Health == nil || c.State.Health.Status != container.Unhealthy {
		t.Fatalf("stopped container after a restart: running %v, health %+v", c.State.Running, c.State.Health)
	}
	if err := s.Remove(ctx, "hc", RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond every few milliseconds until it holds, failing the
// test after d.
func eventually(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("condition not met within %v", d)
		}
	}
}
