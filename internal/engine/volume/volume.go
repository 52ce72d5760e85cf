// Package volume is the engine's volume store: Docker's named and
// anonymous volumes with the local driver. A volume is a directory,
// ROOT/NAME/_data, bind-mounted into the containers that use it; its
// record (driver, labels, creation time) and the mount points of every
// container are in one bbolt database, ROOT/metadata.db, so that "is this
// volume in use" and "create it on first use" are answered in one
// transaction with the container that takes it.
//
// # Layout
//
//	ROOT/metadata.db        bucket volumes: name → Volume (JSON)
//	                        bucket mounts: container id → []MountPoint (JSON)
//	ROOT/NAME/_data         the volume's content
//
// # Crash safety
//
// Create makes the directory before it records the volume; Remove drops
// the record before it deletes the directory. A directory without a
// record is what a crash left, and Open deletes it.
package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	bolt "go.etcd.io/bbolt"

	"github.com/silo-containers/silo/internal/errdefs"
)

// DriverLocal is the one volume driver.
const DriverLocal = "local"

// LabelAnonymous marks an anonymous volume, as Docker (23+) does.
const LabelAnonymous = "com.docker.volume.anonymous"

// dataDir is the name of a volume's content directory.
const dataDir = "_data"

var (
	bucketVolumes = []byte("volumes")
	bucketMounts  = []byte("mounts")
)

// validName is Docker's rule for volume names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Volume is the record of one volume.
type Volume struct {
	Name      string
	Driver    string
	Labels    map[string]string
	Options   map[string]string
	CreatedAt time.Time
}

// Anonymous reports whether the volume was made for one container
// without a name (rm -v and --rm remove those).
func (v *Volume) Anonymous() bool {
	_, ok := v.Labels[LabelAnonymous]
	return ok
}

// CreateOptions describe a volume to create.
type CreateOptions struct {
	Name    string
	Driver  string
	Labels  map[string]string
	Options map[string]string
}

// Store keeps the volumes under one root. It is safe for concurrent use.
type Store struct {
	root string
	db   *bolt.DB
}

// Open opens (creating if needed) the store at root and deletes volume
// directories a crash left without a record.
func Open(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, fmt.Errorf("open volume store %s: %w", root, err)
	}
	b, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open volume store %s: %w", root, err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, n := range [][]byte{bucketVolumes, bucketMounts} {
			if _, err := tx.CreateBucketIfNotExists(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("open volume store %s: %w", root, err)
	}
	s := &Store{root: root, db: b}
	if err := s.sweep(); err != nil {
		b.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path is the directory a volume's containers see.
func (s *Store) Path(name string) string { return filepath.Join(s.root, name, dataDir) }

// sweep deletes directories without a record.
func (s *Store) sweep() error {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return fmt.Errorf("list volumes: %w", err)
	}
	known := map[string]bool{}
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketVolumes).ForEach(func(k, _ []byte) error {
			known[string(k)] = true
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("list volumes: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || known[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.root, e.Name())); err != nil {
			return fmt.Errorf("remove half-made volume %s: %w", e.Name(), err)
		}
	}
	return nil
}

// CheckName checks a volume name against Docker's rule.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("%q includes invalid characters for a local volume name, only %q are allowed; if you intended to pass a host directory, use absolute path: %w",
			name, "[a-zA-Z0-9][a-zA-Z0-9_.-]", errdefs.ErrInvalidArgument)
	}
	return nil
}

func checkDriver(driver string, opts map[string]string) error {
	if driver != "" && driver != DriverLocal {
		return fmt.Errorf("volume driver %q: only the local driver is available: %w", driver, errdefs.ErrNotFound)
	}
	if len(opts) > 0 {
		return fmt.Errorf("volume driver options %v: the local driver's mount options (type, device, o) are not supported: %w", opts, errdefs.ErrNotImplemented)
	}
	return nil
}

// Create makes a volume, or returns the existing one of that name (as
// Docker does).
func (s *Store) Create(ctx context.Context, o CreateOptions) (Volume, error) {
	if err := CheckName(o.Name); err != nil {
		return Volume{}, fmt.Errorf("create volume: %w", err)
	}
	if err := checkDriver(o.Driver, o.Options); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	var v Volume
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		v, _, err = s.createTx(tx, o)
		return err
	})
	if err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	return v, nil
}

