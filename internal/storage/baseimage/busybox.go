// Package baseimage builds base images offline, from files on this host,
// for users without internet: busybox:latest from Debian's busybox-static
// (busybox.go), and debian:SUITE made with debootstrap from the host's
// Debian mirror (debian.go).
//
// Seam: it hands a rootfs tarball to storage.Store.Import (busybox) or a
// directory to storage.Store.Commit (debian); it knows nothing of the
// store's layout.
package baseimage

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/storage"
)

// DefaultBusybox is where Debian's busybox-static installs the binary.
const DefaultBusybox = "/bin/busybox"

// Busybox imports a busybox image built from the static binary at bin
// (DefaultBusybox when empty) as ref ("busybox:latest" when empty). The
// image is reproducible: every time comes from the binary's mtime, so the
// same binary gives the same image ID.
func Busybox(ctx context.Context, s *storage.Store, bin, ref string) (storage.ImageInfo, error) {
	if bin == "" {
		bin = DefaultBusybox
	}
	if ref == "" {
		ref = "busybox:latest"
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return storage.ImageInfo{}, fmt.Errorf("busybox image: %w", err)
	}
	applets, err := listApplets(ctx, bin)
	if err != nil {
		return storage.ImageInfo{}, fmt.Errorf("busybox image: %w", err)
	}
	mtime := fi.ModTime().UTC().Truncate(time.Second)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeRootfs(pw, bin, fi.Size(), applets, mtime)) }()
	info, err := s.Import(ctx, pr, ref, storage.ImportOptions{
		Created: mtime,
		Comment: "busybox from " + bin,
		Config: ocispec.ImageConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: []string{"sh"},
		},
	})
	pr.CloseWithError(err)
	if err != nil {
		return storage.ImageInfo{}, fmt.Errorf("busybox image: %w", err)
	}
	return info, nil
}

// listApplets asks the binary for its applets as install paths ("bin/ls",
// "usr/bin/wc"…).
func listApplets(ctx context.Context, bin string) ([]string, error) {
	out, err := exec.CommandContext(ctx, bin, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", bin, err)
	}
	var applets []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.Trim(strings.TrimSpace(l), "/")
		if l != "" && l != "bin/busybox" && !strings.Contains(l, "..") {
			applets = append(applets, l)
		}
	}
	sort.Strings(applets)
	return applets, nil
}

func writeRootfs(w io.Writer, bin string, size int64, applets []string, mtime time.Time) error {
	tw := tar.NewWriter(w)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: mtime})
	}
	file := func(name, body string, mode int64) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: mtime}); err != nil {
			return err
		}
		_, err := io.WriteString(tw, body)
		return err
	}
	dirs := map[string]bool{}
	for _, d := range []string{"bin", "dev", "etc", "home", "proc", "root", "sys", "usr", "usr/bin", "usr/sbin", "sbin", "var", "var/spool", "var/spool/mail", "var/www"} {
		dirs[d] = true
	}
	for _, a := range applets {
		for d := path.Dir(a); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	names := make([]string, 0, len(dirs))
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		mode := int64(0o755)
		if d == "root" {
			mode = 0o700
		}
		if err := dir(d, mode); err != nil {
			return err
		}
	}
	if err := dir("tmp", 0o1777); err != nil {
		return err
	}
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: size, ModTime: mtime}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, size); err != nil {
		return err
	}
	for _, a := range applets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: a, Linkname: "/bin/busybox", Mode: 0o777, ModTime: mtime}); err != nil {
			return err
		}
	}
	files := []struct {
		name, body string
		mode       int64
	}{
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nbin:x:2:2:bin:/bin:/bin/false\nsys:x:3:3:sys:/dev:/bin/false\nsync:x:4:100:sync:/bin:/bin/sync\nmail:x:8:8:mail:/var/spool/mail:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\noperator:x:37:37:Operator:/var:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n", 0o644},
		{"etc/group", "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\nwheel:x:10:root\nmail:x:12:\nwww-data:x:33:\nusers:x:100:\nnogroup:x:65534:\n", 0o644},
		{"etc/hostname", "busybox\n", 0o644},
		{"etc/shadow", "root:*:10933:0:99999:7:::\nnobody:*:10933:0:99999:7:::\n", 0o640},
	}
	for _, f := range files {
		if err := file(f.name, f.body, f.mode); err != nil {
			return err
		}
	}
	return tw.Close()
}
