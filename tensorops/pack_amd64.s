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

// saxpyAVX2 computes y += alpha·x over n elements.
//
// func saxpyAVX2(n int, alpha float32, x, y *float32)
TEXT ·saxpyAVX2(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	VBROADCASTSS alpha+8(FP), Y0
	MOVQ x+16(FP), SI
	MOVQ y+24(FP), DI
	MOVQ CX, BX
	SHRQ $5, BX
	JZ tail8
loop32:
	VMOVUPS (DI), Y1
	VMOVUPS 32(DI), Y2
	VMOVUPS 64(DI), Y3
	VMOVUPS 96(DI), Y4
	VFMADD231PS (SI), Y0, Y1
	VFMADD231PS 32(SI), Y0, Y2
	VFMADD231PS 64(SI), Y0, Y3
	VFMADD231PS 96(SI), Y0, Y4
	VMOVUPS Y1, (DI)
	VMOVUPS Y2, 32(DI)
	VMOVUPS Y3, 64(DI)
	VMOVUPS Y4, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	DECQ BX
	JNZ loop32
tail8:
	MOVQ CX, BX
	ANDQ $31, BX
	SHRQ $3, BX
	JZ tail1
loop8:
	VMOVUPS (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ BX
	JNZ loop8
tail1:
	ANDQ $7, CX
	JZ axpydone
loop1:
	VMOVSS (DI), X1
	VFMADD231SS (SI), X0, X1
	VMOVSS X1, (DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JNZ loop1
axpydone:
	VZEROUPPER
	RET
