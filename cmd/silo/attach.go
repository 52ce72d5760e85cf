package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/console"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/api/client"
	"github.com/silo-containers/silo/internal/api/detachkeys"
)

func attachCommand(g *globals) *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return attachContainer(cmd.Context(), g, args[0], !noStdin, sigProxy, detachKeys)
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	cmd.Flags().BoolVar(&sigProxy, "sig-proxy", true, "proxy all received signals to the process")
	return cmd
}

// attachContainer is `silo attach`: the container's streams on ours until
// it exits, then its exit code; or until the detach keys are typed, then,
// as docker attach, "read escape sequence" and 1 with the container
// running.
func attachContainer(ctx context.Context, g *globals, ref string, withStdin, sigProxy bool, detachKeys string) error {
	c, err := g.connect(ctx)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	info, _, err := c.ContainerInspect(ctx, ref)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if info.State == nil || !info.State.Running {
		return &exitError{code: 1, err: errors.New("you cannot attach to a stopped container, start it first")}
	}
	tty := info.Config != nil && info.Config.Tty
	withStdin = withStdin && info.Config != nil && info.Config.OpenStdin
	keySeq, keys, err := detachKeysFor(detachKeys, tty, withStdin) // detachkeys.go
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	wait, err := c.ContainerWait(ctx, info.ID, container.WaitConditionNextExit)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	s, err := openAttach(ctx, g.host, info.ID, withStdin, true, !tty, keySeq)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer s.Close()
	s.detachKeys = keys
	restore, err := s.setupTerminal(ctx, g.host, info.ID, tty, withStdin)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer restore()
	if sigProxy && !tty {
		defer proxySignals(ctx, c, info.ID)()
	}
	if err := s.copy(withStdin); errors.Is(err, detachkeys.ErrDetached) {
		restore()
		fmt.Fprintln(os.Stderr, err)
		return &exitError{code: 1}
	} else if err != nil {
		restore()
		fmt.Fprintln(os.Stderr, "silo: attach:", err)
	}
	restore()
	res := <-wait
	if res.Err != nil {
		return &exitError{code: 1, err: res.Err}
	}
	if res.Code != 0 {
		return &exitError{code: res.Code}
	}
	return nil
}

// attachStream is a hijacked attach connection.
type attachStream struct {
	conn net.Conn
	br   *bufio.Reader
	// tty says the output is raw (the container has a terminal).
	tty bool
	// resizePath is where setupTerminal sends window sizes
	// (default: the container's /resize).
	resizePath string
	// detachKeys, when set, are watched for on our input: typing them
	// ends the attachment (copy returns detachkeys.ErrDetached).
	detachKeys []byte
}

// dialHost connects to the daemon at host (unix:///path or tcp://addr).
func dialHost(ctx context.Context, host string) (net.Conn, error) {
	var d net.Dialer
	switch {
	case strings.HasPrefix(host, "unix://"):
		return d.DialContext(ctx, "unix", strings.TrimPrefix(host, "unix://"))
	case strings.HasPrefix(host, "tcp://"):
		return d.DialContext(ctx, "tcp", strings.TrimPrefix(host, "tcp://"))
	}
	return nil, fmt.Errorf("host %q: want unix:///path or tcp://host:port", host)
}

// openAttach sends POST /containers/{id}/attach on a connection of its own
// and returns it once the daemon switched it to the raw stream. keySeq are
// the detach keys the daemon watches for (its default if "").
func openAttach(ctx context.Context, host, id string, stdin, stdout, stderr bool, keySeq string) (*attachStream, error) {
	conn, err := dialHost(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to silod at %s: %w", host, err)
	}
	q := url.Values{"stream": {"1"}}
	if keySeq != "" {
		q.Set("detachKeys", keySeq)
	}
	for k, on := range map[string]bool{"stdin": stdin, "stdout": stdout, "stderr": stderr} {
		if on {
			q.Set(k, "1")
		}
	}
	return hijack(ctx, conn, "/containers/"+url.PathEscape(id)+"/attach?"+q.Encode(), "text/plain", nil, id)
}

// hijack sends POST path with body on conn (its own connection to the
// daemon) and returns the stream once the daemon switched it to raw
// (attach, exec start); id names the target in errors.
func hijack(ctx context.Context, conn net.Conn, path, ctype string, body []byte, id string) (*attachStream, error) {
	req := "POST " + path + " HTTP/1.1\r\n" +
		"Host: silo\r\nContent-Type: " + ctype + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + string(body)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, fmt.Errorf("attach to %s: %w", id, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("attach to %s: %w", id, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		defer conn.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct{ Message string }
		if json.Unmarshal(raw, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(raw))
		}
		return nil, &client.Error{Status: resp.StatusCode, Message: e.Message}
	}
	return &attachStream{conn: conn, br: br, tty: resp.Header.Get("Content-Type") == "application/vnd.docker.raw-stream"}, nil
}

// Close drops the connection.
func (s *attachStream) Close() error { return s.conn.Close() }

