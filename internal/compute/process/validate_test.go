package process

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/errdefs"
)

// validSpec is a minimal spec validateSpec accepts; tests break one field.
func validSpec() *specs.Spec {
	timeout := 5
	return &specs.Spec{
		Version:  "1.0.2",
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "box",
		Process: &specs.Process{
			Args: []string{"sh"},
			Cwd:  "/",
			User: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5, 6}},
			Capabilities: &specs.LinuxCapabilities{
				Bounding: []string{"CAP_CHOWN", "CAP_KILL"}, Effective: []string{"CAP_KILL"},
				Permitted: []string{"CAP_KILL"}, Ambient: []string{"CAP_KILL"},
			},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096}},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
		},
		Hooks: &specs.Hooks{
			CreateRuntime: []specs.Hook{{Path: "/bin/true", Timeout: &timeout}},
			Poststop:      []specs.Hook{{Path: "/bin/true"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
			},
			Devices:           []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}},
			Sysctl:            map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "10"},
			MaskedPaths:       []string{"/proc/kcore"},
			ReadonlyPaths:     []string{"/proc/sys"},
			RootfsPropagation: "rslave",
			Personality:       &specs.LinuxPersonality{Domain: specs.PerLinux},
		},
	}
}

func withoutNamespace(s *specs.Spec, typ specs.LinuxNamespaceType) {
	var keep []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type != typ {
			keep = append(keep, n)
		}
	}
	s.Linux.Namespaces = keep
}

func TestValidateSpecValid(t *testing.T) {
	if err := validateSpec(validSpec()); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	// A new user namespace with both mappings.
	s := validSpec()
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	if err := validateSpec(s); err != nil {
		t.Fatalf("user-namespace spec refused: %v", err)
	}
	// A joined user namespace needs no mappings.
	s = validSpec()
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/1/ns/user"})
	if err := validateSpec(s); err != nil {
		t.Fatalf("joined user-namespace spec refused: %v", err)
	}
	// Lower-case capability and rlimit names are accepted.
	s = validSpec()
	s.Process.Capabilities.Bounding = []string{"cap_chown"}
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "rlimit_core", Soft: 0, Hard: 0}}
	if err := validateSpec(s); err != nil {
		t.Fatalf("lower-case names refused: %v", err)
	}
}

