package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// The command line is parsed with the standard library's flag package, not
// cobra: runsilo is on every container's start path (twice: the parent and
// the container's init are this binary), and cobra with its dependencies
// made the binary a third larger and each start measurably slower. runc's
// grammar is simple enough: global flags, a command, its flags, then
// positional arguments (flags after the first argument are arguments, as
// with runc's urfave/cli).

// command is one runsilo subcommand.
type command struct {
	// Use is "name [flags] ARGS…"; its first word is the command's name.
	Use     string
	Short   string
	Aliases []string
	// Args checks the positional arguments.
	Args func(args []string) error
	RunE func(cmd *command, args []string) error

	flags flagSet
	ctx   context.Context
}

func (c *command) name() string { return strings.Fields(c.Use)[0] }

// Flags returns the command's flag set, created on first use.
func (c *command) Flags() flagSet {
	if c.flags.FlagSet == nil {
		c.flags = flagSet{flag.NewFlagSet(c.name(), flag.ContinueOnError)}
		c.flags.SetOutput(os.Stderr)
	}
	return c.flags
}

// Context is the context the command runs under.
func (c *command) Context() context.Context { return c.ctx }

// flagSet adds to flag.FlagSet what runc's command line needs: a one-letter
// alias per flag, repeatable string flags, and whether a flag was given.
type flagSet struct{ *flag.FlagSet }

// StringVarP defines --name and -short for the same string.
func (f flagSet) StringVarP(p *string, name, short, value, usage string) {
	f.StringVar(p, name, value, usage)
	if short != "" {
		f.StringVar(p, short, value, "shorthand for --"+name)
	}
}

// BoolVarP defines --name and -short for the same bool.
func (f flagSet) BoolVarP(p *bool, name, short string, value bool, usage string) {
	f.BoolVar(p, name, value, usage)
	if short != "" {
		f.BoolVar(p, short, value, "shorthand for --"+name)
	}
}

// StringArrayVarP defines a repeatable string flag (-e A -e B).
func (f flagSet) StringArrayVarP(p *[]string, name, short string, usage string) {
	f.Var((*stringList)(p), name, usage)
	if short != "" {
		f.Var((*stringList)(p), short, "shorthand for --"+name)
	}
}

// Changed reports whether the flag was given on the command line.
func (f flagSet) Changed(name string) bool {
	given := false
	f.Visit(func(fl *flag.Flag) { given = given || fl.Name == name })
	return given
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func exactArgs(n int) func([]string) error {
	return func(args []string) error {
		if len(args) != n {
			return fmt.Errorf("accepts %d arg(s), received %d", n, len(args))
		}
		return nil
	}
}

func rangeArgs(lo, hi int) func([]string) error {
	return func(args []string) error {
		if len(args) < lo || len(args) > hi {
			return fmt.Errorf("accepts between %d and %d arg(s), received %d", lo, hi, len(args))
		}
		return nil
	}
}

func minArgs(n int) func([]string) error {
	return func(args []string) error {
		if len(args) < n {
			return fmt.Errorf("requires at least %d arg(s), received %d", n, len(args))
		}
		return nil
	}
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("accepts no arguments, received %d", len(args))
	}
	return nil
}

// cli is the whole command line: global flags and the commands.
type cli struct {
	g        *globals
	global   *flag.FlagSet
	version  bool
	commands []*command
}

func newCLI(g *globals) *cli {
	c := &cli{g: g, global: flag.NewFlagSet("runsilo", flag.ContinueOnError)}
	f := c.global
	f.SetOutput(os.Stderr)
	f.StringVar(&g.root, "root", "/run/runsilo", "root directory for storage of container state")
	f.StringVar(&g.log, "log", "", "set the log file to write runsilo logs to")
	f.StringVar(&g.logFormat, "log-format", "text", "set the log format ('text' or 'json')")
	f.BoolVar(&g.debug, "debug", false, "enable debug logging (step timings on stderr)")
	f.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "use systemd for cgroups (not supported)")
	f.StringVar(&g.rootless, "rootless", "auto", "ignore cgroup permission errors (accepted for compatibility)")
	f.StringVar(&g.criu, "criu", "", "path to criu (accepted for compatibility; checkpoint is not supported)")
	f.BoolVar(&c.version, "version", false, "print the version")
	f.BoolVar(&c.version, "v", false, "shorthand for --version")
	f.Usage = c.usage
	c.commands = []*command{
		newSpecCommand(), newCreateCommand(g), newStartCommand(g), newRunCommand(g),
		newExecCommand(g), newKillCommand(g), newDeleteCommand(g), newStateCommand(g),
		newListCommand(g), newPsCommand(g), newPauseCommand(g), newResumeCommand(g),
		newEventsCommand(g), newUpdateCommand(g), newFeaturesCommand(),
	}
	return c
}

func (c *cli) usage() {
	w := os.Stderr
	fmt.Fprintf(w, "runsilo %s: silo's OCI runtime (runc-compatible command line)\n\n", version)
	fmt.Fprintf(w, "usage: runsilo [global flags] COMMAND [flags] [ARGS]\n\ncommands:\n")
	cmds := append([]*command{}, c.commands...)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name() < cmds[j].name() })
	for _, cmd := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", cmd.name(), cmd.Short)
	}
	fmt.Fprintf(w, "\nglobal flags:\n")
	c.global.PrintDefaults()
}

// errHelp marks a help request, which is not a failure.
var errHelp = flag.ErrHelp

// execute parses args (without the program name) and runs the command.
func (c *cli) execute(ctx context.Context, args []string) error {
	if err := c.global.Parse(args); err != nil {
		return err
	}
	if c.version {
		fmt.Printf("runsilo version %s\nspec: %s\n", version, specVersion())
		return nil
	}
	if c.g.logFormat != "text" && c.g.logFormat != "json" {
		return fmt.Errorf("--log-format: unknown format %q (want text or json)", c.g.logFormat)
	}
	rest := c.global.Args()
	if len(rest) == 0 || rest[0] == "help" {
		c.usage()
		if len(rest) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	cmd := c.find(rest[0])
	if cmd == nil {
		return fmt.Errorf("unknown command %q (see runsilo --help)", rest[0])
	}
	fs := cmd.Flags()
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: runsilo %s\n\n%s\n\nflags:\n", cmd.Use, cmd.Short)
		fs.PrintDefaults()
	}
	if err := fs.Parse(rest[1:]); err != nil {
		return err
	}
	pos := fs.Args()
	if cmd.Args != nil {
		if err := cmd.Args(pos); err != nil {
			return fmt.Errorf("%s: %w", cmd.name(), err)
		}
	}
	if c.g.debug {
		processDebug()
	}
	cmd.ctx = ctx
	return cmd.RunE(cmd, pos)
}

func (c *cli) find(name string) *command {
	for _, cmd := range c.commands {
		if cmd.name() == name {
			return cmd
		}
		for _, a := range cmd.Aliases {
			if a == name {
				return cmd
			}
		}
	}
	return nil
}
