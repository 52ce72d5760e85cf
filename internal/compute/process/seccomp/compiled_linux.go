package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// compiledMagic starts the binary form of a Filter ("silo seccomp v1").
const compiledMagic = "SLSC0001"

// MarshalBinary encodes the filter for the runtime's cache and for the
// trip from the runtime to the container's init: a header (magic, flags,
// notify) and the BPF instructions in the kernel's own layout. Compiling a
// profile with libseccomp can take tens of milliseconds (Docker's default
// profile for three architectures: ~35 ms here), so it is done once per
// profile and never on the container's side of the start path.
func (f *Filter) MarshalBinary() ([]byte, error) {
	const hdr = len(compiledMagic) + 8 + 4
	out := make([]byte, hdr+len(f.prog)*int(unsafe.Sizeof(unix.SockFilter{})))
	copy(out, compiledMagic)
	binary.LittleEndian.PutUint64(out[8:], uint64(f.flags))
	if f.notify {
		out[16] = 1
	}
	for i, ins := range f.prog {
		b := out[hdr+i*8:]
		binary.LittleEndian.PutUint16(b, ins.Code)
		b[2], b[3] = ins.Jt, ins.Jf
		binary.LittleEndian.PutUint32(b[4:], ins.K)
	}
	return out, nil
}

// UnmarshalFilter decodes what MarshalBinary wrote, checking its shape (a
// corrupt or foreign file is an error, never a half filter).
func UnmarshalFilter(data []byte) (*Filter, error) {
	const hdr = len(compiledMagic) + 8 + 4
	if len(data) < hdr || string(data[:len(compiledMagic)]) != compiledMagic || (len(data)-hdr)%8 != 0 {
		return nil, fmt.Errorf("seccomp: compiled filter: bad format")
	}
	n := (len(data) - hdr) / 8
	if n == 0 || n > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("seccomp: compiled filter: %d instructions", n)
	}
	prog := make([]unix.SockFilter, n)
	for i := range prog {
		b := data[hdr+i*8:]
		prog[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.LittleEndian.Uint32(b[4:])}
	}
	return newFilter(prog, uintptr(binary.LittleEndian.Uint64(data[8:])), data[16] == 1)
}

// newFilter wraps a decoded program. notify says whether the profile has
// SCMP_ACT_NOTIFY rules; flags are the seccomp(2) flags derived from the
// profile's flag list.
func newFilter(prog []unix.SockFilter, flags uintptr, notify bool) (*Filter, error) {
	if len(prog) == 0 {
		return nil, errors.New("seccomp: compiled filter is empty")
	}
	if len(prog) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("seccomp: compiled filter has %d instructions, the kernel accepts at most %d", len(prog), unix.BPF_MAXINSNS)
	}
	f := &Filter{prog: prog, flags: flags, notify: notify}
	f.fprog = unix.SockFprog{Len: uint16(len(prog)), Filter: &f.prog[0]}
	return f, nil
}
