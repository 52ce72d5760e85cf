package process

import (
	"encoding/binary"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute/process/dmz"
	"github.com/silo-containers/silo/internal/compute/process/seccomp"
)

// The direct paths from a writable runtime binary.
//
// A direct child is a clone of this process: until it executes something
// else, its /proc/<pid>/exe is this binary. Where that binary can be
// written (a default install), a container able to open it could replace
// the runtime on the host (CVE-2019-5736). So the direct child then
// executes a trampoline (package dmz) from a sealed memfd at the end of its
// set-up, and the trampoline executes the process:
//
//   - The direct init does so before it says "ready"; the trampoline says
//     it and waits for start. Until then nothing of the container runs and
//     nobody can see the child, provided that its pid namespace is new
//     (with a joined one, the processes already in it could open
//     /proc/<pid>/exe: the exec'd init is used) and that no exec joins it
//     while it is being made (exec checks, initRunsWritableRuntime).
//   - The direct exec's first child, outside the container's pid namespace
//     where no process of the container can see it, sets the whole process
//     up and executes the trampoline, which clones the process into the pid
//     namespace (CLONE_PARENT: the runtime's child) and exits; the process
//     says hello, makes itself a session leader (with its terminal, if it
//     has one) and executes.
//
// The trampoline's calls run under the container's seccomp filter; a filter
// that would stop one sends the container through the exec'd init too.

// Fixed fds of a direct child that executes the trampoline, written into
// it: the init pipe and the exec fifo stay open across that execve.
const (
	trampFd     = 996 // the trampoline's memfd
	trampSyncFd = 997
	trampFifoFd = 998
)

// markTrampoline + k is the record of the trampoline's step k failing.
const markTrampoline = 0xfffffe00

// trampolineArgv is what ps shows for a container waiting to start.
var trampolineArgv = []string{"runsilo-init"}

// newTrampoline builds the trampoline for proc: an init's (wait for start,
// on the exec fifo with fifo) or an exec's (fork, hello). It returns nil
// when the exec'd init has to start proc: filter would stop one of the
// trampoline's calls (or the execveat of it), or proc cannot be written
// into one (the exec'd init then reports the error).
func newTrampoline(proc *specs.Process, filter *seccomp.Filter, exec, fifo bool) *dmz.Image {
	c := dmz.Config{Sync: trampSyncFd, Fifo: -1, Paths: execCandidates(proc), Argv: proc.Args, Env: proc.Env, ErrorBase: markTrampoline}
	if exec {
		c.Fork, c.Ctty = true, proc.Terminal
		binary.LittleEndian.PutUint32(c.Hello[:], markExecChild)
	} else {
		c.Wait = true
		binary.LittleEndian.PutUint32(c.Hello[:], markReady)
		if fifo {
			c.Fifo = trampFifoFd
		}
	}
	img, err := dmz.Build(c)
	if err != nil {
		return nil
	}
	if filter == nil {
		return img
	}
	// The pointers of the execveat are not known yet; no profile looks at
	// them.
	calls := append(img.Calls, dmz.Call{Nr: unix.SYS_EXECVEAT, Args: [6]uint64{trampFd, 0, 0, 0, unix.AT_EMPTY_PATH}})
	for _, call := range calls {
		if !filter.Allows(unix.AUDIT_ARCH_X86_64, call.Nr, call.Args, call.IP) {
			trace("trampoline refused by the seccomp filter")
			return nil
		}
	}
	return img
}

// trampoline is a built trampoline in its sealed memfd.
type trampoline struct {
	file  *os.File
	steps []string // what its steps do, for its error records
}

// makeTrampoline builds proc's trampoline (newTrampoline) and seals it
// into a memfd; nil when the exec'd init has to start proc instead: the
// filter would stop the trampoline, or this host will not make an
// executable memfd (vm.memfd_noexec=2).
func makeTrampoline(proc *specs.Process, filter *seccomp.Filter, exec, fifo bool) *trampoline {
	img := newTrampoline(proc, filter, exec, fifo)
	if img == nil {
		return nil
	}
	f, err := sealedMemfd("runsilo-init", func(w io.Writer) error {
		_, err := w.Write(img.ELF)
		return err
	})
	if err != nil {
		trace("no trampoline: " + err.Error())
		return nil
	}
	trace("trampoline made")
	return &trampoline{file: f, steps: img.Steps}
}
