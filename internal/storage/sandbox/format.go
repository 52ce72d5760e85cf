package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// mkfsArgs are the mkfs.ext4 options of a sandbox image, each chosen for
// create time and host disk use (measured on a 20 GiB image: 7–9 ms and
// 328 KiB allocated, against 18 ms and 132 MiB with the defaults):
//
//	-b 4096                    matches the loop device's logical block size
//	                           (direct I/O), also for images under 512 MiB
//	                           where mke2fs would pick 1 KiB blocks
//	-m 0                       no blocks reserved for root: the container
//	                           gets the whole size it asked for
//	-O ^resize_inode           no GDT reserve (4 MiB written for 20 GiB);
//	                           online growth still works through meta_bg
//	lazy_itable_init=0         with discard on (the default) mke2fs punches
//	                           the whole file, knows it reads back as zeros
//	                           and marks every inode table zeroed, so the
//	                           kernel's ext4lazyinit thread never writes
//	                           (otherwise ~320 MiB per 20 GiB image)
//	lazy_journal_init=1        the journal stays a hole until written
//
// The journal is kept: an unclean host shutdown must not cost the
// container its files; it costs nothing to create.
var mkfsArgs = []string{
	"-q", "-F", "-t", "ext4", "-b", strconv.Itoa(loopBlockSize), "-m", "0",
	"-O", "^resize_inode", "-E", "lazy_itable_init=0,lazy_journal_init=1",
	"-L", "silo-sandbox",
}

// mkfsPath finds mkfs.ext4 (or mke2fs), looking in the sbin directories
// too: they are often missing from a daemon's PATH.
func mkfsPath() (string, error) {
	for _, name := range []string{"mkfs.ext4", "mke2fs"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
			p := dir + "/" + name
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return p, nil
			}
		}
	}
	return "", errors.New("mkfs.ext4 not found (install e2fsprogs)")
}

// formatImage creates path as a sparse file of size bytes and formats it
// ext4. path must not exist.
func formatImage(ctx context.Context, path string, size int64) error {
	mkfs, err := mkfsPath()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, mkfs, append(mkfsArgs, path)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", mkfs, err, strings.TrimSpace(out.String()))
	}
	return nil
}
