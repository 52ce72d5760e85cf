#include "textflag.h"

// The direct init's executor for a child that shares the runtime's memory
// (clone3 with CLONE_VM): no page tables copied, no copy-on-write faults
// in the runtime afterwards. The child runs on registers only: it must not
// touch the Go stack, which the runtime keeps using. See direct.go (the
// same loop in Go, for the forked child) and dop's layout
// (TestDopLayout).

#define SYS_sendto	44
#define SYS_exit_group	231
#define SYS_clone3	435

#define DOP_SIZE	120
#define DOP_NR		0
#define DOP_ARGS	8
#define DOP_ARGFROM	56
#define DOP_SLOTIN	64
#define DOP_SLOTOUT	72
#define DOP_OKERR	80
#define DOP_SKIPERR	88
#define DOP_SKIPN	96
#define DOP_SKIPOK	104
#define DOP_ANYERR	112
#define DOP_EXITPARENT	113

// directState: slots [16]uintptr at 0, scratch [6]uintptr at 128, rep
// [2]uint32 at 176, errFd at 184.
#define ST_SLOTS	0
#define ST_SCRATCH	128
#define ST_REP		176
#define ST_ERRFD	184

// func directCloneVM(args *cloneArgs, ops *dop, n int, st *directState) (ret uintptr)
TEXT ·directCloneVM(SB),NOSPLIT,$0-40
	MOVQ	args+0(FP), DI
	MOVQ	ops+8(FP), R12
	MOVQ	n+16(FP), R13
	MOVQ	st+24(FP), R14
	MOVQ	$88, SI			// sizeof(struct clone_args)
	MOVQ	$SYS_clone3, AX
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	MOVQ	AX, ret+32(FP)		// the child's pid, or -errno
	RET

child:
	XORQ	BX, BX			// BX = step index
loop:
	CMPQ	BX, R13
	JGE	finished
	MOVQ	BX, R15
	IMULQ	$DOP_SIZE, R15
	ADDQ	R12, R15		// R15 = &ops[BX]
	// scratch = args, then args[argFrom] = slots[slotIn&15]
	MOVQ	(DOP_ARGS+0)(R15), AX
	MOVQ	AX, (ST_SCRATCH+0)(R14)
	MOVQ	(DOP_ARGS+8)(R15), AX
	MOVQ	AX, (ST_SCRATCH+8)(R14)
	MOVQ	(DOP_ARGS+16)(R15), AX
	MOVQ	AX, (ST_SCRATCH+16)(R14)
	MOVQ	(DOP_ARGS+24)(R15), AX
	MOVQ	AX, (ST_SCRATCH+24)(R14)
	MOVQ	(DOP_ARGS+32)(R15), AX
	MOVQ	AX, (ST_SCRATCH+32)(R14)
	MOVQ	(DOP_ARGS+40)(R15), AX
	MOVQ	AX, (ST_SCRATCH+40)(R14)
	MOVQ	DOP_ARGFROM(R15), CX
	CMPQ	CX, $0
	JLT	call
	CMPQ	CX, $6
	JGE	call
	MOVQ	DOP_SLOTIN(R15), DX
	ANDQ	$15, DX
	MOVQ	(ST_SLOTS)(R14)(DX*8), AX
	MOVQ	AX, (ST_SCRATCH)(R14)(CX*8)
call:
	MOVQ	(ST_SCRATCH+0)(R14), DI
	MOVQ	(ST_SCRATCH+8)(R14), SI
	MOVQ	(ST_SCRATCH+16)(R14), DX
	MOVQ	(ST_SCRATCH+24)(R14), R10
	MOVQ	(ST_SCRATCH+32)(R14), R8
	MOVQ	(ST_SCRATCH+40)(R14), R9
	MOVQ	DOP_NR(R15), AX
	SYSCALL
	MOVQ	$-4095, CX
	CMPQ	AX, CX
	JCS	success			// unsigned AX < -4095: not an errno
	MOVQ	AX, CX
	NEGQ	CX			// CX = errno
	CMPQ	CX, DOP_OKERR(R15)
	JEQ	okerr
	CMPQ	CX, DOP_SKIPERR(R15)
	JEQ	skip
	CMPB	DOP_ANYERR(R15), $0
	JNE	skip
	// Report step BX and errno CX, then exit 1 (MSG_NOSIGNAL: after
	// create the parent is gone).
	MOVL	BX, (ST_REP+0)(R14)
	MOVL	CX, (ST_REP+4)(R14)
	MOVQ	ST_ERRFD(R14), DI
	LEAQ	ST_REP(R14), SI
	MOVQ	$8, DX
	MOVQ	$0x4000, R10
	XORQ	R8, R8
	XORQ	R9, R9
	MOVQ	$SYS_sendto, AX
	SYSCALL
	MOVQ	$1, DI
	MOVQ	$SYS_exit_group, AX
	SYSCALL
skip:
	ADDQ	DOP_SKIPN(R15), BX
	INCQ	BX
	JMP	loop
okerr:
	MOVQ	DOP_SLOTOUT(R15), CX
	CMPQ	CX, $0
	JLT	next
	ANDQ	$15, CX
	MOVQ	AX, (ST_SLOTS)(R14)(CX*8)
	JMP	next
success:
	// The parent's side of a clone made by a step (exitParent) ends
	// here, writing nothing: the new child, a fork, goes on with its own
	// copy of this memory.
	CMPB	DOP_EXITPARENT(R15), $0
	JEQ	store
	CMPQ	AX, $0
	JEQ	store
	XORQ	DI, DI
	MOVQ	$SYS_exit_group, AX
	SYSCALL
store:
	MOVQ	DOP_SLOTOUT(R15), CX
	CMPQ	CX, $0
	JLT	noslot
	ANDQ	$15, CX
	MOVQ	AX, (ST_SLOTS)(R14)(CX*8)
noslot:
	ADDQ	DOP_SKIPOK(R15), BX
next:
	INCQ	BX
	JMP	loop
finished:
	MOVQ	$127, DI
	MOVQ	$SYS_exit_group, AX
	SYSCALL
	RET
