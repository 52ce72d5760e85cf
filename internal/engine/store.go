package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Container is the persisted record of one container.
type Container struct {
	ID      string
	Name    string // without the leading "/"
	Created time.Time
	// Image is the reference the user gave; ImageID the image's config
	// digest at create time.
	Image   string
	ImageID string
	// Path and Args are the process the spec runs.
	Path string
	Args []string

	Config     *container.Config
	HostConfig *container.HostConfig
	// NetworkingConfig are the networks the container joins by name
	// (the one of HostConfig.NetworkMode among them) with their
	// endpoint settings (aliases, static addresses).
	NetworkingConfig map[string]*mobynet.EndpointSettings `json:",omitempty"`
	// Net is the container's networking; nil in the "none" and "host"
	// modes.
	Net *NetState `json:",omitempty"`

	State State
	// SandboxSize is the writable layer's size in bytes.
	SandboxSize int64
	// RestartCount counts the restarts by the restart policy since the
	// last start by the user.
	RestartCount int
	// ManuallyStopped is set by stop and rm -f, cleared by a user's
	// start: it suppresses restarts (Docker's HasBeenManuallyStopped).
	ManuallyStopped bool
	// Health is the healthcheck's state as of its last probe (nil before
	// the first one of this start): a restarted silod resumes the check
	// of a running container from it, and inspect shows a stopped
	// container's last state, as Docker does.
	Health *container.Health `json:",omitempty"`
}

// State is the lifecycle state of a container, as docker reports it.
type State struct {
	Status     container.ContainerState
	Pid        int
	ExitCode   int
	Error      string
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
}

// Running reports whether the container's process is thought alive; a
// paused container's is (its processes are frozen), as in Docker.
func (s State) Running() bool {
	return s.Status == container.StateRunning || s.Status == container.StatePaused
}

var (
	bucketContainers = []byte("containers")
	bucketNames      = []byte("names")
)

// db is the container database: one bucket of records by id, one of ids by
// name. Every write is one bbolt transaction, so a name and its record
// appear and disappear together.
type db struct{ bolt *bolt.DB }

func openDB(path string) (*db, error) {
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open container database %s: %w", path, err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, n := range [][]byte{bucketContainers, bucketNames} {
			if _, err := tx.CreateBucketIfNotExists(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("open container database %s: %w", path, err)
	}
	return &db{bolt: b}, nil
}

func (d *db) close() error { return d.bolt.Close() }

// insert adds a new container; its name must be free.
func (d *db) insert(c *Container) error {
	buf, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("store container %s: %w", c.ID, err)
	}
	return d.bolt.Update(func(tx *bolt.Tx) error {
		names, ctrs := tx.Bucket(bucketNames), tx.Bucket(bucketContainers)
		if id := names.Get([]byte(c.Name)); id != nil {
			return fmt.Errorf("the container name %q is already in use by container %q: %w", "/"+c.Name, string(id), errdefs.ErrConflict)
		}
		if ctrs.Get([]byte(c.ID)) != nil {
			return fmt.Errorf("container %s: %w", c.ID, errdefs.ErrAlreadyExists)
		}
		if err := names.Put([]byte(c.Name), []byte(c.ID)); err != nil {
			return err
		}
		return ctrs.Put([]byte(c.ID), buf)
	})
}

// update replaces the record of an existing container.
func (d *db) update(c *Container) error {
	buf, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("store container %s: %w", c.ID, err)
	}
	err = d.bolt.Update(func(tx *bolt.Tx) error {
		ctrs := tx.Bucket(bucketContainers)
		if ctrs.Get([]byte(c.ID)) == nil {
			return fmt.Errorf("container %s: %w", c.ID, errdefs.ErrNotFound)
		}
		return ctrs.Put([]byte(c.ID), buf)
	})
	if err != nil {
		return fmt.Errorf("store container %s: %w", c.ID, err)
	}
	return nil
}

// delete removes a container and its name.
func (d *db) delete(id string) error {
	err := d.bolt.Update(func(tx *bolt.Tx) error {
		ctrs := tx.Bucket(bucketContainers)
		raw := ctrs.Get([]byte(id))
		if raw == nil {
			return nil
		}
		var c Container
		if err := json.Unmarshal(raw, &c); err == nil {
			names := tx.Bucket(bucketNames)
			if string(names.Get([]byte(c.Name))) == id {
				if err := names.Delete([]byte(c.Name)); err != nil {
					return err
				}
			}
		}
		return ctrs.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	return nil
}

// all returns every stored container. A record that does not decode is
// reported, not skipped silently.
func (d *db) all() ([]*Container, error) {
	var out []*Container
	var bad []error
	err := d.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).ForEach(func(k, v []byte) error {
			c := new(Container)
			if err := json.Unmarshal(v, c); err != nil {
				bad = append(bad, fmt.Errorf("container %s: decode record: %w", k, err))
				return nil
			}
			out = append(out, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read containers: %w", err)
	}
	return out, errors.Join(bad...)
}
