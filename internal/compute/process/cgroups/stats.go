package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// userHZ is the unit of cpuacct.stat: USER_HZ is 100 on every
// architecture Linux exposes to user space.
const userHZ = 100

// Stats implements Manager. Files a kernel does not have (swap accounting
// off, no kmem, no CFQ) leave their fields zero; other errors are
// returned.
func (m *manager) Stats() (*Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Missing files are skipped below, so check the group itself exists:
	// a removed container must not report zeros.
	if dir := m.pidsDir(); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
	}
	s := &Stats{}
	steps := []func(*Stats) error{m.statCPU, m.statCPUSet, m.statMemory, m.statPids, m.statBlkio, m.statHugetlb}
	for _, step := range steps {
		if err := ignoreMissing(step(s)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ignoreMissing drops "no such file" errors.
func ignoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (m *manager) statCPU(s *Stats) error {
	if dir, ok := m.v1["cpuacct"]; ok {
		if err := statCPUAcctV1(dir, &s.CPU.Usage); err != nil {
			return err
		}
		if dir, ok := m.v1["cpu"]; ok {
			kv, err := readKeyValues(dir, "cpu.stat")
			if err != nil {
				return ignoreMissing(err)
			}
			s.CPU.Throttling = Throttling{
				Periods:          kv["nr_periods"],
				ThrottledPeriods: kv["nr_throttled"],
				ThrottledTime:    kv["throttled_time"],
			}
		}
		return nil
	}
	if m.v2 == "" {
		return nil
	}
	// cpu.stat usage fields are core cgroup2 files (microseconds); the
	// throttling ones appear when the cpu controller is enabled.
	kv, err := readKeyValues(m.v2, "cpu.stat")
	if err != nil {
		return err
	}
	s.CPU.Usage.Total = kv["usage_usec"] * 1000
	s.CPU.Usage.User = kv["user_usec"] * 1000
	s.CPU.Usage.Kernel = kv["system_usec"] * 1000
	s.CPU.Throttling = Throttling{
		Periods:          kv["nr_periods"],
		ThrottledPeriods: kv["nr_throttled"],
		ThrottledTime:    kv["throttled_usec"] * 1000,
	}
	return nil
}

func statCPUAcctV1(dir string, u *CPUUsage) error {
	var err error
	if u.Total, err = readUint(dir, "cpuacct.usage"); err != nil {
		return err
	}
	percpu, err := readFile(dir, "cpuacct.usage_percpu")
	if err != nil {
		return err
	}
	if u.Percpu, err = parseUints(percpu); err != nil {
		return fmt.Errorf("read %s/cpuacct.usage_percpu: %w", dir, err)
	}
	kv, err := readKeyValues(dir, "cpuacct.stat")
	if err != nil {
		return err
	}
	u.User = kv["user"] * (1e9 / userHZ)
	u.Kernel = kv["system"] * (1e9 / userHZ)
	return nil
}

// parseUints parses space-separated counters.
func parseUints(s string) ([]uint64, error) {
	var out []uint64
	for f := range strings.FieldsSeq(s) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// parseCPUList parses a cpuset list such as "0-3,8,10-11".
func parseCPUList(s string) ([]uint16, error) {
	var out []uint16
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("invalid cpu list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil, fmt.Errorf("invalid cpu list %q", s)
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, uint16(i))
		}
	}
	return out, nil
}

func (m *manager) statCPUSet(s *Stats) error {
	dir, v, ok := m.target("cpuset", "cpuset")
	if !ok {
		return nil
	}
	cpusFile, memsFile := "cpuset.effective_cpus", "cpuset.effective_mems"
	if v == 2 {
		cpusFile, memsFile = "cpuset.cpus.effective", "cpuset.mems.effective"
	}
	for _, f := range []struct {
		name string
		out  *[]uint16
	}{{cpusFile, &s.CPUSet.CPUs}, {memsFile, &s.CPUSet.Mems}} {
		str, err := readFile(dir, f.name)
		if err != nil {
			return err
		}
		if *f.out, err = parseCPUList(str); err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(dir, f.name), err)
		}
	}
	return nil
}

