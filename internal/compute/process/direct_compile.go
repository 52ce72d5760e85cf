package process

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute"
	"github.com/silo-containers/silo/internal/compute/process/cgroups"
	"github.com/silo-containers/silo/internal/compute/process/dmz"
	"github.com/silo-containers/silo/internal/compute/process/seccomp"
)

// Marks the direct init writes on the init pipe at its sync points; any
// other record is the index of the step that failed and its errno.
const (
	markCgroup = 0xffffff01 // waiting for its cgroups (sync 1)
	markHooks  = 0xffffff02 // mounts made: the runtime's hooks now (sync 2)
	markReady  = 0xffffff03 // waiting to start (sync 3)
)

// atFdcwd is AT_FDCWD as a syscall argument.
const atFdcwd = ^uintptr(99) // -100

// Slots of the direct init: fds its steps open for later steps.
const (
	slotTmp    = 0 // a file written and closed at once
	slotOldDir = 1 // the old root during pivot_root
	slotRoot   = 2 // the rootfs, root of every openat2
	slotTarget = 3 // a mount point being made
	slotParent = 4 // its parent while a directory is made
)

// directFd is the fd number a mount point is duplicated to, so that the
// mount(2) path "/proc/self/fd/999" can be written down in advance.
const directFd = 999

// The pty of a terminal goes to fixed fds too: the console socket's
// message names the master, /dev/console is bound from the slave.
const (
	consoleMasterFd = 994
	consoleSlaveFd  = 995
)

// firstFixedFd is the lowest of the direct init's fixed fds (the console's,
// the trampoline's, directFd): preserved fds must stay below it.
const firstFixedFd = consoleMasterFd

// directSupported reports whether the direct init can set this container
// up; everything else goes through the exec'd init (Init), which handles
// every feature. The direct init is the fast path for the common case:
// no user namespace, no mount or time namespace joined (others are joined
// by the parent's thread before the clone, as for the exec'd init),
// file-system and bind mounts, no hooks that init runs itself, no LSM
// labels.
func directSupported(doc *compute.Document, plan *nsPlan) bool {
	s := doc.Spec
	switch {
	case doc.NoPivot,
		len(plan.childJoins) > 0, plan.unshare != 0, plan.userNS(),
		plan.cloneFlags&unix.CLONE_NEWNS == 0,
		s.Hooks != nil && (len(s.Hooks.CreateContainer) > 0 || len(s.Hooks.StartContainer) > 0),
		s.Linux.MountLabel != "",
		!directProcessOK(s, s.Process, [3]*os.File{doc.Stdin, doc.Stdout, doc.Stderr}, doc.PreserveFDs),
		// From a writable binary: the trampoline, in a pid namespace of
		// its own (trampoline.go).
		!selfExeSafe() && (plan.cloneFlags&unix.CLONE_NEWPID == 0 || !dmz.Supported()):
		return false
	}
	for _, m := range s.Mounts {
		o := parseMountOptions(m.Options)
		if path.Clean("/"+m.Destination) == "/" {
			return false
		}
		if m.Type == "bind" || o.bind {
			// A bind's other flags become mount_setattr attributes.
			if o.flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT|bindAttrFlags) != 0 {
				return false
			}
			continue
		}
		switch m.Type {
		case "proc", "tmpfs", "devpts", "mqueue", "sysfs", "cgroup", "cgroup2":
		default:
			return false
		}
		if o.recAttrSet != 0 || o.recAttrClr != 0 {
			return false
		}
	}
	return true
}

// directProcessOK reports whether a direct child can start proc, the
// container's process or an exec's: what both kinds of direct child
// leave to the exec'd init. The preserved fds must stay below the fixed
// ones.
func directProcessOK(s *specs.Spec, proc *specs.Process, stdio [3]*os.File, preserve int) bool {
	l := s.Linux
	switch {
	case os.Getenv("SILO_EXEC_INIT") == "1", 3+preserve >= firstFixedFd,
		l.Seccomp != nil && l.Seccomp.ListenerPath != "",
		l.Personality != nil, proc.ApparmorProfile != "", proc.SelinuxLabel != "",
		proc.Capabilities == nil, len(proc.Args) == 0:
		return false
	}
	if sc := l.Seccomp; sc != nil {
		if sc.DefaultAction == specs.ActNotify {
			return false
		}
		for _, r := range sc.Syscalls {
			if r.Action == specs.ActNotify {
				return false
			}
		}
	}
	// The stdio steps are plain dup3s: a file that already sits on another
	// of fds 0-2 would be overwritten before it is placed.
	for i, f := range stdio {
		if f != nil && f.Fd() < 3 && int(f.Fd()) != i {
			return false
		}
	}
	return haveDirectKernel()
}

// selfExeSafe reports whether this runtime's executable cannot be written
// through /proc/<pid>/exe (a variable for the tests).
//
// A direct child is this process, not a clone of its sealed copy: until
// its execve, and after it if the container's process is /proc/self/exe
// (or a script whose interpreter is), /proc/<pid>/exe of a process in the
// container is this binary. Were it writable, the container could
// overwrite the runtime on the host (CVE-2019-5736). The exec'd init runs
// from a read-only clone (openSealedExe) and is safe everywhere; the
// direct paths as they are only when the binary already is: on a read-only
// mount, or a sealed memfd. Otherwise a direct child executes a
// trampoline (trampoline.go) that executes the process.
//
// A command asks more than once (whether a direct path can serve, then
// how); the answer holds for the process's life.
var selfExeSafe = sync.OnceValue(func() bool { return exeProtected("/proc/self/exe") })

