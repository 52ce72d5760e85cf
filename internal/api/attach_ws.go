package api

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"golang.org/x/net/websocket"

	"github.com/silo-containers/silo/internal/errdefs"
)

// containerAttachWS is GET /containers/{id}/attach/ws: the attachment over
// a WebSocket (RFC 6455), as dockerd serves it to browsers and SDKs. The
// parameters are attach's (stdin, stdout, stderr, logs, stream,
// detachKeys); the client's messages go to the container's stdin, and
// its output comes back in binary frames, raw: stdout and stderr alike,
// never multiplexed.
//
// dockerd accepts any Origin. A page in a browser can open a WebSocket to
// any address, the API's loopback TCP port included, so silo accepts only
// clients that send no Origin (programs) or one naming the host they
// connected to.
func (s *Server) containerAttachWS(w http.ResponseWriter, r *http.Request) {
	if err := checkWSOrigin(r); err != nil {
		writeError(w, err)
		return
	}
	req, ok := s.openAttach(w, r)
	if !ok {
		return
	}
	if req.a != nil {
		defer req.a.Close()
	}
	srv := websocket.Server{
		Handshake: func(*websocket.Config, *http.Request) error { return nil }, // checked above
		Handler: func(ws *websocket.Conn) {
			ws.PayloadType = websocket.BinaryFrame
			if req.logs {
				if err := s.writeAttachLogs(r, ws, req.id, req.opts, false); err != nil {
					return
				}
			}
			if req.a != nil {
				req.serve(ws, ws, true)
			}
		},
	}
	srv.ServeHTTP(hijacker{w}, r)
}

// checkWSOrigin refuses a WebSocket request whose Origin names another
// host than the one the client connected to.
func checkWSOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host != r.Host {
		return fmt.Errorf("attach: websocket from origin %q refused (not %s): %w", origin, r.Host, errdefs.ErrForbidden)
	}
	return nil
}

// hijacker gives x/net/websocket, which type-asserts http.Hijacker, the
// hijack of a wrapped ResponseWriter (the server's statusWriter).
type hijacker struct{ http.ResponseWriter }

// Hijack takes over the connection through the wrapped writer.
func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(h.ResponseWriter).Hijack()
}
