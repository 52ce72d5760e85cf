package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
)

// execFake is fakeBackend with exec: one container, "web"; each exec
// echoes its input back, and exits 0 once its input ends.
type execFake struct {
	fakeBackend
	mu      sync.Mutex
	created []container.ExecCreateRequest
	started map[string]bool
	resized []uint16
}

func (f *execFake) ExecCreate(_ context.Context, ref string, req container.ExecCreateRequest) (string, error) {
	if err := f.known(ref); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, req)
	return fmt.Sprint("exec", len(f.created)), nil
}

func (f *execFake) exec(id string) (container.ExecCreateRequest, error) {
	var n int
	if _, err := fmt.Sscanf(id, "exec%d", &n); err != nil || n < 1 || n > len(f.created) {
		return container.ExecCreateRequest{}, fmt.Errorf("no such exec instance: %s: %w", id, errdefs.ErrNotFound)
	}
	return f.created[n-1], nil
}

func (f *execFake) ExecStart(ctx context.Context, id string, detach bool) (bool, engine.Attachment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	req, err := f.exec(id)
	if err != nil {
		return false, nil, err
	}
	if f.started[id] {
		return false, nil, fmt.Errorf("exec %s has already been started: %w", id, errdefs.ErrConflict)
	}
	if f.started == nil {
		f.started = map[string]bool{}
	}
	f.started[id] = true
	if detach {
		return req.Tty, nil, nil
	}
	return req.Tty, newEcho(), nil
}

func (f *execFake) ExecResize(_ context.Context, id string, h, w uint16) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.exec(id); err != nil {
		return err
	}
	f.resized = append(f.resized, h, w)
	return nil
}

func (f *execFake) ExecInspect(_ context.Context, id string) (container.ExecInspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	req, err := f.exec(id)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	code := 0
	return container.ExecInspectResponse{ID: id, ContainerID: "web", ExitCode: &code, OpenStdin: req.AttachStdin,
		ProcessConfig: &container.ExecProcessConfig{Tty: req.Tty, Entrypoint: req.Cmd[0], Arguments: req.Cmd[1:]}}, nil
}

func TestExecHandlers(t *testing.T) {
	f := &execFake{}
	h := New(f, Options{Version: "test"})
	do := func(method, path, body string) *httptest.ResponseRecorder {
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, r))
		return w
	}
	w := do("POST", "/v1.51/containers/web/exec", `{"Cmd":["echo","hi"],"Env":["A=1"],"User":"nobody","WorkingDir":"/tmp","AttachStdout":true}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("exec create: %d %s", w.Code, w.Body)
	}
	var created container.ExecCreateResponse
	if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil || created.ID != "exec1" {
		t.Fatalf("exec create answer %s: %v", w.Body, err)
	}
	if got := f.created[0]; got.User != "nobody" || got.WorkingDir != "/tmp" || len(got.Env) != 1 || got.Cmd[1] != "hi" {
		t.Fatalf("create request %+v", got)
	}
	for _, tt := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/containers/nope/exec", `{"Cmd":["true"]}`, 404},
		{"POST", "/containers/web/exec", `{`, 400},
		{"POST", "/containers/web/exec", ``, 400},
		{"GET", "/exec/exec1/json", "", 200},
		{"GET", "/exec/nope/json", "", 404},
		{"POST", "/exec/exec1/resize?h=30&w=100", "", 200},
		{"POST", "/exec/exec1/resize?h=x&w=100", "", 400},
		{"POST", "/exec/nope/resize?h=30&w=100", "", 404},
		{"POST", "/exec/nope/start", `{"Detach":true}`, 404},
		{"POST", "/exec/exec1/start", `{"Detach":true}`, 200},
		{"POST", "/exec/exec1/start", `{"Detach":true}`, 409},
		{"POST", "/exec/exec1/start", `{`, 400},
	} {
		if w := do(tt.method, tt.path, tt.body); w.Code != tt.status {
			t.Errorf("%s %s %s: %d, want %d: %s", tt.method, tt.path, tt.body, w.Code, tt.status, w.Body)
		}
	}
	if len(f.resized) != 2 || f.resized[0] != 30 || f.resized[1] != 100 {
		t.Errorf("resized %v", f.resized)
	}
	w = do("GET", "/exec/exec1/json", "")
	var info container.ExecInspectResponse
	if err := json.Unmarshal(w.Body.Bytes(), &info); err != nil || info.ContainerID != "web" || info.ProcessConfig.Entrypoint != "echo" || info.ExitCode == nil {
		t.Fatalf("exec inspect %s: %v", w.Body, err)
	}
}

// A backend without exec answers 501.
func TestExecNotImplemented(t *testing.T) {
	w := serve(t, &fakeBackend{}, "POST", "/containers/web/exec", `{"Cmd":["true"]}`)
	if w.Code != http.StatusNotImplemented {
		t.Fatalf("status %d", w.Code)
	}
}

// The attached start hijacks the connection as attach does.
func TestExecStartHijack(t *testing.T) {
	f := &execFake{}
	srv := httptest.NewServer(New(f, Options{}))
	defer srv.Close()
	for i, upgrade := range []bool{true, false} {
		id, _ := f.ExecCreate(context.Background(), "web", container.ExecCreateRequest{Cmd: []string{"cat"}, AttachStdin: true, AttachStdout: true})
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		body := `{"Detach":false,"Tty":false}`
		req := "POST /v1.51/exec/" + id + "/start HTTP/1.1\r\nHost: silo\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n"
		if upgrade {
			req += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
		}
		if _, err := io.WriteString(conn, req+"\r\n"+body); err != nil {
			t.Fatal(err)
		}
		br := newReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := http.StatusOK
		if upgrade {
			want = http.StatusSwitchingProtocols
		}
		if resp.StatusCode != want || resp.Header.Get("Content-Type") != "application/vnd.docker.multiplexed-stream" {
			t.Fatalf("%d: status %d, content type %q", i, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if _, err := io.WriteString(conn, "ping"); err != nil {
			t.Fatal(err)
		}
		frame := make([]byte, 12)
		if _, err := io.ReadFull(br, frame); err != nil {
			t.Fatal(err)
		}
		if frame[0] != 1 || frame[7] != 4 || string(frame[8:]) != "ping" {
			t.Fatalf("frame %q", frame)
		}
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
			t.Fatalf("after the half-close: %q, %v", rest, err)
		}
	}
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
