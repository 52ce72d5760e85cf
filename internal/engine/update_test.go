package engine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/engine/ocispec"
	"github.com/silo-containers/silo/internal/errdefs"
)

// updatingMonitors adds the Updater seam to the fake monitors, recording
// what each call applied.
type updatingMonitors struct {
	*fakeMonitors
	mu      sync.Mutex
	applied []*specs.LinuxResources
	fail    error
}

func (u *updatingMonitors) Update(ctx context.Context, cfg MonitorConfig, r *specs.LinuxResources) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fail != nil {
		return u.fail
	}
	u.applied = append(u.applied, r)
	return nil
}

func TestUpdate(t *testing.T) {
	f := setup(t)
	um := &updatingMonitors{fakeMonitors: f.mons}
	s := f.openWith(t, um)
	defer s.Close()
	ctx := context.Background()
	resp, err := s.Create(ctx, CreateRequest{Name: "up", Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "60"}},
		HostConfig: &container.HostConfig{Resources: container.Resources{Memory: 64 << 20, MemorySwap: 128 << 20, NanoCPUs: 1e9}}})
	if err != nil {
		t.Fatal(err)
	}
	specLimits := func() *specs.LinuxResources {
		raw, err := os.ReadFile(filepath.Join(s.ctrDir(resp.ID), "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var sp specs.Spec
		if err := json.Unmarshal(raw, &sp); err != nil {
			t.Fatal(err)
		}
		return sp.Linux.Resources
	}
	pids := int64(40)
	devices := specLimits().Devices

	// Created, not running: config.json and the record change, the
	// runtime is not asked.
	if err := s.Update(ctx, "up", container.UpdateConfig{Resources: container.Resources{PidsLimit: &pids}}); err != nil {
		t.Fatal(err)
	}
	if r := specLimits(); r.Pids == nil || *r.Pids.Limit != 40 || r.Memory == nil || *r.Memory.Limit != 64<<20 || !reflect.DeepEqual(r.Devices, devices) {
		t.Fatalf("config.json after an update of a created container: %+v", r)
	}
	if len(um.applied) != 0 {
		t.Fatalf("runtime asked to update a container that does not run: %d calls", len(um.applied))
	}

	if err := s.Start(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, "up", container.UpdateConfig{Resources: container.Resources{Memory: 96 << 20, MemorySwap: 192 << 20},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(um.applied) != 1 || *um.applied[0].Memory.Limit != 96<<20 || *um.applied[0].Pids.Limit != 40 {
		t.Fatalf("runtime got %+v", um.applied)
	}
	c, _ := s.Inspect(ctx, "up")
	if c.HostConfig.Memory != 96<<20 || c.HostConfig.NanoCPUs != 1e9 || c.HostConfig.RestartPolicy.MaximumRetryCount != 2 {
		t.Fatalf("record after the update: %+v %+v", c.HostConfig.Resources, c.HostConfig.RestartPolicy)
	}

	for _, tc := range []struct {
		name string
		upd  container.UpdateConfig
		want error
	}{
		{"memory above swap", container.UpdateConfig{Resources: container.Resources{Memory: 512 << 20}}, errdefs.ErrConflict},
		{"cpus and a quota", container.UpdateConfig{Resources: container.Resources{CPUQuota: 50000}}, errdefs.ErrInvalidArgument},
		{"memory below 6MB", container.UpdateConfig{Resources: container.Resources{Memory: 1 << 20}}, errdefs.ErrInvalidArgument},
		{"bad restart policy", container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: "sometimes"}}, errdefs.ErrInvalidArgument},
		{"ulimits", container.UpdateConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 1, Hard: 1}}}}, errdefs.ErrInvalidArgument},
	} {
		if err := s.Update(ctx, "up", tc.upd); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The runtime refuses: nothing changes.
	um.fail = errors.New("no")
	if err := s.Update(ctx, "up", container.UpdateConfig{Resources: container.Resources{CPUShares: 512}}); err == nil {
		t.Fatal("update succeeded though the runtime failed")
	}
	if r := specLimits(); r.CPU.Shares != nil {
		t.Fatalf("config.json kept a refused update: %+v", r.CPU)
	}
	if c, _ := s.Inspect(ctx, "up"); c.HostConfig.CPUShares != 0 {
		t.Fatalf("record kept a refused update: %d", c.HostConfig.CPUShares)
	}
	if err := s.Update(ctx, "nosuch", container.UpdateConfig{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("update of a missing container: %v", err)
	}
	if err := s.Remove(ctx, "up", RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateAutoRemove: an AutoRemove container keeps "no" as its restart
// policy, as in Docker.
func TestUpdateAutoRemove(t *testing.T) {
	f := setup(t)
	s := f.open(t)
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Create(ctx, CreateRequest{Name: "rm", Config: &container.Config{Image: "busybox", Cmd: []string{"true"}},
		HostConfig: &container.HostConfig{AutoRemove: true}}); err != nil {
		t.Fatal(err)
	}
	err := s.Update(ctx, "rm", container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("restart policy of an AutoRemove container: %v", err)
	}
	if err := s.Remove(ctx, "rm", RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

// FuzzMergeUpdate: any update body is merged and mapped to limits without
// a panic; what is refused is an invalid argument or a conflict.
func FuzzMergeUpdate(f *testing.F) {
	f.Add(`{"Memory":67108864,"MemorySwap":134217728}`)
	f.Add(`{"NanoCPUs":1000000000,"CpuQuota":5}`)
	f.Add(`{"PidsLimit":-7,"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":-1}}`)
	f.Add(`{"BlkioWeight":1,"Memory":-1}`)
	f.Fuzz(func(t *testing.T, body string) {
		var upd container.UpdateConfig
		if json.Unmarshal([]byte(body), &upd) != nil {
			return
		}
		host := &container.HostConfig{Resources: container.Resources{Memory: 64 << 20, MemorySwap: 128 << 20}}
		err := mergeUpdate(host, &upd)
		if err == nil {
			spec := &specs.Spec{Linux: &specs.Linux{}}
			err = ocispec.UpdateLimits(spec, &host.Resources)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrConflict) {
			t.Fatalf("%q: %v", body, err)
		}
	})
}
