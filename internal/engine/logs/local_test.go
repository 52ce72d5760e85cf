package logs

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/silo-containers/silo/internal/errdefs"
)

func init() {
	Gunzip = func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }
}

// gzipFile is a Writer.Compress for tests.
func gzipFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, cerr := io.Copy(zw, in)
	return errors.Join(cerr, zw.Close(), out.Close())
}

func localLines(t *testing.T, dir string, opts Options) []string {
	t.Helper()
	opts.Driver = DriverLocal
	var out []string
	for e, err := range Read(context.Background(), dir, opts) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Stream[3:]+":"+string(e.Line))
	}
	return out
}

func TestLocalRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, stream, line string
		attrs              map[string]string
	}{
		{"stdout", Stdout, "hello\n", nil},
		{"stderr partial", Stderr, "no newline", nil},
		{"empty", Stdout, "", nil},
		{"attrs", Stdout, "x\n", map[string]string{"source": "/var/log/a.log", "k": ""}},
		{"binary", Stdout, "\x00\xff\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := appendLocalRecord(nil, tc.stream, []byte(tc.line), NewAttrs(tc.attrs), t0)
			body, n, err := nextRecord(rec)
			if err != nil || n != len(rec) {
				t.Fatalf("nextRecord: %d of %d, %v", n, len(rec), err)
			}
			e, err := decodeLocal(body)
			if err != nil || e.Stream != tc.stream || string(e.Line) != tc.line || !e.Time.Equal(t0) || len(e.Attrs) != len(tc.attrs) {
				t.Fatalf("decoded %+v, %v", e, err)
			}
			for k, v := range tc.attrs {
				if e.Attrs[k] != v {
					t.Fatalf("attr %s = %q", k, e.Attrs[k])
				}
			}
			// Every cut short of the whole record is "not yet".
			for i := 0; i < len(rec); i++ {
				if _, n, err := nextRecord(rec[:i]); n != 0 || err != nil {
					t.Fatalf("prefix %d: %d %v", i, n, err)
				}
			}
		})
	}
	bad := appendLocalRecord(nil, Stdout, []byte("x\n"), Attrs{}, t0)
	bad[len(bad)-1] ^= 1
	if _, _, err := nextRecord(bad); !errors.Is(err, errCorrupt) {
		t.Fatalf("bad trailer: %v", err)
	}
	if _, err := decodeLocal([]byte{0, 1}); !errors.Is(err, errCorrupt) {
		t.Fatalf("short body: %v", err)
	}
}

