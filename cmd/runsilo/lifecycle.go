package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute"
	"github.com/silo-containers/silo/internal/compute/process"
)

// createFlags are shared by create and run.
type createFlags struct {
	bundle        string
	pidFile       string
	consoleSocket string
	noPivot       bool
	noNewKeyring  bool
	preserveFds   int
	detach        bool
	noSubreaper   bool
	keep          bool
}

func (c *createFlags) add(cmd *command) {
	f := cmd.Flags()
	f.StringVarP(&c.bundle, "bundle", "b", "", "path to the root of the bundle directory (default: current directory)")
	f.StringVar(&c.pidFile, "pid-file", "", "file to write the process id to")
	f.StringVar(&c.consoleSocket, "console-socket", "", "unix socket that receives the pty master of a terminal container")
	f.BoolVar(&c.noPivot, "no-pivot", false, "do not use pivot_root (for a rootfs on ramfs)")
	f.BoolVar(&c.noNewKeyring, "no-new-keyring", false, "do not create a new session keyring")
	f.IntVar(&c.preserveFds, "preserve-fds", 0, "pass N additional file descriptors (from 3) to the container")
}

// document loads the bundle's config.json into a compute document.
func (c *createFlags) document(id string) (*compute.Document, error) {
	bundle := c.bundle
	if bundle == "" {
		bundle = "."
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle %q: %w", c.bundle, err)
	}
	var spec specs.Spec
	if err := readJSON(filepath.Join(bundle, "config.json"), &spec); err != nil {
		return nil, err
	}
	if c.preserveFds < 0 {
		return nil, fmt.Errorf("--preserve-fds: must not be negative")
	}
	return &compute.Document{
		ID: id, Bundle: bundle, Spec: &spec,
		ConsoleSocket: c.consoleSocket, PreserveFDs: c.preserveFds,
		NoPivot: c.noPivot, NoNewKeyring: c.noNewKeyring,
	}, nil
}

// prepare opens the backend and loads the bundle for create and run.
func (c *createFlags) prepare(g *globals, id string) (*process.Backend, *compute.Document, error) {
	b, err := g.backend()
	if err != nil {
		return nil, nil, err
	}
	doc, err := c.document(id)
	if err != nil {
		return nil, nil, err
	}
	return b, doc, nil
}

func writePidFile(path string, pid int) error {
	if path == "" {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	return nil
}

func newCreateCommand(g *globals) *command {
	var cf createFlags
	cmd := &command{
		Use:   "create [flags] CONTAINER_ID",
		Short: "create a container; it waits for `start`",
		Args:  exactArgs(1),
		RunE: func(cmd *command, args []string) error {
			b, doc, err := cf.prepare(g, args[0])
			if err != nil {
				return err
			}
			sys, err := b.Create(cmd.Context(), doc)
			if err != nil {
				return err
			}
			props, _ := sys.Properties(cmd.Context())
			return writePidFile(cf.pidFile, props.Pid)
		},
	}
	cf.add(cmd)
	return cmd
}

func newStartCommand(g *globals) *command {
	return &command{
		Use:   "start CONTAINER_ID",
		Short: "start the process of a created container",
		Args:  exactArgs(1),
		RunE: func(cmd *command, args []string) error {
			sys, err := g.open(cmd, args[0])
			if err != nil {
				return err
			}
			return sys.Start(cmd.Context())
		},
	}
}

func (g *globals) open(cmd *command, id string) (compute.System, error) {
	b, err := g.backend()
	if err != nil {
		return nil, err
	}
	return b.Open(cmd.Context(), id)
}

func newRunCommand(g *globals) *command {
	var cf createFlags
	cmd := &command{
		Use:   "run [flags] CONTAINER_ID",
		Short: "create and start a container; without -d wait for it and delete it",
		Args:  exactArgs(1),
		RunE: func(cmd *command, args []string) error {
			b, doc, err := cf.prepare(g, args[0])
			if err != nil {
				return err
			}
			if cf.detach {
				sys, err := b.Create(cmd.Context(), doc)
				if err != nil {
					return err
				}
				if err := sys.Start(cmd.Context()); err != nil {
					_ = sys.Delete(cmd.Context(), true)
					return err
				}
				props, _ := sys.Properties(cmd.Context())
				return writePidFile(cf.pidFile, props.Pid)
			}
			return runForeground(cmd, b, doc, &cf)
		},
	}
	cf.add(cmd)
	cmd.Flags().BoolVarP(&cf.detach, "detach", "d", false, "detach from the container's process")
	cmd.Flags().BoolVar(&cf.noSubreaper, "no-subreaper", false, "do not become a subreaper of the container's processes")
	cmd.Flags().BoolVar(&cf.keep, "keep", false, "do not delete the container after it exits")
	return cmd
}

// runForeground runs a container as our child: signals we get are passed
// on, a terminal is bridged to ours, and the exit status becomes ours.
func runForeground(cmd *command, b *process.Backend, doc *compute.Document, cf *createFlags) error {
	ctx := cmd.Context()
	if !cf.noSubreaper {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	var term *terminalBridge
	if doc.Spec.Process != nil && doc.Spec.Process.Terminal && cf.consoleSocket == "" {
		var err error
		if term, err = newTerminalBridge(); err != nil {
			return err
		}
		defer term.Close()
		doc.Console = term.remote
	}
	// Catching every signal costs a few hundred sigactions: do it while
	// the container is being created. It is never undone: we exit after.
	sigs := make(chan os.Signal, 64)
	notified := make(chan struct{})
	go func() {
		signal.Notify(sigs)
		close(notified)
	}()
	doc.StartOnCreate = true
	process.Trace("config read")
	sys, err := b.Create(ctx, doc)
	if err != nil {
		return err
	}
	if err := writePidFile(cf.pidFile, mustPid(sys, cmd)); err != nil {
		_ = sys.Delete(ctx, true)
		return err
	}
	if term != nil {
		if err := term.attach(); err != nil {
			_ = sys.Delete(ctx, true)
			return err
		}
	}
	<-notified
	code := forwardUntilExit(ctx, sigs, term, sys.Wait, func(sig unix.Signal) {
		_ = sys.Signal(ctx, sig, false)
	})
	if !cf.keep {
		if err := sys.Delete(ctx, true); err != nil {
			return err
		}
	}
	process.Trace("deleted")
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// forwardUntilExit passes the signals runsilo receives on to the process
// until wait returns, and returns its exit status. SIGWINCH resizes the
// bridged terminal instead; SIGCHLD (ours, for reaping), SIGURG (Go's
// preemption) and SIGPIPE are not forwarded.
func forwardUntilExit(ctx context.Context, sigs chan os.Signal, term *terminalBridge, wait func(context.Context) (int, error), forward func(unix.Signal)) int {
	done := make(chan int, 1)
	go func() {
		code, _ := wait(ctx)
		done <- code
	}()
	for {
		select {
		case code := <-done:
			if term != nil {
				term.drain()
			}
			return code
		case s := <-sigs:
			switch sig := s.(unix.Signal); sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
			case unix.SIGWINCH:
				if term != nil {
					term.resize()
				}
			default:
				forward(sig)
			}
		}
	}
}

func mustPid(sys compute.System, cmd *command) int {
	props, err := sys.Properties(cmd.Context())
	if err != nil {
		return 0
	}
	return props.Pid
}
