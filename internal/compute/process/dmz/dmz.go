// Package dmz builds the exec trampoline of the direct init and the direct
// exec: a static x86-64 ELF of a few hundred bytes, made for one container
// process, that executes that process (an init's after waiting for
// "start", an exec's in a child of its own).
//
// Why it exists: a direct child is a clone of the runtime itself, not an
// execve of a copy, so until it executes something else its
// /proc/<pid>/exe is the runtime's binary on the host. If the container's
// process is /proc/self/exe (or a script whose interpreter is), execve
// would even run that binary inside the container, where a second process
// could open it for writing once it exits (CVE-2019-5736). Executing this
// trampoline from a sealed memfd first moves /proc/<pid>/exe off the host
// binary before the container can run anything, for one small execve
// instead of the exec'd init's execve of the whole runtime and a Go
// start-up. runc once shipped a C program for the same purpose
// (runc-dmz); this one is generated, so everything it needs (fds, paths,
// argv, env) is written into it and it takes no input but the start
// signal.
//
// What it does, each step checked:
//
//	clone(CLONE_PARENT), parent exits   Fork (exec): the process is a
//	                                      child of the runtime
//	sendto(Sync, Hello)                 the runtime learns we are here
//	setsid()                            Fork: a session of its own,
//	ioctl(0, TIOCSCTTY)                   Ctty: with its terminal
//	read(Fifo)                          Wait (init), create: wait for start,
//	fcntl(Fifo, F_SETFD, FD_CLOEXEC)      which waits for the read end to go
//	  or read(Sync)                     Wait, run: for the runtime's reply
//	fcntl(Sync, F_SETFD, FD_CLOEXEC)    EOF on Sync will mean "executed"
//	execve(Paths[i], Argv, Env)         each candidate in turn
//
// A failed step sends the record {ErrorBase+step, errno} on Sync, the
// direct init's own error format, and exits 1.
//
// It runs after the container's seccomp filter is loaded, so its calls
// must pass that filter: Image.Calls lists them with their exact
// arguments for the caller to check (the addresses are fixed: the ELF is
// not position independent).
package dmz

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Supported reports whether trampolines run on this machine (they are
// x86-64 code).
func Supported() bool { return runtime.GOARCH == "amd64" }

// Config is what one trampoline does.
type Config struct {
	// Sync is the init pipe (a socket): Hello and errors go out on it,
	// run's start reply comes in on it.
	Sync int
	// Fork makes the trampoline clone a child with CLONE_PARENT (the
	// runtime's child, in the pid namespace the trampoline's children go
	// to) and exit; the child goes on, in a session of its own.
	Fork bool
	// Ctty makes stdin, a terminal, the controlling terminal of that
	// session (with Fork).
	Ctty bool
	// Hello is the first record on Sync (from the child, with Fork).
	Hello [8]byte
	// Wait makes it wait for start after Hello: for a byte on Fifo (the
	// exec fifo) or, with Fifo < 0, on Sync.
	Wait bool
	Fifo int
	// Paths are tried in order with execve: where Argv[0] may be.
	Paths []string
	// Argv and Env are the process's.
	Argv, Env []string
	// ErrorBase + the failed step's index is the first word of an error
	// record.
	ErrorBase uint32
}

// Call is a system call the trampoline makes, as a seccomp filter sees
// it.
type Call struct {
	Nr   uintptr
	Args [6]uint64
	// IP is the address after the syscall instruction (seccomp_data's
	// instruction_pointer).
	IP uint64
}

// Image is a built trampoline.
type Image struct {
	// ELF is the executable, to be run from a sealed memfd.
	ELF []byte
	// Calls are every system call it can make but exit_group.
	Calls []Call
	// Steps say what each step does: Steps[k] for record ErrorBase+k.
	Steps []string
}

// Where the two segments are mapped. The file is small, so its page is
// mapped twice: code at codeBase+offset, data at dataBase+offset
// (p_vaddr must equal p_offset modulo the page size).
const (
	codeBase = 0x400000
	dataBase = 0x600000
	// dataOff is where the data starts in the file, after the ELF header
	// and three program headers (64 + 3*56 bytes).
	dataOff = 256
)

// Fixed data at the start of the data segment.
const (
	recAddr   = dataBase + dataOff      // the error record
	bufAddr   = dataBase + dataOff + 8  // the byte read at start
	helloAddr = dataBase + dataOff + 16 // Config.Hello
	varAddr   = dataBase + dataOff + 24 // argv, envp, strings
)

// Build makes the trampoline for c.
func Build(c Config) (*Image, error) {
	if len(c.Paths) == 0 || len(c.Argv) == 0 {
		return nil, fmt.Errorf("dmz: no path or no argv")
	}
	d, err := layOut(c)
	if err != nil {
		return nil, err
	}
	codeOff := (dataOff + len(d.bytes) + 15) &^ 15
	if codeOff > dataBase-codeBase-4096 {
		return nil, fmt.Errorf("dmz: process arguments and environment too large (%d bytes)", len(d.bytes))
	}
	img, code, err := emit(c, d, codeBase+uint64(codeOff))
	if err != nil {
		return nil, err
	}
	img.ELF = elfFile(codeOff, code, d.bytes)
	return img, nil
}

// dataSegment is the data segment and the addresses in it.
type dataSegment struct {
	bytes      []byte
	argv, envp uint64   // the pointer arrays
	paths      []uint64 // the candidate paths
}

// layOut makes the data segment: the fixed part, the argv and envp arrays,
// then the strings they and the paths point to.
func layOut(c Config) (*dataSegment, error) {
	d := &dataSegment{bytes: make([]byte, varAddr-recAddr, 4096)}
	copy(d.bytes[helloAddr-recAddr:], c.Hello[:])
	var strs []byte
	strAt := func(s string) (uint64, error) {
		if _, err := syscall.ByteSliceFromString(s); err != nil {
			return 0, fmt.Errorf("dmz: %q: %w", s, err)
		}
		off := uint64(len(strs))
		strs = append(append(strs, s...), 0)
		return off, nil
	}
	// Pointers are written once the strings' base is known.
	type ptr struct {
		at  int
		off uint64
	}
	var ptrs []ptr
	vector := func(list []string) (uint64, error) {
		addr := uint64(recAddr + len(d.bytes))
		for _, s := range list {
			off, err := strAt(s)
			if err != nil {
				return 0, err
			}
			ptrs = append(ptrs, ptr{len(d.bytes), off})
			d.bytes = binary.LittleEndian.AppendUint64(d.bytes, 0)
		}
		d.bytes = binary.LittleEndian.AppendUint64(d.bytes, 0)
		return addr, nil
	}
	var err error
	if d.argv, err = vector(c.Argv); err != nil {
		return nil, err
	}
	if d.envp, err = vector(c.Env); err != nil {
		return nil, err
	}
	d.paths = make([]uint64, len(c.Paths))
	for i, p := range c.Paths {
		if d.paths[i], err = strAt(p); err != nil {
			return nil, err
		}
	}
	strBase := uint64(recAddr + len(d.bytes))
	for _, p := range ptrs {
		binary.LittleEndian.PutUint64(d.bytes[p.at:], strBase+p.off)
	}
	for i := range d.paths {
		d.paths[i] += strBase
	}
	d.bytes = append(d.bytes, strs...)
	return d, nil
}

// emit writes the code for c at address base, over data d.
func emit(c Config, d *dataSegment, base uint64) (*Image, []byte, error) {
	img := &Image{}
	a := &x86{base: base}
	step := func(what string, nr uintptr, args ...uint64) {
		var full [6]uint64
		copy(full[:], args)
		img.Calls = append(img.Calls, a.call(c.ErrorBase+uint32(len(img.Steps)), nr, full, true))
		img.Steps = append(img.Steps, what)
	}
	sync := uint64(c.Sync)
	if c.Fork {
		step("clone the process", unix.SYS_CLONE, unix.CLONE_PARENT)
		a.exitIfParent()
	}
	step("hello", unix.SYS_SENDTO, sync, helloAddr, 8, unix.MSG_NOSIGNAL)
	if c.Fork {
		step("setsid", unix.SYS_SETSID)
		if c.Ctty {
			step("process.terminal: set controlling terminal", unix.SYS_IOCTL, 0, unix.TIOCSCTTY, 0)
		}
	}
	switch {
	case !c.Wait:
	case c.Fifo >= 0:
		step("wait for start on exec fifo", unix.SYS_READ, uint64(c.Fifo), bufAddr, 1)
		// Start waits for the fifo's read end to go: at the execve.
		step("exec fifo: close-on-exec", unix.SYS_FCNTL, uint64(c.Fifo), unix.F_SETFD, unix.FD_CLOEXEC)
	default:
		step("wait for start", unix.SYS_READ, sync, bufAddr, 1)
	}
	step("init pipe: close-on-exec", unix.SYS_FCNTL, sync, unix.F_SETFD, unix.FD_CLOEXEC)
	for i, p := range d.paths {
		// execve returns only on failure: the next candidate, and after
		// the last the error block, which follows.
		img.Calls = append(img.Calls, a.call(c.ErrorBase+uint32(len(img.Steps)), unix.SYS_EXECVE, [6]uint64{p, d.argv, d.envp}, false))
		img.Steps = append(img.Steps, fmt.Sprintf("exec %q", c.Paths[i]))
	}
	// The error block: EBX holds the record's first word, RAX -errno.
	a.bind()
	a.emit(0xf7, 0xd8)       // neg eax
	a.storeAbs(0, recAddr+4) // mov [rec+4], eax
	a.storeAbs(3, recAddr)   // mov [rec], ebx
	img.Calls = append(img.Calls, a.call(0, unix.SYS_SENDTO, [6]uint64{sync, recAddr, 8, unix.MSG_NOSIGNAL}, false))
	a.movImm(regDI, 1)
	a.movImm(regAX, unix.SYS_EXIT_GROUP)
	a.emit(0x0f, 0x05)
	return img, a.b, a.err
}

// elfFile lays out the executable: the ELF header and program headers
// (Elf64_Ehdr, Elf64_Phdr, by hand: debug/elf would add its whole reader
// to the runtime for two structs; the tests read the result with it), the
// data at dataOff, the code at codeOff.
func elfFile(codeOff int, code, dataSeg []byte) []byte {
	le := binary.LittleEndian
	entry := codeBase + uint64(codeOff)
	out := append([]byte{0x7f, 'E', 'L', 'F', elfClass64, elfData2LSB, elfVersion}, make([]byte, 9)...)
	out = le.AppendUint16(out, elfTypeExec)
	out = le.AppendUint16(out, elfMachineX86_64)
	out = le.AppendUint32(out, elfVersion)
	out = le.AppendUint64(out, entry) // e_entry
	out = le.AppendUint64(out, 64)    // e_phoff
	out = le.AppendUint64(out, 0)     // e_shoff
	out = le.AppendUint32(out, 0)     // e_flags
	for _, v := range []uint16{64, 56, 3, 64, 0, 0} {
		out = le.AppendUint16(out, v) // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
	}
	for _, ph := range []struct {
		typ, flags              uint32
		off, vaddr, size, align uint64
	}{
		{ptLoad, pfR | pfX, uint64(codeOff), entry, uint64(len(code)), 4096},
		{ptLoad, pfR | pfW, dataOff, recAddr, uint64(len(dataSeg)), 4096},
		{ptGNUStack, pfR | pfW, 0, 0, 0, 16}, // a stack that is not executable
	} {
		out = le.AppendUint32(out, ph.typ)
		out = le.AppendUint32(out, ph.flags)
		for _, v := range []uint64{ph.off, ph.vaddr, ph.vaddr, ph.size, ph.size, ph.align} {
			out = le.AppendUint64(out, v) // p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
		}
	}
	out = append(out, make([]byte, dataOff-len(out))...)
	out = append(out, dataSeg...)
	out = append(out, make([]byte, codeOff-len(out))...)
	return append(out, code...)
}

// The ELF values used (elf(5)).
const (
	elfClass64       = 2
	elfData2LSB      = 1
	elfVersion       = 1
	elfTypeExec      = 2
	elfMachineX86_64 = 62
	ptLoad           = 1
	ptGNUStack       = 0x6474e551
	pfX              = 1
	pfW              = 2
	pfR              = 4
)

// Registers by their x86 numbers.
const (
	regAX  = 0
	regDX  = 2
	regBX  = 3
	regSI  = 6
	regDI  = 7
	regR8  = 8
	regR9  = 9
	regR10 = 10
)

// x86 emits the few x86-64 instructions a trampoline is made of.
type x86 struct {
	b    []byte
	base uint64 // the address of b[0]
	// fixups are the rel32 fields of the jumps to the error block.
	fixups []int
	err    error
}

func (a *x86) emit(b ...byte) { a.b = append(a.b, b...) }

// movImm is "mov r32, imm32" (which zeroes the upper half).
func (a *x86) movImm(reg int, v uint64) {
	if v > math.MaxUint32 {
		a.err = fmt.Errorf("dmz: value %#x does not fit an immediate", v)
	}
	if reg >= 8 {
		a.emit(0x41) // REX.B
	}
	a.emit(0xb8 + byte(reg&7))
	a.b = binary.LittleEndian.AppendUint32(a.b, uint32(v))
}

// storeAbs is "mov [addr], r32" with an absolute 32-bit address.
func (a *x86) storeAbs(reg int, addr uint64) {
	a.emit(0x89, 0x04|byte(reg)<<3, 0x25) // ModRM: SIB follows; SIB: disp32, no base or index
	a.b = binary.LittleEndian.AppendUint32(a.b, uint32(addr))
}

// call emits a system call with every argument register set (a seccomp
// filter sees all six), EBX = tag for the error block, and with check a
// jump to the error block on failure.
func (a *x86) call(tag uint32, nr uintptr, args [6]uint64, check bool) Call {
	a.movImm(regBX, uint64(tag))
	for i, reg := range [6]int{regDI, regSI, regDX, regR10, regR8, regR9} {
		a.movImm(reg, args[i])
	}
	a.movImm(regAX, uint64(nr))
	a.emit(0x0f, 0x05) // syscall
	c := Call{Nr: nr, Args: args, IP: a.base + uint64(len(a.b))}
	if check {
		a.emit(0x48, 0x85, 0xc0)       // test rax, rax
		a.emit(0x0f, 0x88, 0, 0, 0, 0) // js rel32 (the error block)
		a.fixups = append(a.fixups, len(a.b)-4)
	}
	return c
}

// exitIfParent ends the caller of a clone that returned a pid (RAX > 0)
// with exit_group(0); the child (RAX = 0) goes on.
func (a *x86) exitIfParent() {
	a.emit(0x48, 0x85, 0xc0) // test rax, rax
	a.emit(0x74, 12)         // jz +12: over the exit
	a.movImm(regDI, 0)       // 5 bytes
	a.movImm(regAX, unix.SYS_EXIT_GROUP)
	a.emit(0x0f, 0x05) // syscall
}

// bind points the pending jumps at the current address.
func (a *x86) bind() {
	for _, at := range a.fixups {
		binary.LittleEndian.PutUint32(a.b[at:], uint32(int32(len(a.b)-(at+4))))
	}
	a.fixups = nil
}
