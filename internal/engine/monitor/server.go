package monitor

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/engine/logs"
	"github.com/silo-containers/silo/internal/errdefs"
)

// monitor is the state of one serving monitor process.
type monitor struct {
	cfg  *Config
	log  *logs.Writer
	hub  *hub
	lsn  *os.File
	self int // our pid

	// stdin is the container's stdin (pipe write end or the pty master),
	// nil when the container has none or it was closed.
	stdinMu sync.Mutex
	stdin   *os.File
	master  *os.File // pty master (terminal containers)

	// reapMu serialises reaping with runtime commands: a wait4(-1) must
	// not take the status of a runtime process we are waiting for.
	reapMu sync.Mutex

	mu    sync.Mutex // guards state
	state State

	oomFile string
	oomBase int64

	// capture holds the LogMonitor sources (capture.go), unused unless
	// the capture log options are given.
	capture captures

	copiers sync.WaitGroup
	// pipes are the read ends of stdout/stderr (or the master), closed
	// when draining takes too long after the exit.
	pipes []*os.File
	// nsInit says the container's init is pid 1 of a pid namespace of
	// its own: when it exits, the kernel kills every other process of
	// the container (see finish).
	nsInit bool
	// exited is closed once the exit is reported: status recorded,
	// output flushed into the log, the log closed. done is closed once,
	// in addition, the runtime has deleted the container.
	exited  chan struct{}
	done    chan struct{}
	release chan struct{}
	relOnce sync.Once
}

// Serve runs the container described by cfg and monitors it until it has
// exited and the grace period has passed (or a release call came). It
// must run in a process of its own: it becomes a child subreaper and
// reaps every child. ready, if not nil, receives "ok\n" once the container
// runs (or the error that prevented it) and is closed. gate, if not nil,
// is read once the monitor is set up: the container runs only after the
// caller wrote gateOpen or gateOpenHold (Pending.Start), and a closed gate
// makes the monitor undo its setup and quit (Pending.Abort).
func Serve(cfg *Config, ready, gate *os.File) error {
	m := &monitor{cfg: cfg, self: os.Getpid(), hub: &hub{tty: cfg.Terminal, hold: cfg.HoldOutput},
		exited: make(chan struct{}), done: make(chan struct{}), release: make(chan struct{})}
	sigchld := make(chan os.Signal, 8)
	// No signal is ignored: ignored dispositions survive exec, and the
	// container would inherit them. In its own session, without a
	// terminal, the monitor gets no SIGHUP or SIGINT anyway.
	signal.Notify(sigchld, unix.SIGCHLD)
	err := m.setup(gate)
	if err != nil {
		m.cleanupFailed() // before the caller hears of the failure
	}
	if ready != nil {
		msg := "ok\n"
		if err != nil {
			msg = "error: " + err.Error() + "\n"
		}
		_, _ = ready.WriteString(msg)
		ready.Close()
	}
	if err != nil {
		return err
	}
	go m.acceptLoop()
	m.reap(sigchld)
	m.finish()
	select {
	case <-time.After(cfg.Grace):
	case <-m.release:
	}
	m.lsn.Close()
	_ = os.Remove(filepath.Join(cfg.Dir, SocketName))
	return nil
}

func (m *monitor) setup(gate *os.File) error {
	cfg := m.cfg
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return errors.New("monitor " + cfg.ID + ": become subreaper: " + err.Error())
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return err
	}
	rt, err := lookPath(cfg.Runtime)
	if err != nil {
		return err
	}
	cfg.Runtime = rt
	capt, driverOpts, err := logs.SplitCapture(cfg.LogOpts)
	if err != nil {
		return err
	}
	lcfg, err := logs.ParseDriverConfig(cfg.LogDriver, driverOpts)
	if err != nil {
		return err
	}
	if m.log, err = logs.Open(cfg.LogDir, lcfg); err != nil {
		return err
	}
	m.log.Compress = m.gzip // gzip.go
	if m.lsn, err = listen(filepath.Join(cfg.Dir, SocketName)); err != nil {
		return errors.New("monitor " + cfg.ID + ": " + err.Error())
	}
	_ = os.Remove(filepath.Join(cfg.Dir, ExitName))
	if err := m.prepareCapture(capt); err != nil {
		return err
	}
	if gate != nil {
		b := make([]byte, 1)
		n, _ := gate.Read(b)
		gate.Close()
		switch {
		case n == 1 && b[0] == gateOpenHold:
			m.hub.hold = true // nothing was copied yet
		case n != 1 || b[0] != gateOpen:
			return errors.New("monitor " + cfg.ID + ": start cancelled")
		}
	}
	if err := m.startContainer(); err != nil {
		return err
	}
	if err := m.startCapture(); err != nil {
		m.deleteContainer()
		return err
	}
	return m.writeState()
}

