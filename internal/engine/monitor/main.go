package monitor

import (
	"context"
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
	ready, gate := os.NewFile(3, "ready"), os.NewFile(4, "gate")
	cfg, err := ParseArgs(args)
	if err != nil {
		_, _ = ready.WriteString("error: " + err.Error() + "\n")
		return 2
	}
	if err := Serve(cfg, ready, gate); err != nil {
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
	p, err := spawn(exe, cfg)
	if err != nil {
		os.Stderr.WriteString("silo-monitor: " + err.Error() + "\n")
		return 1
	}
	if err := p.pending.Start(false); err != nil {
		os.Stderr.WriteString("silo-monitor: " + err.Error() + "\n")
		return 1
	}
	return 0
}

// Pending is a monitor spawned and set up (log open, control socket
// listening) that runs the container only once told to: the caller
// prepares the rest (the container's network) meanwhile.
type Pending struct {
	cfg   *Config
	ready *os.File // read end of the monitor's ready pipe
	gate  *os.File // write end of its gate pipe
}

// Spawn launches a monitor for cfg with the silo-monitor binary; it runs
// the container once Start is called. The monitor is the caller's child,
// in a session of its own; the caller reaps it in the background when it
// quits (a goroutine woken through a pidfd, no thread parked in wait4).
// It outlives the caller: a caller that exits leaves it to init.
func Spawn(ctx context.Context, binary string, cfg *Config) (*Pending, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := spawn(binary, cfg)
	if err != nil {
		return nil, err
	}
	go func(pid int) { _, _ = waitChild(pid) }(p.pid)
	return p.pending, nil
}

// Start lets the monitor run the container and returns once it runs (or
// with the error that kept it from running). holdOutput keeps the first
// output for the first client to attach, as Config.HoldOutput (which
// holds in any case). It is not cancelled by a context: a monitor half
// way through its setup would leave a half-made container; it reports
// soon either way.
func (p *Pending) Start(holdOutput bool) error {
	b := byte(gateOpen)
	if holdOutput {
		b = gateOpenHold
	}
	_, werr := p.gate.Write([]byte{b})
	p.gate.Close()
	if werr != nil {
		p.ready.Close()
		return errors.New("start monitor for " + p.cfg.ID + ": " + werr.Error())
	}
	return awaitReady(p.ready, p.cfg)
}

// Abort makes the monitor quit without running the container, and waits
// until it has undone its setup.
func (p *Pending) Abort() {
	p.gate.Close()
	_ = awaitReady(p.ready, p.cfg) // "start cancelled", or EOF
}

// gateOpen, written to the gate, lets the monitor run the container;
// gateOpenHold too, and it holds the first output for the first client
// (Config.HoldOutput); anything else (the caller closing the gate) makes
// it quit.
const (
	gateOpen     = 'g'
	gateOpenHold = 'h'
)

// spawned is a monitor process spawn started.
type spawned struct {
	pid     int
	pending *Pending
}

// spawn starts binary as the serving monitor of cfg, in a session of its
// own (no terminal's signals reach it), with its ready pipe on fd 3 and
// its gate on fd 4 (see Serve).
func spawn(binary string, cfg *Config) (*spawned, error) {
	fail := func(err error) (*spawned, error) {
		return nil, errors.New("start monitor for " + cfg.ID + ": " + err.Error())
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return fail(err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fail(err)
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
		return fail(err)
	}
	defer w.Close()
	gr, gw, err := os.Pipe()
	if err != nil {
		r.Close()
		return fail(err)
	}
	defer gr.Close()
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
		Files: []*os.File{devnull, devnull, errLog, w, gr},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		r.Close()
		gw.Close()
		return fail(err)
	}
	pid := p.Pid
	_ = p.Release()
	return &spawned{pid: pid, pending: &Pending{cfg: cfg, ready: r, gate: gw}}, nil
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
