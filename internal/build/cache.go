package build

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Cache maps step keys to image IDs, one small file per key under a
// directory (written to a temporary name, then renamed: a crash leaves the
// old entry or the new one). Lookups are one file read, so a rebuild with
// nothing changed costs a few microseconds per step here.
type Cache struct {
	dir string
}

// OpenCache opens (creating it) the cache directory dir.
func OpenCache(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open build cache %s: %w", dir, err)
	}
	return &Cache{dir: dir}, nil
}

// Key hashes the parts of a step's identity into a cache key.
func Key(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		// Length-prefixed, so ("ab","c") and ("a","bc") differ.
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c *Cache) path(key string) string { return filepath.Join(c.dir, key) }

// Get returns the image ID stored under key, or "" if there is none.
func (c *Cache) Get(key string) (string, error) {
	if !isHexKey(key) {
		return "", fmt.Errorf("build cache: bad key %q", key)
	}
	b, err := os.ReadFile(c.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("build cache: read %s: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Put stores id under key.
func (c *Cache) Put(key, id string) error {
	if !isHexKey(key) {
		return fmt.Errorf("build cache: bad key %q", key)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := c.path(".tmp-" + hex.EncodeToString(rnd[:]))
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return fmt.Errorf("build cache: write %s: %w", key, err)
	}
	if err := os.Rename(tmp, c.path(key)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("build cache: write %s: %w", key, err)
	}
	return nil
}

// Delete drops key (a stale entry whose image is gone).
func (c *Cache) Delete(key string) error {
	if !isHexKey(key) {
		return fmt.Errorf("build cache: bad key %q", key)
	}
	if err := os.Remove(c.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("build cache: delete %s: %w", key, err)
	}
	return nil
}

// Images returns every image ID the cache names, by key.
func (c *Cache) Images() (map[string]string, error) {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("build cache: list: %w", err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if !isHexKey(e.Name()) {
			continue
		}
		id, err := c.Get(e.Name())
		if err == nil && id != "" {
			out[e.Name()] = id
		}
	}
	return out, nil
}

func isHexKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	_, err := hex.DecodeString(k)
	return err == nil
}

// Prune empties the cache: every entry is dropped and its image released
// (the store's GC frees what nothing else uses). It returns the image IDs
// the cache named.
func (bl *Builder) Prune(ctx context.Context) ([]string, error) {
	entries, err := bl.cache.Images()
	if err != nil {
		return nil, err
	}
	var ids []string
	for key, id := range entries {
		if err := bl.b.Release(ctx, holderOf(key)); err != nil {
			return ids, fmt.Errorf("build cache prune: %w", err)
		}
		if err := bl.cache.Delete(key); err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}
