package logs

import (
	"bufio"
	"context"
	"errors"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Options select the entries Read returns, as the flags of `docker logs`.
type Options struct {
	// Follow keeps reading new entries, across rotations, until the
	// context is cancelled, the writer closes the log or Until passes.
	Follow bool
	// Tail is how many of the last selected entries to return: -1 (or
	// any negative number) for all, 0 for none (with Follow: only new ones).
	Tail int
	// Since and Until bound the entry times, both inclusive; zero means
	// unbounded. Reading stops at the first entry after Until.
	Since, Until time.Time
	// Timestamps prefixes every line with its time (RFC 3339, nine
	// fractional digits) and a space, as `docker logs -t` does.
	Timestamps bool
	// Stdout and Stderr select the streams; at least one must be set.
	Stdout, Stderr bool
	// Details prefixes every line with its attributes, as `docker logs
	// --details` does ("source=%2Fvar%2Flog%2Fa.log line"), after the
	// timestamp if there is one.
	Details bool
	// Driver is the log's format: DriverJSONFile (also "") or DriverLocal.
	Driver string
}

// TimestampFormat is the layout of the prefix Options.Timestamps adds.
const TimestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Read returns the entries of the log in dir that opts select, oldest
// first. The sequence ends at the end of the log (with Follow: when ctx is
// cancelled, the writer has closed the log or Until has passed); it yields
// an error and ends if the log cannot be read. Lines that do not decode
// (a torn write after a crash) are skipped.
func Read(ctx context.Context, dir string, opts Options) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		r := &reader{dir: dir, opts: opts, yield: yield}
		defer r.closeAll()
		var err error
		if opts.Driver == DriverLocal {
			err = (&localReader{reader: r}).run(ctx) // local.go
		} else {
			err = r.run(ctx)
		}
		if err != nil && err != errStop && err != errUntil {
			yield(Entry{}, err)
		}
	}
}

var (
	// errStop: the consumer stopped ranging.
	errStop = errors.New("stop")
	// errUntil: an entry after Until was reached.
	errUntil = errors.New("until reached")
)

// logFile is one open file of the log and the reading position in it.
type logFile struct {
	f       *os.File
	ino     uint64
	br      *bufio.Reader
	pending []byte // an incomplete line read so far
}

type reader struct {
	dir   string
	opts  Options
	yield func(Entry, error) bool
	// files are the open files still to read, oldest first; files[0] is
	// the one being read.
	files []*logFile
	// partial records, per stream, whether the last entry did not end its
	// line (so the next one continues it and gets no timestamp prefix).
	partial [2]bool
}

func (r *reader) closeAll() {
	closeFiles(r.files)
	r.files = nil
}

func closeFiles(files []*logFile) {
	for _, lf := range files {
		lf.f.Close()
	}
}

// checkRead refuses a read that asks for no stream or of a log directory
// that does not exist; both drivers' readers start with it.
func checkRead(dir string, opts Options) error {
	if !opts.Stdout && !opts.Stderr {
		return &Error{Op: "read log", Object: dir, Err: classed("choose at least one of stdout and stderr", errdefs.ErrInvalidArgument)}
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return &Error{Op: "read log", Object: dir, Err: errdefs.ErrNotFound}
	}
	return nil
}

func (r *reader) run(ctx context.Context) error {
	if err := checkRead(r.dir, r.opts); err != nil {
		return err
	}
	var w *watcher
	if r.opts.Follow {
		// Watch before the first look, so that no change goes unseen.
		w = newWatcher(r.dir)
		defer w.close()
	}
	files, err := snapshot(r.dir)
	if err != nil {
		return err
	}
	r.files = files
	if r.opts.Tail >= 0 {
		if err := r.seekTail(); err != nil {
			return err
		}
	}
	for {
		if len(r.files) > 0 {
			cur := r.files[0]
			if err := r.drain(cur); err != nil {
				return err
			}
			if len(r.files) > 1 {
				cur.f.Close()
				r.files = r.files[1:]
				continue
			}
		}
		if !r.opts.Follow {
			return nil
		}
		// At the end of the newest file known: look for what comes next.
		// The marker is checked before the rotation so that a drain after
		// seeing it reads everything the writer wrote.
		closed := exists(filepath.Join(r.dir, ClosedName))
		if len(r.files) == 0 {
			if closed {
				return nil
			}
			files, err := snapshot(r.dir)
			if err != nil {
				return err
			}
			if r.files = files; len(files) > 0 {
				continue
			}
		} else if cur := r.files[0]; r.rotated(cur) {
			// The writer renamed cur before it wrote anything to the next
			// file: one more drain reads all of cur.
			if err := r.drain(cur); err != nil {
				return err
			}
			next, err := successors(r.dir, cur.ino)
			if err != nil {
				return err
			}
			cur.f.Close()
			r.files = next
			continue
		} else if closed {
			return r.drain(cur)
		}
		if !r.opts.Until.IsZero() && time.Now().After(r.opts.Until) {
			return nil
		}
		if err := w.wait(ctx); err != nil {
			return nil // cancelled: the end of the stream, not an error
		}
	}
}

