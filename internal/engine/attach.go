package engine

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/silo-containers/silo/internal/errdefs"
)

// AttachOptions choose the streams of Attach.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
}

// Attach connects to a container's stdio (docker attach, and docker run,
// which attaches before it starts the container). It returns whether the
// container has a terminal (the output is then raw, otherwise
// multiplexed) and the attachment.
//
// A running container is attached through its monitor at once: output
// written before is not replayed (the log has it). A container that does
// not run (created, or exited and about to be started again) gets an
// attachment that waits: the next Start launches the monitor with
// HoldOutput, which keeps the container's first output for the first
// client, and connects the waiting attachments before anything can let
// the monitor go. So `docker run` sees the whole output even of a process
// that exits at once. Until then, Read and Write block; a failed start or
// a removal ends the attachment (io.EOF).
func (s *Service) Attach(ctx context.Context, ref string, opts AttachOptions) (bool, Attachment, error) {
	e, err := s.lookup(ref)
	if err != nil {
		return false, nil, err
	}
	// Under op, no Start runs: the container is either running with its
	// monitor, or the next Start will see the pending attachment.
	e.op.Lock()
	defer e.op.Unlock()
	s.mu.Lock()
	c := *e.c
	mon := e.mon
	s.mu.Unlock()
	tty := c.Config != nil && c.Config.Tty
	mopts := MonitorAttachOptions{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr}
	if c.Config != nil {
		mopts.StdinOnce = c.Config.StdinOnce
		if !c.Config.OpenStdin {
			mopts.Stdin = false
		}
	}
	switch {
	case c.State.Running() && mon != nil:
		a, err := mon.Attach(ctx, mopts)
		if err != nil {
			return false, nil, fmt.Errorf("attach to container %s: %w", c.ID[:12], err)
		}
		return tty, a, nil
	case c.State.Running():
		return false, nil, fmt.Errorf("attach to container %s: its monitor is not connected: %w", c.ID[:12], errdefs.ErrConflict)
	}
	p := &pendingAttach{ctx: ctx, opts: mopts, ready: make(chan struct{})}
	s.mu.Lock()
	e.pending = append(e.pending, p)
	s.mu.Unlock()
	return tty, p, nil
}

// Resize sets the size of a running container's terminal.
func (s *Service) Resize(ctx context.Context, ref string, height, width uint16) error {
	e, err := s.lookup(ref)
	if err != nil {
		return err
	}
	s.mu.Lock()
	mon, id := e.mon, e.c.ID
	running := e.c.State.Running()
	s.mu.Unlock()
	if !running || mon == nil {
		return fmt.Errorf("resize container %s: container is not running: %w", id[:12], errdefs.ErrConflict)
	}
	if err := mon.Resize(ctx, height, width); err != nil {
		return fmt.Errorf("resize container %s: %w", id[:12], err)
	}
	return nil
}

// takePending removes and returns e's waiting attachments.
func (s *Service) takePending(e *entry) []*pendingAttach {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := e.pending
	e.pending = nil
	return p
}

// connectPending attaches the waiting clients to a monitor that just
// started.
func connectPending(mon Monitor, pending []*pendingAttach) {
	for _, p := range pending {
		if p.ctx.Err() != nil {
			p.set(nil, io.EOF)
			continue
		}
		a, err := mon.Attach(p.ctx, p.opts)
		if err != nil {
			p.set(nil, io.EOF)
			continue
		}
		if !p.set(a, nil) {
			a.Close()
		}
	}
}

// failPending ends waiting attachments whose container will not start.
func failPending(pending []*pendingAttach) {
	for _, p := range pending {
		p.set(nil, io.EOF)
	}
}

// pendingAttach is an Attachment to a container that does not run yet:
// its calls wait until Start connects it (or it is ended).
type pendingAttach struct {
	ctx   context.Context
	opts  MonitorAttachOptions
	ready chan struct{}
	once  sync.Once
	a     Attachment // set before ready closes
	err   error      // set before ready closes
}

// set resolves p; false if it was resolved already.
func (p *pendingAttach) set(a Attachment, err error) bool {
	done := false
	p.once.Do(func() {
		p.a, p.err = a, err
		close(p.ready)
		done = true
	})
	return done
}

func (p *pendingAttach) wait() (Attachment, error) {
	select {
	case <-p.ready:
	case <-p.ctx.Done():
		p.set(nil, io.EOF)
		<-p.ready
	}
	return p.a, p.err
}

func (p *pendingAttach) Read(b []byte) (int, error) {
	a, err := p.wait()
	if err != nil {
		return 0, err
	}
	return a.Read(b)
}

func (p *pendingAttach) Write(b []byte) (int, error) {
	a, err := p.wait()
	if err != nil {
		return 0, io.ErrClosedPipe
	}
	return a.Write(b)
}

func (p *pendingAttach) CloseWrite() error {
	a, err := p.wait()
	if err != nil {
		return nil
	}
	return a.CloseWrite()
}

func (p *pendingAttach) Close() error {
	if p.set(nil, io.EOF) {
		return nil
	}
	if p.a != nil {
		return p.a.Close()
	}
	return nil
}
