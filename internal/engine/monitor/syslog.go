package monitor

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/engine/logs"
)

// Syslog capture (--log-opt capture-syslog=true), the counterpart of
// LogMonitor's event log source: the monitor binds a unix datagram socket
// in its directory before the container is created, the engine bind-mounts
// it at /dev/log in the container (the spec's mount names
// Dir/SyslogSocketName), and every message received becomes a stdout
// entry "TAG[PID]: TEXT" with attrs source=syslog, facility and severity.
// Messages may be RFC 3164 (what glibc's and busybox's syslog(3) send) or
// RFC 5424.

// SyslogSocketName is the syslog socket in the monitor's directory; the
// engine's /dev/log mount must name the same file.
const SyslogSocketName = "syslog.sock"

// maxSyslogMessage is the largest datagram read whole; longer ones are
// cut (RFC 5424 asks receivers to take at least 480 bytes, 2048 should;
// glibc's syslog(3) sends up to about 1 KiB unless the message is long).
const maxSyslogMessage = 8 * 1024

// openSyslog binds the datagram socket at path, writable by every user of
// the container.
func openSyslog(path string) (*os.File, error) {
	fd, err := bindUnix(path, unix.SOCK_DGRAM)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		unix.Close(fd)
		_ = os.Remove(path)
		return nil, err
	}
	// Bursts (a daemon logging at start-up) should wait in the socket, not
	// block or fail the container's syslog(3) calls.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 256*1024)
	return os.NewFile(uintptr(fd), path), nil
}

// syslogReader copies the messages of one socket to the log.
type syslogReader struct {
	sock  *os.File
	log   *logs.Writer
	attrs map[int]logs.Attrs // by PRI
	done  chan struct{}
}

func startSyslog(sock *os.File, log *logs.Writer) *syslogReader {
	r := &syslogReader{sock: sock, log: log, attrs: map[int]logs.Attrs{}, done: make(chan struct{})}
	go r.run()
	return r
}

func (r *syslogReader) run() {
	defer close(r.done)
	rc, err := r.sock.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, maxSyslogMessage)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err != nil {
			return // closed
		}
		if rerr != nil || n <= 0 {
			continue
		}
		r.write(parseSyslog(buf[:n]))
	}
}

// close drains what is queued in the socket and stops.
func (r *syslogReader) close() {
	// Messages sent before the exit are in the socket's queue: give the
	// reader a moment to take them before the socket goes.
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) && queued(r.sock) > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	r.sock.Close()
	<-r.done
	_ = os.Remove(r.sock.Name())
}

// queued returns the bytes waiting in a socket's receive queue.
func queued(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n
}

func (r *syslogReader) write(m syslogMessage) {
	a, ok := r.attrs[m.pri]
	if !ok {
		a = logs.NewAttrs(map[string]string{"source": "syslog", "facility": facilityName(m.pri >> 3), "severity": severityNames[m.pri&7]})
		r.attrs[m.pri] = a
	}
	now := time.Now()
	for _, line := range m.lines() {
		_ = r.log.WriteEntryAttrs(logs.Stdout, line, a, now)
	}
}

// syslogMessage is one parsed message.
type syslogMessage struct {
	pri  int    // facility*8 + severity
	tag  string // APP-NAME (5424) or TAG (3164); "" when absent
	pid  string // PROCID, or the [pid] of a 3164 tag
	text []byte
}

// lines renders m as log lines, each ending with "\n": "TAG[PID]: " and
// the text, one entry per line of the text.
func (m syslogMessage) lines() [][]byte {
	prefix := ""
	if m.tag != "" {
		prefix = m.tag
		if m.pid != "" {
			prefix += "[" + m.pid + "]"
		}
		prefix += ": "
	}
	var out [][]byte
	text := m.text
	for {
		i := indexByte(text, '\n')
		part := text
		if i >= 0 {
			part = text[:i]
		}
		if len(part) > 0 || len(out) == 0 {
			line := make([]byte, 0, len(prefix)+len(part)+1)
			line = append(append(append(line, prefix...), part...), '\n')
			out = append(out, line)
		}
		if i < 0 {
			return out
		}
		text = text[i+1:]
	}
}

// defaultPri is user.notice, what RFC 3164 (4.3.3) assumes for a message
// without a PRI.
const defaultPri = 1<<3 | 5

