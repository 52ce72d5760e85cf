package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/silo-containers/silo/internal/api/client"
)

// buildDebianCommand is `silo image build-debian`: a Debian image made by
// the daemon with debootstrap, its output shown as it comes. Ctrl-C closes
// the connection, which stops debootstrap and removes its tree.
func buildDebianCommand(g *globals) *cobra.Command {
	var o client.DebianOptions
	cmd := &cobra.Command{
		Use:   "build-debian [OPTIONS]",
		Short: "Make a Debian image with debootstrap on the daemon's host",
		Long: "Make a Debian image with debootstrap (apt-get install debootstrap) from the\n" +
			"host's Debian mirror. Containers have no uplink during builds, so add the\n" +
			"packages a build needs with --include (e.g. --include gcc,libc6-dev).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			body, err := c.BuildDebian(cmd.Context(), o)
			if err != nil {
				return err
			}
			defer body.Close()
			return client.ReadProgress(body, func(m client.ProgressMessage) {
				fmt.Fprint(os.Stdout, m.Stream)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Suite, "suite", "bookworm", "Debian release")
	f.StringSliceVar(&o.Include, "include", nil, "packages to add to the minbase set (comma-separated)")
	f.StringVar(&o.Mirror, "mirror", "", "Debian archive (default: the daemon host's apt source, else http://deb.debian.org/debian)")
	f.StringVarP(&o.Ref, "tag", "t", "", "name of the image (default debian:SUITE)")
	return cmd
}