func TestParseDriverConfig(t *testing.T) {
	for _, tc := range []struct {
		driver string
		opts   map[string]string
		want   Config
		class  error
	}{
		{"local", nil, Config{Driver: DriverLocal, MaxSize: 20 << 20, MaxFile: 5, Compress: true}, nil},
		{"local", map[string]string{"max-size": "1k", "max-file": "2", "compress": "false"}, Config{Driver: DriverLocal, MaxSize: 1024, MaxFile: 2}, nil},
		{"local", map[string]string{"compress": "maybe"}, Config{}, errdefs.ErrInvalidArgument},
		{"local", map[string]string{"labels": "a"}, Config{}, errdefs.ErrInvalidArgument},
		{"", map[string]string{"max-size": "1k"}, Config{MaxSize: 1024, MaxFile: 1}, nil},
		{"syslog", nil, Config{}, errdefs.ErrNotImplemented},
	} {
		t.Run(fmt.Sprint(tc.driver, tc.opts), func(t *testing.T) {
			got, err := ParseDriverConfig(tc.driver, tc.opts)
			if tc.class != nil {
				if !errors.Is(err, tc.class) {
					t.Fatalf("err %v, want %v", err, tc.class)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestLocalRotationAndRead(t *testing.T) {
	for _, compress := range []bool{true, false} {
		t.Run(fmt.Sprint("compress=", compress), func(t *testing.T) {
			dir := t.TempDir()
			w, err := Open(dir, Config{Driver: DriverLocal, MaxSize: 200, MaxFile: 3, Compress: compress})
			if err != nil {
				t.Fatal(err)
			}
			w.Compress = gzipFile
			var want []string
			for i := 0; i < 40; i++ {
				stream := Stdout
				if i%3 == 0 {
					stream = Stderr
				}
				line := fmt.Sprintf("line %02d\n", i)
				if err := w.WriteEntry(stream, []byte(line), t0.Add(time.Duration(i)*time.Second)); err != nil {
					t.Fatal(err)
				}
				want = append(want, stream[3:]+":"+line)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			names, _ := filepath.Glob(filepath.Join(dir, LocalFileName+"*"))
			sort.Strings(names)
			var base []string
			for _, n := range names {
				base = append(base, filepath.Base(n))
			}
			wantNames := []string{"container.log", "container.log.1", "container.log.2"}
			if compress {
				wantNames = []string{"container.log", "container.log.1.gz", "container.log.2.gz"}
			}
			if strings.Join(base, " ") != strings.Join(wantNames, " ") {
				t.Fatalf("files %v, want %v", base, wantNames)
			}
			got := localLines(t, dir, Options{Stdout: true, Stderr: true, Tail: -1})
			// Older entries went with the dropped files: what is left is a
			// contiguous run ending with the last one.
			if len(got) == 0 || len(got) >= len(want) || strings.Join(got, "") != strings.Join(want[len(want)-len(got):], "") {
				t.Fatalf("read %q", got)
			}
			if tail := localLines(t, dir, Options{Stdout: true, Stderr: true, Tail: 2}); strings.Join(tail, "") != strings.Join(want[38:], "") {
				t.Fatalf("tail 2: %q", tail)
			}
			if errOnly := localLines(t, dir, Options{Stderr: true, Tail: 1}); len(errOnly) != 1 || errOnly[0] != "err:line 39\n" {
				t.Fatalf("stderr tail 1: %q", errOnly)
			}
			since := localLines(t, dir, Options{Stdout: true, Stderr: true, Tail: -1, Since: t0.Add(37 * time.Second), Until: t0.Add(38 * time.Second)})
			if strings.Join(since, "") != "out:line 37\nout:line 38\n" {
				t.Fatalf("since/until: %q", since)
			}
		})
	}
}

func TestLocalFollowAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Config{Driver: DriverLocal, MaxSize: 100, MaxFile: 4, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Compress = gzipFile
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan []string, 1)
	go func() {
		var out []string
		for e, err := range Read(ctx, dir, Options{Driver: DriverLocal, Follow: true, Tail: 0, Stdout: true}) {
			if err != nil {
				out = append(out, "error: "+err.Error())
				break
			}
			out = append(out, string(e.Line))
		}
		got <- out
	}()
	time.Sleep(100 * time.Millisecond)
	var want []string
	for i := 0; i < 30; i++ {
		line := fmt.Sprintf("n%02d\n", i)
		want = append(want, line)
		if err := w.WriteEntry(Stdout, []byte(line), time.Now()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // slower than rotations: none skipped
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out := <-got; strings.Join(out, "") != strings.Join(want, "") {
		t.Fatalf("followed %q\nwant %q", out, want)
	}
}

func TestLocalRepairTornRecord(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Config{Driver: DriverLocal, MaxSize: -1, MaxFile: 1})
	if err != nil {
		t.Fatal(err)
	}
	_ = w.WriteEntry(Stdout, []byte("kept\n"), t0)
	_ = w.Close()
	// A crash mid-write: half a record at the end.
	rec := appendLocalRecord(nil, Stdout, []byte("torn\n"), Attrs{}, t0)
	f, err := os.OpenFile(filepath.Join(dir, LocalFileName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write(rec[:len(rec)/2])
	f.Close()
	w, err = Open(dir, Config{Driver: DriverLocal, MaxSize: -1, MaxFile: 1})
	if err != nil {
		t.Fatal(err)
	}
	_ = w.WriteEntry(Stdout, []byte("after\n"), t0)
	_ = w.Close()
	if got := localLines(t, dir, Options{Stdout: true, Tail: -1}); strings.Join(got, "") != "out:kept\nout:after\n" {
		t.Fatalf("after repair: %q", got)
	}
}
