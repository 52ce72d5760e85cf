package process

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []string
		want mountOpts
	}{
		{name: "none", opts: nil, want: mountOpts{}},
		{name: "ro", opts: []string{"ro"}, want: mountOpts{flags: unix.MS_RDONLY}},
		{name: "rw clears", opts: []string{"rw"}, want: mountOpts{}},
		{name: "ro then rw", opts: []string{"ro", "rw"}, want: mountOpts{}},
		{
			name: "nosuid nodev noexec",
			opts: []string{"nosuid", "nodev", "noexec"},
			want: mountOpts{flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		},
		{
			name: "nosuid then suid",
			opts: []string{"nosuid", "noexec", "suid"},
			want: mountOpts{flags: unix.MS_NOEXEC},
		},
		{
			name: "exec dev clear",
			opts: []string{"noexec", "nodev", "exec", "dev"},
			want: mountOpts{},
		},
		{name: "defaults is a no-op", opts: []string{"defaults"}, want: mountOpts{}},
		{name: "bind", opts: []string{"bind"}, want: mountOpts{flags: unix.MS_BIND, bind: true}},
		{
			name: "rbind is recursive",
			opts: []string{"rbind"},
			want: mountOpts{flags: unix.MS_BIND | unix.MS_REC, bind: true, recursive: true},
		},
		{
			name: "bind then rbind stays recursive",
			opts: []string{"bind", "rbind", "bind"},
			want: mountOpts{flags: unix.MS_BIND | unix.MS_REC, bind: true, recursive: true},
		},
		{
			name: "bind ro nosuid",
			opts: []string{"bind", "ro", "nosuid"},
			want: mountOpts{flags: unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID, bind: true},
		},
		{
			name: "atime family",
			opts: []string{"noatime", "nodiratime", "strictatime", "relatime"},
			want: mountOpts{flags: unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_STRICTATIME | unix.MS_RELATIME},
		},
		{
			name: "remount sync lazytime",
			opts: []string{"remount", "sync", "lazytime", "dirsync", "mand", "silent", "iversion"},
			want: mountOpts{flags: unix.MS_REMOUNT | unix.MS_SYNCHRONOUS | unix.MS_LAZYTIME | unix.MS_DIRSYNC |
				unix.MS_MANDLOCK | unix.MS_SILENT | unix.MS_I_VERSION},
		},
		{
			name: "propagation list keeps order",
			opts: []string{"rprivate", "shared", "rslave", "unbindable"},
			want: mountOpts{propagation: []uintptr{
				unix.MS_PRIVATE | unix.MS_REC, unix.MS_SHARED, unix.MS_SLAVE | unix.MS_REC, unix.MS_UNBINDABLE,
			}},
		},
		{
			name: "all propagation values",
			opts: []string{"private", "rshared", "slave", "runbindable"},
			want: mountOpts{propagation: []uintptr{
				unix.MS_PRIVATE, unix.MS_SHARED | unix.MS_REC, unix.MS_SLAVE, unix.MS_UNBINDABLE | unix.MS_REC,
			}},
		},
		{
			name: "recursive attrs set",
			opts: []string{"rro", "rnosuid", "rnodev", "rnoexec", "rnoatime"},
			want: mountOpts{recAttrSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV |
				unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NOATIME},
		},
		{
			name: "recursive attrs cleared",
			opts: []string{"rrw", "rsuid", "rdev", "rexec"},
			want: mountOpts{recAttrClr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV |
				unix.MOUNT_ATTR_NOEXEC},
		},
		{
			name: "recursive attrs do not touch flags",
			opts: []string{"rbind", "rro", "rw"},
			want: mountOpts{
				flags:      unix.MS_BIND | unix.MS_REC,
				recAttrSet: unix.MOUNT_ATTR_RDONLY, bind: true, recursive: true,
			},
		},
		{
			name: "unknown options go to data in order",
			opts: []string{"nosuid", "mode=755", "strictatime", "size=65536k"},
			want: mountOpts{flags: unix.MS_NOSUID | unix.MS_STRICTATIME, data: []string{"mode=755", "size=65536k"}},
		},
		{
			name: "devpts data",
			opts: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
			want: mountOpts{
				flags: unix.MS_NOSUID | unix.MS_NOEXEC,
				data:  []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
			},
		},
		{
			name: "features not offered are dropped, not passed as data",
			opts: []string{"idmap", "ridmap", "tmpcopyup", "copyup", "nocopyup", "nosymfollow", "rnosymfollow"},
			want: mountOpts{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseMountOptions(tt.opts)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseMountOptions(%q)\n got  %+v\n want %+v", tt.opts, got, tt.want)
			}
		})
	}
}

func TestMountOptsDataString(t *testing.T) {
	tests := []struct {
		opts []string
		want string
	}{
		{nil, ""},
		{[]string{"ro", "nosuid"}, ""},
		{[]string{"mode=755"}, "mode=755"},
		{[]string{"mode=755", "ro", "size=65536k", "uid=0"}, "mode=755,size=65536k,uid=0"},
	}
	for _, tt := range tests {
		if got := parseMountOptions(tt.opts).dataString(); got != tt.want {
			t.Errorf("parseMountOptions(%q).dataString() = %q, want %q", tt.opts, got, tt.want)
		}
	}
}

// Every option in the lookup tables must be recognised (not end up in data).
func TestParseMountOptionsKnownTablesNotData(t *testing.T) {
	var all []string
	for o := range mountFlagOpts {
		all = append(all, o)
	}
	for o := range propagationOpts {
		all = append(all, o)
	}
	for o := range recursiveAttrOpts {
		all = append(all, o)
	}
	for _, o := range all {
		if d := parseMountOptions([]string{o}).data; len(d) != 0 {
			t.Errorf("option %q went to data %q", o, d)
		}
	}
}
