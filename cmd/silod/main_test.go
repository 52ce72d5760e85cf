package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListen(t *testing.T) {
	dir := t.TempDir()
	notSock := filepath.Join(dir, "file")
	if err := os.WriteFile(notSock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		err  string
	}{
		{"unix://" + filepath.Join(dir, "a", "silo.sock"), ""},
		{"tcp://127.0.0.1:0", ""},
		{"tcp://0.0.0.0:0", "only loopback"},
		{"tcp://192.0.2.1:0", "only loopback"},
		{"tcp://127.0.0.1", "missing port"},
		{"unix://" + notSock, "not a socket"},
		{"http://x", "want unix"},
	}
	for _, tt := range tests {
		l, err := listen(tt.host)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("listen(%q): %v, want %q", tt.host, err, tt.err)
			}
			if l != nil {
				l.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("listen(%q): %v", tt.host, err)
			continue
		}
		if strings.HasPrefix(tt.host, "unix://") {
			fi, err := os.Stat(strings.TrimPrefix(tt.host, "unix://"))
			if err != nil || fi.Mode().Perm() != 0o660 {
				t.Errorf("socket mode %v, %v", fi.Mode(), err)
			}
			// A second daemon on the same socket is refused.
			if _, err := listen(tt.host); err == nil || !strings.Contains(err.Error(), "another daemon") {
				t.Errorf("second listen: %v", err)
			}
		}
		l.Close()
	}
}
