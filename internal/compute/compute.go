// Package compute is silo's Host Compute Service: the seam between
// everything that runs containers (runsilo, the engine, the CRI server) and
// the backends that isolate them (process: namespaces and cgroups; vm: a
// utility VM per container).
//
// A compute system follows HCS's state machine:
//
//	Created --Start--> Running --Pause--> Paused
//	   |                 |  ^--Resume------'
//	   |                 v
//	   '--Terminate--> Stopped <-- Shutdown / exit of init / crash
//
// Delete removes a Stopped system (or any system when forced).
package compute

import (
	"context"
	"os"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// State is a compute system's lifecycle state, spelled as in the OCI state.
type State string

// The states of a compute system.
const (
	Creating State = "creating"
	Created  State = "created"
	Running  State = "running"
	Paused   State = "paused"
	Stopped  State = "stopped"
)

// Document describes a compute system to create. For the process backend it
// is the OCI bundle; the vm backend reads the same spec and boots a VM
// around it.
type Document struct {
	ID     string
	Bundle string
	Spec   *specs.Spec
	// SpecJSON, when the caller has it, is Spec as JSON (the bundle's
	// config.json as read). The process backend keeps it in the state as
	// is rather than encoding Spec again; it must describe the same spec.
	SpecJSON []byte
	// Stdio is given to the container's first process when it has no
	// terminal: the files themselves are passed (no copying goroutines on
	// the data path). Nil entries mean the caller's own stdio.
	Stdin          *os.File
	Stdout, Stderr *os.File
	// ConsoleSocket is a unix socket path that receives the pty master of a
	// terminal process (runc's --console-socket).
	ConsoleSocket string
	// Console, when set, is an already connected console socket; it takes
	// the place of ConsoleSocket.
	Console *os.File
	// PreserveFDs passes the caller's fds 3..3+n-1 to the process.
	PreserveFDs int
	// NoPivot uses MS_MOVE+chroot instead of pivot_root (for ramfs roots).
	NoPivot bool
	// NoNewKeyring keeps the caller's session keyring.
	NoNewKeyring bool
	// StartOnCreate skips the created state: the process runs as soon as it
	// is set up (runc run), and the caller owns it as a child.
	StartOnCreate bool
}

// ProcessParams describe an extra process started in a running system (exec).
type ProcessParams struct {
	Process       *specs.Process
	ConsoleSocket string
	Console       *os.File
	PreserveFDs   int
	// Stdio of the process when it has no terminal (nil: the caller's).
	Stdin          *os.File
	Stdout, Stderr *os.File
}

// Properties is a snapshot of a system, as HCS's property query returns it.
type Properties struct {
	ID          string
	State       State
	Pid         int
	Bundle      string
	Created     time.Time
	Owner       string
	Annotations map[string]string
}

// System is one running (or stopped) container.
type System interface {
	ID() string
	// Pid is the host pid of the init process (0 when there is none): what
	// the pid file and signal forwarding want, without the state query
	// that Properties makes.
	Pid() int
	// Start runs the container's process (Created -> Running).
	Start(ctx context.Context) error
	// Signal sends sig to the init process, or to every process when all.
	Signal(ctx context.Context, sig syscall.Signal, all bool) error
	// Pause freezes every process; Resume thaws them.
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	// Properties reports the current state.
	Properties(ctx context.Context) (*Properties, error)
	// Pids lists the processes in the container (host pids).
	Pids(ctx context.Context) ([]int, error)
	// Update changes resource limits of a running container.
	Update(ctx context.Context, r *specs.LinuxResources) error
	// CreateProcess starts an extra process inside the container.
	CreateProcess(ctx context.Context, p *ProcessParams) (Process, error)
	// Wait blocks until the init process exits and returns its status; only
	// the system's creator (a parent) can learn the status.
	Wait(ctx context.Context) (int, error)
	// Delete releases everything the system holds. Without force it fails
	// unless the system is stopped.
	Delete(ctx context.Context, force bool) error
}

// Process is a process started by CreateProcess.
type Process interface {
	Pid() int
	Signal(sig syscall.Signal) error
	// Wait returns the exit status (128+signal for a killed process).
	Wait(ctx context.Context) (int, error)
}

// Backend creates and opens compute systems.
type Backend interface {
	Create(ctx context.Context, doc *Document) (System, error)
	Open(ctx context.Context, id string) (System, error)
	// List returns the ids of every known system.
	List(ctx context.Context) ([]string, error)
}