// exeProtected reports whether the file at path cannot be written: it is
// on a read-only mount, or a memfd sealed against writes.
func exeProtected(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err == nil && st.Flags&unix.ST_RDONLY != 0 {
		return true
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	return err == nil && seals&unix.F_SEAL_WRITE != 0
}

// bindAttrFlags are the MS_* flags a bind mount gets by mount_setattr,
// and bindAttrs their MOUNT_ATTR_* twins.
const bindAttrFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

var bindAttrs = [...]struct {
	ms   uintptr
	attr uint64
}{
	{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY}, {unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
	{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV}, {unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
}

// haveDirectKernel probes for what the direct init's steps use beyond
// clone3 (5.3) and openat2 (5.6): mount_setattr (5.12). A bad fd gets
// EBADF from a kernel that has it, ENOSYS from one that has not.
func haveDirectKernel() bool {
	err := unix.MountSetattr(-1, "", unix.AT_EMPTY_PATH, &unix.MountAttr{})
	return err != unix.ENOSYS
}

// directBuilder compiles the container's set-up into a directProg.
type directBuilder struct {
	p      *directProg
	syncFd int
	how    uintptr // struct open_how for an O_PATH directory in the rootfs
	howAny uintptr // the same for any file
}

func (b *directBuilder) str(s string) uintptr {
	if s == "" {
		return 0
	}
	return b.p.cstr(s)
}

// keepStruct keeps v (a pointer to a struct the kernel reads) and returns
// its address.
func keepStruct[T any](p *directProg, v *T) uintptr {
	p.keep = append(p.keep, unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v)))
	return uintptr(unsafe.Pointer(v))
}

// vectors keeps argv and envv (execVectors') and returns their addresses.
func (p *directProg) vectors(argv, envv []*byte) (uintptr, uintptr) {
	p.keep = append(p.keep, unsafe.Slice((*byte)(unsafe.Pointer(&argv[0])), len(argv)*8), unsafe.Slice((*byte)(unsafe.Pointer(&envv[0])), len(envv)*8))
	return uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0]))
}

// fromSlot makes argument i of o the fd in slot s.
func fromSlot(o *dop, i, s int) *dop {
	o.argFrom, o.slotIn = i, s
	return o
}

func (b *directBuilder) mount(what, src, dst, fstype string, flags uintptr, data string) *dop {
	return b.p.sys(what, unix.SYS_MOUNT, b.str(src), b.str(dst), b.str(fstype), flags, b.str(data))
}

// sync writes mark to the parent and, with wait, reads its one-byte reply.
func (b *directBuilder) sync(what string, mark uint32, wait bool) {
	rec := make([]byte, 8)
	binary.LittleEndian.PutUint32(rec, mark)
	b.p.sys(what, unix.SYS_WRITE, uintptr(b.syncFd), b.p.buf(rec), 8)
	if wait {
		b.p.sys(what, unix.SYS_READ, uintptr(b.syncFd), b.p.buf(make([]byte, 1)), 1)
	}
}

// openIn opens rel inside the rootfs (openat2 RESOLVE_IN_ROOT, no magic
// links: a symlink cannot lead out, CVE-2021-30465) into slot out.
func (b *directBuilder) openIn(rel string, out int) *dop {
	return b.openHow(rel, out, b.how)
}

func (b *directBuilder) openHow(rel string, out int, how uintptr) *dop {
	o := b.p.sys("open "+rel+" in rootfs", unix.SYS_OPENAT2, 0, b.p.cstr(rel), how, unsafe.Sizeof(unix.OpenHow{}))
	o.slotOut = out
	return fromSlot(o, 0, slotRoot)
}

// file makes dest a file mount point (an empty file, when nothing is
// there) and leaves it open in slotTarget, as rootfs.target for a file.
func (b *directBuilder) file(dest string) {
	dest = path.Clean("/" + dest)
	b.openHow(dest, slotTarget, b.howAny).okErr = unix.ENOENT
	first := len(b.p.ops) - 1
	b.dir(path.Dir(dest))
	// mknod of a regular file: created without an fd to close.
	fromSlot(b.p.sys("create mount point "+dest, unix.SYS_MKNODAT, 0, b.p.cstr(path.Base(dest)), unix.S_IFREG|0o644, 0), 0, slotTarget).okErr = unix.EEXIST
	fromSlot(b.p.sys("close", unix.SYS_CLOSE, 0), 0, slotTarget)
	b.openHow(dest, slotTarget, b.howAny)
	b.p.ops[first].skipOK = len(b.p.ops) - first - 1
}

// fixed duplicates slotTarget to directFd and returns the path that names
// it for mount(2).
func (b *directBuilder) fixed(dest string) string {
	fromSlot(b.p.sys("dup "+dest, unix.SYS_DUP3, 0, directFd, unix.O_CLOEXEC), 0, slotTarget)
	fromSlot(b.p.sys("close", unix.SYS_CLOSE, 0), 0, slotTarget)
	return "/proc/self/fd/" + strconv.Itoa(directFd)
}

