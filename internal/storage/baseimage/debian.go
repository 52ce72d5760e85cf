package baseimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/storage"
	"github.com/silo-containers/silo/internal/storage/image"
)

// Defaults of a Debian build.
const (
	// DefaultSuite is the Debian release built when none is named.
	DefaultSuite = "bookworm"
	// FallbackMirror is used when the host's apt sources name no Debian
	// archive.
	FallbackMirror = "http://deb.debian.org/debian"
	// imagePath is the PATH of the image, as in Docker's debian images.
	imagePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// DebianOptions describe the image Debian makes.
type DebianOptions struct {
	// Suite is the release (DefaultSuite when empty).
	Suite string
	// Include lists packages added to the minbase set (debootstrap
	// --include): containers have no uplink, so what a build needs (gcc)
	// must be in the image.
	Include []string
	// Mirror is the archive (DefaultMirror when empty).
	Mirror string
	// Ref names the image ("debian:SUITE" when empty).
	Ref string
	// TmpDir is where the tree is made, on the store's file system (the
	// daemon's data root); each build uses a directory of its own inside
	// it and removes it.
	TmpDir string
	// Debootstrap is the program to run (found in PATH when empty).
	Debootstrap string
	// Unmount lists directories whose mounts debootstrap's mount
	// namespace drops before debootstrap runs: the daemon's data and exec
	// roots, where container sandboxes are mounted. The namespace starts
	// as a private copy of the host's mounts, and a copy of a sandbox's
	// file system would keep it (and its loop device) busy for the whole
	// build, after the container's own unmount. With Unmount set, every
	// overlay and loop-device mount goes too (other daemons' and other
	// engines' containers), except those TmpDir lies on.
	Unmount []string
	// Progress receives debootstrap's output, line by line; nil discards.
	Progress io.Writer
}

var (
	// suiteRE is a Debian suite or codename ("bookworm", "stable",
	// "bookworm-backports").
	suiteRE = regexp.MustCompile(`^[a-z][a-z0-9.-]{0,63}$`)
	// packageRE is a Debian package name (Debian Policy §5.6.1).
	packageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
)

// normalize fills the defaults of o and checks every field, so a bad
// request fails before a minute of debootstrap.
func (o *DebianOptions) normalize() error {
	if o.Suite == "" {
		o.Suite = DefaultSuite
	}
	if !suiteRE.MatchString(o.Suite) {
		return fmt.Errorf("suite %q: not a Debian suite name: %w", o.Suite, errdefs.ErrInvalidArgument)
	}
	seen := map[string]bool{}
	var pkgs []string
	for _, p := range o.Include {
		p = strings.TrimSpace(p)
		if p == "" || seen[p] {
			continue
		}
		if !packageRE.MatchString(p) || len(p) > 128 {
			return fmt.Errorf("package %q: not a Debian package name: %w", p, errdefs.ErrInvalidArgument)
		}
		seen[p] = true
		pkgs = append(pkgs, p)
	}
	o.Include = pkgs
	if o.Mirror == "" {
		o.Mirror = DefaultMirror()
	}
	if err := checkMirrorURL(o.Mirror); err != nil {
		return err
	}
	if o.Ref == "" {
		o.Ref = "debian:" + o.Suite
	}
	if _, err := image.Normalize(o.Ref); err != nil {
		return err
	}
	if o.TmpDir == "" {
		return fmt.Errorf("no directory for the tree: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkMirrorURL accepts the mirrors debootstrap can read: http(s) with a
// host, or a local file: archive.
func checkMirrorURL(m string) error {
	u, err := url.Parse(m)
	if err != nil {
		return fmt.Errorf("mirror %q: %v: %w", m, err, errdefs.ErrInvalidArgument)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("mirror %q: no host: %w", m, errdefs.ErrInvalidArgument)
		}
	case "file":
		if u.Path == "" || !path.IsAbs(u.Path) {
			return fmt.Errorf("mirror %q: a file: mirror needs an absolute path: %w", m, errdefs.ErrInvalidArgument)
		}
	default:
		return fmt.Errorf("mirror %q: scheme must be http, https or file: %w", m, errdefs.ErrInvalidArgument)
	}
	if strings.ContainsAny(m, " \t\n\r") {
		return fmt.Errorf("mirror %q: contains white space: %w", m, errdefs.ErrInvalidArgument)
	}
	return nil
}

// DefaultMirror is the first Debian archive in the host's apt sources
// (/etc/apt/sources.list, then /etc/apt/sources.list.d), FallbackMirror
// when there is none: the host's apt already reaches it.
func DefaultMirror() string {
	if m, ok := mirrorFromSources("/etc/apt"); ok {
		return m
	}
	return FallbackMirror
}

// mirrorFromSources reads the apt configuration directory dir and returns
// the first URI of an enabled binary ("deb") source that is a Debian
// archive (see isDebianArchive).
func mirrorFromSources(dir string) (string, bool) {
	files := []string{filepath.Join(dir, "sources.list")}
	ents, _ := os.ReadDir(filepath.Join(dir, "sources.list.d"))
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		// apt reads only these two suffixes; "x.list.disabled" is off.
		if n := e.Name(); strings.HasSuffix(n, ".list") || strings.HasSuffix(n, ".sources") {
			names = append(names, n)
		}
	}
	sort.Strings(names) // apt's order
	for _, n := range names {
		files = append(files, filepath.Join(dir, "sources.list.d", n))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var uris []string
		if strings.HasSuffix(f, ".sources") {
			uris = deb822URIs(string(b))
		} else {
			uris = oneLineURIs(string(b))
		}
		for _, u := range uris {
			if isDebianArchive(u) {
				return strings.TrimRight(u, "/"), true
			}
		}
	}
	return "", false
}

// oneLineURIs returns the URIs of the "deb" lines of a sources.list
// ("deb [opt=val …] URI suite component…").
func oneLineURIs(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			// Options run to the field that closes the bracket.
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) == 0 {
				continue
			}
			f = f[1:]
		}
		if len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

// deb822URIs returns the URIs of the enabled stanzas of type deb in a
// deb822 .sources file.
func deb822URIs(text string) []string {
	var out []string
	fields := map[string]string{}
	last := ""
	flush := func() {
		if strings.EqualFold(fields["enabled"], "no") {
			fields = map[string]string{}
			return
		}
		isDeb := false
		for _, t := range strings.Fields(fields["types"]) {
			isDeb = isDeb || t == "deb"
		}
		if isDeb {
			out = append(out, strings.Fields(fields["uris"])...)
		}
		fields = map[string]string{}
	}
	for _, l := range strings.Split(text+"\n", "\n") {
		switch {
		case strings.HasPrefix(l, "#"):
		case strings.TrimSpace(l) == "":
			if len(fields) > 0 {
				flush()
			}
		case l[0] == ' ' || l[0] == '\t':
			if last != "" {
				fields[last] += " " + strings.TrimSpace(l)
			}
		default:
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	return out
}

// isDebianArchive reports whether u looks like a Debian archive that
// debootstrap can install from: an http(s) or file URI with a path
// component "debian" (deb.debian.org/debian, ftp.XX.debian.org/debian, a
// local mirror's /debian, snapshot.debian.org/archive/debian/DATE) — not
// debian-security, not a third-party repository.
func isDebianArchive(u string) bool {
	if checkMirrorURL(u) != nil {
		return false
	}
	p, _ := url.Parse(u)
	for _, seg := range strings.Split(p.Path, "/") {
		if seg == "debian" {
			return true
		}
	}
	return false
}

// checkReachable asks the mirror for the suite's Release file, so an
// offline host or a misspelt suite gets a clear error at once rather than
// debootstrap's after its own retries.
func checkReachable(ctx context.Context, mirror, suite string) error {
	u, _ := url.Parse(mirror)
	if u.Scheme == "file" {
		rel := filepath.Join(u.Path, "dists", suite, "Release")
		if _, err := os.Stat(rel); err != nil {
			return fmt.Errorf("suite %s on mirror %s: %w", suite, mirror, errdefs.ErrNotFound)
		}
		return nil
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	rel := strings.TrimRight(mirror, "/") + "/dists/" + suite + "/Release"
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, rel, nil)
	if err != nil {
		return fmt.Errorf("mirror %s: %v: %w", mirror, err, errdefs.ErrInvalidArgument)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if parent.Err() != nil {
			return parent.Err()
		}
		return fmt.Errorf("debian mirror %s is unreachable (no network? --mirror names another): %w", mirror, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("suite %s is not on mirror %s (%s): %w", suite, mirror, rel, errdefs.ErrNotFound)
	case resp.StatusCode >= 400:
		return fmt.Errorf("debian mirror %s answered %s for %s", mirror, resp.Status, rel)
	}
	return nil
}

// debootstrapPaths are where Debian's package installs debootstrap, for
// a daemon whose PATH lacks the sbin directories.
var debootstrapPaths = []string{"/usr/sbin/debootstrap", "/sbin/debootstrap"}

// findDebootstrap returns the debootstrap to run: name when set, else the
// one in PATH or in debootstrapPaths.
func findDebootstrap(name string) (string, error) {
	if name != "" {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("debootstrap %s: %w", name, errdefs.ErrNotFound)
		}
		return name, nil
	}
	if p, err := exec.LookPath("debootstrap"); err == nil {
		return p, nil
	}
	for _, p := range debootstrapPaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("debootstrap is not installed on the daemon's host (apt-get install debootstrap): %w", errdefs.ErrNotImplemented)
}

// debootstrapArgs is the command line: a minbase tree of suite in target.
// --force-check-gpg makes a missing keyring an error rather than an
// unverified install from a plain-http mirror.
func debootstrapArgs(o DebianOptions, target string) []string {
	args := []string{"--variant=minbase", "--force-check-gpg"}
	if len(o.Include) > 0 {
		args = append(args, "--include="+strings.Join(o.Include, ","))
	}
	return append(args, o.Suite, target, o.Mirror)
}

// Debian makes a Debian image with debootstrap: a minbase tree of
// opts.Suite (plus opts.Include) from opts.Mirror is built in a directory
// under opts.TmpDir, trimmed (device nodes, apt caches and lists, the
// host's resolv.conf), committed as a one-layer image tagged opts.Ref with
// Cmd ["bash"], and removed — also on failure or when ctx ends, which kills
// debootstrap and everything it started.
//
// debootstrap runs in a PID and a private mount namespace of its own: its
// /proc and /sys mounts in the tree never reach the host's mount table,
// and killing it (its namespace's init) kills the dpkg and maintainer
// scripts below it, so nothing outlives a cancelled build.
func Debian(ctx context.Context, s *storage.Store, opts DebianOptions) (storage.ImageInfo, error) {
	if err := opts.normalize(); err != nil {
		return storage.ImageInfo{}, fmt.Errorf("build debian: %w", err)
	}
	info, err := buildDebian(ctx, s, opts)
	if err != nil {
		return storage.ImageInfo{}, fmt.Errorf("build debian %s: %w", opts.Suite, err)
	}
	return info, nil
}

func buildDebian(ctx context.Context, s *storage.Store, opts DebianOptions) (storage.ImageInfo, error) {
	bin, err := findDebootstrap(opts.Debootstrap)
	if err != nil {
		return storage.ImageInfo{}, err
	}
	if os.Geteuid() != 0 {
		return storage.ImageInfo{}, fmt.Errorf("debootstrap needs root: %w", errdefs.ErrForbidden)
	}
	if err := checkReachable(ctx, opts.Mirror, opts.Suite); err != nil {
		return storage.ImageInfo{}, err
	}
	if err := os.MkdirAll(opts.TmpDir, 0o700); err != nil {
		return storage.ImageInfo{}, fmt.Errorf("make temporary directory: %w", err)
	}
	work, err := os.MkdirTemp(opts.TmpDir, "debian-")
	if err != nil {
		return storage.ImageInfo{}, fmt.Errorf("make temporary directory: %w", err)
	}
	defer os.RemoveAll(work)
	tree := filepath.Join(work, "rootfs")

	out := &lineWriter{w: opts.Progress}
	args := debootstrapArgs(opts, tree)
	out.Write([]byte("debootstrap " + strings.Join(args, " ") + "\n"))
	if err := runDebootstrap(ctx, bin, args, opts.Unmount, opts.TmpDir, out); err != nil {
		return storage.ImageInfo{}, err
	}
	if err := trimTree(tree); err != nil {
		return storage.ImageInfo{}, err
	}
	out.Write([]byte("Importing the tree as " + opts.Ref + "\n"))
	start := time.Now()
	pkgs := ""
	if len(opts.Include) > 0 {
		pkgs = " --include=" + strings.Join(opts.Include, ",")
	}
	info, err := s.Commit(ctx, storage.CommitOptions{
		Dir:       tree,
		Refs:      []string{opts.Ref},
		CreatedBy: "debootstrap --variant=minbase" + pkgs + " " + opts.Suite + " / " + opts.Mirror,
		Comment:   "debian " + opts.Suite + " made by silo with debootstrap",
		Config: dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
			Env: []string{imagePath},
			Cmd: []string{"bash"},
		}},
	})
	if err != nil {
		return storage.ImageInfo{}, err
	}
	fmt.Fprintf(out, "Imported %d MB in %.1fs\n", info.Size>>20, time.Since(start).Seconds())
	return info, nil
}

// runDebootstrap runs bin with args, its output to out, in new PID and
// mount namespaces (see Debian); with unmount set, the mounts under those
// directories and the containers' (overlay, loop device) are gone from it,
// except those keep lies on. ctx's end kills it.
func runDebootstrap(ctx context.Context, bin string, args, unmount []string, keep string, out *lineWriter) error {
	// Pdeathsig follows the thread that forks, not the process, and Go
	// ends threads (silod's network code throws away the threads it moves
	// into namespaces): fork from a thread held until the wait.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = debootstrapEnv()
	if len(unmount) > 0 {
		// A shell in the new namespace unmounts (lazily, deepest first)
		// what is mounted under the directories, then becomes debootstrap.
		cmd = exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", unmountScript, "sh", bin}, args...)...)
		cmd.Env = append(debootstrapEnv(), unmountEnv+"="+strings.Join(unmount, "\n"), keepEnv+"="+keep)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Killing the namespace's init kills every process in it.
		Cloneflags: syscall.CLONE_NEWPID,
		// Go makes the new mount namespace's mounts private (MS_REC |
		// MS_PRIVATE on /), so none propagates back to the host.
		Unshareflags: syscall.CLONE_NEWNS,
		// A daemon that dies mid-build takes debootstrap with it.
		Pdeathsig: syscall.SIGKILL,
	}
	// Output pipes a stray process might hold cannot keep Wait waiting.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	out.Flush()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("debootstrap: %w", ctx.Err())
	}
	if msg := out.Failure(); msg != "" {
		return fmt.Errorf("debootstrap: %w: %s", err, msg)
	}
	return fmt.Errorf("debootstrap: %w", err)
}

