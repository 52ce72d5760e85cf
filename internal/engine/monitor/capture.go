package monitor

import (
	"errors"
	"os"
	"path"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/engine/logs"
)

// File capture (--log-opt capture-files=GLOB,…), the counterpart of
// LogMonitor's file source: the monitor follows the files inside the
// container that match the globs and appends every new line to the log
// as a stdout entry whose attrs name the file ({"source":"/var/log/a.log"}).
//
// Paths are resolved in the container's root, reached through an O_PATH
// descriptor of /proc/<init>/root opened once, with
// openat2(RESOLVE_IN_ROOT): a symlink or ".." inside the container cannot
// lead to a host file. Mounts of the container (volumes) are seen, as the
// container sees them.
//
// The files are polled every capturePoll, not watched: inotify needs a
// watch per directory, and directories that appear later (or are mounted
// over) would need watches added in a race with the writer; a poll of a
// few directories four times a second costs next to nothing. A poll:
//   - lists each pattern's directory and opens every matching regular
//     file; files are known by device and inode, so a file seen under two
//     names is read once;
//   - reads what each known file gained since the last poll; a file
//     smaller than the position read was truncated (copytruncate) and is
//     read again from its start;
//   - drains a known file no longer matched (renamed by a rotation,
//     deleted) to its end and forgets it; its successor under the name is
//     a new file, read from its start.
//
// Files found at the first poll are followed from where the container's
// previous run left them (offsets kept in the log directory, by path and
// inode, when it stops), else from their end when they were last written
// before the container started (content from the image), else from their
// start. The kept offsets make a restart exact even when the new run
// writes before the first poll.
//
// Lines are written whole: a line without its newline waits for the next
// poll, and is cut at logs.BufSize. When the container exits, one last
// poll runs and partial last lines are written.

// captureOffsetsFile, in the log directory, keeps the captured files'
// read offsets between runs of the container.
const captureOffsetsFile = "capture-offsets"

// capturePoll is the interval between two polls of the captured files.
const capturePoll = 250 * time.Millisecond

// fileKey identifies a file across renames.
type fileKey struct{ dev, ino uint64 }

// followed is one captured file.
type followed struct {
	fd      int
	name    string // path in the container where it was first matched
	attrs   logs.Attrs
	off     int64
	pending []byte // the start of a line not complete yet
	seen    bool   // matched in the current poll
}

// fileCapture follows the capture-files patterns of one container.
type fileCapture struct {
	log      *logs.Writer
	root     int // O_PATH descriptor of the container's root
	patterns []string
	started  time.Time
	first    bool
	// offsetsPath keeps the read offsets between runs; saved are those
	// the previous run left.
	offsetsPath string
	saved       map[string]savedOffset
	files       map[fileKey]*followed
	buf         []byte
	line        []byte
	stop        chan struct{}
	done        chan struct{}
}

// startFileCapture opens the container's root (/proc/<init>/root) and
// starts polling.
func startFileCapture(log *logs.Writer, rootPath string, patterns []string, started time.Time, offsetsPath string) (*fileCapture, error) {
	root, err := unix.Open(rootPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open container root", Path: rootPath, Err: err}
	}
	c := &fileCapture{log: log, root: root, patterns: patterns, started: started, first: true,
		offsetsPath: offsetsPath, saved: loadOffsets(offsetsPath),
		files: map[fileKey]*followed{}, buf: make([]byte, 8*1024),
		stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *fileCapture) run() {
	defer close(c.done)
	t := time.NewTicker(capturePoll)
	defer t.Stop()
	for {
		c.poll(false)
		select {
		case <-c.stop:
			c.poll(true)
			c.closeAll()
			return
		case <-t.C:
		}
	}
}

// close runs a last poll, writes what is pending and releases the files
// and the container's root (which must not stay pinned: the sandbox is
// unmounted after the exit).
func (c *fileCapture) close() {
	close(c.stop)
	<-c.done
}

func (c *fileCapture) closeAll() {
	saveOffsets(c.offsetsPath, c.files)
	for k, f := range c.files {
		unix.Close(f.fd)
		delete(c.files, k)
	}
	unix.Close(c.root)
}

// savedOffset is where a run stopped reading a file.
type savedOffset struct {
	ino uint64
	off int64
}

// loadOffsets reads the offsets file ("INO OFF PATH" lines); a missing or
// damaged one gives none.
func loadOffsets(p string) map[string]savedOffset {
	out := map[string]savedOffset{}
	b, err := os.ReadFile(p)
	if err != nil {
		return out
	}
	for len(b) > 0 {
		line := b
		if i := indexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		f := splitN3(line)
		if f == nil {
			continue
		}
		ino, err1 := strconv.ParseUint(f[0], 10, 64)
		off, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 == nil && err2 == nil && off >= 0 {
			out[f[2]] = savedOffset{ino: ino, off: off}
		}
	}
	return out
}

// saveOffsets writes the offsets of the followed files (temporary file and
// rename: a torn file would only cost the heuristics of a fresh start).
func saveOffsets(p string, files map[fileKey]*followed) {
	if p == "" {
		return
	}
	var b []byte
	for k, f := range files {
		b = strconv.AppendUint(b, k.ino, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, f.off, 10)
		b = append(b, ' ')
		b = append(b, f.name...)
		b = append(b, '\n')
	}
	if os.WriteFile(p+".tmp", b, 0o600) == nil {
		_ = os.Rename(p+".tmp", p)
	}
}

// splitN3 splits "a b rest" into three fields (rest may hold spaces).
func splitN3(line []byte) []string {
	i := indexByte(line, ' ')
	if i < 0 {
		return nil
	}
	j := indexByte(line[i+1:], ' ')
	if j < 0 {
		return nil
	}
	return []string{string(line[:i]), string(line[i+1 : i+1+j]), string(line[i+2+j:])}
}

// openIn opens p inside the container's root.
func (c *fileCapture) openIn(p string, flags uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(c.root, p, &how)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue // EAGAIN: a rename raced the lookup
		}
		return fd, err
	}
}

