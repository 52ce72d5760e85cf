package monitor

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

func TestWireRoundTrip(t *testing.T) {
	st := &State{ID: "c1", Pid: 42, Status: StatusExited, ExitCode: 137, Signal: 9, OOMKilled: true,
		Started: time.Date(2024, 5, 1, 10, 0, 0, 1, time.UTC), Finished: time.Date(2024, 5, 1, 10, 0, 1, 0, time.UTC), MonitorPid: 7}
	f, err := parseObject(st.encode(&object{}).line())
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeState(f); *got != *st {
		t.Fatalf("got %+v\nwant %+v", got, st)
	}
	for _, tc := range []struct {
		in   string
		want fields
	}{
		{`{}`, fields{}},
		{` {"a" : "x\"\\\n\u00e9\/", "b":-12,"c":true,"d":null} `, fields{"a": "x\"\\\né/", "b": "-12", "c": "true", "d": ""}},
		{`{"a":{"nested":1}}`, nil},
		{`{"a":"x"`, nil},
		{`{"a":"x"}{}`, nil},
		{`["a"]`, nil},
		{"{\"a\":\"\x01\"}", nil},
	} {
		got, err := parseObject([]byte(tc.in))
		if (err == nil) != (tc.want != nil) {
			t.Errorf("%s: err %v", tc.in, err)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", tc.in, k, got[k], v)
			}
		}
	}
	// Strings with every kind of byte survive.
	s := "a\x00\x1f\"\\<>&\t\xff\u2028é"
	f, err = parseObject((&object{}).str("s", s).line())
	if err != nil || f["s"] != "a\x00\x1f\"\\<>&\t\ufffd\u2028é" {
		t.Fatalf("got %q, %v", f["s"], err)
	}
}

func FuzzParseObject(f *testing.F) {
	f.Add([]byte(`{"op":"signal","signal":9,"all":false}`))
	f.Add([]byte(`{"a":"\ud800"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		fs, err := parseObject(in)
		if err != nil {
			return
		}
		// Re-encoding as strings and parsing again keeps every value.
		o := &object{}
		keys := make([]string, 0, len(fs))
		for k := range fs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			o.str(k, fs[k])
		}
		again, err := parseObject(o.line())
		if err != nil {
			t.Fatalf("re-encoded %q: %v", o.line(), err)
		}
		for k, v := range fs {
			if again[k] != v {
				t.Fatalf("%s: %q became %q", k, v, again[k])
			}
		}
	})
}

func TestArgsRoundTrip(t *testing.T) {
	c := &Config{ID: "c1", Bundle: "/b", Runtime: "runsilo", RuntimeRoot: "/run/r", Dir: "/run/m", LogDir: "/var/log/c1",
		LogOpts: map[string]string{"max-size": "10m", "max-file": "3"}, Terminal: true, Stdin: true, HoldOutput: true, Grace: 5 * time.Second}
	got, err := ParseArgs(c.Args())
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.Bundle != c.Bundle || got.Runtime != c.Runtime || got.RuntimeRoot != c.RuntimeRoot || got.Dir != c.Dir ||
		got.LogDir != c.LogDir || !got.Terminal || !got.Stdin || !got.HoldOutput || got.Grace != c.Grace || got.LogOpts["max-file"] != "3" || got.LogOpts["max-size"] != "10m" {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range [][]string{
		{"--id", "x"},
		{"--id", "x", "--bundle", "/b", "--runtime", "r", "--runtime-root", "/r", "--dir", "/d", "--bogus"},
		{"--id", "x", "--bundle", "/b", "--runtime", "r", "--runtime-root", "/r", "--dir", "/d", "--log-opt", "novalue"},
		{"--id", "x", "--bundle", "/b", "--runtime", "r", "--runtime-root", "/r", "--dir", "/d", "--grace", "soon"},
		{"--id", "x", "--bundle"},
	} {
		if _, err := ParseArgs(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestHubFraming(t *testing.T) {
	h := &hub{}
	both := h.add(true, true)
	errOnly := h.add(false, true)
	h.send(frameStdout, []byte("out"))
	h.send(frameStderr, []byte("err"))
	h.close()
	if h.add(true, true) != nil {
		t.Fatal("add after close")
	}
	var stream bytes.Buffer
	for f := range both.ch {
		stream.Write(f)
	}
	var o, e bytes.Buffer
	if err := Demux(&stream, &o, &e); err != nil || o.String() != "out" || e.String() != "err" {
		t.Fatalf("demux: %q %q %v", o.String(), e.String(), err)
	}
	n := 0
	for range errOnly.ch {
		n++
	}
	if n != 1 {
		t.Fatalf("stderr-only client got %d frames", n)
	}
	// A client that does not read is dropped, not waited for.
	h2 := &hub{}
	slow := h2.add(true, true)
	for i := 0; i < subQueue+10; i++ {
		h2.send(frameStdout, []byte("x"))
	}
	n = 0
	for range slow.ch {
		n++
	}
	if n != subQueue {
		t.Fatalf("slow client got %d frames, want %d then the end", n, subQueue)
	}
}

func TestHubHold(t *testing.T) {
	read := func(s *sub) string {
		var stream bytes.Buffer
		for f := range s.ch {
			stream.Write(f)
		}
		var o, e bytes.Buffer
		if err := Demux(&stream, &o, &e); err != nil {
			t.Fatal(err)
		}
		return o.String() + "|" + e.String()
	}
	// The first client gets what came before it, the second does not.
	h := &hub{hold: true}
	h.send(frameStdout, []byte("early "))
	h.send(frameStderr, []byte("warn"))
	first := h.add(true, true)
	second := h.add(true, false)
	h.send(frameStdout, []byte("late"))
	h.close()
	if got := read(first); got != "early late|warn" {
		t.Fatalf("first client: %q", got)
	}
	if got := read(second); got != "late|" {
		t.Fatalf("second client: %q", got)
	}
	// Output that ended before the first client still reaches it.
	h = &hub{hold: true, tty: true}
	h.send(frameStdout, []byte("bye"))
	h.close()
	s := h.add(true, true)
	if s == nil {
		t.Fatal("no client after the end despite held output")
	}
	var raw bytes.Buffer
	for f := range s.ch {
		raw.Write(f)
	}
	if raw.String() != "bye" || h.add(true, true) != nil {
		t.Fatalf("held tty output %q", raw.String())
	}
	// The hold is bounded.
	h = &hub{hold: true}
	chunk := make([]byte, 64<<10)
	for i := 0; i < 40; i++ {
		h.send(frameStdout, chunk)
	}
	if h.heldBytes > holdLimit {
		t.Fatalf("held %d bytes", h.heldBytes)
	}
}
