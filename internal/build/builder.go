package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Options describe one build.
type Options struct {
	// Dockerfile is the Dockerfile's path inside the context
	// ("Dockerfile" when empty).
	Dockerfile string
	// Tags name the result.
	Tags []string
	// BuildArgs are --build-arg values; a nil value means "take it from
	// the environment", which a daemon does not have: it counts as unset.
	BuildArgs map[string]*string
	// Target is the stage to build (the last one when empty).
	Target string
	// NoCache runs every step (results still enter the cache).
	NoCache bool
	// Pull pulls base images even when they are in the store.
	Pull bool
	// Labels are added to the result's config.
	Labels map[string]string
	// NetworkMode of RUN steps: "none", or "" / "default" / "bridge" for
	// the default network.
	NetworkMode string
	// Out receives the progress text (the classic builder's stream).
	Out io.Writer
	// HTTPClient fetches ADD URLs (nil: a client with a 10 minute timeout).
	HTTPClient *http.Client
}

// Builder builds images from Dockerfiles.
type Builder struct {
	b     Backend
	cache *Cache
	work  string
}

// New returns a builder over backend b with its step cache. workDir holds
// unpacked contexts and downloads while a build runs.
func New(b Backend, cache *Cache, workDir string) (*Builder, error) {
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return nil, fmt.Errorf("new builder: %w", err)
	}
	return &Builder{b: b, cache: cache, work: workDir}, nil
}

// FromTar unpacks the build context tar r (plain, gzip or zstd) into a
// private directory, builds, and removes the directory.
func (bl *Builder) FromTar(ctx context.Context, r io.Reader, opts Options) (string, error) {
	dir, err := os.MkdirTemp(bl.work, "context-")
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := ExtractContext(ctx, r, dir); err != nil {
		return "", err
	}
	return bl.Build(ctx, dir, opts)
}

// stage is the state of one stage while it builds.
type stage struct {
	def   *instructions.Stage
	index int
	img   Image
	// args are the ARGs declared in the stage with their values.
	args   map[string]string
	argSeq []string
	shell  []string
	cmdSet bool
	built  bool
	// lastKey is the cache key of the stage's current image ("" while
	// it is the base).
	lastKey string
}

// run is one build.
type run struct {
	bl      *Builder
	opts    Options
	ctxDir  string
	df      *Dockerfile
	lex     *shell.Lex
	meta    map[string]string
	stages  []*stage
	step    int
	steps   int
	out     io.Writer
	ignored matcher
	// usedArgs are the build args some ARG consumed; the others are
	// reported at the end, as docker does.
	usedArgs map[string]bool
	// curKey is the cache key of the image the last step produced.
	curKey string
}

// Build builds the Dockerfile of the context directory ctxDir and returns
// the image ID.
func (bl *Builder) Build(ctx context.Context, ctxDir string, opts Options) (string, error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	name := opts.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	dfPath, err := resolveInContext(ctxDir, name)
	if err != nil {
		return "", fmt.Errorf("dockerfile %s: %w", name, err)
	}
	src, err := readLimited(dfPath, maxDockerfileSize)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("cannot locate specified Dockerfile: %s: %w", name, errdefs.ErrInvalidArgument)
		}
		return "", fmt.Errorf("read dockerfile %s: %w", name, err)
	}
	df, err := Parse(src)
	if err != nil {
		return "", err
	}
	ign, err := loadDockerignore(ctxDir, name)
	if err != nil {
		return "", err
	}
	r := &run{bl: bl, opts: opts, ctxDir: ctxDir, df: df, lex: shell.NewLex(df.Escape), out: out,
		ignored: ign, meta: map[string]string{}, usedArgs: map[string]bool{}}
	for _, w := range df.Warnings {
		fmt.Fprintf(out, "[WARNING]: %s\n", w)
	}
	if err := r.metaArgs(); err != nil {
		return "", err
	}
	target, err := r.plan()
	if err != nil {
		return "", err
	}
	if err := r.buildStage(ctx, target); err != nil {
		return "", err
	}
	final, finalKey := r.stages[target].img, r.stages[target].lastKey
	if len(opts.Labels) > 0 {
		cfg := final.Config
		cfg.Labels = mergeLabels(cfg.Labels, opts.Labels)
		if final, err = r.configStep(ctx, final, cfg, "LABEL "+labelString(opts.Labels)); err != nil {
			return "", err
		}
		finalKey = r.curKey
	}
	if final.ID == "" {
		return "", fmt.Errorf("no image was generated: the build has no step: %w", errdefs.ErrInvalidArgument)
	}
	var unused []string
	for k := range opts.BuildArgs {
		if !r.usedArgs[k] && !predefinedArgs[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		fmt.Fprintf(out, "[Warning] One or more build-args %v were not consumed\n", unused)
	}
	fmt.Fprintf(out, "Successfully built %s\n", shortID(final.ID))
	for _, t := range opts.Tags {
		if err := bl.b.Tag(ctx, final.ID, t); err != nil {
			return "", fmt.Errorf("tag %s: %w", t, err)
		}
		fmt.Fprintf(out, "Successfully tagged %s\n", t)
	}
	if len(opts.Tags) > 0 && finalKey != "" {
		// The tags keep the result now; its cache hold would make
		// `rmi` of the last tag refuse.
		if err := bl.b.Release(ctx, holderOf(finalKey)); err != nil {
			return "", err
		}
	}
	return final.ID, nil
}

