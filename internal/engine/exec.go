package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/engine/ocispec"
	"github.com/silo-containers/silo/internal/errdefs"
)

// Exec (docker exec) runs an extra process in a running container.
//
// Design: silod runs the process itself, through the runtime's exec
// (`runsilo exec`, which joins the container's namespaces, cgroup and
// security settings), via the ExecRunner seam that the Monitors value
// implements. The alternative, an "exec" request in the monitor's
// protocol, would make the monitor a second process supervisor with its
// own streams, pty and exit bookkeeping for every exec. Docker's exec
// processes are tied to dockerd as well (a daemon restart loses them and
// their records), so silod owning them loses nothing Docker keeps, and
// the monitor stays the container's one-process supervisor.

// ExecRunner runs exec processes. The engine's Monitors implements it
// when the runtime supports exec (type-asserted: the seam is optional so
// that test fakes need not).
type ExecRunner interface {
	// RunExec starts p in the container cfg describes and returns once
	// the process runs or the runtime failed to start it (the failure is
	// then in the process's Wait, its message in the output).
	RunExec(ctx context.Context, cfg MonitorConfig, p ExecRun) (ExecProcess, error)
}

// ExecRun is one process to exec.
type ExecRun struct {
	// Process is the complete OCI process (process.json).
	Process *specs.Process
	// Stdin gives the process a stdin pipe (else /dev/null).
	Stdin bool
	// Output gives the process stdout/stderr pipes (else its output is
	// discarded): false for a detached exec.
	Output bool
}

// ExecProcess is a running exec process.
type ExecProcess interface {
	// Stdin is the process's input (nil without ExecRun.Stdin). With a
	// terminal it is the pty.
	Stdin() io.WriteCloser
	// Stdout is its output (the pty with a terminal; nil without
	// ExecRun.Output). Stderr is nil with a terminal.
	Stdout() io.Reader
	Stderr() io.Reader
	// Resize sets the size of its terminal.
	Resize(rows, cols uint16) error
	// Pid is the process on the host, 0 if it did not start.
	Pid() int
	// Wait blocks until the process exited and returns how.
	Wait() ExecExit
}

// ExecExit is how an exec process ended.
type ExecExit struct {
	// Code is the exit code (128+signal when killed).
	Code int
	// Started is false when the runtime could not start the process;
	// Message then says why.
	Started bool
	Message string
}

// execTable holds the exec instances in memory.
type execTable struct {
	mu sync.Mutex
	m  map[string]*execInstance
}

// execInstance is one exec: created, running, or exited.
type execInstance struct {
	id, ctrID string
	cfg       container.ExecCreateRequest

	// guarded by execTable.mu
	started, running bool
	pid              int
	exitCode         *int
	proc             ExecProcess
	done             chan struct{} // closed once exitCode is set
}

func (t *execTable) get(id string) (*execInstance, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if x, ok := t.m[id]; ok {
		return x, nil
	}
	return nil, fmt.Errorf("no such exec instance: %s: %w", id, errdefs.ErrNotFound)
}

// ExecCreate records an exec instance of a running container (POST
// /containers/{id}/exec) and returns its id.
func (s *Service) ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error) {
	if len(req.Cmd) == 0 {
		return "", fmt.Errorf("no exec command specified: %w", errdefs.ErrInvalidArgument)
	}
	if req.Privileged {
		return "", fmt.Errorf("exec: privileged exec is not supported: %w", errdefs.ErrInvalidArgument)
	}
	for _, kv := range req.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "" {
			return "", fmt.Errorf("exec: invalid environment variable %q: %w", kv, errdefs.ErrInvalidArgument)
		}
	}
	e, err := s.lookup(ref)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	id, running, paused := e.c.ID, e.c.State.Running(), e.c.State.Status == container.StatePaused
	s.mu.Unlock()
	if !running {
		return "", fmt.Errorf("container %s is not running: %w", id, errdefs.ErrConflict)
	}
	if paused {
		return "", fmt.Errorf("container %s is paused, unpause the container before exec: %w", id, errdefs.ErrConflict)
	}
	s.pruneExecs()
	x := &execInstance{id: newID(), ctrID: id, cfg: req, done: make(chan struct{})}
	s.execs.mu.Lock()
	if s.execs.m == nil {
		s.execs.m = map[string]*execInstance{}
	}
	s.execs.m[x.id] = x
	s.execs.mu.Unlock()
	return x.id, nil
}

