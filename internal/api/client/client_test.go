package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// serveUnix serves h on a unix socket and returns a client of it.
func serveUnix(t *testing.T, h http.Handler) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func frame(stream byte, s string) []byte {
	h := make([]byte, 8)
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
	return append(h, s...)
}

func TestClient(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("OK")) })
	mux.HandleFunc("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		var req container.CreateRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Config.Image != "busybox" || r.URL.Query().Get("name") != "web" {
			w.WriteHeader(400)
			w.Write([]byte(`{"message":"bad request"}`))
			return
		}
		w.WriteHeader(201)
		w.Write([]byte(`{"Id":"abc","Warnings":[]}`))
	})
	mux.HandleFunc("POST /containers/{id}/start", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		w.Write([]byte(`{"message":"no such container: ` + r.PathValue("id") + `"}`))
	})
	mux.HandleFunc("POST /containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		w.Write([]byte(`{"StatusCode":3}`))
	})
	mux.HandleFunc("GET /containers/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		w.Write(append(frame(1, "out\n"), frame(2, "err\n")...))
	})
	c := serveUnix(t, mux)
	ctx := context.Background()

	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := c.ContainerCreate(ctx, "web", &container.Config{Image: "busybox"}, nil, nil)
	if err != nil || resp.ID != "abc" {
		t.Fatalf("create: %+v %v", resp, err)
	}
	err = c.ContainerStart(ctx, "nope")
	if !IsNotFound(err) || err.Error() != "no such container: nope" || IsUnreachable(err) {
		t.Fatalf("start: %v", err)
	}
	ch, err := c.ContainerWait(ctx, "abc", container.WaitConditionNextExit)
	if err != nil {
		t.Fatal(err)
	}
	if res := <-ch; res.Code != 3 || res.Err != nil {
		t.Fatalf("wait: %+v", res)
	}
	var out, errb bytes.Buffer
	if err := c.ContainerLogs(ctx, "abc", LogsOptions{}, false, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if out.String() != "out\n" || errb.String() != "err\n" {
		t.Fatalf("logs: %q %q", out.String(), errb.String())
	}
}

func TestUnreachable(t *testing.T) {
	c, err := New("unix://" + filepath.Join(t.TempDir(), "none.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()); !IsUnreachable(err) {
		t.Fatalf("ping of nothing: %v", err)
	}
}

func TestNewHosts(t *testing.T) {
	tests := []struct {
		host string
		ok   bool
	}{
		{"", true},
		{"unix:///run/silo/silo.sock", true},
		{"tcp://127.0.0.1:2375", true},
		{"tcp://127.0.0.1", false},
		{"unix://", false},
		{"http://x", false},
	}
	for _, tt := range tests {
		_, err := New(tt.host)
		if (err == nil) != tt.ok {
			t.Errorf("New(%q): %v", tt.host, err)
		}
		if err != nil && !strings.Contains(err.Error(), "host") {
			t.Errorf("New(%q): error does not name the host: %v", tt.host, err)
		}
	}
}
