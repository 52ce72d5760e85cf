//go:build !cgo

package seccomp

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Compile validates s and then fails with ErrNotCompiledIn: building BPF
// needs libseccomp, which needs cgo. Validation still runs so that a bad
// profile is reported as such even in a cgo-less build.
func Compile(s *specs.LinuxSeccomp) (*Filter, error) {
	if err := Validate(s); err != nil {
		return nil, err
	}
	return nil, ErrNotCompiledIn
}

// supportedArchs is empty: without libseccomp no architecture can be built.
func supportedArchs() []string { return nil }

// compiledIn is false: Compile cannot build filters without cgo.
const compiledIn = false