// createTx returns the volume o names, making it when it does not exist.
func (s *Store) createTx(tx *bolt.Tx, o CreateOptions) (Volume, bool, error) {
	vb := tx.Bucket(bucketVolumes)
	if raw := vb.Get([]byte(o.Name)); raw != nil {
		var v Volume
		if err := json.Unmarshal(raw, &v); err != nil {
			return Volume{}, false, fmt.Errorf("decode record: %w", err)
		}
		return v, false, nil
	}
	v := Volume{Name: o.Name, Driver: DriverLocal, Labels: o.Labels, Options: o.Options, CreatedAt: time.Now().UTC()}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	if v.Options == nil {
		v.Options = map[string]string{}
	}
	// The directory first: a crash leaves a directory without a record,
	// which Open sweeps, never a record without a directory.
	if err := os.MkdirAll(s.Path(o.Name), 0o755); err != nil {
		return Volume{}, false, err
	}
	raw, err := json.Marshal(&v)
	if err != nil {
		return Volume{}, false, err
	}
	if err := vb.Put([]byte(o.Name), raw); err != nil {
		return Volume{}, false, err
	}
	return v, true, nil
}

// Get returns a volume's record.
func (s *Store) Get(name string) (Volume, error) {
	var v Volume
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketVolumes).Get([]byte(name))
		if raw == nil {
			return fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
		}
		return json.Unmarshal(raw, &v)
	})
	return v, err
}

// Info is a volume with the containers that use it.
type Info struct {
	Volume
	// Users are the ids of the containers that mount it.
	Users []string
}

