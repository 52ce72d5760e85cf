package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/silo-containers/silo/internal/api/client"
	"github.com/silo-containers/silo/internal/storage/archive"
)

// cpCommand is `silo cp`: a path of a container to the host or back, as
// tar streams over the archive API. What comes from a container is
// unpacked by the layer unpacker, which keeps a hostile tar (symlinks,
// "..") inside the destination.
func cpCommand(g *globals) *cobra.Command {
	var archiveMode bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  silo cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, src := splitCpArg(args[0])
			dstCtr, dst := splitCpArg(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr == "" && dstCtr == "":
				return errors.New("must specify at least one container source")
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			if srcCtr != "" {
				return copyFromContainer(cmd.Context(), c, srcCtr, src, dst)
			}
			return copyToContainer(cmd.Context(), c, src, dstCtr, dst, archiveMode)
		},
	}
	cmd.Flags().BoolVarP(&archiveMode, "archive", "a", false, "archive mode (copy all uid/gid information)")
	return cmd
}

// splitCpArg splits CONTAINER:PATH; a path with a slash before the colon
// (or starting with . or /) is local, as docker decides.
func splitCpArg(arg string) (string, string) {
	if filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok || strings.Contains(ctr, "/") {
		return "", arg
	}
	return ctr, p
}

// renameTop rewrites a tar stream's names: the first component from
// becomes to ("." entries, a directory's content, go under to).
func renameTop(r io.Reader, w io.Writer, from, to string) error {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(h.Name, "./")
		switch {
		case from == ".":
			name = path.Join(to, name)
		case name == from || name == from+"/":
			name = to
		case strings.HasPrefix(name, from+"/"):
			name = to + "/" + strings.TrimPrefix(name, from+"/")
		}
		if h.Typeflag == tar.TypeDir && !strings.HasSuffix(name, "/") {
			name += "/"
		}
		h.Name = name
		if h.Typeflag == tar.TypeLink {
			if l := strings.TrimPrefix(h.Linkname, "./"); from == "." {
				h.Linkname = path.Join(to, l)
			} else if l == from || strings.HasPrefix(l, from+"/") {
				h.Linkname = to + strings.TrimPrefix(l, from)
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

func copyFromContainer(ctx context.Context, c *client.Client, ctr, src, dst string) error {
	rc, st, err := c.CopyFromContainer(ctx, ctr, src)
	if err != nil {
		return err
	}
	defer rc.Close()
	if dst == "-" {
		_, err := io.Copy(os.Stdout, rc)
		return err
	}
	from := st.Name
	if strings.HasSuffix(src, "/.") {
		from = "."
	}
	dir, name := dst, from
	fi, err := os.Stat(dst)
	switch {
	case err == nil && fi.IsDir():
		// Into the directory, under the source's name.
	case err == nil && st.Mode.IsDir():
		return fmt.Errorf("cannot copy a directory to a file: %s", dst)
	case err == nil || errors.Is(err, fs.ErrNotExist):
		// A new name (or a file replaced): the parent must exist.
		dir, name = filepath.Dir(dst), filepath.Base(dst)
		if pfi, perr := os.Stat(dir); perr != nil || !pfi.IsDir() {
			return fmt.Errorf("destination directory %s does not exist", dir)
		}
		if strings.HasSuffix(dst, string(filepath.Separator)) && !st.Mode.IsDir() {
			return fmt.Errorf("destination %s is a directory that does not exist", dst)
		}
	default:
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(renameTop(rc, pw, from, name)) }()
	_, err = archive.Unpack(ctx, pr, dir, archive.Options{NoChown: os.Geteuid() != 0})
	pr.Close()
	return err
}

func copyToContainer(ctx context.Context, c *client.Client, src, ctr, dst string, keepOwners bool) error {
	if src == "-" {
		return c.CopyToContainer(ctx, ctr, dst, os.Stdin, keepOwners)
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	// Into an existing directory under the source's name, else under the
	// destination's name in its parent.
	dir, name := dst, filepath.Base(src)
	contents := strings.HasSuffix(src, string(filepath.Separator)+".")
	st, err := c.ContainerStatPath(ctx, ctr, dst)
	switch {
	case err == nil && st.Mode.IsDir():
		if contents {
			name = "."
		}
	case err == nil && fi.IsDir():
		return fmt.Errorf("cannot copy a directory to a file: %s", dst)
	case err == nil || client.IsNotFound(err):
		dir, name = path.Dir(dst), path.Base(dst)
	default:
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeLocalTar(pw, src, name)) }()
	err = c.CopyToContainer(ctx, ctr, dir, pr, keepOwners)
	pr.Close()
	return err
}

// writeLocalTar archives the local path src with its top entry named
// name ("." puts a directory's content at the top).
func writeLocalTar(w io.Writer, src, name string) error {
	tw := tar.NewWriter(w)
	src = filepath.Clean(src)
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(filepath.Join(name, rel))
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyN(tw, f, h.Size)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// exportCommand is `silo export`: the container's root file system as a
// tar, to stdout or -o FILE.
func exportCommand(g *globals) *cobra.Command {
	return tarOutputCommand(g, "export [OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive", cobra.ExactArgs(1),
		func(ctx context.Context, c *client.Client, args []string) (io.ReadCloser, error) {
			return c.ContainerExport(ctx, args[0])
		})
}

// diffCommand is `silo diff`: what the container changed (A added,
// C changed, D deleted), one path per line.
func diffCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			changes, err := c.ContainerChanges(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, ch := range changes {
				fmt.Printf("%s %s\n", ch.Kind, ch.Path)
			}
			return nil
		},
	}
}
