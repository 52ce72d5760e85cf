package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// store persists the service's records in two bbolt files, JSON values
// keyed by id, one transaction per change. Networks are configuration
// and outlive a reboot: they go in StateDir/network.db, synced. Endpoints
// and namespaces are runtime state — a reboot takes their namespaces with
// it — so they go in RunDir/runtime.db (tmpfs in production), without the
// fsyncs that would otherwise sit on every container start and exit.
type store struct {
	persistent, runtime *bolt.DB
}

var (
	bucketNetworks   = []byte("networks")
	bucketEndpoints  = []byte("endpoints")
	bucketNamespaces = []byte("namespaces")
)

// openStore opens (or creates) stateDir/network.db and runDir/runtime.db.
func openStore(stateDir, runDir string) (*store, error) {
	persistent, err := openBolt(filepath.Join(stateDir, "network.db"), false, bucketNetworks)
	if err != nil {
		return nil, err
	}
	runtime, err := openBolt(filepath.Join(runDir, "runtime.db"), true, bucketEndpoints, bucketNamespaces)
	if err != nil {
		persistent.Close()
		return nil, err
	}
	return &store{persistent: persistent, runtime: runtime}, nil
}

// openBolt opens the bbolt file at path with the given buckets.
func openBolt(path string, noSync bool, buckets ...[]byte) (*bolt.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create network state directory %s: %w", filepath.Dir(path), err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoSync: noSync})
	if err != nil {
		return nil, fmt.Errorf("open network store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
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
	return db, nil
}

func (s *store) close() error {
	return errors.Join(s.persistent.Close(), s.runtime.Close())
}

// db is the file that holds bucket.
func (s *store) db(bucket []byte) *bolt.DB {
	if string(bucket) == string(bucketNetworks) {
		return s.persistent
	}
	return s.runtime
}

func (s *store) put(bucket []byte, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s record %s: %w", bucket, id, err)
	}
	if err := s.db(bucket).Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(id), data) }); err != nil {
		return fmt.Errorf("save %s record %s: %w", bucket, id, err)
	}
	return nil
}

func (s *store) delete(bucket []byte, id string) error {
	if err := s.db(bucket).Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(id)) }); err != nil {
		return fmt.Errorf("delete %s record %s: %w", bucket, id, err)
	}
	return nil
}

// load decodes every record of bucket with fn.
func load[T any](s *store, bucket []byte) ([]*T, error) {
	var out []*T
	err := s.db(bucket).View(func(tx *bolt.Tx) error {
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
