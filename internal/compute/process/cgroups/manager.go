package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// group is the container's directory in one hierarchy.
type group struct {
	dir string
	// controllers are the v1 controllers of the hierarchy; nil for cgroup2.
	controllers []string
	version     int
	// h is the hierarchy; nil on a Manager from Load until it is needed.
	h *hierarchy
	// made is set once the directory exists: the runtime makes the cgroup2
	// one (OpenUnified) and then the others (Apply(0)) ahead of the fork,
	// and a later Apply(pid) must not walk and mkdir the tree again.
	made bool
}

// manager implements Manager for the cgroupfs layouts (v1, hybrid, v2).
type manager struct {
	mu   sync.Mutex
	mode HostMode
	// groups holds one entry per hierarchy, the cgroup2 one (if any) last.
	groups []*group
	// v1 maps each v1 controller ("memory", "name=systemd") to its dir.
	v1 map[string]string
	// v2 is the container's dir in the cgroup2 hierarchy, "" if none.
	v2 string
	// v2Optional is set on hybrid hosts: the unified tree is joined when
	// possible, but a read-only or foreign-owned one is not fatal.
	v2Optional bool
	// created are the parent directories Apply made, persisted via Created.
	created []string
	// v2Ctrls caches the v2 dir's cgroup.controllers.
	v2Ctrls map[string]bool
}

var _ Manager = (*manager)(nil)

// New returns a Manager for container id. cgroupsPath is the OCI
// linux.cgroupsPath: an absolute path ("/foo/bar") is taken from the top of
// each hierarchy, a relative one ("foo/bar") from the calling process's own
// cgroup in that hierarchy (read from /proc/self/cgroup, as runc does), and
// an empty one means "/silo/<id>". The systemd "slice:prefix:name" syntax is
// not supported: it is taken as a plain path. Nothing is changed on the host
// until Apply.
func New(cgroupsPath, id string) (Manager, error) {
	l, err := hostLayout()
	if err != nil {
		return nil, fmt.Errorf("detect cgroup layout: %w", err)
	}
	p, err := cleanCgroupsPath(cgroupsPath, id)
	if err != nil {
		return nil, err
	}
	var own map[string]string
	if !filepath.IsAbs(p) {
		if own, err = readSelfCgroup(); err != nil {
			return nil, fmt.Errorf("read own cgroup: %w", err)
		}
	}
	return newManager(l, own, p)
}

// newManager resolves cleaned cgroup path p in every hierarchy of l; own is
// the caller's /proc/self/cgroup, needed only for a relative p.
func newManager(l *layout, own map[string]string, p string) (*manager, error) {
	m := &manager{mode: l.mode, v1: map[string]string{}, v2Optional: l.mode == Hybrid}
	ownPath := func(h *hierarchy) (string, error) {
		if filepath.IsAbs(p) {
			return "", nil
		}
		o, ok := own[h.ownKey()]
		if !ok {
			return "", fmt.Errorf("own cgroup for %q not found in /proc/self/cgroup", h.ownKey())
		}
		return o, nil
	}
	for _, h := range l.v1 {
		o, err := ownPath(h)
		if err != nil {
			return nil, err
		}
		g := &group{dir: h.resolve(p, o), controllers: h.controllers, version: 1, h: h}
		m.groups = append(m.groups, g)
		for _, c := range h.controllers {
			m.v1[c] = g.dir
		}
	}
	if h := l.unified; h != nil {
		o, err := ownPath(h)
		if err != nil {
			if !m.v2Optional {
				return nil, err
			}
		} else {
			m.v2 = h.resolve(p, o)
			m.groups = append(m.groups, &group{dir: m.v2, version: 2, h: h})
		}
	}
	return m, nil
}

// Load reopens the Manager of an existing container from the Paths and
// Created it returned when the container was made. It changes nothing on
// the host and does not fail: a missing directory shows up as errors from
// the methods that need it (and is fine for Destroy).
func Load(paths map[string]string, created []string) Manager {
	m := &manager{v1: map[string]string{}, created: slices.Clone(created)}
	byDir := map[string]*group{}
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dir := paths[k]
		if k == "" {
			m.v2 = dir
			continue
		}
		m.v1[k] = dir
		if g, ok := byDir[dir]; ok {
			g.controllers = append(g.controllers, k)
			continue
		}
		g := &group{dir: dir, controllers: []string{k}, version: 1, made: true}
		byDir[dir] = g
		m.groups = append(m.groups, g)
	}
	if m.v2 != "" {
		m.groups = append(m.groups, &group{dir: m.v2, version: 2, made: true})
	}
	switch {
	case m.v2 != "" && len(m.v1) == 0:
		m.mode = Unified
	case m.v2 != "":
		m.mode = Hybrid
	case len(m.v1) > 0:
		m.mode = Legacy
	}
	return m
}

// Paths implements Manager.
func (m *manager) Paths() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.v1)+1)
	for c, d := range m.v1 {
		out[c] = d
	}
	if m.v2 != "" {
		out[""] = m.v2
	}
	return out
}