// cleanupFailed undoes setup after an error.
func (m *monitor) cleanupFailed() {
	m.stopCapture()
	if m.lsn != nil {
		m.lsn.Close()
		_ = os.Remove(filepath.Join(m.cfg.Dir, SocketName))
	}
	if m.log != nil {
		_ = m.log.Close()
	}
}

// startContainer runs `runtime create` with the container's stdio and
// `runtime start`. Once create has exited, init is reparented to us (the
// subreaper), so we reap it and learn its status.
func (m *monitor) startContainer() error {
	cfg := m.cfg
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	stdio := [3]*os.File{devnull, devnull, devnull}
	var theirs []*os.File // child ends, closed once create has exited
	defer func() {
		for _, f := range theirs {
			f.Close()
		}
	}()
	if cfg.Stdin && !cfg.Terminal {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		stdio[0], m.stdin, theirs = r, w, append(theirs, r)
	}
	// One runtime process creates and starts the container ("run -d"):
	// create and start as two would cost a second runtime start-up.
	args := []string{"run", "--detach", "--bundle", cfg.Bundle, "--pid-file", filepath.Join(cfg.Dir, pidName)}
	var masterCh chan *os.File
	if cfg.Terminal {
		cl, err := listen(filepath.Join(cfg.Dir, consoleName))
		if err != nil {
			return err
		}
		defer func() {
			cl.Close()
			_ = os.Remove(filepath.Join(cfg.Dir, consoleName))
		}()
		masterCh = make(chan *os.File, 1)
		go func() {
			conn, err := accept(cl)
			if err != nil {
				masterCh <- nil
				return
			}
			defer conn.Close()
			f, _ := recvFd(conn)
			masterCh <- f
		}()
		// Relative: the runtime runs in cfg.Dir, and a long absolute path
		// would not fit in a socket address.
		args = append(args, "--console-socket", consoleName)
	} else {
		for i, stream := range []byte{frameStdout, frameStderr} {
			r, w, err := os.Pipe()
			if err != nil {
				return err
			}
			stdio[1+i], theirs = w, append(theirs, w)
			m.pipes = append(m.pipes, r)
			name := logs.Stdout
			if stream == frameStderr {
				name = logs.Stderr
			}
			m.startCopier(name, &tee{r: r, h: m.hub, stream: stream})
		}
	}
	if err := m.runtime(stdio, append(args, cfg.ID)...); err != nil {
		return err
	}
	for _, f := range theirs {
		f.Close()
	}
	theirs = nil
	if cfg.Terminal {
		var master *os.File
		select {
		case master = <-masterCh:
		case <-time.After(10 * time.Second):
		}
		if master == nil {
			m.deleteContainer()
			return errors.New("monitor " + cfg.ID + ": no pty master from the runtime")
		}
		m.master, m.pipes = master, append(m.pipes, master)
		if cfg.Stdin {
			m.stdin = master
		}
		m.startCopier(logs.Stdout, &tee{r: master, h: m.hub, stream: frameStdout})
	}
	data, err := os.ReadFile(filepath.Join(cfg.Dir, pidName))
	pid, perr := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || perr != nil || pid <= 0 {
		m.deleteContainer()
		return errors.New("monitor " + cfg.ID + ": no init pid from the runtime")
	}
	// The cgroup is the container's own and new: its OOM count starts at 0
	// whenever we read it.
	m.oomFile = memoryEventsFile(pid)
	m.oomBase = oomKills(m.oomFile)
	m.nsInit = isNamespaceInit(pid)
	m.mu.Lock()
	m.state = State{ID: cfg.ID, Pid: pid, Status: StatusRunning, Started: time.Now().UTC(), MonitorPid: m.self}
	m.mu.Unlock()
	return nil
}

