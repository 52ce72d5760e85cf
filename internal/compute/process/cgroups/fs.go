package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// writeFile writes val to the control file dir/name. There is no O_CREAT:
// a missing control file must fail (ENOENT) rather than attempt a create.
// O_TRUNC is a no-op on cgroupfs but keeps plain files (tests) exact.
//
// Plain syscalls rather than package os: os.OpenFile tries each file on
// the runtime's poller and toggles O_NONBLOCK (four fcntl and an
// epoll_ctl per open), which the start path pays for every control file.
func writeFile(dir, name, val string) error {
	path := filepath.Join(dir, name)
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err == nil {
		err = writeAll(fd, val)
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("write %s=%q: %w", path, val, err)
	}
	return nil
}

// writeAll writes val with one write(2), as the kernel's control files
// expect; a short write is an error.
func writeAll(fd int, val string) error {
	for {
		n, err := unix.Write(fd, []byte(val))
		if err == unix.EINTR {
			continue
		}
		if err == nil && n != len(val) {
			err = io.ErrShortWrite
		}
		return err
	}
}

// unwrapPath drops the *fs.PathError wrapper whose path is already in our
// message, keeping the errno for errors.Is.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readFile returns the content of dir/name without surrounding space
// (plain syscalls, as writeFile).
func readFile(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	b, err := readAll(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return string(bytes.TrimSpace(b)), nil
}

// readAll reads a whole file; control files report no size, so it reads
// until EOF into a buffer that grows as needed.
func readAll(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	b := make([]byte, 0, 512)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// parseUint parses a counter; "max" (v2) means unlimited and maps to
// math.MaxUint64. Negative values, which v1 prints for some limits, are
// clamped to 0.
func parseUint(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("parse %q: %w", s, err)
	}
	return v, nil
}

// readUint reads a single-value counter file.
func readUint(dir, name string) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	v, err := parseUint(s)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", filepath.Join(dir, name), err)
	}
	return v, nil
}

// parseKeyValues parses "key value" lines (memory.stat, cpu.stat, ...).
// Lines that do not have that shape are skipped.
func parseKeyValues(s string) map[string]uint64 {
	out := map[string]uint64{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		out[k] = n
	}
	return out
}

// readKeyValues reads a "key value" file.
func readKeyValues(dir, name string) (map[string]uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	return parseKeyValues(s), nil
}

// exists reports whether dir/name exists.
func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

// itoa formats a signed limit.
func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// utoa formats an unsigned limit.
func utoa(v uint64) string { return strconv.FormatUint(v, 10) }
