package main

import (
	"archive/tar"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/spf13/cobra"

	"github.com/silo-containers/silo/internal/api/client"
)

type buildOptions struct {
	tags, buildArgs, labels []string
	file, target, network   string
	progress                string
	noCache, pull, quiet    bool
}

func buildCommand(g *globals) *cobra.Command {
	var o buildOptions
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | -",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, g, &o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.tags, "tag", "t", nil, "name and optionally a tag (name:tag), repeatable")
	f.StringVarP(&o.file, "file", "f", "", "name of the Dockerfile (default PATH/Dockerfile)")
	f.StringArrayVar(&o.buildArgs, "build-arg", nil, "build-time variable (k=v)")
	f.StringVar(&o.target, "target", "", "build stage to stop at")
	f.BoolVar(&o.noCache, "no-cache", false, "do not use the cache")
	f.BoolVar(&o.pull, "pull", false, "pull base images")
	f.StringArrayVar(&o.labels, "label", nil, "label for the image (k=v)")
	f.StringVar(&o.network, "network", "", "network of RUN steps: default or none")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only the image ID")
	f.StringVar(&o.progress, "progress", "auto", "progress output: auto, plain or tty")
	return cmd
}

func runBuild(cmd *cobra.Command, g *globals, o *buildOptions, dir string) error {
	q := url.Values{}
	for _, t := range o.tags {
		q.Add("t", t)
	}
	args := map[string]*string{}
	for _, kv := range o.buildArgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			// docker takes a bare name from the environment.
			ev, set := os.LookupEnv(k)
			if !set {
				continue
			}
			v = ev
		}
		args[k] = &v
	}
	if len(args) > 0 {
		b, _ := json.Marshal(args)
		q.Set("buildargs", string(b))
	}
	if len(o.labels) > 0 {
		l := map[string]string{}
		for _, kv := range o.labels {
			k, v, _ := strings.Cut(kv, "=")
			l[k] = v
		}
		b, _ := json.Marshal(l)
		q.Set("labels", string(b))
	}
	if o.target != "" {
		q.Set("target", o.target)
	}
	if o.noCache {
		q.Set("nocache", "1")
	}
	if o.pull {
		q.Set("pull", "1")
	}
	if o.network != "" {
		q.Set("networkmode", o.network)
	}
	if o.quiet {
		q.Set("q", "1")
	}
	q.Set("rm", "1")
	var tty bool
	switch o.progress {
	case "auto":
		tty = isTerminal(os.Stdout)
	case "tty":
		tty = true
	case "plain":
	default:
		return fmt.Errorf("--progress=%s: want auto, plain or tty", o.progress)
	}

	pr, pw := io.Pipe()
	if dir == "-" {
		// The context is a tar on stdin (docker build - < ctx.tar).
		if o.file != "" {
			q.Set("dockerfile", o.file)
		}
		go func() { _, err := io.Copy(pw, os.Stdin); pw.CloseWithError(err) }()
	} else {
		dfName, extra, err := dockerfileInContext(dir, o.file)
		if err != nil {
			return err
		}
		q.Set("dockerfile", dfName)
		go func() { pw.CloseWithError(writeContext(pw, dir, dfName, extra)) }()
	}
	c, err := g.connect(cmd.Context())
	if err != nil {
		pr.Close()
		return err
	}
	body, err := c.ImageBuild(cmd.Context(), pr, q)
	if err != nil {
		pr.Close()
		return err
	}
	defer body.Close()
	var id string
	view := newBuildView(tty, os.Stdout)
	err = client.ReadProgress(body, func(m client.ProgressMessage) {
		if m.Aux != nil {
			var aux struct{ ID string }
			if json.Unmarshal(*m.Aux, &aux) == nil {
				id = aux.ID
			}
		}
		if !o.quiet {
			view.write(m.Stream)
		}
	})
	view.done()
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if o.quiet {
		fmt.Println(id)
	}
	return nil
}

// buildView prints the stream. On a terminal it keeps a live status line
// under the output ("[+] 3.2s  Step 2/5 : RUN …  1.1s"): the build's and
// the current step's running times, redrawn every 100 ms; output lines
// print above it (a partial line waits for its end, so the status line
// never cuts one).
type buildView struct {
	tty   bool
	out   io.Writer
	start time.Time

	mu        sync.Mutex
	step      string // the current step's header, without its newline
	stepStart time.Time
	partial   string
	stop      chan struct{}
}