// pruneExecs forgets the execs of containers that are gone or no longer
// run (Docker drops them with the container's exit too), except those
// whose process is still being waited for.
func (s *Service) pruneExecs() {
	s.execs.mu.Lock()
	ctrs := map[string]bool{}
	for _, x := range s.execs.m {
		ctrs[x.ctrID] = true
	}
	s.execs.mu.Unlock()
	for id := range ctrs {
		e, err := s.lookup(id)
		if err == nil {
			s.mu.Lock()
			ctrs[id] = e.c.State.Running()
			s.mu.Unlock()
		} else {
			ctrs[id] = false
		}
	}
	s.execs.mu.Lock()
	defer s.execs.mu.Unlock()
	for k, x := range s.execs.m {
		if running, ok := ctrs[x.ctrID]; ok && !running && !x.running {
			delete(s.execs.m, k)
		}
	}
}

// ExecInspect is GET /exec/{id}/json.
func (s *Service) ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error) {
	x, err := s.execs.get(id)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	s.execs.mu.Lock()
	defer s.execs.mu.Unlock()
	r := container.ExecInspectResponse{
		ID: x.id, ContainerID: x.ctrID, Running: x.running, Pid: x.pid,
		OpenStdin: x.cfg.AttachStdin, OpenStdout: x.cfg.AttachStdout, OpenStderr: x.cfg.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Tty: x.cfg.Tty, Entrypoint: x.cfg.Cmd[0], Arguments: append([]string{}, x.cfg.Cmd[1:]...), User: x.cfg.User},
		CanRemove:     x.started && !x.running,
	}
	priv := x.cfg.Privileged
	r.ProcessConfig.Privileged = &priv
	if x.exitCode != nil {
		c := *x.exitCode
		r.ExitCode = &c
	}
	return r, nil
}

// ExecResize sets the size of a running exec's terminal.
func (s *Service) ExecResize(ctx context.Context, id string, height, width uint16) error {
	x, err := s.execs.get(id)
	if err != nil {
		return err
	}
	s.execs.mu.Lock()
	p, running, tty := x.proc, x.running, x.cfg.Tty
	s.execs.mu.Unlock()
	if !running || p == nil {
		return fmt.Errorf("exec %s is not running: %w", id, errdefs.ErrConflict)
	}
	if !tty {
		return nil
	}
	return p.Resize(height, width)
}