// memoryEntryV1 reads one v1 counter family (prefix "memory.",
// "memory.memsw.", ...); a family the kernel lacks is left zero.
func memoryEntryV1(dir, prefix string, e *MemoryEntry) error {
	var err error
	if e.Usage, err = readUint(dir, prefix+"usage_in_bytes"); err != nil {
		return ignoreMissing(err)
	}
	for _, f := range []struct {
		name string
		out  *uint64
	}{{"max_usage_in_bytes", &e.Max}, {"limit_in_bytes", &e.Limit}, {"failcnt", &e.Failcnt}} {
		if *f.out, err = readUint(dir, prefix+f.name); err != nil {
			return err
		}
	}
	return nil
}

func (m *manager) statMemory(s *Stats) error {
	dir, v, ok := m.target("memory", "memory")
	if !ok {
		return nil
	}
	mem := &s.Memory
	var err error
	if mem.Raw, err = readKeyValues(dir, "memory.stat"); err != nil {
		return err
	}
	if v == 1 {
		mem.Cache = mem.Raw["cache"]
		for _, e := range []struct {
			prefix string
			out    *MemoryEntry
		}{
			{"memory.", &mem.Usage}, {"memory.memsw.", &mem.Swap},
			{"memory.kmem.", &mem.Kernel}, {"memory.kmem.tcp.", &mem.KernelTCP},
		} {
			if err := memoryEntryV1(dir, e.prefix, e.out); err != nil {
				return err
			}
		}
		return nil
	}
	mem.Cache = mem.Raw["file"]
	if mem.Usage.Usage, err = readUint(dir, "memory.current"); err != nil {
		return err
	}
	if mem.Usage.Limit, err = readUint(dir, "memory.max"); err != nil {
		return err
	}
	if mem.Usage.Max, err = readUint(dir, "memory.peak"); ignoreMissing(err) != nil {
		return err
	}
	if ev, err := readKeyValues(dir, "memory.events"); err == nil {
		mem.Usage.Failcnt = ev["max"]
	}
	swap, err := readUint(dir, "memory.swap.current")
	if err != nil {
		return ignoreMissing(err)
	}
	swapMax, err := readUint(dir, "memory.swap.max")
	if err != nil {
		return err
	}
	// Like runc, report swap as v1's memsw (memory + swap) so that
	// consumers of runc's stats read the same meaning on both versions.
	mem.Swap.Usage = swap + mem.Usage.Usage
	mem.Swap.Limit = math.MaxUint64
	if swapMax != math.MaxUint64 && mem.Usage.Limit != math.MaxUint64 {
		mem.Swap.Limit = swapMax + mem.Usage.Limit
	}
	return nil
}

func (m *manager) statPids(s *Stats) error {
	dir, _, ok := m.target("pids", "pids")
	if !ok {
		return nil
	}
	var err error
	if s.Pids.Current, err = readUint(dir, "pids.current"); err != nil {
		return err
	}
	if s.Pids.Limit, err = readUint(dir, "pids.max"); err != nil {
		return err
	}
	if s.Pids.Limit == math.MaxUint64 {
		s.Pids.Limit = 0 // unlimited
	}
	return nil
}

// parseBlkioV1 parses a v1 blkio stats file: "maj:min [Op] value" lines
// plus a "Total value" line, which is skipped.
func parseBlkioV1(s string) ([]BlkioEntry, error) {
	var out []BlkioEntry
	for line := range strings.SplitSeq(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.Contains(f[0], ":") {
			continue
		}
		maj, min, _ := strings.Cut(f[0], ":")
		e := BlkioEntry{}
		var err error
		if e.Major, err = strconv.ParseUint(maj, 10, 64); err != nil {
			return nil, fmt.Errorf("invalid blkio line %q", line)
		}
		if e.Minor, err = strconv.ParseUint(min, 10, 64); err != nil {
			return nil, fmt.Errorf("invalid blkio line %q", line)
		}
		vs := f[1]
		if len(f) == 3 {
			e.Op, vs = f[1], f[2]
		}
		if e.Value, err = strconv.ParseUint(vs, 10, 64); err != nil {
			return nil, fmt.Errorf("invalid blkio line %q", line)
		}
		out = append(out, e)
	}
	return out, nil
}

// parseIOStat parses v2 io.stat into the v1-style byte and operation
// counters, as runc does.
func parseIOStat(s string) (bytes, ios []BlkioEntry, err error) {
	for line := range strings.SplitSeq(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		ma, err1 := strconv.ParseUint(maj, 10, 64)
		mi, err2 := strconv.ParseUint(min, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("invalid io.stat line %q", line)
		}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			e := BlkioEntry{Major: ma, Minor: mi, Value: n}
			switch k {
			case "rbytes":
				e.Op = "Read"
				bytes = append(bytes, e)
			case "wbytes":
				e.Op = "Write"
				bytes = append(bytes, e)
			case "rios":
				e.Op = "Read"
				ios = append(ios, e)
			case "wios":
				e.Op = "Write"
				ios = append(ios, e)
			}
		}
	}
	return bytes, ios, nil
}

