#include "textflag.h"

#define SYS_rt_sigreturn	15
#define SYS_kill		62

// sigForward is the handler of every forwarded signal. The kernel calls it
// as void handler(int sig), so sig is in DI. It touches no stack and no Go
// state: it reads forwardTarget, then kills that pid or keeps the signal
// in forwardPending (see sigforward.go). Registers need no saving: the
// kernel restores them all at rt_sigreturn.
TEXT ·sigForward(SB),NOSPLIT|NOFRAME,$0
	MOVL	DI, R13                       // R13 = sig
	MOVL	·forwardTarget(SB), R12       // R12 = target pid
	CMPL	R12, $0
	JLT	done                          // < 0: drop
	JEQ	keep                          // 0: keep for later
	MOVL	R12, DI                       // > 0: kill(target, sig)
	MOVL	R13, SI
	MOVQ	$SYS_kill, AX
	SYSCALL
	RET
keep:
	LEAL	-1(R13), CX
	MOVQ	$1, DX
	SHLQ	CX, DX
	LOCK
	ORQ	DX, ·forwardPending(SB)
	// forwardTo may have published the pid since the load above: whoever
	// swaps the set out first sends it.
	MOVL	·forwardTarget(SB), R12
	CMPL	R12, $0
	JLE	done
	XORQ	R13, R13
	XCHGQ	R13, ·forwardPending(SB)      // R13 = kept set, now cleared
next:
	TESTQ	R13, R13
	JEQ	done
	BSFQ	R13, R14                      // R14 = lowest set bit
	BTRQ	R14, R13
	MOVL	R12, DI
	LEAL	1(R14), SI                    // signal = bit + 1
	MOVQ	$SYS_kill, AX
	SYSCALL                               // clobbers AX, CX, R11 only
	JMP	next
done:
	RET

// sigReturn is the handler's restorer: rt_sigreturn(2).
TEXT ·sigReturn(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$SYS_rt_sigreturn, AX
	SYSCALL
	INT	$3                            // not reached

// func sigForwardAddr() uintptr
TEXT ·sigForwardAddr(SB),NOSPLIT,$0-8
	LEAQ	·sigForward(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

// func sigReturnAddr() uintptr
TEXT ·sigReturnAddr(SB),NOSPLIT,$0-8
	LEAQ	·sigReturn(SB), AX
	MOVQ	AX, ret+0(FP)
	RET
