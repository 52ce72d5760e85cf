package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/common"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/engine/logs"
	"github.com/silo-containers/silo/internal/errdefs"
)

// fakeBackend knows one container, "web", and one image, "busybox".
type fakeBackend struct {
	// Backend is nil: a test calling a method the fake does not define
	// panics (and the server answers 500), which the test sees.
	Backend
	created   []engine.CreateRequest
	stopped   []*int
	killed    []string
	removed   []engine.RemoveOptions
	listOpts  engine.ListOptions
	logsOpts  engine.LogsOptions
	loaded    []byte
	panicking bool
}

func notFound(ref string) error {
	return fmt.Errorf("no such container: %s: %w", ref, errdefs.ErrNotFound)
}

func (f *fakeBackend) known(ref string) error {
	if f.panicking {
		panic("boom")
	}
	if ref != "web" {
		return notFound(ref)
	}
	return nil
}

func (f *fakeBackend) Create(_ context.Context, req engine.CreateRequest) (engine.CreateResponse, error) {
	if req.Config.Image == "missing" {
		return engine.CreateResponse{}, fmt.Errorf("no such image: missing: %w", errdefs.ErrNotFound)
	}
	if req.HostConfig != nil && req.HostConfig.Isolation == "hyperv" {
		return engine.CreateResponse{}, fmt.Errorf("isolation hyperv: the vm backend is not available yet: %w", errdefs.ErrNotImplemented)
	}
	if req.Name == "taken" {
		return engine.CreateResponse{}, fmt.Errorf("name in use: %w", errdefs.ErrConflict)
	}
	f.created = append(f.created, req)
	return engine.CreateResponse{ID: "abc", Warnings: []string{}}, nil
}

func (f *fakeBackend) Start(_ context.Context, ref string) error {
	if ref == "running" {
		return fmt.Errorf("already started: %w", engine.ErrNotModified)
	}
	return f.known(ref)
}

func (f *fakeBackend) Stop(_ context.Context, ref, _ string, t *int) error {
	f.stopped = append(f.stopped, t)
	return f.known(ref)
}

