package netnsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCreateRemove(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	p := filepath.Join(t.TempDir(), "netns", "a")
	if IsNamespace(p) {
		t.Fatal("namespace before create")
	}
	for range 2 { // idempotent
		if err := Create(p); err != nil {
			t.Fatal(err)
		}
		if !IsNamespace(p) {
			t.Fatal("not a namespace after create")
		}
	}
	for range 2 { // missing is not an error
		if err := Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("file left: %v", err)
	}
	// A plain file (a leftover) is not a namespace and Remove clears it.
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if IsNamespace(p) {
		t.Fatal("plain file taken for a namespace")
	}
	if err := Remove(p); err != nil {
		t.Fatal(err)
	}
}
