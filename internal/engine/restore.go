package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/sandbox"
)

// restore loads the database and reconciles it with the host, once, before
// the service is used:
//
//	recorded state   found                       becomes
//	running          monitor answers             running, watched again
//	running          no monitor, exit.json       exited with its code
//	running          no monitor, no exit.json    exited, code 255, error set
//	                 (either: restarted if its restart policy says so)
//	restarting       -                           restarted (restart.go)
//	removing         -                           removal finished
//	created, exited  AutoRemove set              removed (as docker does)
//	created, exited  half-made sandbox mounts    cleaned (sandbox.Open)
//	(no record)      a directory in containers/  deleted (a crashed Create)
//	(no record)      a monitor directory         runtime delete, deleted (removal's
//	                                             background steps)
//	(removed)        a directory in trash/       deleted (removal's background step)
func (s *Service) restore(ctx context.Context) error {
	ctrs, err := s.db.all()
	if err != nil {
		// Undecodable records are logged and left in the database.
		s.log.Error("restore containers", "err", err)
	}
	known := map[string]bool{}
	for _, c := range ctrs {
		known[c.ID] = true
		e := newEntry(c)
		s.ctrs[c.ID] = e
	}
	for _, c := range ctrs {
		e := s.ctrs[c.ID]
		switch c.State.Status {
		case container.StateRunning, container.StatePaused:
			s.reconnect(ctx, e)
		case container.StateRemoving:
			if err := s.Remove(ctx, c.ID, RemoveOptions{Force: true}); err != nil {
				s.log.Error("finish removal", "container", c.ID, "err", err)
			}
		default:
			if c.HostConfig != nil && c.HostConfig.AutoRemove {
				// It exited (or never started) while no daemon could
				// remove it, or its removal was cut short.
				if err := s.Remove(ctx, c.ID, RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
					s.log.Error("auto-remove", "container", c.ID, "err", err)
				}
				continue
			}
			// Open repairs what a crash inside Mount or Unmount left.
			if _, err := sandbox.Open(s.sandboxDir(c.ID)); err != nil && !errdefs.IsNotFound(err) {
				s.log.Warn("open sandbox", "container", c.ID, "err", err)
			}
			// A container that exited while the daemon was away may have
			// left its endpoints: free them.
			if c.Net != nil && c.Net.Endpoints != nil {
				if err := s.disconnectNetworks(ctx, c); err != nil {
					s.log.Warn("disconnect networks", "container", c.ID, "err", err)
				}
			}
			s.restoreRestart(e) // restart.go
		}
	}
	s.removeOrphans(ctx, known)
	s.sweepMounts(ctx, known) // mounts.go
	s.emptyTrash(ctx)
	return nil
}

// reconnect re-attaches to the monitor of a container recorded as running,
// or records how it ended while the daemon was away.
func (s *Service) reconnect(ctx context.Context, e *entry) {
	c := s.snapshot(e)
	mcfg := s.monitorConfig(&c)
	mon, err := s.cfg.Monitors.Open(ctx, mcfg)
	if err == nil {
		s.watch(e, mon)
		s.log.Info("reconnected", "container", c.ID, "pid", mon.Pid())
		return
	}
	if !errdefs.IsNotFound(err) {
		s.log.Warn("reconnect to monitor", "container", c.ID, "err", err)
	}
	st, xerr := s.cfg.Monitors.Exited(mcfg)
	if xerr != nil {
		st = ExitStatus{Code: 255, ExitedAt: time.Now(), Error: fmt.Sprintf("exit status lost: the monitor is gone: %v", err)}
	}
	s.log.Info("exited while the daemon was away", "container", c.ID, "code", st.Code)
	s.exited(e, st)
}

// removeOrphans deletes container directories without a record: Create
// crashed between making the sandbox and recording the container.
func (s *Service) removeOrphans(ctx context.Context, known map[string]bool) {
	dir := filepath.Join(s.cfg.DataRoot, "containers")
	ents, err := os.ReadDir(dir)
	if err != nil {
		s.log.Warn("list container directories", "err", err)
		return
	}
	for _, d := range ents {
		if known[d.Name()] || !d.IsDir() {
			continue
		}
		sb, err := sandbox.Open(filepath.Join(dir, d.Name(), "sandbox"))
		if err == nil {
			err = sb.Remove(ctx)
		} else if errdefs.IsNotFound(err) {
			err = nil
		}
		if err != nil {
			s.log.Error("remove half-made sandbox", "dir", d.Name(), "err", err)
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, d.Name())); err != nil {
			s.log.Error("remove half-made container", "dir", d.Name(), "err", err)
			continue
		}
		_ = s.cfg.Images.Release(ctx, d.Name())
		s.log.Info("removed half-made container", "id", d.Name())
	}
	// Monitor directories of containers without a record: a removal
	// finishes in the background with the runtime's delete (done by the
	// monitor, or here when the monitor is gone) and the directory.
	ents, err = os.ReadDir(filepath.Join(s.cfg.ExecRoot, "containers"))
	if err != nil {
		s.log.Warn("list monitor directories", "err", err)
		return
	}
	for _, d := range ents {
		if known[d.Name()] || !d.IsDir() {
			continue
		}
		dir := filepath.Join(s.cfg.ExecRoot, "containers", d.Name())
		// Bounded: a monitor still deleting answers at once after.
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.cfg.Monitors.Delete(dctx, MonitorConfig{ID: d.Name(), StateDir: dir})
		cancel()
		if err != nil {
			s.log.Error("delete removed container through the runtime", "id", d.Name(), "err", err)
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			s.log.Error("remove monitor directory", "dir", d.Name(), "err", err)
		}
	}
}
