package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/silo-containers/silo/internal/build"
	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
)

// buildFake is fakeBackend with builds: it records the options, reads the
// context and answers with err, or the id.
type buildFake struct {
	fakeBackend
	opts    build.Options
	context string
	err     error
	commit  engine.CommitOptions
}

func (f *buildFake) Build(_ context.Context, r io.Reader, opts build.Options) (string, error) {
	f.opts = opts
	b, _ := io.ReadAll(r)
	f.context = string(b)
	fmt.Fprintf(opts.Out, "Step 1/1 : FROM busybox\n")
	if f.err != nil {
		return "", f.err
	}
	return "sha256:abc", nil
}

func (f *buildFake) Commit(_ context.Context, ref string, opts engine.CommitOptions) (string, error) {
	if ref != "web" {
		return "", fmt.Errorf("no such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	f.commit = opts
	return "sha256:def", nil
}

func (f *buildFake) BuildPrune(context.Context) ([]string, error) { return []string{"sha256:1"}, nil }

func buildMessages(t *testing.T, body string) []wireMessage {
	t.Helper()
	var out []wireMessage
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var m wireMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestBuildHandler(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		err      error
		status   int
		wantLast func(m wireMessage) bool
		check    func(t *testing.T, o build.Options)
	}{
		{"ok", "?t=a:1&t=b&dockerfile=sub/Dockerfile&target=s&nocache=1&pull=1&networkmode=none&buildargs=%7B%22K%22%3A%22v%22%7D&labels=%7B%22l%22%3A%22x%22%7D",
			nil, http.StatusOK,
			func(m wireMessage) bool { return m.Aux != nil && strings.Contains(string(*m.Aux), "sha256:abc") },
			func(t *testing.T, o build.Options) {
				if len(o.Tags) != 2 || o.Dockerfile != "sub/Dockerfile" || o.Target != "s" || !o.NoCache || !o.Pull ||
					o.NetworkMode != "none" || *o.BuildArgs["K"] != "v" || o.Labels["l"] != "x" {
					t.Errorf("options %+v", o)
				}
			}},
		{"run fails", "", &build.RunError{Cmd: []string{"/bin/sh", "-c", "false"}, Code: 1}, http.StatusOK,
			func(m wireMessage) bool {
				return m.Error != nil && m.Error.Code == 1 && m.ErrorMessage == "The command '/bin/sh -c false' returned a non-zero code: 1"
			}, nil},
		{"bad dockerfile", "", fmt.Errorf("dockerfile line 2: unknown instruction: FOO: %w", errdefs.ErrInvalidArgument), http.StatusOK,
			func(m wireMessage) bool { return m.Error != nil && strings.Contains(m.ErrorMessage, "line 2") }, nil},
		{"bad buildargs", "?buildargs=nope", nil, http.StatusBadRequest, nil, nil},
		{"buildkit", "?version=2", nil, http.StatusNotImplemented, nil, nil},
		{"host network", "?networkmode=host", nil, http.StatusNotImplemented, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &buildFake{err: tt.err}
			w := serveBackend(t, f, "/build"+tt.query, "context-bytes")
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.wantLast == nil {
				return
			}
			ms := buildMessages(t, w.Body.String())
			if len(ms) < 2 || ms[0].Stream != "Step 1/1 : FROM busybox\n" || !tt.wantLast(ms[len(ms)-1]) {
				t.Fatalf("stream %s", w.Body)
			}
			if f.context != "context-bytes" {
				t.Errorf("context %q", f.context)
			}
			if tt.check != nil {
				tt.check(t, f.opts)
			}
		})
	}
}

func TestBuildQuiet(t *testing.T) {
	f := &buildFake{}
	w := serveBackend(t, f, "/build?q=1", "")
	ms := buildMessages(t, w.Body.String())
	for _, m := range ms {
		if strings.HasPrefix(m.Stream, "Step") {
			t.Errorf("q=1 streamed the steps: %s", w.Body)
		}
	}
	if last := ms[len(ms)-1]; last.Stream != "sha256:abc\n" {
		t.Errorf("last message %+v", last)
	}
}

func TestCommitHandler(t *testing.T) {
	f := &buildFake{}
	w := serveBackend(t, f, "/commit?container=web&repo=img&tag=v1&comment=c&author=a", `{"Cmd":["sh"]}`)
	if w.Code != http.StatusCreated || !strings.Contains(w.Body.String(), `"Id":"sha256:def"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if f.commit.Reference != "img:v1" || f.commit.Comment != "c" || f.commit.Author != "a" || f.commit.Config == nil || f.commit.Config.Cmd[0] != "sh" {
		t.Errorf("options %+v", f.commit)
	}
	if w := serveBackend(t, f, "/commit?container=nope", ""); w.Code != http.StatusNotFound {
		t.Errorf("unknown container: %d", w.Code)
	}
}

// serveBackend sends one POST to a server over b.
func serveBackend(t *testing.T, b Backend, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	New(b, Options{Version: "test"}).ServeHTTP(w, req)
	return w
}

func TestBuildPruneHandler(t *testing.T) {
	w := serveBackend(t, &buildFake{}, "/build/prune", "")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"CachesDeleted":["sha256:1"]`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w := serveBackend(t, &buildFake{}, "/build/prune?keep-storage=1", ""); w.Code != http.StatusNotImplemented {
		t.Errorf("keep-storage: %d", w.Code)
	}
}