func TestValidateSpecErrors(t *testing.T) {
	zero := 0
	neg := -3
	tests := []struct {
		name   string
		mutate func(s *specs.Spec)
		nilArg bool
		want   string // the error must mention this
		is     error  // and wrap this
	}{
		{name: "nil spec", nilArg: true, want: "config.json", is: errdefs.ErrInvalidArgument},
		{name: "ociVersion missing", mutate: func(s *specs.Spec) { s.Version = "" }, want: "ociVersion", is: errdefs.ErrInvalidArgument},
		{name: "ociVersion 2.0", mutate: func(s *specs.Spec) { s.Version = "2.0" }, want: "ociVersion", is: errdefs.ErrInvalidArgument},
		{name: "ociVersion 0.9", mutate: func(s *specs.Spec) { s.Version = "0.9.0" }, want: `"0.9.0"`, is: errdefs.ErrInvalidArgument},
		{name: "root missing", mutate: func(s *specs.Spec) { s.Root = nil }, want: "root.path", is: errdefs.ErrInvalidArgument},
		{name: "root.path empty", mutate: func(s *specs.Spec) { s.Root.Path = "" }, want: "root.path", is: errdefs.ErrInvalidArgument},
		{name: "process missing", mutate: func(s *specs.Spec) { s.Process = nil }, want: "process", is: errdefs.ErrInvalidArgument},
		{name: "args nil", mutate: func(s *specs.Spec) { s.Process.Args = nil }, want: "process.args", is: errdefs.ErrInvalidArgument},
		{name: "args[0] empty", mutate: func(s *specs.Spec) { s.Process.Args = []string{""} }, want: "process.args", is: errdefs.ErrInvalidArgument},
		{name: "cwd empty", mutate: func(s *specs.Spec) { s.Process.Cwd = "" }, want: "process.cwd", is: errdefs.ErrInvalidArgument},
		{name: "cwd relative", mutate: func(s *specs.Spec) { s.Process.Cwd = "home/user" }, want: "process.cwd", is: errdefs.ErrInvalidArgument},
		{name: "linux missing", mutate: func(s *specs.Spec) { s.Linux = nil }, want: "linux", is: errdefs.ErrInvalidArgument},
		{
			name:   "hostname without uts",
			mutate: func(s *specs.Spec) { withoutNamespace(s, specs.UTSNamespace) },
			want:   "hostname", is: errdefs.ErrInvalidArgument,
		},
		{
			name: "domainname without uts",
			mutate: func(s *specs.Spec) {
				s.Hostname = ""
				s.Domainname = "example"
				withoutNamespace(s, specs.UTSNamespace)
			},
			want: "domainname", is: errdefs.ErrInvalidArgument,
		},
		{
			name: "uid mappings without user ns",
			mutate: func(s *specs.Spec) {
				s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
			},
			want: "linux.uidMappings", is: errdefs.ErrInvalidArgument,
		},
		{
			name: "gid mappings without user ns",
			mutate: func(s *specs.Spec) {
				s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
			},
			want: "linux.uidMappings", is: errdefs.ErrInvalidArgument,
		},
		{
			name: "mappings with a joined user ns",
			mutate: func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/1/ns/user"})
				s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
				s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
			},
			want: "linux.uidMappings", is: errdefs.ErrInvalidArgument,
		},
		{
			name: "user ns without mappings",
			mutate: func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			},
			want: "linux.uidMappings/gidMappings", is: errdefs.ErrInvalidArgument,
		},
		{
			name: "user ns with uid mappings only",
			mutate: func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
				s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
			},
			want: "gidMappings", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "mount destination relative",
			mutate: func(s *specs.Spec) { s.Mounts = append(s.Mounts, specs.Mount{Destination: "tmp", Type: "tmpfs"}) },
			want:   "mounts[2].destination", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "mount destination empty",
			mutate: func(s *specs.Spec) { s.Mounts[0].Destination = "" },
			want:   "mounts[0].destination", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "idmap mount",
			mutate: func(s *specs.Spec) { s.Mounts[1].Options = append(s.Mounts[1].Options, "idmap") },
			want:   "mounts[1].options", is: errdefs.ErrNotImplemented,
		},
		{
			name:   "masked path relative",
			mutate: func(s *specs.Spec) { s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "proc/keys") },
			want:   "linux.maskedPaths[1]", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "readonly path relative",
			mutate: func(s *specs.Spec) { s.Linux.ReadonlyPaths = []string{"proc/sys"} },
			want:   "linux.readonlyPaths[0]", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "device path relative",
			mutate: func(s *specs.Spec) { s.Linux.Devices[0].Path = "dev/fuse" },
			want:   "linux.devices[0].path", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "device type x",
			mutate: func(s *specs.Spec) { s.Linux.Devices[0].Type = "x" },
			want:   "linux.devices[0].type", is: errdefs.ErrInvalidArgument,
		},
		{
			name: "unknown rlimit",
			mutate: func(s *specs.Spec) {
				s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_FOO"})
			},
			want: "process.rlimits[1].type", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "soft above hard",
			mutate: func(s *specs.Spec) { s.Process.Rlimits[0].Soft = 8192 },
			want:   "process.rlimits[0]", is: errdefs.ErrInvalidArgument,
		},
		{
			name: "rlimit twice",
			mutate: func(s *specs.Spec) {
				s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "rlimit_nofile", Soft: 1, Hard: 1})
			},
			want: "process.rlimits[1]", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "unknown capability",
			mutate: func(s *specs.Spec) { s.Process.Capabilities.Effective = []string{"CAP_KILL", "CAP_FOO"} },
			want:   "process.capabilities.effective[1]", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "unknown ambient capability",
			mutate: func(s *specs.Spec) { s.Process.Capabilities.Ambient = []string{"CAP_FOO"} },
			want:   "process.capabilities.ambient[0]", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "sysctl not namespaced",
			mutate: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.randomize_va_space": "0"} },
			want:   "kernel.randomize_va_space", is: errdefs.ErrInvalidArgument,
		},
		{
			name: "net sysctl without network namespace",
			mutate: func(s *specs.Spec) {
				s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
				withoutNamespace(s, specs.NetworkNamespace)
			},
			want: "network", is: errdefs.ErrInvalidArgument,
		},
		{
			name: "ipc sysctl without ipc namespace",
			mutate: func(s *specs.Spec) {
				s.Linux.Sysctl = map[string]string{"kernel.shmmax": "1"}
				withoutNamespace(s, specs.IPCNamespace)
			},
			want: "ipc", is: errdefs.ErrInvalidArgument,
		},
		{
			name: "uts sysctl without uts namespace",
			mutate: func(s *specs.Spec) {
				s.Hostname = ""
				s.Linux.Sysctl = map[string]string{"kernel.domainname": "x"}
				withoutNamespace(s, specs.UTSNamespace)
			},
			want: "uts", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "sysctl key with slash",
			mutate: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.ipv4/../../kernel/x": "1"} },
			want:   "bad key", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "sysctl key with dots",
			mutate: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net..x": "1"} },
			want:   "bad key", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "unknown rootfs propagation",
			mutate: func(s *specs.Spec) { s.Linux.RootfsPropagation = "sideways" },
			want:   "linux.rootfsPropagation", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "intel rdt",
			mutate: func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{} },
			want:   "linux.intelRdt", is: errdefs.ErrNotImplemented,
		},
		{
			name:   "unknown personality",
			mutate: func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: "LINUX_FOO"} },
			want:   "linux.personality.domain", is: errdefs.ErrInvalidArgument,
		},
		{
			name: "hook path relative",
			//lint:ignore SA1019 prestart is still part of the runtime spec
			mutate: func(s *specs.Spec) { s.Hooks.Prestart = []specs.Hook{{Path: "bin/hook"}} },
			want:   "hooks.prestart[0].path", is: errdefs.ErrInvalidArgument,
		},
		{
			name: "hook path relative, second entry",
			mutate: func(s *specs.Spec) {
				s.Hooks.StartContainer = []specs.Hook{{Path: "/bin/true"}, {Path: "true"}}
			},
			want: "hooks.startContainer[1].path", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "hook timeout 0",
			mutate: func(s *specs.Spec) { s.Hooks.Poststop[0].Timeout = &zero },
			want:   "hooks.poststop[0].timeout", is: errdefs.ErrInvalidArgument,
		},
		{
			name:   "hook timeout negative",
			mutate: func(s *specs.Spec) { s.Hooks.CreateContainer = []specs.Hook{{Path: "/x", Timeout: &neg}} },
			want:   "hooks.createContainer[0].timeout", is: errdefs.ErrInvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *specs.Spec
			if !tt.nilArg {
				s = validSpec()
				tt.mutate(s)
			}
			err := validateSpec(s)
			if err == nil {
				t.Fatalf("validateSpec accepted the spec; want an error mentioning %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %v", err, tt.is)
			}
		})
	}
}

