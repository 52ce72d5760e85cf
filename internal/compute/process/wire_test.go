package process

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/compute/process/cgroups"
)

func ptr[T any](v T) *T { return &v }

// fullSpec sets every field that initSpec keeps, and some it drops.
func fullSpec() *specs.Spec {
	return &specs.Spec{
		Version:    specs.Version,
		Hostname:   "box",
		Domainname: "example.org",
		Root:       &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{
			Terminal:    true,
			ConsoleSize: &specs.Box{Height: 40, Width: 120},
			User: specs.User{UID: 1000, GID: 100, Umask: ptr(uint32(0o22)),
				AdditionalGids: []uint32{10, 4294967295}, Username: "silo"},
			Args: []string{"/bin/sh", "-c", "echo 'é' \x00"},
			Env:  []string{"PATH=/bin", "EMPTY="},
			Cwd:  "/home/silo",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: []string{"CAP_KILL", "CAP_CHOWN"}, Effective: []string{"CAP_KILL"},
				Permitted: []string{"CAP_KILL"}, Ambient: []string{"CAP_KILL"},
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1 << 63, Soft: 1024}},
			NoNewPrivileges: true,
			OOMScoreAdj:     ptr(-999),
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind", "ro"},
				UIDMappings: []specs.LinuxIDMapping{{HostID: 1, Size: 1}}},
		},
		Hooks: &specs.Hooks{
			CreateRuntime:   []specs.Hook{{Path: "/bin/dropped"}},
			CreateContainer: []specs.Hook{{Path: "/bin/cc", Args: []string{"cc", "x"}, Env: []string{"A=1"}, Timeout: ptr(5)}},
			StartContainer:  []specs.Hook{{Path: "/bin/sc"}, {Path: "/bin/sc2", Timeout: ptr(0)}},
			Poststop:        []specs.Hook{{Path: "/bin/dropped"}},
		},
		Annotations: map[string]string{"dropped": "yes"},
		Linux: &specs.Linux{
			UIDMappings: []specs.LinuxIDMapping{{HostID: 1000, Size: 1}},
			Sysctl:      map[string]string{"net.ipv4.ip_forward": "1", "kernel.msgmax": "8192"},
			Resources:   &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(10))}},
			CgroupsPath: "/dropped",
			Namespaces:  []specs.LinuxNamespace{{Type: specs.PIDNamespace}},
			Devices: []specs.LinuxDevice{
				{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: ptr(os.FileMode(0o600)), UID: ptr(uint32(0)), GID: ptr(uint32(7))},
				{Path: "/dev/sda", Type: "b", Major: 8, Minor: -1},
			},
			Seccomp:           &specs.LinuxSeccomp{DefaultAction: specs.ActAllow},
			RootfsPropagation: "rslave",
			MaskedPaths:       []string{"/proc/kcore"},
			ReadonlyPaths:     []string{"/proc/sys", "/proc/bus"},
			Personality:       &specs.LinuxPersonality{Domain: specs.PerLinux32, Flags: []specs.LinuxPersonalityFlag{"x"}},
		},
	}
}

