package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocument checks how config.json becomes a compute document: the
// spec decoded (other platforms' sections ignored), SpecJSON the first JSON
// value as read, trailing data dropped as runc's decoder drops it.
func TestDocument(t *testing.T) {
	const config = `{"ociVersion": "1.2.0", "hostname": "box",
		"process": {"args": ["/bin/true"], "cwd": "/"},
		"root": {"path": "rootfs"},
		"linux": {"namespaces": [{"type": "pid"}], "maskedPaths": ["/proc/kcore"]},
		"windows": {"layerFolders": ["C:\\x"]}, "vm": {"hypervisor": {"path": "/x"}}}`
	tests := []struct {
		name     string
		file     string
		wantErr  string
		wantJSON string
	}{
		{"config", config, "", config},
		{"trailing data", config + "\n{garbage", "", config},
		{"not JSON", "{", "parse", ""},
		{"wrong type", `{"hostname": 3}`, "parse", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(tt.file), 0o644); err != nil {
				t.Fatal(err)
			}
			doc, err := (&createFlags{bundle: dir}).document("c")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("document() = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := doc.Spec
			if s.Hostname != "box" || s.Process == nil || s.Process.Args[0] != "/bin/true" ||
				s.Linux == nil || len(s.Linux.Namespaces) != 1 || s.Linux.MaskedPaths[0] != "/proc/kcore" {
				t.Fatalf("spec decoded as %+v", s)
			}
			if s.Windows != nil || s.VM != nil {
				t.Errorf("other platforms' sections decoded: windows %v, vm %v", s.Windows, s.VM)
			}
			if string(doc.SpecJSON) != tt.wantJSON {
				t.Errorf("SpecJSON = %q, want %q", doc.SpecJSON, tt.wantJSON)
			}
			if !json.Valid(doc.SpecJSON) {
				t.Errorf("SpecJSON is not valid JSON")
			}
		})
	}
}
