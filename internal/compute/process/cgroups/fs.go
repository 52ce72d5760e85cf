package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// writeFile writes val to the control file dir/name. There is no O_CREAT:
// a missing control file must fail (ENOENT) rather than attempt a create.
// O_TRUNC is a no-op on cgroupfs but keeps plain files (tests) exact.
func writeFile(dir, name, val string) error {
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err == nil {
		_, err = f.WriteString(val)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("write %s=%q: %w", path, val, unwrapPath(err))
	}
	return nil
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

// readFile returns the content of dir/name without surrounding space.
func readFile(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	return string(bytes.TrimSpace(b)), nil
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
