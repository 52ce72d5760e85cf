package logs

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/silo-containers/silo/internal/errdefs"
)

// The local driver (--log-driver local): Docker's local driver keeps
// protobuf records; no client reads those files (docker logs goes through
// the API), so silo's local format is its own, a compact binary framing:
//
//	record  = length body length      length: uint32, big endian, of body
//	body    = flags time nattrs {klen key vlen value} line
//	flags   = 1 byte: bit 0 set for stderr
//	time    = int64, big endian: Unix nanoseconds
//	nattrs, klen, vlen = uvarint
//	line    = the rest of body: the output, "\n" included unless partial
//
// The length after the body lets a reader or a restarted writer check the
// last record: a torn write (a crash) is cut off when the writer opens
// the file again. The current file is container.log; rotation renames it
// to container.log.1 (the older ones shift up, the oldest beyond max-file
// is dropped) and, with compress (the default, as Docker's), gzips that
// in the background to container.log.1.gz. Defaults as Docker's local
// driver: max-size 20m, max-file 5, compress true.
//
// This package does not link compress/gzip: the monitor links it for the
// Writer, and gzip would bring fmt and its init into every monitor. The
// writer compresses through Writer.Compress (the monitor runs the host's
// gzip) and the reader decompresses through Gunzip (set by silod's side).
//
// A follower holds the current file open and, when the name moves to a
// new file, finishes the old one and goes on with the new. Unlike the
// json-file reader it does not look for files it skipped: a follower more
// than one rotation behind loses the files in between.

// Driver names.
const (
	DriverJSONFile = "json-file"
	DriverLocal    = "local"
)

// LocalFileName is the local driver's current file.
const LocalFileName = "container.log"

// maxLocalRecord bounds a record's body: an entry is at most BufSize of
// output plus a few attributes.
const maxLocalRecord = 1 << 20

// ParseDriverConfig reads the options of driver (DriverJSONFile or "",
// DriverLocal); another driver is not implemented.
func ParseDriverConfig(driver string, opts map[string]string) (Config, error) {
	switch driver {
	case "", DriverJSONFile:
		return ParseConfig(opts)
	case DriverLocal:
		return parseLocalConfig(opts)
	}
	return Config{}, &Error{Op: "log driver", Object: strconv.Quote(driver), Err: classed("not supported (json-file, local)", errdefs.ErrNotImplemented)}
}

func parseLocalConfig(opts map[string]string) (Config, error) {
	cfg := Config{Driver: DriverLocal, MaxSize: 20 << 20, MaxFile: 5, Compress: true}
	for k, v := range opts {
		if ok, err := parseRotation(&cfg, k, v); ok || err != nil {
			if err != nil {
				return Config{}, err
			}
			continue
		}
		switch k {
		case "compress":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, &Error{Op: "log option", Object: "compress=" + strconv.Quote(v), Err: classed("want true or false", errdefs.ErrInvalidArgument)}
			}
			cfg.Compress = b
		default:
			return Config{}, &Error{Op: "log option", Object: strconv.Quote(k), Err: classed("unknown to the local driver", errdefs.ErrInvalidArgument)}
		}
	}
	return cfg, nil
}

