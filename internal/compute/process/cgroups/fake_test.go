package cgroups

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// These tests run the v2 setters and stats on a plain directory standing
// in for a cgroup (this CI host has no v2 memory, cpu, io or pids), so
// they need no root.

func fakeCgroup(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func fakeV2(t *testing.T, files map[string]string) (*manager, string) {
	dir := fakeCgroup(t, files)
	return &manager{mode: Unified, v1: map[string]string{}, v2: dir, groups: []*group{{dir: dir, version: 2}}}, dir
}

func wantFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	for name, w := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if string(b) != w {
			t.Errorf("%s = %q, want %q", name, b, w)
		}
	}
}

func TestSetMemoryV2(t *testing.T) {
	m, dir := fakeV2(t, map[string]string{"memory.max": "", "memory.swap.max": "", "memory.low": "", "memory.current": "1000\n"})
	set := func(mem *specs.LinuxMemory) error { return m.Set(&specs.LinuxResources{Memory: mem}) }
	if err := set(&specs.LinuxMemory{Limit: ptr[int64](2000), Swap: ptr[int64](3000), Reservation: ptr[int64](500),
		Swappiness: ptr[uint64](10), DisableOOMKiller: ptr(true), KernelTCP: ptr[int64](1)}); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, map[string]string{"memory.max": "2000", "memory.swap.max": "1000", "memory.low": "500"})
	if err := set(&specs.LinuxMemory{Limit: ptr[int64](-1)}); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, map[string]string{"memory.max": "max", "memory.swap.max": "max"})
	err := set(&specs.LinuxMemory{Limit: ptr[int64](500), CheckBeforeUpdate: ptr(true)})
	if err == nil || !strings.Contains(err.Error(), "below the current usage 1000") {
		t.Errorf("checkBeforeUpdate: %v", err)
	}
	if err := set(&specs.LinuxMemory{Limit: ptr[int64](5000), CheckBeforeUpdate: ptr(true)}); err != nil {
		t.Errorf("checkBeforeUpdate above usage: %v", err)
	}
	// Without swap accounting "unlimited" and "none" are fine, a real
	// swap limit is not.
	if err := os.Remove(filepath.Join(dir, "memory.swap.max")); err != nil {
		t.Fatal(err)
	}
	if err := set(&specs.LinuxMemory{Limit: ptr[int64](100), Swap: ptr[int64](100)}); err != nil {
		t.Errorf("swap == limit without swap file: %v", err)
	}
	err = set(&specs.LinuxMemory{Limit: ptr[int64](100), Swap: ptr[int64](200)})
	if want := `write ` + filepath.Join(dir, "memory.swap.max") + `="100": no such file or directory`; err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestSetCPUV2(t *testing.T) {
	m, dir := fakeV2(t, map[string]string{"cpu.weight": "", "cpu.max": "max 100000\n", "cpu.max.burst": "", "cpu.idle": "",
		"cpuset.cpus": "", "cpuset.mems": ""})
	set := func(c *specs.LinuxCPU) error { return m.Set(&specs.LinuxResources{CPU: c}) }
	if err := set(&specs.LinuxCPU{Period: ptr[uint64](200000)}); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, map[string]string{"cpu.max": "max 200000"})
	if err := set(&specs.LinuxCPU{Shares: ptr[uint64](1024), Quota: ptr[int64](50000), Period: ptr[uint64](200000),
		Burst: ptr[uint64](10), Idle: ptr[int64](1), Cpus: "0-1", Mems: "0"}); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, map[string]string{"cpu.weight": "39", "cpu.max": "50000 200000", "cpu.max.burst": "10", "cpu.idle": "1",
		"cpuset.cpus": "0-1", "cpuset.mems": "0"})
	if err := set(&specs.LinuxCPU{Period: ptr[uint64](100000)}); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, map[string]string{"cpu.max": "50000 100000"})
	if err := set(&specs.LinuxCPU{Quota: ptr[int64](-1)}); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, map[string]string{"cpu.max": "max"})
	if err := set(&specs.LinuxCPU{RealtimeRuntime: ptr[int64](100)}); err == nil {
		t.Error("realtime on v2: want error")
	}
	// Zero values are "unset": nothing to write, no error.
	if err := set(&specs.LinuxCPU{Shares: ptr[uint64](0), Quota: ptr[int64](0)}); err != nil {
		t.Error(err)
	}
}

func TestSetBlockIOV2(t *testing.T) {
	dev := specs.LinuxBlockIODevice{Major: 8, Minor: 0}
	b := &specs.LinuxBlockIO{
		Weight:       ptr[uint16](500),
		LeafWeight:   ptr[uint16](300),
		WeightDevice: []specs.LinuxWeightDevice{{LinuxBlockIODevice: dev, Weight: ptr[uint16](100)}},
	}
	m, dir := fakeV2(t, map[string]string{"io.weight": "", "io.max": ""})
	if err := m.Set(&specs.LinuxResources{BlockIO: b}); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, map[string]string{"io.weight": "8:0 910"})
	m, dir = fakeV2(t, map[string]string{"io.weight": "", "io.bfq.weight": "", "io.max": ""})
	b.WeightDevice = nil
	if err := m.Set(&specs.LinuxResources{BlockIO: b}); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, map[string]string{"io.bfq.weight": "500", "io.weight": ""})
	for rate, want := range map[uint64]string{0: "8:0 wiops=max", 7: "8:0 wiops=7"} {
		err := m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev, Rate: rate}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		wantFiles(t, dir, map[string]string{"io.max": want})
	}
	err := m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
		ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: -1}}},
	}})
	if err == nil {
		t.Error("negative major: want error")
	}
}

