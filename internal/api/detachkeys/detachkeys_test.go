package detachkeys

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		err  bool
	}{
		{Default, []byte{16, 17}, false},
		{"ctrl-a", []byte{1}, false},
		{"CTRL-Z", []byte{26}, false},
		{"ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", []byte{0, 27, 28, 29, 30, 31}, false},
		{"a,b, c", []byte("abc"), false},
		{"ctrl-1", nil, true},
		{"ctrl-", nil, true},
		{"ab", nil, true},
		{"", nil, true},
		{"a,,b", nil, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.err {
				if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("Parse(%q) = %v, %v; want an invalid argument", tc.in, got, err)
				}
				return
			}
			if err != nil || string(got) != string(tc.want) {
				t.Fatalf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestReader(t *testing.T) {
	keys := []byte{16, 17}
	for _, tc := range []struct {
		name, in, out string
		detached      bool
	}{
		{"no keys", "hello", "hello", false},
		{"detach", "ls\r\x10\x11rest", "ls\r", true},
		{"detach first", "\x10\x11", "", true},
		{"prefix not followed", "a\x10b", "a\x10b", false},
		{"prefix twice", "\x10\x10\x11", "\x10", true},
		{"prefix at eof", "x\x10", "x\x10", false},
		{"second key alone", "\x11\x11", "\x11\x11", false},
	} {
		for _, oneByte := range []bool{false, true} {
			name := tc.name
			var src io.Reader = strings.NewReader(tc.in)
			if oneByte {
				name += "/one byte reads"
				src = iotest.OneByteReader(src)
			}
			t.Run(name, func(t *testing.T) {
				got, err := io.ReadAll(NewReader(src, keys))
				if string(got) != tc.out || errors.Is(err, ErrDetached) != tc.detached || (!tc.detached && err != nil) {
					t.Fatalf("got %q, %v; want %q, detached %v", got, err, tc.out, tc.detached)
				}
			})
		}
	}
	// No keys: a plain pass-through.
	got, err := io.ReadAll(NewReader(strings.NewReader("\x10\x11"), nil))
	if string(got) != "\x10\x11" || err != nil {
		t.Fatalf("without keys: %q %v", got, err)
	}
}
