package process

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute"
	"github.com/silo-containers/silo/internal/compute/process/seccomp"
)

// spawnDirect is spawnInit for a container the direct init can set up
// (directSupported): the same steps and sync points, with the set-up
// compiled here and made by a child that is not a second exec.
func (c *Container) spawnDirect(ctx context.Context, doc *compute.Document, plan *nsPlan) error {
	spec := doc.Spec
	// The namespaces are made first, on a thread of their own, while the
	// rest is prepared here; the child is then a plain clone of that thread
	// (a new network namespace alone costs ~0.7 ms).
	nst := startNamespaceThread(plan)
	defer nst.abort()
	// The child carries the filter, so it is needed now (a cache hit,
	// except the first time a profile is seen).
	var end directEnd
	var err error
	if end.filter, end.creds, err = c.b.directIdentity(spec.Linux.Seccomp, spec.Process); err != nil {
		return err
	}
	if !selfExeSafe() {
		// create has the fifo (openFifo).
		if end.tramp = makeTrampoline(spec.Process, end.filter, false, !doc.StartOnCreate); end.tramp == nil {
			nst.abort()
			return c.spawnInit(ctx, doc, plan)
		}
		defer end.tramp.file.Close()
	}
	console, closeConsole, err := consoleOf(spec.Process.Terminal, doc.Console, doc.ConsoleSocket)
	if err != nil {
		return err
	}
	defer closeConsole()
	end.console = console
	sp, err := c.prepareSpawn(doc, plan)
	if err != nil {
		return err
	}
	defer sp.close()
	cg := sp.cg
	prog, pipe, childEnd, err := c.compileDirectInit(doc, plan, sp, &end)
	if err != nil {
		<-sp.cgDone
		return err
	}
	defer pipe.Close()
	// Nobody without CAP_SYS_PTRACE may open /proc/<pid>/exe of the child
	// while it is this binary.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		<-sp.cgDone
		return fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err)
	}
	trace("fork init (direct)")
	pid, errno, err := nst.fork(prog, sp.join.cloneArgs(), int(childEnd.Fd()))
	childEnd.Close()
	trace("init forked")
	cgErr := <-sp.cgDone
	if err != nil {
		return fmt.Errorf("start container init: %w", err)
	}
	if errno != 0 {
		return fmt.Errorf("start container init: clone3: %w", errno)
	}
	ch := &child{pid: pid, pipe: pipe, inCgroup: sp.join.dir != nil}
	c.child = ch
	c.st.Pid = pid
	link := &directLink{id: c.st.ID, ch: ch, prog: prog, drop: func() { c.child = nil }}
	// A child sharing our memory reads prog until it executes the
	// process: after create, that is after we are gone.
	defer runtime.KeepAlive(prog)
	if !doc.StartOnCreate {
		directKeep = append(directKeep, prog)
	}
	if cgErr != nil {
		return link.fail(fmt.Errorf("cgroups of %q: %w", c.st.ID, cgErr))
	}
	/* sync 1 */
	if err := link.expect(markCgroup); err != nil {
		return err
	}
	if c.st.PidStart, err = pidStartTime(pid); err != nil {
		return fmt.Errorf("container %q init (pid %d) died during setup", c.st.ID, pid)
	}
	if err := link.reply(); err != nil {
		return err
	}
	starting, err := c.recordInit(doc, cg)
	if err != nil {
		return err
	}
	/* sync 2 */
	if err := link.expect(markHooks); err != nil {
		return err
	}
	if err := c.runCreateHooks(spec); err != nil {
		return err
	}
	if err := link.reply(); err != nil {
		return err
	}
	/* sync 3 */
	if err := link.expect(markReady); err != nil {
		return err
	}
	trace("init ready")
	if !doc.StartOnCreate {
		return nil
	}
	if err := link.reply(); err != nil {
		return err
	}
	if err := link.waitExec(); err != nil {
		return err
	}
	return c.markStarted(starting)
}

// directEnd is what the direct init ends as: its process's seccomp filter
// and credentials, the trampoline it executes first and the console socket
// its terminal goes to, if any.
type directEnd struct {
	filter  *seccomp.Filter
	creds   *credentials
	tramp   *trampoline
	console *os.File // the console socket, for a terminal
}

// compileDirectInit compiles the direct init's steps and makes its pipe.
func (c *Container) compileDirectInit(doc *compute.Document, plan *nsPlan, sp *spawnPrep, end *directEnd) (*directProg, *os.File, *os.File, error) {
	spec := doc.Spec
	pipe, childEnd, err := newInitPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := &directConfig{
		spec: spec, id: c.st.ID, rootfs: c.st.Rootfs, bundle: doc.Bundle, cgMounts: sp.cg.MountSources(), tasks: sp.cg.TaskFiles(),
		newCgroupNS: (plan.cloneFlags|plan.unshare)&unix.CLONE_NEWCGROUP != 0, creds: end.creds, filter: end.filter,
		noNewKeyring: doc.NoNewKeyring, syncFd: int(childEnd.Fd()), fifoFd: -1, console: consoleFd(end.console), preserve: doc.PreserveFDs,
		stdio: stdioFds(doc.Stdin, doc.Stdout, doc.Stderr), trampoline: end.tramp,
	}
	if sp.fifo != nil {
		cfg.fifoFd = int(sp.fifo.Fd())
	}
	prog, err := compileDirect(cfg)
	if err != nil {
		pipe.Close()
		childEnd.Close()
		return nil, nil, nil, err
	}
	return prog, pipe, childEnd, nil
}