// bindMount binds a host path, as rootfs.bindMount: the bind, then its
// flags (a bind ignores them on the first call), the recursive
// attributes, the propagation. Each later step reopens dest: the earlier
// fd names the mount point under the new mount.
func (b *directBuilder) bindMount(what string, m specs.Mount, o mountOpts, bundle string) error {
	src := m.Source
	if !path.IsAbs(src) {
		src = path.Join(bundle, src)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("%s: bind source: %w", what, err)
	}
	dest := path.Clean("/" + m.Destination)
	open := func() {
		if fi.IsDir() {
			b.dir(dest)
		} else {
			b.file(dest)
		}
	}
	open()
	flags := uintptr(unix.MS_BIND)
	if o.recursive {
		flags |= unix.MS_REC
	}
	b.mount(what+": bind "+src, src, b.fixed(dest), "", flags, "")
	if rest := o.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); rest != 0 {
		open()
		b.remountFlags(what+": remount", rest)
	}
	if o.recAttrSet != 0 || o.recAttrClr != 0 {
		open()
		attr := keepStruct(b.p, &unix.MountAttr{Attr_set: o.recAttrSet, Attr_clr: o.recAttrClr})
		fromSlot(b.p.sys(what+": mount_setattr", unix.SYS_MOUNT_SETATTR, 0, b.p.cstr(""), unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr, unsafe.Sizeof(unix.MountAttr{})), 0, slotTarget)
		fromSlot(b.p.sys("close", unix.SYS_CLOSE, 0), 0, slotTarget)
	}
	if len(o.propagation) > 0 {
		open()
		t := b.fixed(dest)
		for _, pr := range o.propagation {
			b.mount(what+": propagation", "", t, "", pr, "")
		}
	}
	return nil
}

// dir makes directory dest (and its parents) in the rootfs, as
// mkdirAllInRoot, and leaves it open in slotTarget. The steps try, in
// turn: dest exists (one openat2); its parent exists (make dest alone);
// else make every component.
func (b *directBuilder) dir(dest string) {
	dest = path.Clean("/" + dest)
	ops := func() int { return len(b.p.ops) }
	b.openIn(dest, slotTarget).okErr = unix.ENOENT
	first := ops() - 1
	var short int
	if dest != "/" {
		parent, base := path.Dir(dest), path.Base(dest)
		o := b.openIn(parent, slotParent)
		o.skipErr, o.skipN = unix.ENOENT, 3
		fromSlot(b.p.sys("create mount point "+dest, unix.SYS_MKDIRAT, 0, b.p.cstr(base), 0o755), 0, slotParent).okErr = unix.EEXIST
		fromSlot(b.p.sys("close", unix.SYS_CLOSE, 0), 0, slotParent)
		b.openIn(dest, slotTarget)
		short = ops() - 1
	}
	comps := strings.Split(strings.TrimPrefix(dest, "/"), "/")
	for k := range comps {
		parent := "/" + strings.Join(comps[:k], "/")
		b.openIn(parent, slotParent)
		fromSlot(b.p.sys("create mount point "+path.Join(parent, comps[k]), unix.SYS_MKDIRAT, 0, b.p.cstr(comps[k]), 0o755), 0, slotParent).okErr = unix.EEXIST
		fromSlot(b.p.sys("close", unix.SYS_CLOSE, 0), 0, slotParent)
	}
	b.openIn(dest, slotTarget)
	b.p.ops[first].skipOK = ops() - first - 1
	if short > 0 {
		b.p.ops[short].skipOK = ops() - short - 1
	}
}

// target makes dest and returns the path that names it for mount(2).
func (b *directBuilder) target(dest string) string {
	b.dir(dest)
	return b.fixed(dest)
}

// setattr sets mount attributes on pth (mount_setattr keeps the others,
// as remountBind keeps the locked flags).
func (b *directBuilder) setattr(what, pth string, set uint64, flags uintptr) *dop {
	attr := keepStruct(b.p, &unix.MountAttr{Attr_set: set})
	return b.p.sys(what, unix.SYS_MOUNT_SETATTR, atFdcwd, b.p.cstr(pth), flags, attr, unsafe.Sizeof(unix.MountAttr{}))
}

// writeFile writes val to pth (a /proc file after pivot_root).
func (b *directBuilder) writeFile(what, pth, val string) {
	b.p.sys(what, unix.SYS_OPENAT, atFdcwd, b.p.cstr(pth), unix.O_WRONLY|unix.O_CLOEXEC).slotOut = slotTmp
	fromSlot(b.p.sys(what, unix.SYS_WRITE, 0, b.p.buf([]byte(val)), uintptr(len(val))), 0, slotTmp)
	fromSlot(b.p.sys("close", unix.SYS_CLOSE, 0), 0, slotTmp)
}

// directConfig is what compileDirect needs beside the spec.
type directConfig struct {
	spec               *specs.Spec
	id, rootfs, bundle string
	cgMounts           []cgroups.MountSource
	// tasks are the v1 "tasks" files the init joins (nil: the parent
	// moves it).
	tasks        []string
	newCgroupNS  bool
	creds        *credentials
	filter       *seccomp.Filter
	noNewKeyring bool
	// syncFd is the child's end of the init pipe; fifoFd the exec fifo
	// (-1 for run, which waits on the pipe).
	syncFd, fifoFd int
	// console is the console socket of a process with a terminal.
	console  int
	stdio    [3]int
	preserve int
	// trampoline, when set, is what the child executes at the end of its
	// set-up instead of the process (trampoline.go).
	trampoline *trampoline
}

