package cgroups

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Set implements Manager. Numeric limits of 0 (memory, cpu shares, quota,
// period, realtime) mean "unset" and are skipped, as runc does, so that a
// zero value from a partially filled update changes nothing. Each
// controller goes to its v1 hierarchy when one is mounted, otherwise to
// the cgroup2 group (hybrid hosts mix both).
func (m *manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	steps := []func(*specs.LinuxResources) error{
		m.setCpuset, m.setDevices, m.setMemory, m.setCPU, m.setPids,
		m.setBlockIO, m.setHugetlb, m.setNetwork, m.setRdma, m.setUnified,
	}
	for _, step := range steps {
		if err := step(r); err != nil {
			return err
		}
	}
	return nil
}

// target returns where controller c (v1 name) or c2 (its v2 name) is: the
// v1 hierarchy if mounted, else the cgroup2 group when the controller is
// available there (always assumed on a pure v2 host, where a missing
// controller then shows up as a missing file named in the error).
func (m *manager) target(c, c2 string) (dir string, version int, ok bool) {
	if d, ok := m.v1[c]; ok {
		return d, 1, true
	}
	if m.v2 == "" {
		return "", 0, false
	}
	if m.mode == Unified {
		return m.v2, 2, true
	}
	if m.v2Ctrls == nil {
		m.v2Ctrls = map[string]bool{}
		if s, err := readFile(m.v2, "cgroup.controllers"); err == nil {
			for f := range strings.FieldsSeq(s) {
				m.v2Ctrls[f] = true
			}
		}
	}
	if m.v2Ctrls[c2] {
		return m.v2, 2, true
	}
	return "", 0, false
}

// need is target for a controller whose limits cannot be dropped silently.
func (m *manager) need(c, c2 string) (string, int, error) {
	dir, v, ok := m.target(c, c2)
	if !ok {
		return "", 0, fmt.Errorf("%s controller is not available", c2)
	}
	return dir, v, nil
}

// --- memory ---

func (m *manager) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil || !memorySet(mem) {
		return nil
	}
	dir, v, err := m.need("memory", "memory")
	if err != nil {
		return err
	}
	if v == 1 {
		return setMemoryV1(dir, mem)
	}
	return setMemoryV2(dir, mem)
}

// memorySet reports whether mem asks for anything (so that an empty
// object on a host without the controller is not an error).
func memorySet(mem *specs.LinuxMemory) bool {
	return val(mem.Limit) != 0 || val(mem.Reservation) != 0 || val(mem.Swap) != 0 ||
		val(mem.KernelTCP) != 0 || mem.Swappiness != nil ||
		mem.DisableOOMKiller != nil || mem.UseHierarchy != nil
}

// val dereferences an optional limit; nil is 0 ("unset").
func val[T int64 | uint64](p *T) T {
	if p == nil {
		return 0
	}
	return *p
}

// checkUsage implements checkBeforeUpdate: refuse a limit below the
// current usage instead of having the kernel reclaim or OOM-kill.
func checkUsage(dir, usageFile string, mem *specs.LinuxMemory) error {
	limit := val(mem.Limit)
	if mem.CheckBeforeUpdate == nil || !*mem.CheckBeforeUpdate || limit <= 0 {
		return nil
	}
	usage, err := readUint(dir, usageFile)
	if err != nil {
		return err
	}
	if uint64(limit) < usage {
		return fmt.Errorf("memory limit %d is below the current usage %d of %s", limit, usage, dir)
	}
	return nil
}

