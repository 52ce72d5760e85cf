// Command silo is silo's command line: docker's verbs and flags, talking
// to silod over its socket. It starts silod when nothing answers, so that
// one command works on a fresh machine.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/silo-containers/silo/internal/api/client"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "0.1.0-dev"

// globals are the flags every command shares.
type globals struct {
	host     string
	dataRoot string
	execRoot string
	noStart  bool
}

// exitError carries a process exit status out of a command.
type exitError struct {
	code int
	err  error // printed when not nil
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func main() {
	g := &globals{}
	root := &cobra.Command{
		Use:           "silo",
		Short:         "Run containers with silo",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.host, "host", "H", envOr("SILO_HOST", client.DefaultHost), "daemon socket (unix:///path or tcp://127.0.0.1:PORT)")
	pf.StringVar(&g.dataRoot, "data-root", "", "data root for a silod that silo starts (needed, with --exec-root, for one on another socket than the default)")
	pf.StringVar(&g.execRoot, "exec-root", "", "exec root for a silod that silo starts")
	pf.BoolVar(&g.noStart, "no-start-daemon", false, "do not start silod when it does not answer")
	root.AddCommand(
		runCommand(g), psCommand(g), logsCommand(g), stopCommand(g), killCommand(g),
		rmCommand(g), inspectCommand(g), waitCommand(g), imagesCommand(g), loadCommand(g),
		imageCommand(g), versionCommand(g), infoCommand(g), createCommand(g), rmiCommand(g),
	)
	root.AddCommand(distCommands(g)...)
	root.AddCommand(attachCommand(g))  // attach.go
	root.AddCommand(execCommand(g))    // exec.go
	root.AddCommand(importCommand(g))  // import.go
	root.AddCommand(networkCommand(g)) // network.go
	addOpsCommands(root, g)            // ops.go: pause … volume, system df
	root.AddCommand(buildCommand(g), commitCommand(g), builderCommand(g))
	root.AddCommand(loginCommands()...) // login.go: login, logout
	err := root.Execute()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "silo:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "silo:", err)
	os.Exit(1)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// connect returns a client of a daemon that answers, starting silod when
// the socket does not answer.
func (g *globals) connect(ctx context.Context) (*client.Client, error) {
	c, err := client.New(g.host)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = c.Ping(pctx)
	cancel()
	if err == nil {
		return c, nil
	}
	if !client.IsUnreachable(err) || g.noStart || !isUnix(g.host) {
		return nil, fmt.Errorf("cannot connect to silod at %s: %w", g.host, err)
	}
	// A silod of its own is started for the default socket, or for
	// another one only with the roots it should use: a daemon with the
	// default roots on a socket someone else was about to serve (a test's,
	// a benchmark's) would run its containers on the machine's data and
	// network instead.
	if g.host != client.DefaultHost && (g.dataRoot == "" || g.execRoot == "") {
		return nil, fmt.Errorf("cannot connect to silod at %s (silo starts a daemon by itself only on %s, or with --data-root and --exec-root): %w", g.host, client.DefaultHost, err)
	}
	if err := g.startDaemon(); err != nil {
		return nil, err
	}
	if err := c.WaitReady(ctx, 15*time.Second); err != nil {
		return nil, fmt.Errorf("silod was started but does not answer at %s (see its log): %w", g.host, err)
	}
	return c, nil
}

func isUnix(host string) bool { return len(host) > 7 && host[:7] == "unix://" }

// startDaemon starts silod detached (own session, stdio to its log file).
func (g *globals) startDaemon() error {
	bin, err := findSilod()
	if err != nil {
		return err
	}
	logPath := "/var/log/silo/silod.log"
	if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
		root := g.dataRoot
		if root == "" {
			root = "/var/lib/silo"
		}
		logPath = filepath.Join(root, "silod.log")
		if err := os.MkdirAll(root, 0o711); err != nil {
			return fmt.Errorf("start silod: %w", err)
		}
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("start silod: %w", err)
	}
	defer logf.Close()
	args := []string{"--host", g.host}
	if g.dataRoot != "" {
		args = append(args, "--data-root", g.dataRoot)
	}
	if g.execRoot != "" {
		args = append(args, "--exec-root", g.execRoot)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start silod: %w", err)
	}
	fmt.Fprintf(os.Stderr, "silo: started silod (pid %d, log %s)\n", cmd.Process.Pid, logPath)
	return cmd.Process.Release()
}

// findSilod looks next to the silo binary, then on PATH.
func findSilod() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "silod")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("silod")
	if err != nil {
		return "", fmt.Errorf("silod is not running and was not found next to silo or on PATH")
	}
	return p, nil
}
