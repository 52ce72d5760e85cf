// Package monitor is the per-container monitor (the role conmon or a
// containerd shim plays): one small process per container, started by
// silod, that lets the container outlive the daemon. The binary is
// cmd/silo-monitor; this package holds both its body (Main, Serve) and the
// daemon's side (Spawn, Pending, Client, ReadExit).
//
// A monitor:
//   - is spawned by silod (Spawn) in a session of its own, with a ready
//     pipe (fd 3) and a gate (fd 4); silod reaps it through a pidfd when
//     it quits, and a monitor outlives silod (it is left to init). Run by
//     hand, `silo-monitor FLAGS` (Config.Args) spawns a copy of itself
//     and exits once the container runs;
//   - becomes a child subreaper, opens the log and its control socket,
//     then waits on the gate: silod connects the container's network
//     meanwhile and then opens it (a closed gate: undo the setup, quit);
//   - runs `RUNTIME run -d` with the container's stdio (pipes, or a pty
//     whose master arrives on a console socket); once the runtime has
//     exited, init is reparented to the monitor, which reaps it and so
//     learns its status.
//     It does not link the compute backend: that would make a resident
//     process large;
//   - copies stdout and stderr into the log (package logs: json-file or
//     local) and to attached clients;
//   - with the capture log options (LogMonitor's counterpart), also
//     copies log files inside the container (capture.go, polled) and the
//     messages of a /dev/log socket it binds (syslog.go) into the log;
//   - serves a control socket, Dir/monitor.sock;
//   - when init exits: writes Dir/exit.json atomically (code, signal,
//     OOM kill from the memory cgroup's oom_kill counter, times), drains
//     the output into the log, closes the log and reports the exit, and
//     deletes the container through the runtime (remaining processes,
//     cgroups, runtime state); then keeps answering state and wait for
//     Config.Grace or until release. The delete comes after the report
//     when init was pid 1 of its own pid namespace (nothing of the
//     container is left running then), before it otherwise.
//
// If silod restarts it connects to Dir/monitor.sock again; if the monitor
// is gone (no socket), Dir/exit.json has the status.
//
// Lifecycle of a monitor:
//
//	spawned --set up--> waiting --gate open, runtime ok--> running --init reaped--> exited --grace or release--> gone
//	    '--setup failed, gate closed or runtime error (error on the ready pipe, nothing left behind)
//
// Protocol: JSON lines over the unix socket, one request per line, one
// reply per request; a connection may carry several requests. Every reply
// has "ok"; a failed one has "error" and "class" (not_found, conflict,
// invalid_argument: errdefs classes).
//
//	{"op":"state"}                       -> {"ok":true,"id":..,"pid":..,"status":"running"|"exited",
//	                                          "exit_code":..,"signal":..,"oom_killed":..,
//	                                          "started":..,"finished":..,"monitor_pid":..}
//	{"op":"wait"}                        -> the state reply, once the container exited and its log is complete
//	{"op":"wait","deleted":true}         -> the same, once the runtime has also deleted the container
//	{"op":"wait","release":true}         -> a wait that also releases the monitor (it quits once deleted)
//	{"op":"signal","signal":N,"all":B}   -> {"ok":true}   (all: every process, through the runtime)
//	{"op":"resize","rows":R,"cols":C}    -> {"ok":true}   (terminal containers)
//	{"op":"close_stdin"}                 -> {"ok":true}
//	{"op":"release"}                     -> {"ok":true}   (after the exit: quit once deleted)
//	{"op":"attach","stdin":B,"stdout":B,"stderr":B,"stdin_once":B}
//	                                     -> {"ok":true,"tty":B}, then the connection is a stream:
//	                                        output to the client (raw with a tty, otherwise framed as
//	                                        Docker's attach: 1 byte stream, 3 zero bytes, uint32 length),
//	                                        input from the client to stdin; the output ends (EOF) when
//	                                        the container has exited and its output is drained.
//
// With --hold-output (Config.HoldOutput) the output written before the
// first attach (up to 1 MiB) is kept and sent to that first client, even
// if the container has exited meanwhile: silod sets it when clients
// attached before the start (docker run).
//
// The monitor avoids net, fmt, encoding/json and flag (it speaks its
// small JSON with its own codec), so that a static CGO_ENABLED=0 binary
// stays about 2 MB and an idle monitor under 1 MB of private memory.
package monitor
