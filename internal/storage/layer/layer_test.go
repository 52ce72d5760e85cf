package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/silo-containers/silo/internal/storage/archive"
)

func tarOf(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

func TestChainIDs(t *testing.T) {
	a, b := digest.FromString("a"), digest.FromString("b")
	ids := ChainIDs([]digest.Digest{a, b})
	if ids[0] != a || ids[1] != digest.FromString(a.String()+" "+b.String()) {
		t.Fatalf("chain ids %v", ids)
	}
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, ".tmp-dead", "diff"), 0o755)
	os.MkdirAll(filepath.Join(root, strings.Repeat("a", 64), "diff"), 0o755) // no layerchain.json: incomplete
	s, err := Open(root, archive.Options{NoChown: os.Geteuid() != 0})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.WaitTrash()
	if ents, _ := os.ReadDir(root); len(ents) != 1 {
		t.Fatalf("stale dirs left: %v", ents)
	}

	base := tarOf(t, map[string]string{"etc/os": "base"})
	top := tarOf(t, map[string]string{"app": "top"})
	baseID, topID := digest.FromBytes(base), digest.FromBytes(top)
	chain := ChainIDs([]digest.Digest{baseID, topID})

	// Top first: parents need not exist yet (parallel unpack).
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, job := range []struct {
		parents []digest.Digest
		diff    digest.Digest
		data    []byte
	}{{chain[:1], topID, top}, {nil, baseID, base}, {nil, baseID, base}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Unpack(ctx, job.parents, job.diff, bytes.NewReader(job.data))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	dirs, err := s.Chain(chain[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 2 || dirs[0] != s.DiffDir(chain[1]) || dirs[1] != s.DiffDir(chain[0]) {
		t.Fatalf("chain %v", dirs)
	}
	if b, _ := os.ReadFile(filepath.Join(dirs[1], "etc/os")); string(b) != "base" {
		t.Fatal("base content")
	}
	l, err := s.Get(chain[1])
	if err != nil || l.DiffID != topID || l.Parent != chain[0] || l.Size != 3 {
		t.Fatalf("get: %+v %v", l, err)
	}

	// A stream that does not match its DiffID leaves nothing behind.
	bad := digest.FromString("not this")
	if _, err := s.Unpack(ctx, nil, bad, bytes.NewReader(top)); err == nil || !strings.Contains(err.Error(), "diffID mismatch: expected "+bad.String()) {
		t.Fatalf("mismatch: %v", err)
	}
	if s.Has(bad) {
		t.Fatal("mismatched layer kept")
	}

	// Unknown diffID: computed.
	l, err = s.Unpack(ctx, nil, "", bytes.NewReader(top))
	if err != nil || l.ChainID != topID {
		t.Fatalf("unknown diffID: %+v %v", l, err)
	}

	if err := s.Remove(chain[1]); err != nil {
		t.Fatal(err)
	}
	s.WaitTrash()
	var n int
	s.Walk(func(Layer) error { n++; return nil })
	if n != 2 || s.Has(chain[1]) {
		t.Fatalf("after remove: %d layers", n)
	}
}
