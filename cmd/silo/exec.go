package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

type execFlags struct {
	interactive, tty, detach bool
	env                      []string
	workdir, user            string
}

func execCommand(g *globals) *cobra.Command {
	var f execFlags
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return execContainer(cmd.Context(), g, &f, args[0], args[1:])
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	cmd.Flags().BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	cmd.Flags().BoolVarP(&f.detach, "detach", "d", false, "detached mode: run command in the background")
	cmd.Flags().StringArrayVarP(&f.env, "env", "e", nil, "set environment variables")
	cmd.Flags().StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	cmd.Flags().StringVarP(&f.user, "user", "u", "", "username or UID (format: \"<name|uid>[:<group|gid>]\")")
	return cmd
}

// execContainer is `silo exec`: create the exec, start it attached (a
// raw local terminal with -it, as `silo run -it`) and exit with the
// process's code, which the daemon records before the stream ends (126
// when it could not run, 127 when the command is not found). Errors of
// silo itself exit 1, as docker's.
func execContainer(ctx context.Context, g *globals, f *execFlags, ref string, cmdArgs []string) error {
	if f.interactive && f.tty && !f.detach && !isConsole(os.Stdin) {
		return &exitError{code: 1, err: errors.New("the input device is not a TTY")}
	}
	c, err := g.connect(ctx)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	req := container.ExecCreateRequest{
		User: f.user, Tty: f.tty, AttachStdin: f.interactive && !f.detach,
		AttachStdout: !f.detach, AttachStderr: !f.detach,
		Env: f.env, WorkingDir: f.workdir, Cmd: cmdArgs,
	}
	if f.tty {
		if h, w := terminalSize(); h > 0 && w > 0 {
			req.ConsoleSize = &[2]uint{uint(h), uint(w)}
		}
	}
	id, err := c.ExecCreate(ctx, ref, req)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if f.detach {
		if err := c.ExecStartDetached(ctx, id, f.tty); err != nil {
			return &exitError{code: 1, err: err}
		}
		return nil
	}
	conn, err := dialHost(ctx, g.host)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("cannot connect to silod at %s: %w", g.host, err)}
	}
	body, _ := json.Marshal(container.ExecStartRequest{Tty: f.tty, ConsoleSize: req.ConsoleSize})
	s, err := hijack(ctx, conn, "/exec/"+url.PathEscape(id)+"/start", "application/json", body, id)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer s.Close()
	s.resizePath = "/exec/" + url.PathEscape(id) + "/resize"
	restore, err := s.setupTerminal(ctx, g.host, id, f.tty, f.interactive)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer restore()
	cerr := s.copy(f.interactive)
	restore()
	if cerr != nil {
		fmt.Fprintln(os.Stderr, "silo: exec:", cerr)
	}
	// The daemon records the exit code before it ends the stream; a
	// short wait covers a stream cut another way.
	for i := 0; ; i++ {
		info, err := c.ExecInspect(ctx, id)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		if !info.Running && info.ExitCode != nil {
			if *info.ExitCode != 0 {
				return &exitError{code: *info.ExitCode}
			}
			return nil
		}
		if i == 50 {
			return &exitError{code: 1, err: errors.New("exec: the process did not report its exit")}
		}
		time.Sleep(100 * time.Millisecond)
	}
}
