package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
)

// HostMode is the cgroup layout of the host.
type HostMode int

const (
	// Unavailable means no cgroup filesystem is mounted.
	Unavailable HostMode = iota
	// Legacy is cgroup v1 only: one hierarchy per controller (group).
	Legacy
	// Hybrid is cgroup v1 controllers plus a cgroup2 mount (usually at
	// /sys/fs/cgroup/unified) that holds the controllers not bound to v1.
	Hybrid
	// Unified is cgroup v2 only.
	Unified
)

// String returns the lower-case name of the mode.
func (m HostMode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	default:
		return "unavailable"
	}
}

// Mode reports the host layout: Legacy (v1), Hybrid or Unified (v2). The
// layout is detected once per process from /proc/self/mountinfo.
func Mode() HostMode {
	l, err := hostLayout()
	if err != nil {
		return Unavailable
	}
	return l.mode
}

// hierarchy is one mounted cgroup hierarchy.
type hierarchy struct {
	// controllers are the v1 subsystems bound to the hierarchy, in kernel
	// order, including named hierarchies as "name=<n>"; nil for cgroup2.
	controllers []string
	// mountpoint is where the hierarchy is mounted.
	mountpoint string
	// root is the cgroup the mount shows at its mountpoint ("/" unless a
	// sub-tree was bind-mounted or the mount was made in a cgroup namespace
	// other than ours).
	root string
	// version is 1 or 2.
	version int
}

// subdir is the name of the hierarchy under /sys/fs/cgroup, e.g. "memory",
// "cpu,cpuacct", "systemd" or "unified" ("" for a pure v2 host).
func (h *hierarchy) subdir(mode HostMode) string {
	if h.version == 2 {
		if mode == Unified {
			return ""
		}
		return "unified"
	}
	// The mount directory is the conventional name; it may differ from the
	// controller list (e.g. "net_cls,net_prio" mounted as "net_cls") only
	// when the administrator chose so, and then that name is what users
	// expect to see inside the container too.
	if filepath.Dir(h.mountpoint) == "/sys/fs/cgroup" {
		return filepath.Base(h.mountpoint)
	}
	names := make([]string, len(h.controllers))
	for i, c := range h.controllers {
		names[i] = strings.TrimPrefix(c, "name=")
	}
	return strings.Join(names, ",")
}

// layout is the set of cgroup hierarchies mounted on the host.
type layout struct {
	mode HostMode
	// v1 are the cgroup v1 hierarchies.
	v1 []*hierarchy
	// unified is the cgroup2 mount, nil on a legacy host.
	unified *hierarchy
}

// v1Controllers are the subsystem names a v1 mount option can carry. Mount
// options are a mix of these and flags ("rw", "clone_children", ...), and
// the kernel has no other cheap way to tell them apart.
var v1Controllers = map[string]bool{
	"cpuset": true, "cpu": true, "cpuacct": true, "blkio": true, "io": true,
	"memory": true, "devices": true, "freezer": true, "net_cls": true,
	"perf_event": true, "net_prio": true, "hugetlb": true, "pids": true,
	"rdma": true, "misc": true, "debug": true,
}

