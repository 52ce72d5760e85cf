package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

func commitCommand(g *globals) *cobra.Command {
	var author, message string
	var changes []string
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"container": {args[0]}, "author": {author}, "comment": {message}}
			if len(args) == 2 {
				repo, tag := args[1], ""
				if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
					repo, tag = repo[:i], repo[i+1:]
				}
				q.Set("repo", repo)
				q.Set("tag", tag)
			}
			for _, c := range changes {
				q.Add("changes", c)
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			id, err := c.ContainerCommit(cmd.Context(), q)
			if err != nil {
				return err
			}
			fmt.Println(id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&author, "author", "a", "", "author")
	f.StringVarP(&message, "message", "m", "", "commit message")
	f.StringArrayVarP(&changes, "change", "c", nil, "Dockerfile instruction to apply (not supported yet)")
	return cmd
}
