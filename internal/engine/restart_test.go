package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestRestartDelay(t *testing.T) {
	d := time.Duration(0)
	var got []time.Duration
	for range 4 {
		d = nextRestartDelay(d, time.Second)
		got = append(got, d)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if d := nextRestartDelay(800*time.Millisecond, 10*time.Second); d != restartMinDelay {
		t.Fatalf("after a 10 s run: %v", d)
	}
	if d := nextRestartDelay(50*time.Second, time.Second); d != restartMaxDelay {
		t.Fatalf("cap: %v", d)
	}
}

func TestCheckRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		p    container.RestartPolicy
		auto bool
		ok   bool
	}{
		{container.RestartPolicy{}, false, true},
		{container.RestartPolicy{Name: "no"}, true, true},
		{container.RestartPolicy{Name: "always"}, false, true},
		{container.RestartPolicy{Name: "unless-stopped"}, false, true},
		{container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}, false, true},
		{container.RestartPolicy{Name: "on-failure", MaximumRetryCount: -1}, false, false},
		{container.RestartPolicy{Name: "always", MaximumRetryCount: 1}, false, false},
		{container.RestartPolicy{Name: "sometimes"}, false, false},
		{container.RestartPolicy{Name: "always"}, true, false},
	} {
		err := checkRestartPolicy(&container.HostConfig{RestartPolicy: tc.p, AutoRemove: tc.auto})
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errdefs.ErrInvalidArgument)) {
			t.Errorf("%+v autoremove=%v: %v", tc.p, tc.auto, err)
		}
	}
}

func createWithPolicy(t *testing.T, s *Service, p container.RestartPolicy, cmd ...string) string {
	t.Helper()
	resp, err := s.Create(context.Background(), CreateRequest{
		Config:     &container.Config{Image: "busybox", Cmd: cmd},
		HostConfig: &container.HostConfig{RestartPolicy: p},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

// waitState waits (in the test only) until fn accepts the container.
func waitState(t *testing.T, s *Service, id string, what string, fn func(container.InspectResponse) bool) container.InspectResponse {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := s.Inspect(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if fn(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %+v, restarts %d", what, *c.State, c.RestartCount)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *fakeMonitors) exitOf(id string, code int) {
	m.mu.Lock()
	mon := m.running[id]
	m.mu.Unlock()
	mon.exit(code)
}

func TestRestartOnFailure(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	defer s.Close()
	ctx := context.Background()
	id := createWithPolicy(t, s, container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}, "sh", "-c", "exit 3")
	start := time.Now()
	if err := s.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Remove(ctx, id, RemoveOptions{Force: true}); err != nil {
			t.Error(err)
		}
	}()
	c := waitState(t, s, id, "two restarts", func(c container.InspectResponse) bool {
		return c.State.Status == container.StateExited && c.RestartCount == 2
	})
	if c.State.ExitCode != 3 {
		t.Fatalf("exit code %d", c.State.ExitCode)
	}
	// Backoff: 100 ms + 200 ms.
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("restarted after %v: no backoff", el)
	}
	time.Sleep(500 * time.Millisecond)
	if c, _ := s.Inspect(ctx, id); c.RestartCount != 2 || c.State.Status != container.StateExited {
		t.Fatalf("restarted again: %+v %d", c.State, c.RestartCount)
	}
	if n := len(f.mons.cfgs); n != 3 {
		t.Fatalf("%d starts, want 3", n)
	}
}

func TestRestartAlwaysAndStop(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	ctx := context.Background()
	id := createWithPolicy(t, s, container.RestartPolicy{Name: "always"}, "sleep", "60")
	if err := s.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	f.mons.exitOf(id, 0)
	waitState(t, s, id, "restart after exit 0", func(c container.InspectResponse) bool {
		return c.State.Running && c.RestartCount == 1
	})
	f.mons.exitOf(id, 137)
	waitState(t, s, id, "restart after a kill", func(c container.InspectResponse) bool {
		return c.State.Running && c.RestartCount == 2
	})
	zero := 0
	if err := s.Stop(ctx, id, "", &zero); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	c, _ := s.Inspect(ctx, id)
	if c.State.Status != container.StateExited || c.RestartCount != 2 {
		t.Fatalf("after stop: %+v %d", *c.State, c.RestartCount)
	}
	// The user's start resets the count.
	if err := s.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Inspect(ctx, id); !c.State.Running || c.RestartCount != 0 {
		t.Fatalf("after start: %+v %d", *c.State, c.RestartCount)
	}
	// rm -f restarts nothing either.
	if err := s.Remove(ctx, id, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	n := len(f.mons.cfgs)
	time.Sleep(300 * time.Millisecond)
	if len(f.mons.cfgs) != n {
		t.Fatal("restarted after rm -f")
	}
	s.Close()
}

func TestRestartAcrossDaemonRestart(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	ctx := context.Background()
	always := createWithPolicy(t, s, container.RestartPolicy{Name: "always"}, "sleep", "60")
	unless := createWithPolicy(t, s, container.RestartPolicy{Name: "unless-stopped"}, "sleep", "60")
	stopped := createWithPolicy(t, s, container.RestartPolicy{Name: "unless-stopped"}, "sleep", "60")
	for _, id := range []string{always, unless, stopped} {
		if err := s.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	zero := 0
	if err := s.Stop(ctx, stopped, "", &zero); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The daemon was down while the containers (their monitors) went.
	f.mons.mu.Lock()
	f.mons.gone = true
	f.mons.mu.Unlock()
	s = f.open(t)
	defer s.Close()
	f.mons.mu.Lock()
	f.mons.gone = false
	f.mons.mu.Unlock()
	for _, id := range []string{always, unless} {
		waitState(t, s, id, "restart on daemon start", func(c container.InspectResponse) bool {
			return c.State.Running && c.RestartCount == 1
		})
	}
	time.Sleep(300 * time.Millisecond)
	if c, _ := s.Inspect(ctx, stopped); c.State.Status != container.StateExited || c.RestartCount != 0 {
		t.Errorf("unless-stopped container stopped by the user: %+v %d", *c.State, c.RestartCount)
	}
	for _, id := range []string{always, unless, stopped} {
		if err := s.Remove(ctx, id, RemoveOptions{Force: true}); err != nil {
			t.Error(err)
		}
	}
}
