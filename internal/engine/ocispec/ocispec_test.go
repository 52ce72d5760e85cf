package ocispec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestProcessArgs(t *testing.T) {
	img := &imagespec.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}}
	for _, tt := range []struct {
		name string
		img  *imagespec.ImageConfig
		cfg  container.Config
		want []string
	}{
		{"image only", img, container.Config{}, []string{"/entry", "default"}},
		{"cmd replaces cmd", img, container.Config{Cmd: []string{"x"}}, []string{"/entry", "x"}},
		{"entrypoint drops image cmd", img, container.Config{Entrypoint: []string{"/other"}}, []string{"/other"}},
		{"empty entrypoint clears it", img, container.Config{Entrypoint: []string{""}, Cmd: []string{"sh"}}, []string{"sh"}},
		{"no image", &imagespec.ImageConfig{}, container.Config{Cmd: []string{"echo", "hi"}}, []string{"echo", "hi"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := processArgs(tt.img, &tt.cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("processArgs = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "PATH=/img"}, []string{"A=2", "B=3"}, true, "h")
	want := []string{"A=2", "PATH=/img", "B=3", "TERM=xterm", "HOSTNAME=h"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mergeEnv = %q, want %q", got, want)
	}
	if got := mergeEnv(nil, nil, false, ""); !reflect.DeepEqual(got, []string{defaultPath}) {
		t.Errorf("mergeEnv of nothing = %q", got)
	}
}

func TestCapabilities(t *testing.T) {
	for _, tt := range []struct {
		name       string
		add, drop  []string
		privileged bool
		has, lacks []string
		err        bool
	}{
		{name: "default", has: []string{"CAP_CHOWN", "CAP_KILL"}, lacks: []string{"CAP_SYS_ADMIN"}},
		{name: "add short lower-case", add: []string{"sys_admin"}, has: []string{"CAP_SYS_ADMIN"}},
		{name: "drop", drop: []string{"CAP_KILL"}, lacks: []string{"CAP_KILL"}},
		{name: "drop all add one", drop: []string{"all"}, add: []string{"NET_BIND_SERVICE"}, has: []string{"CAP_NET_BIND_SERVICE"}, lacks: []string{"CAP_CHOWN"}},
		{name: "add all", add: []string{"ALL"}, has: []string{"CAP_SYS_ADMIN", "CAP_BPF"}},
		{name: "privileged", privileged: true, has: []string{"CAP_SYS_ADMIN"}},
		{name: "unknown", add: []string{"CAP_FLY"}, err: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := capabilities(tt.add, tt.drop, tt.privileged)
			if tt.err {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("capabilities: err %v, want invalid argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.has {
				if !contains(got, c) {
					t.Errorf("missing %s in %q", c, got)
				}
			}
			for _, c := range tt.lacks {
				if contains(got, c) {
					t.Errorf("unexpected %s in %q", c, got)
				}
			}
		})
	}
}

// rootfsWithUsers makes a rootfs with /etc/passwd and /etc/group.
func rootfsWithUsers(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", "root:x:0:0:root:/root:/bin/sh\nsilo:x:1000:1000::/home/silo:/bin/sh\n")
	write("group", "root:x:0:\nsilo:x:1000:\nusers:x:100:silo\nwheel:x:10:\n")
	return root
}

func TestResolveUser(t *testing.T) {
	root := rootfsWithUsers(t)
	for _, tt := range []struct {
		spec     string
		groupAdd []string
		want     specs.User
		err      bool
	}{
		{spec: "", want: specs.User{}},
		{spec: "silo", want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{100}}},
		{spec: "1000", want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{100}}},
		{spec: "silo:wheel", want: specs.User{UID: 1000, GID: 10}},
		{spec: "4242:4343", want: specs.User{UID: 4242, GID: 4343}},
		{spec: "silo", groupAdd: []string{"wheel", "7"}, want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{100, 10, 7}}},
		{spec: "nobody", err: true},
		{spec: "silo:nogroup", err: true},
	} {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := resolveUser(root, tt.spec, tt.groupAdd)
			if tt.err {
				if err == nil {
					t.Fatalf("resolveUser(%q) = %+v, want an error", tt.spec, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("resolveUser(%q) = %+v, want %+v", tt.spec, got, tt.want)
			}
		})
	}
}

// A hostile image whose /etc/passwd is a symlink out of the rootfs must
// not make us read the host's file.
func TestResolveUserSymlinkOutside(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "passwd"), []byte("hostuser:x:4711:4711::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "passwd"), filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if u, err := resolveUser(root, "hostuser", nil); err == nil {
		t.Fatalf("resolved %+v through a symlink out of the rootfs", u)
	}
}

