package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute"
	"github.com/silo-containers/silo/internal/compute/process"
)

type execFlags struct {
	process       string
	detach        bool
	pidFile       string
	consoleSocket string
	tty           bool
	cwd           string
	env           []string
	user          string
	additionalGid []string
	caps          []string
	noNewPrivs    bool
	preserveFds   int
	apparmor      string
	processLabel  string
	ignorePaused  bool
	cgroup        string
}

func newExecCommand(g *globals) *command {
	var ef execFlags
	cmd := &command{
		Use:   "exec [flags] CONTAINER_ID [COMMAND [ARG...]]",
		Short: "run a new process inside a container",
		Args:  minArgs(1),
		RunE: func(cmd *command, args []string) error {
			sys, err := g.open(cmd, args[0])
			if err != nil {
				return err
			}
			proc, err := ef.buildProcess(sys.(*process.Container), args[1:])
			if err != nil {
				return err
			}
			return runExec(cmd, sys, proc, &ef)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ef.process, "process", "p", "", "path to a process.json")
	f.BoolVarP(&ef.detach, "detach", "d", false, "detach from the process")
	f.StringVar(&ef.pidFile, "pid-file", "", "file to write the process id to")
	f.StringVar(&ef.consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	f.BoolVarP(&ef.tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.StringVar(&ef.cwd, "cwd", "", "current working directory in the container")
	f.StringArrayVarP(&ef.env, "env", "e", "set an environment variable (KEY=VALUE)")
	f.StringVarP(&ef.user, "user", "u", "", "UID[:GID] to run as")
	f.StringArrayVarP(&ef.additionalGid, "additional-gids", "g", "additional gids")
	f.StringArrayVarP(&ef.caps, "cap", "c", "add a capability to the bounding, effective, permitted and ambient sets")
	f.BoolVar(&ef.noNewPrivs, "no-new-privs", false, "set no_new_privs")
	f.IntVar(&ef.preserveFds, "preserve-fds", 0, "pass N additional file descriptors (from 3)")
	f.StringVar(&ef.apparmor, "apparmor", "", "AppArmor profile (ignored: no AppArmor on this host)")
	f.StringVar(&ef.processLabel, "process-label", "", "SELinux label (ignored: no SELinux on this host)")
	f.BoolVar(&ef.ignorePaused, "ignore-paused", false, "accepted for compatibility")
	f.StringVar(&ef.cgroup, "cgroup", "", "accepted for compatibility (sub-cgroup is not supported)")
	return cmd
}

// buildProcess makes the exec'd process from --process or from the command
// line on top of the container's own process (env, user, caps, rlimits).
func (ef *execFlags) buildProcess(c *process.Container, args []string) (*specs.Process, error) {
	if ef.process != "" {
		var p specs.Process
		if err := readJSON(ef.process, &p); err != nil {
			return nil, err
		}
		return &p, nil
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("exec: no command given and no --process")
	}
	spec, err := c.Spec()
	if err != nil {
		return nil, err
	}
	base := spec.Process
	p := *base
	p.Args = args
	p.Terminal = ef.tty
	p.ConsoleSize = nil
	p.Env = append(append([]string{}, base.Env...), ef.env...)
	if ef.cwd != "" {
		p.Cwd = ef.cwd
	}
	if ef.user != "" {
		uidStr, gidStr, hasGid := strings.Cut(ef.user, ":")
		uid, err := strconv.ParseUint(uidStr, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--user %q: uid must be numeric", ef.user)
		}
		p.User.UID = uint32(uid)
		if hasGid {
			gid, err := strconv.ParseUint(gidStr, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("--user %q: gid must be numeric", ef.user)
			}
			p.User.GID = uint32(gid)
		}
	}
	for _, g := range ef.additionalGid {
		gid, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--additional-gids %q: must be numeric", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
	}
	if len(ef.caps) > 0 {
		caps := specs.LinuxCapabilities{}
		if base.Capabilities != nil {
			caps = *base.Capabilities
		}
		for _, c := range ef.caps {
			c = strings.ToUpper(c)
			caps.Bounding = append(caps.Bounding, c)
			caps.Effective = append(caps.Effective, c)
			caps.Permitted = append(caps.Permitted, c)
			caps.Ambient = append(caps.Ambient, c)
		}
		p.Capabilities = &caps
	}
	if ef.noNewPrivs {
		p.NoNewPrivileges = true
	}
	return &p, nil
}

func runExec(cmd *command, sys compute.System, proc *specs.Process, ef *execFlags) error {
	ctx := cmd.Context()
	params := &compute.ProcessParams{Process: proc, ConsoleSocket: ef.consoleSocket, PreserveFDs: ef.preserveFds}
	var term *terminalBridge
	if proc.Terminal && ef.consoleSocket == "" {
		if ef.detach {
			return fmt.Errorf("exec: --detach with a terminal needs --console-socket")
		}
		var err error
		if term, err = newTerminalBridge(); err != nil {
			return err
		}
		defer term.Close()
		params.Console = term.remote
	}
	var winch chan os.Signal
	if !ef.detach {
		// As with run: the signals we get are the process's.
		if err := installForwarder(); err != nil {
			return err
		}
		defer forwardTo(-1)
		if term != nil {
			winch = make(chan os.Signal, 4)
			signal.Notify(winch, unix.SIGWINCH, unix.SIGPIPE)
		}
	}
	p, err := sys.CreateProcess(ctx, params)
	if err != nil {
		return err
	}
	if err := writePidFile(ef.pidFile, p.Pid()); err != nil {
		return err
	}
	if ef.detach {
		return nil
	}
	if term != nil {
		if err := term.attach(); err != nil {
			return err
		}
	}
	forwardTo(p.Pid())
	code := waitResizing(ctx, winch, term, p.Wait)
	forwardTo(-1)
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}
