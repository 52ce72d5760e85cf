package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	mobynet "github.com/moby/moby/api/types/network"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/engine/ocispec"
	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/sandbox"
)

// CreateRequest is what `docker create` sends.
type CreateRequest struct {
	// Name is the container name; empty means a generated one.
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	// NetworkingConfig holds per-network endpoint settings (aliases,
	// static addresses) and extra networks to join.
	NetworkingConfig *mobynet.NetworkingConfig
}

// CreateResponse names the new container.
type CreateResponse struct {
	ID       string
	Warnings []string
}

// Create makes a container: it resolves the image, creates and mounts the
// writable sandbox over the image's layers, generates the OCI spec and
// writes it as the bundle's config.json, and records the container. On
// failure nothing of it stays.
func (s *Service) Create(ctx context.Context, req CreateRequest) (_ CreateResponse, err error) {
	cfg, host := req.Config, req.HostConfig
	if cfg == nil {
		return CreateResponse{}, fmt.Errorf("create container: config cannot be empty: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.Image == "" {
		return CreateResponse{}, fmt.Errorf("create container: no image given: %w", errdefs.ErrInvalidArgument)
	}
	cfgCopy, hostCopy := *cfg, container.HostConfig{}
	if host != nil {
		hostCopy = *host
	}
	cfg, host = &cfgCopy, &hostCopy
	if host.Isolation, err = isolation(host.Isolation); err != nil {
		return CreateResponse{}, err
	}
	if err := checkLogConfig(host); err != nil { // logcapture.go
		return CreateResponse{}, err
	}
	if err := checkRestartPolicy(host); err != nil {
		return CreateResponse{}, err
	}
	size, err := sandboxSize(host.StorageOpt)
	if err != nil {
		return CreateResponse{}, err
	}
	endpoints, err := s.planNetworks(ctx, cfg, host, req.NetworkingConfig)
	if err != nil {
		return CreateResponse{}, fmt.Errorf("create container: %w", err)
	}
	name := ""
	if req.Name != "" {
		if name, err = checkName(req.Name); err != nil {
			return CreateResponse{}, err
		}
	}

	img, err := s.cfg.Images.Image(ctx, cfg.Image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return CreateResponse{}, fmt.Errorf("no such image: %s: %w", cfg.Image, errdefs.ErrNotFound)
		}
		return CreateResponse{}, fmt.Errorf("create container: %w", err)
	}
	mounts, err := s.planMounts(cfg, host, &img.Config.Config, s.mountPointsOfRef) // mounts.go
	if err != nil {
		return CreateResponse{}, fmt.Errorf("create container: %w", err)
	}
	if err := s.prepareHealth(ctx, cfg, img.ID.String()); err != nil { // health.go
		return CreateResponse{}, fmt.Errorf("create container: %w", err)
	}
	id := newID()
	fail := func(err error) (CreateResponse, error) {
		return CreateResponse{}, fmt.Errorf("create container %s: %w", id[:12], err)
	}
	// The image is held against garbage collection (a database commit)
	// while the sandbox is made; the record goes in only once it is. An
	// image removed meanwhile fails the hold, and the create.
	holdDone := make(chan error, 1)
	go func() { holdDone <- s.cfg.Images.Hold(ctx, id, img.ID.String()) }()
	var holdErr error
	holdJoined := false
	waitHold := func() error {
		if !holdJoined {
			holdErr, holdJoined = <-holdDone, true
		}
		return holdErr
	}
	defer func() {
		if err != nil && waitHold() == nil {
			_ = s.cfg.Images.Release(context.WithoutCancel(ctx), id)
		}
	}()
	layers, err := s.cfg.Images.LayerDirs(ctx, img.ID.String())
	if err != nil {
		return fail(err)
	}
	dir := s.ctrDir(id)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fail(err)
	}
	var (
		sb    *sandbox.Sandbox
		netns string
	)
	defer func() {
		if err == nil {
			return
		}
		bg := context.WithoutCancel(ctx)
		if netns != "" {
			if rerr := s.cfg.Networks.RemoveNamespace(bg, id); rerr != nil {
				s.log.Error("clean up network namespace", "container", id, "err", rerr)
			}
		}
		if sb != nil {
			if rerr := sb.Remove(bg); rerr != nil {
				s.log.Error("clean up sandbox", "container", id, "err", rerr)
				return // leave the directory: restore removes it later
			}
		}
		_ = os.RemoveAll(dir)
	}()
	if err := os.MkdirAll(s.logDir(id), 0o700); err != nil {
		return fail(err)
	}
	// The network namespace is made while the sandbox is: the two are
	// independent, and each is mostly waiting on the kernel.
	type made struct {
		path string
		err  error
	}
	nsDone := make(chan made, 1)
	if endpoints != nil {
		go func() {
			path, err := s.cfg.Networks.CreateNamespace(ctx, id)
			nsDone <- made{path, err}
		}()
	} else {
		nsDone <- made{}
	}
	sb, err = s.newSandbox(ctx, s.sandboxDir(id), layers, size) // spares.go
	if err != nil {
		netns = (<-nsDone).path // the deferred cleanup removes it
		return fail(err)
	}
	// The sandbox is mounted while the bundle's config.json is made: it
	// names the root file system by its path, which is known already.
	mounted := make(chan error, 1)
	go func() {
		_, err := sb.Mount(ctx)
		mounted <- err
	}()
	ns := <-nsDone
	netns = ns.path // set even on failure: the deferred cleanup removes it
	err = ns.err
	if cfg.Hostname == "" {
		cfg.Hostname = id[:12]
	}
	var (
		etc  map[string]string
		args []string
	)
	if err == nil {
		etc, err = s.etcMounts(id)
	}
	if err == nil {
		args, err = s.writeSpec(id, sb.RootfsPath(), netns, etc, img.Config.Config, cfg, host, mounts)
	}
	if merr := <-mounted; err == nil {
		err = merr
	}
	if err != nil {
		return fail(err)
	}
	if err := s.attachMounts(ctx, id, sb.RootfsPath(), mounts); err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			s.releaseMounts(context.WithoutCancel(ctx), id, true)
		}
	}()
	if err := waitHold(); err != nil {
		return fail(err)
	}
	c := &Container{
		ID: id, Name: name, Created: time.Now().UTC(),
		Image: cfg.Image, ImageID: img.ID.String(),
		Config: cfg, HostConfig: host, NetworkingConfig: endpoints,
		State:       State{Status: container.StateCreated},
		SandboxSize: sb.SizeBytes(),
	}
	if netns != "" {
		c.Net = &NetState{NetnsPath: netns}
	}
	if args := withoutInit(args, host); len(args) > 0 { // init.go
		c.Path, c.Args = args[0], args[1:]
	}
	if err := s.insert(c); err != nil {
		return fail(err)
	}
	s.emit(events.ActionCreate, c, nil) // events.go
	return CreateResponse{ID: id, Warnings: []string{}}, nil
}

