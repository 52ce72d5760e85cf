package engine

import (
	"compress/gzip"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/engine/logs"
	"github.com/silo-containers/silo/internal/errdefs"
)

// The local driver's reader decompresses rotated files through this hook:
// package logs leaves compress/gzip out, for the monitor's sake.
func init() {
	logs.Gunzip = func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }
}

// syslogSocketName is the monitor's syslog socket in its directory
// (monitor.SyslogSocketName: the engine does not import the monitor).
const syslogSocketName = "syslog.sock"

// syslogDevice is where a container with capture-syslog finds the socket.
const syslogDevice = "/dev/log"

// logFile is the current log file of a container with host config host.
func logFile(dir string, host *container.HostConfig) string {
	if host != nil && host.LogConfig.Type == logs.DriverLocal {
		return filepath.Join(dir, logs.LocalFileName)
	}
	return filepath.Join(dir, logs.FileName)
}

// checkLogConfig fills in the default log driver and checks the driver
// and its options at create, so that a bad --log-opt fails `docker
// create`, not the start: the capture options (logs.SplitCapture) and the
// driver's own.
func checkLogConfig(host *container.HostConfig) error {
	lc := &host.LogConfig
	if lc.Type == "" {
		lc.Type = logs.DriverJSONFile
	}
	if lc.Type != logs.DriverJSONFile && lc.Type != logs.DriverLocal {
		return fmt.Errorf("create container: log driver %q: only json-file and local are supported: %w", lc.Type, errdefs.ErrNotImplemented)
	}
	_, rest, err := logs.SplitCapture(lc.Config)
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	if _, err := logs.ParseDriverConfig(lc.Type, rest); err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	return nil
}

// addSyslogMount bind-mounts the monitor's syslog socket at /dev/log when
// the container captures syslog. The socket is bound by the monitor at
// each start, before the runtime makes the mounts; the mount comes after
// the spec's /dev, so it lands in the container's /dev. A mount of the
// user's own at /dev/log wins.
func (s *Service) addSyslogMount(spec *specs.Spec, id string, host *container.HostConfig) error {
	capt, _, err := logs.SplitCapture(host.LogConfig.Config)
	if err != nil || !capt.Syslog {
		return err
	}
	if slices.ContainsFunc(spec.Mounts, func(m specs.Mount) bool { return filepath.Clean(m.Destination) == syslogDevice }) {
		return nil
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: syslogDevice, Type: "bind",
		Source:  filepath.Join(s.stateDir(id), syslogSocketName),
		Options: []string{"bind", "rprivate", "nosuid", "nodev", "noexec"},
	})
	return nil
}
