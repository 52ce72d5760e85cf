package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// templateName is the file name of the formatted template image for size
// bytes. It carries a hash of the mkfs options, so that a change of the
// options never reuses an old template.
func templateName(size int64) string {
	return "ext4-" + strconv.FormatInt(size, 10) + "-" + mkfsHash() + ".img"
}

// mkfsHash is a short hash of the mkfs options.
func mkfsHash() string {
	h := sha256.Sum256([]byte(strings.Join(mkfsArgs, "\x00")))
	return hex.EncodeToString(h[:6])
}

// imageFromTemplate creates path as a sparse copy of the formatted template
// of that size in templateDir, formatting the template first if there is
// none. Concurrent callers may both format a template: each renames its
// own complete file into place and the last one wins, with the same
// content.
//
// Every image made from one template has the same ext4 UUID. The kernel
// does not mind (ext4 is never mounted by UUID here, and metadata
// checksums are per file system); blkid would list duplicates.
func imageFromTemplate(ctx context.Context, templateDir, path string, size int64) error {
	tpl := filepath.Join(templateDir, templateName(size))
	src, err := os.Open(tpl)
	if errors.Is(err, os.ErrNotExist) {
		if err = makeTemplate(ctx, tpl, size); err == nil {
			src, err = os.Open(tpl)
		}
	}
	if err != nil {
		return err
	}
	defer src.Close()
	if fi, err := src.Stat(); err != nil {
		return err
	} else if fi.Size() != size {
		return fmt.Errorf("template %s has %d bytes, want %d", tpl, fi.Size(), size)
	}

	dst, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = copySparse(dst, src, size)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy template %s to %s: %w", tpl, path, err)
	}
	return nil
}

// makeTemplate formats the template image tpl under a temporary name and
// renames it into place once complete and on disk.
func makeTemplate(ctx context.Context, tpl string, size int64) error {
	dir := filepath.Dir(tpl)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*.img")
	if err != nil {
		return err
	}
	name := tmp.Name()
	tmp.Close()
	defer os.Remove(name) // after a successful rename: ENOENT, ignored
	if err := os.Remove(name); err != nil {
		return err
	}
	if err := formatImage(ctx, name, size); err != nil {
		return fmt.Errorf("format template %s: %w", tpl, err)
	}
	if err := syncFile(name); err != nil {
		return err
	}
	if err := os.Rename(name, tpl); err != nil {
		return err
	}
	return syncDir(dir)
}

// copySparse copies the data segments of src (found with SEEK_DATA and
// SEEK_HOLE) into dst and leaves the holes as holes: a formatted 20 GiB
// image holds about 330 KiB of data.
func copySparse(dst, src *os.File, size int64) error {
	if err := dst.Truncate(size); err != nil {
		return err
	}
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	var off int64
	for off < size {
		data, err := unix.Seek(sfd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole left
		}
		if err != nil {
			return fmt.Errorf("SEEK_DATA: %w", err)
		}
		hole, err := unix.Seek(sfd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("SEEK_HOLE: %w", err)
		}
		for in, out := data, data; in < hole; {
			n, err := unix.CopyFileRange(sfd, &in, dfd, &out, int(hole-in), 0)
			if err != nil {
				return fmt.Errorf("copy_file_range: %w", err)
			}
			if n == 0 {
				return fmt.Errorf("copy_file_range: %w", io.ErrUnexpectedEOF)
			}
		}
		off = hole
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
