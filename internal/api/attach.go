package api

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"

	"github.com/silo-containers/silo/internal/api/detachkeys"
	"github.com/silo-containers/silo/internal/engine"
	"github.com/silo-containers/silo/internal/errdefs"
)

// containerAttach is POST /containers/{id}/attach: Docker's connection
// hijack. The answer is 101 UPGRADED (Connection: Upgrade, Upgrade: tcp)
// when the client asked for an upgrade, else 200, with the stream's
// content type; then the raw connection carries the container's output
// to the client (raw with a terminal, else multiplexed) and the client's
// input to the container's stdin. The client's half-close ends the input
// (the container's stdin closes with StdinOnce); the end of the output
// (the container exited) closes the connection.
//
// logs=1 sends what the log holds first; stream=0 sends only that.
//
// detachKeys (default ctrl-p,ctrl-q, as dockerd's) is the key sequence
// that, read from the client's input, ends the attachment and leaves the
// container running. As dockerd, only a container with a terminal is
// watched: a pipe's input is data, passed on whole.
func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request) {
	req, ok := s.openAttach(w, r)
	if !ok {
		return
	}
	if req.a != nil {
		defer req.a.Close()
	}
	conn, brw, err := hijackStream(w, r, req.tty)
	if err != nil {
		return
	}
	defer conn.Close()
	if req.logs {
		if err := s.writeAttachLogs(r, brw.Writer, req.id, req.opts, !req.tty); err != nil {
			return
		}
	}
	if err := brw.Flush(); err != nil || req.a == nil {
		return
	}
	req.serve(conn, hijackedInput(conn, brw), false)
}

// attachRequest is an attach (hijacked or WebSocket) with its attachment
// open (nil for stream=0).
type attachRequest struct {
	id   string
	opts engine.AttachOptions
	logs bool
	keys []byte
	tty  bool
	a    engine.Attachment
}

// openAttach reads an attach request's parameters and attaches (when it
// streams), answering errors itself. The caller closes req.a.
func (s *Server) openAttach(w http.ResponseWriter, r *http.Request) (*attachRequest, bool) {
	req := &attachRequest{id: r.PathValue("id"), logs: boolValue(r, "logs")}
	stream := boolValue(r, "stream")
	req.opts = engine.AttachOptions{Stdin: boolValue(r, "stdin"), Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr")}
	if !req.opts.Stdin && !req.opts.Stdout && !req.opts.Stderr {
		writeError(w, fmt.Errorf("bad parameters: you must choose at least one stream: %w", errdefs.ErrInvalidArgument))
		return nil, false
	}
	keySeq := r.URL.Query().Get("detachKeys")
	if keySeq == "" {
		keySeq = detachkeys.Default
	}
	var err error
	if req.keys, err = detachkeys.Parse(keySeq); err != nil {
		writeError(w, fmt.Errorf("attach: %w", err))
		return nil, false
	}
	ctx := r.Context()
	if req.logs {
		// Look before attaching: an unknown container is an error status.
		if req.tty, _, err = s.b.Logs(ctx, req.id, engine.LogsOptions{Stdout: req.opts.Stdout, Stderr: req.opts.Stderr, Tail: -1}); err != nil {
			writeError(w, err)
			return nil, false
		}
	}
	if stream {
		if req.tty, req.a, err = s.b.Attach(ctx, req.id, req.opts); err != nil {
			writeError(w, err)
			return nil, false
		}
	} else if _, err := s.b.Inspect(ctx, req.id); err != nil {
		writeError(w, err)
		return nil, false
	}
	return req, true
}

// serve copies between the client's connection and the attachment (see
// copyAttach); demux turns the multiplexed output of a container without
// a terminal back into plain bytes.
func (req *attachRequest) serve(conn net.Conn, in io.Reader, demux bool) {
	a := req.a
	if req.tty {
		in = detachkeys.NewReader(in, req.keys)
		// As dockerd: the end of a terminal's input ends the attachment
		// (a client that detached on its own, as docker's CLI does, goes
		// away without sending the keys), not the container's terminal.
		a = endWithInput{a}
	}
	copyAttach(conn, in, a, req.opts.Stdin, demux && !req.tty)
}

// endWithInput is an attachment whose output ends with the client's input.
type endWithInput struct{ engine.Attachment }

// CloseWrite closes the whole attachment.
func (e endWithInput) CloseWrite() error { return e.Close() }

// hijackStream takes over the connection of an attach-like request
// (attach, exec start) and writes the head of the answer (not flushed):
// 101 UPGRADED when the client asked for an upgrade, else 200, with the
// content type of the stream (raw for a terminal, else multiplexed). A
// hijack failure is answered as an error.
func hijackStream(w http.ResponseWriter, r *http.Request, tty bool) (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		err = fmt.Errorf("attach: hijack the connection: %w", err)
		writeError(w, err)
		return nil, nil, err
	}
	ctype := "application/vnd.docker.multiplexed-stream"
	if tty {
		ctype = "application/vnd.docker.raw-stream"
	}
	var head strings.Builder
	if upgradeRequested(r) {
		head.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: " + ctype + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n")
	} else {
		head.WriteString("HTTP/1.1 200 OK\r\nContent-Type: " + ctype + "\r\n")
	}
	for _, k := range []string{"Api-Version", "Server", "Ostype"} {
		if v := w.Header().Get(k); v != "" {
			head.WriteString(k + ": " + v + "\r\n")
		}
	}
	head.WriteString("\r\n")
	if _, err := brw.WriteString(head.String()); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, brw, nil
}

