package main

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

func TestParseMount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want mount.Mount
		err  bool
	}{
		{in: "type=bind,source=/a,target=/b,readonly", want: mount.Mount{Type: mount.TypeBind, Source: "/a", Target: "/b", ReadOnly: true}},
		{in: "src=data,dst=/d", want: mount.Mount{Type: mount.TypeVolume, Source: "data", Target: "/d"}},
		{in: "type=volume,target=/d,volume-nocopy,volume-label=a=b", want: mount.Mount{Type: mount.TypeVolume, Target: "/d",
			VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{"a": "b"}}}},
		{in: "type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1770", want: mount.Mount{Type: mount.TypeTmpfs, Target: "/t",
			TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: fileMode(0o1770)}}},
		{in: "type=bind,src=/a,dst=/b,bind-propagation=rshared", want: mount.Mount{Type: mount.TypeBind, Source: "/a", Target: "/b",
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRShared}}},
		{in: "type=bind,src=/a", err: true},
		{in: "type=bind,src=/a,dst=/b,bogus=1", err: true},
		{in: "target=/b,readonly=maybe", err: true},
		{in: "type=tmpfs,target=/t,tmpfs-size=lots", err: true},
	} {
		got, err := parseMount(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !tc.err && !mountEqual(got, tc.want) {
			t.Errorf("%q: %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func mountEqual(a, b mount.Mount) bool {
	if a.Type != b.Type || a.Source != b.Source || a.Target != b.Target || a.ReadOnly != b.ReadOnly {
		return false
	}
	if (a.BindOptions == nil) != (b.BindOptions == nil) || a.BindOptions != nil && *a.BindOptions != *b.BindOptions {
		return false
	}
	if (a.TmpfsOptions == nil) != (b.TmpfsOptions == nil) || a.TmpfsOptions != nil && (a.TmpfsOptions.SizeBytes != b.TmpfsOptions.SizeBytes || a.TmpfsOptions.Mode != b.TmpfsOptions.Mode) {
		return false
	}
	if (a.VolumeOptions == nil) != (b.VolumeOptions == nil) {
		return false
	}
	if a.VolumeOptions != nil && (a.VolumeOptions.NoCopy != b.VolumeOptions.NoCopy || len(a.VolumeOptions.Labels) != len(b.VolumeOptions.Labels)) {
		return false
	}
	return true
}

func TestRunMoreFlags(t *testing.T) {
	f := runMoreFlags{volumes: []string{"/anon", "data:/d:ro", "/h:/c"}, tmpfs: []string{"/t:size=1m", "/u"}, init: true,
		healthCmd: "true", healthInterval: time.Second, healthRetries: 2}
	cfg, host := &container.Config{}, &container.HostConfig{}
	if err := f.apply(cfg, host); err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Volumes["/anon"]; !ok || len(host.Binds) != 2 || host.Tmpfs["/t"] != "size=1m" || host.Tmpfs["/u"] != "" ||
		host.Init == nil || !*host.Init || cfg.Healthcheck == nil || cfg.Healthcheck.Test[0] != "CMD-SHELL" || cfg.Healthcheck.Retries != 2 {
		t.Fatalf("cfg %+v host %+v", cfg, host)
	}
	for _, bad := range []runMoreFlags{
		{volumes: []string{"relative"}},
		{noHealthcheck: true, healthCmd: "true"},
		{healthRetries: -1},
		{mounts: []string{"type=bind"}},
	} {
		if err := bad.apply(&container.Config{}, &container.HostConfig{}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	none := runMoreFlags{noHealthcheck: true}
	cfg = &container.Config{}
	if err := none.apply(cfg, &container.HostConfig{}); err != nil || cfg.Healthcheck.Test[0] != "NONE" {
		t.Fatalf("--no-healthcheck: %+v %v", cfg.Healthcheck, err)
	}
}

func TestSplitCpArg(t *testing.T) {
	for in, want := range map[string]string{
		"ctr:/a": "ctr|/a", "/abs:x": "|/abs:x", "./rel:x": "|./rel:x", "dir/file:x": "|dir/file:x", "plain": "|plain", "-": "|-",
	} {
		c, p := splitCpArg(in)
		if c+"|"+p != want {
			t.Errorf("%q: %q %q", in, c, p)
		}
	}
}

func TestRenameTop(t *testing.T) {
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	for _, h := range []tar.Header{
		{Name: "data/", Typeflag: tar.TypeDir}, {Name: "data/f", Typeflag: tar.TypeReg}, {Name: "data/h", Typeflag: tar.TypeLink, Linkname: "data/f"},
	} {
		tw.WriteHeader(&h)
	}
	tw.Close()
	var out bytes.Buffer
	if err := renameTop(bytes.NewReader(in.Bytes()), &out, "data", "copy"); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name+">"+h.Linkname)
	}
	if got := strings.Join(names, " "); got != "copy/> copy/f> copy/h>copy/f" {
		t.Fatalf("renamed %q", got)
	}
}

func TestStatsRow(t *testing.T) {
	s := &container.StatsResponse{
		ID: "0123456789abcdef", Name: "/web",
		CPUStats:    container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: 3e9}, SystemUsage: 20e9, OnlineCPUs: 2},
		PreCPUStats: container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: 2e9}, SystemUsage: 10e9},
		MemoryStats: container.MemoryStats{Usage: 100 << 20, Limit: 400 << 20, Stats: map[string]uint64{"total_inactive_file": 50 << 20}},
		PidsStats:   container.PidsStats{Current: 3},
		Networks:    map[string]container.NetworkStats{"eth0": {RxBytes: 10, TxBytes: 20}},
	}
	r := statsRowOf(s)
	if r.cpu != 20 || r.mem != 50<<20 || r.memP != 12.5 || r.pids != 3 || r.netRx != 10 || r.name != "web" {
		t.Fatalf("row %+v", r)
	}
	// The first sample of a stream has no previous one: 0 %, not garbage.
	s.PreCPUStats = container.CPUStats{}
	s.CPUStats.SystemUsage = 0
	if r := statsRowOf(s); r.cpu != 0 {
		t.Fatalf("cpu without a previous sample %v", r.cpu)
	}
}
