package process

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute/process/seccomp"
)

// Init is the container side of the start path. cmd/runsilo calls it when
// it runs as "init"; it never returns. Errors go back to the parent over
// the init pipe, which prints them, so a failed setup reads as the failing
// step with the syscall and path it failed on.
func Init() {
	// Every kernel step below (setns results, credentials, capabilities,
	// seccomp) is per thread: stay on this one until execve.
	runtime.LockOSThread()
	fd, err := strconv.Atoi(os.Getenv(envInitPipe))
	if err != nil {
		fmt.Fprintln(os.Stderr, "runsilo init: must be started by runsilo")
		os.Exit(1)
	}
	os.Unsetenv(envInitPipe)
	pipe := os.NewFile(uintptr(fd), "init pipe")
	sync := newSyncPipe(pipe)
	if err := enterNamespaces(); err != nil {
		_ = sync.send(&message{Type: msgError, Error: err.Error()})
		os.Exit(1)
	}
	trace("init started")
	m, err := sync.expect(msgConfig)
	if err != nil {
		os.Exit(1)
	}
	trace("config received")
	err = runInit(sync, m.Config)
	if m.Config.started {
		// Nobody waits on the init pipe after start: the error goes where
		// the container's own output goes.
		fmt.Fprintf(os.Stderr, "runsilo init: %v\n", err)
	} else {
		_ = sync.send(&message{Type: msgError, Error: err.Error()})
	}
	os.Exit(1)
}

// runInit sets the container up and executes its process; it only returns
// on failure.
func runInit(sync *syncPipe, cfg *initConfig) error {
	if err := closeExtraFds(3 + cfg.PreserveFds); err != nil {
		return err
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	proc := cfg.Process
	if cfg.Exec {
		if err := joinCgroupTasks(nil, cfg.CgroupTaskFds); err != nil {
			return err
		}
	} else {
		if cfg.NewUserNS {
			// Act as root of the new user namespace for the setup steps.
			if err := setIDs(0, 0); err != nil {
				return err
			}
		}
		r := &rootfs{cfg: cfg, joinCgroup: func() error { return joinedCgroup(sync, cfg) }}
		if err := r.prepare(); err != nil {
			return err
		}
		if err := r.joinCgroup(); err != nil {
			return err
		}
		trace("mounts done")
		/* sync 2 */
		if err := sync.send(&message{Type: msgHooks}); err != nil {
			return err
		}
		if _, err := sync.expect(msgHooksDone); err != nil {
			return err
		}
		if h := cfg.Spec.Hooks; h != nil {
			if err := runHooks("createContainer", h.CreateContainer, cfg.State); err != nil {
				return err
			}
		}
		if err := r.enter(); err != nil {
			return err
		}
		// Hostname and sysctls before finish: it makes /proc/sys read-only.
		if err := setHostname(cfg); err != nil {
			return err
		}
		if err := writeSysctls(cfg.Spec.Linux.Sysctl); err != nil {
			return err
		}
		if err := r.finish(); err != nil {
			return err
		}
		trace("rootfs done")
	}
	if proc.Terminal {
		if err := setupConsole(cfg.ConsoleFd, proc.ConsoleSize, !cfg.Exec); err != nil {
			return err
		}
	}
	if proc.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*proc.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("process.oomScoreAdj: write /proc/self/oom_score_adj: %w", err)
		}
	}
	if !cfg.NoNewKeyring && !cfg.Exec {
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + cfg.ID); err != nil && err != unix.ENOSYS {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	argv0, err := lookPath(proc)
	if err != nil {
		return err
	}
	var filter *seccomp.Filter
	if len(cfg.Seccomp) > 0 {
		if filter, err = seccomp.UnmarshalFilter(cfg.Seccomp); err != nil {
			return fmt.Errorf("linux.seccomp: %w", err)
		}
	}
	creds, err := newCredentials(proc)
	if err != nil {
		return err
	}
	if filter != nil && filter.NeedsNotify() {
		// The listener fd must reach a process outside the container, and
		// only the parent is there to pass it on: load the filter now,
		// while the parent listens (the rest of init then runs under it).
		if err := loadNotifyFilter(sync, filter); err != nil {
			return err
		}
		filter = nil
	}
	/* sync 3: ready; wait for start */
	if err := sync.send(&message{Type: msgReady}); err != nil {
		return err
	}
	if cfg.FifoFd >= 0 {
		var b [1]byte
		if n, err := unix.Read(cfg.FifoFd, b[:]); n != 1 {
			return fmt.Errorf("wait for start on exec fifo: %v", err)
		}
		unix.Close(cfg.FifoFd)
	} else if _, err := sync.expect(msgStart); err != nil {
		return err
	}
	trace("start")
	if !cfg.Exec && cfg.Spec.Hooks != nil {
		if err := runHooks("startContainer", cfg.Spec.Hooks.StartContainer, cfg.State); err != nil {
			return err
		}
	}
	// With a fifo, the parent that could hear an error has gone.
	cfg.started = cfg.FifoFd >= 0
	return finalize(proc, creds, filter, argv0, cfg.Spec.Linux.Personality)
}

