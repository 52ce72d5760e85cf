package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/storage/sandbox"
)

// docker export and docker diff: a container's root file system as the
// overlay shows it (the image's layers under its sandbox), as a tar and as
// the list of what the container changed. Volumes, bind mounts and tmpfs
// are not part of it, as in Docker. A stopped container's sandbox is
// mounted for the call and unmounted after.

// withRootfs runs fn with the container's sandbox mounted, holding its
// operation lock (the lifecycle waits); on success it emits the event
// action, if any.
func (s *Service) withRootfs(ctx context.Context, ref string, action events.Action, fn func(c *Container, sb *sandbox.Sandbox, rootfs string) error) error {
	e, err := s.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	c := s.snapshot(e)
	sb, rootfs, wasMounted, err := sandbox.OpenMounted(ctx, s.sandboxDir(c.ID))
	if err != nil {
		return fmt.Errorf("container %s: %w", c.ID[:12], err)
	}
	if !wasMounted {
		defer func() {
			if err := sb.Unmount(context.WithoutCancel(ctx)); err != nil {
				s.log.Warn("unmount sandbox", "container", c.ID, "err", err)
			}
		}()
	}
	if err := fn(&c, sb, rootfs); err != nil {
		return err
	}
	if action != "" {
		s.emitEntry(e, action, nil) // events.go
	}
	return nil
}

// Export is GET /containers/{id}/export: a tar of the container's root
// file system, written to w.
func (s *Service) Export(ctx context.Context, ref string, w io.Writer) error {
	return s.withRootfs(ctx, ref, events.ActionExport, func(c *Container, _ *sandbox.Sandbox, rootfs string) error {
		if err := writeTarInRoot(ctx, w, rootfs, "/", ".", false); err != nil {
			return fmt.Errorf("export container %s: %w", c.ID[:12], err)
		}
		return nil
	})
}

// Changes is GET /containers/{id}/changes: what the container added,
// changed and deleted against its image, sorted by path. It reads the
// sandbox's overlay upper directory: a whiteout (a 0:0 character device)
// is a deletion; anything else is a change when an image layer has the
// path, else an addition. The empty files and directories the runtime
// made as mount points (/etc/hosts, a volume's directory) are left out,
// and so is a directory listed only because of them: Docker keeps those
// in an "init" layer under the container's, which its diff does not read.
func (s *Service) Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	var out []container.FilesystemChange
	err := s.withRootfs(ctx, ref, "", func(c *Container, sb *sandbox.Sandbox, _ string) error {
		upper, layers := sb.UpperDir(), sb.Layers()
		mountPoints, err := s.mountDestinations(c.ID)
		if err != nil {
			return fmt.Errorf("changes of container %s: %w", c.ID[:12], err)
		}
		stubParents := map[string]bool{}
		inImage := func(p string) bool {
			for _, l := range layers {
				if _, err := os.Lstat(filepath.Join(l, p)); err == nil {
					return true
				}
			}
			return false
		}
		err = filepath.WalkDir(upper, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rel, _ := filepath.Rel(upper, path)
			if rel == "." {
				return nil
			}
			p := "/" + rel
			if d.Type()&fs.ModeCharDevice != 0 {
				var st unix.Stat_t
				if err := unix.Lstat(path, &st); err == nil && st.Rdev == 0 {
					out = append(out, container.FilesystemChange{Path: p, Kind: container.ChangeDelete})
					return nil
				}
			}
			if mountPoints[p] && isEmptyStub(path, d) {
				stubParents[filepath.Dir(p)] = true
				return nil
			}
			kind := container.ChangeAdd
			if inImage(p) {
				kind = container.ChangeModify
			}
			out = append(out, container.FilesystemChange{Path: p, Kind: kind})
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("changes of container %s: %w", c.ID[:12], err)
		}
		out = slices.DeleteFunc(out, func(ch container.FilesystemChange) bool {
			return ch.Kind == container.ChangeModify && stubParents[ch.Path] && !hasListedBelow(out, ch.Path)
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b container.FilesystemChange) int { return strings.Compare(a.Path, b.Path) })
	if out == nil {
		out = []container.FilesystemChange{}
	}
	return out, nil
}

// mountDestinations is the set of the container's mount points, from its
// bundle's config.json.
func (s *Service) mountDestinations(id string) (map[string]bool, error) {
	spec, err := readBundleSpec(s.ctrDir(id)) // create.go
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, m := range spec.Mounts {
		set[path.Clean("/"+m.Destination)] = true
	}
	return set, nil
}

// isEmptyStub reports whether the upper entry at p is an empty regular
// file or an empty directory: what a runtime makes as a mount point.
func isEmptyStub(p string, d fs.DirEntry) bool {
	if d.IsDir() {
		entries, err := os.ReadDir(p)
		return err == nil && len(entries) == 0
	}
	if !d.Type().IsRegular() {
		return false
	}
	fi, err := d.Info()
	return err == nil && fi.Size() == 0
}

// hasListedBelow reports whether changes lists a path under dir.
func hasListedBelow(changes []container.FilesystemChange, dir string) bool {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	return slices.ContainsFunc(changes, func(ch container.FilesystemChange) bool { return strings.HasPrefix(ch.Path, prefix) })
}
