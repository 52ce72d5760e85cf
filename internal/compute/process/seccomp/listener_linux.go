package seccomp

import (
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// SendListener hands a seccomp listener fd (from Load) to the seccomp agent
// listening on the unix stream socket at path, the way runc does: one
// message whose payload is a specs.ContainerProcessState as JSON, with
// fds ["seccompFd"], and whose SCM_RIGHTS carries fd.
//
// state is the container's state (specs.State) as JSON, as `runsilo state`
// prints it; its pid becomes the message's pid. metadata is the profile's
// listenerMetadata. The caller keeps ownership of fd and should close its
// copy once this returns.
func SendListener(path string, fd int, state []byte, metadata string) error {
	if path == "" {
		return fmt.Errorf("seccomp: listenerPath: must be set to send the listener fd")
	}
	if fd < 0 {
		return fmt.Errorf("seccomp: sending listener to %q: invalid fd %d", path, fd)
	}
	var st specs.State
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("seccomp: sending listener to %q: container state: %w", path, err)
	}
	msg, err := json.Marshal(specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      st.Pid,
		Metadata: metadata,
		State:    st,
	})
	if err != nil {
		return fmt.Errorf("seccomp: sending listener to %q: %w", path, err)
	}

	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("seccomp: sending listener to %q: socket: %w", path, err)
	}
	defer unix.Close(sock)
	if err := retryEINTR(func() error { return unix.Connect(sock, &unix.SockaddrUnix{Name: path}) }); err != nil {
		return fmt.Errorf("seccomp: connecting to seccomp agent at %q: %w", path, err)
	}

	// The fd rides on the first byte of the payload; should the kernel
	// take only part of the JSON, the rest follows without it, so the
	// agent still reads one complete document from the stream.
	oob := unix.UnixRights(fd)
	for len(msg) > 0 {
		var n int
		err := retryEINTR(func() error {
			var err error
			// MSG_NOSIGNAL: an agent that went away must give an
			// error, not a SIGPIPE.
			n, err = unix.SendmsgN(sock, msg, oob, nil, unix.MSG_NOSIGNAL)
			return err
		})
		if err != nil {
			return fmt.Errorf("seccomp: sending listener to %q: %w", path, err)
		}
		msg, oob = msg[n:], nil
	}
	return nil
}

func retryEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}
