package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)

func TestAppendEntryDockerFormat(t *testing.T) {
	for _, tc := range []struct {
		name, stream, line string
		t                  time.Time
		want               string
	}{
		{"plain", "stdout", "hello\n", t0, `{"log":"hello\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}`},
		{"partial", "stderr", "no newline", t0, `{"log":"no newline","stream":"stderr","time":"2024-05-01T10:00:00.123456789Z"}`},
		{"trailing zeros trimmed", "stdout", "x\n", time.Date(2024, 5, 1, 10, 0, 0, 500000000, time.UTC), `{"log":"x\n","stream":"stdout","time":"2024-05-01T10:00:00.5Z"}`},
		{"local time as UTC", "stdout", "x\n", t0.In(time.FixedZone("X", 3600)), `{"log":"x\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}`},
		{"html and quotes", "stdout", "<a href=\"x\">&\\</a>\n", t0, `{"log":"\u003ca href=\"x\"\u003e\u0026\\\u003c/a\u003e\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}`},
		{"controls", "stdout", "\t\r\x00\x1b[0m\x7f\n", t0, `{"log":"\u0009\r\u0000\u001b[0m` + "\x7f" + `\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}`},
		{"utf8 and invalid", "stdout", "é\xff\u2028\n", t0, `{"log":"é\ufffd\u2028\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}`},
		{"empty log omitted", "stdout", "", t0, `{"stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(appendEntry(nil, tc.stream, []byte(tc.line), tc.t))
			if got != tc.want+"\n" {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			var v struct{ Log, Stream, Time string }
			if err := json.Unmarshal([]byte(got), &v); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			e, err := Decode([]byte(strings.TrimSuffix(got, "\n")))
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Line) != v.Log || e.Stream != v.Stream || !e.Time.Equal(tc.t) {
				t.Fatalf("decode: %+v, encoding/json: %+v", e, v)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // Line; "ERR" for an error
	}{
		{"docker", `{"log":"a\n","stream":"stdout","time":"2024-05-01T10:00:00Z"}`, "a\n"},
		{"attrs skipped", `{"log":"a","stream":"stdout","attrs":{"k":["v",1,-2.5e3,true,null,{}]},"time":"2024-05-01T10:00:00Z"}`, "a"},
		{"any order, spaces", ` { "time" : "2024-05-01T10:00:00Z" , "stream":"stderr", "log":"\u00e9\ud83d\ude00\/" } `, "é😀/"},
		{"no log", `{"stream":"stdout","time":"2024-05-01T10:00:00Z"}`, ""},
		{"lone surrogate", `{"log":"\ud800x","stream":"stdout","time":"2024-05-01T10:00:00Z"}`, "\ufffdx"},
		{"no time", `{"log":"a","stream":"stdout"}`, "ERR"},
		{"bad time", `{"log":"a","stream":"stdout","time":"yesterday"}`, "ERR"},
		{"torn", `{"log":"a","stream":"std`, "ERR"},
		{"trailing", `{"log":"a","stream":"stdout","time":"2024-05-01T10:00:00Z"}x`, "ERR"},
		{"raw newline", "{\"log\":\"a\n\",\"stream\":\"stdout\",\"time\":\"2024-05-01T10:00:00Z\"}", "ERR"},
		{"deep", `{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,"stream":"stdout","time":"2024-05-01T10:00:00Z"}`, "ERR"},
		{"empty", ``, "ERR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Decode([]byte(tc.in))
			if tc.want == "ERR" {
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("want a syntax error, got %v (%+v)", err, e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Line) != tc.want {
				t.Fatalf("line %q, want %q", e.Line, tc.want)
			}
		})
	}
}

func TestParseSizeAndConfig(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"10m", 10 << 20, true}, {"1g", 1 << 30, true}, {"100", 100, true}, {"1.5k", 1536, true},
		{"20KB", 20 << 10, true}, {"2MiB", 2 << 20, true}, {" 3 m ", 3 << 20, true},
		{"", 0, false}, {"m", 0, false}, {"-1m", 0, false}, {"10x", 0, false}, {"1e30g", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		opts map[string]string
		want Config
		ok   bool
	}{
		{nil, Config{MaxSize: -1, MaxFile: 1}, true},
		{map[string]string{"max-size": "10m", "max-file": "3"}, Config{MaxSize: 10 << 20, MaxFile: 3}, true},
		{map[string]string{"max-size": "1k", "compress": "false", "tag": "x"}, Config{MaxSize: 1024, MaxFile: 1}, true},
		{map[string]string{"max-file": "3"}, Config{}, false},
		{map[string]string{"max-size": "1k", "max-file": "0"}, Config{}, false},
		{map[string]string{"compress": "true"}, Config{}, false},
		{map[string]string{"mode": "non-blocking"}, Config{}, false},
	} {
		got, err := ParseConfig(tc.opts)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseConfig(%v) = %+v, %v; want %+v ok=%v", tc.opts, got, err, tc.want, tc.ok)
		}
	}
}

