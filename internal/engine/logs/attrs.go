package logs

import (
	"slices"
	"time"
)

// Attrs is an entry's "attrs" object (Docker's json-file field for extra
// attributes), encoded once: a source that writes many entries with the
// same attributes (a captured file, the syslog socket) pays for the
// encoding only when it is made.
type Attrs struct {
	raw   []byte   // `"attrs":{...},` ready to splice into an entry
	pairs []string // key, value, key, value… sorted by key (local driver)
}

// NewAttrs encodes m, keys sorted (as Docker's encoder orders a map).
// An empty m gives the zero Attrs, which writes no "attrs" field.
func NewAttrs(m map[string]string) Attrs {
	if len(m) == 0 {
		return Attrs{}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	raw := []byte(`"attrs":{`)
	pairs := make([]string, 0, 2*len(keys))
	for i, k := range keys {
		pairs = append(pairs, k, m[k])
		if i > 0 {
			raw = append(raw, ',')
		}
		raw = appendString(raw, []byte(k))
		raw = append(raw, ':')
		raw = appendString(raw, []byte(m[k]))
	}
	return Attrs{raw: append(raw, "},"...), pairs: pairs}
}

// appendEntryAttrs is appendEntry with an "attrs" object between "stream"
// and "time", where Docker's json-file driver puts it:
//
//	{"log":"x\n","stream":"stdout","attrs":{"source":"/var/log/a.log"},"time":"…"}
func appendEntryAttrs(buf []byte, stream string, line []byte, a Attrs, t time.Time) []byte {
	buf = append(buf, '{')
	if len(line) > 0 {
		buf = append(buf, `"log":`...)
		buf = appendString(buf, line)
		buf = append(buf, ',')
	}
	buf = append(buf, `"stream":`...)
	buf = appendString(buf, []byte(stream))
	buf = append(buf, ',')
	buf = append(buf, a.raw...)
	buf = append(buf, `"time":"`...)
	buf = t.UTC().AppendFormat(buf, time.RFC3339Nano)
	return append(buf, "\"}\n"...)
}

// WriteEntryAttrs appends one entry carrying attributes a (see WriteEntry).
func (w *Writer) WriteEntryAttrs(stream string, line []byte, a Attrs, t time.Time) error {
	return w.writeEntry(stream, line, a, t)
}

// attrs reads the "attrs" object of an entry. Values that are not strings
// are skipped: Docker writes only strings there.
func (d *decoder) attrs() (map[string]string, error) {
	if d.peek() != '{' {
		return nil, d.skip(0)
	}
	d.pos++
	m := map[string]string{}
	if d.peek() == '}' {
		d.pos++
		return m, nil
	}
	for {
		if d.peek() != '"' {
			return nil, d.fail("attrs: expected field name")
		}
		k, err := d.str(nil)
		if err != nil {
			return nil, err
		}
		if d.peek() != ':' {
			return nil, d.fail("attrs: expected :")
		}
		d.pos++
		if d.peek() == '"' {
			v, err := d.str(nil)
			if err != nil {
				return nil, err
			}
			m[string(k)] = string(v)
		} else if err := d.skip(1); err != nil {
			return nil, err
		}
		c := d.peek()
		d.pos++
		if c == '}' {
			return m, nil
		}
		if c != ',' {
			return nil, d.fail("attrs: expected , or }")
		}
	}
}

// appendDetails appends the prefix `docker logs --details` shows: the
// attributes as key=value pairs (query-escaped, sorted by key, joined by
// commas) and a space; only the space when there are none.
func appendDetails(buf []byte, attrs map[string]string) []byte {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendQueryEscape(buf, k)
		buf = append(buf, '=')
		buf = appendQueryEscape(buf, attrs[k])
	}
	return append(buf, ' ')
}

// appendQueryEscape escapes s as net/url's QueryEscape does (written out
// here: net/url would bring fmt into the monitor, which links this package).
func appendQueryEscape(buf []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '~':
			buf = append(buf, c)
		case c == ' ':
			buf = append(buf, '+')
		default:
			buf = append(buf, '%', hex[c>>4], hex[c&0xf])
		}
	}
	return buf
}