// joinedCgroup waits until the parent has put us in our cgroups (sync 1),
// then makes the cgroup namespace, whose root is the cgroup we are in at
// that moment. Only the first call does anything.
func joinedCgroup(sync *syncPipe, cfg *initConfig) error {
	if cfg.cgroupJoined {
		return nil
	}
	if _, err := sync.expect(msgCgroup); err != nil {
		return err
	}
	cfg.cgroupJoined = true
	if err := joinCgroupTasks(cfg.CgroupTasks, nil); err != nil {
		return err
	}
	if cfg.NewCgroupNS {
		// Per thread, like everything here: this thread execs the process.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("linux.namespaces: unshare cgroup namespace: %w", err)
		}
	}
	return nil
}

// joinCgroupTasks moves the calling thread, the one that executes the
// container's process, into the container's cgroup v1 hierarchies: "0" in
// a "tasks" file moves the writer alone, without the kernel's global
// threadgroup lock that a pid written by the parent would take (see
// cgroups.Manager). The runtime's other threads stay behind and end at
// execve.
func joinCgroupTasks(paths []string, fds []int) error {
	for _, p := range paths {
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("join cgroup: open %s: %w", p, err)
		}
		fds = append(fds, fd)
	}
	for _, fd := range fds {
		_, err := unix.Write(fd, []byte("0"))
		if err != nil {
			name, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
			return fmt.Errorf("join cgroup: write 0 to %s: %w", name, err)
		}
		unix.Close(fd)
	}
	return nil
}

// loadNotifyFilter loads a filter with SCMP_ACT_NOTIFY rules and hands
// the listener fd to the parent, which fetches it with pidfd_getfd.
func loadNotifyFilter(sync *syncPipe, filter *seccomp.Filter) error {
	fd, err := filter.Load()
	if err != nil {
		return fmt.Errorf("linux.seccomp: load filter: %w", err)
	}
	if err := sync.send(&message{Type: msgSeccomp, Fd: fd}); err != nil {
		return err
	}
	if _, err := sync.expect(msgSeccompOK); err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

// closeExtraFds marks every fd from first upwards close-on-exec, so that
// nothing the runtime or its caller left open reaches the container
// (CVE-2024-21626 leaked a host directory fd this way).
func closeExtraFds(first int) error {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	// Kernels before 5.11: walk the fd table.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list /proc/self/fd: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		unix.CloseOnExec(fd)
	}
	return nil
}

// setHostname applies hostname and domainname; both need a UTS namespace of
// the container's own (checked when the spec was validated).
func setHostname(cfg *initConfig) error {
	if h := cfg.Spec.Hostname; h != "" {
		if err := unix.Sethostname([]byte(h)); err != nil {
			return fmt.Errorf("hostname: sethostname %q: %w", h, err)
		}
	}
	if d := cfg.Spec.Domainname; d != "" {
		if err := unix.Setdomainname([]byte(d)); err != nil {
			return fmt.Errorf("domainname: setdomainname %q: %w", d, err)
		}
	}
	return nil
}

// writeSysctls writes linux.sysctl through the container's /proc.
func writeSysctls(sysctl map[string]string) error {
	for k, v := range sysctl {
		if strings.Contains(k, "..") || strings.Contains(k, "/") {
			return fmt.Errorf("linux.sysctl: bad key %q", k)
		}
		path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(path, []byte(v), 0); err != nil {
			return fmt.Errorf("linux.sysctl %s=%q: write %s: %w", k, v, path, err)
		}
	}
	return nil
}

// lookPath resolves args[0] inside the container the way execvp does, with
// the process's own PATH, so that a missing binary fails create rather than
// start.
func lookPath(proc *specs.Process) (string, error) {
	name := proc.Args[0]
	if strings.Contains(name, "/") {
		if err := checkExecutable(name); err != nil {
			return "", fmt.Errorf("exec %q: %w", name, err)
		}
		return name, nil
	}
	for _, full := range execCandidates(proc) {
		if checkExecutable(full) == nil {
			return full, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

// execCandidates lists where execvp would look for args[0]: itself when
// it holds a "/", else each directory of the process's PATH.
func execCandidates(proc *specs.Process) []string {
	name := proc.Args[0]
	if strings.Contains(name, "/") {
		return []string{name}
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range proc.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	var out []string
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		out = append(out, dir+"/"+name)
	}
	return out
}

func checkExecutable(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.EISDIR
	}
	if st.Mode&0o111 == 0 {
		return unix.EACCES
	}
	return nil
}

// checkCwd makes sure the working directory is inside the container's root:
// getcwd fails (or returns a path not starting with "/") when the cwd is
// reachable only from outside, e.g. through a leaked fd.
func checkCwd() error {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Getcwd(buf)
	if err != nil {
		return fmt.Errorf("process.cwd: getcwd: %w", err)
	}
	if n == 0 || !bytes.HasPrefix(buf, []byte("/")) {
		return fmt.Errorf("process.cwd: current directory is outside the container root")
	}
	return nil
}
