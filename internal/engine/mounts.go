package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/engine/volume"
	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/archive"
)

// Mounts: a container's -v, --mount, --tmpfs, --volumes-from and the
// image's VOLUMEs become one plan at create: OCI mounts for the spec, the
// mount points inspect shows, and the volumes to create on first use. The
// plan is recorded in the volume store (volume.Store.Attach) in the same
// transaction that creates missing volumes, so a volume in use cannot be
// removed and `rm -v` knows the anonymous volumes to remove.
//
//	source                         becomes
//	-v /host:/ctr[:opts]           bind (the host directory is made when missing, as Docker)
//	-v name:/ctr[:opts]            named volume, created on first use
//	-v /ctr, VOLUME, Config.Volumes anonymous volume (random name)
//	--mount type=bind              bind; the source must exist
//	--mount type=volume            named or (no source) anonymous volume
//	--mount type=tmpfs, --tmpfs    tmpfs
//	--volumes-from ctr[:ro|rw]     the other container's binds and volumes
//
// An empty volume mounted where the image has content gets a copy of it
// (unless nocopy), as Docker does.

// mountPlan is what planMounts resolved.
type mountPlan struct {
	specs  []specs.Mount
	points []container.MountPoint
	uses   []volume.Use
	// copyUp are the volume mounts to fill from the image: destination →
	// volume name.
	copyUp map[string]string
}

func (p *mountPlan) has(dest string) bool {
	for _, m := range p.points {
		if m.Destination == dest {
			return true
		}
	}
	return false
}

// add records one mount; a destination given twice is an error.
func (p *mountPlan) add(pt container.MountPoint, m specs.Mount, use *volume.Use, nocopy bool) error {
	if p.has(pt.Destination) {
		return fmt.Errorf("duplicate mount point: %s: %w", pt.Destination, errdefs.ErrInvalidArgument)
	}
	p.points = append(p.points, pt)
	p.specs = append(p.specs, m)
	if use != nil {
		p.uses = append(p.uses, *use)
		if !nocopy {
			p.copyUp[pt.Destination] = use.Name
		}
	}
	return nil
}

// checkDest checks and cleans a container path.
func checkDest(d string) (string, error) {
	if !path.IsAbs(d) {
		return "", fmt.Errorf("invalid mount config: mount path %q must be absolute: %w", d, errdefs.ErrInvalidArgument)
	}
	d = path.Clean(d)
	if d == "/" {
		return "", fmt.Errorf("invalid mount config: destination can't be '/': %w", errdefs.ErrInvalidArgument)
	}
	return d, nil
}

// bindOptions are the OCI options of a bind mount.
func bindOptions(recursive, ro bool, propagation string) []string {
	opts := []string{"rbind"}
	if !recursive {
		opts[0] = "bind"
	}
	if propagation == "" {
		propagation = string(mount.PropagationRPrivate)
	}
	opts = append(opts, propagation)
	if ro {
		opts = append(opts, "ro")
	}
	return opts
}

// bindMode is -v's third field: ro/rw, SELinux labels, propagation,
// nocopy.
type bindMode struct {
	ro, nocopy  bool
	propagation string
}

func parseBindMode(spec, mode string) (bindMode, error) {
	var m bindMode
	if mode == "" {
		return m, nil
	}
	for _, o := range strings.Split(mode, ",") {
		switch o {
		case "ro":
			m.ro = true
		case "rw":
			m.ro = false
		case "z", "Z":
			// No SELinux on silo's hosts: accepted, nothing to relabel.
		case "nocopy":
			m.nocopy = true
		case "shared", "rshared", "slave", "rslave", "private", "rprivate":
			m.propagation = o
		default:
			return m, fmt.Errorf("invalid mode %q in volume spec %q: %w", o, spec, errdefs.ErrInvalidArgument)
		}
	}
	return m, nil
}

// anonymousName is the name of a new anonymous volume.
func anonymousName() string { return newID() }

var anonymousLabels = map[string]string{volume.LabelAnonymous: ""}

