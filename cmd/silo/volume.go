package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/api/types/volume"
	"github.com/spf13/cobra"

	"github.com/silo-containers/silo/internal/api/client"
)

// parseKV reads key=value flags (--label, --filter, --opt).
func parseKV(flag string, kvs []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid %s %q: want key=value", flag, kv)
		}
		out[k] = append(out[k], v)
	}
	return out, nil
}

// connectFiltered reads --filter key=value flags and connects to silod:
// the start of every list and prune command.
func connectFiltered(cmd *cobra.Command, g *globals, filters []string) (*client.Client, map[string][]string, error) {
	f, err := parseKV("filter", filters)
	if err != nil {
		return nil, nil, err
	}
	c, err := g.connect(cmd.Context())
	return c, f, err
}

// single keeps the last value of each key.
func single(m map[string][]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v[len(v)-1]
	}
	return out
}

func volumeCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes"}
	cmd.AddCommand(volumeCreateCommand(g), volumeLsCommand(g), volumeInspectCommand(g), volumeRmCommand(g), volumePruneCommand(g))
	return cmd
}

func volumeCreateCommand(g *globals) *cobra.Command {
	var driver string
	var labels, opts []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := parseKV("label", labels)
			if err != nil {
				return err
			}
			o, err := parseKV("opt", opts)
			if err != nil {
				return err
			}
			req := volume.CreateRequest{Driver: driver, Labels: single(l), DriverOpts: single(o)}
			if len(args) == 1 {
				req.Name = args[0]
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			v, err := c.VolumeCreate(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Println(v.Name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&driver, "driver", "d", "local", "volume driver name")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "set metadata for a volume")
	cmd.Flags().StringArrayVarP(&opts, "opt", "o", nil, "set driver specific options")
	return cmd
}

func volumeLsCommand(g *globals) *cobra.Command {
	var quiet bool
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, f, err := connectFiltered(cmd, g, filters)
			if err != nil {
				return err
			}
			list, err := c.VolumeList(cmd.Context(), f)
			if err != nil {
				return err
			}
			if quiet {
				for _, v := range list.Volumes {
					fmt.Println(v.Name)
				}
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 5, ' ', 0)
			fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
			for _, v := range list.Volumes {
				fmt.Fprintf(tw, "%s\t%s\n", v.Driver, v.Name)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "provide filter values (e.g. 'dangling=true')")
	return cmd
}

func volumeInspectCommand(g *globals) *cobra.Command {
	return inspectCommandFor("inspect [OPTIONS] VOLUME [VOLUME...]", "Display detailed information on one or more volumes", volumeInspector, g)
}

func volumeRmCommand(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			var last error
			for _, name := range args {
				if err := c.VolumeRemove(cmd.Context(), name, force); err != nil {
					if last != nil {
						fmt.Fprintln(os.Stderr, "silo:", last)
					}
					last = err
					continue
				}
				fmt.Println(name)
			}
			return last
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not error when the volume does not exist")
	return cmd
}

func volumePruneCommand(g *globals) *cobra.Command {
	var all, yes bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused volumes (anonymous ones unless --all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseKV("filter", filters)
			if err != nil {
				return err
			}
			if all {
				f["all"] = []string{"true"}
			}
			if !yes && !confirm("WARNING! This will remove anonymous local volumes not used by at least one container.") {
				return nil
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			rep, err := c.VolumePrune(cmd.Context(), f)
			if err != nil {
				return err
			}
			printPruned("Volumes", rep.VolumesDeleted, rep.SpaceReclaimed)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	cmd.Flags().BoolVarP(&yes, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. 'label=<label>')")
	return cmd
}

// confirm asks a yes/no question on the terminal; without a terminal it
// answers no (use --force).
func confirm(warning string) bool {
	fmt.Fprintf(os.Stderr, "%s\nAre you sure you want to continue? [y/N] ", warning)
	var answer string
	if _, err := fmt.Fscanln(os.Stdin, &answer); err != nil {
		fmt.Fprintln(os.Stderr)
		return false
	}
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes"
}