// predefinedArgs are the proxy variables docker passes without an ARG.
var predefinedArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true, "ALL_PROXY": true, "all_proxy": true,
}

// buildArg returns the --build-arg value of k, if one was given.
func (r *run) buildArg(k string) (string, bool) {
	v, ok := r.opts.BuildArgs[k]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// metaArgs evaluates the ARGs before the first FROM.
func (r *run) metaArgs() error {
	for i := range r.df.MetaArgs {
		a := &r.df.MetaArgs[i]
		for _, kv := range a.Args {
			v, given := r.buildArg(kv.Key)
			if given {
				r.usedArgs[kv.Key] = true
			} else if kv.Value != nil {
				var err error
				if v, err = r.expand(*kv.Value, r.metaEnv()); err != nil {
					return dockerfileError(err, lineOf(a))
				}
			}
			r.meta[kv.Key] = v
		}
	}
	return nil
}

func (r *run) metaEnv() []string {
	env := make([]string, 0, len(r.meta))
	for k, v := range r.meta {
		env = append(env, k+"="+v)
	}
	return env
}

// expand substitutes variables in word.
func (r *run) expand(word string, env []string) (string, error) {
	s, _, err := r.lex.ProcessWord(word, shell.EnvsFromSlice(env))
	return s, err
}

// plan finds the target stage and the stages it needs, and counts the steps.
func (r *run) plan() (int, error) {
	for i := range r.df.Stages {
		r.stages = append(r.stages, &stage{def: &r.df.Stages[i], index: i})
	}
	target := len(r.stages) - 1
	if r.opts.Target != "" {
		i, ok := instructions.HasStage(r.df.Stages, r.opts.Target)
		if !ok {
			return 0, fmt.Errorf("target stage %q could not be found: %w", r.opts.Target, errdefs.ErrInvalidArgument)
		}
		target = i
	}
	need := map[int]bool{}
	var visit func(i int) error
	visit = func(i int) error {
		if need[i] {
			return nil
		}
		need[i] = true
		deps, err := r.stageDeps(i)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(target); err != nil {
		return 0, err
	}
	for i := range need {
		r.steps += 1 + len(r.stages[i].def.Commands)
	}
	return target, nil
}

// stageDeps lists the earlier stages stage i uses (FROM, COPY --from).
func (r *run) stageDeps(i int) ([]int, error) {
	s := r.stages[i].def
	var deps []int
	base, err := r.expand(s.BaseName, r.metaEnv())
	if err != nil {
		return nil, dockerfileError(err, rangeLine(s.Location))
	}
	if j, ok := r.stageRef(base, i); ok {
		deps = append(deps, j)
	}
	for _, c := range s.Commands {
		if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
			from, err := r.expand(cp.From, r.metaEnv())
			if err != nil {
				return nil, dockerfileError(err, lineOf(c))
			}
			if j, ok := r.stageRef(from, i); ok {
				deps = append(deps, j)
			}
		}
	}
	return deps, nil
}

// stageRef finds an earlier stage by name or index.
func (r *run) stageRef(name string, before int) (int, bool) {
	for j := 0; j < before; j++ {
		if r.stages[j].def.Name != "" && strings.EqualFold(r.stages[j].def.Name, name) {
			return j, true
		}
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < before {
		return n, true
	}
	return 0, false
}

func rangeLine(loc []parser.Range) int {
	if len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}

// buildStage builds stage i after the stages it needs.
func (r *run) buildStage(ctx context.Context, i int) error {
	st := r.stages[i]
	if st.built {
		return nil
	}
	deps, err := r.stageDeps(i)
	if err != nil {
		return err
	}
	for _, d := range deps {
		if err := r.buildStage(ctx, d); err != nil {
			return err
		}
	}
	if err := r.from(ctx, st); err != nil {
		return err
	}
	for _, c := range st.def.Commands {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.step++
		fmt.Fprintf(r.out, "Step %d/%d : %s\n", r.step, r.steps, commandText(c))
		r.curKey = st.lastKey
		if err := r.dispatch(ctx, st, c); err != nil {
			if errors.Is(err, errdefs.ErrInvalidArgument) || isRunError(err) {
				return err
			}
			return fmt.Errorf("dockerfile line %d: %s: %w", lineOf(c), strings.ToUpper(c.Name()), err)
		}
		st.lastKey = r.curKey
		fmt.Fprintf(r.out, " ---> %s\n", shortID(st.img.ID))
	}
	st.built = true
	return nil
}

func commandText(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return strings.ToUpper(c.Name())
}

// from starts stage st on its base: scratch, an earlier stage or an image.
func (r *run) from(ctx context.Context, st *stage) error {
	r.step++
	fmt.Fprintf(r.out, "Step %d/%d : %s\n", r.step, r.steps, st.def.SourceCode)
	base, err := r.expand(st.def.BaseName, r.metaEnv())
	if err != nil {
		return dockerfileError(err, rangeLine(st.def.Location))
	}
	if base == "" {
		return fmt.Errorf("dockerfile line %d: FROM: base name (%s) should not be blank: %w", rangeLine(st.def.Location), st.def.BaseName, errdefs.ErrInvalidArgument)
	}
	st.args = map[string]string{}
	r.curKey = ""
	switch j, isStage := r.stageRef(base, st.index); {
	case isStage:
		st.img, r.curKey = r.stages[j].img, r.stages[j].lastKey
	case strings.EqualFold(base, "scratch"):
		st.img = Image{}
	default:
		var img Image
		if r.opts.Pull {
			fmt.Fprintf(r.out, "Pulling %s\n", base)
			img, err = r.bl.b.Pull(ctx, base)
		} else {
			img, err = r.bl.b.Image(ctx, base)
			if errdefs.IsNotFound(err) {
				err = fmt.Errorf("no such image: %s (silo builds from the local store; pull it first or build with --pull): %w", base, errdefs.ErrNotFound)
			}
		}
		if err != nil {
			return fmt.Errorf("dockerfile line %d: FROM %s: %w", rangeLine(st.def.Location), base, err)
		}
		st.img = img
	}
	st.shell = st.img.Config.Shell
	if len(st.shell) == 0 {
		st.shell = []string{"/bin/sh", "-c"}
	}
	if st.img.ID != "" {
		fmt.Fprintf(r.out, " ---> %s\n", shortID(st.img.ID))
	}
	// ONBUILD triggers of the base run first, then leave the config.
	if triggers := st.img.Config.OnBuild; len(triggers) > 0 {
		fmt.Fprintf(r.out, "# Executing %d build trigger(s)\n", len(triggers))
		for _, t := range triggers {
			res, err := parser.Parse(strings.NewReader(t))
			if err != nil || len(res.AST.Children) != 1 {
				return fmt.Errorf("base image %s: bad ONBUILD trigger %q: %w", base, t, errdefs.ErrInvalidArgument)
			}
			c, err := instructions.ParseCommand(res.AST.Children[0])
			if err != nil {
				return fmt.Errorf("base image %s: ONBUILD trigger %q: %v: %w", base, t, err, errdefs.ErrInvalidArgument)
			}
			fmt.Fprintf(r.out, " ---> Running trigger: %s\n", t)
			if err := r.dispatch(ctx, st, c); err != nil {
				return err
			}
		}
		cfg := st.img.Config
		cfg.OnBuild = nil
		if st.img, err = r.configStep(ctx, st.img, cfg, "/bin/sh -c #(nop) ONBUILD triggers done"); err != nil {
			return err
		}
	}
	st.lastKey = r.curKey
	return nil
}

// env is the environment for expansion in st: ARGs, overridden by ENV.
func (st *stage) env() []string {
	m := map[string]string{}
	for k, v := range st.args {
		m[k] = v
	}
	for _, kv := range st.img.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// runArgs are the ARG values a RUN sees that ENV does not override,
// in declaration order ("k=v").
func (st *stage) runArgs() []string {
	envKeys := map[string]bool{}
	for _, kv := range st.img.Config.Env {
		k, _, _ := strings.Cut(kv, "=")
		envKeys[k] = true
	}
	var out []string
	for _, k := range st.argSeq {
		if !envKeys[k] {
			out = append(out, k+"="+st.args[k])
		}
	}
	return out
}

// dispatch runs one instruction on st.
func (r *run) dispatch(ctx context.Context, st *stage, c instructions.Command) error {
	line := lineOf(c)
	env := st.env()
	expander := func(w string) (string, error) { return r.expand(w, env) }
	if e, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(expander); err != nil {
			return dockerfileError(err, line)
		}
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansionRaw); ok {
		if err := e.ExpandRaw(expander); err != nil {
			return dockerfileError(err, line)
		}
	}
	cfg := cloneConfig(st.img.Config)
	nop := func(s string) string { return "/bin/sh -c #(nop) " + s }
	switch c := c.(type) {
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			v, given := r.buildArg(kv.Key)
			switch {
			case given:
				r.usedArgs[kv.Key] = true
			case kv.Value != nil:
				v = *kv.Value
			default:
				if mv, ok := r.meta[kv.Key]; ok {
					v = mv // ARG k after FROM takes the global default
				}
			}
			if _, seen := st.args[kv.Key]; !seen {
				st.argSeq = append(st.argSeq, kv.Key)
			}
			st.args[kv.Key] = v
		}
		return nil
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
		}
		return r.meta1(ctx, st, cfg, nop(commandText(c)))
	case *instructions.LabelCommand:
		l := map[string]string{}
		for _, kv := range c.Labels {
			l[kv.Key] = kv.Value
		}
		cfg.Labels = mergeLabels(cfg.Labels, l)
		return r.meta1(ctx, st, cfg, nop(commandText(c)))
	case *instructions.MaintainerCommand:
		return r.meta1(ctx, st, cfg, nop(commandText(c)))
	case *instructions.CmdCommand:
		cfg.Cmd = st.withShell(c.ShellDependantCmdLine)
		st.cmdSet = true
		return r.meta1(ctx, st, cfg, nop(fmt.Sprintf("CMD %s", jsonArgs(cfg.Cmd))))
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = st.withShell(c.ShellDependantCmdLine)
		if !st.cmdSet {
			cfg.Cmd = nil // an inherited CMD does not outlive a new ENTRYPOINT
		}
		return r.meta1(ctx, st, cfg, nop(fmt.Sprintf("ENTRYPOINT %s", jsonArgs(cfg.Entrypoint))))
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			p, err := expander(p)
			if err != nil {
				return dockerfileError(err, line)
			}
			port, err := normalizePort(p)
			if err != nil {
				return dockerfileError(err, line)
			}
			cfg.ExposedPorts[port] = struct{}{}
		}
		return r.meta1(ctx, st, cfg, nop(commandText(c)))
	case *instructions.UserCommand:
		cfg.User = c.User
		return r.meta1(ctx, st, cfg, nop(commandText(c)))
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if strings.TrimSpace(v) == "" {
				return dockerfileError(errors.New("VOLUME specified can not be an empty string"), line)
			}
			cfg.Volumes[v] = struct{}{}
		}
		return r.meta1(ctx, st, cfg, nop(commandText(c)))
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
		return r.meta1(ctx, st, cfg, nop(commandText(c)))
	case *instructions.HealthCheckCommand:
		cfg.Healthcheck = c.Health
		return r.meta1(ctx, st, cfg, nop(commandText(c)))
	case *instructions.ShellCommand:
		st.shell = append([]string(nil), c.Shell...)
		cfg.Shell = st.shell
		return r.meta1(ctx, st, cfg, nop(commandText(c)))
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
		return r.meta1(ctx, st, cfg, nop(commandText(c)))
	case *instructions.WorkdirCommand:
		return r.workdir(ctx, st, cfg, c.Path)
	case *instructions.RunCommand:
		return r.runStep(ctx, st, cfg, c)
	case *instructions.CopyCommand:
		return r.copyStep(ctx, st, cfg, copyArgs{cmd: "COPY", sd: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod, line: line}, env)
	case *instructions.AddCommand:
		if c.Unpack != nil && !*c.Unpack {
			return dockerfileError(errors.New("ADD --unpack=false is a BuildKit feature the classic builder does not support"), line)
		}
		return r.copyStep(ctx, st, cfg, copyArgs{cmd: "ADD", sd: c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod, line: line, add: true}, env)
	}
	return dockerfileError(fmt.Errorf("%s is not supported", strings.ToUpper(c.Name())), line)
}