// startDirect starts a direct child under the fork lock (no fd opened
// meanwhile without close-on-exec leaks into it).
func startDirect(p *directProg, args *cloneArgs, errFd int) (int, syscall.Errno) {
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	return directStart(p, args, errFd)
}

// namespaceThread is a locked OS thread in the container's namespaces:
// those joined by path, then new ones unshared (a new pid namespace is
// for its children, the direct init). It is never handed back to the
// scheduler: it exits with its goroutine.
type namespaceThread struct {
	ready chan error
	work  chan func()
}

func startNamespaceThread(plan *nsPlan) *namespaceThread {
	t := &namespaceThread{ready: make(chan error, 1), work: make(chan func())}
	go func() {
		runtime.LockOSThread() // no Unlock: the tainted thread dies with us
		err := joinNamespaces(plan.threadJoins)
		if flags := plan.cloneFlags &^ unix.CLONE_NEWCGROUP; err == nil && flags != 0 {
			if flags&unix.CLONE_NEWNS != 0 {
				flags |= unix.CLONE_FS // a mount namespace of the thread's own
			}
			if err = unix.Unshare(int(flags)); err != nil {
				err = fmt.Errorf("linux.namespaces: unshare %#x: %w", flags, err)
			}
		}
		t.ready <- err
		if err == nil {
			if fn := <-t.work; fn != nil {
				fn()
			}
		}
	}()
	return t
}

// fork clones the direct init from the thread.
func (t *namespaceThread) fork(p *directProg, args *cloneArgs, errFd int) (int, syscall.Errno, error) {
	if err := <-t.ready; err != nil {
		t.ready = nil
		return 0, 0, err
	}
	t.ready = nil
	var pid int
	var errno syscall.Errno
	done := make(chan struct{})
	t.work <- func() {
		pid, errno = startDirect(p, args, errFd)
		close(done)
	}
	<-done
	t.work = nil
	return pid, errno, nil
}

// abort ends a thread that did not fork (once; later calls do nothing).
func (t *namespaceThread) abort() {
	if t.ready == nil || t.work == nil {
		return
	}
	if err := <-t.ready; err == nil {
		t.work <- nil
	}
	t.ready = nil
}

// directLink is the parent's side of the direct init's pipe: 8-byte
// records (a mark, or a failed step's index and errno), one-byte replies.
type directLink struct {
	id   string // the container's
	ch   *child
	prog *directProg
	// drop, when set, forgets the child once it is gone.
	drop func()
}

// gone reaps the child that reported a failure, or kills it first.
func (l *directLink) gone(kill bool) {
	if kill {
		l.ch.kill()
	} else {
		_, _ = waitPid(l.ch.pid)
	}
	if l.drop != nil {
		l.drop()
	}
}

// fail kills the child and returns err.
func (l *directLink) fail(err error) error {
	l.gone(true)
	return err
}

// abandon ends the child after err: reaped when err is a failed step's
// (the child exits after reporting it), killed otherwise.
func (l *directLink) abandon(err error) error {
	var ie *initError
	l.gone(!errors.As(err, &ie))
	return err
}

// record reads the next record; io.EOF when the child closed the pipe.
func (l *directLink) record() (uint32, error) {
	var b [8]byte
	if _, err := io.ReadFull(l.ch.pipe, b[:]); err != nil {
		return 0, err
	}
	return l.decode(b)
}

// decode reads a record: a mark, or the error of the step it names.
func (l *directLink) decode(b [8]byte) (uint32, error) {
	v, errno := binary.LittleEndian.Uint32(b[:4]), syscall.Errno(binary.LittleEndian.Uint32(b[4:]))
	what, k := l.prog.what, v
	switch {
	case v >= markCgroup:
		return v, nil
	case v >= markTrampoline:
		what, k = l.prog.trampoline, v-markTrampoline
	}
	if int(k) < len(what) {
		return 0, &initError{msg: fmt.Sprintf("%s: %v", what[k], errno)}
	}
	return 0, fmt.Errorf("init pipe: bad record %#x", v)
}

// expect waits for mark.
func (l *directLink) expect(mark uint32) error {
	v, err := l.record()
	if err == nil && v != mark {
		err = fmt.Errorf("init pipe: got %#x, want %#x", v, mark)
	}
	if err != nil {
		var ie *initError
		if !errors.As(err, &ie) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			err = fmt.Errorf("container %q init failed: %w", l.id, err)
		}
		return l.abandon(err)
	}
	return nil
}

// reply lets the child go on.
func (l *directLink) reply() error {
	if _, err := l.ch.pipe.Write([]byte{1}); err != nil {
		return l.fail(fmt.Errorf("container %q init: write init pipe: %w", l.id, err))
	}
	return nil
}

// waitExec waits until the child executed the container's process: the
// pipe is close-on-exec, so EOF, unless a last step failed.
func (l *directLink) waitExec() error {
	_, err := l.record()
	if err == io.EOF {
		return nil
	}
	if err == nil {
		err = errors.New("init pipe: unexpected record after start")
	}
	return l.abandon(err)
}
