// Package detachkeys reads docker's detach key sequences ("ctrl-p,ctrl-q")
// and watches an input stream for one: the API's attach (detachKeys) and
// silo's CLI (-it, attach) both end an attachment, leaving the container
// running, when the sequence is typed.
package detachkeys

import (
	"errors"
	"io"
	"strings"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Default is docker's default sequence.
const Default = "ctrl-p,ctrl-q"

// ErrDetached is returned by a Reader once the sequence was read.
var ErrDetached = errors.New("read escape sequence")

// Parse reads a sequence as docker spells it: comma-separated keys, each
// a single character or ctrl-X with X one of a-z, @, [, \, ], ^ and _.
func Parse(s string) ([]byte, error) {
	var keys []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case len(k) == 1:
			keys = append(keys, k[0])
		case len(k) == 6 && strings.EqualFold(k[:5], "ctrl-"):
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				keys = append(keys, c-'a'+1)
			case c >= 'A' && c <= 'Z':
				keys = append(keys, c-'A'+1)
			case c == '@':
				keys = append(keys, 0)
			case c >= '[' && c <= '_': // [ \ ] ^ _
				keys = append(keys, c-'['+27)
			default:
				return nil, invalid(s, k)
			}
		default:
			return nil, invalid(s, k)
		}
	}
	return keys, nil
}

func invalid(s, k string) error {
	return &parseError{seq: s, key: k}
}

type parseError struct{ seq, key string }

func (e *parseError) Error() string {
	return "detach keys " + quote(e.seq) + ": invalid key " + quote(e.key) + ": want a character or ctrl-<a-z, @, [, \\, ], ^, _>"
}

func (e *parseError) Unwrap() error { return errdefs.ErrInvalidArgument }

func quote(s string) string { return "\"" + s + "\"" }

// Reader passes its source through until the sequence appears: the bytes
// of the sequence are held back, and Read returns ErrDetached (after the
// bytes before it). Bytes that begin the sequence without completing it
// are passed on once they turn out not to be it.
type Reader struct {
	r       io.Reader
	keys    []byte
	matched int    // bytes of keys matched so far (held back)
	out     []byte // what is ready for the caller
	buf     []byte
	err     error
}

// NewReader watches r for keys (an empty keys disables the watch).
func NewReader(r io.Reader, keys []byte) *Reader {
	return &Reader{r: r, keys: keys}
}

// Read reads from the source, minus the sequence.
func (d *Reader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if len(d.keys) == 0 {
			return d.r.Read(p)
		}
		if cap(d.buf) < len(p) {
			d.buf = make([]byte, len(p))
		}
		n, err := d.r.Read(d.buf[:len(p)])
		d.scan(d.buf[:n])
		if err != nil && d.err == nil {
			// The source ended in the middle of a sequence: what was held
			// back was input after all.
			d.out = append(d.out, d.keys[:d.matched]...)
			d.matched, d.err = 0, err
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	if len(d.out) == 0 && d.err == ErrDetached {
		return n, ErrDetached
	}
	return n, nil
}

// scan moves b to out, holding back what matches the sequence.
func (d *Reader) scan(b []byte) {
	for _, c := range b {
		if d.err != nil {
			return
		}
		if c == d.keys[d.matched] {
			d.matched++
			if d.matched == len(d.keys) {
				// The rest of the input goes with the attachment.
				d.matched, d.err = 0, ErrDetached
			}
			continue
		}
		if d.matched > 0 {
			d.out = append(d.out, d.keys[:d.matched]...)
			d.matched = 0
			if c == d.keys[0] {
				d.matched = 1
				continue
			}
		}
		d.out = append(d.out, c)
	}
}
