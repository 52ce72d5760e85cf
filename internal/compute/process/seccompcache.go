package process

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/compute/process/seccomp"
)

// seccompCacheFormat changes whenever the compiled form, the compiler's
// output for a given profile or the key's encoding (seccompKey) would
// change.
const seccompCacheFormat = "libseccomp-bpf/3/" + runtime.GOARCH

// SeccompCacheDir keeps compiled seccomp profiles. It is outside the state
// root on purpose: that directory holds containers and nothing else, and
// tools list it as such.
var SeccompCacheDir = "/var/cache/runsilo/seccomp"

// compiledSeccomp returns the profile compiled to BPF in the binary form
// that init loads. Compiling with libseccomp is slow for real profiles
// (Docker's default one: ~35 ms for three architectures), and containers
// share a handful of profiles, so results are kept in SeccompCacheDir (a
// directory only root can write). An entry is named by a hash of the
// profile and holds the profile's whole key before the filter: the hash
// (FNV, not a cryptographic one: crypto/sha256 alone made runsilo 150 KB
// larger) only finds the file, the key decides. A corrupt entry, or one
// for another profile, is compiled again and replaced.
func (b *Backend) compiledSeccomp(sc *specs.LinuxSeccomp) ([]byte, error) {
	key := append([]byte(seccompCacheFormat), seccompKey(sc)...)
	h := fnv.New128a()
	h.Write(key)
	dir := SeccompCacheDir
	path := filepath.Join(dir, hex.EncodeToString(h.Sum(nil)))
	if data, err := os.ReadFile(path); err == nil {
		if filter, ok := cachedFilter(data, key); ok {
			return filter, nil
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
		entry := binary.AppendUvarint(nil, uint64(len(key)))
		entry = append(append(entry, key...), data...)
		_ = writeFileAtomic(path, entry, 0o600)
	}
	return data, nil
}

// cachedFilter returns the filter in a cache entry if the entry is for key
// and the filter decodes.
func cachedFilter(entry, key []byte) ([]byte, bool) {
	n, m := binary.Uvarint(entry)
	if m <= 0 || n != uint64(len(key)) || uint64(len(entry)-m) < n {
		return nil, false
	}
	if !bytes.Equal(entry[m:m+int(n)], key) {
		return nil, false
	}
	filter := entry[m+int(n):]
	if _, err := seccomp.UnmarshalFilter(filter); err != nil {
		return nil, false
	}
	return filter, true
}

// seccompKey encodes every field of a profile, in the init pipe's binary
// encoding: json.Marshal would first build encoders for the profile's
// types and write ~20 KB for Docker's default profile, on every create.
func seccompKey(sc *specs.LinuxSeccomp) []byte {
	w := &wireWriter{}
	optUint := func(p *uint) {
		w.bool(p != nil)
		if p != nil {
			w.uint(uint64(*p))
		}
	}
	w.str(string(sc.DefaultAction))
	optUint(sc.DefaultErrnoRet)
	w.uint(uint64(len(sc.Architectures)))
	for _, a := range sc.Architectures {
		w.str(string(a))
	}
	w.uint(uint64(len(sc.Flags)))
	for _, f := range sc.Flags {
		w.str(string(f))
	}
	w.str(sc.ListenerPath)
	w.str(sc.ListenerMetadata)
	w.uint(uint64(len(sc.Syscalls)))
	for _, c := range sc.Syscalls {
		w.strs(c.Names)
		w.str(string(c.Action))
		optUint(c.ErrnoRet)
		w.uint(uint64(len(c.Args)))
		for _, a := range c.Args {
			w.uint(uint64(a.Index))
			w.uint(a.Value)
			w.uint(a.ValueTwo)
			w.str(string(a.Op))
		}
	}
	return w.b
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
