//go:build !cgo

package seccomp

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCompileWithoutCgo(t *testing.T) {
	if _, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow}); !errors.Is(err, ErrNotCompiledIn) {
		t.Fatalf("Compile = %v, want ErrNotCompiledIn", err)
	}
	if _, err := Compile(&specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO"}); err == nil || errors.Is(err, ErrNotCompiledIn) {
		t.Fatalf("Compile of a bad profile = %v, want a validation error", err)
	}
	if f := Features(); f.Enabled == nil || *f.Enabled {
		t.Fatal("Features reports seccomp enabled without cgo")
	}
}
