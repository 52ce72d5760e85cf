// Command runsilo-helper does for runsilo, which is built without cgo so
// that no container start pays for a C library, the two jobs that need C.
// runsilo runs it; it is not meant to be run by hand.
//
//	runsilo-helper exec FD ARG0 ARG...
//	    Its C constructor (package nsenter) has already joined the user,
//	    mount and time namespaces the environment names, before the Go
//	    runtime started its threads; execute the binary open on FD (the
//	    runsilo init) with the given arguments and the rest of the
//	    environment. The binary is run from its fd because the joined mount
//	    namespace need not have it.
//	runsilo-helper seccomp-compile
//	    Read an OCI seccomp object (JSON) on stdin, compile it with
//	    libseccomp and write the filter in the form seccomp.UnmarshalFilter
//	    reads to stdout.
//	runsilo-helper seccomp-features
//	    Write the seccomp part of `runsilo features` (JSON) to stdout.
//
// Errors go to stderr, exit status 1; runsilo passes the message on.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	_ "github.com/silo-containers/silo/internal/compute/process/nsenter"
	"github.com/silo-containers/silo/internal/compute/process/seccomp"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("runsilo-helper: no command (exec, seccomp-compile, seccomp-features); runsilo runs this helper")
	}
	switch args[0] {
	case "exec":
		if len(args) < 3 {
			return fmt.Errorf("runsilo-helper exec: want FD ARG0 [ARG...]")
		}
		fd, err := strconv.Atoi(args[1])
		if err != nil {
			return fmt.Errorf("runsilo-helper exec: fd %q: %w", args[1], err)
		}
		if err := becomeNamespaceRoot(); err != nil {
			return err
		}
		return execFd(fd, args[2:], os.Environ())
	case "seccomp-compile":
		var s specs.LinuxSeccomp
		if err := json.NewDecoder(stdin).Decode(&s); err != nil {
			return fmt.Errorf("seccomp: decode profile: %w", err)
		}
		f, err := seccomp.Compile(&s)
		if err != nil {
			return err
		}
		data, err := f.MarshalBinary()
		if err != nil {
			return err
		}
		_, err = stdout.Write(data)
		return err
	case "seccomp-features":
		return json.NewEncoder(stdout).Encode(seccomp.Features())
	}
	return fmt.Errorf("runsilo-helper: unknown command %q", args[0])
}

// becomeNamespaceRoot makes this process root of the user namespace it
// joined. setns gave it every capability there, but it keeps the host
// user, which the namespace does not map (it reads as the overflow user):
// at the execve that follows, the kernel would recompute its capabilities
// for a non-root user and drop them all. Outside a joined user namespace
// the euid is 0 already and nothing changes.
func becomeNamespaceRoot() error {
	if os.Geteuid() == 0 {
		return nil
	}
	if err := unix.Setgroups(nil); err != nil && err != unix.EPERM {
		return fmt.Errorf("runsilo-helper exec: setgroups: %w", err)
	}
	if err := unix.Setresgid(0, 0, 0); err != nil {
		return fmt.Errorf("runsilo-helper exec: setresgid 0 in the joined user namespace: %w", err)
	}
	if err := unix.Setresuid(0, 0, 0); err != nil {
		return fmt.Errorf("runsilo-helper exec: setresuid 0 in the joined user namespace: %w", err)
	}
	return nil
}

// execFd replaces this process with the binary open on fd
// (execveat(fd, "", argv, env, AT_EMPTY_PATH)); it returns only on error.
func execFd(fd int, argv, env []string) error {
	// NULL-terminated arrays of C strings, as execve takes them.
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return fmt.Errorf("runsilo-helper exec: %w", err)
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return fmt.Errorf("runsilo-helper exec: %w", err)
	}
	empty := [1]byte{}
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(&empty[0])),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
	return fmt.Errorf("runsilo-helper exec: execveat fd %d: %w", fd, errno)
}
