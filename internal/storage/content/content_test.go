package content

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestStore(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	os.MkdirAll(root+"/ingest", 0o700)
	os.WriteFile(root+"/ingest/ingest-stale", []byte("x"), 0o600)
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(root + "/ingest"); len(ents) != 0 {
		t.Fatal("stale ingest not removed")
	}
	blob := []byte("hello blob")
	d := digest.FromBytes(blob)
	wrong := digest.FromString("other")

	cases := []struct {
		name     string
		expected digest.Digest
		size     int64
		wantErr  string
	}{
		{"digest mismatch", wrong, -1, "expected " + wrong.String() + ", actual " + d.String()},
		{"size too small", d, 3, "more than the expected 3 bytes"},
		{"size too large", d, 100, "size 10, expected 100"},
		{"bad digest", "sha256:zz", -1, "invalid argument"},
		{"ok", d, int64(len(blob)), ""},
		{"ok again", d, -1, ""},
		{"unknown digest", "", -1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, err := s.Put(ctx, bytes.NewReader(blob), c.expected, c.size)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				if ents, _ := os.ReadDir(root + "/ingest"); len(ents) != 0 {
					t.Fatal("failed ingest left a temp file")
				}
				return
			}
			if err != nil || info.Digest != d || info.Size != int64(len(blob)) {
				t.Fatalf("put: %+v %v", info, err)
			}
		})
	}
	if _, err := s.Stat(ctx, wrong); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("mismatched blob stored: %v", err)
	}
	b, err := s.ReadAll(ctx, d, 100)
	if err != nil || !bytes.Equal(b, blob) {
		t.Fatalf("read: %q %v", b, err)
	}
	if _, err := s.ReadAll(ctx, d, 3); err == nil {
		t.Fatal("ReadAll ignored its cap")
	}
	var seen []digest.Digest
	s.Walk(ctx, func(i Info) error { seen = append(seen, i.Digest); return nil })
	if len(seen) != 1 || seen[0] != d {
		t.Fatalf("walk: %v", seen)
	}
	if err := s.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, d); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}
