// Package seccomp turns the OCI seccomp object into a BPF program and loads
// it into the calling thread.
//
// Compilation and loading are separate on purpose: the container's init
// compiles while it may still allocate freely, then loads the finished
// program with one raw seccomp(2) call as the very last step before execve,
// after rlimits such as RLIMIT_AS are in force.
package seccomp

import "errors"

// ErrNotCompiledIn is returned by Compile in builds without cgo when
// runsilo-helper, which links libseccomp for them, is not there.
var ErrNotCompiledIn = errors.New("seccomp: support not compiled in (no libseccomp: built without cgo, and runsilo-helper not found)")
