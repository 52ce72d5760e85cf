package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// TestAttachWebSocket: what a WebSocket client sends reaches the
// container's stdin, and its output comes back raw (the fake's
// multiplexed frames undone) in binary messages.
func TestAttachWebSocket(t *testing.T) {
	srv := httptest.NewServer(New(&fakeBackend{}, Options{}))
	defer srv.Close()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1.51/containers/web/attach/ws?stream=1&stdin=1&stdout=1"
	cfg, err := websocket.NewConfig(wsURL, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetDeadline(time.Now().Add(10 * time.Second))
	if err := websocket.Message.Send(ws, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := websocket.Message.Receive(ws, &got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "ping" {
		t.Fatalf("received %q, want the raw %q", got, "ping")
	}
}

func TestAttachWebSocketRefused(t *testing.T) {
	srv := httptest.NewServer(New(&fakeBackend{}, Options{}))
	defer srv.Close()
	for _, tc := range []struct {
		name, path, origin string
		want               int
	}{
		{"another origin", "/containers/web/attach/ws?stream=1&stdout=1", "http://evil.example", http.StatusForbidden},
		{"no stream chosen", "/containers/web/attach/ws?stream=1", "", http.StatusBadRequest},
		{"unknown container", "/containers/nosuch/attach/ws?stream=1&stdout=1", "", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}
