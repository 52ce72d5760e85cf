package process

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
)

// requireNsFile skips when the running kernel/sandbox does not expose p.
func requireNsFile(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not available: %v", p, err)
	}
}

func TestPlanNamespaces(t *testing.T) {
	for _, p := range []string{"/proc/self/ns/net", "/proc/self/ns/uts", "/proc/self/ns/user", "/proc/self/ns/mnt", "/proc/self/ns/ipc"} {
		requireNsFile(t, p)
	}
	notNs := "/etc/hostname"
	if _, err := os.Stat(notNs); err != nil {
		notNs = filepath.Join(t.TempDir(), "hostname")
		if err := os.WriteFile(notNs, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ns := func(typ specs.LinuxNamespaceType, path string) specs.LinuxNamespace {
		return specs.LinuxNamespace{Type: typ, Path: path}
	}
	tests := []struct {
		name   string
		ns     []specs.LinuxNamespace
		want   *nsPlan
		errHas []string // substrings of the error; nil means success
		errIs  error
		errNot error
	}{
		{name: "none", ns: nil, want: &nsPlan{}},
		{
			name: "new pid net mnt",
			ns:   []specs.LinuxNamespace{ns(specs.PIDNamespace, ""), ns(specs.NetworkNamespace, ""), ns(specs.MountNamespace, "")},
			want: &nsPlan{cloneFlags: unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWNS},
		},
		{
			name: "all new",
			ns: []specs.LinuxNamespace{
				ns(specs.PIDNamespace, ""), ns(specs.NetworkNamespace, ""), ns(specs.MountNamespace, ""),
				ns(specs.IPCNamespace, ""), ns(specs.UTSNamespace, ""), ns(specs.UserNamespace, ""),
				ns(specs.CgroupNamespace, ""), ns(specs.TimeNamespace, ""),
			},
			// The time namespace is made on the parent's thread, never by clone.
			want: &nsPlan{cloneFlags: unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWNS | unix.CLONE_NEWIPC |
				unix.CLONE_NEWUTS | unix.CLONE_NEWUSER | unix.CLONE_NEWCGROUP, unshare: unix.CLONE_NEWTIME},
		},
		{
			name:   "duplicate",
			ns:     []specs.LinuxNamespace{ns(specs.PIDNamespace, ""), ns(specs.MountNamespace, ""), ns(specs.PIDNamespace, "")},
			errHas: []string{"linux.namespaces[2]", "pid", "twice"},
			errIs:  errdefs.ErrInvalidArgument,
		},
		{
			name:   "duplicate new and joined",
			ns:     []specs.LinuxNamespace{ns(specs.NetworkNamespace, "/proc/self/ns/net"), ns(specs.NetworkNamespace, "")},
			errHas: []string{"linux.namespaces[1]", "twice"},
			errIs:  errdefs.ErrInvalidArgument,
		},
		{
			name:   "unknown type",
			ns:     []specs.LinuxNamespace{ns(specs.PIDNamespace, ""), ns("foo", "")},
			errHas: []string{"linux.namespaces[1].type", `"foo"`},
			errIs:  errdefs.ErrInvalidArgument,
		},
		{
			name: "join network",
			ns:   []specs.LinuxNamespace{ns(specs.PIDNamespace, ""), ns(specs.NetworkNamespace, "/proc/self/ns/net")},
			want: &nsPlan{cloneFlags: unix.CLONE_NEWPID, threadJoins: []string{"/proc/self/ns/net"}},
		},
		{
			name: "join uts and ipc on the thread, in order",
			ns:   []specs.LinuxNamespace{ns(specs.UTSNamespace, "/proc/self/ns/uts"), ns(specs.IPCNamespace, "/proc/self/ns/ipc")},
			want: &nsPlan{threadJoins: []string{"/proc/self/ns/uts", "/proc/self/ns/ipc"}},
		},
		{
			name:   "wrong type path",
			ns:     []specs.LinuxNamespace{ns(specs.PIDNamespace, ""), ns(specs.NetworkNamespace, "/proc/self/ns/uts")},
			errHas: []string{"linux.namespaces[1].path", "another type"},
			errIs:  errdefs.ErrInvalidArgument,
		},
		{
			name:   "not a namespace file",
			ns:     []specs.LinuxNamespace{ns(specs.NetworkNamespace, notNs)},
			errHas: []string{"linux.namespaces[0].path", "not a namespace file"},
		},
		{
			name:   "missing path",
			ns:     []specs.LinuxNamespace{ns(specs.NetworkNamespace, "/nonexistent/ns/net")},
			errHas: []string{"linux.namespaces[0].path", "open namespace"},
			errIs:  os.ErrNotExist,
		},
		{
			name: "join mount in the child",
			ns:   []specs.LinuxNamespace{ns(specs.MountNamespace, "/proc/self/ns/mnt"), ns(specs.PIDNamespace, "")},
			want: &nsPlan{cloneFlags: unix.CLONE_NEWPID, childJoins: []string{"mnt:/proc/self/ns/mnt"}},
		},
		{
			name: "join user moves new namespaces to unshare",
			ns: []specs.LinuxNamespace{
				ns(specs.NetworkNamespace, ""), ns(specs.UserNamespace, "/proc/self/ns/user"),
				ns(specs.IPCNamespace, ""), ns(specs.MountNamespace, ""),
			},
			want: &nsPlan{
				childJoins: []string{"user:/proc/self/ns/user"},
				unshare:    unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWNS,
			},
		},
		{
			name: "join user then mount, user first",
			ns: []specs.LinuxNamespace{
				ns(specs.MountNamespace, "/proc/self/ns/mnt"), ns(specs.UserNamespace, "/proc/self/ns/user"),
				ns(specs.UTSNamespace, "/proc/self/ns/uts"),
			},
			want: &nsPlan{
				threadJoins: []string{"/proc/self/ns/uts"},
				childJoins:  []string{"user:/proc/self/ns/user", "mnt:/proc/self/ns/mnt"},
			},
		},
		{
			name:   "join user with a new pid namespace",
			ns:     []specs.LinuxNamespace{ns(specs.UserNamespace, "/proc/self/ns/user"), ns(specs.PIDNamespace, "")},
			errHas: []string{"linux.namespaces", "pid namespace"},
			errIs:  errdefs.ErrNotImplemented,
			errNot: errdefs.ErrInvalidArgument,
		},
		{
			name: "join user with a joined pid namespace is fine",
			ns:   []specs.LinuxNamespace{ns(specs.UserNamespace, "/proc/self/ns/user"), ns(specs.PIDNamespace, "/proc/self/ns/pid")},
			want: &nsPlan{
				threadJoins: []string{"/proc/self/ns/pid"},
				childJoins:  []string{"user:/proc/self/ns/user"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planNamespaces(tt.ns)
			if tt.errHas == nil {
				if err != nil {
					t.Fatalf("planNamespaces: unexpected error %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("planNamespaces\n got  %+v\n want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("planNamespaces: no error, plan %+v", got)
			}
			if got != nil {
				t.Errorf("planNamespaces returned a plan with an error: %+v", got)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if tt.errIs != nil && !errors.Is(err, tt.errIs) {
				t.Errorf("error %q does not wrap %v", err, tt.errIs)
			}
			if tt.errNot != nil && errors.Is(err, tt.errNot) {
				t.Errorf("error %q wraps %v", err, tt.errNot)
			}
		})
	}
}

// Every namespace file of /proc/self/ns is accepted for its own type and
// refused for every other.
func TestCheckNamespacePathTypes(t *testing.T) {
	for typ, info := range nsFlags {
		p := "/proc/self/ns/" + info.proc
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := checkNamespacePath(p, info.flag); err != nil {
			t.Errorf("%s as %s: %v", p, typ, err)
		}
		for other, oinfo := range nsFlags {
			if other == typ {
				continue
			}
			if err := checkNamespacePath(p, oinfo.flag); err == nil {
				t.Errorf("%s accepted as %s", p, other)
			}
		}
	}
}

func TestNsPlanEnv(t *testing.T) {
	tests := []struct {
		name string
		plan nsPlan
		want []string
	}{
		{name: "empty", plan: nsPlan{}, want: nil},
		{name: "clone and thread joins only", plan: nsPlan{cloneFlags: unix.CLONE_NEWPID, threadJoins: []string{"/x"}}, want: nil},
		{
			name: "one join",
			plan: nsPlan{childJoins: []string{"mnt:/proc/1/ns/mnt"}},
			want: []string{envNsJoin + "=mnt:/proc/1/ns/mnt"},
		},
		{
			name: "joins comma separated, unshare decimal",
			plan: nsPlan{
				childJoins: []string{"user:/proc/1/ns/user", "mnt:/proc/1/ns/mnt"},
				unshare:    unix.CLONE_NEWNET | unix.CLONE_NEWIPC,
			},
			want: []string{
				envNsJoin + "=user:/proc/1/ns/user,mnt:/proc/1/ns/mnt",
				fmt.Sprintf("%s=%d", envNsUnshare, unix.CLONE_NEWNET|unix.CLONE_NEWIPC),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.plan.env(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("env() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestNsEnvNamesMatchConstructor: runsilo-helper's constructor reads the
// same environment the Go init does.
func TestNsEnvNamesMatchConstructor(t *testing.T) {
	src, err := os.ReadFile("nsenter/nsenter.c")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{envNsJoin, envNsUnshare, envTimeOffsets} {
		if !strings.Contains(string(src), `getenv("`+name+`")`) {
			t.Errorf("nsenter.c does not read %s", name)
		}
	}
}

func TestNsPlanNeedsHelper(t *testing.T) {
	tests := []struct {
		joins []string
		want  bool
	}{
		{nil, false},
		{[]string{"mnt:/proc/1/ns/mnt"}, false},
		{[]string{"user:/proc/1/ns/user", "mnt:/proc/1/ns/mnt"}, true},
		{[]string{"time:/proc/1/ns/time"}, true},
	}
	for _, tt := range tests {
		if got := (&nsPlan{childJoins: tt.joins}).needsHelper(); got != tt.want {
			t.Errorf("needsHelper(%q) = %v, want %v", tt.joins, got, tt.want)
		}
	}
}

func TestNsPlanEnvFromPlan(t *testing.T) {
	requireNsFile(t, "/proc/self/ns/user")
	p, err := planNamespaces([]specs.LinuxNamespace{
		{Type: specs.UserNamespace, Path: "/proc/self/ns/user"}, {Type: specs.UTSNamespace},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		envNsJoin + "=user:/proc/self/ns/user",
		fmt.Sprintf("%s=%d", envNsUnshare, unix.CLONE_NEWUTS),
	}
	if got := p.env(); !reflect.DeepEqual(got, want) {
		t.Errorf("env() = %q, want %q", got, want)
	}
}

func TestHasNamespace(t *testing.T) {
	ns := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"}}
	for typ, want := range map[specs.LinuxNamespaceType]bool{
		specs.PIDNamespace: true, specs.NetworkNamespace: true, specs.UTSNamespace: false, specs.UserNamespace: false,
	} {
		if got := hasNamespace(ns, typ); got != want {
			t.Errorf("hasNamespace(%s) = %v, want %v", typ, got, want)
		}
	}
	if hasNamespace(nil, specs.PIDNamespace) {
		t.Error("hasNamespace(nil) = true")
	}
}
