package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/silo-containers/silo/internal/api/client"
)

func psCommand(g *globals) *cobra.Command {
	var all, quiet, noTrunc, size bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     "ps [OPTIONS]",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, f, err := connectFiltered(cmd, g, filters)
			if err != nil {
				return err
			}
			list, err := c.ContainerList(cmd.Context(), all, size, f)
			if err != nil {
				return err
			}
			if quiet {
				for _, s := range list {
					fmt.Println(shortID(s.ID, noTrunc))
				}
				return nil
			}
			if format == "" || format == "table" {
				// docker's default columns.
				format = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
				if size {
					format += "\t{{.Size}}"
				}
			}
			return writePs(os.Stdout, list, format, noTrunc)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "display total file sizes")
	cmd.Flags().StringVar(&format, "format", "", "format output: table, table TEMPLATE, json, or a Go template ({{.ID}}, {{.Names}}, {{.Status}}…)")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	return cmd
}

func shortID(id string, noTrunc bool) string {
	id = strings.TrimPrefix(id, "sha256:")
	if !noTrunc && len(id) > 12 {
		return id[:12]
	}
	return id
}

func logsCommand(g *globals) *cobra.Command {
	var opts client.LogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			ctr, _, err := c.ContainerInspect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if opts.Since != "" {
				if opts.Since, err = sinceValue(opts.Since); err != nil {
					return err
				}
			}
			tty := ctr.Config != nil && ctr.Config.Tty
			return c.ContainerLogs(cmd.Context(), ctr.ID, opts, tty, os.Stdout, os.Stderr)
		},
	}
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "follow log output")
	cmd.Flags().BoolVarP(&opts.Timestamps, "timestamps", "t", false, "show timestamps")
	cmd.Flags().BoolVar(&opts.Details, "details", false, "show extra details provided to logs")
	cmd.Flags().StringVarP(&opts.Tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	cmd.Flags().StringVar(&opts.Since, "since", "", "show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
	return cmd
}

// sinceValue turns a relative duration ("42m") into unix seconds, as the
// docker CLI does; other values go to the daemon as they are.
func sinceValue(v string) (string, error) {
	if d, err := time.ParseDuration(v); err == nil {
		t := time.Now().Add(-d)
		return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()), nil
	}
	return v, nil
}

// eachContainer runs fn for every argument, prints each name that
// succeeded and reports the failures, as docker's multi-container verbs.
func eachContainer(g *globals, cmd *cobra.Command, args []string, fn func(c *client.Client, id string) error) error {
	c, err := g.connect(cmd.Context())
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range args {
		if err := fn(c, id); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Println(id)
	}
	if len(errs) > 0 {
		for _, e := range errs[:len(errs)-1] {
			fmt.Fprintln(os.Stderr, "silo:", e)
		}
		return errs[len(errs)-1]
	}
	return nil
}

func stopCommand(g *globals) *cobra.Command {
	return timedCommand(g, "stop [OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers",
		func(ctx context.Context, c *client.Client, id, sig string, t *int) error {
			return c.ContainerStop(ctx, id, sig, t)
		})
}

// timedCommand is stop or restart: a signal, then SIGKILL after -t
// seconds, for each container named.
func timedCommand(g *globals, use, short string, op func(ctx context.Context, c *client.Client, id, sig string, t *int) error) *cobra.Command {
	var timeout int
	var sig string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *int
			if cmd.Flags().Changed("time") {
				t = &timeout
			}
			return eachContainer(g, cmd, args, func(c *client.Client, id string) error {
				return op(cmd.Context(), c, id, sig, t)
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing the container")
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "signal to send to the container")
	return cmd
}

func killCommand(g *globals) *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(g, cmd, args, func(c *client.Client, id string) error {
				return c.ContainerKill(cmd.Context(), id, sig)
			})
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "signal to send to the container (default KILL)")
	return cmd
}

func rmCommand(g *globals) *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(g, cmd, args, func(c *client.Client, id string) error {
				if volumes {
					return c.ContainerRemoveVolumes(cmd.Context(), id, force)
				}
				return c.ContainerRemove(cmd.Context(), id, force)
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the removal of a running container")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	return cmd
}

func waitCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			var last error
			for _, id := range args {
				ch, err := c.ContainerWait(cmd.Context(), id, container.WaitConditionNotRunning)
				if err != nil {
					fmt.Fprintln(os.Stderr, "silo:", err)
					last = err
					continue
				}
				res := <-ch
				if res.Err != nil {
					fmt.Fprintln(os.Stderr, "silo:", res.Err)
					last = res.Err
					continue
				}
				fmt.Println(res.Code)
			}
			if last != nil {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}

// templateFuncs are the functions docker offers in --format templates.
var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"join":  strings.Join,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"split": strings.Split,
}

// renderTemplate executes a --format template on an inspected object: on
// its typed value, or on the raw JSON for fields the type lacks.
func renderTemplate(format string, v any, raw []byte) (string, error) {
	tmpl, err := template.New("").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return "", fmt.Errorf("template parsing error: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, v); err != nil {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if derr := dec.Decode(&m); derr != nil {
			return "", fmt.Errorf("template: %w", err)
		}
		buf.Reset()
		if err := tmpl.Execute(&buf, m); err != nil {
			return "", fmt.Errorf("template: %w", err)
		}
	}
	return buf.String(), nil
}

func inspectCommand(g *globals) *cobra.Command {
	return inspectCommandFor("inspect [OPTIONS] CONTAINER [CONTAINER...]", "Return low-level information on containers", containerInspector, g)
}
