package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Spares are sandboxes made ahead of time: complete, on disk, with their
// image copied from the template, only without a layer chain. Create
// takes one when there is one of the size it needs (a rename and one
// small file: about a millisecond) instead of making the directories, the
// metadata and the image copy on the caller's path (several fsyncs:
// several milliseconds). The caller refills them in the background with
// MakeSpare. They live in TemplateDir/spares, one directory each, named
// after their template (so a change of size or mkfs options never
// reuses them).
const sparesDir = "spares"

// spareTmpPrefix marks a spare being made: a crash leaves it half made,
// and CleanSpares deletes it.
const spareTmpPrefix = ".tmp-"

// spareKey is the name prefix of the spares of one size.
func spareKey(size int64) string {
	return strings.TrimSuffix(templateName(size), ".img") + "."
}

// takeSpare moves a spare of size bytes to dir. It returns an error
// wrapping errdefs.ErrNotFound when there is none, errdefs.ErrAlreadyExists
// when dir exists.
func takeSpare(templateDir string, size int64, dir string) error {
	spares := filepath.Join(templateDir, sparesDir)
	ents, err := os.ReadDir(spares)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	key := spareKey(size)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), key) {
			continue
		}
		// NOREPLACE: a plain rename would replace an empty directory at
		// dir, where Create must fail.
		err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(spares, e.Name()), unix.AT_FDCWD, dir, unix.RENAME_NOREPLACE)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EEXIST):
			return errdefs.ErrAlreadyExists
		case errors.Is(err, unix.ENOENT):
			continue // taken by a concurrent Create
		default:
			return fmt.Errorf("take spare %s: %w", e.Name(), err)
		}
	}
	return fmt.Errorf("no spare sandbox of %d bytes: %w", size, errdefs.ErrNotFound)
}

// SpareCount returns how many spares of size bytes (0: DefaultSize) are
// ready in templateDir.
func SpareCount(templateDir string, size int64) int {
	size, err := checkSize(size)
	if err != nil {
		return 0
	}
	key := spareKey(size)
	ents, _ := os.ReadDir(filepath.Join(templateDir, sparesDir))
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), key) {
			n++
		}
	}
	return n
}

// MakeSpare makes one spare of size bytes (0: DefaultSize) in templateDir,
// formatting the template first if there is none.
func MakeSpare(ctx context.Context, templateDir string, size int64) error {
	size, err := checkSize(size)
	if err != nil {
		return fmt.Errorf("make spare sandbox: %w", err)
	}
	spares := filepath.Join(templateDir, sparesDir)
	if err := os.MkdirAll(spares, 0o700); err != nil {
		return fmt.Errorf("make spare sandbox: %w", err)
	}
	name := strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(os.Getpid())
	tmp := filepath.Join(spares, spareTmpPrefix+name)
	if err := prepare(ctx, tmp, size, templateDir, nil); err != nil {
		return fmt.Errorf("make spare sandbox: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(spares, spareKey(size)+name)); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("make spare sandbox: %w", err)
	}
	if err := syncDir(spares); err != nil {
		return fmt.Errorf("make spare sandbox: %w", err)
	}
	return nil
}

// CleanSpares deletes what no Create will take from templateDir: spares a
// crash left half made, and spares of templates made with other mkfs
// options. Call it before any Create or MakeSpare with templateDir runs.
func CleanSpares(templateDir string) error {
	spares := filepath.Join(templateDir, sparesDir)
	ents, err := os.ReadDir(spares)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clean spare sandboxes: %w", err)
	}
	// Every current key ends in the hash of today's mkfs options.
	current := "-" + mkfsHash() + "."
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), spareTmpPrefix) || !strings.Contains(e.Name(), current) {
			if err := os.RemoveAll(filepath.Join(spares, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean spare sandboxes: %w", err)
	}
	return nil
}

// checkSize returns the size Create makes for size: DefaultSize for 0,
// rounded up to the loop block size; below MinSize is an error.
func checkSize(size int64) (int64, error) {
	if size == 0 {
		size = DefaultSize
	}
	if size < MinSize {
		return 0, fmt.Errorf("size %d below the minimum %d: %w", size, MinSize, errdefs.ErrInvalidArgument)
	}
	return (size + loopBlockSize - 1) &^ (loopBlockSize - 1), nil
}
