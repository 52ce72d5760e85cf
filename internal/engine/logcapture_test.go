package engine

import (
	"errors"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/engine/monitor"
	"github.com/silo-containers/silo/internal/errdefs"
)

func TestSyslogSocketNameAgrees(t *testing.T) {
	if syslogSocketName != monitor.SyslogSocketName {
		t.Fatalf("engine mounts %q, the monitor binds %q", syslogSocketName, monitor.SyslogSocketName)
	}
}

func TestCheckLogConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lc       container.LogConfig
		wantType string
		class    error
	}{
		{"default", container.LogConfig{}, "json-file", nil},
		{"json-file opts", container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m", "capture-syslog": "true"}}, "json-file", nil},
		{"local", container.LogConfig{Type: "local", Config: map[string]string{"compress": "false", "capture-files": "/a/*.log"}}, "local", nil},
		{"local with a json-file option", container.LogConfig{Type: "local", Config: map[string]string{"labels": "x"}}, "", errdefs.ErrInvalidArgument},
		{"bad capture", container.LogConfig{Config: map[string]string{"capture-files": "rel"}}, "", errdefs.ErrInvalidArgument},
		{"other driver", container.LogConfig{Type: "fluentd"}, "", errdefs.ErrNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := &container.HostConfig{LogConfig: tc.lc}
			err := checkLogConfig(host)
			if tc.class != nil {
				if !errors.Is(err, tc.class) {
					t.Fatalf("err %v, want %v", err, tc.class)
				}
				return
			}
			if err != nil || host.LogConfig.Type != tc.wantType {
				t.Fatalf("type %q, err %v", host.LogConfig.Type, err)
			}
		})
	}
}

func TestAddSyslogMount(t *testing.T) {
	s := &Service{cfg: Config{ExecRoot: "/run/x"}}
	for _, tc := range []struct {
		name   string
		opts   map[string]string
		mounts []specs.Mount
		want   int // mounts at /dev/log after
		src    string
	}{
		{"off", nil, nil, 0, ""},
		{"on", map[string]string{"capture-syslog": "true"}, []specs.Mount{{Destination: "/dev", Type: "tmpfs"}}, 1, "/run/x/containers/id/syslog.sock"},
		{"user's own wins", map[string]string{"capture-syslog": "true"}, []specs.Mount{{Destination: "/dev/log/", Type: "bind", Source: "/mine"}}, 1, "/mine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &specs.Spec{Mounts: tc.mounts}
			host := &container.HostConfig{LogConfig: container.LogConfig{Config: tc.opts}}
			if err := s.addSyslogMount(spec, "id", host); err != nil {
				t.Fatal(err)
			}
			n, src := 0, ""
			for i, m := range spec.Mounts {
				if m.Destination == "/dev/log" || m.Destination == "/dev/log/" {
					n, src = n+1, m.Source
					if tc.src != "/mine" && i != len(spec.Mounts)-1 {
						t.Fatal("the /dev/log mount is not after /dev")
					}
				}
			}
			if n != tc.want || src != tc.src {
				t.Fatalf("%d mounts from %q: %+v", n, src, spec.Mounts)
			}
		})
	}
}
