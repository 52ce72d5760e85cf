package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/build"
	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
	"github.com/silo-containers/silo/internal/storage/sandbox"
)

// BuildStore is what builds and commits need of the image store beyond
// ImageStore (*storage.Store satisfies it; type-asserted, like DistStore).
type BuildStore interface {
	Commit(ctx context.Context, opts storage.CommitOptions) (storage.ImageInfo, error)
	DockerConfig(ctx context.Context, ref string) (dockerspec.DockerOCIImage, error)
	Tag(ctx context.Context, src, dst string) error
	Pull(ctx context.Context, ref string, opts storage.RegistryOptions) (storage.ImageInfo, error)
}

var _ BuildStore = (*storage.Store)(nil)

// builders are the builders of the services of this process, made on
// first use (a Service has no field for one: builds are optional).
var builders struct {
	mu sync.Mutex
	m  map[*Service]*build.Builder
}

func (s *Service) buildStore() (BuildStore, error) {
	st, ok := s.cfg.Images.(BuildStore)
	if !ok {
		return nil, fmt.Errorf("the image store cannot commit images: %w", errdefs.ErrNotImplemented)
	}
	return st, nil
}

// builder returns the service's builder: its cache under
// DATA/build-cache, its work directory (contexts, downloads) DATA/build,
// emptied of what an interrupted build left.
func (s *Service) builder() (*build.Builder, error) {
	builders.mu.Lock()
	defer builders.mu.Unlock()
	if b, ok := builders.m[s]; ok {
		return b, nil
	}
	st, err := s.buildStore()
	if err != nil {
		return nil, err
	}
	cache, err := build.OpenCache(filepath.Join(s.cfg.DataRoot, "build-cache"))
	if err != nil {
		return nil, err
	}
	work := filepath.Join(s.cfg.DataRoot, "build")
	s.cleanBuildWork(work)
	s.removeStaleBuildContainers()
	b, err := build.New(&buildBackend{s: s, st: st, work: work}, cache, work)
	if err != nil {
		return nil, err
	}
	if builders.m == nil {
		builders.m = map[*Service]*build.Builder{}
	}
	builders.m[s] = b
	return b, nil
}

// cleanBuildWork removes what a crashed build left in the work directory:
// sandboxes (unmounted through their package) and unpacked contexts.
func (s *Service) cleanBuildWork(work string) {
	ents, err := os.ReadDir(work)
	if err != nil {
		return
	}
	for _, e := range ents {
		dir := filepath.Join(work, e.Name())
		if sb, err := sandbox.Open(filepath.Join(dir, "sandbox")); err == nil {
			if err := sb.Remove(context.Background()); err != nil {
				s.log.Warn("remove leftover build sandbox", "dir", dir, "err", err)
				continue
			}
		}
		os.RemoveAll(dir)
		_ = s.cfg.Images.Release(context.Background(), "build-"+e.Name())
	}
}

// buildLabel marks the containers of RUN steps.
const buildLabel = "io.silo.build"

// removeStaleBuildContainers removes the RUN containers a build that
// died with the daemon left (builders are made once per process, so none
// of them is in use yet).
func (s *Service) removeStaleBuildContainers() {
	ctx := context.Background()
	stale, err := s.List(ctx, ListOptions{All: true, Filters: Filters{"label": {buildLabel + "=intermediate"}}})
	if err != nil {
		s.log.Warn("list stale build containers", "err", err)
		return
	}
	for _, c := range stale {
		if err := s.Remove(ctx, c.ID, RemoveOptions{Force: true}); err != nil {
			s.log.Warn("remove stale build container", "container", c.ID, "err", err)
		}
	}
}

// Build builds an image from the build context tar r (see package build)
// and returns its ID. Progress text goes to opts.Out.
func (s *Service) Build(ctx context.Context, r io.Reader, opts build.Options) (string, error) {
	b, err := s.builder()
	if err != nil {
		return "", err
	}
	return b.FromTar(ctx, r, opts)
}

// BuildPrune empties the build cache and returns the image IDs it named
// (docker builder prune); images nothing else uses are then collected.
func (s *Service) BuildPrune(ctx context.Context) ([]string, error) {
	b, err := s.builder()
	if err != nil {
		return nil, err
	}
	return b.Prune(ctx)
}

// buildBackend implements build.Backend over the service and the store.
type buildBackend struct {
	s    *Service
	st   BuildStore
	work string
}

var _ build.Backend = (*buildBackend)(nil)

func (b *buildBackend) Image(ctx context.Context, ref string) (build.Image, error) {
	dc, err := b.st.DockerConfig(ctx, ref)
	if err != nil {
		return build.Image{}, err
	}
	info, err := b.s.cfg.Images.Image(ctx, ref)
	if err != nil {
		return build.Image{}, err
	}
	return build.Image{ID: info.ID.String(), Config: dc.Config}, nil
}

func (b *buildBackend) Pull(ctx context.Context, ref string) (build.Image, error) {
	info, err := b.st.Pull(ctx, ref, storage.RegistryOptions{})
	if err != nil {
		return build.Image{}, registryError(err)
	}
	return b.Image(ctx, info.ID.String())
}

func (b *buildBackend) CommitConfig(ctx context.Context, parent string, cfg dockerspec.DockerOCIImageConfig, createdBy, holder string) (build.Image, error) {
	info, err := b.st.Commit(ctx, storage.CommitOptions{Parent: parent, Config: cfg, CreatedBy: createdBy, Holder: holder})
	if err != nil {
		return build.Image{}, err
	}
	return build.Image{ID: info.ID.String(), Config: cfg}, nil
}