func (m *manager) statBlkio(s *Stats) error {
	dir, v, ok := m.target("blkio", "io")
	if !ok {
		return nil
	}
	if v == 2 {
		str, err := readFile(dir, "io.stat")
		if err != nil {
			return err
		}
		s.Blkio.IoServiceBytesRecursive, s.Blkio.IoServicedRecursive, err = parseIOStat(str)
		return err
	}
	b := &s.Blkio
	files := []struct {
		name string
		out  *[]BlkioEntry
	}{
		{"io_service_bytes_recursive", &b.IoServiceBytesRecursive},
		{"io_serviced_recursive", &b.IoServicedRecursive},
		{"io_queued_recursive", &b.IoQueuedRecursive},
		{"io_service_time_recursive", &b.IoServiceTimeRecursive},
		{"io_wait_time_recursive", &b.IoWaitTimeRecursive},
		{"io_merged_recursive", &b.IoMergedRecursive},
		{"time_recursive", &b.IoTimeRecursive},
		{"sectors_recursive", &b.SectorsRecursive},
	}
	// CFQ (blkio.*) or BFQ (blkio.bfq.*) have the full set; without either
	// only the throttle layer's two counters exist.
	prefix := ""
	switch {
	case exists(dir, "blkio.io_serviced_recursive"):
		prefix = "blkio."
	case exists(dir, "blkio.bfq.io_serviced_recursive"):
		prefix = "blkio.bfq."
	default:
		prefix = "blkio.throttle."
		files = files[:2]
	}
	for _, f := range files {
		str, err := readFile(dir, prefix+f.name)
		if err != nil {
			if ignoreMissing(err) == nil {
				continue
			}
			return err
		}
		if *f.out, err = parseBlkioV1(str); err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(dir, prefix+f.name), err)
		}
	}
	return nil
}

// hugePageSizes lists the host's huge page sizes in hugetlb file naming
// ("2MB", "1GB"), once per process.
var hugePageSizes = sync.OnceValue(func() []string {
	entries, err := os.ReadDir("/sys/kernel/mm/hugepages")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if s, ok := hugePageName(e.Name()); ok {
			out = append(out, s)
		}
	}
	return out
})

// hugePageName turns "hugepages-2048kB" into "2MB".
func hugePageName(dir string) (string, bool) {
	s, ok := strings.CutPrefix(dir, "hugepages-")
	if !ok {
		return "", false
	}
	s, ok = strings.CutSuffix(s, "kB")
	if !ok {
		return "", false
	}
	kb, err := strconv.ParseUint(s, 10, 64)
	if err != nil || kb == 0 {
		return "", false
	}
	units := []string{"KB", "MB", "GB", "TB", "PB"}
	i := 0
	for kb%1024 == 0 && i < len(units)-1 {
		kb /= 1024
		i++
	}
	return strconv.FormatUint(kb, 10) + units[i], true
}

func (m *manager) statHugetlb(s *Stats) error {
	dir, v, ok := m.target("hugetlb", "hugetlb")
	if !ok {
		return nil
	}
	for _, size := range hugePageSizes() {
		base := "hugetlb." + size + "."
		var h Hugetlb
		var err error
		if v == 1 {
			if h.Usage, err = readUint(dir, base+"usage_in_bytes"); err != nil {
				return err
			}
			if h.Max, err = readUint(dir, base+"max_usage_in_bytes"); err != nil {
				return err
			}
			if h.Failcnt, err = readUint(dir, base+"failcnt"); err != nil {
				return err
			}
		} else {
			// v2 has no peak usage; Max stays 0 as in runc.
			if h.Usage, err = readUint(dir, base+"current"); err != nil {
				return err
			}
			ev, err := readKeyValues(dir, base+"events")
			if err != nil {
				return err
			}
			h.Failcnt = ev["max"]
		}
		if s.Hugetlb == nil {
			s.Hugetlb = map[string]Hugetlb{}
		}
		s.Hugetlb[size] = h
	}
	return nil
}
