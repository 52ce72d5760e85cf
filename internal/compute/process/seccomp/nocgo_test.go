//go:build !cgo

package seccomp

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/compute/process/helper"
)

// repoHelper is the runsilo-helper of this checkout (make builds it before
// the unit tests run).
var repoHelper, _ = filepath.Abs("../../../../bin/" + helper.Name)

func TestCompileWithoutHelper(t *testing.T) {
	defer func(p func() string) { helper.Path = p }(helper.Path)
	helper.Path = func() string { return filepath.Join(t.TempDir(), helper.Name) }
	if _, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow}); !errors.Is(err, ErrNotCompiledIn) {
		t.Fatalf("Compile = %v, want ErrNotCompiledIn", err)
	}
	if _, err := Compile(&specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO"}); err == nil || errors.Is(err, ErrNotCompiledIn) {
		t.Fatalf("Compile of a bad profile = %v, want a validation error", err)
	}
	if f := Features(); f.Enabled == nil || *f.Enabled {
		t.Fatal("Features reports seccomp enabled without the helper")
	}
}

// TestCompileWithHelper: the cgo-less build compiles through the helper
// to the same program the cgo build makes (compile_test.go checks that
// program's behaviour in the cgo build).
func TestCompileWithHelper(t *testing.T) {
	if _, err := os.Stat(repoHelper); err != nil {
		t.Skipf("no %s: run make", repoHelper)
	}
	defer func(p func() string) { helper.Path = p }(helper.Path)
	helper.Path = func() string { return repoHelper }
	errno := uint(38)
	f, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: &errno}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Program()) < 4 {
		t.Fatalf("program of %d instructions", len(f.Program()))
	}
	// A profile libseccomp refuses: the helper's message comes back.
	_, err = Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_NOSUCH"}})
	if err == nil {
		t.Fatal("Compile of an unknown architecture succeeded")
	}
	if f := Features(); f.Enabled == nil || !*f.Enabled || len(f.Archs) == 0 {
		t.Fatalf("Features through the helper = %+v", f)
	}
}
