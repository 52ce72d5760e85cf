package monitor

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Client talks to the monitor whose directory is Dir. Every call uses a
// connection of its own, so a Client holds nothing open between calls.
type Client struct {
	Dir string
}

// NewClient returns a client for the monitor in dir.
func NewClient(dir string) *Client { return &Client{Dir: dir} }

// ReadExit reads the exit status a monitor recorded in dir; the error
// wraps errdefs.ErrNotFound if there is none (the container still runs,
// or its monitor died before it exited).
func ReadExit(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, ExitName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.Join(errors.New("exit status in "+dir), errdefs.ErrNotFound)
		}
		return nil, errors.New("read exit status: " + err.Error())
	}
	f, err := parseObject(data)
	if err != nil {
		return nil, errors.New("read exit status " + filepath.Join(dir, ExitName) + ": " + err.Error())
	}
	return decodeState(f), nil
}

// call sends one request and reads one reply on a fresh connection,
// which it returns open when keep is set.
func (c *Client) call(ctx context.Context, req *object, keep bool) (fields, *os.File, *bufio.Reader, error) {
	conn, err := dial(filepath.Join(c.Dir, SocketName))
	if err != nil {
		return nil, nil, nil, errors.Join(errors.New("monitor "+c.Dir+": "+err.Error()), errdefs.ErrNotFound)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (fields, *os.File, *bufio.Reader, error) {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, nil, nil, err
	}
	if _, err := conn.Write(req.line()); err != nil {
		return fail(errors.New("monitor " + c.Dir + ": send: " + err.Error()))
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fail(errors.New("monitor " + c.Dir + ": receive: " + err.Error()))
	}
	f, err := parseObject(line)
	if err != nil {
		return fail(errors.New("monitor " + c.Dir + ": bad reply"))
	}
	if f["ok"] != "true" {
		e := errors.New("monitor " + c.Dir + ": " + f["error"])
		switch f["class"] {
		case "not_found":
			e = errors.Join(e, errdefs.ErrNotFound)
		case "conflict":
			e = errors.Join(e, errdefs.ErrConflict)
		case "invalid_argument":
			e = errors.Join(e, errdefs.ErrInvalidArgument)
		}
		return fail(e)
	}
	if !keep {
		stop()
		conn.Close()
		return f, nil, nil, nil
	}
	stop()
	return f, conn, br, nil
}

func op(name string) *object { return (&object{}).str("op", name) }

// State returns the container's state.
func (c *Client) State(ctx context.Context) (*State, error) {
	f, _, _, err := c.call(ctx, op("state"), false)
	if err != nil {
		return nil, err
	}
	return decodeState(f), nil
}

// Wait blocks until the container has exited and the monitor has
// flushed its logs, and returns the final state. The runtime may still be
// deleting the container (see WaitDeleted).
func (c *Client) Wait(ctx context.Context) (*State, error) {
	return c.wait(ctx, op("wait"))
}

// WaitRelease is Wait, and then lets the monitor quit as soon as the
// container is deleted (Release), in one round trip.
func (c *Client) WaitRelease(ctx context.Context) (*State, error) {
	return c.wait(ctx, op("wait").bool("release", true))
}

// WaitDeleted is Wait until, in addition, the runtime has deleted the
// container (its cgroups and runtime state are gone); then the monitor
// quits (as after Release).
func (c *Client) WaitDeleted(ctx context.Context) (*State, error) {
	return c.wait(ctx, op("wait").bool("deleted", true).bool("release", true))
}

func (c *Client) wait(ctx context.Context, req *object) (*State, error) {
	f, _, _, err := c.call(ctx, req, false)
	if err != nil {
		return nil, err
	}
	return decodeState(f), nil
}

// Signal sends sig to the container's init, or with all to every process
// in it.
func (c *Client) Signal(ctx context.Context, sig syscall.Signal, all bool) error {
	_, _, _, err := c.call(ctx, op("signal").int("signal", int64(sig)).bool("all", all), false)
	return err
}

// Resize sets the window size of the container's terminal.
func (c *Client) Resize(ctx context.Context, rows, cols uint16) error {
	_, _, _, err := c.call(ctx, op("resize").int("rows", int64(rows)).int("cols", int64(cols)), false)
	return err
}

// CloseStdin closes the container's stdin (it reads EOF).
func (c *Client) CloseStdin(ctx context.Context) error {
	_, _, _, err := c.call(ctx, op("close_stdin"), false)
	return err
}

// Release lets a monitor whose container has exited quit as soon as the
// container is deleted instead of at the end of its grace period.
func (c *Client) Release(ctx context.Context) error {
	_, _, _, err := c.call(ctx, op("release"), false)
	return err
}

// AttachOptions choose the streams of an attachment.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
	// StdinOnce closes the container's stdin when this client's input
	// ends (CloseWrite).
	StdinOnce bool
}

// Attachment is a live connection to a container's stdio. Reading gives
// the output: raw for a terminal container, otherwise in Docker's
// multiplexed form (see Demux). Writing goes to the container's stdin.
type Attachment struct {
	// TTY says the container has a terminal (the output is raw).
	TTY  bool
	conn *os.File
	br   *bufio.Reader
}

// Attach connects to the container's stdio. Output written before the
// call is not replayed (the log has it).
func (c *Client) Attach(ctx context.Context, o AttachOptions) (*Attachment, error) {
	req := op("attach").bool("stdin", o.Stdin).bool("stdout", o.Stdout).bool("stderr", o.Stderr).bool("stdin_once", o.StdinOnce)
	f, conn, br, err := c.call(ctx, req, true)
	if err != nil {
		return nil, err
	}
	a := &Attachment{TTY: f.bool("tty"), conn: conn, br: br}
	context.AfterFunc(ctx, func() { a.Close() })
	return a, nil
}

// Read reads container output.
func (a *Attachment) Read(p []byte) (int, error) { return a.br.Read(p) }

// Write sends input to the container's stdin.
func (a *Attachment) Write(p []byte) (int, error) { return a.conn.Write(p) }

// CloseWrite ends the input (with StdinOnce the container's stdin closes).
func (a *Attachment) CloseWrite() error { return closeWrite(a.conn) }

// Close ends the attachment.
func (a *Attachment) Close() error { return a.conn.Close() }

// Demux splits the multiplexed output of a non-terminal attachment into
// stdout and stderr until it ends.
func Demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [frameHeader]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return errors.New("attach stream: " + err.Error())
		}
		n := int64(hdr[4])<<24 | int64(hdr[5])<<16 | int64(hdr[6])<<8 | int64(hdr[7])
		w := stdout
		switch hdr[0] {
		case frameStdout:
		case frameStderr:
			w = stderr
		default:
			return errors.New("attach stream: bad stream id " + strconv.Itoa(int(hdr[0])))
		}
		if _, err := io.CopyN(w, r, n); err != nil {
			return errors.New("attach stream: " + err.Error())
		}
	}
}