// planMounts resolves the container's mounts. lookup finds the mount
// points of another container (--volumes-from).
func (s *Service) planMounts(cfg *container.Config, host *container.HostConfig, img *imagespec.ImageConfig, lookup func(ref string) ([]container.MountPoint, error)) (*mountPlan, error) {
	p := &mountPlan{copyUp: map[string]string{}}
	vols := s.features.vols
	volumeMount := func(name, dest string, ro bool, propagation string, labels map[string]string, nocopy bool, mode string) error {
		if err := volume.CheckName(name); err != nil {
			return err
		}
		pt := container.MountPoint{Type: mount.TypeVolume, Name: name, Source: vols.Path(name), Destination: dest,
			Driver: volume.DriverLocal, Mode: mode, RW: !ro, Propagation: mount.Propagation(propagation)}
		m := specs.Mount{Destination: dest, Type: "bind", Source: vols.Path(name), Options: bindOptions(true, ro, propagation)}
		return p.add(pt, m, &volume.Use{Name: name, Labels: labels}, nocopy)
	}
	for _, b := range host.Binds {
		parts := strings.Split(b, ":")
		var src, dst, mode string
		switch len(parts) {
		case 1:
			dst = parts[0]
		case 2:
			src, dst = parts[0], parts[1]
		case 3:
			src, dst, mode = parts[0], parts[1], parts[2]
		default:
			return nil, fmt.Errorf("invalid volume specification: %q: %w", b, errdefs.ErrInvalidArgument)
		}
		dest, err := checkDest(dst)
		if err != nil {
			return nil, fmt.Errorf("invalid volume specification %q: %w", b, err)
		}
		bm, err := parseBindMode(b, mode)
		if err != nil {
			return nil, err
		}
		switch {
		case src == "":
			err = volumeMount(anonymousName(), dest, bm.ro, "", anonymousLabels, bm.nocopy, mode)
		case path.IsAbs(src):
			src = path.Clean(src)
			// Docker makes a missing host directory for -v (not --mount).
			if _, serr := os.Lstat(src); errors.Is(serr, os.ErrNotExist) {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, fmt.Errorf("create bind source %s: %w", src, err)
				}
			}
			pt := container.MountPoint{Type: mount.TypeBind, Source: src, Destination: dest, Mode: mode, RW: !bm.ro,
				Propagation: mount.Propagation(stringOr(bm.propagation, string(mount.PropagationRPrivate)))}
			err = p.add(pt, specs.Mount{Destination: dest, Type: "bind", Source: src, Options: bindOptions(true, bm.ro, bm.propagation)}, nil, true)
		default:
			err = volumeMount(src, dest, bm.ro, bm.propagation, nil, bm.nocopy, mode)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, m := range host.Mounts {
		if err := s.planMount(p, m, volumeMount); err != nil {
			return nil, err
		}
	}
	tmpfs := make([]string, 0, len(host.Tmpfs))
	for d := range host.Tmpfs {
		tmpfs = append(tmpfs, d)
	}
	sort.Strings(tmpfs)
	for _, d := range tmpfs {
		dest, err := checkDest(d)
		if err != nil {
			return nil, err
		}
		opts := []string{"noexec", "nosuid", "nodev"}
		if o := host.Tmpfs[d]; o != "" {
			opts = append(opts, strings.Split(o, ",")...)
		}
		pt := container.MountPoint{Type: mount.TypeTmpfs, Destination: dest, Mode: host.Tmpfs[d], RW: !containsString(opts, "ro")}
		if err := p.add(pt, specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil, true); err != nil {
			return nil, err
		}
	}
	for _, vf := range host.VolumesFrom {
		ref, mode, _ := strings.Cut(vf, ":")
		if mode != "" && mode != "ro" && mode != "rw" {
			return nil, fmt.Errorf("invalid mode for volumes-from %q: %w", vf, errdefs.ErrInvalidArgument)
		}
		points, err := lookup(ref)
		if err != nil {
			return nil, fmt.Errorf("volumes-from %s: %w", ref, err)
		}
		for _, pt := range points {
			if pt.Type == mount.TypeTmpfs || p.has(pt.Destination) {
				continue
			}
			ro := !pt.RW
			if mode != "" {
				ro = mode == "ro"
			}
			switch pt.Type {
			case mount.TypeVolume:
				err = volumeMount(pt.Name, pt.Destination, ro, string(pt.Propagation), nil, true, pt.Mode)
			default:
				pt.RW = !ro
				err = p.add(pt, specs.Mount{Destination: pt.Destination, Type: "bind", Source: pt.Source,
					Options: bindOptions(true, ro, string(pt.Propagation))}, nil, true)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	// The image's VOLUMEs and Config.Volumes (docker run -v /path) not
	// covered above get anonymous volumes.
	var anon []string
	if img != nil {
		for d := range img.Volumes {
			anon = append(anon, d)
		}
	}
	for d := range cfg.Volumes {
		anon = append(anon, d)
	}
	sort.Strings(anon)
	for _, d := range anon {
		dest, err := checkDest(d)
		if err != nil {
			return nil, err
		}
		if p.has(dest) {
			continue
		}
		if err := volumeMount(anonymousName(), dest, false, "", anonymousLabels, false, ""); err != nil {
			return nil, err
		}
	}
	// Parents before children: /data before /data/logs.
	sort.SliceStable(p.specs, func(i, j int) bool { return depth(p.specs[i].Destination) < depth(p.specs[j].Destination) })
	return p, nil
}

func depth(p string) int { return strings.Count(path.Clean(p), "/") }

// planMount adds one --mount.
func (s *Service) planMount(p *mountPlan, m mount.Mount, volumeMount func(name, dest string, ro bool, propagation string, labels map[string]string, nocopy bool, mode string) error) error {
	dest, err := checkDest(m.Target)
	if err != nil {
		return err
	}
	switch m.Type {
	case mount.TypeBind:
		if m.VolumeOptions != nil || m.TmpfsOptions != nil {
			return fmt.Errorf("invalid mount config for type %q: only bind options apply: %w", m.Type, errdefs.ErrInvalidArgument)
		}
		if !path.IsAbs(m.Source) {
			return fmt.Errorf("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute: %w", m.Source, errdefs.ErrInvalidArgument)
		}
		if _, err := os.Stat(m.Source); err != nil {
			return fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s: %w", m.Source, errdefs.ErrInvalidArgument)
		}
		recursive, prop := true, ""
		if o := m.BindOptions; o != nil {
			recursive, prop = !o.NonRecursive, string(o.Propagation)
		}
		pt := container.MountPoint{Type: mount.TypeBind, Source: path.Clean(m.Source), Destination: dest, RW: !m.ReadOnly,
			Propagation: mount.Propagation(stringOr(prop, string(mount.PropagationRPrivate)))}
		return p.add(pt, specs.Mount{Destination: dest, Type: "bind", Source: pt.Source, Options: bindOptions(recursive, m.ReadOnly, prop)}, nil, true)
	case mount.TypeVolume:
		if m.BindOptions != nil || m.TmpfsOptions != nil {
			return fmt.Errorf("invalid mount config for type %q: only volume options apply: %w", m.Type, errdefs.ErrInvalidArgument)
		}
		var labels map[string]string
		nocopy := false
		if o := m.VolumeOptions; o != nil {
			if o.Subpath != "" {
				return fmt.Errorf("volume subpath %q: not supported: %w", o.Subpath, errdefs.ErrNotImplemented)
			}
			if o.DriverConfig != nil && (o.DriverConfig.Name != "" && o.DriverConfig.Name != volume.DriverLocal || len(o.DriverConfig.Options) > 0) {
				return fmt.Errorf("volume driver %q with options: only the local driver without options is available: %w", o.DriverConfig.Name, errdefs.ErrNotImplemented)
			}
			labels, nocopy = o.Labels, o.NoCopy
		}
		name := m.Source
		if name == "" {
			name, labels = anonymousName(), mergeLabels(labels, anonymousLabels)
		}
		return volumeMount(name, dest, m.ReadOnly, "", labels, nocopy, "z")
	case mount.TypeTmpfs:
		if m.Source != "" {
			return fmt.Errorf("invalid mount config for type \"tmpfs\": source must be empty: %w", errdefs.ErrInvalidArgument)
		}
		opts := []string{"noexec", "nosuid", "nodev"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		if o := m.TmpfsOptions; o != nil {
			if o.SizeBytes < 0 {
				return fmt.Errorf("invalid tmpfs size %d: %w", o.SizeBytes, errdefs.ErrInvalidArgument)
			}
			if o.SizeBytes > 0 {
				opts = append(opts, "size="+strconv.FormatInt(o.SizeBytes, 10))
			}
			if o.Mode != 0 {
				opts = append(opts, "mode="+strconv.FormatUint(uint64(unixMode(o.Mode)), 8))
			}
			for _, kv := range o.Options {
				if len(kv) == 1 && kv[0] == "exec" {
					opts = dropString(opts, "noexec")
					continue
				}
				return fmt.Errorf("tmpfs option %v: not supported: %w", kv, errdefs.ErrInvalidArgument)
			}
		}
		pt := container.MountPoint{Type: mount.TypeTmpfs, Destination: dest, RW: !m.ReadOnly}
		return p.add(pt, specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil, true)
	}
	return fmt.Errorf("mount type %q: not supported: %w", m.Type, errdefs.ErrNotImplemented)
}

// unixMode is the permission bits of m as chmod takes them.
func unixMode(m os.FileMode) uint32 {
	out := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func dropString(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// attachMounts records c's mount plan in the volume store (creating the
// volumes it names) and copies the image's content into empty volumes.
// rootfs is the container's mounted root. On error nothing stays
// recorded.
func (s *Service) attachMounts(ctx context.Context, id, rootfs string, p *mountPlan) error {
	if _, err := s.features.vols.Attach(ctx, id, p.uses, p.points); err != nil {
		return err
	}
	dests := make([]string, 0, len(p.copyUp))
	for d := range p.copyUp {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	for _, d := range dests {
		if err := s.copyUp(ctx, rootfs, d, s.features.vols.Path(p.copyUp[d])); err != nil {
			_, _ = s.features.vols.Detach(context.WithoutCancel(ctx), id, true)
			return fmt.Errorf("copy %s into its volume: %w", d, err)
		}
	}
	return nil
}

// copyUp copies the image's content at dest into an empty volume
// directory, through a tar stream: read inside the container's root
// (writeTarInRoot), written by the layer unpacker, which keeps the copy
// inside the volume whatever the image holds.
func (s *Service) copyUp(ctx context.Context, rootfs, dest, dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return nil // Docker copies into empty volumes only
	}
	// Only a directory is copied; a missing path is made by the runtime.
	src, err := openDirInRoot(rootfs, dest)
	if err != nil {
		return nil
	}
	var st unix.Stat_t
	err = unix.Fstat(int(src.Fd()), &st)
	src.Close()
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTarInRoot(ctx, pw, rootfs, dest, ".", true)) }()
	_, err = archive.Unpack(ctx, pr, dir, archive.Options{AllowDevices: true})
	pr.CloseWithError(err)
	if err != nil {
		return err
	}
	// The volume's root takes the image directory's owner and mode
	// (/tmp stays 1777), as Docker's copy does.
	if err := os.Lchown(dir, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return unix.Chmod(dir, st.Mode&0o7777)
}

// openDirInRoot opens p inside root when it is a directory.
func openDirInRoot(root, p string) (*os.File, error) {
	f, err := os.Open(root)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fd, err := resolveInRoot(int(f.Fd()), p, true)
	if err != nil {
		return nil, err
	}
	file := os.NewFile(uintptr(fd), p)
	fi, err := file.Stat()
	if err != nil || !fi.IsDir() {
		file.Close()
		return nil, fmt.Errorf("%s: not a directory", p)
	}
	return file, nil
}

// mountPointsOf returns a container's recorded mount points.
func (s *Service) mountPointsOf(id string) []container.MountPoint {
	mps, err := s.features.vols.Mounts(id)
	if err != nil {
		s.log.Warn("read mounts", "container", id, "err", err)
	}
	if mps == nil {
		mps = []container.MountPoint{}
	}
	return mps
}

// releaseMounts forgets a removed container's mounts; with
// removeAnonymous its anonymous volumes go too.
func (s *Service) releaseMounts(ctx context.Context, id string, removeAnonymous bool) {
	if _, err := s.features.vols.Detach(ctx, id, removeAnonymous); err != nil {
		s.log.Warn("release mounts", "container", id, "err", err)
	}
}

// stringOr is v, or def when v is empty.
func stringOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// mountPointsOfRef returns the mount points of the container ref names
// (--volumes-from).
func (s *Service) mountPointsOfRef(ref string) ([]container.MountPoint, error) {
	e, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	id := e.c.ID
	s.mu.Unlock()
	return s.features.vols.Mounts(id)
}

// sweepMounts forgets the mounts recorded for containers that do not
// exist (a Create that crashed after recording them), and removes the
// anonymous volumes made for them.
func (s *Service) sweepMounts(ctx context.Context, known map[string]bool) {
	ids, err := s.features.vols.Containers()
	if err != nil {
		s.log.Warn("list recorded mounts", "err", err)
		return
	}
	for _, id := range ids {
		if !known[id] {
			s.releaseMounts(ctx, id, true)
		}
	}
}