// insert records c under its name (generating one if it has none) and
// adds it to the index.
func (s *Service) insert(c *Container) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	generated := c.Name == ""
	for try := 0; ; try++ {
		if generated {
			c.Name = generateName(try)
		}
		err := s.db.insert(c)
		if err == nil {
			break
		}
		if !generated || !errdefs.IsConflict(err) || try > 10 {
			return err
		}
	}
	s.ctrs[c.ID] = newEntry(c)
	return nil
}

// sandboxSize reads --storage-opt: only size= is known.
func sandboxSize(opts map[string]string) (int64, error) {
	var size int64
	for k, v := range opts {
		if k != "size" {
			return 0, fmt.Errorf("storage option %q: only size is supported: %w", k, errdefs.ErrInvalidArgument)
		}
		n, err := sandbox.ParseSize(v)
		if err != nil {
			return 0, fmt.Errorf("storage option size=%s: %w", v, err)
		}
		size = n
	}
	return size, nil
}

// writeSpec generates the container's OCI spec (ocispec, --init, the
// syslog capture socket), writes it as the bundle's config.json and
// returns the process's arguments.
func (s *Service) writeSpec(id, rootfs, netns string, etc map[string]string, imgCfg imagespec.ImageConfig, cfg *container.Config, host *container.HostConfig, mounts *mountPlan) ([]string, error) {
	spec, err := ocispec.Generate(&ocispec.Input{
		ID: id, Rootfs: rootfs, Image: &imgCfg, Config: cfg, Host: host, CgroupParent: s.cfg.CgroupParent,
		NetnsPath: netns, EtcFiles: etc, Mounts: mounts.specs,
	})
	if err != nil {
		return nil, err
	}
	if err := applyInit(spec, host); err != nil { // init.go
		return nil, err
	}
	if err := s.addSyslogMount(spec, id, host); err != nil { // logcapture.go
		return nil, err
	}
	return spec.Process.Args, writeJSONAtomic(bundleSpecPath(s.ctrDir(id)), spec)
}

// bundleSpecPath is the config.json of the OCI bundle in directory bundle
// (a container's ctrDir).
func bundleSpecPath(bundle string) string { return filepath.Join(bundle, "config.json") }

// readBundleSpec reads the config.json of the bundle in directory bundle.
func readBundleSpec(bundle string) (*specs.Spec, error) {
	path := bundleSpecPath(bundle)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &spec, nil
}

// writeJSONAtomic writes v to path through a synced temporary file.
func writeJSONAtomic(path string, v any) (err error) {
	buf, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	_, werr := f.Write(buf)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