// withShell turns a shell-form command line into argv with the stage's
// shell.
func (st *stage) withShell(c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string(nil), c.CmdLine...)
	}
	return append(append([]string(nil), st.shell...), strings.Join(c.CmdLine, " "))
}

// meta1 is a metadata-only step: a config-only image, cached.
func (r *run) meta1(ctx context.Context, st *stage, cfg dockerspec.DockerOCIImageConfig, createdBy string) error {
	img, err := r.configStep(ctx, st.img, cfg, createdBy)
	if err != nil {
		return err
	}
	st.img = img
	return nil
}

// configStep makes (or finds in the cache) the image of parent with cfg.
// The key holds the whole new config, so equal configs on the same
// parent give the same image.
func (r *run) configStep(ctx context.Context, parent Image, cfg dockerspec.DockerOCIImageConfig, createdBy string) (Image, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return Image{}, err
	}
	key := Key("config", parent.ID, createdBy, string(raw))
	if img, ok := r.cached(ctx, key); ok {
		return img, nil
	}
	img, err := r.bl.b.CommitConfig(ctx, parent.ID, cfg, createdBy, holderOf(key))
	if err != nil {
		return Image{}, err
	}
	return img, r.remember(key, img)
}

// holderOf is the store holder that keeps the image of cache key.
func holderOf(key string) string { return "build-cache:" + key }

