package cgroups

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// mountinfo lines for the layouts the tests use.
const (
	miThisHost = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	miSystemdHybrid = `25 24 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
32 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
33 25 0:30 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,cpuset,clone_children
`
	miLegacy = `22 21 0:20 / /sys/fs/cgroup rw - tmpfs tmpfs rw
23 22 0:21 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
24 22 0:22 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
90 80 0:22 / /var/lib/silo/x/rootfs/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
`
	miUnified = `25 24 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	miContainerNS = `700 600 0:30 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory
701 600 0:31 /docker/abc /sys/fs/cgroup/my\040cpu rw - cgroup cgroup rw,cpu
`
)

func TestParseLayout(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		mode    HostMode
		v1      map[string]string // joined controllers -> mountpoint
		unified string
		wantErr bool
	}{
		{name: "this host", in: miThisHost, mode: Hybrid, unified: "/sys/fs/cgroup/unified", v1: map[string]string{
			"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct", "cpuset": "/sys/fs/cgroup/cpuset",
			"memory": "/sys/fs/cgroup/memory", "devices": "/sys/fs/cgroup/devices", "freezer": "/sys/fs/cgroup/freezer",
			"blkio": "/sys/fs/cgroup/blkio", "pids": "/sys/fs/cgroup/pids", "name=systemd": "/sys/fs/cgroup/systemd",
		}},
		{name: "systemd hybrid", in: miSystemdHybrid, mode: Hybrid, unified: "/sys/fs/cgroup/unified", v1: map[string]string{
			"name=systemd": "/sys/fs/cgroup/systemd", "cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
			"net_cls,net_prio": "/sys/fs/cgroup/net_cls,net_prio", "memory": "/sys/fs/cgroup/memory", "cpuset": "/sys/fs/cgroup/cpuset",
		}},
		{name: "legacy with a bind mount elsewhere", in: miLegacy, mode: Legacy, v1: map[string]string{
			"cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory",
		}},
		{name: "unified", in: miUnified, mode: Unified, unified: "/sys/fs/cgroup", v1: map[string]string{}},
		{name: "unified with named v1", in: miUnified + "30 25 0:27 / /run/foo rw - cgroup cgroup rw,name=foo\n", mode: Unified, unified: "/sys/fs/cgroup", v1: map[string]string{}},
		{name: "escaped mountpoint", in: miContainerNS, mode: Legacy, v1: map[string]string{
			"memory": "/sys/fs/cgroup/memory", "cpu": "/sys/fs/cgroup/my cpu",
		}},
		{name: "nothing", in: "1 0 0:1 / / rw - ext4 /dev/vda rw\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := parseLayout(strings.NewReader(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want error, got %+v", l)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.mode != tt.mode {
				t.Errorf("mode = %v, want %v", l.mode, tt.mode)
			}
			got := map[string]string{}
			for _, h := range l.v1 {
				got[strings.Join(h.controllers, ",")] = h.mountpoint
			}
			if !reflect.DeepEqual(got, tt.v1) {
				t.Errorf("v1 = %v, want %v", got, tt.v1)
			}
			u := ""
			if l.unified != nil {
				u = l.unified.mountpoint
			}
			if u != tt.unified {
				t.Errorf("unified = %q, want %q", u, tt.unified)
			}
		})
	}
}

func TestParseSelfCgroup(t *testing.T) {
	in := `12:pids:/user.slice/user-1000.slice
4:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
0::/user.slice/user-1000.slice/session-2.scope
9:rdma:/a:b
`
	got, err := parseSelfCgroup(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"pids": "/user.slice/user-1000.slice", "cpu": "/user.slice", "cpuacct": "/user.slice",
		"name=systemd": "/user.slice/user-1000.slice/session-2.scope",
		"":             "/user.slice/user-1000.slice/session-2.scope", "rdma": "/a:b",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseSelfCgroup(strings.NewReader("garbage\n")); err == nil {
		t.Error("want error for a line without fields")
	}
}

func TestCleanCgroupsPath(t *testing.T) {
	tests := []struct {
		path, id, want string
		wantErr        bool
	}{
		{path: "", id: "abc", want: "/silo/abc"},
		{path: "", id: "a/b", wantErr: true},
		{path: "", id: "..", wantErr: true},
		{path: "", id: "", wantErr: true},
		{path: "/foo/bar", want: "/foo/bar"},
		{path: "/foo/../../bar/", want: "/bar"},
		{path: "/", wantErr: true},
		{path: "foo/bar", want: "foo/bar"},
		{path: "../../foo", want: "foo"},
		{path: "./", wantErr: true},
		{path: "a\x00b", wantErr: true},
	}
	for _, tt := range tests {
		got, err := cleanCgroupsPath(tt.path, tt.id)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("cleanCgroupsPath(%q, %q) = %q, %v; want %q, error %v", tt.path, tt.id, got, err, tt.want, tt.wantErr)
		}
	}
}

func mustLayout(t *testing.T, mi string) *layout {
	t.Helper()
	l, err := parseLayout(strings.NewReader(mi))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNewManagerPaths(t *testing.T) {
	own := map[string]string{
		"cpu": "/user.slice", "cpuacct": "/user.slice", "memory": "/process_api/x", "name=systemd": "/s",
		"net_cls": "/", "net_prio": "/", "cpuset": "/", "": "/u",
	}
	tests := []struct {
		name, mi, path string
		want           map[string]string
	}{
		{name: "absolute hybrid", mi: miSystemdHybrid, path: "/silo/c1", want: map[string]string{
			"cpu": "/sys/fs/cgroup/cpu,cpuacct/silo/c1", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/silo/c1",
			"net_cls": "/sys/fs/cgroup/net_cls,net_prio/silo/c1", "net_prio": "/sys/fs/cgroup/net_cls,net_prio/silo/c1",
			"memory": "/sys/fs/cgroup/memory/silo/c1", "cpuset": "/sys/fs/cgroup/cpuset/silo/c1",
			"name=systemd": "/sys/fs/cgroup/systemd/silo/c1", "": "/sys/fs/cgroup/unified/silo/c1",
		}},
		{name: "relative hybrid", mi: miSystemdHybrid, path: "k/c1", want: map[string]string{
			"cpu": "/sys/fs/cgroup/cpu,cpuacct/user.slice/k/c1", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/user.slice/k/c1",
			"net_cls": "/sys/fs/cgroup/net_cls,net_prio/k/c1", "net_prio": "/sys/fs/cgroup/net_cls,net_prio/k/c1",
			"memory": "/sys/fs/cgroup/memory/process_api/x/k/c1", "cpuset": "/sys/fs/cgroup/cpuset/k/c1",
			"name=systemd": "/sys/fs/cgroup/systemd/s/k/c1", "": "/sys/fs/cgroup/unified/u/k/c1",
		}},
		{name: "relative unified", mi: miUnified, path: "c1", want: map[string]string{"": "/sys/fs/cgroup/u/c1"}},
		{name: "absolute unified", mi: miUnified, path: "/silo/c1", want: map[string]string{"": "/sys/fs/cgroup/silo/c1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := newManager(mustLayout(t, tt.mi), own, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Paths(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Paths() = %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestResolveMountRoot(t *testing.T) {
	// Inside a container whose cgroup mount shows /docker/abc at its
	// mountpoint, our own cgroup /docker/abc/sub is "sub" below it.
	h := &hierarchy{controllers: []string{"memory"}, mountpoint: "/sys/fs/cgroup/memory", root: "/docker/abc", version: 1}
	if got, want := h.resolve("c1", "/docker/abc/sub"), "/sys/fs/cgroup/memory/sub/c1"; got != want {
		t.Errorf("relative: got %q, want %q", got, want)
	}
	if got, want := h.resolve("/silo/c1", "/docker/abc/sub"), "/sys/fs/cgroup/memory/silo/c1"; got != want {
		t.Errorf("absolute: got %q, want %q", got, want)
	}
	// In a cgroup namespace rooted at the mount root, /proc/self/cgroup
	// already shows paths relative to it.
	if got, want := h.resolve("c1", "/sub"), "/sys/fs/cgroup/memory/sub/c1"; got != want {
		t.Errorf("namespaced: got %q, want %q", got, want)
	}
}

func TestNewManagerMissingOwn(t *testing.T) {
	if _, err := newManager(mustLayout(t, miLegacy), map[string]string{"memory": "/"}, "rel"); err == nil {
		t.Error("want error when /proc/self/cgroup lacks a hierarchy")
	}
	// On a hybrid host a missing "0::" line only drops the unified tree.
	m, err := newManager(mustLayout(t, miThisHost), map[string]string{
		"cpu": "/", "cpuacct": "/", "cpuset": "/", "memory": "/", "devices": "/", "freezer": "/",
		"blkio": "/", "pids": "/", "name=systemd": "/",
	}, "rel")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Paths()[""]; ok {
		t.Error("unexpected unified path")
	}
}

func TestMountSources(t *testing.T) {
	m, err := newManager(mustLayout(t, miSystemdHybrid), nil, "/silo/c1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]MountSource{}
	for _, ms := range m.MountSources() {
		got[ms.Subdir] = ms
	}
	want := map[string]MountSource{
		"systemd":          {Subdir: "systemd", HostPath: "/sys/fs/cgroup/systemd/silo/c1", Version: 1},
		"cpu,cpuacct":      {Subdir: "cpu,cpuacct", HostPath: "/sys/fs/cgroup/cpu,cpuacct/silo/c1", Symlinks: []string{"cpu", "cpuacct"}, Version: 1},
		"net_cls,net_prio": {Subdir: "net_cls,net_prio", HostPath: "/sys/fs/cgroup/net_cls,net_prio/silo/c1", Symlinks: []string{"net_cls", "net_prio"}, Version: 1},
		"memory":           {Subdir: "memory", HostPath: "/sys/fs/cgroup/memory/silo/c1", Version: 1},
		"cpuset":           {Subdir: "cpuset", HostPath: "/sys/fs/cgroup/cpuset/silo/c1", Version: 1},
		"unified":          {Subdir: "unified", HostPath: "/sys/fs/cgroup/unified/silo/c1", Version: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MountSources:\n got %+v\nwant %+v", got, want)
	}

	m, err = newManager(mustLayout(t, miUnified), nil, "/silo/c1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.MountSources(), []MountSource{{Subdir: "", HostPath: "/sys/fs/cgroup/silo/c1", Version: 2}}; !reflect.DeepEqual(got, want) {
		t.Errorf("unified MountSources = %+v, want %+v", got, want)
	}
}

func TestLoad(t *testing.T) {
	paths := map[string]string{
		"cpu": "/sys/fs/cgroup/cpu,cpuacct/silo/c1", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/silo/c1",
		"memory": "/sys/fs/cgroup/memory/silo/c1", "": "/sys/fs/cgroup/unified/silo/c1",
	}
	created := []string{"/sys/fs/cgroup/memory/silo"}
	m := Load(paths, created).(*manager)
	if !reflect.DeepEqual(m.Paths(), paths) {
		t.Errorf("Paths() = %v", m.Paths())
	}
	if !reflect.DeepEqual(m.Created(), created) {
		t.Errorf("Created() = %v", m.Created())
	}
	if m.mode != Hybrid || len(m.groups) != 3 {
		t.Errorf("mode %v, %d groups; want hybrid, 3", m.mode, len(m.groups))
	}
	if Load(map[string]string{"": "/x"}, nil).(*manager).mode != Unified {
		t.Error("want unified")
	}
	if Load(map[string]string{"memory": "/x"}, nil).(*manager).mode != Legacy {
		t.Error("want legacy")
	}
}

func TestSharesToWeight(t *testing.T) {
	for _, tt := range []struct{ in, want uint64 }{
		{0, 0}, {1, 1}, {2, 1}, {1024, 39}, {512, 20}, {262144, 10000}, {1 << 40, 10000},
	} {
		if got := sharesToWeight(tt.in); got != tt.want {
			t.Errorf("sharesToWeight(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestBlkioToIOWeight(t *testing.T) {
	for _, tt := range []struct {
		in   uint16
		want uint64
	}{{0, 0}, {10, 1}, {1, 1}, {500, 4950}, {1000, 10000}, {5000, 10000}} {
		if got := blkioToIOWeight(tt.in); got != tt.want {
			t.Errorf("blkioToIOWeight(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestSwapV2(t *testing.T) {
	for _, tt := range []struct {
		swap, limit int64
		want        string
		ok, err     bool
	}{
		{swap: 0, limit: 0},
		{swap: 0, limit: 100},
		{swap: 0, limit: -1, want: "max", ok: true},
		{swap: -1, limit: 100, want: "max", ok: true},
		{swap: 100, limit: 100, want: "0", ok: true},
		{swap: 300, limit: 100, want: "200", ok: true},
		{swap: 50, limit: 100, err: true},
		{swap: 50, limit: 0, err: true},
		{swap: 50, limit: -1, err: true},
	} {
		got, ok, err := swapV2(tt.swap, tt.limit)
		if got != tt.want || ok != tt.ok || (err != nil) != tt.err {
			t.Errorf("swapV2(%d, %d) = %q, %v, %v", tt.swap, tt.limit, got, ok, err)
		}
	}
}

func i64(v int64) *int64 { return &v }

func TestDeviceRuleV1(t *testing.T) {
	tests := []struct {
		in      specs.LinuxDeviceCgroup
		want    []string
		wantErr bool
	}{
		{in: specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}, want: []string{"a"}},
		{in: specs.LinuxDeviceCgroup{Allow: true, Type: "a"}, want: []string{"a"}},
		{in: specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}, want: []string{"c 1:3 rwm"}},
		{in: specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(136), Access: "wr"}, want: []string{"c 136:* rw"}},
		{in: specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: i64(-1), Minor: i64(-1), Access: "m"}, want: []string{"b *:* m"}},
		{in: specs.LinuxDeviceCgroup{Allow: true, Type: "a", Major: i64(5), Access: "r"}, want: []string{"b 5:* r", "c 5:* r"}},
		{in: specs.LinuxDeviceCgroup{Allow: true, Access: "mw"}, want: []string{"b *:* wm", "c *:* wm"}},
		{in: specs.LinuxDeviceCgroup{Type: "x"}, wantErr: true},
		{in: specs.LinuxDeviceCgroup{Access: "rx"}, wantErr: true},
		{in: specs.LinuxDeviceCgroup{Major: i64(-5)}, wantErr: true},
		{in: specs.LinuxDeviceCgroup{Minor: i64(math.MaxInt32 + 1)}, wantErr: true},
	}
	for _, tt := range tests {
		d, err := parseDeviceRule(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseDeviceRule(%+v) error %v", tt.in, err)
			continue
		}
		if err == nil && !slices.Equal(d.v1Lines(), tt.want) {
			t.Errorf("parseDeviceRule(%+v).v1Lines() = %q, want %q", tt.in, d.v1Lines(), tt.want)
		}
	}
}

// runDeviceProgram interprets the instructions deviceProgram emits, so that
// the filter's logic is tested without loading it into a kernel.
func runDeviceProgram(t *testing.T, prog []insn, typ, access, major, minor uint32) bool {
	t.Helper()
	var reg [11]uint64
	ctx := [3]uint32{access<<16 | typ, major, minor}
	regs := func(in insn) (uint8, uint8) {
		if littleEndian {
			return in.regs & 0xf, in.regs >> 4
		}
		return in.regs >> 4, in.regs & 0xf
	}
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		dst, src := regs(in)
		switch in.code {
		case opLdxW:
			if src != r1 || in.off%4 != 0 || in.off < 0 || in.off > 8 {
				t.Fatalf("pc %d: bad load %+v", pc, in)
			}
			reg[dst] = uint64(ctx[in.off/4])
		case opAnd32K:
			reg[dst] = uint64(uint32(reg[dst]) & uint32(in.imm))
		case opRsh32K:
			reg[dst] = uint64(uint32(reg[dst]) >> uint(in.imm))
		case opMov32K:
			reg[dst] = uint64(uint32(in.imm))
		case opMov32X:
			reg[dst] = uint64(uint32(reg[src]))
		case opJneK:
			if reg[dst] != uint64(int64(in.imm)) {
				pc += int(in.off)
			}
		case opJneX:
			if reg[dst] != reg[src] {
				pc += int(in.off)
			}
		case opJeqK:
			if reg[dst] == uint64(int64(in.imm)) {
				pc += int(in.off)
			}
		case opExit:
			return reg[r0] == 1
		default:
			t.Fatalf("pc %d: unknown opcode %#x", pc, in.code)
		}
	}
	t.Fatal("program ran off its end")
	return false
}

func TestDeviceProgram(t *testing.T) {
	rules := func(rs ...specs.LinuxDeviceCgroup) []deviceRule {
		out := make([]deviceRule, len(rs))
		for i, r := range rs {
			d, err := parseDeviceRule(r)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = d
		}
		return out
	}
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	allowAll := specs.LinuxDeviceCgroup{Allow: true, Access: "rwm"}
	null := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}
	zeroR := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"}
	denyNullW := specs.LinuxDeviceCgroup{Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "w"}
	ptys := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(136), Access: "rw"}
	blockMknod := specs.LinuxDeviceCgroup{Allow: true, Type: "b", Access: "m"}
	const (
		c = devChar
		b = devBlock
		r = accRead
		w = accWrite
		m = accMknod
	)
	type req struct {
		typ, acc, maj, min uint32
		want               bool
	}
	tests := []struct {
		name  string
		rules []deviceRule
		reqs  []req
	}{
		{"empty denies", nil, []req{{c, r, 1, 3, false}}},
		{"deny all", rules(denyAll), []req{{c, r, 1, 3, false}, {b, m, 8, 0, false}}},
		{"allow all", rules(allowAll), []req{{c, r | w, 1, 3, true}, {b, m, 8, 0, true}}},
		{"allowlist", rules(denyAll, null, zeroR, ptys, blockMknod), []req{
			{c, r | w, 1, 3, true}, {c, m, 1, 3, true},
			{c, r, 1, 5, true}, {c, w, 1, 5, false}, {c, r | w, 1, 5, false},
			{c, r | w, 136, 7, true}, {c, m, 136, 7, false},
			{c, r, 1, 7, false}, {b, r, 1, 3, false},
			{b, m, 8, 0, true}, {b, r, 8, 0, false},
		}},
		{"later deny wins", rules(allowAll, denyNullW), []req{
			{c, r, 1, 3, true}, {c, w, 1, 3, false}, {c, r | w, 1, 3, false}, {c, w, 1, 5, true},
		}},
		{"later allow wins", rules(denyNullW, allowAll), []req{{c, w, 1, 3, true}}},
		{"deny all last", rules(null, denyAll), []req{{c, r, 1, 3, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog := deviceProgram(tt.rules)
			for _, q := range tt.reqs {
				if got := runDeviceProgram(t, prog, q.typ, q.acc, q.maj, q.min); got != q.want {
					t.Errorf("type %d access %d %d:%d: allowed %v, want %v", q.typ, q.acc, q.maj, q.min, got, q.want)
				}
			}
		})
	}
	// A final unconditional rule makes everything before it unreachable;
	// none of it may be emitted (the verifier refuses dead code).
	if got := len(deviceProgram(rules(null, zeroR, allowAll))); got != 8 {
		t.Errorf("program with a final allow-all has %d instructions, want 8", got)
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    []uint16
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "0", want: []uint16{0}},
		{in: "0-3,8,10-11\n", want: []uint16{0, 1, 2, 3, 8, 10, 11}},
		{in: "3-1", wantErr: true},
		{in: "x", wantErr: true},
	} {
		got, err := parseCPUList(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseCPUList(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestParseBlkioV1(t *testing.T) {
	got, err := parseBlkioV1("8:0 Read 100\n8:0 Write 20\n8:16 Total 5\nTotal 125\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []BlkioEntry{{8, 0, "Read", 100}, {8, 0, "Write", 20}, {8, 16, "Total", 5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	got, err = parseBlkioV1("8:0 4096\n")
	if err != nil || !reflect.DeepEqual(got, []BlkioEntry{{Major: 8, Value: 4096}}) {
		t.Errorf("sectors: got %+v, %v", got, err)
	}
	if _, err := parseBlkioV1("8:x Read 1\n"); err == nil {
		t.Error("want error")
	}
}

func TestParseIOStat(t *testing.T) {
	bytes, ios, err := parseIOStat("254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n7:0 rbytes=1 wbytes=0 rios=1 wios=0\n")
	if err != nil {
		t.Fatal(err)
	}
	wantBytes := []BlkioEntry{{254, 0, "Read", 4096}, {254, 0, "Write", 8192}, {7, 0, "Read", 1}, {7, 0, "Write", 0}}
	wantIOs := []BlkioEntry{{254, 0, "Read", 1}, {254, 0, "Write", 2}, {7, 0, "Read", 1}, {7, 0, "Write", 0}}
	if !reflect.DeepEqual(bytes, wantBytes) || !reflect.DeepEqual(ios, wantIOs) {
		t.Errorf("got %+v / %+v", bytes, ios)
	}
}

func TestHugePageName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"hugepages-2048kB", "2MB"}, {"hugepages-1048576kB", "1GB"}, {"hugepages-64kB", "64KB"},
		{"hugepages-32768kB", "32MB"}, {"hugepages-16777216kB", "16GB"}, {"other", ""}, {"hugepages-xkB", ""},
	} {
		got, ok := hugePageName(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("hugePageName(%q) = %q, %v", tt.in, got, ok)
		}
	}
}

func TestParseUintAndKeyValues(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		err  bool
	}{{"max", math.MaxUint64, false}, {"12\n", 12, false}, {"-1", 0, false}, {"x", 0, true}} {
		got, err := parseUint(tt.in)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("parseUint(%q) = %d, %v", tt.in, got, err)
		}
	}
	got := parseKeyValues("cache 10\nrss 20\nbad\nfrozen x\nusage_usec 7\n")
	want := map[string]uint64{"cache": 10, "rss": 20, "usage_usec": 7}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseKeyValues = %v", got)
	}
}

func TestHostModeString(t *testing.T) {
	for m, s := range map[HostMode]string{Unavailable: "unavailable", Legacy: "legacy", Hybrid: "hybrid", Unified: "unified"} {
		if m.String() != s {
			t.Errorf("%d.String() = %q, want %q", m, m.String(), s)
		}
	}
}
