package main

import (
	"encoding/json"
	"flag"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "-1", want: -1},
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "512b", want: 512},
		{in: "512B", want: 512},
		{in: "64k", want: 64 << 10},
		{in: "64K", want: 64 << 10},
		{in: "64m", want: 64 << 20},
		{in: "64M", want: 64 << 20},
		{in: "1g", want: 1 << 30},
		{in: "2G", want: 2 << 30},
		{in: "x", wantErr: true},
		{in: "", wantErr: true},
		{in: "k", wantErr: true},
		{in: "-5", wantErr: true},
		{in: "-1k", wantErr: true},
		{in: "-2", wantErr: true},
		{in: "1.5g", wantErr: true},
		{in: "64kb", wantErr: true},
		{in: "64t", wantErr: true},
		{in: "0x10", wantErr: true},
		{in: " 64", wantErr: true},
		{in: "99999999999999999999", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseBytes(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseBytes(%q) = %d, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), "not a size") {
					t.Errorf("parseBytes(%q) error %q", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseBytes(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("parseBytes(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

// A size whose multiplication overflows int64 must be refused, not wrapped
// to a negative or zero limit.
func TestParseBytesOverflow(t *testing.T) {
	for _, in := range []string{"8589934592g", "9007199254740992m", "9223372036854775807k"} {
		if got, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an overflow error", in, got)
		}
	}
}

// updateFlags parses args with the real update command's flag set and
// returns the command and the flag-value map applyUpdateFlags reads.
func updateFlags(t *testing.T, args []string) (*command, map[string]*string) {
	t.Helper()
	cmd := newUpdateCommand(&globals{})
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatalf("parse flags %q: %v", args, err)
	}
	f := map[string]*string{}
	cmd.Flags().VisitAll(func(fl *flag.Flag) {
		v := fl.Value.String()
		f[fl.Name] = &v
	})
	return cmd, f
}

func i64(v int64) *int64    { return &v }
func u64(v uint64) *uint64  { return &v }
func u16p(v uint16) *uint16 { return &v }

func TestApplyUpdateFlags(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		start  specs.LinuxResources
		want   specs.LinuxResources
		errHas string
	}{
		{name: "no flags", args: nil, want: specs.LinuxResources{}},
		{
			name: "memory",
			args: []string{"--memory", "64m", "--memory-reservation", "1024", "--memory-swap", "1g"},
			want: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Reservation: i64(1024), Swap: i64(1 << 30)}},
		},
		{
			name: "unlimited memory",
			args: []string{"--memory=-1", "--memory-swap=-1"},
			want: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1), Swap: i64(-1)}},
		},
		{
			name: "cpu",
			args: []string{
				"--cpu-period", "100000", "--cpu-quota", "50000", "--cpu-share", "512",
				"--cpu-rt-period", "1000000", "--cpu-rt-runtime", "950000", "--cpu-idle", "1", "--cpu-burst", "20000",
				"--cpuset-cpus", "0-1,3", "--cpuset-mems", "0",
			},
			want: specs.LinuxResources{CPU: &specs.LinuxCPU{
				Period: u64(100000), Quota: i64(50000), Shares: u64(512), RealtimePeriod: u64(1000000),
				RealtimeRuntime: i64(950000), Idle: i64(1), Burst: u64(20000), Cpus: "0-1,3", Mems: "0",
			}},
		},
		{
			name: "negative quota",
			args: []string{"--cpu-quota=-1"},
			want: specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-1)}},
		},
		{
			name: "pids and blkio",
			args: []string{"--pids-limit", "100", "--blkio-weight", "500"},
			want: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(100)}, BlockIO: &specs.LinuxBlockIO{Weight: u16p(500)}},
		},
		{
			name:  "flags merge into resources.json values",
			args:  []string{"--memory-swap", "2g", "--cpu-share", "1024"},
			start: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 30)}, CPU: &specs.LinuxCPU{Cpus: "2"}},
			want: specs.LinuxResources{
				Memory: &specs.LinuxMemory{Limit: i64(1 << 30), Swap: i64(2 << 30)},
				CPU:    &specs.LinuxCPU{Cpus: "2", Shares: u64(1024)},
			},
		},
		{
			name:  "flag overrides resources.json",
			args:  []string{"--memory", "1k"},
			start: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 30)}},
			want:  specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 10)}},
		},
		{
			name: "empty cpuset string is still a change",
			args: []string{"--cpuset-cpus="},
			want: specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: ""}},
		},
		{name: "bad memory", args: []string{"--memory", "x"}, errHas: "--memory"},
		{name: "negative swap", args: []string{"--memory-swap", "-5"}, errHas: "--memory-swap"},
		{name: "bad period", args: []string{"--cpu-period", "abc"}, errHas: "--cpu-period"},
		{name: "negative period", args: []string{"--cpu-period=-1"}, errHas: "--cpu-period"},
		{name: "bad quota", args: []string{"--cpu-quota", "1.5"}, errHas: "--cpu-quota"},
		{name: "bad pids", args: []string{"--pids-limit", "many"}, errHas: "--pids-limit"},
		{name: "bad blkio", args: []string{"--blkio-weight", "-1"}, errHas: "--blkio-weight"},
		{name: "l3 cache", args: []string{"--l3-cache-schema", "L3:0=f"}, errHas: "Intel RDT"},
		{name: "memory bandwidth", args: []string{"--mem-bw-schema", "MB:0=50"}, errHas: "Intel RDT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, f := updateFlags(t, tt.args)
			r := tt.start
			err := applyUpdateFlags(cmd, f, &r)
			if tt.errHas != "" {
				if err == nil {
					t.Fatalf("applyUpdateFlags(%q): no error, resources %+v", tt.args, r)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error %q does not mention %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("applyUpdateFlags(%q): %v", tt.args, err)
			}
			if !reflect.DeepEqual(r, tt.want) {
				t.Errorf("applyUpdateFlags(%q)\n got  %s\n want %s", tt.args, dump(r), dump(tt.want))
			}
		})
	}
}