func TestSetMisc(t *testing.T) {
	m, dir := fakeV2(t, map[string]string{"pids.max": "", "hugetlb.2MB.max": "", "hugetlb.1GB.max": "", "hugetlb.1GB.rsvd.max": "",
		"rdma.max": "", "cgroup.max.depth": ""})
	for limit, want := range map[int64]string{0: "max", -1: "max", 10: "10"} {
		if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(limit)}}); err != nil {
			t.Fatal(err)
		}
		wantFiles(t, dir, map[string]string{"pids.max": want})
	}
	err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}, {Pagesize: "1GB", Limit: 1 << 30}}})
	if err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, map[string]string{"hugetlb.2MB.max": "2097152", "hugetlb.1GB.max": "1073741824", "hugetlb.1GB.rsvd.max": "1073741824"})
	if err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB.max/../x"}}}); err == nil {
		t.Error("bad page size: want error")
	}
	err = m.Set(&specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptr[uint32](3), HcaObjects: ptr[uint32](4)}}})
	if err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, map[string]string{"rdma.max": "mlx5_0 hca_handle=3 hca_object=4"})
	if err := m.Set(&specs.LinuxResources{Unified: map[string]string{"cgroup.max.depth": "2"}}); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, map[string]string{"cgroup.max.depth": "2"})
	for _, k := range []string{"a/b.c", ".x", "nodot", "../x.y"} {
		if err := m.Set(&specs.LinuxResources{Unified: map[string]string{k: "1"}}); err == nil {
			t.Errorf("unified key %q: want error", k)
		}
	}
	// Network settings are ignored where net_cls/net_prio are not mounted.
	if err := m.Set(&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](1)}}); err != nil {
		t.Error(err)
	}

	legacy := &manager{mode: Legacy, v1: map[string]string{"memory": dir}}
	if err := legacy.Set(&specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}); err == nil {
		t.Error("unified on a legacy host: want error")
	}
	if err := legacy.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](1)}}); err == nil {
		t.Error("pids without a pids controller: want error")
	}
	if err := legacy.Set(&specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"x": {HcaHandles: ptr[uint32](1)}}}); err != nil {
		t.Errorf("rdma without rdma controller is ignored: %v", err)
	}
	if err := legacy.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Access: "rwm"}}}); err == nil {
		t.Error("devices without a devices controller: want error")
	}
}

func TestHybridTarget(t *testing.T) {
	v1 := fakeCgroup(t, nil)
	v2 := fakeCgroup(t, map[string]string{"cgroup.controllers": "hugetlb rdma\n"})
	m := &manager{mode: Hybrid, v1: map[string]string{"memory": v1, "pids": v1}, v2: v2}
	for _, tt := range []struct {
		c, c2, dir string
		v          int
	}{
		{"memory", "memory", v1, 1}, {"hugetlb", "hugetlb", v2, 2}, {"rdma", "rdma", v2, 2}, {"blkio", "io", "", 0},
	} {
		dir, v, _ := m.target(tt.c, tt.c2)
		if dir != tt.dir || v != tt.v {
			t.Errorf("target(%q) = %q, %d; want %q, %d", tt.c, dir, v, tt.dir, tt.v)
		}
	}
}

func TestStatsV2(t *testing.T) {
	files := map[string]string{
		"cpu.stat":              "usage_usec 100\nuser_usec 60\nsystem_usec 40\nnr_periods 5\nnr_throttled 2\nthrottled_usec 7\n",
		"cpuset.cpus.effective": "0-1\n", "cpuset.mems.effective": "0\n",
		"memory.current": "100\n", "memory.max": "1000\n", "memory.peak": "200\n",
		"memory.events":       "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
		"memory.swap.current": "10\n", "memory.swap.max": "max\n", "memory.stat": "anon 1\nfile 5\n",
		"pids.current": "2\n", "pids.max": "max\n",
		"io.stat": "8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
	}
	for _, s := range hugePageSizes() {
		files["hugetlb."+s+".current"] = "0\n"
		files["hugetlb."+s+".events"] = "max 4\n"
	}
	m, _ := fakeV2(t, files)
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		CPU: CPU{Usage: CPUUsage{Total: 100000, User: 60000, Kernel: 40000},
			Throttling: Throttling{Periods: 5, ThrottledPeriods: 2, ThrottledTime: 7000}},
		CPUSet: CPUSet{CPUs: []uint16{0, 1}, Mems: []uint16{0}},
		Memory: Memory{Cache: 5, Usage: MemoryEntry{Usage: 100, Limit: 1000, Max: 200, Failcnt: 3},
			Swap: MemoryEntry{Usage: 110, Limit: math.MaxUint64}, Raw: map[string]uint64{"anon": 1, "file": 5}},
		Pids:  Pids{Current: 2},
		Blkio: Blkio{IoServiceBytesRecursive: []BlkioEntry{{8, 0, "Read", 4096}, {8, 0, "Write", 0}}, IoServicedRecursive: []BlkioEntry{{8, 0, "Read", 1}, {8, 0, "Write", 0}}},
	}
	for _, s := range hugePageSizes() {
		if want.Hugetlb == nil {
			want.Hugetlb = map[string]Hugetlb{}
		}
		want.Hugetlb[s] = Hugetlb{Failcnt: 4}
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("Stats() =\n%+v\nwant\n%+v", st, want)
	}
}