// hijackedInput is what the client sends on a hijacked connection. It is
// read from conn itself (after what the server buffered): through brw,
// the server's reader would cancel the request's context at the client's
// half-close, and the attachment with it.
func hijackedInput(conn net.Conn, brw *bufio.ReadWriter) io.Reader {
	var in io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ := brw.Reader.Peek(n)
		in = io.MultiReader(bytes.NewReader(buffered), conn)
	}
	return in
}

// copyAttach copies the output of a to conn until it ends (demux: the
// frames' contents, stdout and stderr alike), and, with
// stdin, what the client sends (in) to a; the client's half-close becomes
// a.CloseWrite. An input that reads the detach keys (a detachkeys.Reader)
// ends the attachment and the connection, without closing the container's
// input.
func copyAttach(conn net.Conn, in io.Reader, a engine.Attachment, stdin, demux bool) {
	var wg sync.WaitGroup
	if stdin {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch _, err := io.Copy(a, in); {
			case err == nil:
				// EOF: the client closed its side.
				_ = a.CloseWrite()
			case errors.Is(err, detachkeys.ErrDetached):
				// Ends the output copy below.
				a.Close()
				conn.Close()
			}
		}()
	}
	if demux {
		_, _ = stdcopy.StdCopy(conn, conn, a)
	} else {
		_, _ = io.Copy(conn, a)
	}
	// The output ended: the client reads EOF, and the input copier, if
	// still reading, stops.
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	conn.Close()
	a.Close()
	wg.Wait()
}

// writeAttachLogs sends the log's entries (attach with logs=1),
// multiplexed or raw.
func (s *Server) writeAttachLogs(r *http.Request, w io.Writer, id string, opts engine.AttachOptions, mux bool) error {
	_, entries, err := s.b.Logs(r.Context(), id, engine.LogsOptions{Stdout: opts.Stdout, Stderr: opts.Stderr, Tail: -1})
	if err != nil {
		return err
	}
	out := &streamWriter{w: w, mux: mux}
	for e, err := range entries {
		if err != nil {
			return err
		}
		if err := out.write(e.Stream, e.Line); err != nil {
			return err
		}
	}
	return nil
}

// upgradeRequested reports whether the client asked to upgrade the
// connection (docker sends Connection: Upgrade, Upgrade: tcp).
func upgradeRequested(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return true
	}
	for _, v := range r.Header.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
				return true
			}
		}
	}
	return false
}

// containerResize is POST /containers/{id}/resize?h=&w=.
func (s *Server) containerResize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h, herr := strconv.ParseUint(q.Get("h"), 10, 16)
	wd, werr := strconv.ParseUint(q.Get("w"), 10, 16)
	if herr != nil || werr != nil {
		writeError(w, fmt.Errorf("resize: h and w must be numbers from 0 to 65535: %w", errdefs.ErrInvalidArgument))
		return
	}
	if err := s.b.Resize(r.Context(), r.PathValue("id"), uint16(h), uint16(wd)); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
