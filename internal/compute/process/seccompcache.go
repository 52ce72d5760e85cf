package process

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/compute/process/seccomp"
)

// seccompCacheFormat changes whenever the compiled form or the compiler's
// output for a given profile would change.
const seccompCacheFormat = "libseccomp-bpf/1/" + runtime.GOARCH

// SeccompCacheDir keeps compiled seccomp profiles. It is outside the state
// root on purpose: that directory holds containers and nothing else, and
// tools list it as such.
var SeccompCacheDir = "/var/cache/runsilo/seccomp"

// compiledSeccomp returns the profile compiled to BPF in the binary form
// that init loads. Compiling with libseccomp is slow for real profiles
// (Docker's default one: ~35 ms for three architectures), and containers
// share a handful of profiles, so results are kept in SeccompCacheDir (a
// directory only root can write), keyed by the profile's hash. A corrupt
// cache entry is compiled again.
func (b *Backend) compiledSeccomp(sc *specs.LinuxSeccomp) ([]byte, error) {
	key, err := json.Marshal(sc)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	sum := sha256.Sum256(append([]byte(seccompCacheFormat), key...))
	dir := SeccompCacheDir
	path := filepath.Join(dir, hex.EncodeToString(sum[:]))
	if data, err := os.ReadFile(path); err == nil {
		if _, err := seccomp.UnmarshalFilter(data); err == nil {
			return data, nil
		}
	}
	f, err := seccomp.Compile(sc)
	if err != nil {
		return nil, err
	}
	data, err := f.MarshalBinary()
	if err != nil {
		return nil, err
	}
	// The cache is an optimisation: failing to write it is not an error.
	if err := os.MkdirAll(dir, 0o700); err == nil {
		_ = writeFileAtomic(path, data, 0o600)
	}
	return data, nil
}

// compileSeccompAsync compiles sc (if any) on another goroutine, so that it
// overlaps the fork of init; the returned function waits for the result.
func (b *Backend) compileSeccompAsync(sc *specs.LinuxSeccomp) func() ([]byte, error) {
	if sc == nil {
		return func() ([]byte, error) { return nil, nil }
	}
	type result struct {
		data []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		data, err := b.compiledSeccomp(sc)
		ch <- result{data, err}
	}()
	return func() ([]byte, error) {
		r := <-ch
		return r.data, r.err
	}
}
