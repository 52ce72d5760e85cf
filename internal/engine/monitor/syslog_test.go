package monitor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/engine/logs"
)

func TestParseSyslog(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		pri      int
		lines    string
	}{
		{"glibc local", "<13>Dec  3 16:22:00 root: hello", 13, "root: hello\n"},
		{"glibc with pid", "<30>Jan 12 01:02:03 nginx[42]: started\n", 30, "nginx[42]: started\n"},
		{"with hostname", "<34>Oct 11 22:14:15 mymachine su: 'su root' failed", 34, "su: 'su root' failed\n"},
		{"no timestamp", "<13>app: hi", 13, "app: hi\n"},
		{"no tag", "<13>Dec  3 16:22:00 just some text", 13, "just some text\n"},
		{"no pri", "plain text", defaultPri, "plain text\n"},
		{"bad pri", "<999>x: y", defaultPri, "<999>x: y\n"},
		{"rfc5424", "<165>1 2003-10-11T22:14:15.003Z host evntslog 99 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\]\"] An application event", 165, "evntslog[99]: An application event\n"},
		{"rfc5424 nil fields", "<14>1 - - - - - - hello", 14, "hello\n"},
		{"rfc5424 bom", "<14>1 - h app - - - \xef\xbb\xbfutf8", 14, "app: utf8\n"},
		{"multi-line", "<13>app: one\ntwo\n\nthree", 13, "app: one\napp: two\napp: three\n"},
		{"trailing nul", "<13>app: x\x00", 13, "app: x\n"},
		{"empty", "", defaultPri, "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := parseSyslog([]byte(tc.in))
			var got strings.Builder
			for _, l := range m.lines() {
				got.Write(l)
			}
			if m.pri != tc.pri || got.String() != tc.lines {
				t.Fatalf("pri %d %q, want %d %q", m.pri, got.String(), tc.pri, tc.lines)
			}
		})
	}
}

func FuzzParseSyslog(f *testing.F) {
	f.Add([]byte("<13>Dec  3 16:22:00 root: hello"))
	f.Add([]byte("<165>1 2003-10-11T22:14:15.003Z host app 1 ID [a b=\"c\"] m"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, l := range parseSyslog(b).lines() {
			if len(l) == 0 || l[len(l)-1] != '\n' {
				t.Fatalf("line %q", l)
			}
		}
	})
}

// TestSyslogSocket sends datagrams to the socket and finds them in the log.
func TestSyslogSocket(t *testing.T) {
	dir, logDir := t.TempDir(), t.TempDir()
	w, err := logs.Open(logDir, logs.Config{MaxSize: -1, MaxFile: 1})
	if err != nil {
		t.Fatal(err)
	}
	sock, err := openSyslog(syslogPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(syslogPath(dir)); err != nil || fi.Mode().Perm() != 0o666 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %v %v", fi, err)
	}
	r := startSyslog(sock, w)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, m := range []string{"<13>Dec  3 16:22:00 root: one", "<11>1 - - app 7 - - two", ""} {
		if err := unix.Sendto(fd, []byte(m), 0, &unix.SockaddrUnix{Name: syslogPath(dir)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	r.close()
	if _, err := os.Stat(syslogPath(dir)); !os.IsNotExist(err) {
		t.Errorf("socket left: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(logDir, logs.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"log":"root: one\n","stream":"stdout","attrs":{"facility":"user","severity":"notice","source":"syslog"},"time":"`,
		`{"log":"app[7]: two\n","stream":"stdout","attrs":{"facility":"user","severity":"err","source":"syslog"},"time":"`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("no %s in\n%s", want, raw)
		}
	}
}
