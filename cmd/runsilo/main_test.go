package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silo-containers/silo/internal/errdefs"
)

// runInProcess runs the command line without a binary; state and output
// stay in t's temp dirs.
func runInProcess(t *testing.T, args ...string) error {
	t.Helper()
	return newCLI(&globals{}).execute(context.Background(), args)
}

func TestCLIInProcess(t *testing.T) {
	tmp := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		is     error
		errHas string
	}{
		{name: "state of a missing container", args: []string{"--root", tmp, "state", "nosuch"}, is: errdefs.ErrNotFound, errHas: "nosuch"},
		{name: "state of a bad id", args: []string{"--root", tmp, "state", "../x"}, is: errdefs.ErrInvalidArgument},
		{name: "kill a missing container", args: []string{"--root", tmp, "kill", "nosuch", "KILL"}, is: errdefs.ErrNotFound},
		{name: "kill with a bad signal", args: []string{"--root", tmp, "kill", "nosuch", "FOO"}, errHas: "signal"},
		{name: "unknown log format", args: []string{"--root", tmp, "--log-format", "yaml", "list"}, errHas: "--log-format"},
		{name: "systemd cgroups", args: []string{"--root", tmp, "--systemd-cgroup", "state", "x"}, is: errdefs.ErrNotImplemented, errHas: "systemd"},
		{name: "state needs an id", args: []string{"--root", tmp, "state"}, errHas: "arg"},
		{name: "update with a bad flag value", args: []string{"--root", tmp, "update", "--memory", "lots", "x"}, errHas: "--memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runInProcess(t, tt.args...)
			if err == nil {
				t.Fatalf("runsilo %q succeeded", tt.args)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("runsilo %q: %v, want %v", tt.args, err, tt.is)
			}
			if tt.errHas != "" && !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("runsilo %q: %q does not mention %q", tt.args, err, tt.errHas)
			}
		})
	}
	// Nothing was created in the state root by the failures.
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("state root holds %d entries after failed commands", len(entries))
	}
}

func TestLogError(t *testing.T) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	stderr := os.Stderr
	os.Stderr = devnull
	defer func() { os.Stderr = stderr }()

	dir := t.TempDir()
	jsonLog := filepath.Join(dir, "json.log")
	g := &globals{log: jsonLog, logFormat: "json"}
	g.logError(errors.New(`boom "quoted"`))
	g.logError(errors.New("second"))
	data, err := os.ReadFile(jsonLog)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("json log has %d lines: %q", len(lines), data)
	}
	var entry map[string]string
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
		t.Fatalf("json log line %q: %v", lines[0], err)
	}
	if entry["level"] != "error" || entry["msg"] != `boom "quoted"` {
		t.Errorf("json log entry %v", entry)
	}
	if _, err := time.Parse(time.RFC3339Nano, entry["time"]); err != nil {
		t.Errorf("json log time %q: %v", entry["time"], err)
	}

	textLog := filepath.Join(dir, "text.log")
	g = &globals{log: textLog, logFormat: "text"}
	g.logError(errors.New("boom"))
	data, err = os.ReadFile(textLog)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(data); !strings.Contains(s, "level=error") || !strings.Contains(s, `msg="boom"`) {
		t.Errorf("text log %q", s)
	}

	// No --log: stderr only, no file and no panic.
	(&globals{}).logError(errors.New("x"))
}

// runsiloBinary returns the built binary, skipping when it is missing.
func runsiloBinary(t *testing.T) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("..", "..", "bin", "runsilo"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(bin)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Skipf("%s not built (make it to run the CLI tests)", bin)
	}
	return bin
}

func runBinary(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run %s %q: %v", bin, args, err)
	}
	return code, o.String(), e.String()
}

func TestCLIBinaryErrors(t *testing.T) {
	bin := runsiloBinary(t)
	root := t.TempDir()
	tests := []struct {
		name      string
		args      []string
		stderrHas []string
	}{
		{name: "state of a missing container", args: []string{"--root", root, "state", "nosuch"}, stderrHas: []string{"not found", "nosuch"}},
		{name: "unknown log format", args: []string{"--root", root, "--log-format", "yaml", "list"}, stderrHas: []string{"log-format", "yaml"}},
		{name: "systemd cgroups", args: []string{"--root", root, "--systemd-cgroup", "state", "x"}, stderrHas: []string{"systemd"}},
		{name: "delete of a missing container", args: []string{"--root", root, "delete", "nosuch"}, stderrHas: []string{"not found"}},
		{name: "bad id", args: []string{"--root", root, "state", ".hidden"}, stderrHas: []string{"container id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runBinary(t, bin, tt.args...)
			if code != 1 {
				t.Errorf("runsilo %q: exit status %d, want 1 (stderr %q)", tt.args, code, stderr)
			}
			for _, s := range tt.stderrHas {
				if !strings.Contains(stderr, s) {
					t.Errorf("runsilo %q: stderr %q does not mention %q", tt.args, stderr, s)
				}
			}
			if !strings.HasPrefix(stderr, "runsilo: ") {
				t.Errorf("stderr %q lacks the runsilo: prefix", stderr)
			}
			if stdout != "" {
				t.Errorf("runsilo %q wrote to stdout: %q", tt.args, stdout)
			}
		})
	}
}

func TestCLIBinaryLogFile(t *testing.T) {
	bin := runsiloBinary(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "runsilo.log")
	code, _, _ := runBinary(t, bin, "--root", dir, "--log", log, "--log-format", "json", "state", "nosuch")
	if code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("no log file: %v", err)
	}
	var entry map[string]string
	if err := json.Unmarshal(bytes.TrimSpace(data), &entry); err != nil {
		t.Fatalf("log %q is not one JSON line: %v", data, err)
	}
	if entry["level"] != "error" || !strings.Contains(entry["msg"], "not found") {
		t.Errorf("log entry %v", entry)
	}
}

func TestCLIBinaryListAndSpec(t *testing.T) {
	bin := runsiloBinary(t)
	root := t.TempDir()
	if code, stdout, stderr := runBinary(t, bin, "--root", root, "list", "-q"); code != 0 || stdout != "" {
		t.Errorf("list -q on an empty root: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, stdout, _ := runBinary(t, bin, "--version"); code != 0 || !strings.Contains(stdout, "runsilo version") {
		t.Errorf("--version: status %d, stdout %q", code, stdout)
	}
	bundle := t.TempDir()
	if code, _, stderr := runBinary(t, bin, "spec", "--bundle", bundle); code != 0 {
		t.Fatalf("spec: status %d, stderr %q", code, stderr)
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	if _, ok := doc["ociVersion"]; !ok {
		t.Error("config.json lacks ociVersion")
	}
	if code, _, stderr := runBinary(t, bin, "spec", "--bundle", bundle); code != 1 || !strings.Contains(stderr, "exists") {
		t.Errorf("second spec: status %d, stderr %q; want a refusal to overwrite", code, stderr)
	}
}