func (m *monitor) startCopier(stream string, r io.Reader) {
	m.copiers.Add(1)
	go func() {
		defer m.copiers.Done()
		_ = m.log.Copy(stream, r) // ends with EOF, EIO (pty) or a close
	}()
}

// runtime runs the OCI runtime with args and waits for it.
func (m *monitor) runtime(stdio [3]*os.File, args ...string) error {
	logPath := filepath.Join(m.cfg.Dir, RuntimeLogName)
	argv := append([]string{m.cfg.Runtime, "--root", m.cfg.RuntimeRoot, "--log", logPath, "--log-format", "json"}, args...)
	m.reapMu.Lock()
	defer m.reapMu.Unlock()
	// syscall.ForkExec, not os.StartProcess: the latter's first call in a
	// process forks a throw-away child to see whether pidfds work, and a
	// monitor makes its first call on the container's start path.
	pid, err := syscall.ForkExec(m.cfg.Runtime, argv, &syscall.ProcAttr{
		Dir:   m.cfg.Dir,
		Env:   os.Environ(),
		Files: []uintptr{stdio[0].Fd(), stdio[1].Fd(), stdio[2].Fd()},
	})
	if err != nil {
		return errors.New("monitor " + m.cfg.ID + ": run runtime " + args[0] + ": " + err.Error())
	}
	ws, err := waitChild(pid)
	if err != nil {
		return errors.New("monitor " + m.cfg.ID + ": runtime " + args[0] + ": " + err.Error())
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return errors.New("monitor " + m.cfg.ID + ": runtime " + args[0] + ": " + lastRuntimeError(logPath, "exit status "+strconv.Itoa(ws.ExitStatus())))
	}
	return nil
}

// waitChild waits for the child pid by polling wait4 with WNOHANG. A
// blocking wait would park an OS thread, and the Go runtime keeps every
// thread it ever made: in a process that stays resident per container
// (and in silod, which waits for one monitor per container), the polling
// is cheaper.
//
// Preconditions in the monitor: reapMu held (the reaper must not take
// this status).
func waitChild(pid int) (unix.WaitStatus, error) {
	// A pidfd becomes readable when the process exits: the Go poller then
	// wakes us, with no sleeping loop and no OS thread parked in wait4.
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return pollChild(pid)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return pollChild(pid)
	}
	var ws unix.WaitStatus
	var werr error
	err = rc.Read(func(uintptr) bool {
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			return false
		case err != nil:
			werr = &os.SyscallError{Syscall: "wait4", Err: err}
			return true
		}
		return got == pid
	})
	if werr != nil {
		return ws, werr
	}
	if err != nil {
		return pollChild(pid)
	}
	return ws, nil
}

// pollChild is waitChild for kernels without pidfd_open (before 5.3).
func pollChild(pid int) (unix.WaitStatus, error) {
	delay := 50 * time.Microsecond
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return ws, &os.SyscallError{Syscall: "wait4", Err: err}
		case got == pid:
			return ws, nil
		}
		time.Sleep(delay)
		delay = min(2*delay, 10*time.Millisecond)
	}
}

// lastRuntimeError returns the message of the runtime's last log line.
func lastRuntimeError(path, fallback string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fallback
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if f, err := parseObject([]byte(lines[len(lines)-1])); err == nil && f["msg"] != "" {
		return f["msg"]
	}
	return fallback
}

// deleteContainer removes the container through the runtime: remaining
// processes killed, cgroups and runtime state removed.
func (m *monitor) deleteContainer() {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer devnull.Close()
	_ = m.runtime([3]*os.File{devnull, devnull, devnull}, "delete", "--force", m.cfg.ID)
}

// reap waits for SIGCHLD and reaps every child until init is reaped.
func (m *monitor) reap(sigchld chan os.Signal) {
	for {
		if m.reapAll() {
			return
		}
		<-sigchld
	}
}

