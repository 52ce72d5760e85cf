package process

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/compute"
)

// runHooks runs hooks in order with the state on stdin; the first failure
// stops the list and is returned with the hook's stderr.
func runHooks(stage string, hooks []specs.Hook, state *specs.State) error {
	return eachHook(stage, hooks, state, func(err error) error { return err })
}

// runHooksWarn runs every hook, turning failures into warnings on stderr
// (poststart and poststop: the lifecycle goes on regardless).
func runHooksWarn(stage string, hooks []specs.Hook, state *specs.State) {
	_ = eachHook(stage, hooks, state, func(err error) error {
		fmt.Fprintf(os.Stderr, "runsilo: warning: %v\n", err)
		return nil
	})
}

// eachHook runs hooks in order; onErr decides whether a failure stops them.
func eachHook(stage string, hooks []specs.Hook, state *specs.State, onErr func(error) error) error {
	if len(hooks) == 0 {
		return nil
	}
	data, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("%s hook: encode state: %w", stage, err)
	}
	for i, h := range hooks {
		if err := runHook(h, data); err != nil {
			if err := onErr(fmt.Errorf("hooks.%s[%d] %s: %w", stage, i, h.Path, err)); err != nil {
				return err
			}
		}
	}
	return nil
}

func runHook(h specs.Hook, state []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout must be positive, got %d", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	args := h.Args
	if len(args) == 0 {
		args = []string{h.Path}
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = args
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(state)
	cmd.Stdout = os.Stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("timed out after %ds", *h.Timeout)
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}

// runPoststart runs the poststart hooks; per the spec a failure is only a
// warning and the remaining hooks still run.
func (c *Container) runPoststart() {
	if h := c.hooks(); h != nil {
		runHooksWarn("poststart", h.Poststart, c.b.ociState(c.st, compute.Running))
	}
}

// runPoststop runs the poststop hooks at delete, with the same rule.
func (c *Container) runPoststop() {
	if h := c.hooks(); h != nil {
		runHooksWarn("poststop", h.Poststop, c.b.ociState(c.st, compute.Stopped))
	}
}

// hooks returns the container's hooks; a state whose spec does not parse
// has none that could run, and a warning on stderr says so.
func (c *Container) hooks() *specs.Hooks {
	h, err := c.st.hooks()
	if err != nil {
		fmt.Fprintf(os.Stderr, "runsilo: warning: %v\n", err)
	}
	return h
}