// appendLocalRecord appends one record to buf.
func appendLocalRecord(buf []byte, stream string, line []byte, a Attrs, t time.Time) []byte {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	flags := byte(0)
	if stream == Stderr {
		flags = 1
	}
	buf = append(buf, flags)
	buf = binary.BigEndian.AppendUint64(buf, uint64(t.UnixNano()))
	buf = binary.AppendUvarint(buf, uint64(len(a.pairs)/2))
	for _, s := range a.pairs {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = append(buf, line...)
	n := uint32(len(buf) - start - 4)
	binary.BigEndian.PutUint32(buf[start:], n)
	return binary.BigEndian.AppendUint32(buf, n)
}

// errCorrupt marks a record that does not decode.
var errCorrupt = errors.New("corrupt local log record")

// decodeLocal decodes a record's body.
func decodeLocal(body []byte) (Entry, error) {
	if len(body) < 10 {
		return Entry{}, errCorrupt
	}
	e := Entry{Stream: Stdout, Time: time.Unix(0, int64(binary.BigEndian.Uint64(body[1:9]))).UTC()}
	if body[0]&1 != 0 {
		e.Stream = Stderr
	}
	rest := body[9:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)) {
		return Entry{}, errCorrupt
	}
	rest = rest[k:]
	if n > 0 {
		e.Attrs = make(map[string]string, n)
	}
	for i := uint64(0); i < n; i++ {
		var kv [2]string
		for j := range kv {
			l, k := binary.Uvarint(rest)
			if k <= 0 || l > uint64(len(rest)-k) {
				return Entry{}, errCorrupt
			}
			kv[j] = string(rest[k : k+int(l)])
			rest = rest[k+int(l):]
		}
		e.Attrs[kv[0]] = kv[1]
	}
	e.Line = rest
	return e, nil
}

// nextRecord returns the body of the first complete record of b and the
// bytes it takes; 0 when b holds no complete record yet.
func nextRecord(b []byte) (body []byte, n int, err error) {
	if len(b) < 4 {
		return nil, 0, nil
	}
	l := int(binary.BigEndian.Uint32(b))
	if l > maxLocalRecord {
		return nil, 0, errCorrupt
	}
	if len(b) < 8+l {
		return nil, 0, nil
	}
	if int(binary.BigEndian.Uint32(b[4+l:])) != l {
		return nil, 0, errCorrupt
	}
	return b[4 : 4+l], 8 + l, nil
}

// localName is the name of rotated file i (0: the current file).
func (w *Writer) localName(i int, gz bool) string {
	if i == 0 {
		return filepath.Join(w.dir, LocalFileName)
	}
	name := filepath.Join(w.dir, LocalFileName+"."+strconv.Itoa(i))
	if gz {
		name += ".gz"
	}
	return name
}

// rotatedIndex parses "container.log.N" or "container.log.N.gz".
func rotatedIndex(name string) (int, bool) { return rotatedIndexOf(LocalFileName, name) }

// rotatedIndexOf parses the rotated names of log file base: "BASE.N", or
// "BASE.N.gz" once compressed.
func rotatedIndexOf(base, name string) (int, bool) {
	s, ok := strings.CutPrefix(name, base+".")
	if !ok {
		return 0, false
	}
	s = strings.TrimSuffix(s, ".gz")
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 1
}

// repairLocal cuts a torn last record off the current file. The last
// record is checked through its trailing length; if that does not agree,
// the file is scanned from the start and cut after the last good record.
func (w *Writer) repairLocal() error {
	if w.size == 0 {
		return nil
	}
	var tail [4]byte
	if w.size >= 8 {
		if _, err := w.f.ReadAt(tail[:], w.size-4); err == nil {
			l := int64(binary.BigEndian.Uint32(tail[:]))
			var head [4]byte
			if l <= maxLocalRecord && w.size-8-l >= 0 {
				if _, err := w.f.ReadAt(head[:], w.size-8-l); err == nil && int64(binary.BigEndian.Uint32(head[:])) == l {
					return nil
				}
			}
		}
	}
	good := int64(0)
	buf := make([]byte, 0, 64*1024)
	r := io.NewSectionReader(w.f, 0, w.size)
	chunk := make([]byte, 64*1024)
	for {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for {
			_, m, rerr := nextRecord(buf)
			if rerr != nil || m == 0 {
				break
			}
			good += int64(m)
			buf = buf[m:]
		}
		if err != nil || len(buf) > maxLocalRecord+8 {
			break
		}
	}
	if err := w.f.Truncate(good); err != nil {
		return &Error{Op: "repair log", Object: w.dir, Err: err}
	}
	w.size = good
	return nil
}