func TestWireRoundTrip(t *testing.T) {
	full := fullSpec()
	tests := []struct {
		name string
		msg  *message
	}{
		{"bare message", &message{Type: msgReady}},
		{"error", &message{Type: msgError, Error: "mounts[3] (bind on /x): bind source: no such file"}},
		{"seccomp fd", &message{Type: msgSeccomp, Fd: 7}},
		{"create config", &message{Type: msgConfig, Config: &initConfig{
			ID: "c1", Bundle: "/b", Rootfs: "/b/rootfs", Spec: initSpec(full), Process: full.Process,
			NoPivot: true, NoNewKeyring: true, NewUserNS: true, NewMountNS: true, NewUTSNS: true, NewCgroupNS: true,
			ConsoleFd: 4, FifoFd: -1, PreserveFds: 2,
			CgroupMounts: []cgroups.MountSource{
				{Subdir: "cpu,cpuacct", HostPath: "/sys/fs/cgroup/cpu,cpuacct/c1", Symlinks: []string{"cpu", "cpuacct"}, Version: 1},
				{HostPath: "/sys/fs/cgroup/c1", Version: 2},
			},
			CgroupTasks: []string{"/sys/fs/cgroup/cpu,cpuacct/c1/tasks"},
			Seccomp:     []byte("SLSC0001\x00\x01"),
			State: &specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreated, Pid: 42,
				Bundle: "/b", Annotations: map[string]string{"k": "v"}},
		}}},
		{"exec config", &message{Type: msgConfig, Config: &initConfig{
			ID: "c1", Spec: initSpec(&specs.Spec{Root: &specs.Root{Path: "/r"}, Linux: &specs.Linux{}}),
			Process: &specs.Process{Args: []string{"ls"}, Cwd: "/"}, Exec: true, ConsoleFd: -1, FifoFd: -1,
			CgroupTaskFds: []int{5, 6},
		}}},
		{"empty config", &message{Type: msgConfig, Config: &initConfig{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := newSyncPipe(&buf).send(tt.msg); err != nil {
				t.Fatal(err)
			}
			got, err := newSyncPipe(&buf).recv()
			if tt.msg.Type == msgError {
				var ie *initError
				if !errors.As(err, &ie) || ie.msg != tt.msg.Error {
					t.Fatalf("recv = %v, want the init error %q", err, tt.msg.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.msg) {
				t.Fatalf("round trip changed the message:\n got %#v\nwant %#v", got, tt.msg)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes left after one message", buf.Len())
			}
		})
	}
}

// TestInitSpecKeepsWhatInitReads pins the fields initSpec keeps: the codec
// carries exactly these, so a field init starts to read must be added to
// both (the round trip above then covers it).
func TestInitSpecKeepsWhatInitReads(t *testing.T) {
	got := initSpec(fullSpec())
	full := fullSpec()
	want := &specs.Spec{
		Hostname: full.Hostname, Domainname: full.Domainname, Root: full.Root,
		Mounts: []specs.Mount{full.Mounts[0], {Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind", "ro"}}},
		Hooks:  &specs.Hooks{CreateContainer: full.Hooks.CreateContainer, StartContainer: full.Hooks.StartContainer},
		Linux: &specs.Linux{
			Devices: full.Linux.Devices, Sysctl: full.Linux.Sysctl, MaskedPaths: full.Linux.MaskedPaths,
			ReadonlyPaths: full.Linux.ReadonlyPaths, RootfsPropagation: full.Linux.RootfsPropagation,
			Personality: full.Linux.Personality,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("initSpec:\n got %#v\nwant %#v", got, want)
	}
}

// TestWireRejectsDamage feeds every truncation of a real frame, and a few
// corruptions, to the decoder: each must fail with an error, never panic
// or return a half message.
func TestWireRejectsDamage(t *testing.T) {
	full := fullSpec()
	payload := encodeMessage(&message{Type: msgConfig, Config: &initConfig{
		ID: "c1", Spec: initSpec(full), Process: full.Process, ConsoleFd: -1, FifoFd: -1,
		State: &specs.State{ID: "c1", Annotations: map[string]string{"a": "b"}},
	}})
	for n := 0; n < len(payload); n++ {
		if m, err := decodeMessage(payload[:n]); err == nil {
			t.Fatalf("decoding %d of %d bytes succeeded: %#v", n, len(payload), m)
		}
	}
	tests := []struct {
		name  string
		frame []byte
	}{
		{"trailing byte", append(append([]byte{}, payload...), 0)},
		{"bad bool", []byte{1, 'x', 0, 0, 2}},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"overlong varint", bytes.Repeat([]byte{0x80}, 11)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := decodeMessage(tt.frame); err == nil {
				t.Fatalf("decoded %#v", m)
			}
		})
	}
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    []byte
		wantErr error
	}{
		{"empty frame", []byte{0, 0, 0, 0}, []byte{}, nil},
		{"frame", []byte{2, 0, 0, 0, 'h', 'i'}, []byte("hi"), nil},
		{"closed between frames", nil, nil, io.EOF},
		{"short header", []byte{2, 0}, nil, io.ErrUnexpectedEOF},
		{"short body", []byte{3, 0, 0, 0, 'h'}, nil, io.ErrUnexpectedEOF},
		{"too large", []byte{0xff, 0xff, 0xff, 0xff}, nil, errWire},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readFrame(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !bytes.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSyncPipeEOF(t *testing.T) {
	if _, err := newSyncPipe(&bytes.Buffer{}).recv(); err != io.ErrUnexpectedEOF {
		t.Fatalf("recv on a closed pipe = %v, want io.ErrUnexpectedEOF", err)
	}
	if err := newSyncPipe(&bytes.Buffer{}).waitExec(); err != nil {
		t.Fatalf("waitExec on a closed pipe = %v, want nil (exec happened)", err)
	}
}

// FuzzDecodeMessage feeds arbitrary frame payloads to the decoder: it must
// return an error or a message, never panic or allocate without bound, and
// a message it accepts must survive another encode and decode unchanged.
func FuzzDecodeMessage(f *testing.F) {
	full := fullSpec()
	for _, m := range []*message{
		{Type: msgReady},
		{Type: msgError, Error: "boom"},
		{Type: msgConfig, Config: &initConfig{ID: "c1", Spec: initSpec(full), Process: full.Process,
			CgroupMounts: []cgroups.MountSource{{Subdir: "memory", HostPath: "/sys/fs/cgroup/memory/c1", Version: 1}},
			CgroupTasks:  []string{"/sys/fs/cgroup/memory/c1/tasks"}, CgroupTaskFds: []int{5},
			State: &specs.State{ID: "c1", Pid: 42}}},
	} {
		f.Add(encodeMessage(m))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := decodeMessage(p)
		if err != nil {
			return
		}
		again, err := decodeMessage(encodeMessage(m))
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("re-encoding changed the message:\n got %#v\nwant %#v", again, m)
		}
	})
}
