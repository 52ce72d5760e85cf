// Package cgroups is the process backend's job object: it creates a
// container's control groups, applies the OCI resource limits, reports
// statistics and pids, freezes and thaws, and removes the groups again.
//
// Three host layouts are supported behind one Manager: cgroup v1 (one
// hierarchy per controller), cgroup v2 (the unified hierarchy) and the
// hybrid layout (v1 controllers plus a cgroup2 mount at
// /sys/fs/cgroup/unified that may hold controllers such as hugetlb).
package cgroups

import (
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager controls the cgroups of one container.
//
// A Manager is cheap to create; nothing is touched on the host until Apply.
// Destroy is idempotent and removes every directory Apply created.
type Manager interface {
	// Apply creates the container's cgroup in every hierarchy and moves pid
	// into it. Parents that do not exist are created (and remembered so that
	// Destroy can remove the ones it made). A pid <= 0 only creates them.
	//
	// Writing another process's pid to cgroup.procs makes the kernel take
	// its global threadgroup lock for writing, which on a host in the
	// default mode (no favordynmods) waits for an RCU grace period: 7-17 ms
	// per container on the project's machine. The start path avoids that
	// with OpenUnified and TaskFiles; Apply(pid) is for when they cannot be
	// used (a child in a new user namespace may not write the host's
	// cgroup files).
	Apply(pid int) error
	// OpenUnified creates the container's cgroup2 directory and returns it
	// open, so that a child can be cloned straight into it (clone3 with
	// CLONE_INTO_CGROUP), which takes no global lock. It returns nil when
	// there is no usable cgroup2 hierarchy (cgroup v1, or a hybrid host
	// whose unified tree is read-only).
	OpenUnified() (*os.File, error)
	// TaskFiles returns the "tasks" file of the container's cgroup in each
	// cgroup v1 hierarchy (Apply(0) creates them). A thread that writes "0"
	// to one moves itself, and for a thread that moves itself the kernel
	// skips its global lock. Only that thread moves: the runtime's init
	// writes them from the thread that later executes the container.
	TaskFiles() []string
	// Set writes the resource limits. It is used both at create time and by
	// `update` on a running container (only the non-nil fields change).
	Set(r *specs.LinuxResources) error
	// Pids returns the pids of every process in the container's cgroup
	// (recursively, so processes in child cgroups are included).
	Pids() ([]int, error)
	// Freeze stops every process in the cgroup and waits until the kernel
	// reports the group frozen. Thaw undoes it.
	Freeze() error
	Thaw() error
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// Stats reads the usage counters.
	Stats() (*Stats, error)
	// Destroy removes the cgroup directories. The caller kills the processes
	// first; Destroy retries briefly while the kernel finishes tearing down.
	Destroy() error
	// Paths returns the per-hierarchy directory of the container, keyed by
	// controller name ("" for the unified hierarchy on v2/hybrid). It is
	// persisted in the container state and given back to Load.
	Paths() map[string]string
	// Created returns the parent directories Apply created, which Destroy
	// removes once empty. It is persisted next to Paths and given back to
	// Load, so that a later process can clean up.
	Created() []string
	// MountSources describes, for a "cgroup" mount inside the container
	// without a cgroup namespace, what to bind into /sys/fs/cgroup.
	MountSources() []MountSource
}

// MountSource is one hierarchy to expose inside a container.
type MountSource struct {
	// Subdir is the entry under the container's /sys/fs/cgroup, e.g.
	// "memory", "cpu,cpuacct" or "unified"; "" means the mount itself (v2).
	Subdir string
	// HostPath is the container's cgroup directory in that hierarchy.
	HostPath string
	// Symlinks are extra names that point at Subdir (e.g. "cpu" and
	// "cpuacct" for "cpu,cpuacct").
	Symlinks []string
	// Version is 1 or 2.
	Version int
}

// Stats mirrors the "data" object of runc's `events --stats`, so that
// clients that parse runc's output read ours unchanged.
type Stats struct {
	CPU     CPU                `json:"cpu"`
	CPUSet  CPUSet             `json:"cpuset"`
	Memory  Memory             `json:"memory"`
	Pids    Pids               `json:"pids"`
	Blkio   Blkio              `json:"blkio"`
	Hugetlb map[string]Hugetlb `json:"hugetlb,omitempty"`
}

// Hugetlb is the usage of one huge page size.
type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// BlkioEntry is one counter of one device.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// Blkio holds the block I/O counters.
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
}

// Pids holds the process count and its limit (0 = unlimited).
type Pids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// Throttling counts CFS throttling.
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// CPUUsage is CPU time in nanoseconds.
type CPUUsage struct {
	Kernel uint64   `json:"kernel"`
	User   uint64   `json:"user"`
	Total  uint64   `json:"total,omitempty"`
	Percpu []uint64 `json:"percpu,omitempty"`
}

// CPU holds usage and throttling.
type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
}

// CPUSet holds the effective cpuset.
type CPUSet struct {
	CPUs []uint16 `json:"cpus,omitempty"`
	Mems []uint16 `json:"mems,omitempty"`
}

// MemoryEntry is one memory counter with its limit.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// Memory holds the memory counters; Raw is memory.stat as read.
type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"`
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
}

// RemoveIfEmpty removes the cgroup at absolute path p in every mounted
// hierarchy where it is empty (no processes, no child groups): rmdir
// refuses anything else, so a parent still shared by other containers is
// left for the last one. An engine calls it for its cgroup parent
// ("/silo") once a container is gone, so that parent does not outlive the
// containers under it.
func RemoveIfEmpty(p string) {
	p = filepath.Clean("/" + p)
	if p == "/" {
		return
	}
	l, err := hostLayout()
	if err != nil {
		return
	}
	hs := append([]*hierarchy{}, l.v1...)
	if l.unified != nil {
		hs = append(hs, l.unified)
	}
	for _, h := range hs {
		_ = os.Remove(filepath.Join(h.mountpoint, p))
	}
}