// poll finds the matching files and reads what they gained; final writes
// partial lines too.
func (c *fileCapture) poll(final bool) {
	for _, f := range c.files {
		f.seen = false
	}
	for _, pat := range c.patterns {
		c.scan(pat)
	}
	c.first = false
	// Files no longer matched first: a rotated file's last lines come
	// before the first lines of its successor under the name.
	for k, f := range c.files {
		if !f.seen {
			c.read(f)
			c.flush(f)
			unix.Close(f.fd)
			delete(c.files, k)
		}
	}
	for _, f := range c.files {
		c.read(f)
		if final {
			c.flush(f) // closeAll saves the offsets, then closes
		}
	}
}

// scan matches one pattern's directory and adopts new files.
func (c *fileCapture) scan(pat string) {
	dir, base := path.Split(pat)
	dfd, err := c.openIn(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return // not there (yet)
	}
	d := os.NewFile(uintptr(dfd), dir)
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, name := range names {
		if ok, _ := path.Match(base, name); !ok {
			continue
		}
		full := dir + name
		fd, err := c.openIn(full, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			unix.Close(fd) // a fifo or device is not a log file
			continue
		}
		k := fileKey{uint64(st.Dev), st.Ino}
		if f, ok := c.files[k]; ok {
			f.seen = true
			unix.Close(fd)
			continue
		}
		f := &followed{fd: fd, name: full, seen: true,
			attrs: logs.NewAttrs(map[string]string{"source": full})}
		if c.first {
			if sv, ok := c.saved[full]; ok && sv.ino == st.Ino && sv.off <= st.Size {
				f.off = sv.off // where the previous run stopped
			} else if time.Unix(st.Mtim.Unix()).Before(c.started) {
				f.off = st.Size
			}
		}
		c.files[k] = f
	}
}

// read writes the complete lines f gained since the last read.
func (c *fileCapture) read(f *followed) {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err == nil && st.Size < f.off {
		f.off, f.pending = 0, f.pending[:0] // truncated: start over
	}
	for {
		n, err := unix.Pread(f.fd, c.buf, f.off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		f.off += int64(n)
		data := c.buf[:n]
		for len(data) > 0 {
			i := indexByte(data, '\n')
			if i < 0 {
				f.pending = append(f.pending, data...)
				for len(f.pending) >= logs.BufSize {
					c.emit(f, f.pending[:logs.BufSize])
					f.pending = f.pending[:copy(f.pending, f.pending[logs.BufSize:])]
				}
				break
			}
			if len(f.pending) > 0 {
				f.pending = append(f.pending, data[:i]...)
				c.emit(f, f.pending)
				f.pending = f.pending[:0]
			} else {
				c.emit(f, data[:i])
			}
			data = data[i+1:]
		}
	}
}

// flush writes a partial last line.
func (c *fileCapture) flush(f *followed) {
	if len(f.pending) > 0 {
		c.emit(f, f.pending)
		f.pending = f.pending[:0]
	}
}

// emit writes one line (without its newline) as stdout entries of at
// most logs.BufSize bytes each.
func (c *fileCapture) emit(f *followed, line []byte) {
	now := time.Now()
	for {
		part := line[:min(len(line), logs.BufSize)]
		c.line = append(append(c.line[:0], part...), '\n')
		_ = c.log.WriteEntryAttrs(logs.Stdout, c.line, f.attrs, now)
		if line = line[len(part):]; len(line) == 0 {
			return
		}
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// captures are a monitor's capture sources (nil fields: not asked for).
type captures struct {
	opts   logs.Capture
	since  time.Time // before the container was created
	sock   *os.File  // bound before the container is created
	syslog *syslogReader
	files  *fileCapture
}

// prepareCapture binds the syslog socket, which must exist when the
// runtime bind-mounts it at /dev/log.
func (m *monitor) prepareCapture(opts logs.Capture) error {
	m.capture.opts, m.capture.since = opts, time.Now()
	if !opts.Syslog {
		return nil
	}
	sock, err := openSyslog(syslogPath(m.cfg.Dir))
	if err != nil {
		return errors.New("monitor " + m.cfg.ID + ": syslog socket: " + err.Error())
	}
	m.capture.sock = sock
	return nil
}

// startCapture starts the readers once the container runs.
func (m *monitor) startCapture() error {
	c := &m.capture
	if c.sock != nil {
		c.syslog = startSyslog(c.sock, m.log)
	}
	if len(c.opts.Files) > 0 {
		m.mu.Lock()
		pid := m.state.Pid
		m.mu.Unlock()
		f, err := startFileCapture(m.log, "/proc/"+strconv.Itoa(pid)+"/root", c.opts.Files, c.since,
			path.Join(m.cfg.LogDir, captureOffsetsFile))
		if err != nil {
			return errors.New("monitor " + m.cfg.ID + ": capture files: " + err.Error())
		}
		c.files = f
	}
	return nil
}

// stopCapture writes what the sources still hold and closes them; it
// runs before the log closes.
func (m *monitor) stopCapture() {
	c := &m.capture
	if c.files != nil {
		c.files.close()
		c.files = nil
	}
	if c.syslog != nil {
		c.syslog.close()
		c.syslog, c.sock = nil, nil
	}
	if c.sock != nil {
		c.sock.Close()
		_ = os.Remove(c.sock.Name())
		c.sock = nil
	}
}