func (f *fakeBackend) Kill(_ context.Context, ref, sig string) error {
	f.killed = append(f.killed, sig)
	if err := f.known(ref); err != nil {
		return err
	}
	if sig == "BOGUS" {
		return fmt.Errorf("invalid signal: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

func (f *fakeBackend) Wait(_ context.Context, ref string, _ container.WaitCondition) (int, error) {
	return 3, f.known(ref)
}

func (f *fakeBackend) Remove(_ context.Context, ref string, o engine.RemoveOptions) error {
	f.removed = append(f.removed, o)
	if err := f.known(ref); err != nil {
		return err
	}
	if !o.Force {
		return fmt.Errorf("container is running: %w", errdefs.ErrConflict)
	}
	return nil
}

func (f *fakeBackend) List(_ context.Context, o engine.ListOptions) ([]container.Summary, error) {
	f.listOpts = o
	if f.panicking {
		panic("boom")
	}
	return []container.Summary{{ID: "abc", Names: []string{"/web"}}}, nil
}

func (f *fakeBackend) Inspect(_ context.Context, ref string) (container.InspectResponse, error) {
	if err := f.known(ref); err != nil {
		return container.InspectResponse{}, err
	}
	return container.InspectResponse{ID: "abc", Name: "/web", HostConfig: &container.HostConfig{Isolation: "process"}}, nil
}

func (f *fakeBackend) Logs(_ context.Context, ref string, o engine.LogsOptions) (bool, iter.Seq2[logs.Entry, error], error) {
	f.logsOpts = o
	if err := f.known(ref); err != nil {
		return false, nil, err
	}
	seq := func(yield func(logs.Entry, error) bool) {
		_ = yield(logs.Entry{Stream: "stdout", Line: []byte("hello\n")}, nil) &&
			yield(logs.Entry{Stream: "stderr", Line: []byte("oops\n")}, nil)
	}
	return false, seq, nil
}

func (f *fakeBackend) Count() engine.Counts {
	return engine.Counts{Containers: 2, Running: 1, Stopped: 1}
}

func (f *fakeBackend) Images(context.Context) ([]image.Summary, error) {
	return []image.Summary{{ID: "sha256:1", RepoTags: []string{"busybox:latest"}}}, nil
}

func (f *fakeBackend) ImageInspect(_ context.Context, ref string) (image.InspectResponse, error) {
	if ref != "busybox" && ref != "library/busybox:latest" {
		return image.InspectResponse{}, fmt.Errorf("no such image: %s: %w", ref, errdefs.ErrNotFound)
	}
	return image.InspectResponse{ID: "sha256:1"}, nil
}

func (f *fakeBackend) LoadImages(_ context.Context, r io.Reader) ([]string, error) {
	b, _ := io.ReadAll(r)
	f.loaded = b
	if len(b) == 0 {
		return nil, fmt.Errorf("load: empty archive: %w", errdefs.ErrInvalidArgument)
	}
	return []string{"busybox:latest"}, nil
}

func (f *fakeBackend) RemoveImage(_ context.Context, ref string, force bool) ([]image.DeleteResponse, error) {
	if ref != "busybox" {
		return nil, fmt.Errorf("no such image: %s: %w", ref, errdefs.ErrNotFound)
	}
	return []image.DeleteResponse{{Untagged: "busybox:latest"}}, nil
}

func (f *fakeBackend) BuildBusybox(_ context.Context, ref string) (string, error) {
	return "sha256:1", nil
}

func serve(t *testing.T, f *fakeBackend, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	w := httptest.NewRecorder()
	New(f, Options{Version: "test"}).ServeHTTP(w, req)
	return w
}

func TestHandlers(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		status                   int
		// contains is a substring of the body (the error message).
		contains string
	}{
		{"ping", "GET", "/_ping", "", 200, "OK"},
		{"ping head", "HEAD", "/_ping", "", 200, ""},
		{"ping versioned", "GET", "/v1.51/_ping", "", 200, "OK"},
		{"version", "GET", "/v1.57/version", "", 200, `"ApiVersion":"1.57"`},
		{"version too new", "GET", "/v9.99/version", "", 400, "too new"},
		{"version too old", "GET", "/v1.12/version", "", 400, "too old"},
		{"info", "GET", "/info", "", 200, `"ContainersRunning":1`},

		{"create", "POST", "/containers/create?name=web", `{"Image":"busybox","Cmd":["true"]}`, 201, `"Id":"abc"`},
		{"create malformed", "POST", "/containers/create", `{"Image":`, 400, "malformed request body"},
		{"create wrong type", "POST", "/containers/create", `{"Image":5}`, 400, "malformed request body"},
		{"create empty", "POST", "/containers/create", "", 400, "empty request body"},
		{"create null config", "POST", "/containers/create", `null`, 400, "config cannot be empty"},
		{"create no image", "POST", "/containers/create", `{"Image":"missing"}`, 404, "no such image"},
		{"create hyperv", "POST", "/containers/create", `{"Image":"busybox","HostConfig":{"Isolation":"hyperv"}}`, 501, "isolation hyperv: the vm backend is not available yet"},
		{"create name conflict", "POST", "/containers/create?name=taken", `{"Image":"busybox"}`, 409, "name in use"},
		{"create bad platform", "POST", "/containers/create?platform=windows", `{"Image":"busybox"}`, 400, "only linux"},

		{"start", "POST", "/containers/web/start", "", 204, ""},
		{"start running", "POST", "/containers/running/start", "", 304, ""},
		{"start unknown", "POST", "/v1.51/containers/nope/start", "", 404, "no such container: nope"},
		{"stop", "POST", "/containers/web/stop?t=3", "", 204, ""},
		{"stop bad t", "POST", "/containers/web/stop?t=x", "", 400, "invalid value for t"},
		{"stop unknown", "POST", "/containers/nope/stop", "", 404, "no such container"},
		{"kill", "POST", "/containers/web/kill?signal=TERM", "", 204, ""},
		{"kill bad signal", "POST", "/containers/web/kill?signal=BOGUS", "", 400, "invalid signal"},
		{"kill unknown", "POST", "/containers/nope/kill", "", 404, "no such container"},
		{"wait", "POST", "/containers/web/wait?condition=next-exit", "", 200, `"StatusCode":3`},
		{"wait bad condition", "POST", "/containers/web/wait?condition=later", "", 400, "invalid condition"},
		{"wait unknown", "POST", "/containers/nope/wait", "", 404, "no such container"},
		{"remove running", "DELETE", "/containers/web", "", 409, "container is running"},
		{"remove force", "DELETE", "/containers/web?force=1", "", 204, ""},
		{"remove unknown", "DELETE", "/containers/nope?force=true", "", 404, "no such container"},
		{"list", "GET", "/containers/json?all=1", "", 200, `"Names":["/web"]`},
		{"list bad filters", "GET", "/containers/json?filters={bad", "", 400, "invalid filters"},
		{"list bad limit", "GET", "/containers/json?limit=x", "", 400, "invalid limit"},
		{"inspect", "GET", "/v1.51/containers/web/json", "", 200, `"Isolation":"process"`},
		{"inspect unknown", "GET", "/containers/nope/json", "", 404, "no such container"},
		{"logs no stream", "GET", "/containers/web/logs", "", 400, "choose at least one stream"},
		{"logs bad tail", "GET", "/containers/web/logs?stdout=1&tail=x", "", 400, "invalid tail"},
		{"logs bad since", "GET", "/containers/web/logs?stdout=1&since=yesterday", "", 400, "invalid since"},
		{"logs unknown", "GET", "/containers/nope/logs?stdout=1", "", 404, "no such container"},

		{"images", "GET", "/images/json", "", 200, "busybox:latest"},
		{"image inspect", "GET", "/images/busybox/json", "", 200, `"Id":"sha256:1"`},
		{"image inspect slash", "GET", "/v1.51/images/library/busybox:latest/json", "", 200, `"Id":"sha256:1"`},
		{"image inspect unknown", "GET", "/images/nope/json", "", 404, "no such image"},
		{"image history", "GET", "/images/busybox/history", "", 501, "not implemented yet"},
		{"image load", "POST", "/images/load", "tarbytes", 200, "Loaded image: busybox:latest"},
		{"image load empty", "POST", "/images/load", "", 400, "empty"},
		{"image remove", "DELETE", "/images/busybox", "", 200, "Untagged"},
		{"image remove unknown", "DELETE", "/images/nope", "", 404, "no such image"},
		{"busybox", "POST", "/silo/images/busybox", "", 200, "Loaded image: busybox:latest"},

		{"attach no stream", "POST", "/v1.51/containers/web/attach?stream=1", "", 400, "choose at least one stream"},
		{"attach unknown", "POST", "/containers/nope/attach?stream=1&stdout=1", "", 404, "no such container"},
		{"resize", "POST", "/containers/web/resize?h=24&w=80", "", 200, ""},
		{"resize bad", "POST", "/containers/web/resize?h=x&w=80", "", 400, "must be numbers"},
		{"resize unknown", "POST", "/containers/nope/resize?h=24&w=80", "", 404, "no such container"},
		{"exec", "POST", "/containers/web/exec", `{}`, 501, "not implemented yet"},
		{"pull", "POST", "/images/create?fromImage=busybox", "", 501, "POST /images/create: not implemented yet"},
		{"unknown path", "GET", "/nothing/here", "", 404, "page not found"},
		{"wrong method", "PUT", "/containers/json", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, &fakeBackend{}, tt.method, tt.path, tt.body)
			if w.Code != tt.status {
				t.Fatalf("%s %s: status %d, want %d; body %s", tt.method, tt.path, w.Code, tt.status, w.Body)
			}
			if !strings.Contains(w.Body.String(), tt.contains) {
				t.Errorf("%s %s: body %q does not contain %q", tt.method, tt.path, w.Body, tt.contains)
			}
			if w.Header().Get("Api-Version") != APIVersion {
				t.Errorf("Api-Version header %q", w.Header().Get("Api-Version"))
			}
			if tt.status >= 400 && tt.method != "HEAD" && tt.contains != "" {
				var e common.ErrorResponse
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Message == "" {
					t.Errorf("error body %q is not docker's {\"message\": ...}", w.Body)
				}
			}
		})
	}
}