// rotated reports whether the current name now is another file than lf.
func (r *reader) rotated(lf *logFile) bool {
	fi, err := os.Stat(filepath.Join(r.dir, FileName))
	if err != nil {
		return false
	}
	return inode(fi) != lf.ino
}

// drain reads complete lines of lf up to its current end.
func (r *reader) drain(lf *logFile) error {
	for {
		chunk, err := lf.br.ReadSlice('\n')
		switch {
		case err == nil:
			line := chunk
			if len(lf.pending) > 0 {
				lf.pending = append(lf.pending, chunk...)
				line = lf.pending
			}
			if err := r.emit(line[:len(line)-1]); err != nil {
				return err
			}
			lf.pending = lf.pending[:0]
		case errors.Is(err, bufio.ErrBufferFull):
			lf.pending = append(lf.pending, chunk...)
		case errors.Is(err, io.EOF):
			lf.pending = append(lf.pending, chunk...)
			return nil
		default:
			return &Error{Op: "read log", Object: r.dir, Err: err}
		}
	}
}

// selected decodes raw and applies the stream and time filters. It
// returns errUntil for an entry after Until.
func (r *reader) selected(raw []byte) (Entry, bool, error) {
	e, err := Decode(raw)
	if err != nil {
		return Entry{}, false, nil
	}
	return r.filter(e)
}

// filter applies the stream and time filters to e (errUntil: after Until).
func (r *reader) filter(e Entry) (Entry, bool, error) {
	if e.Stream == Stdout && !r.opts.Stdout || e.Stream != Stdout && !r.opts.Stderr {
		return e, false, nil
	}
	if !r.opts.Since.IsZero() && e.Time.Before(r.opts.Since) {
		return e, false, nil
	}
	if !r.opts.Until.IsZero() && e.Time.After(r.opts.Until) {
		return e, false, errUntil
	}
	return e, true, nil
}

func (r *reader) emit(raw []byte) error {
	e, ok, err := r.selected(raw)
	if !ok {
		return err
	}
	return r.emitEntry(e)
}

// emitEntry yields a selected entry with the prefixes opts ask for.
func (r *reader) emitEntry(e Entry) error {
	s := 0
	if e.Stream != Stdout {
		s = 1
	}
	if (r.opts.Timestamps || r.opts.Details) && !r.partial[s] {
		line := make([]byte, 0, len(TimestampFormat)+1+len(e.Line))
		if r.opts.Timestamps {
			line = e.Time.UTC().AppendFormat(line, TimestampFormat)
			line = append(line, ' ')
		}
		if r.opts.Details {
			line = appendDetails(line, e.Attrs)
		}
		e.Line = append(line, e.Line...)
	}
	r.partial[s] = e.Partial()
	if !r.yield(e, nil) {
		return errStop
	}
	return nil
}

// seekTail positions the reader at the Tail-th last selected entry.
func (r *reader) seekTail() error {
	need := r.opts.Tail
	for i := len(r.files) - 1; i >= 0; i-- {
		lf := r.files[i]
		off, found, err := scanBack(lf.f, func(raw []byte) bool {
			if need == 0 {
				return false
			}
			if _, ok, _ := r.selected(raw); ok {
				need--
			}
			return true
		})
		if err != nil {
			return &Error{Op: "read log", Object: r.dir, Err: err}
		}
		if found || need == 0 {
			if _, err := lf.f.Seek(off, io.SeekStart); err != nil {
				return &Error{Op: "read log", Object: r.dir, Err: err}
			}
			lf.br.Reset(lf.f)
			closeFiles(r.files[:i])
			r.files = r.files[i:]
			return nil
		}
	}
	return nil // fewer entries than Tail: read everything
}

