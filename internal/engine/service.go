package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/compute/process/cgroups"
	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
	"github.com/silo-containers/silo/internal/storage/baseimage"
	"github.com/silo-containers/silo/internal/storage/sandbox"
)

// ErrNotModified is returned (wrapped) when a request asks for the state a
// container is already in (start of a running container, stop of a
// stopped one): docker answers 304.
var ErrNotModified = errors.New("not modified")

// Config configures a Service.
type Config struct {
	// DataRoot holds the database, bundles, sandboxes and logs
	// (/var/lib/silo/engine).
	DataRoot string
	// ExecRoot holds runtime state that does not outlive a reboot
	// (/run/silo/engine).
	ExecRoot string
	// Images is the image store.
	Images ImageStore
	// Monitors runs containers.
	Monitors Monitors
	// Networks gives containers their network namespaces and endpoints;
	// nil runs every container as --network none would.
	Networks Networks
	// Busybox builds busybox offline under the given reference
	// (internal/storage/baseimage); nil when not available.
	Busybox func(ctx context.Context, ref string) (storage.ImageInfo, error)
	// Debian builds a Debian image with debootstrap
	// (internal/storage/baseimage; the daemon sets TmpDir); nil when not
	// available.
	Debian func(ctx context.Context, opts baseimage.DebianOptions) (storage.ImageInfo, error)
	// CgroupParent is the cgroup under which containers go ("/silo").
	CgroupParent string
	// Logger receives what goes wrong in the background (nil: discard).
	Logger *slog.Logger
}

// Service is the container service. It is safe for concurrent use.
type Service struct {
	cfg Config
	db  *db
	log *slog.Logger

	// ctx ends background work (exit watchers) on Close.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex // guards ctrs and every entry's c, exitCh, removedCh
	ctrs map[string]*entry

	// execs are the exec instances (exec.go); in memory only, as Docker's.
	execs execTable

	// features: volumes, events (features.go).
	features features

	// spareFill marks the sizes whose spare sandboxes are being made
	// (spares.go); guarded by mu.
	spareFill map[int64]bool
}

// entry is one container in memory.
type entry struct {
	// op serialises lifecycle operations on the container.
	op sync.Mutex
	// c is the record; guarded by Service.mu.
	c *Container
	// mon is the connected monitor while the container runs; guarded by
	// Service.mu.
	mon Monitor
	// exitCh is closed at the next exit of the process and then replaced;
	// removedCh is closed when the container is gone. Guarded by Service.mu.
	exitCh    chan struct{}
	removedCh chan struct{}
	// followers counts log readers following this container; AutoRemove
	// waits (a little) for them to read the last entries. noFollowers is
	// closed when followers drops to 0. Both guarded by Service.mu.
	followers   int
	noFollowers chan struct{}
	// pending are clients that attached while the container did not
	// run; the next Start connects them. Guarded by Service.mu.
	pending []*pendingAttach
	// restart is the pending restart by the restart policy (restart.go);
	// guarded by Service.mu.
	restart restartState
}

// closedChan is an already closed channel.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// follow registers a log follower of e and returns the function that
// unregisters it.
func (s *Service) follow(e *entry) (done func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.followers == 0 {
		e.noFollowers = make(chan struct{})
	}
	e.followers++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if e.followers--; e.followers == 0 {
				close(e.noFollowers)
			}
		})
	}
}

// followersGone returns a channel that is closed once e has no log
// followers.
func (s *Service) followersGone(e *entry) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.followers == 0 {
		return closedChan
	}
	return e.noFollowers
}

// New opens the service's database under cfg.DataRoot and reconciles what
// it records with what runs (see Restore).
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.DataRoot == "" || cfg.ExecRoot == "" {
		return nil, fmt.Errorf("new engine: data root and exec root are required: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.Images == nil || cfg.Monitors == nil {
		return nil, fmt.Errorf("new engine: image store and monitors are required: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/silo"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{cfg.DataRoot, filepath.Join(cfg.DataRoot, "containers"), filepath.Join(cfg.DataRoot, "trash"), filepath.Join(cfg.ExecRoot, "containers")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("new engine: %w", err)
		}
	}
	d, err := openDB(filepath.Join(cfg.DataRoot, "engine.db"))
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, db: d, log: log, ctx: bg, cancel: cancel, ctrs: map[string]*entry{}}
	if err := s.openFeatures(); err != nil {
		cancel()
		d.close()
		return nil, err
	}
	// Before any create: what a crash left of a spare goes.
	if err := sandbox.CleanSpares(s.templateDir()); err != nil {
		s.log.Warn("clean spare sandboxes", "err", err)
	}
	if err := s.restore(ctx); err != nil {
		cancel()
		_ = s.closeFeatures()
		d.close()
		return nil, err
	}
	return s, nil
}

