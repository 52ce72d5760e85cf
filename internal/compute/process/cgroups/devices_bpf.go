package cgroups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The device filter is a BPF_PROG_TYPE_CGROUP_DEVICE program assembled
// here, with no dependency on an eBPF library: it is a handful of
// instruction kinds. The kernel calls it with a struct bpf_cgroup_dev_ctx
// { u32 access_type; u32 major; u32 minor; } where access_type is
// (access << 16) | device type; it returns 1 to allow, 0 to deny.

// insn is a struct bpf_insn.
type insn struct {
	code uint8
	regs uint8 // dst_reg:4, src_reg:4 (bitfield order follows endianness)
	off  int16
	imm  int32
}

// Registers used by the program.
const (
	r0 = 0 // return value
	r1 = 1 // context on entry, then scratch
	r2 = 2 // device type
	r3 = 3 // requested access
	r4 = 4 // major
	r5 = 5 // minor
)

// Opcodes (class | op | source).
const (
	opLdxW    = unix.BPF_LDX | unix.BPF_MEM | unix.BPF_W
	opAnd32K  = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opRsh32K  = unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K
	opMov32K  = unix.BPF_ALU | unix.BPF_MOV | unix.BPF_K
	opMov32X  = unix.BPF_ALU | unix.BPF_MOV | unix.BPF_X
	opJneK    = unix.BPF_JMP | unix.BPF_JNE | unix.BPF_K
	opJneX    = unix.BPF_JMP | unix.BPF_JNE | unix.BPF_X
	opJeqK    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opExit    = unix.BPF_JMP | unix.BPF_EXIT
	devBlock  = 1 // BPF_DEVCG_DEV_BLOCK
	devChar   = 2 // BPF_DEVCG_DEV_CHAR
	accMknod  = 1 // BPF_DEVCG_ACC_MKNOD
	accRead   = 2 // BPF_DEVCG_ACC_READ
	accWrite  = 4 // BPF_DEVCG_ACC_WRITE
	accAll    = accMknod | accRead | accWrite
	progLicen = "Apache"
)

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func mkInsn(code uint8, dst, src uint8, off int16, imm int32) insn {
	regs := dst | src<<4
	if !littleEndian {
		regs = dst<<4 | src
	}
	return insn{code: code, regs: regs, off: off, imm: imm}
}

// accessBits converts "rwm" letters to BPF_DEVCG_ACC_* bits.
func accessBits(s string) int32 {
	var b int32
	for _, c := range s {
		switch c {
		case 'r':
			b |= accRead
		case 'w':
			b |= accWrite
		case 'm':
			b |= accMknod
		}
	}
	return b
}

// deviceProgram assembles the filter for rules. The OCI semantics are
// "the last matching rule wins", so the rules are tested last to first and
// the first match returns. An allow rule matches when every requested
// access bit is in the rule; a deny rule when any of them is, which is how
// the v1 kernel treats exceptions too. No match denies.
func deviceProgram(rules []deviceRule) []insn {
	prog := []insn{
		mkInsn(opLdxW, r2, r1, 0, 0),
		mkInsn(opAnd32K, r2, 0, 0, 0xffff),
		mkInsn(opLdxW, r3, r1, 0, 0),
		mkInsn(opRsh32K, r3, 0, 0, 16),
		mkInsn(opLdxW, r4, r1, 4, 0),
		mkInsn(opLdxW, r5, r1, 8, 0),
	}
	for i := len(rules) - 1; i >= 0; i-- {
		d := rules[i]
		// Each check jumps to the next block on mismatch; offsets are
		// filled in once the block length is known.
		var block []insn
		switch d.typ {
		case 'b':
			block = append(block, mkInsn(opJneK, r2, 0, 0, devBlock))
		case 'c':
			block = append(block, mkInsn(opJneK, r2, 0, 0, devChar))
		}
		if acc := accessBits(d.access); acc != accAll {
			block = append(block, mkInsn(opMov32X, r1, r3, 0, 0), mkInsn(opAnd32K, r1, 0, 0, acc))
			if d.allow {
				block = append(block, mkInsn(opJneX, r1, r3, 0, 0))
			} else {
				block = append(block, mkInsn(opJeqK, r1, 0, 0, 0))
			}
		}
		if d.major >= 0 {
			block = append(block, mkInsn(opJneK, r4, 0, 0, int32(d.major)))
		}
		if d.minor >= 0 {
			block = append(block, mkInsn(opJneK, r5, 0, 0, int32(d.minor)))
		}
		conditional := len(block) > 0
		ret := int32(0)
		if d.allow {
			ret = 1
		}
		block = append(block, mkInsn(opMov32K, r0, 0, 0, ret), mkInsn(opExit, 0, 0, 0, 0))
		for j := range block {
			if block[j].code&0x07 == unix.BPF_JMP && block[j].code != opExit {
				block[j].off = int16(len(block) - j - 1)
			}
		}
		prog = append(prog, block...)
		if !conditional {
			// Earlier rules can never be reached, and the verifier rejects
			// unreachable instructions.
			return prog
		}
	}
	return append(prog, mkInsn(opMov32K, r0, 0, 0, 0), mkInsn(opExit, 0, 0, 0, 0))
}