// copy sends our stdin (with stdin) to the container and its output to
// ours until the output ends (the container exited). The end of our
// stdin half-closes the connection: the container's stdin closes.
func (s *attachStream) copy(stdin bool) error {
	var detached atomic.Bool
	if stdin {
		go func() {
			_, err := io.Copy(s.conn, detachkeys.NewReader(os.Stdin, s.detachKeys))
			if errors.Is(err, detachkeys.ErrDetached) {
				// The daemon watches for the same keys: sent on, they end
				// the attachment there at once; closing ends ours.
				detached.Store(true)
				_, _ = s.conn.Write(s.detachKeys)
				s.conn.Close()
				return
			}
			if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		}()
	}
	var err error
	if s.tty {
		_, err = io.Copy(os.Stdout, s.br)
	} else {
		_, err = stdcopy.StdCopy(os.Stdout, os.Stderr, s.br)
	}
	if detached.Load() {
		return detachkeys.ErrDetached
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// setupTerminal puts our terminal in raw mode when the container has a
// terminal and takes our input, and keeps the container's terminal at our
// window's size (now and on SIGWINCH). The returned function undoes it;
// calling it more than once is harmless.
func (s *attachStream) setupTerminal(ctx context.Context, host, id string, tty, stdin bool) (func(), error) {
	if !tty {
		return func() {}, nil
	}
	var undo []func()
	if stdin {
		if in, err := console.ConsoleFromFile(os.Stdin); err == nil {
			if err := in.SetRaw(); err != nil {
				return nil, fmt.Errorf("raw terminal: %w", err)
			}
			// console keeps output processing; docker's raw mode does not:
			// the container's terminal already made its \n into \r\n.
			if t, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS); err == nil {
				t.Oflag &^= unix.OPOST
				_ = unix.IoctlSetTermios(int(os.Stdin.Fd()), unix.TCSETS, t)
			}
			undo = append(undo, func() { _ = in.Reset() })
		}
	}
	if out, err := consoleOf(os.Stdout, os.Stdin); err == nil {
		resize := func() {
			if ws, err := out.Size(); err == nil && ws.Height > 0 && ws.Width > 0 {
				path := s.resizePath
				if path == "" {
					path = "/containers/" + url.PathEscape(id) + "/resize"
				}
				_ = resizeAt(ctx, host, path, ws.Height, ws.Width)
			}
		}
		resize()
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGWINCH)
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-ch:
					resize()
				case <-done:
					return
				}
			}
		}()
		undo = append(undo, func() { signal.Stop(ch); close(done) })
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		})
	}, nil
}

// consoleOf returns the first of files that is a terminal.
func consoleOf(files ...*os.File) (console.Console, error) {
	for _, f := range files {
		if c, err := console.ConsoleFromFile(f); err == nil {
			return c, nil
		}
	}
	return nil, errors.New("not a terminal")
}

// terminalSize is the size of our terminal (stdout, else stdin), or 0, 0.
func terminalSize() (uint16, uint16) {
	c, err := consoleOf(os.Stdout, os.Stdin)
	if err != nil {
		return 0, 0
	}
	ws, err := c.Size()
	if err != nil {
		return 0, 0
	}
	return ws.Height, ws.Width
}

// isConsole reports whether f is a terminal.
func isConsole(f *os.File) bool {
	_, err := console.ConsoleFromFile(f)
	return err == nil
}

// resizeAt is POST path?h=&w= (/containers/{id}/resize, /exec/{id}/resize).
func resizeAt(ctx context.Context, host, path string, h, w uint16) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := dialHost(ctx, host)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	req := "POST " + path + "?h=" + strconv.Itoa(int(h)) + "&w=" + strconv.Itoa(int(w)) +
		" HTTP/1.1\r\nHost: silo\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("resize: status %d", resp.StatusCode)
	}
	return nil
}

// runAttached is `silo run -i`/`-t` in the foreground: attach (before the
// start, so no output is missed), register the wait, start, then copy the
// streams, with a raw local terminal for -it, until the container exits;
// its exit code is ours.
func runAttached(ctx context.Context, g *globals, c *client.Client, f *runFlags, id string, cond container.WaitCondition) error {
	cleanup := func() {
		if f.rm {
			_ = c.ContainerRemove(context.WithoutCancel(ctx), id, true)
		}
	}
	keySeq, keys, err := detachKeysFor(f.detachKeys, f.tty, f.interactive) // detachkeys.go
	if err != nil {
		cleanup()
		return &exitError{code: 125, err: err}
	}
	s, err := openAttach(ctx, g.host, id, f.interactive, true, true, keySeq)
	if err != nil {
		cleanup()
		return &exitError{code: 125, err: err}
	}
	defer s.Close()
	s.detachKeys = keys
	wait, err := c.ContainerWait(ctx, id, cond)
	if err != nil {
		cleanup()
		return &exitError{code: 125, err: err}
	}
	if err := c.ContainerStart(ctx, id); err != nil {
		cleanup()
		return &exitError{code: startExitCode(err), err: err}
	}
	restore, err := s.setupTerminal(ctx, g.host, id, f.tty, f.interactive)
	if err != nil {
		return &exitError{code: 125, err: err}
	}
	defer restore()
	if !f.tty {
		defer proxySignals(ctx, c, id)()
	}
	cerr := s.copy(f.interactive)
	restore()
	if errors.Is(cerr, detachkeys.ErrDetached) {
		return nil // detached: the container runs on
	}
	if cerr != nil {
		fmt.Fprintln(os.Stderr, "silo: attach:", cerr)
	}
	res := <-wait
	if res.Err != nil {
		return &exitError{code: 125, err: res.Err}
	}
	if res.Code != 0 {
		return &exitError{code: res.Code}
	}
	return nil
}