// cached looks key up; a hit whose image is gone is forgotten.
func (r *run) cached(ctx context.Context, key string) (Image, bool) {
	if r.opts.NoCache {
		return Image{}, false
	}
	id, err := r.bl.cache.Get(key)
	if err != nil || id == "" {
		return Image{}, false
	}
	img, err := r.bl.b.Image(ctx, id)
	if err != nil {
		_ = r.bl.cache.Delete(key)
		return Image{}, false
	}
	fmt.Fprintln(r.out, " ---> Using cache")
	r.curKey = key
	return img, true
}

func (r *run) remember(key string, img Image) error {
	r.curKey = key
	return r.bl.cache.Put(key, img.ID)
}

// workdir sets the working directory and creates it when missing (the
// only case that adds a layer).
func (r *run) workdir(ctx context.Context, st *stage, cfg dockerspec.DockerOCIImageConfig, p string) error {
	if !path.IsAbs(p) {
		base := cfg.WorkingDir
		if base == "" {
			base = "/"
		}
		p = path.Join(base, p)
	}
	cfg.WorkingDir = path.Clean(p)
	createdBy := "/bin/sh -c #(nop) WORKDIR " + cfg.WorkingDir
	if st.img.ID != "" {
		// A directory the image has already: metadata only.
		if layers, err := r.bl.b.LayerDirs(ctx, st.img.ID); err == nil {
			if exists, known := dirInLayers(layers, cfg.WorkingDir); exists && known {
				return r.meta1(ctx, st, cfg, createdBy)
			}
		}
	}
	raw, _ := json.Marshal(cfg)
	key := Key("workdir", st.img.ID, createdBy, string(raw))
	if img, ok := r.cached(ctx, key); ok {
		st.img = img
		return nil
	}
	c, err := r.bl.b.NewContainer(ctx, ContainerConfig{Image: st.img.ID})
	if err != nil {
		return err
	}
	defer r.removeContainer(ctx, c)
	if err := mkdirInRoot(c.Rootfs(), cfg.WorkingDir); err != nil {
		return fmt.Errorf("create working directory %s: %w", cfg.WorkingDir, err)
	}
	img, err := c.Commit(ctx, cfg, createdBy, holderOf(key))
	if err != nil {
		return err
	}
	st.img = img
	return r.remember(key, img)
}

