package build

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage/archive"
	"github.com/silo-containers/silo/internal/storage/archive/compression"
)

// copyArgs is a COPY or ADD after expansion.
type copyArgs struct {
	cmd          string // "COPY" or "ADD"
	sd           instructions.SourcesAndDest
	from         string
	chown, chmod string
	line         int
	add          bool
}

// source is one resolved source of a COPY/ADD.
type source struct {
	// host is the file or directory on the host ("" for inline data).
	host string
	// base is the name the source gets inside a destination directory.
	base string
	// ctxRel is the path relative to the context root (for .dockerignore
	// of a directory's children); "" outside the context.
	ctxRel  string
	inCtx   bool
	data    *string // heredoc content
	extract bool    // ADD of a local archive
}

// copyStep runs COPY or ADD: sources resolved and hashed, then (unless
// cached) written into a sandbox on the step image with the hardened
// unpacker, and the sandbox's diff committed.
func (r *run) copyStep(ctx context.Context, st *stage, cfg dockerspec.DockerOCIImageConfig, a copyArgs, env []string) error {
	if len(a.sd.SourcePaths) == 0 && len(a.sd.SourceContents) == 0 {
		return dockerfileError(fmt.Errorf("%s requires at least two arguments", a.cmd), a.line)
	}
	var mode *uint32
	if a.chmod != "" {
		m, err := strconv.ParseUint(a.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return dockerfileError(fmt.Errorf("invalid --chmod=%s: want an octal mode", a.chmod), a.line)
		}
		mm := uint32(m)
		mode = &mm
	}
	from := a.from
	if from != "" {
		var err error
		if from, err = r.expand(from, env); err != nil {
			return dockerfileError(err, a.line)
		}
	}

	var srcImage Image // COPY --from
	var srcRoot string
	if from != "" {
		if j, ok := r.stageRef(from, st.index); ok {
			srcImage = r.stages[j].img
		} else {
			img, err := r.bl.b.Image(ctx, from)
			if err != nil {
				return fmt.Errorf("COPY --from=%s: %w", from, err)
			}
			srcImage = img
		}
		if srcImage.ID == "" {
			return dockerfileError(fmt.Errorf("COPY --from=%s: the stage is empty (scratch)", from), a.line)
		}
	}

	var tmpFiles []string
	defer func() {
		for _, f := range tmpFiles {
			os.Remove(f)
		}
	}()
	var srcs []source
	wildcard := false
	inputs := sha256.New()
	if from == "" {
		for _, p := range a.sd.SourcePaths {
			if a.add && isURL(p) {
				s, err := r.download(ctx, p)
				if err != nil {
					return err
				}
				tmpFiles = append(tmpFiles, s.host)
				srcs = append(srcs, s)
				continue
			}
			if isURL(p) {
				return dockerfileError(fmt.Errorf("COPY cannot fetch %s: use ADD for URLs", p), a.line)
			}
			matched, wild, err := r.contextSources(p)
			if err != nil {
				return dockerfileError(err, a.line)
			}
			wildcard = wildcard || wild
			for _, m := range matched {
				m.extract = a.add && isArchive(m.host)
				srcs = append(srcs, m)
			}
		}
		for i := range a.sd.SourceContents {
			sc := a.sd.SourceContents[i]
			srcs = append(srcs, source{base: path.Base(sc.Path), data: &sc.Data})
		}
		for _, s := range srcs {
			if err := r.hashSource(inputs, s); err != nil {
				return err
			}
		}
	} else {
		fmt.Fprintf(inputs, "from %s %q\n", srcImage.ID, a.sd.SourcePaths)
	}

	dest := a.sd.DestPath
	destDir := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		wd := cfg.WorkingDir
		if wd == "" {
			wd = "/"
		}
		dest = path.Join(wd, dest)
	}
	dest = path.Clean(dest)
	if len(a.sd.SourcePaths)+len(a.sd.SourceContents) > 1 && !destDir {
		return dockerfileError(fmt.Errorf("when using %s with more than one source file, the destination must be a directory and end with a /", a.cmd), a.line)
	}
	srcList, _ := json.Marshal(a.sd.SourcePaths)
	createdBy := fmt.Sprintf("/bin/sh -c #(nop) %s %s file:%s in %s", a.cmd, string(srcList), hex.EncodeToString(inputs.Sum(nil)), dest)
	if from != "" {
		createdBy = fmt.Sprintf("/bin/sh -c #(nop) COPY --from=%s %s in %s", from, string(srcList), dest)
	}
	raw, _ := json.Marshal(cfg)
	key := Key(a.cmd, st.img.ID, createdBy, string(raw), hex.EncodeToString(inputs.Sum(nil)), a.chown, a.chmod, a.sd.DestPath)
	if img, ok := r.cached(ctx, key); ok {
		st.img = img
		return nil
	}

	if from != "" {
		sc, err := r.bl.b.NewContainer(ctx, ContainerConfig{Image: srcImage.ID})
		if err != nil {
			return err
		}
		defer r.removeContainer(ctx, sc)
		srcRoot = sc.Rootfs()
		for _, p := range a.sd.SourcePaths {
			matched, wild, err := rootSources(srcRoot, p)
			if err != nil {
				return dockerfileError(fmt.Errorf("COPY --from=%s: %w", from, err), a.line)
			}
			wildcard = wildcard || wild
			srcs = append(srcs, matched...)
		}
	}
	if (wildcard && len(srcs) > 1) && !destDir {
		return dockerfileError(fmt.Errorf("when using %s with more than one source file, the destination must be a directory and end with a /", a.cmd), a.line)
	}

	c, err := r.bl.b.NewContainer(ctx, ContainerConfig{Image: st.img.ID})
	if err != nil {
		return err
	}
	defer r.removeContainer(ctx, c)
	root := c.Rootfs()
	uid, gid, err := parseChown(root, a.chown)
	if err != nil {
		return dockerfileError(err, a.line)
	}
	if dst, ok, err := statInRoot(root, dest); err != nil {
		return fmt.Errorf("destination %s: %w", dest, err)
	} else if ok && dst.Mode&unix.S_IFMT == unix.S_IFDIR {
		destDir = true
	}
	w := &copyWriter{r: r, uid: uid, gid: gid, chown: a.chown != "", mode: mode, fromImage: from != ""}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := w.write(pw, srcs, dest, destDir, root)
		pw.CloseWithError(err)
		done <- err
	}()
	_, uerr := archive.Unpack(ctx, pr, root, archive.Options{AllowDevices: from != ""})
	pr.CloseWithError(errors.New("unpack ended"))
	if werr := <-done; werr != nil {
		return werr
	}
	if uerr != nil {
		return fmt.Errorf("write files into the image: %w", uerr)
	}
	img, err := c.Commit(ctx, cfg, createdBy, holderOf(key))
	if err != nil {
		return err
	}
	st.img = img
	return r.remember(key, img)
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