func TestCreatePassesNameAndConfig(t *testing.T) {
	f := &fakeBackend{}
	body := `{"Image":"busybox","Cmd":["echo","hi"],"Labels":{"a":"b"},"HostConfig":{"Memory":67108864,"AutoRemove":true}}`
	if w := serve(t, f, "POST", "/v1.51/containers/create?name=web", body); w.Code != 201 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := f.created[0]
	if got.Name != "web" || got.Config.Image != "busybox" || got.Config.Labels["a"] != "b" ||
		got.HostConfig.Memory != 64<<20 || !got.HostConfig.AutoRemove || strings.Join(got.Config.Cmd, " ") != "echo hi" {
		t.Errorf("backend got %+v / %+v", got.Config, got.HostConfig)
	}
}

func TestListFilters(t *testing.T) {
	tests := []struct {
		query string
		want  engine.Filters
		all   bool
	}{
		{`filters={"status":{"exited":true},"label":{"a=b":true}}`, engine.Filters{"status": {"exited"}, "label": {"a=b"}}, false},
		{`filters={"name":["web"]}&all=true`, engine.Filters{"name": {"web"}}, true},
		{`limit=2`, engine.Filters{}, true},
	}
	for _, tt := range tests {
		f := &fakeBackend{}
		if w := serve(t, f, "GET", "/containers/json?"+strings.ReplaceAll(tt.query, `"`, "%22"), ""); w.Code != 200 {
			t.Fatalf("%s: status %d: %s", tt.query, w.Code, w.Body)
		}
		if fmt.Sprint(f.listOpts.Filters) != fmt.Sprint(tt.want) || f.listOpts.All != tt.all {
			t.Errorf("%s: got %+v, want filters %v all %v", tt.query, f.listOpts, tt.want, tt.all)
		}
	}
}

