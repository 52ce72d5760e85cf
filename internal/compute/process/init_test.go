package process

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestCheckExecutable(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exe := write("exe", 0o755)
	if err := os.Symlink(exe, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want error // nil: executable
	}{
		{"rwxr-xr-x", exe, nil},
		{"owner x only", write("userx", 0o700), nil},
		{"other x only", write("otherx", 0o601), nil},
		{"no x bit", write("plain", 0o644), unix.EACCES},
		// The check looks at the mode bits only, so even root is refused.
		{"no x bit, all rw", write("rw", 0o666), unix.EACCES},
		{"symlink to executable", filepath.Join(dir, "link"), nil},
		{"directory", filepath.Join(dir, "subdir"), unix.EISDIR},
		{"missing", filepath.Join(dir, "missing"), unix.ENOENT},
		{"through a file", filepath.Join(exe, "x"), unix.ENOTDIR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkExecutable(tt.path)
			if tt.want == nil {
				if err != nil {
					t.Errorf("checkExecutable(%s) = %v", tt.path, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("checkExecutable(%s) = %v, want %v", tt.path, err, tt.want)
			}
		})
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	bin1 := filepath.Join(dir, "bin1")
	bin2 := filepath.Join(dir, "bin2")
	for _, d := range []string{bin1, bin2} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(p string, mode os.FileMode) {
		if err := os.WriteFile(p, nil, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	mk(filepath.Join(bin1, "tool"), 0o644) // not executable: skipped
	mk(filepath.Join(bin2, "tool"), 0o755)
	mk(filepath.Join(bin1, "first"), 0o755)
	mk(filepath.Join(bin2, "first"), 0o755)
	if err := os.Mkdir(filepath.Join(bin1, "dironly"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := "PATH=" + bin1 + ":" + bin2
	tests := []struct {
		name   string
		proc   specs.Process
		want   string
		errHas string
	}{
		{name: "non-executable skipped", proc: specs.Process{Args: []string{"tool"}, Env: []string{path}}, want: filepath.Join(bin2, "tool")},
		{name: "first match wins", proc: specs.Process{Args: []string{"first"}, Env: []string{path}}, want: filepath.Join(bin1, "first")},
		{name: "last PATH entry wins", proc: specs.Process{Args: []string{"first"}, Env: []string{path, "PATH=" + bin2}}, want: filepath.Join(bin2, "first")},
		{name: "absolute", proc: specs.Process{Args: []string{filepath.Join(bin2, "tool")}}, want: filepath.Join(bin2, "tool")},
		{name: "absolute not executable", proc: specs.Process{Args: []string{filepath.Join(bin1, "tool")}}, errHas: "exec"},
		{name: "absolute missing", proc: specs.Process{Args: []string{filepath.Join(bin1, "nope")}}, errHas: "exec"},
		{name: "directory not taken", proc: specs.Process{Args: []string{"dironly"}, Env: []string{path}}, errHas: "not found in $PATH"},
		{name: "missing", proc: specs.Process{Args: []string{"nope"}, Env: []string{path}}, errHas: "not found in $PATH"},
		{name: "ignores host PATH-like vars", proc: specs.Process{Args: []string{"tool"}, Env: []string{"XPATH=" + bin2, "PATH=" + bin1}}, errHas: "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lookPath(&tt.proc)
			if tt.errHas != "" {
				if err == nil {
					t.Fatalf("lookPath = %q, want an error", got)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error %q does not mention %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("lookPath: %v", err)
			}
			if got != tt.want {
				t.Errorf("lookPath = %q, want %q", got, tt.want)
			}
		})
	}
}

// writeSysctls refuses keys that could leave /proc/sys before writing
// anything. Only bad keys are tried here: a good key would change the
// host's sysctl when the test runs as root.
func TestWriteSysctlsRefusesBadKeys(t *testing.T) {
	for _, k := range []string{"net/ipv4/ip_forward", "net..ipv4", "../../etc/passwd", "kernel/hostname", "..", "a/b.c"} {
		err := writeSysctls(map[string]string{k: "1"})
		if err == nil {
			t.Errorf("writeSysctls(%q) succeeded", k)
			continue
		}
		if !strings.Contains(err.Error(), "bad key") || !strings.Contains(err.Error(), k) {
			t.Errorf("writeSysctls(%q) = %v, want a bad-key error naming the key", k, err)
		}
	}
	if err := writeSysctls(nil); err != nil {
		t.Errorf("writeSysctls(nil) = %v", err)
	}
}

func TestCheckCwd(t *testing.T) {
	// The test's own cwd is a normal directory.
	if err := checkCwd(); err != nil {
		t.Errorf("checkCwd() = %v", err)
	}
}