func hasWildcard(p string) bool { return strings.ContainsAny(p, "*?[") }

// contextSources resolves one source pattern in the context: containment
// checked, wildcards expanded, .dockerignore applied.
func (r *run) contextSources(p string) ([]source, bool, error) {
	rel, err := cleanContextPath(p)
	if err != nil {
		return nil, false, err
	}
	if !hasWildcard(rel) {
		host, err := resolveInContext(r.ctxDir, p)
		if err != nil {
			return nil, false, err
		}
		if _, err := os.Stat(host); err != nil || r.ignored.Excluded(rel) {
			return nil, false, fmt.Errorf("%s: no such file or directory in the build context (or excluded by .dockerignore): %w", p, errdefs.ErrInvalidArgument)
		}
		base := path.Base(rel)
		if rel == "" {
			base = ""
		}
		ctxRel, _ := filepath.Rel(r.ctxDir, host)
		return []source{{host: host, base: base, ctxRel: filepath.ToSlash(ctxRel), inCtx: true}}, false, nil
	}
	matches, err := filepath.Glob(filepath.Join(r.ctxDir, rel))
	if err != nil {
		return nil, true, fmt.Errorf("%s: %v: %w", p, err, errdefs.ErrInvalidArgument)
	}
	sort.Strings(matches)
	var out []source
	for _, m := range matches {
		mrel, err := filepath.Rel(r.ctxDir, m)
		if err != nil || r.ignored.Excluded(filepath.ToSlash(mrel)) {
			continue
		}
		host, err := resolveInContext(r.ctxDir, filepath.ToSlash(mrel))
		if err != nil {
			return nil, true, err
		}
		ctxRel, _ := filepath.Rel(r.ctxDir, host)
		out = append(out, source{host: host, base: filepath.Base(m), ctxRel: filepath.ToSlash(ctxRel), inCtx: true})
	}
	if len(out) == 0 {
		return nil, true, fmt.Errorf("%s: no source files were specified (nothing matches in the build context): %w", p, errdefs.ErrInvalidArgument)
	}
	return out, true, nil
}