// Close stops watching containers and closes the database. Containers keep
// running: their monitors outlive the daemon.
func (s *Service) Close() error {
	s.cancel()
	s.mu.Lock()
	for _, e := range s.ctrs {
		s.stopRestartTimerLocked(e)
		if e.mon != nil {
			e.mon.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	// The engine's cgroup parent goes with the daemon when no container
	// is left under it (a running container keeps it: rmdir fails).
	cgroups.RemoveIfEmpty(s.cfg.CgroupParent)
	return errors.Join(s.closeFeatures(), s.db.close())
}

func newEntry(c *Container) *entry {
	return &entry{c: c, exitCh: make(chan struct{}), removedCh: make(chan struct{})}
}

// paths of one container.
func (s *Service) ctrDir(id string) string     { return filepath.Join(s.cfg.DataRoot, "containers", id) }
func (s *Service) sandboxDir(id string) string { return filepath.Join(s.ctrDir(id), "sandbox") }
func (s *Service) logDir(id string) string     { return filepath.Join(s.ctrDir(id), "logs") }
func (s *Service) stateDir(id string) string   { return filepath.Join(s.cfg.ExecRoot, "containers", id) }
func (s *Service) templateDir() string         { return filepath.Join(s.cfg.DataRoot, "sandbox-templates") }

// trashDir holds the directories of removed containers until they are
// deleted in the background (see removeFiles).
func (s *Service) trashDir() string { return filepath.Join(s.cfg.DataRoot, "trash") }

func (s *Service) monitorConfig(c *Container) MonitorConfig {
	var opts map[string]string
	driver := ""
	if c.HostConfig != nil {
		opts, driver = c.HostConfig.LogConfig.Config, c.HostConfig.LogConfig.Type
	}
	mc := MonitorConfig{ID: c.ID, Bundle: s.ctrDir(c.ID), StateDir: s.stateDir(c.ID), LogDir: s.logDir(c.ID), LogDriver: driver, LogOptions: opts}
	if c.Config != nil {
		mc.Terminal, mc.Stdin = c.Config.Tty, c.Config.OpenStdin
	}
	return mc
}

// lookup finds a container by full id, name, or unique id prefix, as
// docker does.
func (s *Service) lookup(ref string) (*entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookupLocked(ref)
}

// Preconditions: s.mu held.
func (s *Service) lookupLocked(ref string) (*entry, error) {
	if ref == "" {
		return nil, fmt.Errorf("no container name or id given: %w", errdefs.ErrInvalidArgument)
	}
	if e, ok := s.ctrs[ref]; ok {
		return e, nil
	}
	name := strings.TrimPrefix(ref, "/")
	for _, e := range s.ctrs {
		if e.c.Name == name {
			return e, nil
		}
	}
	var found *entry
	for id, e := range s.ctrs {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, fmt.Errorf("multiple containers found with id prefix %q: %w", ref, errdefs.ErrInvalidArgument)
			}
			found = e
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	return found, nil
}

// snapshot returns a deep-enough copy of e's record to read without locks.
func (s *Service) snapshot(e *entry) Container {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *e.c
}

// setState changes e's record with fn and stores it in one transaction.
func (s *Service) setState(e *entry, fn func(c *Container)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := *e.c
	fn(&next)
	if err := s.db.update(&next); err != nil {
		return err
	}
	e.c = &next
	return nil
}

// setStateUnrecorded is setState for a change that need not survive a
// restart: it changes the record in memory only.
func (s *Service) setStateUnrecorded(e *entry, fn func(c *Container)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := *e.c
	fn(&next)
	e.c = &next
}

// sortedEntries returns the containers, newest first.
func (s *Service) sortedEntries() []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*entry, 0, len(s.ctrs))
	for _, e := range s.ctrs {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].c.Created.After(out[j].c.Created) })
	return out
}

// timeOrZero formats t as docker does in inspect (zero time included).
func timeOrZero(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// isolation checks and normalizes --isolation.
func isolation(i container.Isolation) (container.Isolation, error) {
	switch strings.ToLower(string(i)) {
	case "", "default", "process":
		return container.IsolationProcess, nil
	case "hyperv", "vm":
		return "", fmt.Errorf("isolation %s: the vm backend is not available yet: %w", i, errdefs.ErrNotImplemented)
	default:
		return "", fmt.Errorf("invalid isolation %q: want process, default, hyperv or vm: %w", i, errdefs.ErrInvalidArgument)
	}
}
