package sandbox

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// overlayMethod is how mountOverlay hands the layers to the kernel.
type overlayMethod int

const (
	// overlayFD: fsconfig(FSCONFIG_SET_FD, "lowerdir+") per layer and fds
	// for upperdir/workdir (Linux 6.13+). No limit on the number of
	// layers or on the length of a path, and the layers are resolved
	// when they are opened, by this process, with O_PATH.
	overlayFD overlayMethod = iota
	// overlayString: fsconfig(FSCONFIG_SET_STRING, "lowerdir+") per layer
	// (Linux 6.8+). No limit on the number of layers, but fsconfig
	// copies at most 255 bytes of a string, so each path must be shorter.
	overlayString
	// overlayLegacy: mount(2) with "lowerdir=a:b:c,upperdir=…,workdir=…".
	// The whole option string must fit in one page.
	overlayLegacy
)

func (m overlayMethod) String() string {
	return [...]string{"fsconfig-fd", "fsconfig-string", "mount-data"}[m]
}

// firstOverlayMethod is the method mountOverlay starts with; tests lower it
// to exercise the fallbacks.
var firstOverlayMethod = overlayFD

// lastOverlayMethod is the method of the last successful mount, for tests.
var lastOverlayMethod atomic.Int32

// fsconfigStringMax is the longest string FSCONFIG_SET_STRING accepts
// (strndup_user(value, 256) in fs/fsopen.c, the 256 counting the NUL).
const fsconfigStringMax = 255

// errUnsupported marks a method the running kernel does not offer: the next
// one is tried.
var errUnsupported = errors.New("not supported by this kernel")

// mountOverlay mounts an overlay at target. lowers are top-most first, as
// in layerchain.json and overlay's own lowerdir order. It tries the
// methods from firstOverlayMethod down and stops at the first one the
// kernel supports; a real error (a missing layer, EPERM) is returned as is.
func mountOverlay(target string, lowers []string, upper, work string) error {
	var errs []error
	for m := firstOverlayMethod; m <= overlayLegacy; m++ {
		var err error
		switch m {
		case overlayFD, overlayString:
			err = mountOverlayFsconfig(m, target, lowers, upper, work)
		case overlayLegacy:
			err = mountOverlayLegacy(target, lowers, upper, work)
		}
		if err == nil {
			lastOverlayMethod.Store(int32(m))
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m, err))
		if !errors.Is(err, errUnsupported) {
			break
		}
	}
	return fmt.Errorf("mount overlay %s: %w", target, errors.Join(errs...))
}

// mountOverlayFsconfig builds the overlay with the new mount API: fsopen,
// fsconfig per option, FSCONFIG_CMD_CREATE, fsmount, move_mount. An
// EINVAL on the first "lowerdir+" means the kernel lacks that parameter
// (or, for overlayFD, fd values): errUnsupported.
func mountOverlayFsconfig(m overlayMethod, target string, lowers []string, upper, work string) error {
	if m == overlayString {
		for _, p := range append([]string{upper, work}, lowers...) {
			if len(p) > fsconfigStringMax {
				return fmt.Errorf("path %s longer than %d bytes: %w", p, fsconfigStringMax, errUnsupported)
			}
		}
	}
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			err = errors.Join(err, errUnsupported)
		}
		return fmt.Errorf("fsopen: %w", err)
	}
	defer unix.Close(fsfd)

	set := func(key, path string) error {
		if m == overlayString {
			if err := unix.FsconfigSetString(fsfd, key, path); err != nil {
				return fmt.Errorf("fsconfig %s=%s: %w", key, path, err)
			}
			return nil
		}
		fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		defer unix.Close(fd)
		if err := unix.FsconfigSetFd(fsfd, key, fd); err != nil {
			return fmt.Errorf("fsconfig %s=fd(%s): %w", key, path, err)
		}
		return nil
	}
	for i, l := range lowers {
		if err := set("lowerdir+", l); err != nil {
			if i == 0 && errors.Is(err, unix.EINVAL) {
				err = errors.Join(err, errUnsupported)
			}
			return err
		}
	}
	if err := set("upperdir", upper); err != nil {
		return err
	}
	if err := set("workdir", work); err != nil {
		return err
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("fsconfig create: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd) // a detached mount that is never attached vanishes with its fd
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount to %s: %w", target, err)
	}
	return nil
}

// mountOverlayLegacy mounts with mount(2). overlay splits the option string
// on ',' and lowerdir on ':', both honouring a backslash escape.
func mountOverlayLegacy(target string, lowers []string, upper, work string) error {
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`)
	var b strings.Builder
	b.WriteString("lowerdir=")
	for i, l := range lowers {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(esc.Replace(l))
	}
	b.WriteString(",upperdir=" + esc.Replace(upper) + ",workdir=" + esc.Replace(work))
	data := b.String()
	if page := os.Getpagesize(); len(data) >= page {
		return fmt.Errorf("%d layers need %d bytes of mount options, more than one page (%d): %w",
			len(lowers), len(data), page, unix.E2BIG)
	}
	if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
		return fmt.Errorf("mount(2) overlay: %w", err)
	}
	return nil
}