func TestGenerate(t *testing.T) {
	root := rootfsWithUsers(t)
	mem, pids := int64(64<<20), int64(100)
	in := &Input{
		ID:     "0123456789abcdef",
		Rootfs: root,
		Image:  &imagespec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"FOO=bar"}, WorkingDir: "/srv"},
		Config: &container.Config{Cmd: []string{"echo", "hi"}, User: "silo", Tty: true},
		Mounts: []specs.Mount{
			{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
			{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "ro"}},
		},
		Host: &container.HostConfig{
			CapAdd:      []string{"NET_ADMIN"},
			SecurityOpt: []string{"no-new-privileges"},
			Resources:   container.Resources{Memory: mem, NanoCPUs: 1500000000, PidsLimit: &pids},
		},
	}
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Process
	if !reflect.DeepEqual(p.Args, []string{"echo", "hi"}) || p.Cwd != "/srv" || !p.Terminal || !p.NoNewPrivileges {
		t.Errorf("process = %+v", p)
	}
	if p.User.UID != 1000 || s.Hostname != "0123456789ab" {
		t.Errorf("user %+v hostname %q", p.User, s.Hostname)
	}
	if len(p.Capabilities.Bounding) == 0 || len(p.Capabilities.Effective) != 0 {
		t.Errorf("non-root capabilities: %+v", p.Capabilities)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != mem || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 || *r.Pids.Limit != 100 {
		t.Errorf("resources: %+v %+v %+v", r.Memory, r.CPU, r.Pids)
	}
	if s.Linux.Seccomp == nil || len(s.Linux.Seccomp.Syscalls) == 0 {
		t.Error("no default seccomp profile")
	}
	if s.Linux.CgroupsPath != "/silo/0123456789abcdef" {
		t.Errorf("cgroupsPath %q", s.Linux.CgroupsPath)
	}
	dests := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		dests[m.Destination] = m
	}
	if dests["/run"].Type != "tmpfs" || dests["/data"].Source != "/srv/data" || !contains(dests["/data"].Options, "ro") {
		t.Errorf("mounts: %+v", s.Mounts)
	}
}

func TestGenerateErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   Input
	}{
		{"no command", Input{ID: "x"}},
		{"relative workdir", Input{ID: "x", Config: &container.Config{Cmd: []string{"a"}, WorkingDir: "rel"}}},
		{"bad security opt", Input{ID: "x", Config: &container.Config{Cmd: []string{"a"}}, Host: &container.HostConfig{SecurityOpt: []string{"magic=1"}}}},
		{"relative mount destination", Input{ID: "x", Config: &container.Config{Cmd: []string{"a"}}, Mounts: []specs.Mount{{Destination: "data", Type: "tmpfs"}}}},
		{"swap below memory", Input{ID: "x", Config: &container.Config{Cmd: []string{"a"}}, Host: &container.HostConfig{Resources: container.Resources{Memory: 100 << 20, MemorySwap: 50 << 20}}}},
		{"memory below 6MB", Input{ID: "x", Config: &container.Config{Cmd: []string{"a"}}, Host: &container.HostConfig{Resources: container.Resources{Memory: 1 << 20}}}},
		{"reservation below 6MB", Input{ID: "x", Config: &container.Config{Cmd: []string{"a"}}, Host: &container.HostConfig{Resources: container.Resources{MemoryReservation: 4096}}}},
		{"blkio weight out of range", Input{ID: "x", Config: &container.Config{Cmd: []string{"a"}}, Host: &container.HostConfig{Resources: container.Resources{BlkioWeight: 5}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := Generate(&tt.in); err == nil {
				t.Fatalf("Generate succeeded: %+v", s.Process)
			}
		})
	}
}
