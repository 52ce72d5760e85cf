package logs

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestAttrsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		attrs map[string]string
		want  string
	}{
		{"none", nil, `{"log":"x\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}`},
		{"source", map[string]string{"source": "/var/log/a.log"}, `{"log":"x\n","stream":"stdout","attrs":{"source":"/var/log/a.log"},"time":"2024-05-01T10:00:00.123456789Z"}`},
		{"sorted and escaped", map[string]string{"z": "<1>", "a": "b\"c"}, `{"log":"x\n","stream":"stdout","attrs":{"a":"b\"c","z":"\u003c1\u003e"},"time":"2024-05-01T10:00:00.123456789Z"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := appendEntryAttrs(nil, Stdout, []byte("x\n"), NewAttrs(tc.attrs), t0)
			if string(got) != tc.want+"\n" {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			e, err := Decode(got[:len(got)-1])
			if err != nil || string(e.Line) != "x\n" || len(e.Attrs) != len(tc.attrs) {
				t.Fatalf("decode: %+v %v", e, err)
			}
			for k, v := range tc.attrs {
				if e.Attrs[k] != v {
					t.Fatalf("attr %s: %q", k, e.Attrs[k])
				}
			}
		})
	}
	// Docker's non-string attribute values are skipped, not an error.
	e, err := Decode([]byte(`{"log":"x\n","stream":"stdout","attrs":{"n":1,"s":"v","o":{"a":[1]}},"time":"2024-05-01T10:00:00Z"}`))
	if err != nil || len(e.Attrs) != 1 || e.Attrs["s"] != "v" {
		t.Fatalf("decode mixed attrs: %+v %v", e, err)
	}
	if _, err := Decode([]byte(`{"stream":"stdout","attrs":{"a":"b",},"time":"2024-05-01T10:00:00Z"}`)); err == nil {
		t.Fatal("malformed attrs accepted")
	}
}

func TestReadDetails(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Config{MaxSize: -1, MaxFile: 1})
	if err != nil {
		t.Fatal(err)
	}
	_ = w.WriteEntryAttrs(Stdout, []byte("from file\n"), NewAttrs(map[string]string{"source": "/var/log/a b.log"}), t0)
	_ = w.WriteEntry(Stdout, []byte("plain\n"), t0)
	_ = w.Close()
	var got []string
	for e, err := range Read(context.Background(), dir, Options{Stdout: true, Tail: -1, Details: true, Timestamps: true}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(e.Line))
	}
	want := []string{
		"2024-05-01T10:00:00.123456789Z source=%2Fvar%2Flog%2Fa+b.log from file\n",
		"2024-05-01T10:00:00.123456789Z  plain\n",
	}
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestSplitCapture(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  map[string]string
		files string
		sys   bool
		rest  int
		err   string
	}{
		{"none", map[string]string{"max-size": "1m"}, "", false, 1, ""},
		{"files", map[string]string{"capture-files": "/var/log/app/*.log, /tmp//x.log,", "max-size": "1m"}, "/var/log/app/*.log,/tmp/x.log", false, 1, ""},
		{"syslog", map[string]string{"capture-syslog": "true"}, "", true, 0, ""},
		{"syslog off", map[string]string{"capture-syslog": "false"}, "", false, 0, ""},
		{"relative", map[string]string{"capture-files": "var/log/a"}, "", false, 0, "want an absolute path"},
		{"glob dir", map[string]string{"capture-files": "/var/*/a"}, "", false, 0, "only the last element"},
		{"bad glob", map[string]string{"capture-files": "/var/["}, "", false, 0, "malformed glob"},
		{"root", map[string]string{"capture-files": "/"}, "", false, 0, "names no file"},
		{"empty", map[string]string{"capture-files": ","}, "", false, 0, "no path given"},
		{"bad bool", map[string]string{"capture-syslog": "yes please"}, "", false, 0, "want true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, rest, err := SplitCapture(tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || strings.Join(c.Files, ",") != tc.files || c.Syslog != tc.sys || len(rest) != tc.rest {
				t.Fatalf("%+v %v %v", c, rest, err)
			}
			if c.Enabled() != (tc.files != "" || tc.sys) {
				t.Fatalf("enabled %v", c.Enabled())
			}
		})
	}
}