// newDirectBuilder starts a program with room for steps steps.
func newDirectBuilder(syncFd, steps int) *directBuilder {
	p := &directProg{ops: make([]dop, 0, steps), what: make([]string, 0, steps)}
	return &directBuilder{p: p, syncFd: syncFd}
}

// prologue is what every direct child does first: the stdio in place,
// signal handlers and mask as a forked child has them, every other fd
// but the preserved ones close-on-exec.
func (b *directBuilder) prologue(c *directConfig) {
	p := b.p
	for i, fd := range c.stdio {
		if fd != i {
			p.sys("stdio", unix.SYS_DUP3, uintptr(fd), uintptr(i), 0)
		}
	}
	if directSharesMemory {
		// What runtime_AfterForkInChild does for a forked child: default
		// handlers (ours cannot run in the child), then the mask back. A
		// signal the process ignores stays ignored, as it does across
		// ForkExec and execve; the Go runtime knows which (no syscall).
		dfl := keepStruct(p, &[4]uint64{})
		for sig := 1; sig <= 64; sig++ {
			if s := syscall.Signal(sig); s == unix.SIGKILL || s == unix.SIGSTOP || signal.Ignored(s) {
				continue
			}
			p.sys("reset signal handler", unix.SYS_RT_SIGACTION, uintptr(sig), dfl, 0, 8).anyErr = true
		}
		p.sigmask = new(uint64)
		p.sys("restore signal mask", unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, keepStruct(p, p.sigmask), 0, 8)
	}
	p.sys("mark fds close-on-exec", unix.SYS_CLOSE_RANGE, uintptr(3+c.preserve), ^uintptr(0), unix.CLOSE_RANGE_CLOEXEC)
}

