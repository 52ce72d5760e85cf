package monitor

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/silo-containers/silo/internal/engine/logs"
)

// readLog returns the entries of the log in dir as "source|line" strings.
func readLog(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for e, err := range logs.Read(context.Background(), dir, logs.Options{Stdout: true, Stderr: true, Tail: -1}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Attrs["source"]+"|"+strings.TrimSuffix(string(e.Line), "\n"))
	}
	return out
}

func TestFileCapture(t *testing.T) {
	root, logDir := t.TempDir(), t.TempDir()
	app := filepath.Join(root, "var/log/app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string, flag int) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(app, name), flag|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(data); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	// Outside the root: must never be read, whatever the links say.
	outside := filepath.Join(t.TempDir(), "secret.log")
	if err := os.WriteFile(outside, []byte("SECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(app, "abs.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../.."+outside, filepath.Join(app, "rel.log")); err != nil {
		t.Fatal(err)
	}
	// Old content, written before the capture started: skipped.
	write("old.log", "before\n", os.O_APPEND)
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(filepath.Join(app, "old.log"), old, old); err != nil {
		t.Fatal(err)
	}
	w, err := logs.Open(logDir, logs.Config{MaxSize: -1, MaxFile: 1})
	if err != nil {
		t.Fatal(err)
	}
	// New since the start: read from its beginning.
	write("a.log", "one\n", os.O_APPEND)
	offsets := filepath.Join(logDir, captureOffsetsFile)
	c, err := startFileCapture(w, root, []string{"/var/log/app/*.log"}, time.Now().Add(-time.Second), offsets)
	if err != nil {
		t.Fatal(err)
	}
	step := func() { time.Sleep(2 * capturePoll) }
	step()
	write("old.log", "after\n", os.O_APPEND)
	write("a.log", "two\npart", os.O_APPEND)
	step()
	write("a.log", "ial\n", os.O_APPEND)
	// Rotation: rename, then a new file under the name.
	if err := os.Rename(filepath.Join(app, "a.log"), filepath.Join(app, "a.log.1")); err != nil {
		t.Fatal(err)
	}
	write("a.log", "three\n", os.O_APPEND)
	step()
	write("a.log", "", os.O_TRUNC) // copytruncate
	step()
	write("a.log", "four\n", os.O_APPEND)
	write("b.log", strings.Repeat("x", logs.BufSize+10)+"\n", os.O_APPEND)
	write("c.txt", "not matched\n", os.O_APPEND)
	write("last.log", "unterminated", os.O_APPEND)
	c.close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readLog(t, logDir)
	want := map[string][]string{
		"/var/log/app/a.log":    {"one", "two", "partial", "three", "four"},
		"/var/log/app/old.log":  {"after"},
		"/var/log/app/b.log":    {strings.Repeat("x", logs.BufSize), "xxxxxxxxxx"},
		"/var/log/app/last.log": {"unterminated"},
	}
	bySource := map[string][]string{}
	for _, g := range got {
		src, line, _ := strings.Cut(g, "|")
		bySource[src] = append(bySource[src], line)
		if strings.Contains(line, "SECRET") || strings.Contains(line, "before") {
			t.Errorf("captured %q", g)
		}
	}
	for src, lines := range want {
		if strings.Join(bySource[src], ",") != strings.Join(lines, ",") {
			t.Errorf("%s: got %.200q, want %.200q", src, bySource[src], lines)
			for _, l := range bySource[src] {
				t.Logf("%d bytes", len(l))
			}
		}
	}
	if len(bySource) != len(want) {
		t.Errorf("sources %v", bySource)
	}
	if len(c.files) != 0 {
		t.Errorf("files left open: %d", len(c.files))
	}

	// The next run of the container goes on where this one stopped, even
	// for a file written after its start and before its first poll (a
	// start time an hour ago makes every file such a file).
	write("a.log", "five\n", os.O_APPEND)
	w, err = logs.Open(logDir, logs.Config{MaxSize: -1, MaxFile: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err = startFileCapture(w, root, []string{"/var/log/app/a.log"}, time.Now().Add(-time.Hour), offsets)
	if err != nil {
		t.Fatal(err)
	}
	c.close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if again := readLog(t, logDir); len(again) != len(got)+1 || again[len(again)-1] != "/var/log/app/a.log|five" {
		t.Errorf("after a restart the log gained %q, want only five", again[len(got):])
	}
}

func TestArgsLogDriverAndCapture(t *testing.T) {
	in := &Config{ID: "c", Bundle: "/b", Runtime: "/r", RuntimeRoot: "/rr", Dir: "/d", LogDriver: "local",
		LogOpts: map[string]string{"capture-files": "/var/log/*.log,/x.log", "capture-syslog": "true"}}
	out, err := ParseArgs(in.Args())
	if err != nil {
		t.Fatal(err)
	}
	if out.LogDriver != "local" || out.LogOpts["capture-files"] != "/var/log/*.log,/x.log" || out.LogOpts["capture-syslog"] != "true" {
		t.Fatalf("round trip: %+v", out)
	}
}

func TestOffsetsRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), captureOffsetsFile)
	if got := loadOffsets(p); len(got) != 0 {
		t.Fatalf("missing file: %v", got)
	}
	files := map[fileKey]*followed{
		{dev: 1, ino: 42}: {name: "/var/log/app/a.log", off: 120},
		{dev: 1, ino: 43}: {name: "/var/log/with space.log", off: 0},
	}
	saveOffsets(p, files)
	got := loadOffsets(p)
	want := map[string]savedOffset{"/var/log/app/a.log": {ino: 42, off: 120}, "/var/log/with space.log": {ino: 43, off: 0}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("offsets = %v, want %v", got, want)
	}
	if err := os.WriteFile(p, []byte("junk\n12 x /a\n7 -1 /b\n9 3 /ok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := loadOffsets(p); !reflect.DeepEqual(got, map[string]savedOffset{"/ok": {ino: 9, off: 3}}) {
		t.Fatalf("damaged file: %v", got)
	}
}