// Created returns the parent directories Apply created (deepest last), so
// that Destroy can remove them once empty. Persist it next to Paths and
// give it back to Load.
func (m *manager) Created() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.created)
}

// hierarchyOf returns g's hierarchy, looking it up on the host for a
// Manager from Load.
func (m *manager) hierarchyOf(g *group) *hierarchy {
	if g.h != nil {
		return g.h
	}
	l, err := hostLayout()
	if err != nil {
		return nil
	}
	if g.version == 2 {
		g.h = l.unified
		return g.h
	}
	for _, h := range l.v1 {
		if slices.Contains(h.controllers, g.controllers[0]) {
			g.h = h
			return h
		}
	}
	return nil
}

// Apply implements Manager. A pid <= 0 only creates the directories. If
// Apply fails, the caller kills pid and calls Destroy, which removes
// whatever was made.
func (m *manager) Apply(pid int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.createAll(); err != nil {
		return err
	}
	if pid <= 0 {
		return nil
	}
	p := strconv.Itoa(pid)
	for _, g := range m.groups {
		if err := writeFile(g.dir, "cgroup.procs", p); err != nil {
			return err
		}
	}
	return nil
}

// createAll makes the container's directory in every hierarchy.
func (m *manager) createAll() error {
	for _, g := range slices.Clone(m.groups) {
		if err := m.createGroup(g); err != nil {
			return err
		}
	}
	return nil
}

// createGroup makes g's directory once. On a hybrid host whose unified
// tree we cannot use, the cgroup2 group is dropped instead: the container
// works without it (only v2-only controllers such as hugetlb are lost).
func (m *manager) createGroup(g *group) error {
	if g.made {
		return nil
	}
	if err := m.create(g); err != nil {
		if g.version == 2 && m.v2Optional && isPermanentMkdirErr(err) {
			m.groups = slices.DeleteFunc(m.groups, func(x *group) bool { return x == g })
			m.v2 = ""
			return nil
		}
		return err
	}
	g.made = true
	return nil
}

// OpenUnified implements Manager.
func (m *manager) OpenUnified() (*os.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, g := range m.groups {
		if g.version != 2 {
			continue
		}
		if err := m.createGroup(g); err != nil {
			return nil, err
		}
		if !g.made {
			return nil, nil // dropped: a read-only unified tree
		}
		f, err := os.OpenFile(g.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open cgroup %s: %w", g.dir, unwrapPath(err))
		}
		return f, nil
	}
	return nil, nil
}

// TaskFiles implements Manager.
func (m *manager) TaskFiles() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, g := range m.groups {
		if g.version == 1 {
			out = append(out, filepath.Join(g.dir, "tasks"))
		}
	}
	return out
}

// isPermanentMkdirErr reports errors that retrying or waiting cannot fix.
func isPermanentMkdirErr(err error) bool {
	return errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}

// create makes g.dir and any missing parent, remembering the parents it
// made. v1 cpuset levels get their cpus and mems from the parent, and v2
// levels get the parent's controllers enabled, so that the leaf is usable.
func (m *manager) create(g *group) error {
	h := m.hierarchyOf(g)
	if h == nil {
		return fmt.Errorf("create %s: hierarchy not mounted", g.dir)
	}
	rel, err := filepath.Rel(h.mountpoint, g.dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("create %s: not below %s", g.dir, h.mountpoint)
	}
	elems := strings.Split(rel, string(filepath.Separator))
	cpuset := g.version == 1 && slices.Contains(g.controllers, "cpuset")
	// A concurrent Destroy of a sibling container may remove a shared
	// parent between our mkdirs (ENOENT); start over a few times.
	for attempt := 0; ; attempt++ {
		cur := h.mountpoint
		var err error
		for i, e := range elems {
			parent := cur
			cur = filepath.Join(cur, e)
			if g.version == 2 {
				enableControllers(parent)
			}
			err = os.Mkdir(cur, 0o755)
			made := err == nil
			if err != nil && !errors.Is(err, fs.ErrExist) {
				err = fmt.Errorf("create %s: %w", cur, unwrapPath(err))
				break
			}
			err = nil
			if made && i < len(elems)-1 && !slices.Contains(m.created, cur) {
				m.created = append(m.created, cur)
			}
			if cpuset {
				if err = copyCpuset(parent, cur, made); err != nil {
					break
				}
			}
		}
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt >= 4 {
			return err
		}
	}
}

// copyCpuset fills dir's cpuset.cpus and cpuset.mems from parent. A new v1
// cpuset cgroup starts with both empty and no task can join it until they
// are set; an existing level is only touched if it is still empty.
func copyCpuset(parent, dir string, made bool) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		if !made {
			cur, err := readFile(dir, f)
			if err != nil {
				return err
			}
			if cur != "" {
				continue
			}
		}
		v, err := readFile(parent, f)
		if err != nil {
			return err
		}
		if err := writeFile(dir, f, v); err != nil {
			return err
		}
	}
	return nil
}

