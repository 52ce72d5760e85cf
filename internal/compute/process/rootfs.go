package process

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// rootfs builds the container's file system view inside its new mount
// namespace. Every path inside the rootfs is resolved with the rootfs as
// root (symlinks cannot lead out) and mounted onto an O_PATH handle via
// /proc/self/fd, so nothing can swap a path component between the check
// and the mount (CVE-2021-30465).
type rootfs struct {
	cfg *initConfig
	// joinCgroup blocks until init is in its cgroups; cgroup mounts need it.
	joinCgroup func() error
	root       string
	rootDir    int
}

// prepare runs before pivot_root: propagation, the rootfs bind, the spec's
// mounts, /dev. /* steps in spec order */
func (r *rootfs) prepare() error {
	if !r.cfg.NewMountNS {
		return nil
	}
	r.root = r.cfg.Rootfs
	// Keep our mounts from propagating to the host, and the host's unmounts
	// from reaching us as the rootfs is being built.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / rslave: %w", err)
	}
	if err := unix.Mount(r.root, r.root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("root.path: bind %s: %w", r.root, err)
	}
	// pivot_root refuses a new root whose parent mount is shared.
	if err := unix.Mount("", r.root, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("root.path: make %s private: %w", r.root, err)
	}
	dir, err := unix.Open(r.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("root.path: open %s: %w", r.root, err)
	}
	r.rootDir = dir
	devBound := false
	for i := range r.cfg.Spec.Mounts {
		m := &r.cfg.Spec.Mounts[i]
		if err := r.mount(m); err != nil {
			return fmt.Errorf("mounts[%d] (%s on %s): %w", i, m.Type, m.Destination, err)
		}
		if path.Clean(m.Destination) == "/dev" && isBind(m) {
			devBound = true
		}
	}
	if !devBound {
		if err := r.makeDevices(); err != nil {
			return err
		}
	}
	return nil
}

func isBind(m *specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// openInRoot opens p inside the rootfs (O_PATH), never leaving it.
func (r *rootfs) openInRoot(p string) (int, error) {
	fd, err := openInRoot(r.rootDir, p, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s in rootfs: %w", p, err)
	}
	return fd, nil
}

// target makes the mount point for dest (a directory, or a file when the
// source is not a directory) and returns an O_PATH handle on it.
func (r *rootfs) target(dest string, file bool) (int, error) {
	dest = path.Clean("/" + dest)
	if !file {
		h, err := mkdirAllInRoot(r.rootDir, dest, 0o755)
		if err != nil {
			return -1, fmt.Errorf("create mount point %s: %w", dest, err)
		}
		return h, nil
	}
	if h, err := openInRoot(r.rootDir, dest, 0); err == nil {
		return h, nil
	}
	parent, err := mkdirAllInRoot(r.rootDir, path.Dir(dest), 0o755)
	if err != nil {
		return -1, fmt.Errorf("create parent of %s: %w", dest, err)
	}
	defer unix.Close(parent)
	fd, err := unix.Openat(parent, path.Base(dest), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("create mount point %s: %w", dest, err)
	}
	if err == nil {
		unix.Close(fd)
	}
	return r.openInRoot(dest)
}

// mount makes one spec mount.
func (r *rootfs) mount(m *specs.Mount) error {
	opts := parseMountOptions(m.Options)
	if m.Type == "bind" {
		opts.bind = true
		opts.flags |= unix.MS_BIND
	}
	switch m.Type {
	case "cgroup", "cgroup2":
		if !opts.bind {
			return r.mountCgroup(m, opts)
		}
	}
	src := m.Source
	isFile := false
	if opts.bind {
		if !filepath.IsAbs(src) {
			src = filepath.Join(r.cfg.Bundle, src)
		}
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
		isFile = !fi.IsDir()
	}
	h, err := r.target(m.Destination, isFile)
	if err != nil {
		return err
	}
	defer unix.Close(h)
	if opts.bind {
		return r.bindMount(src, m.Destination, h, opts)
	}
	flags := opts.flags
	data := opts.dataString()
	err = unix.Mount(m.Source, procFd(h), m.Type, flags, data)
	if err != nil && (m.Type == "sysfs" || m.Type == "mqueue") && errors.Is(err, unix.EPERM) {
		// Without a network (sysfs) or IPC (mqueue) namespace of our own the
		// kernel refuses a fresh instance in a user namespace: give the
		// host's, as runc does.
		host := map[string]string{"sysfs": "/sys", "mqueue": "/dev/mqueue"}[m.Type]
		opts.flags |= unix.MS_BIND | unix.MS_REC
		opts.recursive = true
		return r.bindMount(host, m.Destination, h, opts)
	}
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.Type, err)
	}
	return r.applyPropagation(m.Destination, opts)
}

