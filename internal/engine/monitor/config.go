package monitor

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Files in a monitor directory.
const (
	// SocketName is the control socket.
	SocketName = "monitor.sock"
	// ExitName is the exit status, written atomically once init exited.
	ExitName = "exit.json"
	// StateName holds the monitor's pid and the container's init pid.
	StateName = "state.json"
	// RuntimeLogName is where the runtime writes its errors (JSON lines).
	RuntimeLogName = "runtime.log"
	// consoleName is the socket on which the runtime sends a pty master.
	consoleName = "console.sock"
	// pidName is the runtime's --pid-file.
	pidName = "init.pid"
)

// DefaultGrace is how long a monitor keeps answering after its container
// exited, unless released earlier.
const DefaultGrace = 30 * time.Second

// Config is what a monitor needs to run one container. On the command
// line it is spelled as flags (see Args).
type Config struct {
	// ID is the container id (the runtime's id too).
	ID string
	// Bundle is the OCI bundle directory.
	Bundle string
	// Runtime is the OCI runtime binary (runsilo or a runc-compatible one).
	Runtime string
	// RuntimeRoot is the runtime's --root.
	RuntimeRoot string
	// Dir is the monitor's own directory: socket, state, exit status.
	Dir string
	// LogDir holds the json-file log (default Dir/log).
	LogDir string
	// LogDriver is the log format: json-file (also "") or local.
	LogDriver string
	// LogOpts are docker's --log-opt values for the driver.
	LogOpts map[string]string
	// Terminal gives the container a pty (process.terminal in the bundle
	// must agree).
	Terminal bool
	// Stdin keeps a pipe open to the container's stdin (docker run -i).
	Stdin bool
	// HoldOutput keeps the container's first output (up to 1 MiB) for the
	// first client that attaches, so that a client attaching right after
	// the start (docker run, which attached before) misses nothing.
	HoldOutput bool
	// Grace is how long to keep serving after the exit (0: DefaultGrace).
	Grace time.Duration
}

// Args returns cfg as command-line flags for silo-monitor.
func (c *Config) Args() []string {
	a := []string{"--id", c.ID, "--bundle", c.Bundle, "--runtime", c.Runtime, "--runtime-root", c.RuntimeRoot, "--dir", c.Dir}
	if c.LogDir != "" {
		a = append(a, "--log-dir", c.LogDir)
	}
	if c.LogDriver != "" {
		a = append(a, "--log-driver", c.LogDriver)
	}
	keys := make([]string, 0, len(c.LogOpts))
	for k := range c.LogOpts {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		a = append(a, "--log-opt", k+"="+c.LogOpts[k])
	}
	if c.Terminal {
		a = append(a, "--terminal")
	}
	if c.Stdin {
		a = append(a, "--stdin")
	}
	if c.HoldOutput {
		a = append(a, "--hold-output")
	}
	if c.Grace != 0 {
		a = append(a, "--grace", c.Grace.String())
	}
	return a
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// ParseArgs reads the flags that Args writes ("--flag value" or
// "--flag=value").
func ParseArgs(args []string) (*Config, error) {
	c := &Config{LogOpts: map[string]string{}}
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", errors.New("flag " + name + ": missing value")
			}
			i++
			return args[i], nil
		}
		var v string
		var err error
		switch name {
		case "--terminal":
			c.Terminal = !hasVal || val == "true"
			continue
		case "--stdin":
			c.Stdin = !hasVal || val == "true"
			continue
		case "--hold-output":
			c.HoldOutput = !hasVal || val == "true"
			continue
		case "--id", "--bundle", "--runtime", "--runtime-root", "--dir", "--log-dir", "--log-driver", "--log-opt", "--grace":
			if v, err = value(); err != nil {
				return nil, errors.Join(err, errdefs.ErrInvalidArgument)
			}
		default:
			return nil, errors.Join(errors.New("unknown flag "+strconv.Quote(args[i])), errdefs.ErrInvalidArgument)
		}
		switch name {
		case "--id":
			c.ID = v
		case "--bundle":
			c.Bundle = v
		case "--runtime":
			c.Runtime = v
		case "--runtime-root":
			c.RuntimeRoot = v
		case "--dir":
			c.Dir = v
		case "--log-dir":
			c.LogDir = v
		case "--log-driver":
			c.LogDriver = v
		case "--log-opt":
			k, ov, ok := strings.Cut(v, "=")
			if !ok {
				return nil, errors.Join(errors.New("--log-opt "+strconv.Quote(v)+": want key=value"), errdefs.ErrInvalidArgument)
			}
			c.LogOpts[k] = ov
		case "--grace":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return nil, errors.Join(errors.New("--grace "+strconv.Quote(v)+": want a duration"), errdefs.ErrInvalidArgument)
			}
			c.Grace = d
		}
	}
	return c, c.check()
}

// check fills defaults and refuses an incomplete config.
func (c *Config) check() error {
	for _, f := range []struct{ name, v string }{{"--id", c.ID}, {"--bundle", c.Bundle}, {"--runtime", c.Runtime}, {"--runtime-root", c.RuntimeRoot}, {"--dir", c.Dir}} {
		if f.v == "" {
			return errors.Join(errors.New("monitor config: "+f.name+" is required"), errdefs.ErrInvalidArgument)
		}
	}
	for _, p := range []*string{&c.Bundle, &c.Dir, &c.RuntimeRoot} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	if c.LogDir == "" {
		c.LogDir = filepath.Join(c.Dir, "log")
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	return nil
}

// State is what a monitor reports about its container, and (with Status
// "exited") what it records in exit.json.
type State struct {
	ID string
	// Pid is the container's init on the host.
	Pid int
	// Status is "running" or "exited".
	Status string
	// ExitCode is the exit status (128+signal when killed by a signal).
	ExitCode int
	// Signal is the signal that killed init, or 0.
	Signal int
	// OOMKilled says the memory cgroup's oom_kill count rose while the
	// container ran.
	OOMKilled bool
	// Started and Finished are when init started and was reaped.
	Started, Finished time.Time
	// MonitorPid is the monitor process.
	MonitorPid int
}

// Status values.
const (
	StatusRunning = "running"
	StatusExited  = "exited"
)

func (s *State) encode(o *object) *object {
	o.str("id", s.ID).int("pid", int64(s.Pid)).str("status", s.Status).
		int("exit_code", int64(s.ExitCode)).int("signal", int64(s.Signal)).bool("oom_killed", s.OOMKilled).
		time("started", s.Started).time("finished", s.Finished).int("monitor_pid", int64(s.MonitorPid))
	return o
}

func decodeState(f fields) *State {
	return &State{
		ID: f["id"], Pid: f.int("pid"), Status: f["status"], ExitCode: f.int("exit_code"),
		Signal: f.int("signal"), OOMKilled: f.bool("oom_killed"), Started: f.time("started"),
		Finished: f.time("finished"), MonitorPid: f.int("monitor_pid"),
	}
}
