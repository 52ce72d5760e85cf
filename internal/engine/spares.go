package engine

import (
	"context"

	"github.com/silo-containers/silo/internal/storage/sandbox"
)

// spareSandboxes is how many sandboxes of each size in use are kept made
// ahead of time (sandbox spares): enough for a few creates in a row; a
// longer burst makes the rest on its own path while the refill catches up.
const spareSandboxes = 2

// newSandbox creates the sandbox of a container (or a build step) in dir,
// from a spare when one is ready. It refills the spares of that size in
// the background only once they ran out: the refill competes with the
// start that follows a create; removals refill too (removeFiles).
func (s *Service) newSandbox(ctx context.Context, dir string, layers []string, size int64) (*sandbox.Sandbox, error) {
	sb, err := sandbox.Create(ctx, dir, layers, sandbox.Options{SizeBytes: size, TemplateDir: s.templateDir()})
	if err == nil && sandbox.SpareCount(s.templateDir(), sb.SizeBytes()) == 0 {
		s.refillSpares(sb.SizeBytes())
	}
	return sb, err
}

// refillSpares makes spare sandboxes of size bytes (as Sandbox.SizeBytes
// gives it; 0: the default) in the background until there are
// spareSandboxes of them; one refill per size at a time, none once the
// service is closing.
func (s *Service) refillSpares(size int64) {
	s.mu.Lock()
	if s.spareFill[size] || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	if s.spareFill == nil {
		s.spareFill = map[int64]bool{}
	}
	s.spareFill[size] = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.spareFill, size)
			s.mu.Unlock()
		}()
		for s.ctx.Err() == nil && sandbox.SpareCount(s.templateDir(), size) < spareSandboxes {
			if err := sandbox.MakeSpare(s.ctx, s.templateDir(), size); err != nil {
				if s.ctx.Err() == nil {
					s.log.Warn("make spare sandbox", "size", size, "err", err)
				}
				return
			}
		}
	}()
}