// bindMount binds src onto the handle h (at dest) and then applies the
// flags a bind mount ignores on its first call (ro, nosuid…).
func (r *rootfs) bindMount(src, dest string, h int, opts mountOpts) error {
	flags := uintptr(unix.MS_BIND)
	if opts.recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(src, procFd(h), "", flags, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	rest := opts.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	if rest != 0 {
		// Reopen: h still names the covered mount point, the remount must
		// hit the new mount on top of it.
		nh, err := r.openInRoot(dest)
		if err != nil {
			return fmt.Errorf("reopen %s: %w", dest, err)
		}
		defer unix.Close(nh)
		if err := remountBind(procFd(nh), rest); err != nil {
			return fmt.Errorf("remount %s: %w", dest, err)
		}
	}
	if opts.recAttrSet != 0 || opts.recAttrClr != 0 {
		nh, err := r.openInRoot(dest)
		if err != nil {
			return fmt.Errorf("reopen %s: %w", dest, err)
		}
		defer unix.Close(nh)
		attr := &unix.MountAttr{Attr_set: opts.recAttrSet, Attr_clr: opts.recAttrClr}
		if err := unix.MountSetattr(nh, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("mount_setattr %s: %w", dest, err)
		}
	}
	return r.applyPropagation(dest, opts)
}

// remountBind changes the flags of a bind mount, keeping the flags the
// kernel locks in a user namespace (nodev, nosuid, noexec, atime) set.
func remountBind(target string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err == nil {
		// statfs reports ST_* bits; most equal their MS_* twins, not relatime.
		for stBit, msBit := range map[int64]uintptr{
			unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NOEXEC: unix.MS_NOEXEC,
			unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME,
		} {
			if st.Flags&stBit != 0 {
				flags |= msBit
			}
		}
	}
	return unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|flags, "")
}

func (r *rootfs) applyPropagation(dest string, opts mountOpts) error {
	if len(opts.propagation) == 0 {
		return nil
	}
	h, err := r.openInRoot(dest)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", dest, err)
	}
	defer unix.Close(h)
	for _, p := range opts.propagation {
		if err := unix.Mount("", procFd(h), "", p, ""); err != nil {
			return fmt.Errorf("set propagation of %s: %w", dest, err)
		}
	}
	return nil
}

// mountCgroup gives the container its cgroups. With a cgroup namespace the
// kernel mounts the container's own view; without one we bind the
// container's directories under a tmpfs, as runc does, so the container
// sees only its own groups either way.
func (r *rootfs) mountCgroup(m *specs.Mount, opts mountOpts) error {
	if err := r.joinCgroup(); err != nil {
		return err
	}
	h, err := r.target(m.Destination, false)
	if err != nil {
		return err
	}
	defer unix.Close(h)
	ro := opts.flags & unix.MS_RDONLY
	base := opts.flags &^ unix.MS_RDONLY
	srcs := r.cfg.CgroupMounts
	if len(srcs) == 1 && srcs[0].Version == 2 && srcs[0].Subdir == "" {
		if r.cfg.NewCgroupNS {
			if err := unix.Mount("cgroup2", procFd(h), "cgroup2", opts.flags, opts.dataString()); err != nil {
				return fmt.Errorf("mount cgroup2: %w", err)
			}
			return nil
		}
		return r.bindMount(srcs[0].HostPath, m.Destination, h, mountOpts{flags: opts.flags, recursive: true})
	}
	if err := unix.Mount("tmpfs", procFd(h), "tmpfs", base|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs for cgroups: %w", err)
	}
	dest := path.Clean("/" + m.Destination)
	for _, s := range srcs {
		sub := path.Join(dest, s.Subdir)
		sh, err := r.target(sub, false)
		if err != nil {
			return err
		}
		if r.cfg.NewCgroupNS {
			fstype, data := "cgroup", v1MountData(s.Subdir)
			if s.Version == 2 {
				fstype, data = "cgroup2", ""
			}
			err = unix.Mount(fstype, procFd(sh), fstype, base|ro|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, data)
			if err != nil {
				err = fmt.Errorf("mount %s %s: %w", fstype, s.Subdir, err)
			}
		} else {
			err = r.bindMount(s.HostPath, sub, sh, mountOpts{flags: base | ro | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC})
		}
		unix.Close(sh)
		if err != nil {
			return err
		}
		for _, link := range s.Symlinks {
			if err := r.symlink(s.Subdir, path.Join(dest, link)); err != nil {
				return err
			}
		}
	}
	if ro != 0 {
		nh, err := r.openInRoot(dest)
		if err != nil {
			return err
		}
		defer unix.Close(nh)
		if err := remountBind(procFd(nh), unix.MS_RDONLY); err != nil {
			return fmt.Errorf("remount %s read-only: %w", dest, err)
		}
	}
	return nil
}

