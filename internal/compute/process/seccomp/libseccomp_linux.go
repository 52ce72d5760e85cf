//go:build cgo

package seccomp

// The few libseccomp calls Compile needs, made directly. The Go binding
// (libseccomp-golang) calls seccomp_api_get() from a package init: every
// process that links it — every runsilo command, and the container's init
// — probed the kernel with several seccomp(2) calls at start, though only
// a cache miss in create, run and exec ever compiles. libseccomp itself
// probes lazily, in seccomp_init.

// #cgo pkg-config: libseccomp
// #include <errno.h>
// #include <stdlib.h>
// #include <seccomp.h>
//
// static uint32_t silo_act_errno(uint32_t ret) { return SCMP_ACT_ERRNO(ret); }
// static uint32_t silo_act_trace(uint32_t ret) { return SCMP_ACT_TRACE(ret); }
//
// static int silo_rule_add(scmp_filter_ctx ctx, uint32_t action, int nr,
//                          unsigned int n, const uint64_t *conds) {
// 	struct scmp_arg_cmp args[6];
// 	if (n > 6)
// 		return -EINVAL;
// 	for (unsigned int i = 0; i < n; i++) {
// 		args[i].arg = (unsigned int)conds[4 * i];
// 		args[i].op = (enum scmp_compare)conds[4 * i + 1];
// 		args[i].datum_a = conds[4 * i + 2];
// 		args[i].datum_b = conds[4 * i + 3];
// 	}
// 	return seccomp_rule_add_array(ctx, action, nr, n, args);
// }
import "C"

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// scmpAct is a libseccomp action (SCMP_ACT_*, with its errno or trace
// value in the low 16 bits).
type scmpAct uint32

// The actions without a value.
const (
	actKillThread  scmpAct = C.SCMP_ACT_KILL_THREAD
	actKillProcess scmpAct = C.SCMP_ACT_KILL_PROCESS
	actTrap        scmpAct = C.SCMP_ACT_TRAP
	actAllow       scmpAct = C.SCMP_ACT_ALLOW
	actLog         scmpAct = C.SCMP_ACT_LOG
	actNotify      scmpAct = C.SCMP_ACT_NOTIFY
	// actInvalid is no action libseccomp accepts (its own invalid value).
	actInvalid scmpAct = 0x00010000
)

func actErrno(ret uint16) scmpAct { return scmpAct(C.silo_act_errno(C.uint32_t(ret))) }
func actTrace(ret uint16) scmpAct { return scmpAct(C.silo_act_trace(C.uint32_t(ret))) }

// scmpOp is a libseccomp comparison (enum scmp_compare).
type scmpOp uint32

// The comparisons.
const (
	cmpInvalid      scmpOp = 0
	cmpNotEqual     scmpOp = C.SCMP_CMP_NE
	cmpLess         scmpOp = C.SCMP_CMP_LT
	cmpLessOrEqual  scmpOp = C.SCMP_CMP_LE
	cmpEqual        scmpOp = C.SCMP_CMP_EQ
	cmpGreaterEqual scmpOp = C.SCMP_CMP_GE
	cmpGreater      scmpOp = C.SCMP_CMP_GT
	cmpMaskedEqual  scmpOp = C.SCMP_CMP_MASKED_EQ
)

// scmpCond is one argument comparison of a rule.
type scmpCond struct {
	arg  uint
	op   scmpOp
	a, b uint64
}

// errno turns libseccomp's negative errno return into an error.
func errno(rc C.int) error {
	if rc == 0 {
		return nil
	}
	return syscall.Errno(-rc)
}

// scmpFilter is a libseccomp filter context under construction.
type scmpFilter struct{ ctx C.scmp_filter_ctx }

// newScmpFilter starts a filter with the default action def. The first one
// in a process makes libseccomp probe the kernel's seccomp support.
func newScmpFilter(def scmpAct) (*scmpFilter, error) {
	ctx := C.seccomp_init(C.uint32_t(def))
	if ctx == nil {
		return nil, fmt.Errorf("seccomp_init: default action %#x refused", uint32(def))
	}
	return &scmpFilter{ctx: ctx}, nil
}

func (f *scmpFilter) release() { C.seccomp_release(f.ctx) }

// addArch adds an architecture (an arch token from archToken); one already
// in the filter is not an error.
func (f *scmpFilter) addArch(token uint32) error {
	err := errno(C.seccomp_arch_add(f.ctx, C.uint32_t(token)))
	if errors.Is(err, syscall.EEXIST) {
		return nil
	}
	return err
}

// setAttr sets a filter attribute (SCMP_FLTATR_*).
func (f *scmpFilter) setAttr(attr C.enum_scmp_filter_attr, v uint32) error {
	return errno(C.seccomp_attr_set(f.ctx, attr, C.uint32_t(v)))
}

func (f *scmpFilter) setNoNewPrivs(on bool) error { return f.setAttr(C.SCMP_FLTATR_CTL_NNP, b2u(on)) }
func (f *scmpFilter) setLog(on bool) error        { return f.setAttr(C.SCMP_FLTATR_CTL_LOG, b2u(on)) }
func (f *scmpFilter) setOptimize(level uint32) error {
	return f.setAttr(C.SCMP_FLTATR_CTL_OPTIMIZE, level)
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// addRule adds a rule for syscall nr (from syscallNumber) with up to six
// comparisons, ANDed.
func (f *scmpFilter) addRule(nr int32, act scmpAct, conds []scmpCond) error {
	if len(conds) > 6 {
		return syscall.EINVAL
	}
	var flat [24]C.uint64_t
	for i, c := range conds {
		flat[4*i], flat[4*i+1], flat[4*i+2], flat[4*i+3] = C.uint64_t(c.arg), C.uint64_t(c.op), C.uint64_t(c.a), C.uint64_t(c.b)
	}
	return errno(C.silo_rule_add(f.ctx, C.uint32_t(act), C.int(nr), C.uint(len(conds)), &flat[0]))
}

// exportBPF writes the program to file.
func (f *scmpFilter) exportBPF(file *os.File) error {
	return errno(C.seccomp_export_bpf(f.ctx, C.int(file.Fd())))
}

// archToken resolves a libseccomp architecture name ("x86_64", "aarch64");
// ok is false for a name this libseccomp does not know.
func archToken(name string) (token uint32, ok bool) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	t := uint32(C.seccomp_arch_resolve_name(cs))
	return t, t != 0
}

// syscallNumber resolves a syscall name for the native architecture (a
// negative pseudo number for one it lacks but others have); ok is false
// for a name libseccomp knows on no architecture.
func syscallNumber(name string) (nr int32, ok bool) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	n := C.seccomp_syscall_resolve_name(cs)
	return int32(n), n != C.__NR_SCMP_ERROR
}
