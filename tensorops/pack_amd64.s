//go:build amd64 && !noasm

#include "textflag.h"

// packRowStrips scatters one row of B into n strips: the 16 floats at src+16·s go to
// dst+s·stride (stride in floats). A plain 64-byte copy per strip; Go would call memmove.
//
// func packRowStrips(src, dst *float32, n, stride int)
TEXT ·packRowStrips(SB), NOSPLIT, $0-32
	MOVQ src+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ stride+24(FP), R8
	SHLQ $2, R8
	TESTQ CX, CX
	JZ done
loop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ R8, DI
	DECQ CX
	JNZ loop
done:
	VZEROUPPER
	RET