// enableControllers enables in dir's cgroup.subtree_control every
// controller dir has, so its children get them. Errors are ignored, as
// runc does: a parent with processes of its own (the caller's cgroup for a
// relative path) refuses, and Set then reports the missing files.
func enableControllers(dir string) {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil || avail == "" {
		return
	}
	on, _ := readFile(dir, "cgroup.subtree_control")
	enabled := strings.Fields(on)
	var add []string
	for c := range strings.FieldsSeq(avail) {
		if !slices.Contains(enabled, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return
	}
	if writeFile(dir, "cgroup.subtree_control", strings.Join(add, " ")) != nil {
		// One refused controller fails the whole write; try one by one.
		for _, c := range add {
			_ = writeFile(dir, "cgroup.subtree_control", c)
		}
	}
}

// Destroy implements Manager: it removes the container's directory (and any
// child cgroups the container made) in every hierarchy, then the parents
// Apply created if they are empty. Directories already gone are fine.
func (m *manager) Destroy() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	deadline := time.Now().Add(time.Second)
	var errs []error
	for _, g := range m.groups {
		if err := removeTree(g.dir, deadline); err != nil {
			errs = append(errs, err)
		}
	}
	parents := slices.Clone(m.created)
	// Deepest first, so a chain of created parents goes bottom-up.
	sort.SliceStable(parents, func(i, j int) bool {
		return strings.Count(parents[i], "/") > strings.Count(parents[j], "/")
	})
	for _, p := range parents {
		err := unix.Rmdir(p)
		// Another container may still live below a shared parent.
		if err != nil && err != unix.ENOENT && err != unix.ENOTEMPTY && err != unix.EBUSY && err != unix.EEXIST {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	if len(errs) == 0 {
		m.created = nil
	}
	return errors.Join(errs...)
}

// removeTree removes cgroup dir and any child cgroups, retrying EBUSY
// (the kernel still tearing down exited tasks) until deadline. The
// directory is only listed when rmdir says it is busy, which is also what
// a child cgroup makes it, to keep the common case to one syscall.
func removeTree(dir string, deadline time.Time) error {
	delay := time.Millisecond
	for {
		err := unix.Rmdir(dir)
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if err != unix.EBUSY {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
		entries, rerr := os.ReadDir(dir)
		if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", dir, unwrapPath(rerr))
		}
		children := false
		for _, e := range entries {
			if e.IsDir() {
				children = true
				if err := removeTree(filepath.Join(dir, e.Name()), deadline); err != nil {
					return err
				}
			}
		}
		if children {
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
		time.Sleep(delay)
		delay = min(delay*2, 50*time.Millisecond)
	}
}

// pidsDir is the directory Pids reads: any hierarchy holds every process,
// so prefer the ones whose membership other tools look at.
func (m *manager) pidsDir() string {
	for _, c := range []string{"pids", "memory", "freezer", "devices", "cpu"} {
		if d, ok := m.v1[c]; ok {
			return d
		}
	}
	if m.v2 != "" {
		return m.v2
	}
	for _, g := range m.groups {
		return g.dir
	}
	return ""
}

// Pids implements Manager.
func (m *manager) Pids() ([]int, error) {
	m.mu.Lock()
	dir := m.pidsDir()
	m.mu.Unlock()
	if dir == "" {
		return nil, errors.New("no cgroup to read pids from")
	}
	var pids []int
	if err := collectPids(dir, &pids); err != nil {
		return nil, err
	}
	return pids, nil
}

// collectPids appends the pids of dir and its child cgroups.
func collectPids(dir string, out *[]int) error {
	s, err := readFile(dir, "cgroup.procs")
	if err != nil {
		return err
	}
	for f := range strings.FieldsSeq(s) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return fmt.Errorf("parse %s: %w", filepath.Join(dir, "cgroup.procs"), err)
		}
		*out = append(*out, pid)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, unwrapPath(err))
	}
	for _, e := range entries {
		if e.IsDir() {
			err := collectPids(filepath.Join(dir, e.Name()), out)
			// A child cgroup removed while we walk is not an error.
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// MountSources implements Manager.
func (m *manager) MountSources() []MountSource {
	m.mu.Lock()
	defer m.mu.Unlock()
	mode := m.mode
	out := make([]MountSource, 0, len(m.groups))
	for _, g := range m.groups {
		ms := MountSource{HostPath: g.dir, Version: g.version}
		if h := m.hierarchyOf(g); h != nil {
			ms.Subdir = h.subdir(mode)
		} else {
			ms.Subdir = (&hierarchy{controllers: g.controllers, version: g.version}).subdir(mode)
		}
		if strings.Contains(ms.Subdir, ",") {
			for s := range strings.SplitSeq(ms.Subdir, ",") {
				ms.Symlinks = append(ms.Symlinks, s)
			}
		}
		out = append(out, ms)
	}
	return out
}
