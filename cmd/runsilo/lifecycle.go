package main

import (
	"bytes"
	"context"
	"encoding/json"
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

// bundleSpec is what config.json is decoded into: the spec, with the other
// platforms' sections, which a Linux runtime ignores, left as raw JSON (the
// outer fields hide the embedded ones). On its first use encoding/json
// analyses every type a struct can hold, present or not: the Windows,
// Solaris, VM, z/OS and FreeBSD types were a quarter of the ~1 ms that
// decoding config.json costs each create.
type bundleSpec struct {
	specs.Spec
	Solaris json.RawMessage `json:"solaris,omitempty"`
	Windows json.RawMessage `json:"windows,omitempty"`
	VM      json.RawMessage `json:"vm,omitempty"`
	ZOS     json.RawMessage `json:"zos,omitempty"`
	FreeBSD json.RawMessage `json:"freebsd,omitempty"`
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
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read bundle config: %w", err)
	}
	var bs bundleSpec
	// A decoder, as runc uses: what follows the first JSON value is ignored
	// (and not kept in SpecJSON).
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&bs); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	data = data[:dec.InputOffset()]
	spec := bs.Spec
	if c.preserveFds < 0 {
		return nil, fmt.Errorf("--preserve-fds: must not be negative")
	}
	return &compute.Document{
		ID: id, Bundle: bundle, Spec: &spec, SpecJSON: data,
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
			return writePidFile(cf.pidFile, sys.Pid())
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
				return writePidFile(cf.pidFile, sys.Pid())
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
	// Signals runsilo gets are the container's; those that arrive while
	// it is being created are kept until its pid is known.
	if err := installForwarder(); err != nil {
		return err
	}
	defer forwardTo(-1)
	// A terminal's resizes are ours to copy; SIGPIPE is caught so that a
	// closed stdout ends the copy, not runsilo.
	var winch chan os.Signal
	if term != nil {
		winch = make(chan os.Signal, 4)
		signal.Notify(winch, unix.SIGWINCH, unix.SIGPIPE)
	}
	doc.StartOnCreate = true
	process.Trace("config read")
	sys, err := b.Create(ctx, doc)
	if err != nil {
		return err
	}
	if err := writePidFile(cf.pidFile, sys.Pid()); err != nil {
		_ = sys.Delete(ctx, true)
		return err
	}
	if term != nil {
		if err := term.attach(); err != nil {
			_ = sys.Delete(ctx, true)
			return err
		}
	}
	forwardTo(sys.Pid())
	code := waitResizing(ctx, winch, term, sys.Wait)
	// Reaped: the pid may name another process from now on.
	forwardTo(-1)
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

// waitResizing returns the exit status of the container's process (wait),
// copying our window size to its terminal on each SIGWINCH meanwhile.
// Other signals do not come here: the forwarder passes them on.
func waitResizing(ctx context.Context, winch chan os.Signal, term *terminalBridge, wait func(context.Context) (int, error)) int {
	if winch == nil {
		code, _ := wait(ctx)
		return code
	}
	done := make(chan int, 1)
	go func() {
		code, _ := wait(ctx)
		done <- code
	}()
	for {
		select {
		case code := <-done:
			term.drain()
			return code
		case s := <-winch:
			if s == unix.SIGWINCH {
				term.resize()
			}
		}
	}
}
