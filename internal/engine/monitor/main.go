package monitor

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// stageEnv tells the re-executed monitor that it is the detached one.
const stageEnv = "_SILO_MONITOR_STAGE"

// addedEnv lists the Go runtime variables the launcher set for the
// monitor, which the monitor removes again.
const addedEnv = "_SILO_MONITOR_GOENV"

// Main is the silo-monitor command: args are the flags of Config.Args.
// Started by hand, it only launches the real monitor (spawn: a copy of
// itself in a new session, which outlives it), waits until the container
// runs (or fails to) and exits 0 (or 1 with the error on stderr); the
// engine spawns the serving monitor directly (Start). It returns the exit
// status.
func Main(args []string) int {
	if os.Getenv(stageEnv) != "serve" {
		return launch(args)
	}
	// The runtime has read them; the OCI runtime we run must not inherit
	// them.
	for _, k := range strings.Split(os.Getenv(addedEnv), ",") {
		if k != "" {
			os.Unsetenv(k)
		}
	}
	os.Unsetenv(addedEnv)
	os.Unsetenv(stageEnv)
	ready := os.NewFile(3, "ready")
	cfg, err := ParseArgs(args)
	if err != nil {
		_, _ = ready.WriteString("error: " + err.Error() + "\n")
		return 2
	}
	if err := Serve(cfg, ready); err != nil {
		os.Stderr.WriteString("silo-monitor: " + err.Error() + "\n")
		return 1
	}
	return 0
}

// launch is `silo-monitor FLAGS` run by hand: it starts the monitor and
// exits once the container runs (0) or failed to (1, the error on stderr).
func launch(args []string) int {
	cfg, err := ParseArgs(args)
	if err != nil {
		os.Stderr.WriteString("silo-monitor: " + err.Error() + "\n")
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	p, ready, err := spawn(exe, cfg)
	if err != nil {
		os.Stderr.WriteString("silo-monitor: " + err.Error() + "\n")
		return 1
	}
	_ = p.Release()
	if err := awaitReady(ready, cfg); err != nil {
		os.Stderr.WriteString("silo-monitor: " + err.Error() + "\n")
		return 1
	}
	return 0
}

// spawn starts binary as the serving monitor of cfg, in a session of its
// own (no terminal's signals reach it), and returns it with the read end
// of its ready pipe (see Serve).
func spawn(binary string, cfg *Config) (*os.Process, *os.File, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, nil, errors.New("start monitor for " + cfg.ID + ": " + err.Error())
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, errors.New("start monitor for " + cfg.ID + ": " + err.Error())
	}
	defer devnull.Close()
	// The monitor's own diagnostics (a panic) go to a file in its dir.
	errLog, err := os.OpenFile(filepath.Join(cfg.Dir, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		errLog = devnull
	} else {
		defer errLog.Close()
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, errors.New("start monitor for " + cfg.ID + ": " + err.Error())
	}
	defer w.Close()
	env := append(os.Environ(), stageEnv+"=serve")
	// One P is plenty for a process that mostly sleeps (every P has its
	// own caches and can start threads), and a small heap goal keeps the
	// idle heap small; set before the runtime starts, unless given.
	var added []string
	for _, kv := range []string{"GOMAXPROCS=1", "GOGC=50"} {
		if k, _, _ := strings.Cut(kv, "="); os.Getenv(k) == "" {
			env = append(env, kv)
			added = append(added, k)
		}
	}
	env = append(env, addedEnv+"="+strings.Join(added, ","))
	p, err := os.StartProcess(binary, append([]string{"silo-monitor"}, cfg.Args()...), &os.ProcAttr{
		Dir:   "/",
		Env:   env,
		Files: []*os.File{devnull, devnull, errLog, w},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		r.Close()
		return nil, nil, errors.New("start monitor for " + cfg.ID + ": " + err.Error())
	}
	return p, r, nil
}

// awaitReady reads the monitor's ready message (and closes ready): nil
// once the container runs, the monitor's error otherwise.
func awaitReady(ready *os.File, cfg *Config) error {
	msg, _ := io.ReadAll(ready)
	ready.Close()
	switch s := strings.TrimSpace(string(msg)); {
	case strings.HasPrefix(s, "ok"):
		return nil
	case s == "":
		return errors.New("start monitor for " + cfg.ID + ": the monitor exited during setup (see " + filepath.Join(cfg.Dir, "monitor.log") + ")")
	default:
		return errors.New("start monitor for " + cfg.ID + ": " + strings.TrimPrefix(s, "error: "))
	}
}
