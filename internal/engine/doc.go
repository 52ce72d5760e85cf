// Package engine is silod's container service: what the Engine API (and
// later the CRI server) serves. It validates requests, keeps containers in
// a bbolt database, prepares their root file systems and OCI bundles, and
// runs them through a per-container monitor process, so that containers
// outlive the daemon.
//
// # Seams
//
//	ImageStore   images and their unpacked layers (internal/storage)
//	Monitors     per-container monitor processes: silo-monitor
//	             (internal/engine/monitor, adapted in cmd/silod)
//	sandbox      the writable layer (internal/storage/sandbox), used directly
//	ocispec      the OCI spec from Docker's settings, used directly
//	logs         the json-file reader (internal/engine/logs), used directly
//
// # Layout
//
//	DATA_ROOT/engine.db                  containers (bbolt): every write one transaction
//	DATA_ROOT/containers/ID/config.json  the OCI bundle (rootfs below is absolute)
//	DATA_ROOT/containers/ID/sandbox/     the writable layer (package sandbox)
//	DATA_ROOT/containers/ID/logs/        json-file logs written by the monitor
//	DATA_ROOT/volumes/                   named and anonymous volumes and every
//	                                     container's mount points (package volume)
//	EXEC_ROOT/containers/ID/             the monitor's socket and exit.json
//
// # Container states
//
//	state      sandbox   monitor   reached by
//	created    mounted   -         Create; Start failed before the process ran
//	running    mounted   alive     Start
//	paused     mounted   alive     Pause (pause.go; Unpause goes back)
//	exited     unmounted exited    exit of the process (seen by Wait on the
//	                               monitor, or by reconciliation from exit.json)
//	restarting unmounted -         exit, with a restart policy that restarts:
//	                               waiting for the backoff timer (restart.go)
//	removing   any       -         Remove in progress (a crash here: Restore
//	                               finishes the removal)
//	(gone)     -         -         Remove; AutoRemove after exit
//
// Start is allowed from created and exited; Remove of a running container
// needs force, which kills it first.
//
// # Attach
//
// Attach to a running container goes to its monitor. Docker attaches
// before it starts a container, when no monitor exists: the attachment
// then waits in entry.pending, and the next Start launches the monitor
// with HoldOutput (the monitor keeps its first output, up to 1 MiB, for
// the first client) and connects the waiting attachments before it
// watches the exit, so nothing the process wrote, even at once, is
// missed. A failed start or a removal ends waiting attachments (EOF).
// Attach and Start both hold entry.op, so an attachment is either
// connected to a running monitor or seen by the next Start.
//
// # Locks
//
// Service.mu guards the in-memory index (Service.ctrs). Each container's
// entry.mu serialises the lifecycle operations of that container and is
// taken before Service.mu, never after. The record in the database is
// written while entry.mu is held.
package engine
