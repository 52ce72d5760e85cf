package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	bolt "go.etcd.io/bbolt"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Restart stops a container (as Stop: signal, timeout, kill) and starts
// it again; a container that is not running is just started.
func (s *Service) Restart(ctx context.Context, ref, signal string, timeout *int) error {
	if err := s.Stop(ctx, ref, signal, timeout); err != nil && !errors.Is(err, ErrNotModified) {
		return err
	}
	if err := s.Start(ctx, ref); err != nil && !errors.Is(err, ErrNotModified) {
		return err
	}
	s.emitRef(events.ActionRestart, ref, nil)
	return nil
}

// Rename gives a container a new name.
func (s *Service) Rename(ctx context.Context, ref, newName string) error {
	name, err := checkName(newName)
	if err != nil {
		return err
	}
	e, err := s.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	old := e.c.Name
	if old == name {
		return fmt.Errorf("renaming a container with the same name as its current name: %w", errdefs.ErrInvalidArgument)
	}
	next := *e.c
	next.Name = name
	if err := s.db.rename(&next, old); err != nil {
		return fmt.Errorf("rename container %s: %w", next.ID[:12], err)
	}
	e.c = &next
	// emit only reads next: it does not take s.mu.
	s.emit(events.ActionRename, &next, map[string]string{"oldName": "/" + old})
	return nil
}

// rename stores c under its new name, releasing old, in one transaction.
func (d *db) rename(c *Container, old string) error {
	buf, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return d.bolt.Update(func(tx *bolt.Tx) error {
		names, ctrs := tx.Bucket(bucketNames), tx.Bucket(bucketContainers)
		if id := names.Get([]byte(c.Name)); id != nil {
			return fmt.Errorf("the container name %q is already in use by container %q: %w", "/"+c.Name, string(id), errdefs.ErrConflict)
		}
		if ctrs.Get([]byte(c.ID)) == nil {
			return fmt.Errorf("container %s: %w", c.ID, errdefs.ErrNotFound)
		}
		if string(names.Get([]byte(old))) == c.ID {
			if err := names.Delete([]byte(old)); err != nil {
				return err
			}
		}
		if err := names.Put([]byte(c.Name), []byte(c.ID)); err != nil {
			return err
		}
		return ctrs.Put([]byte(c.ID), buf)
	})
}

// PruneReport says what a prune removed.
type PruneReport struct {
	Deleted        []string
	SpaceReclaimed uint64
}

// ContainersPrune removes every stopped container (created, exited, dead)
// that passes the filters: until (created before), label, label!.
func (s *Service) ContainersPrune(ctx context.Context, f Filters) (PruneReport, error) {
	match, err := compilePruneFilters(f)
	if err != nil {
		return PruneReport{}, err
	}
	rep := PruneReport{Deleted: []string{}}
	var errs []error
	for _, e := range s.sortedEntries() {
		c := s.snapshot(e)
		switch c.State.Status {
		case container.StateCreated, container.StateExited, container.StateDead:
		default:
			continue
		}
		if !match(c.Created, labelsOf(&c)) {
			continue
		}
		size := allocatedBytes(s.ctrDir(c.ID))
		if err := s.Remove(ctx, c.ID, RemoveOptions{}); err != nil {
			if !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) {
				errs = append(errs, err)
			}
			continue
		}
		rep.Deleted = append(rep.Deleted, c.ID)
		rep.SpaceReclaimed += uint64(size)
	}
	return rep, errors.Join(errs...)
}

func labelsOf(c *Container) map[string]string {
	if c.Config == nil || c.Config.Labels == nil {
		return map[string]string{}
	}
	return c.Config.Labels
}

// compilePruneFilters reads prune's filters: until (a time or a
// duration before now), label and label! (key or key=value).
func compilePruneFilters(f Filters) (func(created time.Time, labels map[string]string) bool, error) {
	var until time.Time
	for key, vals := range f {
		switch key {
		case "until":
			for _, v := range vals {
				t, err := parseUntil(v)
				if err != nil {
					return nil, err
				}
				until = t
			}
		case "label", "label!":
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", key, errdefs.ErrInvalidArgument)
		}
	}
	return func(created time.Time, labels map[string]string) bool {
		if !until.IsZero() && !created.Before(until) {
			return false
		}
		for _, v := range f["label"] {
			if !labelMatch(labels, v) {
				return false
			}
		}
		for _, v := range f["label!"] {
			if labelMatch(labels, v) {
				return false
			}
		}
		return true
	}, nil
}

func labelMatch(labels map[string]string, v string) bool {
	k, want, hasVal := strings.Cut(v, "=")
	got, ok := labels[k]
	return ok && (!hasVal || got == want)
}

// parseUntil reads a prune until: a Go duration ("10m": that long ago),
// unix seconds or RFC 3339.
func parseUntil(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	var sec, nsec int64
	if _, err := fmt.Sscanf(v, "%d.%d", &sec, &nsec); err == nil {
		return time.Unix(sec, nsec), nil
	}
	if _, err := fmt.Sscanf(v, "%d", &sec); err == nil {
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, fmt.Errorf("invalid filter 'until=%s': want a duration, unix seconds or RFC 3339: %w", v, errdefs.ErrInvalidArgument)
}

// allocatedBytes is the disk space the files under dir take (sparse
// files count what they allocate).
func allocatedBytes(dir string) int64 {
	var total int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() {
			total += st.Blocks * 512
		}
		return nil
	})
	return total
}