// clock returns a Now function ticking one millisecond per call.
func clock() func() time.Time {
	var mu sync.Mutex
	t := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Millisecond)
		return t
	}
}

func collect(t *testing.T, dir string, opts Options) []Entry {
	t.Helper()
	var out []Entry
	for e, err := range Read(context.Background(), dir, opts) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func lines(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Stream[3:]+":"+string(e.Line))
	}
	return out
}

func TestCopySplitsLikeDocker(t *testing.T) {
	long := strings.Repeat("x", BufSize)
	for _, tc := range []struct {
		name  string
		in    []string // successive reads
		want  []string
		times []int // entries sharing a timestamp get the same number
	}{
		{"lines", []string{"a\nb\n"}, []string{"out:a\n", "out:b\n"}, nil},
		{"split reads", []string{"hel", "lo\nwor", "ld\n"}, []string{"out:hello\n", "out:world\n"}, nil},
		{"no final newline", []string{"a\nb"}, []string{"out:a\n", "out:b"}, nil},
		{"empty lines", []string{"\n\n"}, []string{"out:\n", "out:\n"}, nil},
		{"exactly 16k then newline", []string{long, "\n"}, []string{"out:" + long, "out:\n"}, []int{1, 1}},
		{"40k line", []string{long + long + "tail\nnext\n"}, []string{"out:" + long, "out:" + long, "out:tail\n", "out:next\n"}, []int{1, 1, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Open(dir, Config{})
			if err != nil {
				t.Fatal(err)
			}
			w.Now = clock()
			if err := w.Copy(Stdout, &chunkReader{chunks: tc.in}); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got := collect(t, dir, Options{Tail: -1, Stdout: true, Stderr: true})
			if !slices.Equal(lines(got), tc.want) {
				t.Fatalf("got %q\nwant %q", lines(got), tc.want)
			}
			for i := 1; i < len(tc.times); i++ {
				if same := got[i].Time.Equal(got[i-1].Time); same != (tc.times[i] == tc.times[i-1]) {
					t.Errorf("entry %d: time %v, previous %v", i, got[i].Time, got[i-1].Time)
				}
			}
		})
	}
}

type chunkReader struct{ chunks []string }

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, os.ErrClosed // what a closed pipe gives
	}
	n := copy(p, r.chunks[0])
	if r.chunks[0] = r.chunks[0][n:]; r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

