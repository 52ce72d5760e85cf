package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/compute"
	"github.com/silo-containers/silo/internal/compute/process"
	"github.com/silo-containers/silo/internal/errdefs"
)

// parseSignal accepts "KILL", "SIGKILL" or "9".
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %q out of range", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func newKillCommand(g *globals) *command {
	var all bool
	cmd := &command{
		Use:   "kill [flags] CONTAINER_ID [SIGNAL]",
		Short: "send a signal (default SIGTERM) to the container's init",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *command, args []string) error {
			sig := unix.SIGTERM
			if len(args) == 2 {
				var err error
				if sig, err = parseSignal(args[1]); err != nil {
					return err
				}
			}
			sys, err := g.open(cmd, args[0])
			if err != nil {
				return err
			}
			return sys.Signal(cmd.Context(), sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "send the signal to every process in the container")
	return cmd
}

func newDeleteCommand(g *globals) *command {
	var force bool
	cmd := &command{
		Use:   "delete [flags] CONTAINER_ID",
		Short: "delete a stopped container (-f: any container)",
		Args:  exactArgs(1),
		RunE: func(cmd *command, args []string) error {
			sys, err := g.open(cmd, args[0])
			if err != nil {
				if force && errdefs.IsNotFound(err) {
					return nil
				}
				return err
			}
			return sys.Delete(cmd.Context(), force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container's processes first")
	return cmd
}

// stateJSON is runc's `state` output.
type stateJSON struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func stateOf(cmd *command, sys compute.System) (*stateJSON, error) {
	p, err := sys.Properties(cmd.Context())
	if err != nil {
		return nil, err
	}
	pid := p.Pid
	if p.State == compute.Stopped {
		pid = 0
	}
	return &stateJSON{
		OCIVersion: specs.Version, ID: p.ID, Pid: pid, Status: string(p.State),
		Bundle: p.Bundle, Rootfs: sys.(*process.Container).Rootfs(), Created: p.Created,
		Owner: p.Owner, Annotations: p.Annotations,
	}, nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newStateCommand(g *globals) *command {
	return &command{
		Use:   "state CONTAINER_ID",
		Short: "print the state of a container as JSON",
		Args:  exactArgs(1),
		RunE: func(cmd *command, args []string) error {
			sys, err := g.open(cmd, args[0])
			if err != nil {
				return err
			}
			st, err := stateOf(cmd, sys)
			if err != nil {
				return err
			}
			return printJSON(st)
		},
	}
}

func newListCommand(g *globals) *command {
	var format string
	var quiet bool
	cmd := &command{
		Use:     "list [flags]",
		Aliases: []string{"ls"},
		Short:   "list containers",
		Args:    noArgs,
		RunE: func(cmd *command, args []string) error {
			b, err := g.backend()
			if err != nil {
				return err
			}
			ids, err := b.List(cmd.Context())
			if err != nil {
				return err
			}
			var states []*stateJSON
			for _, id := range ids {
				sys, err := b.Open(cmd.Context(), id)
				if err != nil {
					continue // deleted meanwhile
				}
				if st, err := stateOf(cmd, sys); err == nil {
					states = append(states, st)
				}
			}
			switch {
			case quiet:
				for _, s := range states {
					fmt.Println(s.ID)
				}
			case format == "json":
				if states == nil {
					states = []*stateJSON{}
				}
				return json.NewEncoder(os.Stdout).Encode(states)
			case format == "table":
				w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
				fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
				for _, s := range states {
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
				}
				return w.Flush()
			default:
				return fmt.Errorf("--format: unknown format %q (want table or json)", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only container ids")
	return cmd
}

func newPsCommand(g *globals) *command {
	var format string
	cmd := &command{
		Use:   "ps [flags] CONTAINER_ID [ps options]",
		Short: "list the processes running in a container",
		Args:  minArgs(1),
		RunE: func(cmd *command, args []string) error {
			sys, err := g.open(cmd, args[0])
			if err != nil {
				return err
			}
			pids, err := sys.Pids(cmd.Context())
			if err != nil {
				return err
			}
			switch format {
			case "json":
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(os.Stdout).Encode(pids)
			case "table":
				return psTable(pids, args[1:])
			}
			return fmt.Errorf("--format: unknown format %q (want table or json)", format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}

// psTable runs ps(1) and keeps the header and the container's lines.
func psTable(pids []int, psArgs []string) error {
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("run ps %s: %w", strings.Join(psArgs, " "), err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := -1
	for i, f := range strings.Fields(lines[0]) {
		if f == "PID" {
			col = i
		}
	}
	if col < 0 {
		return errors.New("ps output has no PID column")
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) > col {
			if p, err := strconv.Atoi(f[col]); err == nil && in[p] {
				fmt.Println(l)
			}
		}
	}
	return nil
}

func newPauseCommand(g *globals) *command {
	return &command{
		Use:   "pause CONTAINER_ID",
		Short: "freeze every process of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *command, args []string) error {
			sys, err := g.open(cmd, args[0])
			if err != nil {
				return err
			}
			return sys.Pause(cmd.Context())
		},
	}
}

func newResumeCommand(g *globals) *command {
	return &command{
		Use:   "resume CONTAINER_ID",
		Short: "thaw a paused container",
		Args:  exactArgs(1),
		RunE: func(cmd *command, args []string) error {
			sys, err := g.open(cmd, args[0])
			if err != nil {
				return err
			}
			return sys.Resume(cmd.Context())
		},
	}
}

// event is one line of `events`, as runc prints it.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

func newEventsCommand(g *globals) *command {
	var stats bool
	var interval time.Duration
	cmd := &command{
		Use:   "events [flags] CONTAINER_ID",
		Short: "print container statistics (--stats once, else every --interval)",
		Args:  exactArgs(1),
		RunE: func(cmd *command, args []string) error {
			sys, err := g.open(cmd, args[0])
			if err != nil {
				return err
			}
			c := sys.(*process.Container)
			if interval <= 0 {
				return fmt.Errorf("--interval: must be positive")
			}
			enc := json.NewEncoder(os.Stdout)
			for {
				p, _ := sys.Properties(cmd.Context())
				if p.State == compute.Stopped {
					return fmt.Errorf("container %q is not running: %w", c.ID(), errdefs.ErrConflict)
				}
				s, err := c.Stats(cmd.Context())
				if err != nil {
					return err
				}
				if err := enc.Encode(event{Type: "stats", ID: c.ID(), Data: s}); err != nil {
					return err
				}
				if stats {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "print statistics once and exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "time between statistics")
	return cmd
}

func newFeaturesCommand() *command {
	return &command{
		Use:   "features",
		Short: "print what this runtime supports (OCI features document)",
		Args:  noArgs,
		RunE: func(cmd *command, args []string) error {
			return printJSON(process.Features())
		},
	}
}

func specVersion() string { return specs.Version }
