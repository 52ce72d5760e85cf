package monitor

import (
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
// The process started by the caller only launches the real monitor: a
// copy of itself in a new session, so that the monitor is not the
// caller's child and outlives it. It waits until the container runs (or
// fails to) and exits 0 (or 1 with the error on stderr). It returns the
// exit status.
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

func launch(args []string) int {
	cfg, err := ParseArgs(args)
	if err != nil {
		os.Stderr.WriteString("silo-monitor: " + err.Error() + "\n")
		return 2
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		os.Stderr.WriteString("silo-monitor: " + err.Error() + "\n")
		return 1
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		os.Stderr.WriteString("silo-monitor: " + err.Error() + "\n")
		return 1
	}
	// The monitor's own diagnostics (a panic) go to a file in its dir.
	errLog, err := os.OpenFile(filepath.Join(cfg.Dir, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		errLog = devnull
	}
	r, w, err := os.Pipe()
	if err != nil {
		os.Stderr.WriteString("silo-monitor: " + err.Error() + "\n")
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
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
	p, err := os.StartProcess(exe, append([]string{"silo-monitor"}, args...), &os.ProcAttr{
		Dir:   "/",
		Env:   env,
		Files: []*os.File{devnull, devnull, errLog, w},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	w.Close()
	if err != nil {
		os.Stderr.WriteString("silo-monitor: start monitor: " + err.Error() + "\n")
		return 1
	}
	msg, _ := io.ReadAll(r)
	_ = p.Release()
	if s := string(msg); strings.HasPrefix(s, "ok") {
		return 0
	} else if s == "" {
		os.Stderr.WriteString("silo-monitor: the monitor exited during setup (see " + filepath.Join(cfg.Dir, "monitor.log") + ")\n")
	} else {
		os.Stderr.WriteString("silo-monitor: " + strings.TrimPrefix(s, "error: "))
	}
	return 1
}