// compileDirect turns the container's set-up into the steps of the
// direct init, in the order Init makes them.
func compileDirect(c *directConfig) (*directProg, error) {
	// Room for a typical container's ~250 steps without regrowing.
	b := newDirectBuilder(c.syncFd, 320)
	p := b.p
	b.how = keepStruct(p, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_DIRECTORY, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	b.howAny = keepStruct(p, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	spec, l := c.spec, c.spec.Linux
	b.prologue(c)
	p.sys("setsid", unix.SYS_SETSID)
	// Keep our mounts from the host and the host's unmounts from us.
	b.mount("make / rslave", "", "/", "", unix.MS_SLAVE|unix.MS_REC, "")
	b.mount("root.path: bind "+c.rootfs, c.rootfs, c.rootfs, "", unix.MS_BIND|unix.MS_REC, "")
	b.mount("root.path: make private", "", c.rootfs, "", unix.MS_PRIVATE, "")
	p.sys("root.path: open "+c.rootfs, unix.SYS_OPENAT, atFdcwd, p.cstr(c.rootfs), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC).slotOut = slotRoot
	joined := false
	join := func() {
		if joined {
			return
		}
		joined = true
		b.sync("wait for cgroups", markCgroup, true)
		for _, t := range c.tasks {
			b.writeFile("join cgroup "+t, t, "0")
		}
		if c.newCgroupNS {
			p.sys("unshare cgroup namespace", unix.SYS_UNSHARE, unix.CLONE_NEWCGROUP)
		}
	}
	devBound := false
	for i, m := range spec.Mounts {
		o := parseMountOptions(m.Options)
		what := fmt.Sprintf("mounts[%d] (%s on %s)", i, m.Type, m.Destination)
		if m.Type == "bind" || o.bind {
			if err := b.bindMount(what, m, o, c.bundle); err != nil {
				return nil, err
			}
			devBound = devBound || path.Clean("/"+m.Destination) == "/dev"
			continue
		}
		if m.Type == "cgroup" || m.Type == "cgroup2" {
			join()
			b.cgroupMount(what, m, o, c)
			continue
		}
		b.mount(what, m.Source, b.target(m.Destination), m.Type, o.flags, o.dataString())
		if len(o.propagation) > 0 {
			// Reopened: the fd names the mount point under the new mount.
			t := b.target(m.Destination)
			for _, pr := range o.propagation {
				b.mount(what+": propagation", "", t, "", pr, "")
			}
		}
	}
	join()
	if !devBound {
		if err := b.devices(l.Devices); err != nil {
			return nil, err
		}
	}
	b.sync("mounts made", markHooks, true)
	// pivot_root(".", ".") stacks the old root on the new one; detach it.
	p.sys("open old root", unix.SYS_OPENAT, atFdcwd, p.cstr("/"), unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC).slotOut = slotOldDir
	fromSlot(p.sys("chdir "+c.rootfs, unix.SYS_FCHDIR, 0), 0, slotRoot)
	p.sys("pivot_root", unix.SYS_PIVOT_ROOT, p.cstr("."), p.cstr("."))
	fromSlot(p.sys("fchdir old root", unix.SYS_FCHDIR, 0), 0, slotOldDir)
	b.mount("make old root rslave", "", ".", "", unix.MS_SLAVE|unix.MS_REC, "")
	p.sys("detach old root", unix.SYS_UMOUNT2, p.cstr("."), unix.MNT_DETACH)
	p.sys("chdir /", unix.SYS_CHDIR, p.cstr("/"))
	fromSlot(p.sys("close", unix.SYS_CLOSE, 0), 0, slotOldDir)
	fromSlot(p.sys("close", unix.SYS_CLOSE, 0), 0, slotRoot)
	if h := spec.Hostname; h != "" {
		p.sys("hostname: sethostname", unix.SYS_SETHOSTNAME, p.cstr(h), uintptr(len(h)))
	}
	if d := spec.Domainname; d != "" {
		p.sys("domainname: setdomainname", unix.SYS_SETDOMAINNAME, p.cstr(d), uintptr(len(d)))
	}
	keys := make([]string, 0, len(l.Sysctl))
	for k := range l.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.Contains(k, "..") || strings.Contains(k, "/") {
			return nil, fmt.Errorf("linux.sysctl: bad key %q", k)
		}
		b.writeFile(fmt.Sprintf("linux.sysctl %s=%q", k, l.Sysctl[k]), "/proc/sys/"+strings.ReplaceAll(k, ".", "/"), l.Sysctl[k])
	}
	for _, r := range l.ReadonlyPaths {
		bind := b.mount("linux.readonlyPaths "+r+": bind", r, r, "", unix.MS_BIND|unix.MS_REC, "")
		bind.skipErr, bind.skipN = unix.ENOENT, 1
		b.setattr("linux.readonlyPaths "+r+": read-only", r, unix.MOUNT_ATTR_RDONLY, unix.AT_RECURSIVE)
	}
	for _, m := range l.MaskedPaths {
		// /dev/null over a file; a directory refuses it (ENOTDIR) and
		// gets an empty read-only tmpfs instead; a missing path is left.
		null := b.mount("linux.maskedPaths "+m, "/dev/null", m, "", unix.MS_BIND, "")
		null.okErr, null.skipErr, null.skipOK = unix.ENOENT, unix.ENOTDIR, 1
		b.mount("linux.maskedPaths "+m, "tmpfs", m, "tmpfs", unix.MS_RDONLY, "size=0k").okErr = unix.ENOENT
	}
	if spec.Root.Readonly {
		b.setattr("root.readonly: remount / read-only", "/", unix.MOUNT_ATTR_RDONLY, 0)
	}
	if pr := l.RootfsPropagation; pr != "" {
		flag, ok := propagationOpts[pr]
		if !ok {
			return nil, fmt.Errorf("linux.rootfsPropagation: unknown value %q", pr)
		}
		b.mount("linux.rootfsPropagation "+pr, "", "/", "", flag, "")
	}
	if spec.Process.Terminal {
		if err := b.terminal(c, true); err != nil {
			return nil, err
		}
		b.ctty()
	}
	if adj := spec.Process.OOMScoreAdj; adj != nil {
		b.writeFile("process.oomScoreAdj", "/proc/self/oom_score_adj", strconv.Itoa(*adj))
	}
	if !c.noNewKeyring {
		p.sys("join session keyring", unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, p.cstr("_ses."+c.id)).okErr = unix.ENOSYS
	}
	candidates := b.lookPath(spec.Process)
	if c.trampoline != nil {
		// The trampoline says "ready" and waits for start.
		if err := b.trampolineFds(c); err != nil {
			return nil, err
		}
		return p, b.finalize(c, nil)
	}
	b.sync("ready", markReady, c.fifoFd < 0)
	if c.fifoFd >= 0 {
		p.sys("wait for start on exec fifo", unix.SYS_READ, uintptr(c.fifoFd), p.buf(make([]byte, 1)), 1)
		p.sys("close exec fifo", unix.SYS_CLOSE, uintptr(c.fifoFd))
	}
	return p, b.finalize(c, candidates)
}

// terminal gives the process a pty, as setupConsole: the master goes to
// the console socket, the slave becomes stdio and, for an init,
// /dev/console. The slave comes from TIOCGPTPEER, not a /dev/pts path
// (none can be written down in advance); the message carrying the master
// says "/dev/ptmx" where the exec'd init sends the slave's path: clients
// (containerd, conmon) take only the fd, and crun sends a single byte.
// The controlling terminal is the session leader's to set (ctty).
func (b *directBuilder) terminal(c *directConfig, console bool) error {
	if c.console < 0 {
		return errors.New("process.terminal is true but no console socket was given")
	}
	p, proc := b.p, c.spec.Process
	p.sys("process.terminal: open /dev/ptmx", unix.SYS_OPENAT, atFdcwd, p.cstr("/dev/ptmx"), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC).slotOut = slotTmp
	fromSlot(p.sys("process.terminal: pty master", unix.SYS_DUP3, 0, consoleMasterFd, unix.O_CLOEXEC), 0, slotTmp)
	fromSlot(p.sys("close", unix.SYS_CLOSE, 0), 0, slotTmp)
	p.sys("process.terminal: unlockpt", unix.SYS_IOCTL, consoleMasterFd, unix.TIOCSPTLCK, keepStruct(p, new(int32)))
	p.sys("process.terminal: open the pty's slave", unix.SYS_IOCTL, consoleMasterFd, unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC).slotOut = slotTmp
	fromSlot(p.sys("process.terminal: pty slave", unix.SYS_DUP3, 0, consoleSlaveFd, unix.O_CLOEXEC), 0, slotTmp)
	fromSlot(p.sys("close", unix.SYS_CLOSE, 0), 0, slotTmp)
	if sz := proc.ConsoleSize; sz != nil {
		ws := keepStruct(p, &unix.Winsize{Row: uint16(sz.Height), Col: uint16(sz.Width)})
		p.sys("process.consoleSize", unix.SYS_IOCTL, consoleMasterFd, unix.TIOCSWINSZ, ws)
	}
	if console {
		// /dev/console is the terminal too, where it can be made (as the
		// exec'd init: failures are ignored).
		o := p.sys("/dev/console", unix.SYS_OPENAT, atFdcwd, p.cstr("/dev/console"), unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_WRONLY, 0o600)
		o.slotOut, o.anyErr, o.skipN = slotTmp, true, 2
		fromSlot(p.sys("close", unix.SYS_CLOSE, 0), 0, slotTmp)
		b.mount("/dev/console", "/proc/self/fd/"+strconv.Itoa(consoleSlaveFd), "/dev/console", "", unix.MS_BIND, "").anyErr = true
	}
	name := []byte("/dev/ptmx")
	rights := unix.UnixRights(consoleMasterFd)
	p.keep = append(p.keep, name, rights)
	iov := &unix.Iovec{Base: &name[0]}
	iov.SetLen(len(name))
	msg := &unix.Msghdr{Iov: iov, Iovlen: 1, Control: &rights[0]}
	msg.SetControllen(len(rights))
	keepStruct(p, iov)
	p.sys("process.terminal: send the pty master to the console socket", unix.SYS_SENDMSG, uintptr(c.console), keepStruct(p, msg), unix.MSG_NOSIGNAL)
	p.sys("close the console socket", unix.SYS_CLOSE, uintptr(c.console))
	for fd := uintptr(0); fd < 3; fd++ {
		p.sys("process.terminal: stdio", unix.SYS_DUP3, consoleSlaveFd, fd, 0)
	}
	return nil
}

// ctty makes stdin, a terminal, the controlling one of the session the
// caller leads.
func (b *directBuilder) ctty() {
	b.p.sys("process.terminal: set controlling terminal", unix.SYS_IOCTL, 0, unix.TIOCSCTTY, 0)
}

// trampolineFds puts the init pipe and the exec fifo where the trampoline
// finds them, open across its execve (not close-on-exec), and its memfd at
// trampFd.
func (b *directBuilder) trampolineFds(c *directConfig) error {
	tf := c.trampoline.file.Fd()
	if c.syncFd >= trampFd || c.fifoFd >= trampFd || tf >= trampFd {
		return fmt.Errorf("direct child: fds %d, %d, %d collide with the trampoline's", c.syncFd, c.fifoFd, tf)
	}
	p := b.p
	p.trampoline = c.trampoline.steps
	p.sys("init pipe for the trampoline", unix.SYS_DUP3, uintptr(c.syncFd), trampSyncFd, 0)
	if c.fifoFd >= 0 {
		p.sys("exec fifo for the trampoline", unix.SYS_DUP3, uintptr(c.fifoFd), trampFifoFd, 0)
	}
	p.sys("trampoline", unix.SYS_DUP3, tf, trampFd, unix.O_CLOEXEC)
	return nil
}

// cgroupMount gives the container its cgroups, as rootfs.mountCgroup: the
// kernel's own view with a cgroup namespace, else the container's
// directories bound under a tmpfs.
func (b *directBuilder) cgroupMount(what string, m specs.Mount, o mountOpts, c *directConfig) {
	ro := o.flags & unix.MS_RDONLY
	base := o.flags &^ unix.MS_RDONLY
	fl := base | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	srcs := c.cgMounts
	dest := path.Clean("/" + m.Destination)
	if len(srcs) == 1 && srcs[0].Version == 2 && srcs[0].Subdir == "" {
		if c.newCgroupNS {
			b.mount(what, "cgroup2", b.target(dest), "cgroup2", o.flags, o.dataString())
			return
		}
		t := b.target(dest)
		b.mount(what, srcs[0].HostPath, t, "", unix.MS_BIND|unix.MS_REC, "")
		if o.flags&^(unix.MS_BIND|unix.MS_REC) != 0 {
			b.dir(dest)
			b.remountFlags(what, o.flags&^(unix.MS_BIND|unix.MS_REC))
		}
		return
	}
	b.mount(what+": tmpfs", "tmpfs", b.target(dest), "tmpfs", fl, "mode=755")
	for _, s := range srcs {
		sub := path.Join(dest, s.Subdir)
		t := b.target(sub)
		if c.newCgroupNS {
			fstype, data := "cgroup", v1MountData(s.Subdir)
			if s.Version == 2 {
				fstype, data = "cgroup2", ""
			}
			b.mount(what+": "+fstype+" "+s.Subdir, fstype, t, fstype, fl|ro, data)
		} else {
			b.mount(what+": bind "+s.HostPath, s.HostPath, t, "", unix.MS_BIND, "")
			b.dir(sub)
			b.remountFlags(what+": remount "+s.Subdir, fl|ro)
		}
		for _, link := range s.Symlinks {
			b.openIn(dest, slotParent)
			fromSlot(b.p.sys(what+": symlink "+link, unix.SYS_SYMLINKAT, b.p.cstr(s.Subdir), 0, b.p.cstr(link)), 1, slotParent).okErr = unix.EEXIST
			fromSlot(b.p.sys("close", unix.SYS_CLOSE, 0), 0, slotParent)
		}
	}
	if ro != 0 {
		b.dir(dest)
		b.remountFlags(what+": read-only", unix.MS_RDONLY)
	}
}

// remountFlags applies MS_* flags to the mount open in slotTarget with
// mount_setattr, which leaves the flags it is not given as they are.
func (b *directBuilder) remountFlags(what string, flags uintptr) {
	var set uint64
	for _, f := range bindAttrs {
		if flags&f.ms != 0 {
			set |= f.attr
		}
	}
	attr := keepStruct(b.p, &unix.MountAttr{Attr_set: set})
	fromSlot(b.p.sys(what, unix.SYS_MOUNT_SETATTR, 0, b.p.cstr(""), unix.AT_EMPTY_PATH, attr, unsafe.Sizeof(unix.MountAttr{})), 0, slotTarget)
	fromSlot(b.p.sys("close", unix.SYS_CLOSE, 0), 0, slotTarget)
}

// devices populates /dev as rootfs.makeDevices: the spec's devices, the
// default ones, the standard symlinks.
func (b *directBuilder) devices(spec []specs.LinuxDevice) error {
	seen := map[string]bool{}
	all := make([]specs.LinuxDevice, 0, len(spec)+len(defaultDevices))
	for _, d := range spec {
		seen[path.Clean(d.Path)] = true
		all = append(all, d)
	}
	for _, d := range defaultDevices {
		if !seen[d.Path] {
			mode := os.FileMode(0o666)
			d.FileMode = &mode
			all = append(all, d)
		}
	}
	for i, d := range all {
		typ, ok := deviceTypes[d.Type]
		if !ok {
			return fmt.Errorf("linux.devices[%d] (%s): unknown device type %q", i, d.Path, d.Type)
		}
		pth := path.Clean("/" + d.Path)
		perm := uint32(0o666)
		if d.FileMode != nil {
			perm = uint32(d.FileMode.Perm())
		}
		what := "device " + pth
		if i == 0 || path.Dir(pth) != path.Dir(path.Clean("/"+all[i-1].Path)) {
			if i > 0 {
				fromSlot(b.p.sys("close", unix.SYS_CLOSE, 0), 0, slotTarget)
			}
			b.dir(path.Dir(pth))
		}
		name := b.p.cstr(path.Base(pth))
		fromSlot(b.p.sys(what+": unlink", unix.SYS_UNLINKAT, 0, name, 0), 0, slotTarget).okErr = unix.ENOENT
		fromSlot(b.p.sys(what+": mknod", unix.SYS_MKNODAT, 0, name, uintptr(typ|perm), uintptr(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))), 0, slotTarget)
		fromSlot(b.p.sys(what+": chmod", unix.SYS_FCHMODAT, 0, name, uintptr(perm)), 0, slotTarget)
		if d.UID != nil || d.GID != nil {
			uid, gid := -1, -1
			if d.UID != nil {
				uid = int(*d.UID)
			}
			if d.GID != nil {
				gid = int(*d.GID)
			}
			fromSlot(b.p.sys(what+": chown", unix.SYS_FCHOWNAT, 0, name, uintptr(uid), uintptr(gid), unix.AT_SYMLINK_NOFOLLOW), 0, slotTarget)
		}
	}
	if len(all) > 0 {
		fromSlot(b.p.sys("close", unix.SYS_CLOSE, 0), 0, slotTarget)
	}
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	b.dir("/dev")
	for _, l := range links {
		// An existing entry (a bind-mounted ptmx) wins.
		fromSlot(b.p.sys("symlink /dev/"+l[1], unix.SYS_SYMLINKAT, b.p.cstr(l[0]), 0, b.p.cstr(l[1])), 1, slotTarget).okErr = unix.EEXIST
	}
	fromSlot(b.p.sys("close", unix.SYS_CLOSE, 0), 0, slotTarget)
	return nil
}