// writeN writes entries "line 0".."line n-1" alternating stdout and stderr.
func writeN(t *testing.T, w *Writer, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		s := Stdout
		if i%2 == 1 {
			s = Stderr
		}
		if err := w.WriteEntry(s, []byte("line "+strconv.Itoa(i)+"\n"), w.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

func numbers(t *testing.T, es []Entry) []int {
	t.Helper()
	var out []int
	for _, e := range es {
		s := strings.TrimSuffix(string(e.Line), "\n")
		if i := strings.LastIndexByte(s, ' '); i >= 0 {
			s = s[i+1:]
		}
		n, err := strconv.Atoi(strings.TrimPrefix(s, "line"))
		if err != nil {
			t.Fatalf("entry %q: %v", e.Line, err)
		}
		out = append(out, n)
	}
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	// Each entry is 72-73 bytes: five fit under 360 before a rotation.
	w, err := Open(dir, Config{MaxSize: 360, MaxFile: 3})
	if err != nil {
		t.Fatal(err)
	}
	w.Now = clock()
	writeN(t, w, 0, 40)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, FileName+"*"))
	slices.Sort(names)
	want := []string{FileName, FileName + ".1", FileName + ".2", ClosedName}
	var got []string
	for _, n := range names {
		got = append(got, filepath.Base(n))
		if fi, _ := os.Stat(n); fi.Size() > 360+80 {
			t.Errorf("%s: %d bytes", n, fi.Size())
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	es := collect(t, dir, Options{Tail: -1, Stdout: true, Stderr: true})
	nums := numbers(t, es)
	if len(nums) == 0 || nums[len(nums)-1] != 39 || !slices.Equal(nums, seq(nums[0], 40)) {
		t.Fatalf("read %v: want a contiguous run ending at 39", nums)
	}
	// max-file 1: the file starts over.
	dir1 := t.TempDir()
	w1, _ := Open(dir1, Config{MaxSize: 360, MaxFile: 1})
	w1.Now = clock()
	writeN(t, w1, 0, 12)
	w1.Close()
	if nums := numbers(t, collect(t, dir1, Options{Tail: -1, Stdout: true, Stderr: true})); !slices.Equal(nums, seq(10, 12)) {
		t.Fatalf("max-file 1: read %v", nums)
	}
}

func TestReadSelect(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Config{MaxSize: 500, MaxFile: 100})
	if err != nil {
		t.Fatal(err)
	}
	w.Now = clock() // entry i has time t0 + (i+1) ms
	writeN(t, w, 0, 50)
	// A torn last line (a writer killed mid-write) is not an entry.
	w.f.Write([]byte(`{"log":"torn`))
	w.Close()
	at := func(i int) time.Time { return t0.Add(time.Duration(i+1) * time.Millisecond) }
	evens := func(from, to int) []int {
		var out []int
		for i := from; i < to; i++ {
			if i%2 == 0 {
				out = append(out, i)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		opts Options
		want []int
	}{
		{"all", Options{Tail: -1, Stdout: true, Stderr: true}, seq(0, 50)},
		{"tail 0", Options{Tail: 0, Stdout: true, Stderr: true}, nil},
		{"tail 1", Options{Tail: 1, Stdout: true, Stderr: true}, []int{49}},
		{"tail across files", Options{Tail: 17, Stdout: true, Stderr: true}, seq(33, 50)},
		{"tail more than all", Options{Tail: 1000, Stdout: true, Stderr: true}, seq(0, 50)},
		{"stdout only", Options{Tail: -1, Stdout: true}, evens(0, 50)},
		{"tail of stdout", Options{Tail: 3, Stdout: true}, []int{44, 46, 48}},
		{"since", Options{Tail: -1, Stdout: true, Stderr: true, Since: at(45)}, seq(45, 50)},
		{"until", Options{Tail: -1, Stdout: true, Stderr: true, Until: at(4)}, seq(0, 5)},
		{"since until", Options{Tail: -1, Stdout: true, Stderr: true, Since: at(10), Until: at(12)}, seq(10, 13)},
		{"tail with until", Options{Tail: 2, Stdout: true, Stderr: true, Until: at(20)}, []int{19, 20}},
		{"since and tail", Options{Tail: 10, Stdout: true, Stderr: true, Since: at(45)}, seq(45, 50)},
		{"timestamps", Options{Tail: 2, Stdout: true, Stderr: true, Timestamps: true}, []int{48, 49}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := collect(t, dir, tc.opts)
			if got := numbers(t, es); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
			if tc.opts.Timestamps {
				want := at(48).Format(TimestampFormat) + " line 48\n"
				if string(es[0].Line) != want {
					t.Fatalf("line %q, want %q", es[0].Line, want)
				}
			}
		})
	}
	if _, err := func() (Entry, error) {
		for e, err := range Read(context.Background(), dir, Options{}) {
			return e, err
		}
		return Entry{}, nil
	}(); err == nil {
		t.Fatal("no stream chosen: want an error")
	}
	for _, err := range Read(context.Background(), filepath.Join(dir, "missing"), Options{Stdout: true}) {
		if err == nil {
			t.Fatal("missing dir: want an error")
		}
	}
}

// TestFollowRotationRace has a writer rotate as fast as it can while a
// follower reads: every entry exactly once, in order.
func TestFollowRotationRace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		n       int
		tail    int
		partial bool // also write split lines through Copy
	}{
		{"tiny files", Config{MaxSize: 1, MaxFile: 1000}, 400, -1, false},
		{"small files", Config{MaxSize: 700, MaxFile: 1000}, 4000, -1, false},
		{"tail 0 then follow", Config{MaxSize: 300, MaxFile: 1000}, 1000, 0, false},
		{"no rotation", Config{}, 5000, -1, false},
		{"copier", Config{MaxSize: 2000, MaxFile: 1000}, 4000, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Open(dir, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var got []int
			var rerr error
			done := make(chan struct{})
			go func() {
				defer close(done)
				for e, err := range Read(ctx, dir, Options{Follow: true, Tail: tc.tail, Stdout: true, Stderr: true}) {
					if err != nil {
						rerr = err
						return
					}
					got = append(got, numbers(t, []Entry{e})...)
				}
			}()
			if tc.partial {
				var sb strings.Builder
				for i := 0; i < tc.n; i++ {
					fmt.Fprintf(&sb, "line %d\n", i)
				}
				if err := w.Copy(Stdout, &chunkReader{chunks: splitEvery(sb.String(), 7)}); err != nil {
					t.Fatal(err)
				}
			} else {
				writeN(t, w, 0, tc.n)
			}
			w.Close()
			<-done
			if rerr != nil {
				t.Fatal(rerr)
			}
			want := seq(0, tc.n)
			if tc.tail == 0 && len(got) < tc.n {
				want = seq(tc.n-len(got), tc.n) // what was written before the follower started is skipped
			}
			if !slices.Equal(got, want) {
				t.Fatalf("followed %d entries, want %d; first difference at %s", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out, s = append(out, s[:n]), s[n:]
	}
	return append(out, s)
}

func firstDiff(a, b []int) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("%d (%d vs %d)", i, a[i], b[i])
		}
	}
	return strconv.Itoa(min(len(a), len(b)))
}

// TestFollowLagging: a follower that falls more than max-file files behind
// loses the files deleted meanwhile, but never repeats or reorders entries
// and still ends with the last one.
func TestFollowLagging(t *testing.T) {
	dir := t.TempDir()
	w, _ := Open(dir, Config{MaxSize: 200, MaxFile: 2})
	writeN(t, w, 0, 10)
	var got []int
	first := true
	for e, err := range Read(context.Background(), dir, Options{Follow: true, Tail: -1, Stdout: true, Stderr: true}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, numbers(t, []Entry{e})...)
		if first {
			first = false
			writeN(t, w, 10, 200) // rotates many times under the reader
			w.Close()
		}
	}
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) || got[len(got)-1] != 209 {
		t.Fatalf("got %v", got)
	}
}

