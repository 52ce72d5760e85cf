// runsilo lives for milliseconds (or, for `run`, as long as its container)
// and runs at most three goroutines of its own. updatemaxprocs=0 spares
// every start the runtime's GOMAXPROCS-update goroutine and a long `run`
// its re-reads of the cgroup's CPU limit every second. containermaxprocs
// stays on: Go 1.26 reads the cgroup limit once at start either way, and a
// GOMAXPROCS capped by the caller's CPU quota costs a helper nothing.
//
//go:debug updatemaxprocs=0

// Command runsilo is silo's OCI runtime: runc's command line over the
// process-isolation backend, so containerd, podman and CRI-O can drive it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/silo-containers/silo/internal/compute/process"
	"github.com/silo-containers/silo/internal/errdefs"
)

// version is set at build time (-X main.version=...).
var version = "0.1.0-dev"

// globals are runc's global flags.
type globals struct {
	root          string
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string
	criu          string
}

func init() {
	// The container's init must run on the main thread: /proc/<pid>/ns/*,
	// which exec and hooks use, shows the main thread's namespaces, and
	// init unshares per thread. An init function still runs on it.
	if len(os.Args) > 1 && os.Args[1] == process.InitArg {
		runtime.LockOSThread()
	}
}

func main() {
	// The container's init is this same binary: hand over before any CLI
	// work, so the start path pays for nothing it does not use.
	if len(os.Args) > 1 && os.Args[1] == process.InitArg {
		process.Init()
	}
	process.Trace("runsilo started")
	g := &globals{}
	err := newCLI(g).execute(context.Background(), os.Args[1:])
	process.Trace("runsilo done")
	if err == nil {
		return
	}
	if errors.Is(err, errHelp) {
		return
	}
	var ex *exitError
	if errors.As(err, &ex) {
		os.Exit(ex.code)
	}
	g.logError(err)
	os.Exit(1)
}

// exitError carries a process's exit status out of a command (run, exec).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// logError reports err on stderr and, with --log, in the log file in the
// chosen format (containerd reads the JSON form to show runtime errors).
func (g *globals) logError(err error) {
	fmt.Fprintf(os.Stderr, "runsilo: %v\n", err)
	if g.log == "" {
		return
	}
	f, ferr := os.OpenFile(g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if g.logFormat == "json" {
		line, _ := json.Marshal(map[string]string{"level": "error", "msg": err.Error(), "time": now})
		fmt.Fprintf(f, "%s\n", line)
		return
	}
	fmt.Fprintf(f, "time=%q level=error msg=%q\n", now, err.Error())
}

func (g *globals) backend() (*process.Backend, error) {
	if g.systemdCgroup {
		return nil, fmt.Errorf("--systemd-cgroup: the systemd cgroup driver is not supported; runsilo manages cgroupfs directly: %w", errdefs.ErrNotImplemented)
	}
	return process.New(g.root), nil
}

// processDebug turns on the backend's step timing (--debug).
func processDebug() { process.Debug = true }

// readJSON decodes a JSON file ("-" for stdin) into v, naming the file on error.
func readJSON(path string, v any) error {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err // names the file
		}
		defer f.Close()
		r = f
	}
	dec := json.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}
