//go:build !cgo

package seccomp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/silo-containers/silo/internal/compute/process/helper"
)

// helperTimeout bounds one run of runsilo-helper: Docker's default profile
// compiles in ~35 ms; a helper that hangs must not hang the runtime.
const helperTimeout = 30 * time.Second

// Compile validates s and compiles it with runsilo-helper, which links
// libseccomp: a runsilo built without cgo cannot call it itself. Errors
// name the offending field as the cgo build's do (the helper's message is
// passed on). Without the helper it fails with ErrNotCompiledIn.
func Compile(s *specs.LinuxSeccomp) (*Filter, error) {
	if err := Validate(s); err != nil {
		return nil, err
	}
	profile, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("seccomp: encode profile for %s: %w", helper.Name, err)
	}
	out, err := runHelper("seccomp-compile", profile)
	if err != nil {
		return nil, err
	}
	return UnmarshalFilter(out)
}

// Features returns the seccomp part of `runsilo features`, as the helper's
// libseccomp sees it; without the helper, seccomp is reported disabled.
func Features() *features.Seccomp {
	disabled := false
	out, err := runHelper("seccomp-features", nil)
	if err != nil {
		return &features.Seccomp{Enabled: &disabled}
	}
	var f features.Seccomp
	if err := json.Unmarshal(out, &f); err != nil {
		return &features.Seccomp{Enabled: &disabled}
	}
	return &f
}

// runHelper runs `runsilo-helper cmd` with stdin and returns its stdout.
// A missing helper is ErrNotCompiledIn; a failing one's message is the
// error.
func runHelper(cmd string, stdin []byte) ([]byte, error) {
	path := helper.Path()
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, path, cmd)
	c.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotCompiledIn, helper.Name, err)
	}
	if err != nil {
		var ee *exec.ExitError
		if msg := strings.TrimSpace(stderr.String()); errors.As(err, &ee) && msg != "" {
			return nil, errors.New(msg)
		}
		return nil, fmt.Errorf("seccomp: %s %s: %w", path, cmd, err)
	}
	return out, nil
}