// rotateLocalLocked shifts the rotated files by one, moves the current
// file to .1, starts a new current file and, with Compress, gzips .1 in
// the background.
//
// Preconditions: w.mu held.
func (w *Writer) rotateLocalLocked() error {
	w.compressing.Wait() // .1 must be settled before it shifts
	gz := w.cfg.Compress
	for i := min(w.nrot, w.cfg.MaxFile-2); i >= 1; i-- {
		for _, z := range []bool{false, true} {
			if err := os.Rename(w.localName(i, z), w.localName(i+1, z)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return &Error{Op: "rotate log", Object: w.dir, Err: err}
			}
		}
	}
	if w.cfg.MaxFile > 1 {
		_ = os.Remove(w.localName(1, false))
		if err := os.Link(w.localName(0, false), w.localName(1, false)); err != nil {
			return &Error{Op: "rotate log", Object: w.dir, Err: err}
		}
	}
	tmp := w.localName(0, false) + ".new"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return &Error{Op: "rotate log", Object: w.dir, Err: err}
	}
	if err := os.Rename(tmp, w.localName(0, false)); err != nil {
		f.Close()
		return &Error{Op: "rotate log", Object: w.dir, Err: err}
	}
	w.f.Close()
	w.f, w.size = f, 0
	w.nrot = min(w.nrot+1, w.cfg.MaxFile-1)
	if compress := w.Compress; gz && compress != nil && w.cfg.MaxFile > 1 {
		w.compressing.Add(1)
		go func() {
			defer w.compressing.Done()
			src, dst := w.localName(1, false), w.localName(1, true)
			// The plain file stays when compression fails: readers take
			// either.
			if err := compress(src, dst+".tmp"); err != nil {
				_ = os.Remove(dst + ".tmp")
				return
			}
			if err := os.Rename(dst+".tmp", dst); err != nil {
				_ = os.Remove(dst + ".tmp")
				return
			}
			_ = os.Remove(src)
		}()
	}
	return nil
}

// Gunzip opens a gzip stream: the local reader needs it for rotated files
// that were compressed. It is nil in the monitor (see above); silod's
// engine sets it. A compressed file without it is a read error.
var Gunzip func(io.Reader) (io.Reader, error)

// localReader reads a local driver log; it shares the filters and the
// output of the json-file reader.
type localReader struct {
	*reader
	cur     *os.File // the current file, held open
	ino     uint64
	pending []byte
	// tailing: the entries read so far are kept (the last Tail of them,
	// in ring) until the end of what exists is reached.
	tailing bool
	ring    []Entry
}

func (r *localReader) run(ctx context.Context) error {
	if err := checkRead(r.dir, r.opts); err != nil {
		return err
	}
	var w *watcher
	if r.opts.Follow {
		w = newWatcher(r.dir)
		defer w.close()
	}
	defer func() {
		if r.cur != nil {
			r.cur.Close()
		}
	}()
	r.tailing = r.opts.Tail >= 0
	// The current file first, so that it is not rotated past the reader
	// while the older ones are listed (a rotation in between may make a
	// file read twice).
	r.openCurrent()
	for _, name := range r.rotated() {
		if err := r.readRotated(name); err != nil {
			return err
		}
	}
	for {
		if r.cur != nil {
			if err := r.drain(); err != nil {
				return err
			}
		}
		if r.tailing {
			if err := r.flushRing(); err != nil {
				return err
			}
		}
		if !r.opts.Follow {
			return nil
		}
		closed := exists(filepath.Join(r.dir, ClosedName))
		if r.cur == nil {
			if closed {
				return nil
			}
			r.openCurrent()
			if r.cur != nil {
				continue
			}
		} else if r.rotatedAway() {
			if err := r.drain(); err != nil {
				return err
			}
			r.cur.Close()
			r.cur, r.pending = nil, r.pending[:0]
			r.openCurrent()
			continue
		} else if closed {
			return r.drain()
		}
		if !r.opts.Until.IsZero() && time.Now().After(r.opts.Until) {
			return nil
		}
		if err := w.wait(ctx); err != nil {
			return nil
		}
	}
}

