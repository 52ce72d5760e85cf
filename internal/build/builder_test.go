package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/silo-containers/silo/internal/errdefs"
)

// memBackend is a Backend kept in memory for unit tests of the step
// logic: images are configs by ID, a container's root is a temporary
// directory, RUN steps "exit" with the code exits gives their command.
type memBackend struct {
	mu         sync.Mutex
	images     map[string]Image
	tags       map[string]string
	runs       [][]string
	runEnv     [][]string
	containers int
	held       map[string]string
	exits      map[string]int
	dir        string
}

func newMemBackend(t *testing.T) *memBackend {
	m := &memBackend{images: map[string]Image{}, tags: map[string]string{}, held: map[string]string{}, exits: map[string]int{}, dir: t.TempDir()}
	base := Image{ID: "sha256:base", Config: dockerspec.DockerOCIImageConfig{}}
	base.Config.Env = []string{"PATH=/bin"}
	base.Config.Cmd = []string{"sh"}
	m.images[base.ID] = base
	m.tags["busybox"] = base.ID
	return m
}

func (m *memBackend) Image(_ context.Context, ref string) (Image, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.tags[ref]; ok {
		ref = id
	}
	img, ok := m.images[ref]
	if !ok {
		return Image{}, fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
	}
	return img, nil
}

func (m *memBackend) Pull(ctx context.Context, ref string) (Image, error) { return m.Image(ctx, ref) }

func (m *memBackend) add(parent string, cfg dockerspec.DockerOCIImageConfig, createdBy, holder string) Image {
	m.mu.Lock()
	defer m.mu.Unlock()
	raw, _ := json.Marshal(cfg)
	id := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(parent+createdBy+string(raw)+fmt.Sprint(len(m.images)))))
	img := Image{ID: id, Config: cfg}
	m.images[id] = img
	m.held[holder] = id
	return img
}

func (m *memBackend) CommitConfig(_ context.Context, parent string, cfg dockerspec.DockerOCIImageConfig, createdBy, holder string) (Image, error) {
	return m.add(parent, cfg, createdBy, holder), nil
}

func (m *memBackend) Tag(_ context.Context, id, ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tags[ref] = id
	return nil
}

func (m *memBackend) Release(_ context.Context, holder string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.held, holder)
	return nil
}

func (m *memBackend) LayerDirs(context.Context, string) ([]string, error) { return nil, nil }

func (m *memBackend) NewContainer(_ context.Context, cfg ContainerConfig) (Container, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.containers++
	root := filepath.Join(m.dir, fmt.Sprint(m.containers))
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	if cfg.Cmd != nil {
		m.runs = append(m.runs, cfg.Cmd)
		m.runEnv = append(m.runEnv, cfg.Env)
	}
	return &memContainer{m: m, cfg: cfg, root: root}, nil
}

type memContainer struct {
	m    *memBackend
	cfg  ContainerConfig
	root string
}

func (c *memContainer) ID() string     { return "ctr" + filepath.Base(c.root) }
func (c *memContainer) Rootfs() string { return c.root }
func (c *memContainer) Run(_ context.Context, out io.Writer) (int, error) {
	fmt.Fprintln(out, "output of", strings.Join(c.cfg.Cmd, " "))
	return c.m.exits[c.cfg.Cmd[len(c.cfg.Cmd)-1]], nil
}
func (c *memContainer) Commit(_ context.Context, cfg dockerspec.DockerOCIImageConfig, createdBy, holder string) (Image, error) {
	return c.m.add(c.cfg.Image, cfg, createdBy, holder), nil
}
func (c *memContainer) Remove(context.Context) error { return os.RemoveAll(c.root) }

func buildIn(t *testing.T, m *memBackend, cache *Cache, dockerfile string, opts Options) (Image, string, error) {
	t.Helper()
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644)
	os.WriteFile(filepath.Join(ctx, "index.html"), []byte("hi"), 0o644)
	bl, err := New(m, cache, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	opts.Out = &out
	id, err := bl.Build(context.Background(), ctx, opts)
	if err != nil {
		return Image{}, out.String(), err
	}
	img, _ := m.Image(context.Background(), id)
	return img, out.String(), nil
}

