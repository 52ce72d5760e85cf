package logs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/silo-containers/silo/internal/errdefs"
)

// File names in a log directory.
const (
	// FileName is the file being written; rotated files add ".1", ".2"…
	FileName = "container-json.log"
	// ClosedName marks a log that its writer has closed: followers stop
	// once they have read everything.
	ClosedName = FileName + ".closed"
)

// BufSize is the longest entry the copier writes: longer lines are split
// into partial entries of this size, as Docker does.
const BufSize = 16 * 1024

// Config holds the json-file options (docker's --log-opt).
type Config struct {
	// MaxSize is the size in bytes at which the file is rotated; 0 or
	// less means never.
	MaxSize int64
	// MaxFile is how many files to keep, the current one included
	// (default 1: when MaxSize is reached the file starts over).
	MaxFile int
	// Driver is the format: DriverJSONFile (also "") or DriverLocal
	// (local.go).
	Driver string
	// Compress gzips rotated files (local driver only).
	Compress bool
}

// ParseConfig reads docker's log options "max-size" and "max-file".
// Docker's attribute options (labels, env, tag) are accepted and ignored;
// unknown options are an error, as in Docker.
func ParseConfig(opts map[string]string) (Config, error) {
	cfg := Config{MaxSize: -1, MaxFile: 1}
	for k, v := range opts {
		if ok, err := parseRotation(&cfg, k, v); ok || err != nil {
			if err != nil {
				return Config{}, err
			}
			continue
		}
		switch k {
		case "compress":
			if b, err := strconv.ParseBool(v); err != nil || b {
				return Config{}, &Error{Op: "log option", Object: "compress=" + strconv.Quote(v), Err: classed("compressed rotation is not supported", errdefs.ErrNotImplemented)}
			}
		case "labels", "labels-regex", "env", "env-regex", "tag":
			// Accepted for compatibility; entries carry no "attrs" yet.
		default:
			return Config{}, &Error{Op: "log option", Object: strconv.Quote(k), Err: classed("unknown to the json-file driver", errdefs.ErrInvalidArgument)}
		}
	}
	if cfg.MaxFile > 1 && cfg.MaxSize <= 0 {
		return Config{}, &Error{Op: "log option", Object: "max-file", Err: classed("needs max-size", errdefs.ErrInvalidArgument)}
	}
	return cfg, nil
}

// parseRotation applies the rotation options both drivers take
// (max-size, max-file) to cfg; ok says k was one of them.
func parseRotation(cfg *Config, k, v string) (ok bool, err error) {
	switch k {
	case "max-size":
		n, err := ParseSize(v)
		if err != nil {
			return true, &Error{Op: "log option", Object: "max-size", Err: err}
		}
		cfg.MaxSize = n
	case "max-file":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return true, &Error{Op: "log option", Object: "max-file=" + strconv.Quote(v), Err: classed("must be a number at least 1", errdefs.ErrInvalidArgument)}
		}
		cfg.MaxFile = n
	default:
		return false, nil
	}
	return true, nil
}

// ParseSize parses a size as docker does for max-size: a number with an
// optional unit k, m, g, t (powers of 1024; "kb", "kib", "b" accepted).
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "ib"), "b")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<62 {
		return 0, &Error{Op: "parse size", Object: strconv.Quote(s), Err: classed("want a number with an optional unit k, m or g", errdefs.ErrInvalidArgument)}
	}
	return int64(f * float64(mult)), nil
}

// Writer appends entries to a log directory and rotates its files. It is
// safe for concurrent use (stdout and stderr copiers share one).
type Writer struct {
	dir string
	cfg Config
	// Now gives entry times; tests replace it.
	Now func() time.Time
	// Compress, if set, compresses a rotated file of the local driver
	// (Config.Compress) from src into a new file dst (gzip format); the
	// Writer renames dst into place and removes src. Nil leaves rotated
	// files uncompressed. It runs in the background, one at a time.
	Compress func(src, dst string) error

	mu     sync.Mutex // guards the fields below
	f      *os.File
	size   int64
	nrot   int // rotated files present (.1 … .nrot)
	buf    []byte
	closed bool
	// compressing counts the local driver's gzip of a rotated file, done
	// in the background; the next rotation and Close wait for it.
	compressing sync.WaitGroup
}

// local reports whether w writes the local driver's format.
func (w *Writer) local() bool { return w.cfg.Driver == DriverLocal }

// fileName is the current file's name in the directory.
func (w *Writer) fileName() string {
	if w.local() {
		return LocalFileName
	}
	return FileName
}

// Open opens (or creates) the log in dir for appending. A closed marker
// left by an earlier writer is removed: the log goes on.
func Open(dir string, cfg Config) (*Writer, error) {
	if cfg.MaxFile < 1 {
		cfg.MaxFile = 1
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &Error{Op: "open log", Object: dir, Err: err}
	}
	w := &Writer{dir: dir, cfg: cfg, Now: time.Now}
	if err := w.scanRotated(); err != nil {
		return nil, err
	}
	if err := w.openFile(); err != nil {
		return nil, err
	}
	if err := os.Remove(filepath.Join(dir, ClosedName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.f.Close()
		return nil, &Error{Op: "open log", Object: dir, Err: err}
	}
	return w, nil
}

// scanRotated counts the rotated files and removes those beyond max-file
// (left by a writer with a larger max-file).
func (w *Writer) scanRotated() error {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return &Error{Op: "open log", Object: w.dir, Err: err}
	}
	for _, e := range entries {
		n, ok := rotatedIndexOf(w.fileName(), e.Name()) // local.go
		if !ok {
			continue
		}
		if n >= w.cfg.MaxFile {
			if err := os.Remove(filepath.Join(w.dir, e.Name())); err != nil {
				return &Error{Op: "open log", Object: w.dir, Err: err}
			}
			continue
		}
		w.nrot = max(w.nrot, n)
	}
	return nil
}