// parseLayout reads /proc/<pid>/mountinfo content and returns the cgroup
// hierarchies it describes.
func parseLayout(r io.Reader) (*layout, error) {
	mounts, err := mountinfo.GetMountsFromReader(r, mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("parse mountinfo: %w", err)
	}
	l := &layout{}
	// A hierarchy may be mounted more than once (bind mounts into container
	// roots, for instance); keep the one under /sys/fs/cgroup, else the first.
	preferred := func(old, new string) bool {
		const base = "/sys/fs/cgroup"
		inBase := func(p string) bool { return p == base || strings.HasPrefix(p, base+"/") }
		return !inBase(old) && inBase(new)
	}
	byKey := map[string]*hierarchy{}
	for _, m := range mounts {
		h := &hierarchy{mountpoint: m.Mountpoint, root: m.Root}
		if m.FSType == "cgroup2" {
			h.version = 2
			if l.unified == nil || preferred(l.unified.mountpoint, h.mountpoint) || l.unified.mountpoint == h.mountpoint {
				l.unified = h
			}
			continue
		}
		h.version = 1
		for opt := range strings.SplitSeq(m.VFSOptions, ",") {
			if v1Controllers[opt] || strings.HasPrefix(opt, "name=") {
				h.controllers = append(h.controllers, opt)
			}
		}
		if len(h.controllers) == 0 {
			continue
		}
		key := strings.Join(h.controllers, ",")
		if old, ok := byKey[key]; ok {
			// A later mount on the same mountpoint hides the earlier one.
			if preferred(old.mountpoint, h.mountpoint) || old.mountpoint == h.mountpoint {
				*old = *h
			}
			continue
		}
		byKey[key] = h
		l.v1 = append(l.v1, h)
	}
	hasV1 := false
	for _, h := range l.v1 {
		for _, c := range h.controllers {
			if !strings.HasPrefix(c, "name=") {
				hasV1 = true
			}
		}
	}
	switch {
	case hasV1 && l.unified != nil:
		l.mode = Hybrid
	case hasV1:
		l.mode = Legacy
	case l.unified != nil:
		l.mode = Unified
		// Named v1 hierarchies next to a v2 mount carry no controllers;
		// joining them would only add work to every container start.
		l.v1 = nil
	default:
		return nil, errors.New("no cgroup filesystem mounted")
	}
	return l, nil
}

// hostLayout detects the layout of this host once per process.
var hostLayout = sync.OnceValues(func() (*layout, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseLayout(f)
})

// parseSelfCgroup parses /proc/<pid>/cgroup content into a map from
// controller ("memory", "name=systemd", "" for cgroup2) to the cgroup path.
func parseSelfCgroup(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := s.Text()
		if line == "" {
			continue
		}
		// hierarchy-ID:controller-list:cgroup-path; the path may contain ':'.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("invalid cgroup line %q", line)
		}
		if parts[0] == "0" && parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c != "" {
				out[c] = parts[2]
			}
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("parse /proc/self/cgroup: %w", err)
	}
	return out, nil
}

// readSelfCgroup returns the calling process's cgroups.
func readSelfCgroup() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseSelfCgroup(f)
}

// cleanCgroupsPath validates an OCI linux.cgroupsPath and returns it
// cleaned. Relative paths cannot climb out of the caller's cgroup.
func cleanCgroupsPath(cgroupsPath, id string) (string, error) {
	if cgroupsPath == "" {
		if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
			return "", fmt.Errorf("invalid container id %q for a cgroup name", id)
		}
		return "/silo/" + id, nil
	}
	if strings.ContainsRune(cgroupsPath, 0) {
		return "", fmt.Errorf("invalid cgroups path %q", cgroupsPath)
	}
	if filepath.IsAbs(cgroupsPath) {
		p := filepath.Clean(cgroupsPath)
		if p == "/" {
			return "", fmt.Errorf("cgroups path %q is the root cgroup", cgroupsPath)
		}
		return p, nil
	}
	// Cleaning it as if it were absolute drops any leading "..".
	p := strings.TrimPrefix(filepath.Clean("/"+cgroupsPath), "/")
	if p == "" {
		return "", fmt.Errorf("cgroups path %q is the caller's own cgroup", cgroupsPath)
	}
	return p, nil
}

// resolve returns the directory of cgroup path p (absolute, or relative to
// own, the caller's cgroup in h) in hierarchy h.
func (h *hierarchy) resolve(p, own string) string {
	if filepath.IsAbs(p) {
		// Like runc: an absolute path is taken from the top of the hierarchy
		// as mounted, whatever root the mount shows.
		return filepath.Join(h.mountpoint, p)
	}
	// /proc/self/cgroup is relative to our cgroup namespace, and the mount
	// shows root at its mountpoint: strip it so the path is mount-relative.
	if h.root != "/" && (own == h.root || strings.HasPrefix(own, h.root+"/")) {
		own = strings.TrimPrefix(own, h.root)
	}
	return filepath.Join(h.mountpoint, own, p)
}

// ownKey is the key of h in the map parseSelfCgroup returns.
func (h *hierarchy) ownKey() string {
	if h.version == 2 {
		return ""
	}
	return h.controllers[0]
}