func setMemoryV1(dir string, mem *specs.LinuxMemory) error {
	if err := checkUsage(dir, "memory.usage_in_bytes", mem); err != nil {
		return err
	}
	limit, swap := val(mem.Limit), val(mem.Swap)
	// An unlimited memory with unset swap means unlimited swap too,
	// otherwise the old memsw limit would keep capping memory.
	if limit == -1 && swap == 0 && exists(dir, "memory.memsw.limit_in_bytes") {
		swap = -1
	}
	writeLimit := func() error {
		if limit == 0 {
			return nil
		}
		return writeFile(dir, "memory.limit_in_bytes", itoa(limit))
	}
	writeSwap := func() error {
		if swap == 0 {
			return nil
		}
		return writeFile(dir, "memory.memsw.limit_in_bytes", itoa(swap))
	}
	// The kernel keeps memsw >= limit at every step: when the new pair
	// grows past the current limit, raise memsw first, else lower the limit
	// first.
	swapFirst := false
	if limit != 0 && swap != 0 {
		if swap == -1 {
			swapFirst = true
		} else {
			cur, err := readUint(dir, "memory.limit_in_bytes")
			if err != nil {
				return err
			}
			swapFirst = cur < uint64(swap)
		}
	}
	order := []func() error{writeLimit, writeSwap}
	if swapFirst {
		order = []func() error{writeSwap, writeLimit}
	}
	for _, f := range order {
		if err := f(); err != nil {
			return err
		}
	}
	if v := val(mem.Reservation); v != 0 {
		if err := writeFile(dir, "memory.soft_limit_in_bytes", itoa(v)); err != nil {
			return err
		}
	}
	// memory.kernel is ignored, like runc does: the kernel obsoleted kmem
	// limits in 5.4 and the spec deprecates the field. kernelTCP still
	// works where the kernel has the file.
	if v := val(mem.KernelTCP); v != 0 && exists(dir, "memory.kmem.tcp.limit_in_bytes") {
		if err := writeFile(dir, "memory.kmem.tcp.limit_in_bytes", itoa(v)); err != nil {
			return err
		}
	}
	// runc's convention: a swappiness of -1 (as uint64) means unset.
	if s := mem.Swappiness; s != nil && *s != math.MaxUint64 {
		if *s > 100 {
			return fmt.Errorf("invalid memory swappiness %d: valid range is 0-100", *s)
		}
		if err := writeFile(dir, "memory.swappiness", utoa(*s)); err != nil {
			return err
		}
	}
	if d := mem.DisableOOMKiller; d != nil {
		if err := writeFile(dir, "memory.oom_control", boolStr(*d)); err != nil {
			return err
		}
	}
	if u := mem.UseHierarchy; u != nil {
		if err := writeFile(dir, "memory.use_hierarchy", boolStr(*u)); err != nil {
			return err
		}
	}
	return nil
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// limitV2 formats a v1-style limit (-1 = unlimited) for v2 files.
func limitV2(v int64) string {
	if v < 0 {
		return "max"
	}
	return itoa(v)
}

// swapV2 converts the OCI swap value (memory+swap, the v1 memsw limit) to
// memory.swap.max (swap alone). ok is false when nothing is to be written.
func swapV2(swap, limit int64) (string, bool, error) {
	switch {
	case limit == -1 && swap == 0:
		// Like v1: unlimited memory with unset swap means unlimited swap.
		return "max", true, nil
	case swap == 0:
		return "", false, nil
	case swap == -1:
		return "max", true, nil
	case limit <= 0:
		return "", false, errors.New("cannot set a swap limit without a memory limit")
	case swap < limit:
		return "", false, fmt.Errorf("memory+swap limit %d is below the memory limit %d", swap, limit)
	}
	return itoa(swap - limit), true, nil
}

func setMemoryV2(dir string, mem *specs.LinuxMemory) error {
	if err := checkUsage(dir, "memory.current", mem); err != nil {
		return err
	}
	limit := val(mem.Limit)
	swap, ok, err := swapV2(val(mem.Swap), limit)
	if err != nil {
		return err
	}
	if ok {
		err := writeFile(dir, "memory.swap.max", swap)
		// Without swap accounting there is no file, and "no swap" or
		// "unlimited swap" is what the host gives anyway.
		if err != nil && !(errors.Is(err, unix.ENOENT) && (swap == "max" || swap == "0")) {
			return err
		}
	}
	if limit != 0 {
		if err := writeFile(dir, "memory.max", limitV2(limit)); err != nil {
			return err
		}
	}
	if v := val(mem.Reservation); v != 0 {
		if err := writeFile(dir, "memory.low", limitV2(v)); err != nil {
			return err
		}
	}
	// kernel, kernelTCP, swappiness, disableOOMKiller and useHierarchy have
	// no v2 equivalent and are ignored, as runc does.
	return nil
}

// --- cpu ---

// sharesToWeight converts v1 cpu.shares (2..262144) to v2 cpu.weight
// (1..10000) with runc's formula; 0 stays 0 ("unset").
func sharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

func (m *manager) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	if val(c.Shares) == 0 && val(c.Quota) == 0 && val(c.Period) == 0 && c.Burst == nil &&
		val(c.RealtimeRuntime) == 0 && val(c.RealtimePeriod) == 0 && c.Idle == nil {
		return nil
	}
	dir, v, err := m.need("cpu", "cpu")
	if err != nil {
		return err
	}
	if v == 1 {
		return setCPUV1(dir, c)
	}
	return setCPUV2(dir, c)
}