func TestInstructions(t *testing.T) {
	v := "override"
	tests := []struct {
		name  string
		df    string
		opts  Options
		check func(t *testing.T, img Image, m *memBackend)
	}{
		{"env label expose user stopsignal", "FROM busybox\nENV A=1 B=\"two words\"\nLABEL x=$A\nEXPOSE 80 53/udp\nUSER nobody\nSTOPSIGNAL SIGINT\n", Options{},
			func(t *testing.T, img Image, m *memBackend) {
				c := img.Config
				if strings.Join(c.Env, ",") != "PATH=/bin,A=1,B=two words" || c.Labels["x"] != "1" || c.User != "nobody" || c.StopSignal != "SIGINT" {
					t.Errorf("config %+v", c)
				}
				if _, ok := c.ExposedPorts["53/udp"]; !ok || len(c.ExposedPorts) != 2 {
					t.Errorf("ports %v", c.ExposedPorts)
				}
				if m.containers != 0 {
					t.Errorf("metadata steps made %d containers", m.containers)
				}
			}},
		{"shell cmd entrypoint", "FROM busybox\nSHELL [\"/bin/ash\", \"-eo\"]\nCMD echo hi\nENTRYPOINT [\"/init\"]\n", Options{},
			func(t *testing.T, img Image, m *memBackend) {
				// CMD set in this stage survives ENTRYPOINT.
				if strings.Join(img.Config.Cmd, "|") != "/bin/ash|-eo|echo hi" || img.Config.Entrypoint[0] != "/init" || img.Config.Shell[0] != "/bin/ash" {
					t.Errorf("config %+v", img.Config)
				}
			}},
		{"entrypoint resets inherited cmd", "FROM busybox\nENTRYPOINT /init\n", Options{},
			func(t *testing.T, img Image, m *memBackend) {
				if img.Config.Cmd != nil || strings.Join(img.Config.Entrypoint, "|") != "/bin/sh|-c|/init" {
					t.Errorf("config %+v", img.Config)
				}
			}},
		{"args", "ARG V=meta\nFROM busybox\nARG V\nARG W=w-$V\nRUN echo $V $W\nENV V=env\nRUN echo $V\n", Options{BuildArgs: map[string]*string{"V": &v}},
			func(t *testing.T, img Image, m *memBackend) {
				if len(m.runs) != 2 || m.runs[0][2] != "echo $V $W" {
					t.Fatalf("runs %q", m.runs)
				}
				env := strings.Join(m.runEnv[0], ",")
				if !strings.Contains(env, "V=override") || !strings.Contains(env, "W=w-override") {
					t.Errorf("RUN env %s", env)
				}
				// ENV wins over ARG and ARG values are not in the image.
				if strings.Contains(strings.Join(m.runEnv[1], ","), "V=override") || strings.Contains(strings.Join(img.Config.Env, ","), "W=") {
					t.Errorf("env %q / %q", m.runEnv[1], img.Config.Env)
				}
			}},
		{"escape directive", "# escape=`\nFROM busybox\nRUN echo a `\n  b\nCMD [\"c:\\\\x\"]\n", Options{},
			func(t *testing.T, img Image, m *memBackend) {
				if len(m.runs) != 1 || m.runs[0][2] != "echo a   b" || img.Config.Cmd[0] != `c:\x` {
					t.Errorf("runs %q cmd %q", m.runs, img.Config.Cmd)
				}
			}},
		{"workdir relative", "FROM busybox\nWORKDIR /a\nWORKDIR b\n", Options{},
			func(t *testing.T, img Image, m *memBackend) {
				if img.Config.WorkingDir != "/a/b" {
					t.Errorf("workdir %q", img.Config.WorkingDir)
				}
			}},
		{"onbuild recorded", "FROM busybox\nONBUILD RUN echo child\nHEALTHCHECK --interval=5s CMD true\n", Options{},
			func(t *testing.T, img Image, m *memBackend) {
				if len(img.Config.OnBuild) != 1 || img.Config.Healthcheck == nil || img.Config.Healthcheck.Test[0] != "CMD-SHELL" {
					t.Errorf("config %+v", img.Config)
				}
			}},
		{"target", "FROM busybox AS one\nENV S=1\nFROM busybox AS two\nENV S=2\n", Options{Target: "one"},
			func(t *testing.T, img Image, m *memBackend) {
				if strings.Join(img.Config.Env, ",") != "PATH=/bin,S=1" {
					t.Errorf("env %q", img.Config.Env)
				}
			}},
		{"labels and tags", "FROM busybox\n", Options{Labels: map[string]string{"k": "v"}, Tags: []string{"out:1"}},
			func(t *testing.T, img Image, m *memBackend) {
				if img.Config.Labels["k"] != "v" || m.tags["out:1"] != img.ID {
					t.Errorf("labels %v tags %v", img.Config.Labels, m.tags)
				}
				for h, id := range m.held {
					if id == img.ID {
						t.Errorf("the tagged result is still held by %s", h)
					}
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemBackend(t)
			cache, _ := OpenCache(t.TempDir())
			img, out, err := buildIn(t, m, cache, tt.df, tt.opts)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			tt.check(t, img, m)
		})
	}
}

func TestOnbuildTriggers(t *testing.T) {
	m := newMemBackend(t)
	cache, _ := OpenCache(t.TempDir())
	parent, _, err := buildIn(t, m, cache, "FROM busybox\nONBUILD ENV CHILD=yes\n", Options{Tags: []string{"parent"}})
	if err != nil {
		t.Fatal(err)
	}
	img, out, err := buildIn(t, m, cache, "FROM parent\nLABEL x=y\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(img.Config.Env, ","), "CHILD=yes") || len(img.Config.OnBuild) != 0 || parent.ID == img.ID {
		t.Errorf("config %+v\n%s", img.Config, out)
	}
}

func TestCacheSteps(t *testing.T) {
	m := newMemBackend(t)
	cache, _ := OpenCache(t.TempDir())
	df := "FROM busybox\nRUN echo one\nENV A=1\nCOPY index.html /www/\nRUN echo two\n"
	first, _, err := buildIn(t, m, cache, df, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := m.containers
	again, out, err := buildIn(t, m, cache, df, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || m.containers != n || strings.Count(out, "Using cache") != 4 {
		t.Errorf("rebuild: id %s vs %s, %d new containers\n%s", again.ID, first.ID, m.containers-n, out)
	}
	// --no-cache runs everything again.
	if _, out, _ = buildIn(t, m, cache, df, Options{NoCache: true}); strings.Contains(out, "Using cache") {
		t.Errorf("--no-cache used the cache:\n%s", out)
	}
	// A changed instruction misses from there on.
	_, out, _ = buildIn(t, m, cache, strings.Replace(df, "echo two", "echo three", 1), Options{})
	if strings.Count(out, "Using cache") != 3 {
		t.Errorf("changed last RUN:\n%s", out)
	}
	// A cached image that is gone is rebuilt, not used.
	m.mu.Lock()
	delete(m.images, first.ID)
	m.mu.Unlock()
	if img, _, err := buildIn(t, m, cache, df, Options{}); err != nil || img.ID == first.ID {
		t.Errorf("gone image: %v %v", img.ID, err)
	}
}

func TestRunFailure(t *testing.T) {
	m := newMemBackend(t)
	m.exits["exit 3"] = 3
	cache, _ := OpenCache(t.TempDir())
	_, out, err := buildIn(t, m, cache, "FROM busybox\nRUN exit 3\n", Options{})
	code, ok := ExitCode(err)
	if !ok || code != 3 || err.Error() != "The command '/bin/sh -c exit 3' returned a non-zero code: 3" {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(out, "output of /bin/sh -c exit 3") {
		t.Errorf("output not streamed:\n%s", out)
	}
	ents, _ := os.ReadDir(m.dir)
	if len(ents) != 0 {
		t.Errorf("containers left: %v", ents)
	}
}

func TestPrune(t *testing.T) {
	m := newMemBackend(t)
	cache, _ := OpenCache(t.TempDir())
	if _, _, err := buildIn(t, m, cache, "FROM busybox\nENV A=1\nRUN echo x\n", Options{}); err != nil {
		t.Fatal(err)
	}
	bl, _ := New(m, cache, t.TempDir())
	ids, err := bl.Prune(context.Background())
	if err != nil || len(ids) != 2 {
		t.Fatalf("pruned %v %v", ids, err)
	}
	if len(m.held) != 0 {
		t.Errorf("holds left: %v", m.held)
	}
	if all, _ := cache.Images(); len(all) != 0 {
		t.Errorf("entries left: %v", all)
	}
}