// bpf is the bpf(2) system call.
func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// progLoadAttr is the BPF_PROG_LOAD part of union bpf_attr.
type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

// loadDeviceProgram loads prog and returns its fd. On failure it loads it
// again with the verifier log on, to put the reason in the error.
func loadDeviceProgram(prog []insn) (int, error) {
	license := []byte(progLicen + "\x00")
	attr := progLoadAttr{
		progType:           unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:            uint32(len(prog)),
		insns:              uint64(uintptr(unsafe.Pointer(&prog[0]))),
		license:            uint64(uintptr(unsafe.Pointer(&license[0]))),
		expectedAttachType: unix.BPF_CGROUP_DEVICE,
	}
	copy(attr.progName[:], "silo_devices")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		log := make([]byte, 64<<10)
		attr.logLevel, attr.logSize = 1, uint32(len(log))
		attr.logBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
		if fd2, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err2 == nil {
			unix.Close(fd2)
		}
		msg := unix.ByteSliceToString(log)
		runtime.KeepAlive(log)
		if msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
	}
	runtime.KeepAlive(prog)
	runtime.KeepAlive(license)
	if err != nil {
		return -1, fmt.Errorf("load device filter: %w", err)
	}
	return fd, nil
}

// progAttachAttr is the BPF_PROG_ATTACH/DETACH part of union bpf_attr.
type progAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
	_            uint32
}

// progQueryAttr is the BPF_PROG_QUERY part of union bpf_attr.
type progQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

// attachedDevicePrograms returns the ids of the device programs attached
// directly to the cgroup.
func attachedDevicePrograms(cgfd int) ([]uint32, error) {
	for range 5 {
		q := progQueryAttr{targetFd: uint32(cgfd), attachType: unix.BPF_CGROUP_DEVICE}
		if _, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&q), unsafe.Sizeof(q)); err != nil {
			return nil, err
		}
		if q.progCnt == 0 {
			return nil, nil
		}
		ids := make([]uint32, q.progCnt)
		q.progIDs = uint64(uintptr(unsafe.Pointer(&ids[0])))
		_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&q), unsafe.Sizeof(q))
		runtime.KeepAlive(ids)
		if errors.Is(err, unix.ENOSPC) {
			continue // another program was attached meanwhile
		}
		if err != nil {
			return nil, err
		}
		return ids[:q.progCnt], nil
	}
	return nil, unix.ENOSPC
}

// setDevicesBPF replaces the device filter of cgroup2 directory dir. The
// new program is attached before the old ones are detached: the kernel
// requires every attached program to allow an access, so the overlap is
// only ever stricter, never looser.
func setDevicesBPF(dir string, rules []deviceRule) error {
	prog := deviceProgram(rules)
	progFd, err := loadDeviceProgram(prog)
	if err != nil {
		return err
	}
	defer unix.Close(progFd)
	cgfd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(cgfd)
	old, err := attachedDevicePrograms(cgfd)
	if err != nil {
		return fmt.Errorf("query device filters of %s: %w", dir, err)
	}
	at := progAttachAttr{
		targetFd:    uint32(cgfd),
		attachBpfFd: uint32(progFd),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&at), unsafe.Sizeof(at)); err != nil {
		return fmt.Errorf("attach device filter to %s: %w", dir, err)
	}
	for _, id := range old {
		if err := detachProgram(cgfd, id); err != nil {
			return fmt.Errorf("detach old device filter %d from %s: %w", id, dir, err)
		}
	}
	return nil
}

// detachProgram detaches program id from the cgroup; one that is already
// gone is fine.
func detachProgram(cgfd int, id uint32) error {
	get := struct{ progID, nextID, openFlags uint32 }{progID: id}
	fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&get), unsafe.Sizeof(get))
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	at := progAttachAttr{targetFd: uint32(cgfd), attachBpfFd: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE}
	if _, err := bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&at), unsafe.Sizeof(at)); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}
