package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Record is what the metadata store keeps about one image (one platform
// manifest).
type Record struct {
	Manifest  digest.Digest `json:"manifest"`
	MediaType string        `json:"mediaType"`
	Config    digest.Digest `json:"config"` // the image ID
	Layers    []LayerRecord `json:"layers"`
	Created   time.Time     `json:"created"` // when it entered this store
}

// LayerRecord ties a layer blob to its unpacked form.
type LayerRecord struct {
	Blob      digest.Digest `json:"blob"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"` // blob bytes
	DiffID    digest.Digest `json:"diffID"`
	ChainID   digest.Digest `json:"chainID"`
}

// Blobs lists every blob the image needs: manifest, config and layers.
func (r Record) Blobs() []digest.Digest {
	out := []digest.Digest{r.Manifest, r.Config}
	for _, l := range r.Layers {
		out = append(out, l.Blob)
	}
	return out
}

var (
	bucketImages = []byte("images") // manifest digest → Record
	bucketRefs   = []byte("refs")   // normalized reference → manifest digest
	bucketHolds  = []byte("holds")  // holder id → manifest digest
)

// DB is the metadata store. Every change is one bbolt transaction.
type DB struct {
	db *bolt.DB
}

// OpenDB opens (creating it) the database file at path.
func OpenDB(path string) (*DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open image db %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketRefs, bucketHolds} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open image db %s: %w", path, err)
	}
	return &DB{db: db}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Put stores rec and points refs at it, in one transaction.
func (d *DB) Put(rec Record, refs ...string) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketImages).Put([]byte(rec.Manifest), b); err != nil {
			return err
		}
		for _, r := range refs {
			if err := tx.Bucket(bucketRefs).Put([]byte(r), []byte(rec.Manifest)); err != nil {
				return err
			}
		}
		return nil
	})
}

func getRecord(tx *bolt.Tx, m digest.Digest) (Record, error) {
	v := tx.Bucket(bucketImages).Get([]byte(m))
	if v == nil {
		return Record{}, fmt.Errorf("image %s: %w", m, errdefs.ErrNotFound)
	}
	var rec Record
	if err := json.Unmarshal(v, &rec); err != nil {
		return Record{}, fmt.Errorf("image %s: record: %w", m, err)
	}
	return rec, nil
}

// Get returns the record of manifest m.
func (d *DB) Get(m digest.Digest) (rec Record, err error) {
	err = d.db.View(func(tx *bolt.Tx) error {
		rec, err = getRecord(tx, m)
		return err
	})
	return rec, err
}

// Resolve returns the record a normalized reference points at.
func (d *DB) Resolve(ref string) (rec Record, err error) {
	err = d.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketRefs).Get([]byte(ref))
		if m == nil {
			return fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
		}
		rec, err = getRecord(tx, digest.Digest(m))
		return err
	})
	return rec, err
}

// Tag points ref at manifest m, which must be stored.
func (d *DB) Tag(ref string, m digest.Digest) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		if _, err := getRecord(tx, m); err != nil {
			return err
		}
		return tx.Bucket(bucketRefs).Put([]byte(ref), []byte(m))
	})
}

// Untag removes ref and returns the manifest it pointed at. If that was the
// image's last reference and a holder uses it, the untag is refused with
// ErrConflict unless force is set.
func (d *DB) Untag(ref string, force bool) (m digest.Digest, err error) {
	err = d.db.Update(func(tx *bolt.Tx) error {
		refs := tx.Bucket(bucketRefs)
		v := refs.Get([]byte(ref))
		if v == nil {
			return fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
		}
		m = digest.Digest(v)
		if !force && len(refsOf(tx, m)) == 1 {
			if h := holdersOf(tx, m); len(h) > 0 {
				return fmt.Errorf("image %s is used by %v: %w", ref, h, errdefs.ErrConflict)
			}
		}
		return refs.Delete([]byte(ref))
	})
	return m, err
}

func refsOf(tx *bolt.Tx, m digest.Digest) []string {
	var out []string
	tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
		if digest.Digest(v) == m {
			out = append(out, string(k))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func holdersOf(tx *bolt.Tx, m digest.Digest) []string {
	var out []string
	tx.Bucket(bucketHolds).ForEach(func(k, v []byte) error {
		if digest.Digest(v) == m {
			out = append(out, string(k))
		}
		return nil
	})
	return out
}

// Refs returns the references pointing at manifest m.
func (d *DB) Refs(m digest.Digest) (out []string) {
	d.db.View(func(tx *bolt.Tx) error { out = refsOf(tx, m); return nil })
	return out
}

// Entry is one image with its references.
type Entry struct {
	Record
	Refs []string
}

// List returns every stored image, oldest first, but those that nothing
// references or holds: they are garbage the next GC deletes, and to the
// user already removed (docker's rmi of the last tag is immediate).
func (d *DB) List() (out []Entry, err error) {
	err = d.db.View(func(tx *bolt.Tx) error {
		byM := map[digest.Digest][]string{}
		tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
			byM[digest.Digest(v)] = append(byM[digest.Digest(v)], string(k))
			return nil
		})
		held := map[digest.Digest]bool{}
		tx.Bucket(bucketHolds).ForEach(func(k, v []byte) error {
			held[digest.Digest(v)] = true
			return nil
		})
		return tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var rec Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("image %s: record: %w", k, err)
			}
			refs := byM[rec.Manifest]
			if len(refs) == 0 && !held[rec.Manifest] {
				return nil
			}
			sort.Strings(refs)
			out = append(out, Entry{Record: rec, Refs: refs})
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}

// Hold records that holder (a container) uses manifest m: GC keeps the
// image's blobs and layers, and its last tag cannot be removed without force.
func (d *DB) Hold(holder string, m digest.Digest) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		if _, err := getRecord(tx, m); err != nil {
			return err
		}
		return tx.Bucket(bucketHolds).Put([]byte(holder), []byte(m))
	})
}

// Release drops holder's hold; releasing an unknown holder is not an error
// (Release must be idempotent: container removal retries it).
func (d *DB) Release(holder string) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHolds).Delete([]byte(holder))
	})
}

// Prune deletes the records of images that no reference and no holder
// points at, and returns the images that remain (what GC must keep).
func (d *DB) Prune() (live []Record, removed []digest.Digest, err error) {
	err = d.db.Update(func(tx *bolt.Tx) error {
		used := map[digest.Digest]bool{}
		for _, b := range [][]byte{bucketRefs, bucketHolds} {
			tx.Bucket(b).ForEach(func(k, v []byte) error { used[digest.Digest(v)] = true; return nil })
		}
		images := tx.Bucket(bucketImages)
		var dead [][]byte
		err := images.ForEach(func(k, v []byte) error {
			var rec Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("image %s: record: %w", k, err)
			}
			if used[rec.Manifest] {
				live = append(live, rec)
			} else {
				dead = append(dead, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := images.Delete(k); err != nil {
				return err
			}
			removed = append(removed, digest.Digest(k))
		}
		return nil
	})
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return nil, nil, fmt.Errorf("prune images: %w", err)
	}
	return live, removed, err
}
