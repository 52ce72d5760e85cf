package monitor

import (
	"errors"
	"strconv"
	"time"

	"github.com/silo-containers/silo/internal/engine/logs"
)

// The monitor speaks JSON, but only flat objects of strings, integers and
// booleans. This small codec keeps encoding/json (and reflect) out of the
// monitor binary, which is resident once per running container.

// object builds one flat JSON object.
type object struct{ b []byte }

func (o *object) key(k string) {
	if len(o.b) == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ',')
	}
	o.b = logs.AppendJSONString(o.b, k)
	o.b = append(o.b, ':')
}

func (o *object) str(k, v string) *object {
	o.key(k)
	o.b = logs.AppendJSONString(o.b, v)
	return o
}

func (o *object) int(k string, v int64) *object {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
	return o
}

func (o *object) bool(k string, v bool) *object {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
	return o
}

func (o *object) time(k string, t time.Time) *object {
	if t.IsZero() {
		return o
	}
	return o.str(k, t.UTC().Format(time.RFC3339Nano))
}

// line returns the object followed by a newline.
func (o *object) line() []byte {
	if len(o.b) == 0 {
		o.b = append(o.b, '{')
	}
	return append(o.b, '}', '\n')
}

// fields is a decoded flat object: string values unescaped, numbers and
// booleans as written.
type fields map[string]string

var errWire = errors.New("malformed message")

// parseObject decodes a flat JSON object. Nested values are rejected.
func parseObject(s []byte) (fields, error) {
	p := &parser{s: s}
	f := fields{}
	if p.next() != '{' {
		return nil, errWire
	}
	if p.peek() == '}' {
		p.pos++
	} else {
		for {
			if p.next() != '"' {
				return nil, errWire
			}
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			if p.next() != ':' {
				return nil, errWire
			}
			var v string
			switch c := p.peek(); {
			case c == '"':
				p.pos++
				if v, err = p.str(); err != nil {
					return nil, err
				}
			case c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f' || c == 'n':
				start := p.pos
				for p.pos < len(p.s) && isScalarByte(p.s[p.pos]) {
					p.pos++
				}
				v = string(p.s[start:p.pos])
				if v == "null" {
					v = ""
				}
			default:
				return nil, errWire
			}
			f[k] = v
			c := p.next()
			if c == '}' {
				break
			}
			if c != ',' {
				return nil, errWire
			}
		}
	}
	if p.peek() != 0 {
		return nil, errWire
	}
	return f, nil
}

func isScalarByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E'
}

type parser struct {
	s   []byte
	pos int
}

func (p *parser) peek() byte {
	for p.pos < len(p.s) {
		switch c := p.s[p.pos]; c {
		case ' ', '\t', '\r', '\n':
			p.pos++
		default:
			return c
		}
	}
	return 0
}

func (p *parser) next() byte {
	c := p.peek()
	if c != 0 {
		p.pos++
	}
	return c
}

// str reads the rest of a string whose opening quote was consumed.
func (p *parser) str() (string, error) {
	v, next, err := logs.ReadJSONString(p.s, p.pos-1)
	if err != nil {
		return "", errWire
	}
	p.pos = next
	return v, nil
}

func (f fields) int(k string) int {
	n, _ := strconv.Atoi(f[k])
	return n
}

func (f fields) bool(k string) bool { return f[k] == "true" }

func (f fields) time(k string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, f[k])
	return t
}
