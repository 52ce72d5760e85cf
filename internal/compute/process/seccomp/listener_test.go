package seccomp

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestSendListener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		t.Fatal(err)
	}

	// Any fd will do as the "listener": a pipe lets us check the received
	// fd is the same open file.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
	defer r.Close()
	defer w.Close()

	state := specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreating, Pid: 1234, Bundle: "/b",
		Annotations: map[string]string{"a": "b"}}
	stateJSON, _ := json.Marshal(state)
	if err := SendListener(path, int(w.Fd()), stateJSON, "meta data"); err != nil {
		t.Fatal(err)
	}

	conn, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(conn)
	buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := unix.Recvmsg(conn, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	var got specs.ContainerProcessState
	if err := json.Unmarshal(buf[:n], &got); err != nil {
		t.Fatalf("payload %q: %v", buf[:n], err)
	}
	if got.Version != specs.Version || len(got.Fds) != 1 || got.Fds[0] != specs.SeccompFdName ||
		got.Pid != 1234 || got.Metadata != "meta data" || got.State.ID != "c1" || got.State.Annotations["a"] != "b" {
		t.Fatalf("received %+v", got)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages %v, %v", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights %v, %v", fds, err)
	}
	recv := os.NewFile(uintptr(fds[0]), "received")
	defer recv.Close()
	if _, err := recv.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	one := make([]byte, 1)
	if _, err := r.Read(one); err != nil || one[0] != 'x' {
		t.Fatalf("received fd is not the pipe: %q %v", one, err)
	}
}

func TestSendListenerErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path string
		fd         int
		state      string
	}{
		{"no path", "", 0, `{}`},
		{"bad fd", filepath.Join(dir, "s"), -1, `{}`},
		{"bad state", filepath.Join(dir, "s"), 0, `{`},
		{"no agent", filepath.Join(dir, "s"), 0, `{"pid":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := SendListener(tt.path, tt.fd, []byte(tt.state), ""); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
