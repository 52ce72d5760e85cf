package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/api/client"
)

// distCommands are pull, push, tag and save, for the root command and
// for `silo image`.
func distCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{pullCommand(g), pushCommand(g), tagCommand(g), saveCommand(g)}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressDisplay shows a pull or push stream: on a terminal one line
// per layer, updated in place; otherwise one plain line per step (no
// byte counts).
type progressDisplay struct {
	out   io.Writer
	tty   bool
	ids   []string
	lines map[string]string
}

func newProgressDisplay(f *os.File) *progressDisplay {
	return &progressDisplay{out: f, tty: isTerminal(f), lines: map[string]string{}}
}

func (d *progressDisplay) show(m client.ProgressMessage) {
	text := m.Status
	if m.Progress != nil && m.Progress.Total > 0 {
		text = fmt.Sprintf("%s %s/%s", m.Status, units.HumanSizeWithPrecision(float64(m.Progress.Current), 3),
			units.HumanSizeWithPrecision(float64(m.Progress.Total), 3))
	}
	if m.Stream != "" {
		text = m.Stream
	}
	if m.ID == "" {
		fmt.Fprintln(d.out, text)
		if d.tty {
			// Lines above are no longer layer lines to move back to.
			d.ids, d.lines = nil, map[string]string{}
		}
		return
	}
	line := m.ID + ": " + text
	if !d.tty {
		if m.Status != "Downloading" && m.Status != "Uploading" {
			fmt.Fprintln(d.out, line)
		}
		return
	}
	if _, ok := d.lines[m.ID]; !ok {
		d.ids = append(d.ids, m.ID)
		d.lines[m.ID] = line
		fmt.Fprintln(d.out, line)
		return
	}
	d.lines[m.ID] = line
	up := 0
	for i := len(d.ids) - 1; i >= 0 && d.ids[i] != m.ID; i-- {
		up++
	}
	up++
	// Up to the layer's line, rewrite it, back down.
	fmt.Fprintf(d.out, "\x1b[%dA\r\x1b[2K%s\r\x1b[%dB", up, line, up)
}

func pullCommand(g *globals) *cobra.Command {
	return registryCommand(g, "pull NAME[:TAG|@DIGEST]", "Download an image from a registry", (*client.Client).ImagePull)
}

func pushCommand(g *globals) *cobra.Command {
	return registryCommand(g, "push NAME[:TAG]", "Upload an image to a registry", (*client.Client).ImagePush)
}

// registryCommand is pull or push: the credentials silo login stored for
// the image's registry go with the request, and the daemon's progress
// stream is shown as docker shows it.
func registryCommand(g *globals, use, short string, op func(*client.Client, context.Context, string, string) (io.ReadCloser, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			return registryOp(cmd.Context(), c, op, args[0], os.Stdout)
		},
	}
}

// registryOp pulls or pushes ref with the user's credentials for its
// registry, showing the progress on out.
func registryOp(ctx context.Context, c *client.Client, op func(*client.Client, context.Context, string, string) (io.ReadCloser, error), ref string, out *os.File) error {
	cred, err := registryAuth(ref) // login.go
	if err != nil {
		return err
	}
	body, err := op(c, ctx, ref, cred)
	if err != nil {
		return err
	}
	defer body.Close()
	return client.ReadProgress(body, newProgressDisplay(out).show)
}

func tagCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			return c.ImageTag(cmd.Context(), args[0], args[1])
		},
	}
}

func saveCommand(g *globals) *cobra.Command {
	return tarOutputCommand(g, "save [OPTIONS] IMAGE [IMAGE...]",
		"Save one or more images to a tar archive (streamed to STDOUT by default)", cobra.MinimumNArgs(1),
		func(ctx context.Context, c *client.Client, args []string) (io.ReadCloser, error) {
			return c.ImageSave(ctx, args)
		})
}

// tarOutputCommand is a command that writes the tar stream open returns
// to stdout or to -o FILE (save, export).
func tarOutputCommand(g *globals, use, short string, nargs cobra.PositionalArgs,
	open func(ctx context.Context, c *client.Client, args []string) (io.ReadCloser, error)) *cobra.Command {
	var output string
	verb, _, _ := strings.Cut(use, " ")
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  nargs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && isTerminal(os.Stdout) {
				return fmt.Errorf("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			body, err := open(cmd.Context(), c, args)
			if err != nil {
				return err
			}
			defer body.Close()
			return writeTarOutput(body, output, verb)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}

// writeTarOutput copies a tar stream to stdout, or to the file output
// through a temporary file beside it, renamed when complete, so that a
// failed save or export leaves no half tar under the name.
func writeTarOutput(body io.Reader, output, verb string) error {
	if output == "" {
		_, err := io.Copy(os.Stdout, body)
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(output), ".silo-"+verb+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", verb, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), output)
}