func (b *buildBackend) Tag(ctx context.Context, id, ref string) error { return b.st.Tag(ctx, id, ref) }

func (b *buildBackend) Release(ctx context.Context, holder string) error {
	return b.s.cfg.Images.Release(ctx, holder)
}

func (b *buildBackend) NewContainer(ctx context.Context, cfg build.ContainerConfig) (build.Container, error) {
	if cfg.Cmd == nil {
		return b.newSandbox(ctx, cfg.Image)
	}
	if cfg.Image == "" {
		return nil, fmt.Errorf("RUN on an empty (scratch) image: there is nothing to run: %w", errdefs.ErrInvalidArgument)
	}
	net := container.NetworkMode(cfg.NetworkMode)
	res, err := b.s.Create(ctx, CreateRequest{
		Config: &container.Config{
			Image: cfg.Image, Cmd: cfg.Cmd, Entrypoint: []string{""}, Env: cfg.Env,
			User: cfg.User, WorkingDir: cfg.WorkingDir,
			Labels: map[string]string{buildLabel: "intermediate"},
		},
		HostConfig: &container.HostConfig{NetworkMode: net},
	})
	if err != nil {
		return nil, err
	}
	return &runContainer{b: b, id: res.ID, image: cfg.Image}, nil
}

// newSandbox makes a bare sandbox on image (no container, no process) for
// a file-system step: DATA/build/<id>/sandbox, the image held by
// "build-<id>" while it exists.
func (b *buildBackend) newSandbox(ctx context.Context, image string) (_ build.Container, err error) {
	id := newID()
	dir := filepath.Join(b.work, id)
	holder := "build-" + id
	var layers []string
	if image != "" {
		if err := b.s.cfg.Images.Hold(ctx, holder, image); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				_ = b.s.cfg.Images.Release(context.WithoutCancel(ctx), holder)
			}
		}()
		if layers, err = b.s.cfg.Images.LayerDirs(ctx, image); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("build sandbox: %w", err)
	}
	sb, err := b.s.newSandbox(ctx, filepath.Join(dir, "sandbox"), layers, 0) // spares.go
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &sandboxContainer{b: b, id: id, dir: dir, holder: holder, image: image, sb: sb}
	if c.rootfs, err = sb.Mount(ctx); err != nil {
		_ = c.Remove(context.WithoutCancel(ctx))
		return nil, err
	}
	return c, nil
}

// sandboxContainer is the sandbox of a COPY/ADD/WORKDIR step.
type sandboxContainer struct {
	b                      *buildBackend
	id, dir, holder, image string
	rootfs                 string
	sb                     *sandbox.Sandbox
}

func (c *sandboxContainer) ID() string     { return c.id }
func (c *sandboxContainer) Rootfs() string { return c.rootfs }

func (c *sandboxContainer) Run(ctx context.Context, out io.Writer) (int, error) {
	return 0, fmt.Errorf("a file-system step has no process: %w", errdefs.ErrInvalidArgument)
}

func (c *sandboxContainer) Commit(ctx context.Context, cfg dockerspec.DockerOCIImageConfig, createdBy, holder string) (build.Image, error) {
	info, err := c.b.st.Commit(ctx, storage.CommitOptions{Parent: c.image, Dir: c.sb.UpperDir(), Config: cfg, CreatedBy: createdBy, Holder: holder})
	if err != nil {
		return build.Image{}, err
	}
	return build.Image{ID: info.ID.String(), Config: cfg}, nil
}

func (c *sandboxContainer) Remove(ctx context.Context) error {
	if err := c.sb.Remove(ctx); err != nil {
		return err
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return err
	}
	return c.b.s.cfg.Images.Release(ctx, c.holder)
}

// runContainer is the engine container of a RUN step.
type runContainer struct {
	b         *buildBackend
	id, image string
}

func (c *runContainer) ID() string     { return c.id }
func (c *runContainer) Rootfs() string { return filepath.Join(c.b.s.sandboxDir(c.id), "rootfs") }

// Run attaches (before the start, so no output is lost), starts, copies
// the output until it ends and returns the exit code.
func (c *runContainer) Run(ctx context.Context, out io.Writer) (int, error) {
	_, att, err := c.b.s.Attach(ctx, c.id, AttachOptions{Stdout: true, Stderr: true})
	if err != nil {
		return 0, err
	}
	defer att.Close()
	if err := c.b.s.Start(ctx, c.id); err != nil {
		return 0, err
	}
	if err := demux(out, att); err != nil && ctx.Err() == nil {
		return 0, fmt.Errorf("read output of %s: %w", c.id[:12], err)
	}
	return c.b.s.Wait(ctx, c.id, container.WaitConditionNotRunning)
}

// demux copies docker's multiplexed stream (8-byte frame headers) to out.
func demux(out io.Writer, r io.Reader) error {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return err
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		if _, err := io.CopyN(out, r, n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func (c *runContainer) Commit(ctx context.Context, cfg dockerspec.DockerOCIImageConfig, createdBy, holder string) (build.Image, error) {
	info, err := c.b.s.commitSandbox(ctx, c.id, storage.CommitOptions{Parent: c.image, Config: cfg, CreatedBy: createdBy, Holder: holder})
	if err != nil {
		return build.Image{}, err
	}
	return build.Image{ID: info.ID.String(), Config: cfg}, nil
}

func (c *runContainer) Remove(ctx context.Context) error {
	return c.b.s.Remove(ctx, c.id, RemoveOptions{Force: true})
}

func (b *buildBackend) LayerDirs(ctx context.Context, id string) ([]string, error) {
	return b.s.cfg.Images.LayerDirs(ctx, id)
}