// rootSources resolves a source pattern inside an image's root file
// system (symlinks stay inside it).
func rootSources(root, p string) ([]source, bool, error) {
	rel := strings.TrimLeft(path.Clean("/"+p), "/")
	if !hasWildcard(rel) {
		res, err := resolve(root, rel, false)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", p, err)
		}
		host := filepath.Join(root, res)
		if _, err := os.Lstat(host); err != nil {
			return nil, false, fmt.Errorf("%s: no such file or directory: %w", p, errdefs.ErrInvalidArgument)
		}
		base := path.Base(res)
		if res == "" {
			base = ""
		}
		return []source{{host: host, base: base}}, false, nil
	}
	matches, err := filepath.Glob(filepath.Join(root, rel))
	if err != nil {
		return nil, true, fmt.Errorf("%s: %v: %w", p, err, errdefs.ErrInvalidArgument)
	}
	var out []source
	for _, m := range matches {
		mrel, _ := filepath.Rel(root, m)
		res, err := resolve(root, filepath.ToSlash(mrel), false)
		if err != nil {
			return nil, true, err
		}
		out = append(out, source{host: filepath.Join(root, res), base: filepath.Base(m)})
	}
	if len(out) == 0 {
		return nil, true, fmt.Errorf("%s: no source files were specified: %w", p, errdefs.ErrInvalidArgument)
	}
	return out, true, nil
}

// walkSource calls fn for s and, for a directory, everything under it
// (lexical order, symlinks not followed), skipping what .dockerignore
// excludes. rel is "" for s itself.
func (r *run) walkSource(s source, fn func(rel, host string, fi fs.FileInfo) error) error {
	return filepath.WalkDir(s.host, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.host, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		if s.inCtx && rel != "" && r.ignored.Excluded(path.Join(s.ctxRel, rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if rel == "" && fi.Mode()&fs.ModeSymlink != 0 {
			// The source itself was resolved already: a top-level
			// symlink is followed (its target is in the context).
			if fi, err = os.Stat(p); err != nil {
				return err
			}
		}
		return fn(rel, p, fi)
	})
}

// hashSource adds the content and metadata of s (not times or owners,
// which COPY resets) to h.
func (r *run) hashSource(h io.Writer, s source) error {
	if s.data != nil {
		fmt.Fprintf(h, "inline %s %d %s\n", s.base, len(*s.data), *s.data)
		return nil
	}
	fmt.Fprintf(h, "src %s extract=%v\n", s.base, s.extract)
	return r.walkSource(s, func(rel, host string, fi fs.FileInfo) error {
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(host)
		}
		fmt.Fprintf(h, "%s %o %q\n", rel, uint32(fi.Mode()), link)
		if fi.Mode().IsRegular() {
			f, err := os.Open(host)
			if err != nil {
				return err
			}
			defer f.Close()
			fh := sha256.New()
			if _, err := io.Copy(fh, f); err != nil {
				return err
			}
			fmt.Fprintf(h, "%x\n", fh.Sum(nil))
		}
		return nil
	})
}

// copyWriter writes the tar stream of a COPY/ADD, names relative to the
// image root.
type copyWriter struct {
	r         *run
	uid, gid  int
	chown     bool
	mode      *uint32
	fromImage bool
}