// parseSyslog parses an RFC 5424 or RFC 3164 message. It never fails:
// what does not follow either format becomes the text.
func parseSyslog(b []byte) syslogMessage {
	// Trailing newlines and NULs (some senders end with one) are framing.
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == 0 || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	m := syslogMessage{pri: defaultPri}
	rest, pri, ok := parsePri(b)
	if !ok {
		m.text = b
		return m
	}
	m.pri = pri
	if len(rest) >= 2 && rest[0] >= '1' && rest[0] <= '9' && rest[1] == ' ' {
		if ok := parse5424(rest[2:], &m); ok {
			return m
		}
	}
	parse3164(rest, &m)
	return m
}

// parsePri reads "<N>" with N from 0 to 191.
func parsePri(b []byte) ([]byte, int, bool) {
	if len(b) < 3 || b[0] != '<' {
		return b, 0, false
	}
	n := 0
	for i := 1; i < len(b) && i <= 4; i++ {
		c := b[i]
		switch {
		case c == '>' && i > 1:
			if n > 191 {
				return b, 0, false
			}
			return b[i+1:], n, true
		case c >= '0' && c <= '9':
			n = n*10 + int(c-'0')
		default:
			return b, 0, false
		}
	}
	return b, 0, false
}

// parse5424 reads TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG] after
// the version.
func parse5424(b []byte, m *syslogMessage) bool {
	fields := make([][]byte, 0, 5)
	for len(fields) < 5 {
		i := indexByte(b, ' ')
		if i <= 0 {
			return false
		}
		fields = append(fields, b[:i])
		b = b[i+1:]
	}
	// Structured data: "-" or one or more [..] elements, with \] escapes.
	switch {
	case len(b) > 0 && b[0] == '-':
		b = b[1:]
	case len(b) > 0 && b[0] == '[':
		for len(b) > 0 && b[0] == '[' {
			i := 1
			for i < len(b) && b[i] != ']' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(b) {
				return false
			}
			b = b[i+1:]
		}
	default:
		return false
	}
	if len(b) > 0 {
		if b[0] != ' ' {
			return false
		}
		b = b[1:]
	}
	if len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf {
		b = b[3:] // the BOM of a UTF-8 MSG
	}
	nilv := func(f []byte) string {
		if len(f) == 1 && f[0] == '-' {
			return ""
		}
		return string(f)
	}
	m.tag, m.pid, m.text = nilv(fields[2]), nilv(fields[3]), b
	return true
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// has3164Time reports whether b starts with "Mmm dd hh:mm:ss ".
func has3164Time(b []byte) bool {
	if len(b) < 16 || b[15] != ' ' || b[3] != ' ' || b[6] != ' ' || b[9] != ':' || b[12] != ':' {
		return false
	}
	known := false
	for _, mo := range months {
		if string(b[:3]) == mo {
			known = true
		}
	}
	return known
}

// parse3164 reads [TIMESTAMP [HOSTNAME]] TAG[PID]: TEXT. Local senders
// (glibc's syslog(3) through /dev/log) send no hostname: the first word
// is taken as a hostname only when the next one looks like a tag.
func parse3164(b []byte, m *syslogMessage) {
	if has3164Time(b) {
		b = b[16:]
	}
	isTag := func(w []byte) bool {
		return len(w) > 1 && (w[len(w)-1] == ':' || w[len(w)-1] == ']' && indexByte(w, '[') > 0 ||
			indexByte(w, '[') > 0 && w[len(w)-1] == ':')
	}
	word := func(b []byte) ([]byte, []byte) {
		if i := indexByte(b, ' '); i >= 0 {
			return b[:i], b[i+1:]
		}
		return b, nil
	}
	w, after := word(b)
	if !isTag(w) {
		if w2, _ := word(after); isTag(w2) && len(w) > 0 {
			b = after // w was the hostname
			w, after = word(b)
		}
	}
	if !isTag(w) {
		m.text = b
		return
	}
	tag := w
	if tag[len(tag)-1] == ':' {
		tag = tag[:len(tag)-1]
	}
	if i := indexByte(tag, '['); i > 0 && tag[len(tag)-1] == ']' {
		m.pid = string(tag[i+1 : len(tag)-1])
		tag = tag[:i]
	}
	if len(tag) > 0 && tag[len(tag)-1] == ':' {
		tag = tag[:len(tag)-1]
	}
	m.tag, m.text = string(tag), after
}

var severityNames = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

var facilityNames = [...]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

func facilityName(f int) string {
	if f >= 0 && f < len(facilityNames) {
		return facilityNames[f]
	}
	return strconv.Itoa(f)
}

// syslogPath is the socket of the monitor in dir.
func syslogPath(dir string) string { return filepath.Join(dir, SyslogSocketName) }
