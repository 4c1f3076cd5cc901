//go:build amd64 && !purego

#include "textflag.h"

// func hasSHANI() bool
TEXT ·hasSHANI(SB), NOSPLIT, $0-1
	// Leaf 1: ECX bit 9 = SSSE3, bit 19 = SSE4.1.
	MOVL $1, AX
	XORL CX, CX
	CPUID
	MOVL CX, R8
	// Leaf 7 subleaf 0: EBX bit 29 = SHA. Needs max leaf >= 7.
	XORL AX, AX
	XORL CX, CX
	CPUID
	CMPL AX, $7
	JLT  no
	MOVL $7, AX
	XORL CX, CX
	CPUID
	BTL  $29, BX
	JCC  no
	BTL  $9, R8
	JCC  no
	BTL  $19, R8
	JCC  no
	MOVB $1, ret+0(FP)
	RET
no:
	MOVB $0, ret+0(FP)
	RET

// Register use while hashing two nodes, A and B, at once:
//   X0        W+K of the next two rounds (implicit operand of SHA256RNDS2)
//   X1, X2    A state (ABEF, CDGH);   X9, X10  B state
//   X3..X6    A message words;        X11..X14 B message words
//   X7, X15   scratch;                X8       byte-swap mask
//   BX tables, SI/R8 A/B source, DI/R9 A/B destination, CX nodes left.

// Four rounds of both messages: W+K from K table offset KOFF plus message registers MA, MB.
#define ROUNDS4(KOFF, MA, MB) \
	MOVOU KOFF(BX), X0; \
	MOVO X0, X15; \
	PADDD MA, X0; \
	PADDD MB, X15; \
	SHA256RNDS2 X0, X1, X2; \
	PSHUFD $0x0E, X0, X7; \
	MOVO X15, X0; \
	SHA256RNDS2 X0, X9, X10; \
	PSHUFD $0x0E, X15, X15; \
	MOVO X7, X0; \
	SHA256RNDS2 X0, X2, X1; \
	MOVO X15, X0; \
	SHA256RNDS2 X0, X10, X9

// Four rounds of the constant padding block (same W+K for both).
#define PADROUNDS4(OFF) \
	MOVOU OFF(BX), X0; \
	SHA256RNDS2 X0, X1, X2; \
	SHA256RNDS2 X0, X9, X10; \
	PSHUFD $0x0E, X0, X0; \
	SHA256RNDS2 X0, X2, X1; \
	SHA256RNDS2 X0, X10, X9

// Next four schedule words into M0 (holding W[t-16..t-13]) from M1 = W[t-12..], M2 = W[t-8..],
// M3 = W[t-4..t-1].
#define SCHED(M0, M1, M2, M3) \
	SHA256MSG1 M1, M0; \
	MOVO M3, X7; \
	PALIGNR $4, M2, X7; \
	PADDD X7, M0; \
	SHA256MSG2 M3, M0

#define GROUP(KOFF, A0, A1, A2, A3, B0, B1, B2, B3) \
	SCHED(A0, A1, A2, A3); \
	SCHED(B0, B1, B2, B3); \
	ROUNDS4(KOFF, A0, B0)

// Write state S0 (ABEF), S1 (CDGH) as a big-endian digest with the sha254 mask to (DST).
#define STORE(S0, S1, T0, T1, T2, DST) \
	PSHUFD $0x1B, S0, T0; \
	PSHUFD $0xB1, S1, T1; \
	MOVO T1, T2; \
	PALIGNR $8, T0, T2; \
	PBLENDW $0xF0, T1, T0; \
	PSHUFB X8, T0; \
	PSHUFB X8, T2; \
	PAND X15, T2; \
	MOVOU T0, 0(DST); \
	MOVOU T2, 16(DST)

// func hashPairsSHANI(dst, src *Node, n int, t *shaniTables)
TEXT ·hashPairsSHANI(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ t+24(FP), BX
	MOVOU 544(BX), X8

loop:
	CMPQ CX, $0
	JLE  done
	// B is the next node, or A again when only one is left (same result, same place).
	LEAQ 64(SI), R8
	LEAQ 32(DI), R9
	CMPQ CX, $2
	JGE  load
	MOVQ SI, R8
	MOVQ DI, R9

load:
	MOVOU 0(SI), X3
	MOVOU 16(SI), X4
	MOVOU 32(SI), X5
	MOVOU 48(SI), X6
	MOVOU 0(R8), X11
	MOVOU 16(R8), X12
	MOVOU 32(R8), X13
	MOVOU 48(R8), X14
	PSHUFB X8, X3
	PSHUFB X8, X4
	PSHUFB X8, X5
	PSHUFB X8, X6
	PSHUFB X8, X11
	PSHUFB X8, X12
	PSHUFB X8, X13
	PSHUFB X8, X14
	MOVOU 512(BX), X1
	MOVOU 528(BX), X2
	MOVO  X1, X9
	MOVO  X2, X10

	// Block 1: the 64-byte node pair.
	ROUNDS4(0, X3, X11)
	ROUNDS4(16, X4, X12)
	ROUNDS4(32, X5, X13)
	ROUNDS4(48, X6, X14)
	GROUP(64, X3, X4, X5, X6, X11, X12, X13, X14)
	GROUP(80, X4, X5, X6, X3, X12, X13, X14, X11)
	GROUP(96, X5, X6, X3, X4, X13, X14, X11, X12)
	GROUP(112, X6, X3, X4, X5, X14, X11, X12, X13)
	GROUP(128, X3, X4, X5, X6, X11, X12, X13, X14)
	GROUP(144, X4, X5, X6, X3, X12, X13, X14, X11)
	GROUP(160, X5, X6, X3, X4, X13, X14, X11, X12)
	GROUP(176, X6, X3, X4, X5, X14, X11, X12, X13)
	GROUP(192, X3, X4, X5, X6, X11, X12, X13, X14)
	GROUP(208, X4, X5, X6, X3, X12, X13, X14, X11)
	GROUP(224, X5, X6, X3, X4, X13, X14, X11, X12)
	GROUP(240, X6, X3, X4, X5, X14, X11, X12, X13)

	// Feed forward the initial state, and keep the result for block 2's feed-forward.
	MOVOU 512(BX), X7
	PADDD X7, X1
	PADDD X7, X9
	MOVOU 528(BX), X7
	PADDD X7, X2
	PADDD X7, X10
	MOVO  X1, X3
	MOVO  X2, X4
	MOVO  X9, X11
	MOVO  X10, X12

	// Block 2: the constant padding block.
	PADROUNDS4(256)
	PADROUNDS4(272)
	PADROUNDS4(288)
	PADROUNDS4(304)
	PADROUNDS4(320)
	PADROUNDS4(336)
	PADROUNDS4(352)
	PADROUNDS4(368)
	PADROUNDS4(384)
	PADROUNDS4(400)
	PADROUNDS4(416)
	PADROUNDS4(432)
	PADROUNDS4(448)
	PADROUNDS4(464)
	PADROUNDS4(480)
	PADROUNDS4(496)
	PADDD X3, X1
	PADDD X4, X2
	PADDD X11, X9
	PADDD X12, X10

	MOVOU 560(BX), X15
	STORE(X1, X2, X3, X4, X5, DI)
	STORE(X9, X10, X11, X12, X13, R9)

	ADDQ $128, SI
	ADDQ $64, DI
	SUBQ $2, CX
	JMP  loop

done:
	RET