// unmountEnv and keepEnv carry the directories to unmount and the one to
// keep into unmountScript.
const (
	unmountEnv = "SILO_UNMOUNT"
	keepEnv    = "SILO_KEEP"
)

// unmountScript drops from the shell's mount namespace the mounts under
// the directories in $SILO_UNMOUNT (one per line) and every overlay and
// loop-device mount, except / and the mounts $SILO_KEEP lies on, then
// execs its arguments. Lazy, deepest first: a mount the namespace cannot
// unmount yet goes when its last user does.
const unmountScript = `awk -v dirs="$SILO_UNMOUNT" -v keep="$SILO_KEEP" '
BEGIN { n = split(dirs, d, "\n") }
{
  m = $5
  for (i = 7; i <= NF && $i != "-"; i++) {}
  fs = $(i + 1); src = $(i + 2)
  if (m == "/" || keep == m || index(keep, m "/") == 1) next
  drop = fs == "overlay" || src ~ /^\/dev\/loop/
  for (j = 1; j <= n; j++) if (d[j] != "" && index(m, d[j] "/") == 1) drop = 1
  if (drop) print m
}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
unset SILO_UNMOUNT SILO_KEEP
exec "$@"`

// debootstrapEnv is debootstrap's environment: a fixed PATH and locale,
// plus the daemon's proxy settings (wget reads them).
func debootstrapEnv() []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LC_ALL=C", "DEBIAN_FRONTEND=noninteractive", "HOME=/root",
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "no_proxy", "ftp_proxy":
			env = append(env, kv)
		}
	}
	return env
}