// lookPath lists where args[0] may be, as the exec'd init's lookPath, and
// checks before "ready" that one is executable, so that a missing binary
// fails create rather than start.
func (b *directBuilder) lookPath(proc *specs.Process) []string {
	name := proc.Args[0]
	cands := execCandidates(proc)
	first := len(b.p.ops)
	for _, c := range cands {
		o := b.p.sys("lookup "+c, unix.SYS_FACCESSAT, atFdcwd, b.p.cstr(c), unix.X_OK)
		o.anyErr = true
	}
	b.p.sys(fmt.Sprintf("exec: %q: executable file not found in $PATH", name), unix.SYS_FACCESSAT, atFdcwd, b.p.cstr(""), unix.X_OK)
	for i := first; i < len(b.p.ops)-1; i++ {
		b.p.ops[i].skipOK = len(b.p.ops) - i - 1
	}
	return cands
}

// finalize is the point of no return, in the exec'd init's order
// (finalize.go): cwd, seccomp without no_new_privs, bounding set, ids,
// capabilities, umask, rlimits, no_new_privs, seccomp, execve.
func (b *directBuilder) finalize(c *directConfig, cands []string) error {
	p, cr, proc := b.p, c.creds, c.spec.Process
	// Close every fd the process does not keep but the init pipe (where
	// failed steps are reported) and the trampoline's fds before the
	// chdir: the child has all of the runtime's fds, and one of them as
	// cwd would reach the host (CVE-2024-21626). The pipe is a socket, the
	// fifo a fifo, the trampoline a memfd: none is a directory.
	keep := []int{c.syncFd}
	if c.trampoline != nil {
		keep = append(keep, trampFd, trampSyncFd, trampFifoFd)
	}
	slices.Sort(keep)
	lo := 3 + c.preserve
	for _, fd := range keep {
		if fd > lo {
			p.sys("close fds", unix.SYS_CLOSE_RANGE, uintptr(lo), uintptr(fd-1), 0)
		}
		lo = max(lo, fd+1)
	}
	p.sys("close fds", unix.SYS_CLOSE_RANGE, uintptr(lo), ^uintptr(0), 0)
	p.sys(fmt.Sprintf("process.cwd: chdir %q", cr.cwd), unix.SYS_CHDIR, p.cstr(cr.cwd))
	var fprog uintptr
	if f := c.filter; f != nil {
		prog := f.Program()
		p.keep = append(p.keep, unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(prog)*int(unsafe.Sizeof(prog[0]))))
		fprog = keepStruct(p, &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
	}
	loadFilter := func() {
		p.sys("linux.seccomp: load filter", unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(c.filter.Flags()), fprog)
	}
	if c.filter != nil && !cr.noNewPrivs {
		loadFilter()
	}
	if cr.hasCaps {
		last := lastCap()
		for i := uint(0); i <= last; i++ {
			if cr.bounding&(1<<i) == 0 {
				p.sys("process.capabilities.bounding: drop a capability", unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(i)).okErr = unix.EINVAL
			}
		}
	}
	p.sys("prctl(PR_SET_KEEPCAPS)", unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1)
	var groups uintptr
	if len(cr.groups) > 0 {
		g := make([]uint32, len(cr.groups))
		for i, v := range cr.groups {
			g[i] = uint32(v)
		}
		p.keep = append(p.keep, unsafe.Slice((*byte)(unsafe.Pointer(&g[0])), 4*len(g)))
		groups = uintptr(unsafe.Pointer(&g[0]))
	}
	sg := p.sys("process.user.additionalGids: setgroups", unix.SYS_SETGROUPS, uintptr(len(cr.groups)), groups)
	if len(cr.groups) == 0 {
		sg.okErr = unix.EPERM
	}
	p.sys(fmt.Sprintf("process.user.gid: setresgid(%d)", cr.gid), unix.SYS_SETRESGID, uintptr(cr.gid), uintptr(cr.gid), uintptr(cr.gid))
	p.sys(fmt.Sprintf("process.user.uid: setresuid(%d)", cr.uid), unix.SYS_SETRESUID, uintptr(cr.uid), uintptr(cr.uid), uintptr(cr.uid))
	p.sys("prctl(PR_SET_KEEPCAPS)", unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 0)
	if cr.hasCaps {
		hdr := keepStruct(p, &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3})
		data := keepStruct(p, &[2]unix.CapUserData{
			{Effective: uint32(cr.effective), Permitted: uint32(cr.permitted), Inheritable: uint32(cr.inheritabl)},
			{Effective: uint32(cr.effective >> 32), Permitted: uint32(cr.permitted >> 32), Inheritable: uint32(cr.inheritabl >> 32)},
		})
		p.sys("process.capabilities: capset", unix.SYS_CAPSET, hdr, data)
		p.sys("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL)
		for i := uint(0); i < 64; i++ {
			if cr.ambient&(1<<i) != 0 {
				// As runc, a refused ambient capability is not an error.
				o := p.sys("ambient capability", unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(i))
				o.anyErr = true
			}
		}
	}
	// Without one in the spec the process keeps the runtime's umask, as
	// with the exec'd init (the child inherits it).
	if cr.umask != nil {
		p.sys("umask", unix.SYS_UMASK, uintptr(*cr.umask))
	}
	for _, r := range cr.rlimits {
		lim := keepStruct(p, &unix.Rlimit{Cur: r.lim.Cur, Max: r.lim.Max})
		p.sys(fmt.Sprintf("process.rlimits: setrlimit %d", r.res), unix.SYS_PRLIMIT64, 0, uintptr(r.res), lim, 0)
	}
	if cr.noNewPrivs {
		p.sys("process.noNewPrivileges", unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1)
	}
	if c.filter != nil && cr.noNewPrivs {
		loadFilter()
	}
	if c.trampoline != nil {
		argv, envv, _ := execVectors(&specs.Process{Args: trampolineArgv})
		av, ev := p.vectors(argv, envv)
		p.sys("execute the trampoline", unix.SYS_EXECVEAT, trampFd, p.cstr(""), av, ev, unix.AT_EMPTY_PATH)
		return nil
	}
	argv, envv, err := execVectors(proc)
	if err != nil {
		return err
	}
	av, ev := p.vectors(argv, envv)
	for i, cand := range cands {
		o := p.sys(fmt.Sprintf("exec %q", cand), unix.SYS_EXECVE, p.cstr(cand), av, ev)
		if i < len(cands)-1 {
			o.anyErr = true
		}
	}
	return nil
}
