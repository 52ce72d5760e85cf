package logs

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
)

// Stream names, as they appear in the "stream" field.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Entry is one line of a json-file log.
type Entry struct {
	// Stream is "stdout" or "stderr".
	Stream string
	// Time is when the monitor read the data from the container.
	Time time.Time
	// Line is the output, with its final "\n" unless the entry is a
	// partial line (split at 16 KiB, or the last output without newline).
	// With Options.Timestamps, Read prefixes it with the time, as
	// `docker logs -t` prints it.
	Line []byte
	// Attrs are the entry's attributes (Docker's "attrs"; silo's
	// captured log files and syslog name their source there), or nil.
	Attrs map[string]string
}

// Partial reports whether the entry does not end a line.
func (e *Entry) Partial() bool { return len(e.Line) == 0 || e.Line[len(e.Line)-1] != '\n' }

// appendEntry appends the JSON form of one entry and a newline to buf,
// byte for byte as Docker's json-file driver writes it: "log" (omitted
// when empty), "stream", "time" in RFC 3339 with nanoseconds, in UTC.
func appendEntry(buf []byte, stream string, line []byte, t time.Time) []byte {
	return appendEntryAttrs(buf, stream, line, Attrs{}, t)
}

// appendString quotes s as Docker does: HTML-safe (<, >, & as \u00XX),
// \n, \r, \\ and \" short, other control bytes as \u00XX, invalid UTF-8 as
// \ufffd, and U+2028/U+2029 escaped.
func appendString(buf, s []byte) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	done := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			buf = append(buf, s[done:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			done = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			buf = append(buf, s[done:i]...)
			buf = append(buf, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			buf = append(buf, s[done:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		done = i
	}
	buf = append(buf, s[done:]...)
	return append(buf, '"')
}

// AppendJSONString appends s as a JSON string, quoted as log lines are:
// the monitor's control messages use the same code.
func AppendJSONString(buf []byte, s string) []byte { return appendString(buf, []byte(s)) }

// ReadJSONString decodes the JSON string whose opening quote is s[pos] and
// returns its value and the position after its closing quote.
func ReadJSONString(s []byte, pos int) (string, int, error) {
	d := decoder{s: s, pos: pos}
	b, err := d.str(nil)
	return string(b), d.pos, err
}

// ErrSyntax is returned (wrapped) by Decode for a line that is not a
// json-file entry.
var ErrSyntax = errors.New("malformed json-file entry")

// Decode parses one line of a json-file log (without its newline):
// "log", "stream", "time" and the string values of "attrs"; other fields
// are skipped.
func Decode(line []byte) (Entry, error) {
	d := decoder{s: line}
	var e Entry
	if err := d.object(&e); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// decoder is a small JSON reader for one entry: faster than encoding/json
// and without reflection, which matters when `logs` reads large files.
type decoder struct {
	s   []byte
	pos int
}

func (d *decoder) fail(what string) error {
	return &SyntaxError{Offset: d.pos, What: what}
}

// SyntaxError says where and why a line failed to decode. It wraps
// ErrSyntax.
type SyntaxError struct {
	Offset int
	What   string
}

// Error describes the syntax error.
func (e *SyntaxError) Error() string {
	return "decode log entry: " + e.What + " at offset " + strconv.Itoa(e.Offset)
}

// Unwrap returns ErrSyntax.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

func (d *decoder) space() {
	for d.pos < len(d.s) {
		switch d.s[d.pos] {
		case ' ', '\t', '\r', '\n':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) peek() byte {
	d.space()
	if d.pos < len(d.s) {
		return d.s[d.pos]
	}
	return 0
}

func (d *decoder) object(e *Entry) error {
	if d.peek() != '{' {
		return d.fail("expected {")
	}
	d.pos++
	var sawStream, sawTime bool
	if d.peek() == '}' {
		d.pos++
	} else {
		for {
			if d.peek() != '"' {
				return d.fail("expected field name")
			}
			key, err := d.str(nil)
			if err != nil {
				return err
			}
			if d.peek() != ':' {
				return d.fail("expected :")
			}
			d.pos++
			switch string(key) {
			case "log":
				if d.peek() != '"' {
					return d.fail("log: expected string")
				}
				if e.Line, err = d.str(nil); err != nil {
					return err
				}
			case "stream":
				if d.peek() != '"' {
					return d.fail("stream: expected string")
				}
				s, err := d.str(nil)
				if err != nil {
					return err
				}
				e.Stream, sawStream = string(s), true
			case "time":
				if d.peek() != '"' {
					return d.fail("time: expected string")
				}
				s, err := d.str(nil)
				if err != nil {
					return err
				}
				t, terr := time.Parse(time.RFC3339Nano, string(s))
				if terr != nil {
					return d.fail("time: not RFC 3339")
				}
				e.Time, sawTime = t, true
			case "attrs":
				if e.Attrs, err = d.attrs(); err != nil {
					return err
				}
			default:
				if err := d.skip(0); err != nil {
					return err
				}
			}
			c := d.peek()
			d.pos++
			if c == '}' {
				break
			}
			if c != ',' {
				return d.fail("expected , or }")
			}
		}
	}
	if d.space(); d.pos != len(d.s) {
		return d.fail("data after object")
	}
	if !sawStream || !sawTime {
		return d.fail("stream and time are required")
	}
	return nil
}

// str reads a JSON string at d.pos and appends its value to buf.
func (d *decoder) str(buf []byte) ([]byte, error) {
	d.pos++ // opening quote
	for {
		start := d.pos
		for d.pos < len(d.s) {
			c := d.s[d.pos]
			if c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
				break
			}
			d.pos++
		}
		buf = append(buf, d.s[start:d.pos]...)
		if d.pos >= len(d.s) {
			return nil, d.fail("unterminated string")
		}
		c := d.s[d.pos]
		switch {
		case c == '"':
			d.pos++
			if buf == nil {
				buf = []byte{}
			}
			return buf, nil
		case c < 0x20:
			return nil, d.fail("control character in string")
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(d.s[d.pos:])
			if r == utf8.RuneError && size == 1 {
				buf = utf8.AppendRune(buf, utf8.RuneError)
			} else {
				buf = append(buf, d.s[d.pos:d.pos+size]...)
			}
			d.pos += size
			continue
		}
		// backslash
		if d.pos+1 >= len(d.s) {
			return nil, d.fail("unterminated escape")
		}
		esc := d.s[d.pos+1]
		d.pos += 2
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return nil, d.fail("bad \\u escape")
			}
			if utf16IsSurrogate(r) {
				r2 := rune(-1)
				if d.pos+1 < len(d.s) && d.s[d.pos] == '\\' && d.s[d.pos+1] == 'u' {
					save := d.pos
					d.pos += 2
					var ok2 bool
					if r2, ok2 = d.hex4(); !ok2 {
						return nil, d.fail("bad \\u escape")
					}
					if dec := utf16Decode(r, r2); dec != utf8.RuneError {
						buf = utf8.AppendRune(buf, dec)
						continue
					}
					d.pos = save // not a pair: the second escape stands alone
				}
				r = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return nil, d.fail("bad escape")
		}
	}
}

func (d *decoder) hex4() (rune, bool) {
	if d.pos+4 > len(d.s) {
		return 0, false
	}
	var r rune
	for _, c := range d.s[d.pos : d.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	d.pos += 4
	return r, true
}

func utf16IsSurrogate(r rune) bool { return r >= 0xd800 && r < 0xe000 }

func utf16Decode(r1, r2 rune) rune {
	if r1 >= 0xd800 && r1 < 0xdc00 && r2 >= 0xdc00 && r2 < 0xe000 {
		return (r1-0xd800)<<10 | (r2 - 0xdc00) + 0x10000
	}
	return utf8.RuneError
}

// maxDepth bounds nesting in skipped values (Docker's "attrs").
const maxDepth = 64

// skip passes over one JSON value of any kind.
func (d *decoder) skip(depth int) error {
	if depth > maxDepth {
		return d.fail("nested too deep")
	}
	switch c := d.peek(); {
	case c == '"':
		_, err := d.str(nil)
		return err
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		d.pos++
		if d.peek() == end {
			d.pos++
			return nil
		}
		for {
			if c == '{' {
				if d.peek() != '"' {
					return d.fail("expected field name")
				}
				if _, err := d.str(nil); err != nil {
					return err
				}
				if d.peek() != ':' {
					return d.fail("expected :")
				}
				d.pos++
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			n := d.peek()
			d.pos++
			if n == end {
				return nil
			}
			if n != ',' {
				return d.fail("expected , or " + string(end))
			}
		}
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	default:
		return d.fail("unexpected character")
	}
}

func (d *decoder) literal(word string) error {
	if len(d.s)-d.pos < len(word) || string(d.s[d.pos:d.pos+len(word)]) != word {
		return d.fail("bad literal")
	}
	d.pos += len(word)
	return nil
}

// number checks JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() error {
	digits := func() int {
		n := 0
		for d.pos < len(d.s) && d.s[d.pos] >= '0' && d.s[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	if d.s[d.pos] == '-' {
		d.pos++
	}
	if d.pos < len(d.s) && d.s[d.pos] == '0' {
		d.pos++
	} else if digits() == 0 {
		return d.fail("bad number")
	}
	if d.pos < len(d.s) && d.s[d.pos] == '.' {
		d.pos++
		if digits() == 0 {
			return d.fail("bad number")
		}
	}
	if d.pos < len(d.s) && (d.s[d.pos] == 'e' || d.s[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.s) && (d.s[d.pos] == '+' || d.s[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return d.fail("bad number")
		}
	}
	return nil
}

// Error is an error of the log driver: the operation, the object (a
// directory, an option) and the cause, which it wraps.
type Error struct {
	Op, Object string
	Err        error
}

// Error reads "op object: cause".
func (e *Error) Error() string {
	s := e.Op
	if e.Object != "" {
		s += " " + e.Object
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// classedError is a message that wraps an error class of errdefs.
type classedError struct {
	msg   string
	class error
}

func classed(msg string, class error) error { return &classedError{msg, class} }

func (e *classedError) Error() string { return e.msg + ": " + e.class.Error() }
func (e *classedError) Unwrap() error { return e.class }
