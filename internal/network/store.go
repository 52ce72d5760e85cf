package network

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// store persists the service's records in a bbolt file: one bucket per
// object kind, JSON values keyed by id. Each change is one transaction.
type store struct {
	db *bolt.DB
}

var (
	bucketNetworks   = []byte("networks")
	bucketEndpoints  = []byte("endpoints")
	bucketNamespaces = []byte("namespaces")
)

// openStore opens (or creates) dir/network.db.
func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create network state directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, "network.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open network store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketNetworks, bucketEndpoints, bucketNamespaces} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init network store %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

func (s *store) put(bucket []byte, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s record %s: %w", bucket, id, err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(id), data) }); err != nil {
		return fmt.Errorf("save %s record %s: %w", bucket, id, err)
	}
	return nil
}

func (s *store) delete(bucket []byte, id string) error {
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(id)) }); err != nil {
		return fmt.Errorf("delete %s record %s: %w", bucket, id, err)
	}
	return nil
}

// load decodes every record of bucket with fn.
func load[T any](s *store, bucket []byte) ([]*T, error) {
	var out []*T
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			r := new(T)
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("decode %s record %s: %w", bucket, k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", bucket, err)
	}
	return out, nil
}