func (w *Writer) openFile() error {
	path := filepath.Join(w.dir, w.fileName())
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return &Error{Op: "open log file", Object: path, Err: err}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return &Error{Op: "open log file", Object: path, Err: err}
	}
	w.f, w.size = f, fi.Size()
	if w.local() {
		return w.repairLocal() // local.go
	}
	// A writer killed mid-write leaves a torn line: end it, so that it
	// stays one bad line and the next entry starts on its own.
	last := []byte{0}
	if w.size > 0 {
		if _, err := f.ReadAt(last, w.size-1); err == nil && last[0] != '\n' {
			n, _ := f.Write([]byte{'\n'})
			w.size += int64(n)
		}
	}
	return nil
}

// WriteEntry appends one entry. line is written as given: it should end
// with "\n" unless it is a partial line.
func (w *Writer) WriteEntry(stream string, line []byte, t time.Time) error {
	return w.writeEntry(stream, line, Attrs{}, t)
}

func (w *Writer) writeEntry(stream string, line []byte, a Attrs, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return &Error{Op: "write log", Object: w.dir, Err: os.ErrClosed}
	}
	// Docker rotates before a write once the file has reached max-size.
	if w.cfg.MaxSize > 0 && w.size >= w.cfg.MaxSize {
		rotate := w.rotateLocked
		if w.local() {
			rotate = w.rotateLocalLocked // local.go
		}
		if err := rotate(); err != nil {
			return err
		}
	}
	if w.local() {
		w.buf = appendLocalRecord(w.buf[:0], stream, line, a, t)
	} else {
		w.buf = appendEntryAttrs(w.buf[:0], stream, line, a, t)
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if err != nil {
		return &Error{Op: "write log", Object: w.dir, Err: err}
	}
	if cap(w.buf) > 4*BufSize {
		w.buf = nil // do not keep a huge buffer after one huge entry
	}
	return nil
}

// rotateLocked shifts the files by one and starts a new current file.
// The new file takes the name with one rename, so the current name never
// disappears: .N-2 → .N-1 … .1 → .2, link current → .1, new → current.
//
// Preconditions: w.mu held.
func (w *Writer) rotateLocked() error {
	name := func(i int) string {
		if i == 0 {
			return filepath.Join(w.dir, FileName)
		}
		return filepath.Join(w.dir, FileName+"."+strconv.Itoa(i))
	}
	for i := min(w.nrot, w.cfg.MaxFile-2); i >= 1; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return &Error{Op: "rotate log", Object: w.dir, Err: err}
		}
	}
	if w.cfg.MaxFile > 1 {
		_ = os.Remove(name(1)) // link does not replace
		if err := os.Link(name(0), name(1)); err != nil {
			return &Error{Op: "rotate log", Object: w.dir, Err: err}
		}
	}
	tmp := name(0) + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return &Error{Op: "rotate log", Object: w.dir, Err: err}
	}
	if err := os.Rename(tmp, name(0)); err != nil {
		f.Close()
		return &Error{Op: "rotate log", Object: w.dir, Err: err}
	}
	w.f.Close()
	w.f, w.size = f, 0
	w.nrot = min(w.nrot+1, w.cfg.MaxFile-1)
	return nil
}

// Copy reads r until EOF and writes what it reads as entries of stream,
// split as Docker's copier splits: one entry per line, and a partial
// entry whenever BufSize bytes arrive without a newline (all chunks of one
// line share the time of the first). Output that ends without a newline
// becomes a last entry without "\n". A read error other than EOF is
// returned after the buffered data is written.
func (w *Writer) Copy(stream string, r io.Reader) error {
	buf := make([]byte, BufSize)
	n := 0                // bytes in buf
	var partial time.Time // time of the first chunk of a split line
	stamp := func() time.Time {
		if !partial.IsZero() {
			return partial
		}
		return w.Now()
	}
	for {
		m, rerr := r.Read(buf[n:])
		n += m
		now := time.Time{}
		start := 0
		for {
			i := indexNewline(buf[start:n])
			if i < 0 {
				break
			}
			if now.IsZero() {
				now = stamp()
			}
			if err := w.WriteEntry(stream, buf[start:start+i+1], now); err != nil {
				return err
			}
			start += i + 1
			partial = time.Time{}
			now = time.Time{}
		}
		n = copy(buf, buf[start:n])
		if n == len(buf) {
			t := stamp()
			if err := w.WriteEntry(stream, buf[:n], t); err != nil {
				return err
			}
			partial, n = t, 0
		}
		if rerr != nil {
			if n > 0 {
				if err := w.WriteEntry(stream, buf[:n], stamp()); err != nil {
					return err
				}
			}
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, os.ErrClosed) {
				return nil
			}
			return &Error{Op: "copy " + stream + " to log", Object: w.dir, Err: rerr}
		}
	}
}

func indexNewline(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// Sync flushes the current file to disk.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	if err := w.f.Sync(); err != nil {
		return &Error{Op: "sync log", Object: w.dir, Err: err}
	}
	return nil
}

// Close syncs and closes the file and writes the closed marker, which
// ends every follower once it has read the last entry.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	w.compressing.Wait()
	serr := w.f.Sync()
	cerr := w.f.Close()
	merr := os.WriteFile(filepath.Join(w.dir, ClosedName), nil, 0o640)
	if err := errors.Join(serr, cerr, merr); err != nil {
		return &Error{Op: "close log", Object: w.dir, Err: err}
	}
	return nil
}