// blkio weight is 10..1000 (cgroup v1) / 1..10000 (io.weight); a value out
// of range is refused, never wrapped around.
func TestApplyUpdateFlagsBlkioWeightRange(t *testing.T) {
	for _, v := range []string{"65546", "0", "10001", "x"} {
		cmd, f := updateFlags(t, []string{"--blkio-weight", v})
		var r specs.LinuxResources
		if err := applyUpdateFlags(cmd, f, &r); err == nil {
			t.Errorf("--blkio-weight %s accepted: %+v", v, r.BlockIO)
		}
	}
}

// Every flag the update command registers (but --resources) is one
// applyUpdateFlags reads, and the names it reads are all registered (a
// missing one would be a nil dereference).
func TestUpdateCommandFlags(t *testing.T) {
	cmd := newUpdateCommand(&globals{})
	var names []string
	cmd.Flags().VisitAll(func(fl *flag.Flag) {
		if fl.Name != "resources" && fl.Name != "r" {
			names = append(names, fl.Name)
		}
	})
	if len(names) != 16 {
		t.Errorf("update registers %d resource flags, want runc's 16: %q", len(names), names)
	}
	for _, name := range names {
		value := "1"
		switch name {
		case "l3-cache-schema", "mem-bw-schema":
			continue
		case "cpuset-cpus", "cpuset-mems":
			value = "0"
		}
		t.Run(name, func(t *testing.T) {
			cmd, f := updateFlags(t, []string{"--" + name, value})
			var r specs.LinuxResources
			if err := applyUpdateFlags(cmd, f, &r); err != nil {
				t.Fatalf("--%s %s: %v", name, value, err)
			}
			if reflect.DeepEqual(r, specs.LinuxResources{}) {
				t.Errorf("--%s %s changed nothing", name, value)
			}
		})
	}
	if cmd.Flags().Lookup("r") == nil {
		t.Error("update lacks -r for --resources")
	}
	if err := cmd.Args(nil); err == nil {
		t.Error("update accepts no container id")
	}
}

func dump(r specs.LinuxResources) string {
	b, err := json.Marshal(r)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
