package engine

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/silo-containers/silo/internal/storage"
)

// ImageStore is what the engine needs of the image store
// (*storage.Store satisfies it).
type ImageStore interface {
	// Image resolves a reference, an image ID or a digest.
	Image(ctx context.Context, ref string) (storage.ImageInfo, error)
	// List returns every image.
	List(ctx context.Context) ([]storage.ImageInfo, error)
	// LayerDirs returns the unpacked layers of ref, top-most first.
	LayerDirs(ctx context.Context, ref string) ([]string, error)
	// Load reads a `docker save` or OCI layout tar and returns the
	// references it loaded.
	Load(ctx context.Context, r io.Reader) ([]string, error)
	// Remove drops a reference (all references, given an image ID).
	Remove(ctx context.Context, ref string, opts ...storage.RemoveOptions) error
	// Hold keeps an image while a container uses it; Release undoes it.
	Hold(ctx context.Context, holder, ref string) error
	Release(ctx context.Context, holder string) error
}

var _ ImageStore = (*storage.Store)(nil)

// MonitorConfig describes the container a monitor runs.
type MonitorConfig struct {
	// ID is the container id.
	ID string
	// Bundle holds config.json.
	Bundle string
	// StateDir is the monitor's own directory (socket, exit.json) under
	// the exec root.
	StateDir string
	// LogDir is where the json-file logs go.
	LogDir string
	// LogDriver is json-file or local.
	LogDriver string
	// LogOptions are docker's --log-opt values (max-size, max-file).
	LogOptions map[string]string
	// Terminal gives the container a pty (docker run -t).
	Terminal bool
	// Stdin keeps the container's stdin open for attached clients
	// (docker run -i).
	Stdin bool
	// HoldOutput keeps the first output for the first client to attach:
	// set when clients attached before the start. Launch ignores it: the
	// start says it (PendingMonitor.Start).
	HoldOutput bool
}

// ExitStatus is how a container's process ended.
type ExitStatus struct {
	// Code is the exit code, 128+signal for a killed process.
	Code int
	// ExitedAt is when the monitor saw the exit.
	ExitedAt time.Time
	// OOMKilled is set when the memory cgroup killed the process.
	OOMKilled bool
	// Error says why the process could not run, if it never did.
	Error string
}

// Monitors starts and finds the per-container monitor processes. A
// monitor creates and starts its container through the runtime, copies its
// output into the log directory and records its exit status; it outlives
// the daemon.
type Monitors interface {
	// Launch starts a monitor that sets itself up (log, control socket)
	// and waits: PendingMonitor.Start runs the container. The engine
	// prepares the rest (the network) while the monitor sets up.
	// cfg.HoldOutput is ignored (PendingMonitor.Start says it).
	Launch(ctx context.Context, cfg MonitorConfig) (PendingMonitor, error)
	// Open connects to the running monitor of a container. It returns an
	// error wrapping errdefs.ErrNotFound when no monitor is running; the
	// container's exit status is then in Exited.
	Open(ctx context.Context, cfg MonitorConfig) (Monitor, error)
	// Exited returns the exit status recorded in StateDir (errdefs.ErrNotFound
	// when there is none).
	Exited(cfg MonitorConfig) (ExitStatus, error)
	// Delete removes what the runtime and the monitor keep of an exited
	// container (runtime state, StateDir), once a monitor still deleting
	// the container through the runtime is done.
	Delete(ctx context.Context, cfg MonitorConfig) error
}

// PendingMonitor is a launched monitor whose container does not run yet.
// Nothing may talk to it (Open, Delete) until Start returned.
type PendingMonitor interface {
	// Start runs the container and returns once its process runs, or with
	// the runtime's error if it could not start. holdOutput: see
	// MonitorConfig.HoldOutput.
	Start(ctx context.Context, holdOutput bool) (Monitor, error)
	// Abort makes the monitor undo its setup and quit without running
	// anything.
	Abort()
}

// Monitor is one connected monitor.
type Monitor interface {
	// Pid is the container's init process on the host.
	Pid() int
	// Signal sends sig to the container's init process.
	Signal(ctx context.Context, sig syscall.Signal) error
	// Wait blocks until the container's process has exited.
	Wait(ctx context.Context) (ExitStatus, error)
	// Attach connects to the container's stdio (see Attachment).
	Attach(ctx context.Context, opts MonitorAttachOptions) (Attachment, error)
	// Resize sets the size of the container's terminal.
	Resize(ctx context.Context, rows, cols uint16) error
	// Close drops the connection; the monitor and container go on.
	Close() error
}

// MonitorAttachOptions choose the streams of an attachment.
type MonitorAttachOptions struct {
	Stdin, Stdout, Stderr bool
	// StdinOnce closes the container's stdin when the client's input
	// ends.
	StdinOnce bool
}

// Attachment is a live connection to a container's stdio. Read gives the
// output: raw for a container with a terminal, otherwise in Docker's
// multiplexed form (8-byte frame headers); it ends (io.EOF) once the
// container has exited and its output is drained. Write goes to the
// container's stdin.
type Attachment interface {
	io.ReadWriter
	// CloseWrite ends the input (with StdinOnce the stdin closes).
	CloseWrite() error
	// Close ends the attachment.
	Close() error
}