// List returns every volume with its users, sorted by name.
func (s *Store) List() ([]Info, error) {
	var out []Info
	err := s.db.View(func(tx *bolt.Tx) error {
		users, err := usersTx(tx)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketVolumes).ForEach(func(k, raw []byte) error {
			var v Volume
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("volume %s: decode record: %w", k, err)
			}
			out = append(out, Info{Volume: v, Users: users[v.Name]})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// usersTx maps volume names to the containers whose mounts name them.
func usersTx(tx *bolt.Tx) (map[string][]string, error) {
	users := map[string][]string{}
	err := tx.Bucket(bucketMounts).ForEach(func(k, raw []byte) error {
		var mps []container.MountPoint
		if err := json.Unmarshal(raw, &mps); err != nil {
			return fmt.Errorf("mounts of container %s: decode: %w", k, err)
		}
		for _, m := range mps {
			if m.Type == mount.TypeVolume && m.Name != "" && !contains(users[m.Name], string(k)) {
				users[m.Name] = append(users[m.Name], string(k))
			}
		}
		return nil
	})
	return users, err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Remove deletes a volume and its content. A volume in use is a conflict,
// force or not (Docker's force only ignores a missing volume).
func (s *Store) Remove(ctx context.Context, name string, force bool) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		vb := tx.Bucket(bucketVolumes)
		if vb.Get([]byte(name)) == nil {
			if force {
				return nil
			}
			return fmt.Errorf("no such volume: %w", errdefs.ErrNotFound)
		}
		users, err := usersTx(tx)
		if err != nil {
			return err
		}
		if u := users[name]; len(u) > 0 {
			ids := make([]string, len(u))
			for i, id := range u {
				ids[i] = short(id)
			}
			return fmt.Errorf("volume is in use - %v: %w", ids, errdefs.ErrConflict)
		}
		return vb.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return s.removeDir(name)
}

func (s *Store) removeDir(name string) error {
	if err := os.RemoveAll(filepath.Join(s.root, name)); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Use is one volume a container mounts: created when missing.
type Use struct {
	Name string
	// Labels are set on a volume created here (anonymous volumes carry
	// LabelAnonymous).
	Labels map[string]string
}

// Attach records the mount points of container id and creates the
// volumes they name that do not exist yet, in one transaction: a volume
// cannot be removed between its creation and its first use. It returns
// the names of the volumes it created.
func (s *Store) Attach(ctx context.Context, id string, uses []Use, points []container.MountPoint) ([]string, error) {
	for _, u := range uses {
		if err := CheckName(u.Name); err != nil {
			return nil, err
		}
	}
	raw, err := json.Marshal(points)
	if err != nil {
		return nil, fmt.Errorf("record mounts of container %s: %w", short(id), err)
	}
	var created []string
	err = s.db.Update(func(tx *bolt.Tx) error {
		created = created[:0]
		for _, u := range uses {
			_, made, err := s.createTx(tx, CreateOptions{Name: u.Name, Labels: u.Labels})
			if err != nil {
				return fmt.Errorf("volume %s: %w", u.Name, err)
			}
			if made {
				created = append(created, u.Name)
			}
		}
		return tx.Bucket(bucketMounts).Put([]byte(id), raw)
	})
	if err != nil {
		for _, n := range created {
			_ = os.RemoveAll(filepath.Join(s.root, n))
		}
		return nil, fmt.Errorf("record mounts of container %s: %w", short(id), err)
	}
	return created, nil
}

// Mounts returns the mount points recorded for container id (nil when
// none are).
func (s *Store) Mounts(id string) ([]container.MountPoint, error) {
	var out []container.MountPoint
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketMounts).Get([]byte(id))
		if raw == nil {
			return nil
		}
		return json.Unmarshal(raw, &out)
	})
	if err != nil {
		return nil, fmt.Errorf("mounts of container %s: %w", short(id), err)
	}
	return out, nil
}

// Detach forgets container id's mount points. With removeAnonymous, the
// anonymous volumes it used that no other container uses are removed
// (rm -v, --rm); their names are returned.
func (s *Store) Detach(ctx context.Context, id string, removeAnonymous bool) ([]string, error) {
	var removed []string
	err := s.db.Update(func(tx *bolt.Tx) error {
		removed = removed[:0]
		mb := tx.Bucket(bucketMounts)
		raw := mb.Get([]byte(id))
		if raw == nil {
			return nil
		}
		var mps []container.MountPoint
		if err := json.Unmarshal(raw, &mps); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if err := mb.Delete([]byte(id)); err != nil {
			return err
		}
		if !removeAnonymous {
			return nil
		}
		users, err := usersTx(tx)
		if err != nil {
			return err
		}
		vb := tx.Bucket(bucketVolumes)
		for _, m := range mps {
			if m.Type != mount.TypeVolume || len(users[m.Name]) > 0 {
				continue
			}
			vraw := vb.Get([]byte(m.Name))
			if vraw == nil {
				continue
			}
			var v Volume
			if err := json.Unmarshal(vraw, &v); err != nil || !v.Anonymous() {
				continue
			}
			if err := vb.Delete([]byte(m.Name)); err != nil {
				return err
			}
			removed = append(removed, m.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("forget mounts of container %s: %w", short(id), err)
	}
	var errs []error
	for _, n := range removed {
		errs = append(errs, s.removeDir(n))
	}
	return removed, errors.Join(errs...)
}

// PruneOptions select the volumes Prune removes.
type PruneOptions struct {
	// All includes named volumes; otherwise only anonymous ones go
	// (Docker 23+).
	All bool
	// Match further selects volumes (nil: all).
	Match func(*Volume) bool
}

// Prune removes the volumes no container uses and returns their names
// and the bytes freed.
func (s *Store) Prune(ctx context.Context, o PruneOptions) ([]string, uint64, error) {
	var victims []string
	err := s.db.Update(func(tx *bolt.Tx) error {
		users, err := usersTx(tx)
		if err != nil {
			return err
		}
		vb := tx.Bucket(bucketVolumes)
		var names [][]byte
		err = vb.ForEach(func(k, raw []byte) error {
			var v Volume
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil // a record that does not decode is left alone
			}
			if len(users[v.Name]) > 0 || !o.All && !v.Anonymous() || o.Match != nil && !o.Match(&v) {
				return nil
			}
			names = append(names, append([]byte{}, k...))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range names {
			if err := vb.Delete(k); err != nil {
				return err
			}
			victims = append(victims, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("prune volumes: %w", err)
	}
	var freed uint64
	var errs []error
	for _, n := range victims {
		size, _ := DirSize(filepath.Join(s.root, n))
		if err := s.removeDir(n); err != nil {
			errs = append(errs, err)
			continue
		}
		freed += uint64(size)
	}
	sort.Strings(victims)
	return victims, freed, errors.Join(errs...)
}

// DirSize sums the sizes of the regular files under dir (hard links
// counted once), as `du` would for apparent sizes.
func DirSize(dir string) (int64, error) {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if ino := inode(fi); ino != 0 {
			if seen[ino] {
				return nil
			}
			seen[ino] = true
		}
		total += fi.Size()
		return nil
	})
	return total, err
}

// Containers returns the ids of the containers whose mounts are recorded.
func (s *Store) Containers() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMounts).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list recorded mounts: %w", err)
	}
	return out, nil
}