// reapAll collects every exited child; it reports whether init was one.
func (m *monitor) reapAll() bool {
	m.reapMu.Lock()
	defer m.reapMu.Unlock()
	for {
		var ws unix.WaitStatus
		m.mu.Lock()
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid > 0 && pid == m.state.Pid {
			m.state.Status = StatusExited
			m.state.Finished = time.Now().UTC()
			switch {
			case ws.Exited():
				m.state.ExitCode = ws.ExitStatus()
			case ws.Signaled():
				m.state.Signal = int(ws.Signal())
				m.state.ExitCode = 128 + m.state.Signal
			}
			m.mu.Unlock()
			return true
		}
		m.mu.Unlock()
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if pid <= 0 {
			return false
		}
	}
}

// drainTimeout bounds how long output is read after init's exit before
// the container is deleted (a process that escaped init may hold the
// pipes), and again after the delete.
const drainTimeout = 2 * time.Second

// finish handles init's exit: exit status on disk, output drained into
// the log, the exit reported, the container deleted.
//
// When init was pid 1 of its own pid namespace and the output drained,
// the exit is reported before the runtime deletes the container: the
// kernel killed every other process of the container with init, so no
// process can write to the log or hold the sandbox, and the delete
// (cgroups, runtime state: a runtime start-up and some rmdirs) runs while
// the engine already handles the exit. Otherwise processes that outlived
// init (no pid namespace of its own) may hold the pipes and the sandbox:
// the delete kills them first and the exit is reported after it.
func (m *monitor) finish() {
	m.mu.Lock()
	if n := oomKills(m.oomFile); n > m.oomBase {
		m.state.OOMKilled = true
	}
	st := m.state
	m.mu.Unlock()
	_ = writeExit(m.cfg.Dir, &st)
	drained := make(chan struct{})
	go func() {
		m.copiers.Wait()
		close(drained)
	}()
	early := false
	select {
	case <-drained:
		early = m.nsInit
	case <-time.After(drainTimeout):
	}
	m.stopCapture() // before the delete: it must not pin the container's root
	if early {
		m.closeOutput()
		// Let the waiters send their replies first: the runtime's start
		// (a vfork) holds this process's only P until the exec.
		runtime.Gosched()
		m.deleteContainer()
		close(m.done)
		return
	}
	m.deleteContainer()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		for _, f := range m.pipes {
			f.Close()
		}
		<-drained
	}
	m.closeOutput()
	close(m.done)
}

// closeOutput closes the container's stdio and the log once the output
// is drained, and reports the exit (exited).
func (m *monitor) closeOutput() {
	for _, f := range m.pipes {
		f.Close()
	}
	m.closeStdin()
	_ = m.log.Close()
	m.hub.close()
	_ = os.Remove(filepath.Join(m.cfg.Dir, pidName))
	close(m.exited)
}

func (m *monitor) closeStdin() {
	m.stdinMu.Lock()
	defer m.stdinMu.Unlock()
	if m.stdin != nil && m.stdin != m.master {
		m.stdin.Close()
	}
	m.stdin = nil
}

func (m *monitor) writeState() error {
	m.mu.Lock()
	st := m.state
	m.mu.Unlock()
	o := &object{}
	o.int("monitor_pid", int64(m.self)).int("pid", int64(st.Pid)).time("started", st.Started)
	return writeFileAtomic(filepath.Join(m.cfg.Dir, StateName), o.line())
}

// writeExit records the exit status atomically (temp file, rename): it
// must survive the monitor, and a crash of it or of silod.
func writeExit(dir string, st *State) error {
	return writeFileAtomic(filepath.Join(dir, ExitName), st.encode(&object{}).line())
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	// No fsync: the monitor's files live in the exec root (/run), which
	// does not outlive a reboot any more than the container does; the
	// rename alone keeps readers from seeing a torn file.
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// memoryEventsFile finds the file with the oom_kill counter of pid's
// memory cgroup: memory.oom_control on v1, memory.events on v2.
func memoryEventsFile(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return ""
	}
	var candidates []string
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				candidates = append(candidates, "/sys/fs/cgroup/memory"+parts[2]+"/memory.oom_control")
			}
		}
		if parts[0] == "0" && parts[1] == "" {
			candidates = append(candidates, "/sys/fs/cgroup"+parts[2]+"/memory.events", "/sys/fs/cgroup/unified"+parts[2]+"/memory.events")
		}
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return ""
}

