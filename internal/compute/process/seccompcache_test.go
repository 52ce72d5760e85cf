package process

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/compute/process/seccomp"
)

// TestSeccompKey checks that profiles differing in any one field get
// different cache keys, and equal profiles the same key.
func TestSeccompKey(t *testing.T) {
	base := func() *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno, DefaultErrnoRet: ptr(uint(1)),
			Architectures: []specs.Arch{specs.ArchX86_64}, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
			ListenerPath: "/run/agent.sock", ListenerMetadata: "m",
			Syscalls: []specs.LinuxSyscall{{
				Names: []string{"read", "write"}, Action: specs.ActAllow, ErrnoRet: ptr(uint(2)),
				Args: []specs.LinuxSeccompArg{{Index: 1, Value: 2, ValueTwo: 3, Op: specs.OpMaskedEqual}},
			}},
		}
	}
	variants := []struct {
		name   string
		change func(s *specs.LinuxSeccomp)
	}{
		{"defaultAction", func(s *specs.LinuxSeccomp) { s.DefaultAction = specs.ActKill }},
		{"defaultErrnoRet", func(s *specs.LinuxSeccomp) { s.DefaultErrnoRet = ptr(uint(2)) }},
		{"defaultErrnoRet unset", func(s *specs.LinuxSeccomp) { s.DefaultErrnoRet = nil }},
		{"architectures", func(s *specs.LinuxSeccomp) { s.Architectures = append(s.Architectures, specs.ArchX86) }},
		{"flags", func(s *specs.LinuxSeccomp) { s.Flags = nil }},
		{"listenerPath", func(s *specs.LinuxSeccomp) { s.ListenerPath = "/x" }},
		{"listenerMetadata", func(s *specs.LinuxSeccomp) { s.ListenerMetadata = "" }},
		{"names", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Names = []string{"readwrite"} }},
		{"names split", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Names = []string{"rea", "dwrite"} }},
		{"action", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = specs.ActLog }},
		{"errnoRet", func(s *specs.LinuxSeccomp) { s.Syscalls[0].ErrnoRet = nil }},
		{"arg index", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Args[0].Index = 0 }},
		{"arg value", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Args[0].Value = 7 }},
		{"arg valueTwo", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Args[0].ValueTwo = 0 }},
		{"arg op", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Args[0].Op = specs.OpEqualTo }},
		{"args", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Args = nil }},
		{"syscalls", func(s *specs.LinuxSeccomp) { s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{}) }},
	}
	want := seccompKey(base())
	if !bytes.Equal(seccompKey(base()), want) {
		t.Fatal("equal profiles got different keys")
	}
	seen := map[string]string{string(want): "base"}
	for _, v := range variants {
		s := base()
		v.change(s)
		k := string(seccompKey(s))
		if other, dup := seen[k]; dup {
			t.Errorf("changing %s gives the key of %s", v.name, other)
		}
		seen[k] = v.name
	}
}

func TestCachedFilter(t *testing.T) {
	f, err := seccomp.Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow})
	if err != nil {
		t.Fatal(err)
	}
	filter, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("libseccomp-bpf/x/key")
	entry := func(k, f []byte) []byte {
		return append(append(binary.AppendUvarint(nil, uint64(len(k))), k...), f...)
	}
	tests := []struct {
		name  string
		entry []byte
		ok    bool
	}{
		{"entry for the key", entry(key, filter), true},
		{"entry for another key", entry([]byte("libseccomp-bpf/x/kez"), filter), false},
		{"entry for a longer key", entry(append(key, 'x'), filter), false},
		{"key length beyond the entry", binary.AppendUvarint(nil, 1<<40), false},
		{"corrupt filter", entry(key, filter[:len(filter)-3]), false},
		{"no filter", entry(key, nil), false},
		{"empty", nil, false},
		{"an old entry (bare filter)", filter, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cachedFilter(tt.entry, key)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && !bytes.Equal(got, filter) {
				t.Fatalf("filter = %x, want %x", got, filter)
			}
		})
	}
}

// TestCompiledSeccompCache checks that a profile is compiled once, then
// read from the cache, and that an entry left by another profile under the
// same name (a hash collision) is not used.
func TestCompiledSeccompCache(t *testing.T) {
	old := SeccompCacheDir
	SeccompCacheDir = t.TempDir()
	t.Cleanup(func() { SeccompCacheDir = old })
	b := New(t.TempDir())
	allow := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	deny := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}

	first, err := b.compiledSeccomp(allow)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(SeccompCacheDir)
	if len(entries) != 1 {
		t.Fatalf("cache holds %d entries, want 1", len(entries))
	}
	path := filepath.Join(SeccompCacheDir, entries[0].Name())
	again, err := b.compiledSeccomp(allow)
	if err != nil || !bytes.Equal(again, first) {
		t.Fatalf("second compile = %x, %v; want the first result", again, err)
	}

	// Put deny's entry under allow's name: allow must not get deny's filter.
	denyFilter, err := b.compiledSeccomp(deny)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ = os.ReadDir(SeccompCacheDir)
	for _, e := range entries {
		if p := filepath.Join(SeccompCacheDir, e.Name()); p != path {
			if err := os.Rename(p, path); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := b.compiledSeccomp(allow)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, denyFilter) || !bytes.Equal(got, first) {
		t.Fatalf("allow profile got %x, want its own filter %x (deny's is %x)", got, first, denyFilter)
	}
}