// procCgroups is /proc/cgroups (the kernel's controllers), read once for
// all the hierarchies a cgroup mount makes.
var procCgroups = sync.OnceValues(func() ([]byte, error) { return os.ReadFile("/proc/cgroups") })

// v1MountData is the mount option naming a v1 hierarchy: its controllers,
// or "none,name=X" for a named hierarchy such as systemd's.
func v1MountData(subdir string) string {
	data, err := procCgroups()
	if err == nil {
		first := strings.Split(subdir, ",")[0]
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == first {
				return subdir
			}
		}
	}
	return "none,name=" + strings.TrimPrefix(subdir, "name=")
}

// symlink creates link -> target inside the rootfs (an existing entry is
// left alone).
func (r *rootfs) symlink(target, link string) error {
	parent, err := mkdirAllInRoot(r.rootDir, path.Dir(link), 0o755)
	if err != nil {
		return fmt.Errorf("symlink %s: %w", link, err)
	}
	defer unix.Close(parent)
	if err := unix.Symlinkat(target, parent, path.Base(link)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("symlink %s -> %s: %w", link, target, err)
	}
	return nil
}

// defaultDevices are the devices every container gets (runtime-spec
// "Default Devices").
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// makeDevices populates /dev: the spec's devices, the default ones, and
// the standard symlinks.
func (r *rootfs) makeDevices() error {
	seen := map[string]bool{}
	for i, d := range r.cfg.Spec.Linux.Devices {
		if err := r.makeDevice(d); err != nil {
			return fmt.Errorf("linux.devices[%d] (%s): %w", i, d.Path, err)
		}
		seen[path.Clean(d.Path)] = true
	}
	for _, d := range defaultDevices {
		if seen[d.Path] {
			continue
		}
		mode := os.FileMode(0o666)
		d.FileMode = &mode
		if err := r.makeDevice(d); err != nil {
			return fmt.Errorf("default device %s: %w", d.Path, err)
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
		{"pts/ptmx", "/dev/ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	for _, l := range links {
		if h, err := r.openInRoot(l[1]); err == nil {
			unix.Close(h) // an existing entry (e.g. a bind-mounted ptmx) wins
			continue
		}
		if err := r.symlink(l[0], l[1]); err != nil {
			return err
		}
	}
	return nil
}

var deviceTypes = map[string]uint32{"c": unix.S_IFCHR, "u": unix.S_IFCHR, "b": unix.S_IFBLK, "p": unix.S_IFIFO}

// makeDevice creates one device node; in a user namespace, where mknod is
// refused, it binds the host's node instead.
func (r *rootfs) makeDevice(d specs.LinuxDevice) error {
	typ, ok := deviceTypes[d.Type]
	if !ok {
		return fmt.Errorf("unknown device type %q", d.Type)
	}
	p := path.Clean("/" + d.Path)
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	parent, err := mkdirAllInRoot(r.rootDir, path.Dir(p), 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	name := path.Base(p)
	_ = unix.Unlinkat(parent, name, 0)
	err = unix.Mknodat(parent, name, typ|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	if errors.Is(err, unix.EPERM) && r.cfg.NewUserNS {
		h, err := r.target(p, true)
		if err != nil {
			return err
		}
		defer unix.Close(h)
		if err := unix.Mount(p, procFd(h), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind host device %s: %w", p, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	// mknod applies the umask; set the mode the spec asked for.
	if err := unix.Fchmodat(parent, name, perm, 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchownat(parent, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	return nil
}

// enter makes the rootfs the process's root: pivot_root, or MS_MOVE and
// chroot when asked (--no-pivot, needed on ramfs).
func (r *rootfs) enter() error {
	if !r.cfg.NewMountNS {
		// Sharing the runtime's mount namespace: any mount would land on
		// the host, so none is made; the process only gets its root.
		if len(r.cfg.Spec.Mounts) > 0 || len(r.cfg.Spec.Linux.MaskedPaths) > 0 || len(r.cfg.Spec.Linux.ReadonlyPaths) > 0 {
			fmt.Fprintln(os.Stderr, "runsilo: warning: no mount namespace: mounts, masked and read-only paths are not applied")
		}
		if err := unix.Chroot(r.cfg.Rootfs); err != nil {
			return fmt.Errorf("chroot %s: %w", r.cfg.Rootfs, err)
		}
		return unix.Chdir("/")
	}
	defer unix.Close(r.rootDir)
	if r.cfg.NoPivot {
		if err := unix.Chdir(r.root); err != nil {
			return fmt.Errorf("chdir %s: %w", r.root, err)
		}
		if err := unix.Mount(r.root, "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s to /: %w", r.root, err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot %s: %w", r.root, err)
		}
		return unix.Chdir("/")
	}
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldRoot)
	if err := unix.Chdir(r.root); err != nil {
		return fmt.Errorf("chdir %s: %w", r.root, err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; we
	// then detach it from where we stand.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", r.root, err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("fchdir old root: %w", err)
	}
	// rslave first, so the unmount below does not propagate to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// finish runs after pivot_root: masked and read-only paths, the read-only
// root, and the root's propagation.
func (r *rootfs) finish() error {
	if !r.cfg.NewMountNS {
		return nil
	}
	linux := r.cfg.Spec.Linux
	for _, p := range linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return fmt.Errorf("linux.readonlyPaths %s: %w", p, err)
		}
	}
	for _, p := range linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return fmt.Errorf("linux.maskedPaths %s: %w", p, err)
		}
	}
	if r.cfg.Spec.Root.Readonly {
		if err := remountBind("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("root.readonly: remount / read-only: %w", err)
		}
	}
	if p := linux.RootfsPropagation; p != "" {
		flag, ok := propagationOpts[p]
		if !ok {
			return fmt.Errorf("linux.rootfsPropagation: unknown value %q", p)
		}
		if err := unix.Mount("", "/", "", flag, ""); err != nil {
			return fmt.Errorf("linux.rootfsPropagation %s: %w", p, err)
		}
	}
	return nil
}

func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("bind: %w", err)
	}
	return remountBind(p, unix.MS_RDONLY|unix.MS_REC)
}

func maskPath(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0k")
	}
	return unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
}

// setupConsole creates the pty, sends its master to the console socket and
// makes the slave the process's stdio and controlling terminal, and with
// console (a container's init, not an exec) /dev/console.
func setupConsole(sockFd int, size *specs.Box, console bool) error {
	if sockFd < 0 {
		return fmt.Errorf("process.terminal: no console socket")
	}
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("process.terminal: open /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("process.terminal: unlockpt: %w", err)
	}
	n, err := unix.IoctlGetUint32(master, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("process.terminal: ptsname: %w", err)
	}
	slavePath := "/dev/pts/" + strconv.Itoa(int(n))
	slave, err := unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("process.terminal: open %s: %w", slavePath, err)
	}
	defer unix.Close(slave)
	if size != nil {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("process.consoleSize: %w", err)
		}
	}
	// /dev/console is the container's terminal too, for programs that open
	// it (an exec's would stack a mount on the container's at each exec).
	if console {
		if fd, err := unix.Open("/dev/console", unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_WRONLY, 0o600); err == nil {
			unix.Close(fd)
			_ = unix.Mount(slavePath, "/dev/console", "", unix.MS_BIND, "")
		}
	}
	rights := unix.UnixRights(master)
	if err := unix.Sendmsg(sockFd, []byte(slavePath), rights, nil, 0); err != nil {
		return fmt.Errorf("process.terminal: send pty master to console socket: %w", err)
	}
	unix.Close(sockFd)
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup2(slave, fd); err != nil {
			return fmt.Errorf("process.terminal: dup2: %w", err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("process.terminal: set controlling terminal: %w", err)
	}
	return nil
}