// ExecStart starts an exec instance (POST /exec/{id}/start). It returns
// whether the output is raw (a terminal) and, unless detach, the
// attachment to the process's stdio: its output ends once the process has
// exited and its exit code is recorded. A process the runtime cannot
// start is not an error here (as in Docker): its message is in the output
// and its exit code is 126 (127: command not found).
func (s *Service) ExecStart(ctx context.Context, id string, detach bool) (bool, Attachment, error) {
	x, err := s.execs.get(id)
	if err != nil {
		return false, nil, err
	}
	runner, ok := s.cfg.Monitors.(ExecRunner)
	if !ok {
		return false, nil, fmt.Errorf("exec: the runtime does not support exec: %w", errdefs.ErrNotImplemented)
	}
	s.execs.mu.Lock()
	if x.started {
		s.execs.mu.Unlock()
		return false, nil, fmt.Errorf("exec %s has already been started: %w", id, errdefs.ErrConflict)
	}
	x.started = true
	s.execs.mu.Unlock()
	e, err := s.lookup(x.ctrID)
	if err != nil {
		return false, nil, err
	}
	s.mu.Lock()
	c := *e.c
	s.mu.Unlock()
	if !c.State.Running() {
		return false, nil, fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	mc := s.monitorConfig(&c)
	proc, err := execProcess(mc.Bundle, x.cfg)
	if err != nil {
		return false, nil, err
	}
	run := ExecRun{Process: proc, Stdin: x.cfg.AttachStdin && !detach, Output: !detach && (x.cfg.AttachStdout || x.cfg.AttachStderr)}
	// The process outlives the request (detach): not the request's context.
	p, err := runner.RunExec(context.WithoutCancel(ctx), mc, run)
	if err != nil {
		return false, nil, fmt.Errorf("exec in container %s: %w", c.ID[:12], err)
	}
	s.execs.mu.Lock()
	x.proc, x.running, x.pid = p, true, p.Pid()
	s.execs.mu.Unlock()
	go func() {
		ex := p.Wait()
		code := ex.Code
		if !ex.Started {
			code = 126
			if m := strings.ToLower(ex.Message); strings.Contains(m, "not found") || strings.Contains(m, "no such file") {
				code = 127
			}
		}
		s.execs.mu.Lock()
		x.running, x.exitCode = false, &code
		s.execs.mu.Unlock()
		close(x.done)
	}()
	if detach {
		if x.cfg.Tty {
			if out := p.Stdout(); out != nil {
				// Nobody reads a detached terminal: drain it.
				go func() { _, _ = io.Copy(io.Discard, out) }()
			}
		}
		return x.cfg.Tty, nil, nil
	}
	return x.cfg.Tty, newExecAttachment(p, x.cfg, x.done), nil
}

// execProcess builds the exec's OCI process on the container's own (from
// the bundle): its capabilities, rlimits and security settings, with the
// container's environment merged with the exec's, and the exec's user and
// working directory.
func execProcess(bundle string, req container.ExecCreateRequest) (*specs.Process, error) {
	spec, err := readBundleSpec(bundle)
	if err != nil {
		return nil, fmt.Errorf("exec: read the container's spec: %w", err)
	}
	if spec.Process == nil || spec.Root == nil {
		return nil, fmt.Errorf("exec: the container's spec has no process or root: %w", errdefs.ErrConflict)
	}
	p := *spec.Process
	p.Args = append([]string{}, req.Cmd...)
	p.Terminal = req.Tty
	p.ConsoleSize = nil
	if req.ConsoleSize != nil && req.ConsoleSize[0] > 0 && req.ConsoleSize[1] > 0 {
		p.ConsoleSize = &specs.Box{Height: req.ConsoleSize[0], Width: req.ConsoleSize[1]}
	}
	p.Env = mergeExecEnv(spec.Process.Env, req.Env)
	if req.WorkingDir != "" {
		p.Cwd = req.WorkingDir
	}
	if req.User != "" {
		rootfs := spec.Root.Path
		if !filepath.IsAbs(rootfs) {
			rootfs = filepath.Join(bundle, rootfs)
		}
		u, err := ocispec.ResolveUser(rootfs, req.User)
		if err != nil {
			return nil, fmt.Errorf("exec: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		p.User = u
	}
	return &p, nil
}

// mergeExecEnv is the container's environment with the exec's on top (a
// key set by both takes the exec's value, in the container's position).
func mergeExecEnv(base, extra []string) []string {
	out := append([]string{}, base...)
	idx := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		idx[k] = i
	}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// execAttachment is an Attachment to an exec process: raw output with a
// terminal, else Docker's multiplexed frames. Its output ends only once
// the exit code is recorded, so a client that inspects the exec after
// the stream ends sees it.
type execAttachment struct {
	out  io.Reader
	in   io.WriteCloser
	tty  bool
	done <-chan struct{}
	once sync.Once
	stop chan struct{}
}

func newExecAttachment(p ExecProcess, cfg container.ExecCreateRequest, done <-chan struct{}) *execAttachment {
	a := &execAttachment{in: p.Stdin(), tty: cfg.Tty, done: done, stop: make(chan struct{})}
	switch {
	case p.Stdout() == nil:
		a.out = strings.NewReader("")
	case cfg.Tty:
		a.out = eioAsEOF{p.Stdout()}
	default:
		pr, pw := io.Pipe()
		var wg sync.WaitGroup
		copyStream := func(r io.Reader, st byte, want bool) {
			defer wg.Done()
			if r == nil {
				return
			}
			if !want {
				_, _ = io.Copy(io.Discard, r)
				return
			}
			_, _ = io.Copy(frameWriter{w: pw, id: st}, r)
		}
		wg.Add(2)
		go copyStream(p.Stdout(), 1, cfg.AttachStdout)
		go copyStream(p.Stderr(), 2, cfg.AttachStderr)
		go func() { wg.Wait(); pw.Close() }()
		a.out = pr
	}
	return a
}

// eioAsEOF reads a pty master: EIO (no slave left) is its end.
type eioAsEOF struct{ r io.Reader }

func (e eioAsEOF) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && (errors.Is(err, os.ErrClosed) || strings.Contains(err.Error(), "input/output error")) {
		err = io.EOF
	}
	return n, err
}

func (a *execAttachment) Read(b []byte) (int, error) {
	n, err := a.out.Read(b)
	if err == io.EOF {
		select {
		case <-a.done:
		case <-a.stop:
		}
	}
	return n, err
}

func (a *execAttachment) Write(b []byte) (int, error) {
	if a.in == nil {
		return len(b), nil
	}
	return a.in.Write(b)
}

// CloseWrite closes the process's stdin (not a terminal's: closing the
// pty would end the output).
func (a *execAttachment) CloseWrite() error {
	if a.in == nil || a.tty {
		return nil
	}
	return a.in.Close()
}

// Close ends the attachment; the process goes on.
func (a *execAttachment) Close() error {
	a.once.Do(func() { close(a.stop) })
	if a.in != nil && !a.tty {
		_ = a.in.Close()
	}
	return nil
}

// frameWriter frames each write with Docker's 8-byte stream header (id
// 1 stdout, 2 stderr), header and data in one write so that the two
// streams' frames do not interleave.
type frameWriter struct {
	w  io.Writer
	id byte
}

func (f frameWriter) Write(p []byte) (int, error) {
	buf := make([]byte, 8+len(p))
	buf[0] = f.id
	binary.BigEndian.PutUint32(buf[4:8], uint32(len(p)))
	copy(buf[8:], p)
	if _, err := f.w.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}