func TestFollowEnds(t *testing.T) {
	dir := t.TempDir()
	w, _ := Open(dir, Config{})
	w.Now = time.Now
	writeN(t, w, 0, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	start := time.Now()
	for _, err := range Read(ctx, dir, Options{Follow: true, Tail: -1, Stdout: true, Stderr: true}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			time.AfterFunc(50*time.Millisecond, cancel)
		}
	}
	if n != 3 || time.Since(start) > 5*time.Second {
		t.Fatalf("cancel: %d entries after %v", n, time.Since(start))
	}
	// Until in the past of the wall clock ends a follow too.
	n = 0
	for range Read(context.Background(), dir, Options{Follow: true, Tail: -1, Stdout: true, Until: time.Now()}) {
		n++
	}
	if n != 2 {
		t.Fatalf("until: %d entries", n)
	}
	// A follower started before the log exists sees it appear.
	dir2 := t.TempDir()
	res := make(chan []int, 1)
	go func() {
		var got []int
		for e, err := range Read(context.Background(), dir2, Options{Follow: true, Tail: -1, Stdout: true, Stderr: true}) {
			if err != nil {
				t.Error(err)
				break
			}
			got = append(got, numbers(t, []Entry{e})...)
		}
		res <- got
	}()
	time.Sleep(20 * time.Millisecond)
	w2, _ := Open(dir2, Config{})
	writeN(t, w2, 0, 5)
	w2.Close()
	if got := <-res; !slices.Equal(got, seq(0, 5)) {
		t.Fatalf("late log: %v", got)
	}
	// Reopening continues the log and clears the marker; a torn tail is
	// closed with a newline so the next entry survives.
	w3, _ := Open(dir2, Config{})
	w3.f.Write([]byte(`{"log":"to`))
	w3.Close()
	w4, _ := Open(dir2, Config{})
	writeN(t, w4, 5, 1)
	w4.Close()
	if got := numbers(t, collect(t, dir2, Options{Tail: -1, Stdout: true, Stderr: true})); !slices.Equal(got, seq(0, 6)) {
		t.Fatalf("reopened: %v", got)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"log":"hello\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}`))
	f.Add([]byte(`{"log":"\u003c\ud83d\ude00\ufffd","stream":"stderr","attrs":{"a":[1,2.5e-3,null]},"time":"2024-05-01T10:00:00Z"}`))
	f.Add([]byte(`{"stream":"stdout","time":"2024-05-01T10:00:00+02:00"}`))
	f.Add([]byte(`{"log":"\ud800\udc00\ud800","stream":"x","time":"2024-05-01T10:00:00Z"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := Decode(line)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		if !json.Valid(line) {
			t.Fatalf("decoded invalid JSON %q", line)
		}
		// What decodes re-encodes to an entry that decodes the same (for
		// times that RFC 3339 can write in UTC).
		if y := e.Time.UTC().Year(); y < 0 || y > 9999 {
			return
		}
		enc := appendEntry(nil, e.Stream, e.Line, e.Time)
		e2, err := Decode(bytes.TrimSuffix(enc, []byte("\n")))
		if err != nil {
			t.Fatalf("re-encoded %q: %v", enc, err)
		}
		if !bytes.Equal(e.Line, e2.Line) || e.Stream != e2.Stream || !e.Time.Equal(e2.Time) {
			t.Fatalf("round trip: %+v vs %+v", e, e2)
		}
		// encoding/json agrees on the log text (it replaces invalid UTF-8
		// the same way).
		var v map[string]json.RawMessage
		if err := json.Unmarshal(enc, &v); err != nil {
			t.Fatalf("encoding/json rejects %q: %v", enc, err)
		}
		var s string
		if raw, ok := v["log"]; ok {
			if err := json.Unmarshal(raw, &s); err != nil || s != string(e.Line) {
				t.Fatalf("encoding/json reads log %q (%v), we %q", s, err, e.Line)
			}
		}
	})
}
