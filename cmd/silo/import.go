package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// importCommand is `silo import FILE|- [REPOSITORY[:TAG]]`: a rootfs
// tarball (plain, gzip or zstd) becomes a one-layer image.
func importCommand(g *globals) *cobra.Command {
	var message string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			id, err := c.ImageImport(cmd.Context(), r, ref, message)
			if err != nil {
				return err
			}
			fmt.Println(id)
			return nil
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "set commit message for imported image")
	return cmd
}