// Logs of a container without a terminal are framed with docker's
// 8-byte multiplexed stream header.
func TestLogsFraming(t *testing.T) {
	f := &fakeBackend{}
	w := serve(t, f, "GET", "/containers/web/logs?stdout=1&stderr=1&tail=5&timestamps=1&since=1700000000.5", "")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/vnd.docker.multiplexed-stream" {
		t.Errorf("content type %q", ct)
	}
	if f.logsOpts.Tail != 5 || !f.logsOpts.Timestamps || !f.logsOpts.Since.Equal(time.Unix(1700000000, 5e8)) {
		t.Errorf("options %+v", f.logsOpts)
	}
	b := w.Body.Bytes()
	var got []string
	for len(b) >= 8 {
		n := binary.BigEndian.Uint32(b[4:8])
		got = append(got, fmt.Sprintf("%d:%s", b[0], b[8:8+n]))
		b = b[8+n:]
	}
	if want := []string{"1:hello\n", "2:oops\n"}; fmt.Sprint(got) != fmt.Sprint(want) || len(b) != 0 {
		t.Errorf("frames %q, want %q (rest %q)", got, want, b)
	}
}

func TestStopTimeout(t *testing.T) {
	f := &fakeBackend{}
	serve(t, f, "POST", "/containers/web/stop", "")
	serve(t, f, "POST", "/containers/web/stop?t=0", "")
	if f.stopped[0] != nil || f.stopped[1] == nil || *f.stopped[1] != 0 {
		t.Errorf("timeouts %v", f.stopped)
	}
}

// A panic in a handler is a 500 with a message, and the server goes on.
func TestRecover(t *testing.T) {
	f := &fakeBackend{panicking: true}
	w := serve(t, f, "GET", "/containers/json", "")
	if w.Code != 500 || !strings.Contains(w.Body.String(), "internal error") {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
	f.panicking = false
	if w := serve(t, f, "GET", "/containers/json", ""); w.Code != 200 {
		t.Fatalf("after panic: status %d", w.Code)
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("x: %w", errdefs.ErrInvalidArgument), 400},
		{fmt.Errorf("x: %w", errdefs.ErrNotFound), 404},
		{fmt.Errorf("x: %w", errdefs.ErrConflict), 409},
		{fmt.Errorf("x: %w", errdefs.ErrAlreadyExists), 409},
		{fmt.Errorf("x: %w", errdefs.ErrNotImplemented), 501},
		{fmt.Errorf("x: %w", engine.ErrNotModified), 304},
		{io.ErrUnexpectedEOF, 500},
	}
	for _, tt := range tests {
		if got := statusOf(tt.err); got != tt.want {
			t.Errorf("statusOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestStreamWriterRaw(t *testing.T) {
	var buf bytes.Buffer
	s := &streamWriter{w: &buf}
	_ = s.write("stdout", []byte("a"))
	_ = s.write("stderr", []byte("b"))
	if buf.String() != "ab" {
		t.Errorf("raw stream %q", buf.String())
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"", time.Time{}, false},
		{"0", time.Time{}, false},
		{"1700000000", time.Unix(1700000000, 0), false},
		{"1700000000.000000001", time.Unix(1700000000, 1), false},
		{"2024-05-01T10:00:00Z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), false},
		{"soon", time.Time{}, true},
		{"1.x", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseTime("since", tt.in)
		if (err != nil) != tt.err || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q) = %v, %v", tt.in, got, err)
		}
	}
}

// Fuzz the request decoding: whatever the body, no panic and no 5xx.
func FuzzCreate(f *testing.F) {
	f.Add(`{"Image":"busybox"}`)
	f.Add(`{"Image":"busybox","HostConfig":{"Memory":-1}}`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, body string) {
		w := serve(t, &fakeBackend{}, "POST", "/containers/create", body)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}
