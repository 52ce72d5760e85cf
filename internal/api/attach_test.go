package api

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/silo-containers/silo/internal/engine"
)

// echoAttachment sends its input back as output (multiplexed on stdout);
// its output ends when the input does.
type echoAttachment struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func newEcho() *echoAttachment {
	r, w := io.Pipe()
	return &echoAttachment{r: r, w: w}
}

func (a *echoAttachment) Read(p []byte) (int, error) { return a.r.Read(p) }
func (a *echoAttachment) Write(p []byte) (int, error) {
	hdr := []byte{1, 0, 0, 0, 0, 0, 0, byte(len(p))}
	if _, err := a.w.Write(append(hdr, p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}
func (a *echoAttachment) CloseWrite() error { return a.w.Close() }
func (a *echoAttachment) Close() error      { a.r.Close(); return a.w.Close() }

func (f *fakeBackend) Attach(ctx context.Context, ref string, opts engine.AttachOptions) (bool, engine.Attachment, error) {
	if err := f.known(ref); err != nil {
		return false, nil, err
	}
	a := newEcho()
	// As the monitor client does: the attachment ends with the context.
	context.AfterFunc(ctx, func() { a.Close() })
	return false, a, nil
}

func (f *fakeBackend) Resize(_ context.Context, ref string, h, w uint16) error {
	return f.known(ref)
}

// attachConn sends an attach request on a raw connection to srv and
// returns the connection and the parsed response.
func attachConn(t *testing.T, srv *httptest.Server, path string, upgrade bool) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "POST " + path + " HTTP/1.1\r\nHost: silo\r\nContent-Type: text/plain\r\n"
	if upgrade {
		req += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, resp
}

func TestAttachHijack(t *testing.T) {
	srv := httptest.NewServer(New(&fakeBackend{}, Options{}))
	defer srv.Close()
	for _, upgrade := range []bool{true, false} {
		conn, br, resp := attachConn(t, srv, "/v1.51/containers/web/attach?stream=1&stdin=1&stdout=1&stderr=1", upgrade)
		want := http.StatusOK
		if upgrade {
			want = http.StatusSwitchingProtocols
			if resp.Header.Get("Upgrade") != "tcp" || !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
				t.Errorf("upgrade headers %v", resp.Header)
			}
		}
		if resp.StatusCode != want {
			t.Fatalf("upgrade %v: status %d, want %d", upgrade, resp.StatusCode, want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.docker.multiplexed-stream" {
			t.Errorf("content type %q", ct)
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
		// The half-close ends the input; the fake then ends the output,
		// and the server closes the connection.
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(br)
		if err != nil || len(rest) != 0 {
			t.Fatalf("after the half-close: %q, %v", rest, err)
		}
	}
}

func TestUpgradeRequested(t *testing.T) {
	for _, tt := range []struct {
		h    http.Header
		want bool
	}{
		{http.Header{"Connection": {"Upgrade"}, "Upgrade": {"tcp"}}, true},
		{http.Header{"Connection": {"keep-alive, upgrade"}}, true},
		{http.Header{"Connection": {"keep-alive"}}, false},
		{http.Header{}, false},
	} {
		if got := upgradeRequested(&http.Request{Header: tt.h}); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.h, got, tt.want)
		}
	}
}