// isNamespaceInit says whether pid is pid 1 of its pid namespace: the
// last NSpid entry in its status file (the pid in the innermost
// namespace) is 1. A container that shares the host's or another
// container's pid namespace has an init that is not.
func isNamespaceInit(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(v)
			return len(f) > 1 && f[len(f)-1] == "1"
		}
	}
	return false
}

// oomKills reads the oom_kill counter (0 when unknown).
func oomKills(file string) int64 {
	if file == "" {
		return 0
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// lookPath finds a runtime given by name in PATH.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return filepath.Abs(name)
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.Join(errors.New("runtime "+strconv.Quote(name)+" not found in PATH"), errdefs.ErrNotFound)
}

// acceptLoop serves control connections until the listener closes.
func (m *monitor) acceptLoop() {
	for {
		conn, err := accept(m.lsn)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go m.serveConn(conn)
	}
}

// maxRequest bounds one request line.
const maxRequest = 4096

func (m *monitor) serveConn(conn *os.File) {
	defer conn.Close()
	br := bufio.NewReaderSize(conn, maxRequest)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				_, _ = conn.Write(errorReply(errors.Join(errors.New("request too long"), errdefs.ErrInvalidArgument)))
			}
			return
		}
		req, err := parseObject(line)
		if err != nil {
			_, _ = conn.Write(errorReply(errors.Join(errors.New("bad request"), errdefs.ErrInvalidArgument)))
			return
		}
		var reply []byte
		switch op := req["op"]; op {
		case "state":
			reply = m.stateReply()
		case "wait":
			// "deleted": also wait until the runtime deleted the
			// container (see finish).
			ch := m.exited
			if req.bool("deleted") {
				ch = m.done
			}
			if !m.waitFor(ch, br) {
				return
			}
			if req.bool("release") {
				// The reply first: once released, the monitor may
				// quit at once, and the waiter would learn of the
				// end only from its exit.
				_, _ = conn.Write(m.stateReply())
				_ = m.releaseNow() // the exit is reported: cannot fail
				continue
			}
			reply = m.stateReply()
		case "signal":
			reply = okOrError(m.signal(req.int("signal"), req.bool("all")))
		case "resize":
			reply = okOrError(m.resize(req.int("rows"), req.int("cols")))
		case "close_stdin":
			m.closeStdin()
			reply = okOrError(nil)
		case "release":
			reply = okOrError(m.releaseNow())
		case "attach":
			m.attach(conn, br, req)
			return
		default:
			reply = errorReply(errors.Join(errors.New("unknown op "+strconv.Quote(op)), errdefs.ErrInvalidArgument))
		}
		if _, err := conn.Write(reply); err != nil {
			return
		}
	}
}

// waitFor blocks until ch is closed; false if the client left.
func (m *monitor) waitFor(ch <-chan struct{}, br *bufio.Reader) bool {
	gone := make(chan struct{})
	go func() {
		_, _ = br.ReadByte() // a waiting client sends nothing: EOF means it left
		close(gone)
	}()
	select {
	case <-ch:
		return true
	case <-gone:
		return false
	}
}

func (m *monitor) stateReply() []byte {
	m.mu.Lock()
	st := m.state
	m.mu.Unlock()
	return st.encode((&object{}).bool("ok", true)).line()
}

func okOrError(err error) []byte {
	if err != nil {
		return errorReply(err)
	}
	return (&object{}).bool("ok", true).line()
}

// errorReply carries the message and the error class, so the client can
// map it back to errdefs.
func errorReply(err error) []byte {
	class := ""
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		class = "not_found"
	case errors.Is(err, errdefs.ErrConflict):
		class = "conflict"
	case errors.Is(err, errdefs.ErrInvalidArgument):
		class = "invalid_argument"
	}
	msg := strings.ReplaceAll(err.Error(), "\n", ": ")
	return (&object{}).bool("ok", false).str("error", msg).str("class", class).line()
}

