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
)

// loopBlockSize is the logical block size of the loop device and the ext4
// block size: with direct I/O the loop device must not issue requests
// smaller than the backing file system's block.
const loopBlockSize = 4096

// attachLoop binds image to a free loop device with LOOP_CONFIGURE (one
// ioctl, no window in which the device is bound but unconfigured) and
// returns an open fd of the device and its path.
//
// The device is configured with LO_FLAGS_AUTOCLEAR: the kernel unbinds it
// on the last close. The caller mounts the device and then closes the fd,
// so the mount is what keeps it bound; if the mount fails or this process
// dies first, the close unbinds it. A loop device can therefore never
// outlive both the mount and this process.
//
// Direct I/O keeps the container's data out of the page cache twice
// (once for the ext4 in the image, once for the image file); when the
// backing file system refuses it, attachLoop retries without.
func attachLoop(image string) (fd int, dev string, err error) {
	img, err := os.OpenFile(image, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("attach loop device: %w", err)
	}
	defer img.Close() // the loop device holds its own reference

	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("attach loop device: %w", err)
	}
	defer ctl.Close()

	flags := uint32(unix.LO_FLAGS_AUTOCLEAR | unix.LO_FLAGS_DIRECT_IO)
	// Another process may take the free device between GET_FREE and
	// CONFIGURE (EBUSY); ask again.
	for attempt := 0; attempt < 64; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return -1, "", fmt.Errorf("attach loop device: LOOP_CTL_GET_FREE: %w", err)
		}
		dev = "/dev/loop" + strconv.Itoa(n)
		fd, err = unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, "", fmt.Errorf("attach loop device: open %s: %w", dev, err)
		}
		cfg := unix.LoopConfig{Fd: uint32(img.Fd()), Size: loopBlockSize}
		cfg.Info.Flags = flags
		copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], image)
		err = unix.IoctlLoopConfigure(fd, &cfg)
		if err == nil {
			return fd, dev, nil
		}
		unix.Close(fd)
		switch {
		case errors.Is(err, unix.EBUSY):
			continue
		case errors.Is(err, unix.EINVAL) && flags&unix.LO_FLAGS_DIRECT_IO != 0:
			flags &^= unix.LO_FLAGS_DIRECT_IO
			continue
		default:
			return -1, "", fmt.Errorf("attach loop device: LOOP_CONFIGURE %s: %w", dev, err)
		}
	}
	return -1, "", fmt.Errorf("attach loop device: no free loop device after 64 attempts: %w", unix.EBUSY)
}

// findLoops returns the loop devices (as /dev/loopN) whose backing file is
// image, read from /sys/block/loop*/loop/backing_file. The kernel appends
// " (deleted)" when the file was unlinked while bound.
func findLoops(image string) ([]string, error) {
	ents, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		return nil, err
	}
	var devs []string
	for _, p := range ents {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // unbound between the glob and the read
		}
		bf := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), " (deleted)")
		if bf == image {
			devs = append(devs, "/dev/"+filepath.Base(filepath.Dir(filepath.Dir(p))))
		}
	}
	return devs, nil
}

// errDetachPending is wrapped by detachLoops's error when every device
// left is marked to unbind at its last close: something still holds the
// file system on it — typically the copy of the host's mounts a starting
// container's mount namespace holds until its pivot_root, which a loaded
// machine can stretch past the wait. The device goes by itself; a sandbox
// being removed can go on, one about to be mounted again must not (two
// superblocks on one image would corrupt it).
var errDetachPending = errors.New("loop device unbinds at its last close")

// How long detachLoops waits for a device to go (see there).
const (
	unmountWait = 2 * time.Second
	mountWait   = 30 * time.Second
)

// boundTo returns those of devs (/dev/loopN) whose backing file is image.
func boundTo(devs []string, image string) []string {
	var out []string
	for _, dev := range devs {
		b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop", "backing_file"))
		if err != nil {
			continue // not bound (or no such device)
		}
		if strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), " (deleted)") == image {
			out = append(out, dev)
		}
	}
	return out
}

// detachLoops unbinds the loop devices still backed by image and waits
// until the kernel has let go of them: among candidates (the devices the
// sandbox knows it used) or, with nil candidates, among every loop device
// of the host — a scan whose cost grows with the number of loop devices
// the host has ever allocated, kept for repairs and tests. LOOP_CLR_FD on
// a device that is still open (a mount, a stray opener) only marks it for
// unbinding at the last close; such a device is reported as an error
// after the wait (at most wait, or until ctx ends).
//
// The last close can come late: the mounts of a container's dead mount
// namespace are released by the kernel's deferred work, and an ext4
// superblock is written out before its device goes, which under heavy I/O
// takes seconds. Unmount and Remove wait briefly (unmountWait) and let
// such a device go on its own; Mount must not use the image before it
// has gone and waits longer (mountWait).
func detachLoops(ctx context.Context, image string, candidates []string, wait time.Duration) error {
	find := func() ([]string, error) {
		if candidates == nil {
			return findLoops(image)
		}
		return boundTo(candidates, image), nil
	}
	devs, err := find()
	if err != nil || len(devs) == 0 {
		return err
	}
	for _, dev := range devs {
		fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		err = unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
		unix.Close(fd)
		if err != nil && !errors.Is(err, unix.ENXIO) {
			return fmt.Errorf("detach %s: LOOP_CLR_FD: %w", dev, err)
		}
	}
	deadline := time.Now().Add(wait)
	for {
		devs, err = find()
		if err != nil || len(devs) == 0 {
			return err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if allAutoclear(devs) {
				return fmt.Errorf("detach %s: still bound to %s: %w", strings.Join(devs, ","), image, errDetachPending)
			}
			return fmt.Errorf("detach %s: still bound to %s: %w", strings.Join(devs, ","), image, unix.EBUSY)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// allAutoclear reports whether every device is marked to unbind at its
// last close.
func allAutoclear(devs []string) bool {
	for _, dev := range devs {
		b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop", "autoclear"))
		if err != nil || strings.TrimSpace(string(b)) != "1" {
			return false
		}
	}
	return true
}