func (w *copyWriter) write(out io.Writer, srcs []source, dest string, destDir bool, root string) error {
	tw := tar.NewWriter(out)
	destRel := strings.TrimLeft(dest, "/")
	for _, s := range srcs {
		var target string
		switch {
		case s.data != nil:
			target = destRel
			if destDir {
				target = path.Join(destRel, s.base)
			}
			mode := int64(0o644)
			if w.mode != nil {
				mode = int64(*w.mode)
			}
			hdr := &tar.Header{Name: target, Typeflag: tar.TypeReg, Mode: mode, Uid: w.uid, Gid: w.gid,
				Size: int64(len(*s.data)), ModTime: time.Now(), Format: tar.FormatPAX}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if _, err := io.WriteString(tw, *s.data); err != nil {
				return err
			}
			continue
		case s.extract:
			if err := w.extract(tw, s, destRel); err != nil {
				return err
			}
			continue
		}
		fi, err := os.Stat(s.host)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			target = destRel
		} else if destDir {
			target = path.Join(destRel, s.base)
		} else {
			target = destRel
		}
		_, destExists, _ := statInRoot(root, "/"+target)
		err = w.r.walkSource(s, func(rel, host string, fi fs.FileInfo) error {
			name := path.Join(target, rel)
			if rel == "" && fi.IsDir() && destExists {
				return nil // an existing destination keeps its attributes
			}
			return w.entry(tw, name, host, fi)
		})
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// entry writes one file of a source.
func (w *copyWriter) entry(tw *tar.Writer, name, host string, fi fs.FileInfo) error {
	if name == "" {
		return nil // the image root keeps its attributes
	}
	for _, c := range strings.Split(name, "/") {
		if strings.HasPrefix(c, archive.WhiteoutPrefix) {
			return fmt.Errorf("%s: names starting with %q are reserved for layer whiteouts: %w", name, archive.WhiteoutPrefix, errdefs.ErrInvalidArgument)
		}
	}
	hdr := &tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), Uid: w.uid, Gid: w.gid, ModTime: fi.ModTime(), Format: tar.FormatPAX}
	if fi.Mode()&fs.ModeSetuid != 0 {
		hdr.Mode |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		hdr.Mode |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	if w.mode != nil && fi.Mode()&fs.ModeSymlink == 0 {
		hdr.Mode = int64(*w.mode)
	}
	switch {
	case fi.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		return tw.WriteHeader(hdr)
	case fi.Mode()&fs.ModeSymlink != 0:
		link, err := os.Readlink(host)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, link
		return tw.WriteHeader(hdr)
	case fi.Mode().IsRegular():
		f, err := os.Open(host)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		n, err := io.Copy(tw, io.LimitReader(f, hdr.Size))
		if err != nil {
			return err
		}
		if n != hdr.Size {
			return fmt.Errorf("%s: changed while copied", host)
		}
		return nil
	case fi.Mode()&fs.ModeNamedPipe != 0:
		hdr.Typeflag = tar.TypeFifo
		return tw.WriteHeader(hdr)
	case fi.Mode()&fs.ModeDevice != 0 && w.fromImage:
		var st unix.Stat_t
		if err := unix.Lstat(host, &st); err != nil {
			return err
		}
		hdr.Typeflag = tar.TypeBlock
		if fi.Mode()&fs.ModeCharDevice != 0 {
			hdr.Typeflag = tar.TypeChar
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		return tw.WriteHeader(hdr)
	}
	return nil // sockets (and devices in a context, which cannot be there)
}

// extract re-emits the entries of a local archive (ADD) under destRel.
// Names stay contained: the unpacker refuses ".." and resolves every path
// inside the image root.
func (w *copyWriter) extract(tw *tar.Writer, s source, destRel string) error {
	f, err := os.Open(s.host)
	if err != nil {
		return err
	}
	defer f.Close()
	dr, _, err := compression.Decompress(f)
	if err != nil {
		return err
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ADD %s: %w", s.base, err)
		}
		name, err := archive.CleanName(hdr.Name)
		if err != nil {
			return fmt.Errorf("ADD %s: entry %q: %w", s.base, hdr.Name, err)
		}
		for _, c := range strings.Split(name, "/") {
			if strings.HasPrefix(c, archive.WhiteoutPrefix) {
				return fmt.Errorf("ADD %s: entry %q: whiteout names are not allowed: %w", s.base, hdr.Name, errdefs.ErrInvalidArgument)
			}
		}
		if name == "" && hdr.Typeflag == tar.TypeDir {
			continue
		}
		hdr.Name = path.Join(destRel, name)
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		if hdr.Typeflag == tar.TypeLink {
			ln, err := archive.CleanName(hdr.Linkname)
			if err != nil {
				return fmt.Errorf("ADD %s: entry %q: %w", s.base, hdr.Name, err)
			}
			hdr.Linkname = path.Join(destRel, ln)
		}
		if w.chown {
			hdr.Uid, hdr.Gid = w.uid, w.gid
		}
		hdr.Uname, hdr.Gname = "", ""
		if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
			return fmt.Errorf("ADD %s: entry %q: device nodes are not allowed: %w", s.base, hdr.Name, errdefs.ErrInvalidArgument)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeGNUSparse {
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
		}
	}
}