func (m *monitor) signal(sig int, all bool) error {
	if sig <= 0 || sig > 64 {
		return errors.Join(errors.New("signal "+strconv.Itoa(sig)+" out of range"), errdefs.ErrInvalidArgument)
	}
	if all {
		m.mu.Lock()
		running := m.state.Status == StatusRunning
		m.mu.Unlock()
		if !running {
			return errors.Join(errors.New("container "+m.cfg.ID+" is not running"), errdefs.ErrConflict)
		}
		devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer devnull.Close()
		return m.runtime([3]*os.File{devnull, devnull, devnull}, "kill", "--all", m.cfg.ID, strconv.Itoa(sig))
	}
	// Under mu the pid is ours and unreaped, so it cannot name another
	// process.
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state.Status != StatusRunning {
		return errors.Join(errors.New("container "+m.cfg.ID+" is not running"), errdefs.ErrConflict)
	}
	if err := unix.Kill(m.state.Pid, syscall.Signal(sig)); err != nil {
		return errors.New("signal " + strconv.Itoa(sig) + " to container " + m.cfg.ID + ": " + err.Error())
	}
	return nil
}

func (m *monitor) resize(rows, cols int) error {
	if m.master == nil {
		return errors.Join(errors.New("container "+m.cfg.ID+" has no terminal"), errdefs.ErrConflict)
	}
	if rows <= 0 || cols <= 0 || rows > 0xffff || cols > 0xffff {
		return errors.Join(errors.New("resize: bad size"), errdefs.ErrInvalidArgument)
	}
	select {
	case <-m.exited:
		return errors.Join(errors.New("container "+m.cfg.ID+" is not running"), errdefs.ErrConflict)
	default:
	}
	ws := &unix.Winsize{Row: uint16(rows), Col: uint16(cols)}
	if err := unix.IoctlSetWinsize(int(m.master.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		return errors.New("resize terminal of " + m.cfg.ID + ": " + err.Error())
	}
	return nil
}

// releaseNow lets the monitor quit as soon as the container is deleted.
func (m *monitor) releaseNow() error {
	select {
	case <-m.exited:
		m.relOnce.Do(func() { close(m.release) })
		return nil
	default:
		return errors.Join(errors.New("container "+m.cfg.ID+" is still running"), errdefs.ErrConflict)
	}
}

// attach streams output to conn and copies conn's input to stdin.
func (m *monitor) attach(conn *os.File, br *bufio.Reader, req fields) {
	wantIn, wantOut, wantErr := req.bool("stdin"), req.bool("stdout"), req.bool("stderr")
	ok := (&object{}).bool("ok", true).bool("tty", m.cfg.Terminal).line()
	var s *sub
	if wantOut || wantErr {
		s = m.hub.add(wantOut, wantErr)
	}
	if _, err := conn.Write(ok); err != nil {
		if s != nil {
			m.hub.remove(s)
		}
		return
	}
	inDone := make(chan struct{})
	if wantIn {
		go func() {
			defer close(inDone)
			m.copyStdin(br, req.bool("stdin_once"))
		}()
	} else {
		close(inDone)
	}
	if s == nil {
		select {
		case <-inDone:
		case <-m.exited:
		}
		return
	}
	for frame := range s.ch {
		if _, err := conn.Write(frame); err != nil {
			m.hub.remove(s)
			for range s.ch {
			}
			return
		}
	}
	_ = closeWrite(conn) // the output has ended: the client reads EOF
}

// copyStdin forwards a client's input to the container's stdin.
func (m *monitor) copyStdin(r io.Reader, once bool) {
	m.stdinMu.Lock()
	in := m.stdin
	m.stdinMu.Unlock()
	if in == nil {
		_, _ = io.Copy(io.Discard, r)
		return
	}
	_, _ = io.Copy(in, r)
	if once && in != m.master {
		m.closeStdin()
	}
}
