// Package process is the process-isolation backend: a container is a tree
// of processes in fresh Linux namespaces (the silo), limited by cgroups
// (the job object), with its root on the bundle's rootfs.
//
// The start path is two processes and one exec:
//
//	runsilo (parent)                        init (child, same binary)
//	  open self through a read-only mount
//	  clone(CLONE_NEW*) + exec "init"  -->  read config from the init pipe
//	  join cgroups, set limits              /* sync 1 */ wait for "go"
//	  send config, "go"                     mounts, devices, hostname, sysctl
//	  run createRuntime hooks   <--hooks--  /* sync 2 */ rootfs ready
//	  reply                     --ok-->     createContainer hooks, pivot_root
//	  write state, pid file     <--ready--  /* sync 3 */ masked paths, console
//	                                        wait on exec.fifo (create) or pipe (run)
//	runsilo start: read exec.fifo  ----->   user, caps, rlimits, seccomp, execve
//
// A mount namespace is joined by init on its main thread after it unshares
// its filesystem context; user and time namespaces, which a multi-threaded
// process cannot join at all, by runsilo-helper's C constructor (package
// nsenter) before its Go runtime starts, which then executes init; the rest
// are joined on the parent's locked thread before it forks.
package process
