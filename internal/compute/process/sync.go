package process

import (
	"fmt"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/compute/process/cgroups"
)

// initConfig is everything the child needs; the parent sends it as the
// first message on the init pipe (encoded by wire.go).
type initConfig struct {
	ID     string
	Bundle string
	Rootfs string
	// Spec is the part of the spec that init reads (see initSpec).
	Spec *specs.Spec
	// Process is the process to run: the spec's for a new container, the
	// exec'd one for an exec.
	Process *specs.Process
	// Exec is set when joining a running container instead of making one.
	Exec         bool
	NoPivot      bool
	NoNewKeyring bool
	// NewUserNS tells init it runs in a fresh user namespace (maps written).
	NewUserNS bool
	// NewMountNS is false when the container shares the runtime's mount
	// namespace; the rootfs steps are then skipped.
	NewMountNS  bool
	NewUTSNS    bool
	NewCgroupNS bool
	// Fds in the child (-1 when absent).
	ConsoleFd int
	FifoFd    int
	// PreserveFds counts the fds from 3 that the process keeps.
	PreserveFds int
	// CgroupMounts tells init what to bind for "cgroup" mounts.
	CgroupMounts []cgroups.MountSource
	// CgroupTasks are the cgroup v1 "tasks" files (Manager.TaskFiles) init
	// writes "0" to at sync 1, moving its own thread into the container's
	// cgroups: host paths, valid in the copy of the runtime's mount
	// namespace init starts in. Empty when the parent moved it.
	CgroupTasks []string
	// CgroupTaskFds are the same files opened by the parent, for an exec,
	// which has entered the container's mount namespace by then.
	CgroupTaskFds []int
	// Seccomp is the compiled filter (seccomp.Filter.MarshalBinary), made
	// by the parent so that init never runs the compiler.
	Seccomp []byte
	// State is the OCI state for hooks that init runs itself.
	State *specs.State

	// init's own bookkeeping, not sent
	cgroupJoined bool
	started      bool
}

// Message types on the init pipe, in the order they are exchanged.
const (
	msgConfig    = "config"     // parent -> child: initConfig
	msgCgroup    = "cgroup"     // parent -> child: init is in its cgroups /* sync 1 */
	msgHooks     = "hooks"      // child -> parent: run prestart/createRuntime now /* sync 2 */
	msgHooksDone = "hooks-done" // parent -> child
	msgSeccomp   = "seccomp"    // child -> parent: listener fd number to fetch
	msgSeccompOK = "seccomp-ok" // parent -> child
	msgReady     = "ready"      // child -> parent: waiting to start /* sync 3 */
	msgStart     = "start"      // parent -> child (run without a fifo)
	msgError     = "error"      // child -> parent: setup failed
)

// message is one frame on the init pipe.
type message struct {
	Type   string
	Fd     int
	Error  string
	Config *initConfig
}

// syncPipe exchanges messages over the init socket, one frame each.
type syncPipe struct {
	rw io.ReadWriter
}

func newSyncPipe(rw io.ReadWriter) *syncPipe {
	return &syncPipe{rw: rw}
}

func (p *syncPipe) send(m *message) error {
	if err := writeFrame(p.rw, encodeMessage(m)); err != nil {
		return fmt.Errorf("send %q on init pipe: %w", m.Type, err)
	}
	return nil
}

// recv reads the next message. An error message from the child becomes an
// error carrying its text, so the caller reports what init reported.
func (p *syncPipe) recv() (*message, error) {
	frame, err := readFrame(p.rw)
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read init pipe: %w", err)
	}
	m, err := decodeMessage(frame)
	if err != nil {
		return nil, err
	}
	if m.Type == msgError {
		return nil, &initError{msg: m.Error}
	}
	return m, nil
}

// expect reads the next message and checks its type.
func (p *syncPipe) expect(typ string) (*message, error) {
	m, err := p.recv()
	if err != nil {
		return nil, err
	}
	if m.Type != typ {
		return nil, fmt.Errorf("init pipe: got %q, want %q", m.Type, typ)
	}
	return m, nil
}

// waitExec waits until init has executed the container's process: the
// init pipe is close-on-exec, so the parent reads EOF then, or the error
// message if the last steps failed.
func (p *syncPipe) waitExec() error {
	_, err := p.recv()
	if err == io.ErrUnexpectedEOF {
		return nil
	}
	if err == nil {
		return fmt.Errorf("init pipe: unexpected message after start")
	}
	return err
}

// initError is an error that the container's init reported.
type initError struct{ msg string }

func (e *initError) Error() string { return e.msg }
