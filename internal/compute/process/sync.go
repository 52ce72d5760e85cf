package process

import (
	"encoding/json"
	"fmt"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/compute/process/cgroups"
)

// initConfig is everything the child needs; the parent sends it as the
// first message on the init pipe.
type initConfig struct {
	ID     string      `json:"id"`
	Bundle string      `json:"bundle"`
	Rootfs string      `json:"rootfs"`
	Spec   *specs.Spec `json:"spec"`
	// Process is the process to run: the spec's for a new container, the
	// exec'd one for an exec.
	Process *specs.Process `json:"process"`
	// Exec is set when joining a running container instead of making one.
	Exec         bool `json:"exec,omitempty"`
	NoPivot      bool `json:"no_pivot,omitempty"`
	NoNewKeyring bool `json:"no_new_keyring,omitempty"`
	// NewUserNS tells init it runs in a fresh user namespace (maps written).
	NewUserNS bool `json:"new_userns,omitempty"`
	// NewMountNS is false when the container shares the runtime's mount
	// namespace; the rootfs steps are then skipped.
	NewMountNS  bool `json:"new_mountns,omitempty"`
	NewUTSNS    bool `json:"new_utsns,omitempty"`
	NewCgroupNS bool `json:"new_cgroupns,omitempty"`
	// Fds in the child (-1 when absent).
	ConsoleFd int `json:"console_fd"`
	FifoFd    int `json:"fifo_fd"`
	// PreserveFds counts the fds from 3 that the process keeps.
	PreserveFds int `json:"preserve_fds"`
	// CgroupMounts tells init what to bind for "cgroup" mounts.
	CgroupMounts []cgroups.MountSource `json:"cgroup_mounts,omitempty"`
	// Seccomp is the compiled filter (seccomp.Filter.MarshalBinary), made
	// by the parent so that init never runs the compiler.
	Seccomp []byte `json:"seccomp,omitempty"`
	// State is the OCI state for hooks that init runs itself.
	State *specs.State `json:"state,omitempty"`

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

// message is one line on the init pipe.
type message struct {
	Type   string      `json:"type"`
	Fd     int         `json:"fd,omitempty"`
	Error  string      `json:"error,omitempty"`
	Config *initConfig `json:"config,omitempty"`
}

// syncPipe exchanges JSON messages over the init socket.
type syncPipe struct {
	enc *json.Encoder
	dec *json.Decoder
}

func newSyncPipe(rw io.ReadWriter) *syncPipe {
	return &syncPipe{enc: json.NewEncoder(rw), dec: json.NewDecoder(rw)}
}

func (p *syncPipe) send(m *message) error {
	if err := p.enc.Encode(m); err != nil {
		return fmt.Errorf("send %q on init pipe: %w", m.Type, err)
	}
	return nil
}

// recv reads the next message. An error message from the child becomes an
// error carrying its text, so the caller reports what init reported.
func (p *syncPipe) recv() (*message, error) {
	var m message
	if err := p.dec.Decode(&m); err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read init pipe: %w", err)
	}
	if m.Type == msgError {
		return nil, &initError{msg: m.Error}
	}
	return &m, nil
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