func newBuildView(tty bool, out io.Writer) *buildView {
	v := &buildView{tty: tty, out: out, start: time.Now(), stop: make(chan struct{})}
	if tty {
		go v.tick()
	}
	return v
}

func (v *buildView) tick() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case <-t.C:
		}
		v.mu.Lock()
		v.statusLocked()
		v.mu.Unlock()
	}
}

// statusLocked redraws the status line (the cursor stays on it).
func (v *buildView) statusLocked() {
	if v.step == "" {
		return
	}
	fmt.Fprintf(v.out, "\r\x1b[K\x1b[1m[+] %.1fs\x1b[0m  %s  \x1b[2m%.1fs\x1b[0m",
		time.Since(v.start).Seconds(), v.step, time.Since(v.stepStart).Seconds())
}

func (v *buildView) write(s string) {
	if s == "" {
		return
	}
	if !v.tty {
		io.WriteString(v.out, s)
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	s = v.partial + s
	cut := strings.LastIndexByte(s, '\n') + 1
	v.partial = s[cut:]
	if cut == 0 {
		return
	}
	lines := s[:cut]
	io.WriteString(v.out, "\r\x1b[K")
	io.WriteString(v.out, lines)
	if i := strings.LastIndex(lines, "Step "); i >= 0 && (i == 0 || lines[i-1] == '\n') {
		v.step = strings.TrimSuffix(strings.SplitN(lines[i:], "\n", 2)[0], "\n")
		v.stepStart = time.Now()
	}
	v.statusLocked()
}

func (v *buildView) done() {
	if !v.tty {
		return
	}
	close(v.stop)
	v.mu.Lock()
	defer v.mu.Unlock()
	io.WriteString(v.out, "\r\x1b[K"+v.partial)
	if v.partial != "" {
		io.WriteString(v.out, "\n")
	}
	fmt.Fprintf(v.out, "build took %.1fs\n", time.Since(v.start).Seconds())
}

// dockerfileInContext returns the Dockerfile's name inside the context;
// a Dockerfile outside the context is sent along under a private name
// (extra holds its path then).
func dockerfileInContext(dir, file string) (string, string, error) {
	if file == "" {
		return "Dockerfile", "", nil
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	absFile, err := filepath.Abs(file)
	if err != nil {
		return "", "", err
	}
	if _, err := os.Stat(absFile); err != nil {
		// Relative to the context, as docker also accepts.
		if alt := filepath.Join(absDir, file); !filepath.IsAbs(file) {
			if _, err2 := os.Stat(alt); err2 == nil {
				absFile = alt
			} else {
				return "", "", fmt.Errorf("cannot locate Dockerfile %s: %w", file, err)
			}
		}
	}
	rel, err := filepath.Rel(absDir, absFile)
	if err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return filepath.ToSlash(rel), "", nil
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	return ".dockerfile." + hex.EncodeToString(rnd[:]), absFile, nil
}

// writeContext writes the context directory as a tar, leaving out what
// .dockerignore excludes (the Dockerfile and .dockerignore always go).
func writeContext(w io.Writer, dir, dfName, extra string) error {
	var pm *patternmatcher.PatternMatcher
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return fmt.Errorf(".dockerignore: %w", err)
		}
		if pm, err = patternmatcher.New(patterns); err != nil {
			return fmt.Errorf(".dockerignore: %w", err)
		}
	}
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if pm != nil && rel != dfName && rel != ".dockerignore" {
			if ok, _ := pm.MatchesOrParentMatches(rel); ok {
				if d.IsDir() && !pm.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		return addFile(tw, p, rel, fi)
	})
	if err != nil {
		return err
	}
	if extra != "" {
		fi, err := os.Stat(extra)
		if err != nil {
			return err
		}
		if err := addFile(tw, extra, dfName, fi); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, p, name string, fi fs.FileInfo) error {
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() && fi.Mode()&fs.ModeSymlink == 0 {
		return nil // devices, sockets, fifos stay home
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name, hdr.Uname, hdr.Gname = name, "", ""
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if fi.Mode().IsRegular() {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
			return err
		}
	}
	return nil
}

func builderCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "builder", Short: "Manage the build cache"}
	cmd.AddCommand(&cobra.Command{
		Use:   "prune",
		Short: "Empty the build cache",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			ids, err := c.BuildPrune(cmd.Context())
			if err != nil {
				return err
			}
			for _, id := range ids {
				fmt.Println("Deleted build cache image", id)
			}
			fmt.Printf("Total: %d cache entries\n", len(ids))
			return nil
		},
	})
	return cmd
}