// trimTree removes what an image should not carry: device nodes (the
// runtime mounts /dev), downloaded packages and package lists (useless in
// containers without an uplink, and a third of the size), and the host's
// resolv.conf and hostname, which debootstrap copies in (the engine
// mounts its own over them).
func trimTree(tree string) error {
	for _, dir := range []string{"dev", "var/lib/apt/lists", "var/cache/apt/archives"} {
		ents, err := os.ReadDir(filepath.Join(tree, dir))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("trim %s: %w", dir, err)
		}
		for _, e := range ents {
			// apt expects these directories to exist.
			if e.Name() == "partial" || e.Name() == "lock" {
				continue
			}
			if err := os.RemoveAll(filepath.Join(tree, dir, e.Name())); err != nil {
				return fmt.Errorf("trim %s: %w", dir, err)
			}
		}
	}
	bins, _ := filepath.Glob(filepath.Join(tree, "var/cache/apt/*.bin"))
	for _, f := range append(bins, filepath.Join(tree, "etc/resolv.conf")) {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("trim: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(tree, "etc/hostname"), []byte("localhost\n"), 0o644); err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	return nil
}

// lineWriter forwards whole lines to w and keeps the last ones for the
// error message of a failed run. Stdout and stderr share it (one pipe), so
// it needs no lock.
type lineWriter struct {
	w       io.Writer
	partial []byte
	tail    []string
}

// maxTail is how many lines of output a failure keeps.
const maxTail = 20

// Write implements io.Writer.
func (l *lineWriter) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	// A line without an end (a progress bar) is cut rather than grown
	// without bound.
	if len(l.partial) > 4096 {
		l.line(string(l.partial))
		l.partial = nil
	}
	return len(p), nil
}

// Flush forwards an unfinished last line.
func (l *lineWriter) Flush() {
	if len(l.partial) > 0 {
		l.line(string(l.partial))
		l.partial = nil
	}
}

func (l *lineWriter) line(s string) {
	s = strings.TrimRight(s, " \r")
	l.tail = append(l.tail, s)
	if len(l.tail) > maxTail {
		l.tail = l.tail[len(l.tail)-maxTail:]
	}
	if l.w != nil {
		// A client gone away must not stop debootstrap's output pipe:
		// the context ends the run instead.
		_, _ = io.WriteString(l.w, s+"\n")
	}
}

// Failure summarises a failed run: debootstrap's "E:" lines, or the last
// lines of its output when it printed none.
func (l *lineWriter) Failure() string {
	var errs []string
	for _, s := range l.tail {
		if strings.HasPrefix(s, "E: ") {
			errs = append(errs, strings.TrimPrefix(s, "E: "))
		}
	}
	if len(errs) == 0 {
		n := len(l.tail)
		if n > 3 {
			n = 3
		}
		errs = l.tail[len(l.tail)-n:]
	}
	return strings.Join(errs, "; ")
}