// removeContainer removes a step's container; a failure is reported in
// the progress (the engine's restore cleans up what is left).
func (r *run) removeContainer(ctx context.Context, c Container) {
	if err := c.Remove(context.WithoutCancel(ctx)); err != nil {
		fmt.Fprintf(r.out, "[WARNING]: remove intermediate container %s: %v\n", c.ID(), err)
	}
}

// RunError is a RUN whose process exited with a non-zero code. Its
// message is the classic builder's, which scripts grep for.
type RunError struct {
	Cmd  []string
	Code int
}

func (e *RunError) Error() string {
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(e.Cmd, " "), e.Code)
}

func isRunError(err error) bool {
	var re *RunError
	return errors.As(err, &re)
}

// ExitCode returns the exit code of a failed RUN in err, if there is one.
func ExitCode(err error) (int, bool) {
	var re *RunError
	if errors.As(err, &re) {
		return re.Code, true
	}
	return 0, false
}

func (r *run) runStep(ctx context.Context, st *stage, cfg dockerspec.DockerOCIImageConfig, c *instructions.RunCommand) error {
	var argv []string
	switch {
	case len(c.Files) == 0:
		argv = st.withShell(c.ShellDependantCmdLine)
	case len(c.Files) == 1 && c.PrependShell && len(c.CmdLine) == 1 && strings.HasPrefix(c.CmdLine[0], "<<"):
		// RUN <<EOF … EOF: the heredoc is the script.
		data := c.Files[0].Data
		if c.Files[0].Chomp {
			data = parser.ChompHeredocContent(data)
		}
		argv = append(append([]string(nil), st.shell...), data)
	default:
		return dockerfileError(errors.New("RUN with several heredocs or a heredoc inside a command is not supported"), lineOf(c))
	}
	args := st.runArgs()
	for _, a := range args {
		k, _, _ := strings.Cut(a, "=")
		if _, ok := r.opts.BuildArgs[k]; ok {
			r.usedArgs[k] = true
		}
	}
	createdBy := strings.Join(argv, " ")
	if len(args) > 0 {
		createdBy = fmt.Sprintf("|%d %s %s", len(args), strings.Join(args, " "), createdBy)
	}
	netMode := ""
	if r.opts.NetworkMode == "none" {
		netMode = "none"
	}
	raw, _ := json.Marshal(cfg)
	key := Key("run", st.img.ID, createdBy, string(raw), netMode)
	if img, ok := r.cached(ctx, key); ok {
		st.img = img
		return nil
	}
	ctr, err := r.bl.b.NewContainer(ctx, ContainerConfig{
		Image: st.img.ID, Cmd: argv, Env: append(append([]string(nil), cfg.Env...), args...),
		User: cfg.User, WorkingDir: cfg.WorkingDir, NetworkMode: netMode,
	})
	if err != nil {
		return err
	}
	defer r.removeContainer(ctx, ctr)
	fmt.Fprintf(r.out, " ---> Running in %s\n", shortID(ctr.ID()))
	code, err := ctr.Run(ctx, r.out)
	if err != nil {
		return err
	}
	if code != 0 {
		return &RunError{Cmd: argv, Code: code}
	}
	img, err := ctr.Commit(ctx, cfg, createdBy, holderOf(key))
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, " ---> Removed intermediate container %s\n", shortID(ctr.ID()))
	st.img = img
	return r.remember(key, img)
}

func cloneConfig(c dockerspec.DockerOCIImageConfig) dockerspec.DockerOCIImageConfig {
	raw, _ := json.Marshal(c)
	var out dockerspec.DockerOCIImageConfig
	_ = json.Unmarshal(raw, &out)
	return out
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if kk, _, _ := strings.Cut(kv, "="); kk == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func labelString(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, strconv.Quote(k)+"="+strconv.Quote(l[k]))
	}
	return strings.Join(parts, " ")
}

func jsonArgs(a []string) string {
	b, _ := json.Marshal(a)
	return string(b)
}

// normalizePort turns "80", "80/udp" or "8000-8002/tcp" into docker's key.
func normalizePort(p string) (string, error) {
	port, proto, _ := strings.Cut(p, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return "", fmt.Errorf("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	for _, n := range []string{lo, hi} {
		if !isRange && n == hi {
			continue
		}
		if v, err := strconv.Atoi(n); err != nil || v < 0 || v > 65535 {
			return "", fmt.Errorf("invalid port %q", p)
		}
	}
	return port + "/" + proto, nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func readLimited(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes: %w", filepath.Base(p), max, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

// downloadTimeout bounds an ADD of a URL with the default client.
const downloadTimeout = 10 * time.Minute
