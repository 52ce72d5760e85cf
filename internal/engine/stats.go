package engine

import (
	"bufio"
	"context"
	"fmt"
	"iter"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/compute/process/cgroups"
	"github.com/silo-containers/silo/internal/errdefs"
)

// statsInterval is the time between two samples of a stats stream, as
// Docker's collector.
const statsInterval = time.Second

// StatsOptions choose how Stats samples.
type StatsOptions struct {
	// Stream samples every second until ctx ends or the container stops.
	Stream bool
	// OneShot (without Stream) returns one sample at once, without the
	// previous CPU figures; otherwise a single answer waits one interval
	// so that CPU usage can be computed, as Docker's does.
	OneShot bool
}

// Stats samples a running container's cgroup: CPU and system CPU time
// (for the CPU percentage clients compute from two samples), memory usage
// and limit (the host's memory when there is no limit, as Docker),
// memory.stat, pids, block I/O and, from the container's network
// namespace, its interfaces' counters.
func (s *Service) Stats(ctx context.Context, ref string, opts StatsOptions) (iter.Seq2[container.StatsResponse, error], error) {
	_, c, m, err := s.cgroupOf(ref)
	if err != nil {
		if c.ID == "" || opts.Stream || !errdefs.IsConflict(err) {
			return nil, err
		}
		// A container that does not run has no usage: one empty
		// sample, as Docker answers (docker stats -a shows it so).
		return func(yield func(container.StatsResponse, error) bool) {
			yield(container.StatsResponse{ID: c.ID, Name: "/" + c.Name, OSType: "linux", Read: time.Now().UTC()}, nil)
		}, nil
	}
	first, err := s.sample(&c, m)
	if err != nil {
		return nil, err
	}
	return func(yield func(container.StatsResponse, error) bool) {
		prev := first
		if opts.OneShot && !opts.Stream {
			yield(prev, nil)
			return
		}
		t := time.NewTicker(statsInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cur, err := s.sample(&c, m)
			if err != nil {
				// The container stopped: a stream ends there.
				if !opts.Stream {
					yield(container.StatsResponse{}, err)
				}
				return
			}
			cur.PreRead, cur.PreCPUStats = prev.Read, prev.CPUStats
			if !yield(cur, nil) || !opts.Stream {
				return
			}
			prev = cur
		}
	}, nil
}

// sample reads one StatsResponse.
func (s *Service) sample(c *Container, m cgroups.Manager) (container.StatsResponse, error) {
	st, err := m.Stats()
	if err != nil {
		return container.StatsResponse{}, fmt.Errorf("stats of container %s: %v: %w", c.ID[:12], err, errdefs.ErrConflict)
	}
	sys, _ := systemCPUUsage()
	r := container.StatsResponse{
		ID: c.ID, Name: "/" + c.Name, OSType: "linux", Read: time.Now().UTC(),
		CPUStats: container.CPUStats{
			CPUUsage: container.CPUUsage{
				TotalUsage: st.CPU.Usage.Total, PercpuUsage: st.CPU.Usage.Percpu,
				UsageInKernelmode: st.CPU.Usage.Kernel, UsageInUsermode: st.CPU.Usage.User,
			},
			SystemUsage: sys,
			OnlineCPUs:  uint32(runtime.NumCPU()),
			ThrottlingData: container.ThrottlingData{
				Periods: st.CPU.Throttling.Periods, ThrottledPeriods: st.CPU.Throttling.ThrottledPeriods,
				ThrottledTime: st.CPU.Throttling.ThrottledTime,
			},
		},
		MemoryStats: container.MemoryStats{
			Usage: st.Memory.Usage.Usage, MaxUsage: st.Memory.Usage.Max, Failcnt: st.Memory.Usage.Failcnt,
			Limit: st.Memory.Usage.Limit, Stats: st.Memory.Raw,
		},
		PidsStats: container.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit},
		NumProcs:  0,
		BlkioStats: container.BlkioStats{
			IoServiceBytesRecursive: blkio(st.Blkio.IoServiceBytesRecursive),
			IoServicedRecursive:     blkio(st.Blkio.IoServicedRecursive),
		},
	}
	if total := hostMemory(); total > 0 && (r.MemoryStats.Limit == 0 || r.MemoryStats.Limit > total) {
		r.MemoryStats.Limit = total
	}
	if c.State.Pid > 0 {
		r.Networks = netDevStats(fmt.Sprintf("/proc/%d/net/dev", c.State.Pid))
	}
	return r, nil
}

func blkio(in []cgroups.BlkioEntry) []container.BlkioStatEntry {
	out := make([]container.BlkioStatEntry, 0, len(in))
	for _, e := range in {
		out = append(out, container.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/stat.
const clockTicks = 100

// systemCPUUsage is the host's total CPU time in nanoseconds, from the
// first line of /proc/stat (Docker's system_cpu_usage).
func systemCPUUsage() (uint64, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		return parseProcStatCPU(sc.Text())
	}
	return 0, fmt.Errorf("read /proc/stat: empty")
}

// parseProcStatCPU sums the "cpu" line's first seven fields (user, nice,
// system, idle, iowait, irq, softirq) and converts ticks to nanoseconds.
func parseProcStatCPU(line string) (uint64, error) {
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected line %q", line)
	}
	var ticks uint64
	for _, v := range f[1:8] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q: %w", line, err)
		}
		ticks += n
	}
	return ticks * (1e9 / clockTicks), nil
}

// hostMemory is MemTotal in bytes (0 if unknown).
func hostMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	return parseMemTotal(string(b))
}

func parseMemTotal(meminfo string) uint64 {
	for _, l := range strings.Split(meminfo, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			n, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0
			}
			if len(f) >= 3 && f[2] == "kB" {
				n *= 1024
			}
			return n
		}
	}
	return 0
}

// netDevStats reads a /proc/PID/net/dev: the counters of the interfaces
// of that process's network namespace, loopback left out.
func netDevStats(file string) map[string]container.NetworkStats {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	return parseNetDev(string(b))
}

func parseNetDev(s string) map[string]container.NetworkStats {
	out := map[string]container.NetworkStats{}
	for _, l := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(l, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" || strings.Contains(name, "|") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			continue
		}
		n := make([]uint64, 16)
		for i := range n {
			n[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		out[name] = container.NetworkStats{
			RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11],
		}
	}
	return out
}