// writePair writes first then second. Lowering a period can be refused
// (EINVAL) until the matching quota or runtime is lowered too, so on EINVAL
// the first is retried after the second.
func writePair(dir, firstFile, first, secondFile, second string) error {
	retry := false
	if first != "" {
		if err := writeFile(dir, firstFile, first); err != nil {
			if !errors.Is(err, unix.EINVAL) || second == "" {
				return err
			}
			retry = true
		}
	}
	if second != "" {
		if err := writeFile(dir, secondFile, second); err != nil {
			return err
		}
	}
	if retry {
		return writeFile(dir, firstFile, first)
	}
	return nil
}

// nz formats a non-zero value, "" for zero (unset).
func nz[T int64 | uint64](v T) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprint(v)
}

func setCPUV1(dir string, c *specs.LinuxCPU) error {
	if s := val(c.Shares); s != 0 {
		if err := writeFile(dir, "cpu.shares", utoa(s)); err != nil {
			return err
		}
	}
	if err := writePair(dir, "cpu.cfs_period_us", nz(val(c.Period)), "cpu.cfs_quota_us", nz(val(c.Quota))); err != nil {
		return err
	}
	if c.Burst != nil {
		if err := writeFile(dir, "cpu.cfs_burst_us", utoa(*c.Burst)); err != nil {
			return err
		}
	}
	if err := writePair(dir, "cpu.rt_period_us", nz(val(c.RealtimePeriod)), "cpu.rt_runtime_us", nz(val(c.RealtimeRuntime))); err != nil {
		return err
	}
	if c.Idle != nil {
		if err := writeFile(dir, "cpu.idle", itoa(*c.Idle)); err != nil {
			return err
		}
	}
	return nil
}