func TestValidateProcessExec(t *testing.T) {
	if err := validateProcess(nil, true); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("validateProcess(nil) = %v, want ErrInvalidArgument", err)
	}
	p := &specs.Process{Args: []string{"ls"}, Cwd: "/"}
	if err := validateProcess(p, true); err != nil {
		t.Errorf("validateProcess(%+v) = %v", p, err)
	}
}

func TestCheckSysctl(t *testing.T) {
	all := []specs.LinuxNamespace{{Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}}
	tests := []struct {
		key string
		ns  []specs.LinuxNamespace
		ok  bool
	}{
		{"net.core.somaxconn", all, true},
		{"net.core.somaxconn", nil, false},
		{"fs.mqueue.queues_max", all, true},
		{"fs.mqueue.queues_max", all[:1], false},
		{"kernel.msgmax", all, true},
		{"kernel.msgmnb", all, true},
		{"kernel.msgmni", all, true},
		{"kernel.sem", all, true},
		{"kernel.shmall", all, true},
		{"kernel.shmmax", all, true},
		{"kernel.shmmni", all, true},
		{"kernel.shm_rmid_forced", all, true},
		{"kernel.hostname", all, true},
		{"kernel.domainname", all[:2], false},
		{"kernel.randomize_va_space", all, false},
		{"vm.overcommit_memory", all, false},
		{"fs.file-max", all, false},
		{"", all, false},
		{"net", all, false}, // no "net." prefix: not namespaced
		{"net.ipv4/conf", all, false},
		{"net.ipv4..conf", all, false},
	}
	for _, tt := range tests {
		err := checkSysctl(tt.key, tt.ns)
		if (err == nil) != tt.ok {
			t.Errorf("checkSysctl(%q, %d namespaces) = %v, want ok=%v", tt.key, len(tt.ns), err, tt.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("checkSysctl(%q): %v does not wrap ErrInvalidArgument", tt.key, err)
		}
	}
}

func TestMergeResources(t *testing.T) {
	limit := int64(1 << 20)
	pids := int64(10)
	shares := uint64(512)
	s := &specs.Spec{Linux: &specs.Linux{}}
	mergeResources(s, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}})
	if s.Linux.Resources == nil || s.Linux.Resources.Memory == nil || *s.Linux.Resources.Memory.Limit != limit {
		t.Fatalf("memory not merged: %+v", s.Linux.Resources)
	}
	mergeResources(s, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &pids}, CPU: &specs.LinuxCPU{Shares: &shares}})
	r := s.Linux.Resources
	if r.Memory == nil || *r.Memory.Limit != limit {
		t.Errorf("an update without memory dropped the memory limit: %+v", r.Memory)
	}
	if r.Pids == nil || *r.Pids.Limit != pids || r.CPU == nil || *r.CPU.Shares != shares {
		t.Errorf("pids/cpu not merged: %+v", r)
	}
	mergeResources(s, &specs.LinuxResources{})
	if r.Memory == nil || r.Pids == nil || r.CPU == nil {
		t.Errorf("an empty update cleared limits: %+v", r)
	}
}

func FuzzValidateSpec(f *testing.F) {
	seed, err := json.Marshal(validSpec())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"args":["sh"],"cwd":"/"},"linux":{}}`))
	f.Add([]byte(`{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"args":["sh"],"cwd":"/","capabilities":{"bounding":["CAP_FOO"]}},"linux":{}}`))
	f.Add([]byte(`{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"args":["sh"],"cwd":"/"},"linux":{"personality":{}},"hooks":{"prestart":[{"path":"/x","timeout":0}]}}`))
	f.Add([]byte(`{"ociVersion":"1.2.0","root":{"path":"r"},"process":{"args":["sh"],"cwd":"/"},"linux":{"sysctl":{"net.a":"1"},"namespaces":[{"type":"user"}],"uidMappings":[{}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s specs.Spec
		if err := json.Unmarshal(data, &s); err != nil {
			return
		}
		_ = validateSpec(&s)
	})
}
