package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/silo-containers/silo/internal/api/client"
)

// inspectFunc fetches one object for inspect: its typed value (for
// templates) and its raw JSON (printed as is).
type inspectFunc func(ctx context.Context, ref string) (any, []byte, error)

// inspectEach prints objects as docker inspect does: one JSON array of
// the raw objects, or each object through the --format template. Objects
// that cannot be fetched are reported and make the exit status 1.
func inspectEach(ctx context.Context, refs []string, format string, get inspectFunc) error {
	var raws []json.RawMessage
	var failed error
	for _, ref := range refs {
		v, raw, err := get(ctx, ref)
		if err != nil {
			fmt.Fprintln(os.Stderr, "silo:", err)
			failed = err
			continue
		}
		if format == "" {
			raws = append(raws, raw)
			continue
		}
		out, err := renderTemplate(format, v, raw)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		fmt.Println(out)
	}
	if format == "" {
		if raws == nil {
			raws = []json.RawMessage{}
		}
		out, _ := json.MarshalIndent(raws, "", "    ")
		fmt.Println(string(out))
	}
	if failed != nil {
		return &exitError{code: 1}
	}
	return nil
}

// inspectCommandFor is an inspect command of one object kind.
func inspectCommandFor(use, short string, getter func(g *globals) inspectFunc, g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectEach(cmd.Context(), args, format, getter(g))
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output using the given Go template")
	return cmd
}

// imageInspector fetches an image for inspect.
func imageInspector(g *globals) inspectFunc {
	return func(ctx context.Context, ref string) (any, []byte, error) {
		c, err := g.connect(ctx)
		if err != nil {
			return nil, nil, err
		}
		return c.ImageInspect(ctx, ref)
	}
}

// containerInspector fetches a container for inspect, or, as docker
// inspect does, an image of that name when there is no such container.
func containerInspector(g *globals) inspectFunc {
	return func(ctx context.Context, ref string) (any, []byte, error) {
		c, err := g.connect(ctx)
		if err != nil {
			return nil, nil, err
		}
		v, raw, err := c.ContainerInspect(ctx, ref)
		if client.IsNotFound(err) {
			if iv, iraw, ierr := c.ImageInspect(ctx, ref); ierr == nil {
				return iv, iraw, nil
			}
		}
		return v, raw, err
	}
}

// networkInspector fetches a network for inspect.
func networkInspector(g *globals) inspectFunc {
	return func(ctx context.Context, ref string) (any, []byte, error) {
		c, err := g.connect(ctx)
		if err != nil {
			return nil, nil, err
		}
		return c.NetworkInspect(ctx, ref)
	}
}

func imageInspectCommand(g *globals) *cobra.Command {
	return inspectCommandFor("inspect [OPTIONS] IMAGE [IMAGE...]", "Display detailed information on one or more images", imageInspector, g)
}

// volumeInspector fetches a volume for inspect.
func volumeInspector(g *globals) inspectFunc {
	return func(ctx context.Context, ref string) (any, []byte, error) {
		c, err := g.connect(ctx)
		if err != nil {
			return nil, nil, err
		}
		return c.VolumeInspect(ctx, ref)
	}
}