func setCPUV2(dir string, c *specs.LinuxCPU) error {
	if val(c.RealtimeRuntime) != 0 || val(c.RealtimePeriod) != 0 {
		return errors.New("realtime cpu limits are not supported on cgroup v2")
	}
	if w := sharesToWeight(val(c.Shares)); w != 0 {
		if err := writeFile(dir, "cpu.weight", utoa(w)); err != nil {
			return err
		}
	}
	quota, period := val(c.Quota), val(c.Period)
	if quota != 0 || period != 0 {
		var q string
		switch {
		case quota > 0:
			q = itoa(quota)
		case quota < 0:
			q = "max"
		default:
			// Only the period changes: keep the current quota, which is the
			// first field cpu.max must start with.
			cur, err := readFile(dir, "cpu.max")
			if err != nil {
				return err
			}
			q, _, _ = strings.Cut(cur, " ")
		}
		if period != 0 {
			q += " " + utoa(period)
		}
		if err := writeFile(dir, "cpu.max", q); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := writeFile(dir, "cpu.max.burst", utoa(*c.Burst)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := writeFile(dir, "cpu.idle", itoa(*c.Idle)); err != nil {
			return err
		}
	}
	return nil
}

func (m *manager) setCpuset(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil || (c.Cpus == "" && c.Mems == "") {
		return nil
	}
	// The file names are the same on v1 and v2.
	dir, _, err := m.need("cpuset", "cpuset")
	if err != nil {
		return err
	}
	if c.Cpus != "" {
		if err := writeFile(dir, "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := writeFile(dir, "cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

// --- pids ---

func (m *manager) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	dir, _, err := m.need("pids", "pids")
	if err != nil {
		return err
	}
	limit := "max"
	if l := *r.Pids.Limit; l > 0 {
		limit = itoa(l)
	}
	return writeFile(dir, "pids.max", limit)
}

// --- block I/O ---

// blkioToIOWeight converts a v1 blkio weight (10..1000) to v2 io.weight
// (1..10000), as runc does.
func blkioToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	v := uint64(min(max(w, 10), 1000))
	return 1 + (v-10)*9999/990
}

// devNum formats a block device number, refusing negative numbers.
func devNum(d specs.LinuxBlockIODevice) (string, error) {
	if d.Major < 0 || d.Minor < 0 {
		return "", fmt.Errorf("invalid block device %d:%d", d.Major, d.Minor)
	}
	return fmt.Sprintf("%d:%d", d.Major, d.Minor), nil
}

func blockIOSet(b *specs.LinuxBlockIO) bool {
	return b.Weight != nil || b.LeafWeight != nil || len(b.WeightDevice) > 0 ||
		len(b.ThrottleReadBpsDevice) > 0 || len(b.ThrottleWriteBpsDevice) > 0 ||
		len(b.ThrottleReadIOPSDevice) > 0 || len(b.ThrottleWriteIOPSDevice) > 0
}

func (m *manager) setBlockIO(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil || !blockIOSet(b) {
		return nil
	}
	dir, v, err := m.need("blkio", "io")
	if err != nil {
		return err
	}
	if v == 1 {
		return setBlockIOV1(dir, b)
	}
	return setBlockIOV2(dir, b)
}

// throttles pairs each throttle list with its v1 file and v2 io.max key.
func throttles(b *specs.LinuxBlockIO) []struct {
	devs     []specs.LinuxThrottleDevice
	v1, v2id string
} {
	return []struct {
		devs     []specs.LinuxThrottleDevice
		v1, v2id string
	}{
		{b.ThrottleReadBpsDevice, "blkio.throttle.read_bps_device", "rbps"},
		{b.ThrottleWriteBpsDevice, "blkio.throttle.write_bps_device", "wbps"},
		{b.ThrottleReadIOPSDevice, "blkio.throttle.read_iops_device", "riops"},
		{b.ThrottleWriteIOPSDevice, "blkio.throttle.write_iops_device", "wiops"},
	}
}

func setBlockIOV1(dir string, b *specs.LinuxBlockIO) error {
	// Kernels with BFQ (and without CFQ, gone since 5.0) name the weight
	// files blkio.bfq.*.
	prefix := "blkio."
	if (b.Weight != nil || len(b.WeightDevice) > 0) && exists(dir, "blkio.bfq.weight") {
		prefix = "blkio.bfq."
	}
	if b.Weight != nil {
		if err := writeFile(dir, prefix+"weight", utoa(uint64(*b.Weight))); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil {
		if err := writeFile(dir, "blkio.leaf_weight", utoa(uint64(*b.LeafWeight))); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		dev, err := devNum(wd.LinuxBlockIODevice)
		if err != nil {
			return err
		}
		if wd.Weight != nil {
			if err := writeFile(dir, prefix+"weight_device", fmt.Sprintf("%s %d", dev, *wd.Weight)); err != nil {
				return err
			}
		}
		if wd.LeafWeight != nil {
			if err := writeFile(dir, "blkio.leaf_weight_device", fmt.Sprintf("%s %d", dev, *wd.LeafWeight)); err != nil {
				return err
			}
		}
	}
	for _, t := range throttles(b) {
		for _, td := range t.devs {
			dev, err := devNum(td.LinuxBlockIODevice)
			if err != nil {
				return err
			}
			if err := writeFile(dir, t.v1, fmt.Sprintf("%s %d", dev, td.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func setBlockIOV2(dir string, b *specs.LinuxBlockIO) error {
	// With BFQ the weights (same 1..1000 scale as v1) go to io.bfq.weight;
	// otherwise to io.weight, scaled to 1..10000.
	bfq := (b.Weight != nil || len(b.WeightDevice) > 0) && exists(dir, "io.bfq.weight")
	weight := func(w uint16) (string, string) {
		if bfq {
			return "io.bfq.weight", utoa(uint64(w))
		}
		return "io.weight", utoa(blkioToIOWeight(w))
	}
	if b.Weight != nil && *b.Weight != 0 {
		f, w := weight(*b.Weight)
		if err := writeFile(dir, f, w); err != nil {
			return err
		}
	}
	// leafWeight is CFQ-only and has no v2 equivalent.
	for _, wd := range b.WeightDevice {
		dev, err := devNum(wd.LinuxBlockIODevice)
		if err != nil {
			return err
		}
		if wd.Weight != nil && *wd.Weight != 0 {
			f, w := weight(*wd.Weight)
			if err := writeFile(dir, f, dev+" "+w); err != nil {
				return err
			}
		}
	}
	for _, t := range throttles(b) {
		for _, td := range t.devs {
			dev, err := devNum(td.LinuxBlockIODevice)
			if err != nil {
				return err
			}
			// v1 uses 0 to remove a limit; v2 spells that "max".
			rate := "max"
			if td.Rate != 0 {
				rate = utoa(td.Rate)
			}
			if err := writeFile(dir, "io.max", fmt.Sprintf("%s %s=%s", dev, t.v2id, rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

// --- hugetlb ---

// validPageSize checks the OCI page size format ("2MB", "1GB": digits, a
// unit letter, "B"); it also keeps the size from naming another file.
// (A hand check rather than regexp: this package is on the start path, and
// regexp adds to every runtime start.)
func validPageSize(s string) bool {
	n := len(s)
	if n < 3 || s[n-1] != 'B' || !strings.ContainsRune("KMGTP", rune(s[n-2])) {
		return false
	}
	for i := 0; i < n-2; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (m *manager) setHugetlb(r *specs.LinuxResources) error {
	if len(r.HugepageLimits) == 0 {
		return nil
	}
	dir, v, err := m.need("hugetlb", "hugetlb")
	if err != nil {
		return err
	}
	limitFile, rsvdFile := "limit_in_bytes", "rsvd.limit_in_bytes"
	if v == 2 {
		limitFile, rsvdFile = "max", "rsvd.max"
	}
	for _, h := range r.HugepageLimits {
		if !validPageSize(h.Pagesize) {
			return fmt.Errorf("invalid hugepage size %q", h.Pagesize)
		}
		base := "hugetlb." + h.Pagesize + "."
		if err := writeFile(dir, base+limitFile, utoa(h.Limit)); err != nil {
			return err
		}
		// The spec prefers reservation limits where the kernel has them
		// (5.7+); older kernels have no such file.
		if err := writeFile(dir, base+rsvdFile, utoa(h.Limit)); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return nil
}

// --- network, rdma ---

// setNetwork writes net_cls/net_prio only where those v1 hierarchies are
// mounted; like runc, it silently does nothing elsewhere (v2 has none).
func (m *manager) setNetwork(r *specs.LinuxResources) error {
	n := r.Network
	if n == nil {
		return nil
	}
	if d, ok := m.v1["net_cls"]; ok && n.ClassID != nil {
		if err := writeFile(d, "net_cls.classid", utoa(uint64(*n.ClassID))); err != nil {
			return err
		}
	}
	if d, ok := m.v1["net_prio"]; ok {
		for _, p := range n.Priorities {
			if p.Name == "" || strings.ContainsAny(p.Name, " \n") {
				return fmt.Errorf("invalid interface name %q", p.Name)
			}
			if err := writeFile(d, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
				return err
			}
		}
	}
	return nil
}

// setRdma writes rdma.max where the rdma controller exists, and silently
// does nothing elsewhere.
func (m *manager) setRdma(r *specs.LinuxResources) error {
	if len(r.Rdma) == 0 {
		return nil
	}
	dir, _, ok := m.target("rdma", "rdma")
	if !ok {
		return nil
	}
	devs := make([]string, 0, len(r.Rdma))
	for d := range r.Rdma {
		devs = append(devs, d)
	}
	slices.Sort(devs)
	for _, d := range devs {
		l := r.Rdma[d]
		if d == "" || strings.ContainsAny(d, " \n") {
			return fmt.Errorf("invalid rdma device %q", d)
		}
		line := d
		if l.HcaHandles != nil {
			line += fmt.Sprintf(" hca_handle=%d", *l.HcaHandles)
		}
		if l.HcaObjects != nil {
			line += fmt.Sprintf(" hca_object=%d", *l.HcaObjects)
		}
		if line == d {
			continue
		}
		if err := writeFile(dir, "rdma.max", line); err != nil {
			return err
		}
	}
	return nil
}

// --- unified ---

// setUnified writes linux.resources.unified into the cgroup2 group, last,
// so that explicit v2 values win over converted ones.
func (m *manager) setUnified(r *specs.LinuxResources) error {
	if len(r.Unified) == 0 {
		return nil
	}
	if m.v2 == "" {
		return errors.New("linux.resources.unified needs cgroup v2, which this host does not have")
	}
	keys := make([]string, 0, len(r.Unified))
	for k := range r.Unified {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		// Files are "<controller>.<name>"; anything else could walk out of
		// the cgroup.
		if strings.ContainsAny(k, "/\x00") || strings.HasPrefix(k, ".") || !strings.Contains(k, ".") {
			return fmt.Errorf("invalid unified resource %q", k)
		}
		if err := writeFile(m.v2, k, r.Unified[k]); err != nil {
			if errors.Is(err, unix.ENOENT) {
				ctrl, _, _ := strings.Cut(k, ".")
				return fmt.Errorf("%w (is the %s controller enabled?)", err, ctrl)
			}
			return err
		}
	}
	return nil
}
