package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/silo-containers/silo/internal/errdefs"
)

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, root
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"data", true}, {"my-vol_1.x", true}, {"ab", true},
		{"a", false}, {"", false}, {"-x", false}, {"a/b", false}, {"../x", false}, {"x y", false},
	} {
		err := CheckName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("CheckName(%q): %v is not an invalid argument", tc.name, err)
		}
	}
}

func TestCreateGetRemove(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	v, err := s.Create(ctx, CreateOptions{Name: "data", Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Driver != DriverLocal || v.Labels["a"] != "b" || v.CreatedAt.IsZero() {
		t.Fatalf("created %+v", v)
	}
	if fi, err := os.Stat(s.Path("data")); err != nil || !fi.IsDir() {
		t.Fatalf("data dir: %v", err)
	}
	// A second create returns the existing volume unchanged.
	again, err := s.Create(ctx, CreateOptions{Name: "data"})
	if err != nil || again.Labels["a"] != "b" {
		t.Fatalf("create again: %+v %v", again, err)
	}
	for _, tc := range []struct {
		o     CreateOptions
		class func(error) bool
	}{
		{CreateOptions{Name: "x"}, func(err error) bool { return errors.Is(err, errdefs.ErrInvalidArgument) }},
		{CreateOptions{Name: "ok", Driver: "nfs"}, errdefs.IsNotFound},
		{CreateOptions{Name: "ok", Options: map[string]string{"type": "tmpfs"}}, func(err error) bool { return errors.Is(err, errdefs.ErrNotImplemented) }},
	} {
		if _, err := s.Create(ctx, tc.o); err == nil || !tc.class(err) {
			t.Errorf("create %+v: %v", tc.o, err)
		}
	}
	if _, err := s.Get("nope"); !errdefs.IsNotFound(err) {
		t.Errorf("get missing: %v", err)
	}
	if err := s.Remove(ctx, "nope", false); !errdefs.IsNotFound(err) {
		t.Errorf("remove missing: %v", err)
	}
	if err := s.Remove(ctx, "nope", true); err != nil {
		t.Errorf("remove -f missing: %v", err)
	}
	if err := s.Remove(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path("data")); !os.IsNotExist(err) {
		t.Fatalf("data dir left: %v", err)
	}
}

func TestAttachDetach(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	if _, err := s.Create(ctx, CreateOptions{Name: "named"}); err != nil {
		t.Fatal(err)
	}
	anon := map[string]string{LabelAnonymous: ""}
	points := []container.MountPoint{
		{Type: mount.TypeVolume, Name: "named", Destination: "/a", RW: true},
		{Type: mount.TypeVolume, Name: "anon1", Destination: "/b", RW: true},
		{Type: mount.TypeBind, Source: "/tmp", Destination: "/c"},
	}
	created, err := s.Attach(ctx, "c1", []Use{{Name: "named"}, {Name: "anon1", Labels: anon}}, points)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 1 || created[0] != "anon1" {
		t.Fatalf("created %v", created)
	}
	// A second container shares the named volume.
	if _, err := s.Attach(ctx, "c2", []Use{{Name: "named"}}, points[:1]); err != nil {
		t.Fatal(err)
	}
	mps, err := s.Mounts("c1")
	if err != nil || len(mps) != 3 || mps[2].Source != "/tmp" {
		t.Fatalf("mounts %+v %v", mps, err)
	}
	if err := s.Remove(ctx, "named", true); !errdefs.IsConflict(err) {
		t.Fatalf("remove in use: %v", err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[1].Name != "named" || len(list[1].Users) != 2 {
		t.Fatalf("list %+v %v", list, err)
	}
	// Prune of unused volumes touches nothing in use.
	if names, _, err := s.Prune(ctx, PruneOptions{All: true}); err != nil || len(names) != 0 {
		t.Fatalf("prune in use: %v %v", names, err)
	}
	removed, err := s.Detach(ctx, "c1", true)
	if err != nil || len(removed) != 1 || removed[0] != "anon1" {
		t.Fatalf("detach: %v %v", removed, err)
	}
	if _, err := os.Stat(s.Path("anon1")); !os.IsNotExist(err) {
		t.Fatalf("anonymous volume left: %v", err)
	}
	if _, err := s.Get("named"); err != nil {
		t.Fatalf("named volume removed by detach: %v", err)
	}
	if _, err := s.Detach(ctx, "c2", true); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "named", false); err != nil {
		t.Fatalf("remove unused: %v", err)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	for _, o := range []CreateOptions{
		{Name: "keep", Labels: map[string]string{"k": "1"}},
		{Name: "anon", Labels: map[string]string{LabelAnonymous: ""}},
		{Name: "other"},
	} {
		if _, err := s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.Path("anon"), "f"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	names, freed, err := s.Prune(ctx, PruneOptions{})
	if err != nil || len(names) != 1 || names[0] != "anon" || freed != 1000 {
		t.Fatalf("prune anonymous: %v %d %v", names, freed, err)
	}
	names, _, err = s.Prune(ctx, PruneOptions{All: true, Match: func(v *Volume) bool { return v.Labels["k"] == "" }})
	if err != nil || len(names) != 1 || names[0] != "other" {
		t.Fatalf("prune all unlabelled: %v %v", names, err)
	}
}

func TestOpenSweepsHalfMade(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "orphan", "_data"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(root, "orphan")); !os.IsNotExist(err) {
		t.Fatalf("orphan left: %v", err)
	}
}