// isArchive reports whether the file is a tar (plain, gzip or zstd), which
// ADD unpacks.
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	dr, _, err := compression.Decompress(bufio.NewReader(f))
	if err != nil {
		return false
	}
	defer dr.Close()
	_, err = tar.NewReader(dr).Next()
	return err == nil
}

// download fetches an ADD URL into the work directory. The file keeps the
// last segment of the URL's path as its name and gets mode 0600, as docker
// does.
func (r *run) download(ctx context.Context, rawURL string) (source, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return source{}, fmt.Errorf("ADD %s: %v: %w", rawURL, err, errdefs.ErrInvalidArgument)
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		name = "download"
	}
	client := r.opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: downloadTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return source{}, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	fmt.Fprintf(r.out, "Downloading %s\n", rawURL)
	resp, err := client.Do(req)
	if err != nil {
		return source{}, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return source{}, fmt.Errorf("ADD %s: got HTTP status %s: %w", rawURL, resp.Status, errdefs.ErrInvalidArgument)
	}
	f, err := os.CreateTemp(r.bl.work, "download-")
	if err != nil {
		return source{}, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	_, cerr := io.Copy(f, resp.Body)
	f.Chmod(0o600)
	if err := errors.Join(cerr, f.Close()); err != nil {
		os.Remove(f.Name())
		return source{}, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		os.Chtimes(f.Name(), lm, lm)
	}
	return source{host: f.Name(), base: name}, nil
}

// parseChown resolves --chown=user[:group] against the image's
// /etc/passwd and /etc/group. Without a group the gid is the uid's number,
// as docker documents.
func parseChown(root, spec string) (int, int, error) {
	if spec == "" {
		return 0, 0, nil
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	uid, err := lookupID(root, "/etc/passwd", user)
	if err != nil {
		return 0, 0, fmt.Errorf("--chown=%s: user %s: %w", spec, user, err)
	}
	gid := uid
	if hasGroup {
		if gid, err = lookupID(root, "/etc/group", group); err != nil {
			return 0, 0, fmt.Errorf("--chown=%s: group %s: %w", spec, group, err)
		}
	}
	return uid, gid, nil
}

// lookupID turns a name or number into an id through a passwd-style
// file of the image (read inside the root).
func lookupID(root, file, name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("negative id")
		}
		return n, nil
	}
	rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(rfd)
	fd, err := openInRoot(rfd, strings.TrimPrefix(file, "/"), unix.O_RDONLY)
	if err != nil {
		return 0, fmt.Errorf("no %s in the image: %w", file, errdefs.ErrInvalidArgument)
	}
	f := os.NewFile(uintptr(fd), file)
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ":")
		if len(parts) >= 3 && parts[0] == name {
			n, err := strconv.Atoi(parts[2])
			if err != nil {
				return 0, fmt.Errorf("bad entry in %s: %w", file, errdefs.ErrInvalidArgument)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("not found in the image's %s: %w", file, errdefs.ErrInvalidArgument)
}
