package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func imagesCommand(g *globals) *cobra.Command {
	var quiet, noTrunc, all bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				// docker images NAME: a reference filter.
				filters = append(filters, "reference="+args[0])
			}
			c, f, err := connectFiltered(cmd, g, filters)
			if err != nil {
				return err
			}
			list, err := c.ImageList(cmd.Context(), f)
			if err != nil {
				return err
			}
			if quiet {
				for _, i := range list {
					fmt.Println(shortID(i.ID, noTrunc))
				}
				return nil
			}
			if format == "" || format == "table" {
				format = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			}
			return writeImages(os.Stdout, list, format, noTrunc)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all images (silo keeps no intermediate images: the same list)")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output (dangling, reference, label, before, since)")
	cmd.Flags().StringVar(&format, "format", "", "format output: table, table TEMPLATE, json, or a Go template ({{.Repository}}, {{.Tag}}, {{.ID}}…)")
	return cmd
}

// splitTag splits "repo:tag" at the tag's colon (not a registry port's),
// and shows docker.io/library/ names short, as docker does.
func splitTag(ref string) (string, string) {
	repo, tag := ref, "<none>"
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	repo = strings.TrimPrefix(strings.TrimPrefix(repo, "docker.io/"), "library/")
	return repo, tag
}

func loadCommand(g *globals) *cobra.Command {
	var input string
	var busybox bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if busybox {
				return buildBusybox(g, cmd, "busybox:latest")
			}
			var r io.Reader = os.Stdin
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			} else if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				return fmt.Errorf("requested load from stdin, but stdin is empty")
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			msgs, err := c.ImageLoad(cmd.Context(), r)
			for _, m := range msgs {
				fmt.Println(m)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVar(&busybox, "busybox", false, "make busybox:latest offline from the host's busybox-static")
	return cmd
}

func buildBusybox(g *globals, cmd *cobra.Command, ref string) error {
	c, err := g.connect(cmd.Context())
	if err != nil {
		return err
	}
	msgs, err := c.BuildBusybox(cmd.Context(), ref)
	for _, m := range msgs {
		fmt.Println(m)
	}
	return err
}

func imageCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images"}
	var ref string
	bb := &cobra.Command{
		Use:   "build-busybox",
		Short: "Make a busybox image offline from the host's busybox-static",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return buildBusybox(g, cmd, ref) },
	}
	bb.Flags().StringVar(&ref, "tag", "busybox:latest", "name of the image")
	ls := imagesCommand(g)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"list"}
	rm := rmiCommand(g)
	rm.Use = "rm [OPTIONS] IMAGE [IMAGE...]"
	load := loadCommand(g)
	cmd.AddCommand(bb, buildDebianCommand(g), ls, rm, load, imageInspectCommand(g))
	cmd.AddCommand(distCommands(g)...)
	return cmd
}

func rmiCommand(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			for _, ref := range args {
				resp, err := c.ImageRemove(cmd.Context(), ref, force)
				if err != nil {
					return err
				}
				for _, d := range resp {
					if d.Untagged != "" {
						fmt.Println("Untagged: " + d.Untagged)
					}
					if d.Deleted != "" {
						fmt.Println("Deleted: " + d.Deleted)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force removal of the image")
	return cmd
}