// scanBack calls fn with the complete lines of f (without newline) from
// the last to the first, until fn returns false. It returns the offset
// where the line fn refused starts (found), or 0 when fn accepted all.
// Before the first call fn gets no line; a refusal of the first line
// places the offset after the last complete line.
func scanBack(f *os.File, fn func(raw []byte) bool) (off int64, found bool, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	const block = 32 * 1024
	pos := fi.Size() // buf holds the file's bytes [pos, pos+len(buf))
	var buf []byte
	trimmed := false // the incomplete last line is dropped
	for {
		if !trimmed {
			if i := lastNewline(buf); i >= 0 {
				buf, trimmed = buf[:i+1], true
			} else if pos == 0 {
				return 0, false, nil // no complete line at all
			}
		}
		if trimmed && len(buf) > 0 {
			i := lastNewline(buf[:len(buf)-1])
			if i >= 0 || pos == 0 {
				start := i + 1
				if !fn(buf[start : len(buf)-1]) {
					return pos + int64(len(buf)), true, nil
				}
				buf = buf[:start]
				continue
			}
		}
		if trimmed && len(buf) == 0 && pos == 0 {
			return 0, false, nil
		}
		n := min(int64(block), pos)
		chunk := make([]byte, n, int(n)+len(buf))
		if _, err := f.ReadAt(chunk, pos-n); err != nil {
			return 0, false, err
		}
		pos -= n
		buf = append(chunk, buf...)
	}
}

func lastNewline(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			return i
		}
	}
	return -1
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

func openLog(path string) (*logFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &logFile{f: f, ino: inode(fi), br: bufio.NewReaderSize(f, 64*1024)}, nil
}

// snapshot opens every file of the log, oldest first.
func snapshot(dir string) ([]*logFile, error) {
	files, _, err := snapshotTo(dir, 0)
	return files, err
}

// snapshotTo opens the files of the log, oldest first, back to the one
// with inode stop (included) if stop is not 0. Names shift while the
// writer rotates, so the files are opened newest first: a shift moves a
// file towards names not yet opened, so it is seen again, never missed,
// and duplicates are dropped by inode. If the current file changed while
// opening, it starts over.
func snapshotTo(dir string, stop uint64) ([]*logFile, bool, error) {
	for attempt := 0; ; attempt++ {
		files, found, stable, err := trySnapshot(dir, stop)
		if err != nil || stable || attempt >= 100 {
			return files, found, err
		}
		closeFiles(files)
		time.Sleep(time.Millisecond)
	}
}

// highestRotated returns the largest N of the files FileName.N in dir.
func highestRotated(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, &Error{Op: "read log", Object: dir, Err: err}
	}
	highest := 0
	for _, e := range entries {
		if s, ok := strings.CutPrefix(e.Name(), FileName+"."); ok {
			if n, err := strconv.Atoi(s); err == nil && n > highest {
				highest = n
			}
		}
	}
	return highest, nil
}

func trySnapshot(dir string, stop uint64) (files []*logFile, found, stable bool, err error) {
	cur := filepath.Join(dir, FileName)
	seen := map[uint64]bool{}
	var curIno uint64
	highest := -1 // unknown until a name is missing
	for i := 0; highest < 0 || i <= highest+1; i++ {
		path := cur
		if i > 0 {
			path = cur + "." + strconv.Itoa(i)
		}
		lf, err := openLog(path)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				closeFiles(files)
				return nil, false, false, &Error{Op: "read log", Object: dir, Err: err}
			}
			if highest < 0 {
				if highest, err = highestRotated(dir); err != nil {
					closeFiles(files)
					return nil, false, false, err
				}
			}
			continue
		}
		if i == 0 {
			curIno = lf.ino
		}
		if seen[lf.ino] {
			lf.f.Close()
			continue
		}
		seen[lf.ino] = true
		files = append(files, lf)
		if stop != 0 && lf.ino == stop {
			found = true
			break
		}
	}
	slices.Reverse(files)
	fi, err := os.Stat(cur)
	if err != nil {
		return files, found, !errors.Is(err, os.ErrNotExist) || curIno == 0, nil
	}
	return files, found, inode(fi) == curIno, nil
}

// successors returns the files newer than the one with inode ino, oldest
// first. If that file is gone (the reader fell max-file files behind, or
// max-file is 1), every file left is newer than it.
func successors(dir string, ino uint64) ([]*logFile, error) {
	files, found, err := snapshotTo(dir, ino)
	if err != nil {
		return nil, err
	}
	if found {
		files[0].f.Close()
		return files[1:], nil
	}
	return files, nil
}