func (r *localReader) openCurrent() {
	f, err := os.Open(filepath.Join(r.dir, LocalFileName))
	if err != nil {
		return
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return
	}
	r.cur, r.ino = f, inode(fi)
}

func (r *localReader) rotatedAway() bool {
	fi, err := os.Stat(filepath.Join(r.dir, LocalFileName))
	return err == nil && inode(fi) != r.ino
}

// rotated lists the rotated files, oldest first; of a file present both
// plain and gzipped (its compression is finishing), the plain one.
func (r *localReader) rotated() []string {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return nil
	}
	byIndex := map[int]string{}
	for _, e := range entries {
		n, ok := rotatedIndex(e.Name())
		if !ok {
			continue
		}
		if prev, dup := byIndex[n]; dup && !strings.HasSuffix(prev, ".gz") {
			continue
		}
		byIndex[n] = e.Name()
	}
	idx := make([]int, 0, len(byIndex))
	for n := range byIndex {
		idx = append(idx, n)
	}
	slices.Sort(idx)
	slices.Reverse(idx)
	names := make([]string, len(idx))
	for i, n := range idx {
		names[i] = filepath.Join(r.dir, byIndex[n])
	}
	return names
}

// readRotated reads a whole rotated file (gzipped or not). A file gone
// meanwhile (shifted out beyond max-file) is skipped.
func (r *localReader) readRotated(name string) error {
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return &Error{Op: "read log", Object: name, Err: err}
	}
	defer f.Close()
	var src io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		if Gunzip == nil {
			return &Error{Op: "read log", Object: name, Err: classed("no gzip reader linked", errdefs.ErrNotImplemented)}
		}
		zr, err := Gunzip(f)
		if err != nil {
			return &Error{Op: "read log", Object: name, Err: err}
		}
		src = zr
	}
	var pending []byte
	return wrapRead(name, r.readRecords(src, &pending))
}

// wrapRead names the file in a read error; the reader's own stops pass.
func wrapRead(name string, err error) error {
	if err == nil || err == errStop || err == errUntil {
		return err
	}
	return &Error{Op: "read log", Object: name, Err: err}
}

// drain reads the current file's complete records up to its end.
func (r *localReader) drain() error {
	return wrapRead(r.cur.Name(), r.readRecords(r.cur, &r.pending))
}

// readRecords reads src to its end and hands each complete record to
// take; an incomplete last record stays in pending.
func (r *localReader) readRecords(src io.Reader, pending *[]byte) error {
	chunk := make([]byte, 64*1024)
	for {
		n, err := src.Read(chunk)
		*pending = append(*pending, chunk[:n]...)
		b := *pending
		for {
			body, m, rerr := nextRecord(b)
			if rerr != nil {
				return rerr
			}
			if m == 0 {
				break
			}
			if err := r.take(body); err != nil {
				return err
			}
			b = b[m:]
		}
		*pending = append((*pending)[:0], b...)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// take filters one record and yields it, or keeps it for the tail.
func (r *localReader) take(body []byte) error {
	e, err := decodeLocal(body)
	if err != nil {
		return err
	}
	e, ok, err := r.filter(e)
	if !ok {
		return err
	}
	if r.tailing {
		if r.opts.Tail == 0 {
			return nil
		}
		e.Line = append([]byte(nil), e.Line...) // body's buffer is reused
		if len(r.ring) == r.opts.Tail {
			r.ring = r.ring[1:]
		}
		r.ring = append(r.ring, e)
		return nil
	}
	return r.emitEntry(e)
}

// flushRing yields the kept tail; from then on entries go out as read.
func (r *localReader) flushRing() error {
	ring := r.ring
	r.ring, r.tailing = nil, false
	for _, e := range ring {
		if err := r.emitEntry(e); err != nil {
			return err
		}
	}
	return nil
}
