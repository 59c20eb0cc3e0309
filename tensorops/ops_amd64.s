//go:build amd64 && !noasm

#include "textflag.h"

// AVX2+FMA kernels for the transcendental ops and single-query attention (see ops_amd64.go for
// the Go side, which handles the tails that are not a multiple of 8 and the special rows).
// Every loop takes n > 0, a multiple of 8.
//
// exp is evaluated as 2^n·P(r) with n = round(x·log2e), r = x − n·ln2 (Cody-Waite split, so r
// is exact to float32) and P the degree-7 Taylor polynomial of e^r (remainder < 6e-9 on
// |r| <= ln2/2): about 1-2 float32 ulps in all, like PyTorch's own vectorised expf. Arguments
// must be clamped to [clampLo, clampHi] so 2^n is a normal float.

// EXP_Y0 replaces Y0 by exp(Y0); clobbers Y1 and Y2.
#define EXP_Y0 \
	VMULPS       log2e<>(SB), Y0, Y1; \
	VROUNDPS     $0, Y1, Y1; \
	VFNMADD231PS ln2hi<>(SB), Y1, Y0; \
	VFNMADD231PS ln2lo<>(SB), Y1, Y0; \
	VMOVUPS      c7<>(SB), Y2; \
	VFMADD213PS  c6<>(SB), Y0, Y2; \
	VFMADD213PS  c5<>(SB), Y0, Y2; \
	VFMADD213PS  c4<>(SB), Y0, Y2; \
	VFMADD213PS  c3<>(SB), Y0, Y2; \
	VFMADD213PS  half<>(SB), Y0, Y2; \
	VFMADD213PS  one<>(SB), Y0, Y2; \
	VFMADD213PS  one<>(SB), Y0, Y2; \
	VCVTPS2DQ    Y1, Y1; \
	VPSLLD       $23, Y1, Y1; \
	VPADDD       Y1, Y2, Y0

// func maxAVX2(x *float32, n int) float32
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ    x+0(FP), DI
	MOVQ    n+8(FP), CX
	VMOVUPS (DI), Y1
	ADDQ    $32, DI
	SUBQ    $8, CX
	JZ      maxdone

maxloop:
	VMAXPS (DI), Y1, Y1
	ADDQ   $32, DI
	SUBQ   $8, CX
	JNZ    maxloop

maxdone:
	VEXTRACTF128 $1, Y1, X2
	VMAXPS       X2, X1, X1
	VPERMILPS    $0x4e, X1, X2
	VMAXPS       X2, X1, X1
	VPERMILPS    $0xb1, X1, X2
	VMAXPS       X2, X1, X1
	VZEROUPPER
	MOVSS        X1, ret+16(FP)
	RET

// expShiftSumAVX2 sets x[i] = exp(x[i] - m) and returns the float32 sum of the results.
// Arguments below clampLo give exactly 0 (masked keys), NaN stays NaN.
//
// func expShiftSumAVX2(x *float32, n int, m float32) float32
TEXT ·expShiftSumAVX2(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS m+16(FP), Y5
	VXORPS       Y6, Y6, Y6
	VMOVUPS      clampLo<>(SB), Y7

exploop:
	VMOVUPS (DI), Y0
	VSUBPS  Y5, Y0, Y0
	VCMPPS  $1, Y7, Y0, Y4 // Y4 = Y0 < clampLo
	VMAXPS  Y0, Y7, Y0     // max(clampLo, Y0): a NaN in Y0 is kept
	EXP_Y0
	VANDNPS Y0, Y4, Y0
	VMOVUPS Y0, (DI)
	VADDPS  Y0, Y6, Y6
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     exploop

	VEXTRACTF128 $1, Y6, X1
	VADDPS       X1, X6, X6
	VPERMILPS    $0x4e, X6, X1
	VADDPS       X1, X6, X6
	VPERMILPS    $0xb1, X6, X1
	VADDPS       X1, X6, X6
	VZEROUPPER
	MOVSS        X6, ret+24(FP)
	RET

// func scaleAVX2(x *float32, n int, s float32)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS s+16(FP), Y1

scaleloop:
	VMULPS  (DI), Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     scaleloop
	VZEROUPPER
	RET

// geluAVX2 applies the exact GELU x·Φ(x) in place. With z = |x|/√2 and t = 1/(1+p·z),
// E = erfc(z)/2 = exp(−x²/2)·t·Q(t)/2 where Q is a degree-9 polynomial fitted (weighted least
// squares, relative error < 5e-9 for z in [0, 10]) for this kernel; Φ(x) = E for x < 0 and
// 1 − E otherwise. Using erfc on both sides keeps the negative tail relatively accurate, where
// 1 + erf(x/√2) would cancel.
//
// func geluAVX2(x *float32, n int)
TEXT ·geluAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX

geluloop:
	VMOVUPS      (DI), Y8
	VANDPS       absMask<>(SB), Y8, Y9
	VMULPS       rsqrt2<>(SB), Y9, Y9
	VMOVUPS      one<>(SB), Y10
	VFMADD231PS  erfP<>(SB), Y9, Y10
	VMOVUPS      one<>(SB), Y11
	VDIVPS       Y10, Y11, Y11 // t
	VMOVUPS      erfQ9<>(SB), Y12
	VFMADD213PS  erfQ8<>(SB), Y11, Y12
	VFMADD213PS  erfQ7<>(SB), Y11, Y12
	VFMADD213PS  erfQ6<>(SB), Y11, Y12
	VFMADD213PS  erfQ5<>(SB), Y11, Y12
	VFMADD213PS  erfQ4<>(SB), Y11, Y12
	VFMADD213PS  erfQ3<>(SB), Y11, Y12
	VFMADD213PS  erfQ2<>(SB), Y11, Y12
	VFMADD213PS  erfQ1<>(SB), Y11, Y12
	VFMADD213PS  erfQ0<>(SB), Y11, Y12
	VMULPS       Y11, Y12, Y12 // t·Q(t)
	VMULPS       Y8, Y8, Y0
	VMULPS       half<>(SB), Y0, Y0
	VXORPS       signMask<>(SB), Y0, Y0 // −x²/2
	VMAXPS       clampLo<>(SB), Y0, Y0
	EXP_Y0
	VMULPS       Y12, Y0, Y0
	VMULPS       half<>(SB), Y0, Y0 // E
	VMOVUPS      one<>(SB), Y1
	VSUBPS       Y0, Y1, Y1         // 1 − E
	VBLENDVPS    Y8, Y0, Y1, Y1     // x < 0 (sign bit set) ? E : 1 − E
	VMULPS       Y8, Y1, Y1
	VMOVUPS      Y1, (DI)
	ADDQ         $32, DI
	SUBQ         $8, CX
	JNZ          geluloop
	VZEROUPPER
	RET

// SILU_Y8_TO_Y1 computes Y1 = Y8 / (1 + exp(−Y8)); clobbers Y0, Y2.
#define SILU_Y8_TO_Y1 \
	VXORPS signMask<>(SB), Y8, Y0; \
	VMAXPS clampLo<>(SB), Y0, Y0; \
	VMINPS clampHi<>(SB), Y0, Y0; \
	EXP_Y0; \
	VADDPS one<>(SB), Y0, Y0; \
	VDIVPS Y0, Y8, Y1

// func siluAVX2(x *float32, n int)
TEXT ·siluAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX

siluloop:
	VMOVUPS (DI), Y8
	SILU_Y8_TO_Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     siluloop
	VZEROUPPER
	RET

// siluMulAVX2 sets gate[i] = silu(gate[i]) * up[i], silu rounded to float32 first.
//
// func siluMulAVX2(gate, up *float32, n int)
TEXT ·siluMulAVX2(SB), NOSPLIT, $0-24
	MOVQ gate+0(FP), DI
	MOVQ up+8(FP), SI
	MOVQ n+16(FP), CX

silumulloop:
	VMOVUPS (DI), Y8
	SILU_Y8_TO_Y1
	VMULPS  (SI), Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	SUBQ    $8, CX
	JNZ     silumulloop
	VZEROUPPER
	RET

// attnScoresAVX2 sets s[j] = scale · q·k[j*ldk : j*ldk+d] for j < n (one query row against n
// keys, the decoding case). d is a positive multiple of 8.
//
// func attnScoresAVX2(q, k *float32, ldk, n, d int, scale float32, s *float32)
TEXT ·attnScoresAVX2(SB), NOSPLIT, $0-56
	MOVQ     q+0(FP), SI
	MOVQ     k+8(FP), DX
	MOVQ     ldk+16(FP), R8
	SHLQ     $2, R8
	MOVQ     n+24(FP), BX
	MOVQ     d+32(FP), R9
	MOVSS    scale+40(FP), X15
	MOVQ     s+48(FP), DI

scorerow:
	VXORPS Y0, Y0, Y0
	VXORPS Y3, Y3, Y3
	XORQ   AX, AX
	MOVQ   R9, CX

scorecol:
	VMOVUPS     (SI)(AX*4), Y2
	VFMADD231PS (DX)(AX*4), Y2, Y0
	ADDQ        $8, AX
	SUBQ        $8, CX
	JZ          scorereduce
	VMOVUPS     (SI)(AX*4), Y2
	VFMADD231PS (DX)(AX*4), Y2, Y3
	ADDQ        $8, AX
	SUBQ        $8, CX
	JNZ         scorecol

scorereduce:
	VADDPS       Y3, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VADDPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VADDSS       X1, X0, X0
	VMULSS       X15, X0, X0
	VMOVSS       X0, (DI)
	ADDQ         $4, DI
	ADDQ         R8, DX
	DECQ         BX
	JNZ          scorerow
	VZEROUPPER
	RET

// attnAccumAVX2 sets out[c] = Σ_j p[j]·v[j*ldv+c] for c < d: the probability-weighted sum of n
// value rows. d is a positive multiple of 8; columns go 32 at a time (four independent FMA
// chains) and then 8 at a time.
//
// func attnAccumAVX2(out, p, v *float32, ldv, n, d int)
TEXT ·attnAccumAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ v+16(FP), DX
	MOVQ ldv+24(FP), R8
	SHLQ $2, R8
	MOVQ n+32(FP), R10
	MOVQ d+40(FP), R9

accblock32:
	CMPQ   R9, $32
	JLT    accblock8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   DX, R11
	XORQ   AX, AX

acc32row:
	VBROADCASTSS (SI)(AX*4), Y15
	VFMADD231PS  (R11), Y15, Y0
	VFMADD231PS  32(R11), Y15, Y1
	VFMADD231PS  64(R11), Y15, Y2
	VFMADD231PS  96(R11), Y15, Y3
	ADDQ         R8, R11
	INCQ         AX
	CMPQ         AX, R10
	JLT          acc32row
	VMOVUPS      Y0, (DI)
	VMOVUPS      Y1, 32(DI)
	VMOVUPS      Y2, 64(DI)
	VMOVUPS      Y3, 96(DI)
	ADDQ         $128, DI
	ADDQ         $128, DX
	SUBQ         $32, R9
	JMP          accblock32

accblock8:
	CMPQ   R9, $0
	JEQ    accdone
	VXORPS Y0, Y0, Y0
	MOVQ   DX, R11
	XORQ   AX, AX

acc8row:
	VBROADCASTSS (SI)(AX*4), Y15
	VFMADD231PS  (R11), Y15, Y0
	ADDQ         R8, R11
	INCQ         AX
	CMPQ         AX, R10
	JLT          acc8row
	VMOVUPS      Y0, (DI)
	ADDQ         $32, DI
	ADDQ         $32, DX
	SUBQ         $8, R9
	JMP          accblock8

accdone:
	VZEROUPPER
	RET

// geluTanhAVX2 applies the tanh-approximate GELU in place, written as
// 0.5·x·(1+tanh(u)) = x / (1 + exp(−2u)) with u = √(2/π)·(x + 0.044715·x³): the same function
// without tanh's cancellation near 0.
//
// func geluTanhAVX2(x *float32, n int)
TEXT ·geluTanhAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX

gelutanhloop:
	VMOVUPS (DI), Y8
	VMULPS  Y8, Y8, Y0
	VMULPS  gtCubic<>(SB), Y0, Y0
	VADDPS  one<>(SB), Y0, Y0
	VMULPS  Y8, Y0, Y0
	VMULPS  gtScale<>(SB), Y0, Y0 // −2u
	VMAXPS  clampLo<>(SB), Y0, Y0
	VMINPS  clampHi<>(SB), Y0, Y0
	EXP_Y0
	VADDPS  one<>(SB), Y0, Y0
	VDIVPS  Y0, Y8, Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     gelutanhloop
	VZEROUPPER
	RET

// 0.044715 and −2·√(2/π) of the tanh GELU
DATA gtCubic<>+0(SB)/4, $0x3d372713
DATA gtCubic<>+4(SB)/4, $0x3d372713
DATA gtCubic<>+8(SB)/4, $0x3d372713
DATA gtCubic<>+12(SB)/4, $0x3d372713
DATA gtCubic<>+16(SB)/4, $0x3d372713
DATA gtCubic<>+20(SB)/4, $0x3d372713
DATA gtCubic<>+24(SB)/4, $0x3d372713
DATA gtCubic<>+28(SB)/4, $0x3d372713
GLOBL gtCubic<>(SB), RODATA|NOPTR, $32

DATA gtScale<>+0(SB)/4, $0xbfcc422a
DATA gtScale<>+4(SB)/4, $0xbfcc422a
DATA gtScale<>+8(SB)/4, $0xbfcc422a
DATA gtScale<>+12(SB)/4, $0xbfcc422a
DATA gtScale<>+16(SB)/4, $0xbfcc422a
DATA gtScale<>+20(SB)/4, $0xbfcc422a
DATA gtScale<>+24(SB)/4, $0xbfcc422a
DATA gtScale<>+28(SB)/4, $0xbfcc422a
GLOBL gtScale<>(SB), RODATA|NOPTR, $32

// log2(e)
DATA log2e<>+0(SB)/4, $0x3fb8aa3b
DATA log2e<>+4(SB)/4, $0x3fb8aa3b
DATA log2e<>+8(SB)/4, $0x3fb8aa3b
DATA log2e<>+12(SB)/4, $0x3fb8aa3b
DATA log2e<>+16(SB)/4, $0x3fb8aa3b
DATA log2e<>+20(SB)/4, $0x3fb8aa3b
DATA log2e<>+24(SB)/4, $0x3fb8aa3b
DATA log2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL log2e<>(SB), RODATA|NOPTR, $32

// ln2 split for Cody-Waite reduction: high part (exact product with n)
DATA ln2hi<>+0(SB)/4, $0x3f318000
DATA ln2hi<>+4(SB)/4, $0x3f318000
DATA ln2hi<>+8(SB)/4, $0x3f318000
DATA ln2hi<>+12(SB)/4, $0x3f318000
DATA ln2hi<>+16(SB)/4, $0x3f318000
DATA ln2hi<>+20(SB)/4, $0x3f318000
DATA ln2hi<>+24(SB)/4, $0x3f318000
DATA ln2hi<>+28(SB)/4, $0x3f318000
GLOBL ln2hi<>(SB), RODATA|NOPTR, $32

// ln2 - ln2hi
DATA ln2lo<>+0(SB)/4, $0xb95e8083
DATA ln2lo<>+4(SB)/4, $0xb95e8083
DATA ln2lo<>+8(SB)/4, $0xb95e8083
DATA ln2lo<>+12(SB)/4, $0xb95e8083
DATA ln2lo<>+16(SB)/4, $0xb95e8083
DATA ln2lo<>+20(SB)/4, $0xb95e8083
DATA ln2lo<>+24(SB)/4, $0xb95e8083
DATA ln2lo<>+28(SB)/4, $0xb95e8083
GLOBL ln2lo<>(SB), RODATA|NOPTR, $32

// -86.5: below it exp is flushed to 0 (2^n must stay a normal float)
DATA clampLo<>+0(SB)/4, $0xc2ad0000
DATA clampLo<>+4(SB)/4, $0xc2ad0000
DATA clampLo<>+8(SB)/4, $0xc2ad0000
DATA clampLo<>+12(SB)/4, $0xc2ad0000
DATA clampLo<>+16(SB)/4, $0xc2ad0000
DATA clampLo<>+20(SB)/4, $0xc2ad0000
DATA clampLo<>+24(SB)/4, $0xc2ad0000
DATA clampLo<>+28(SB)/4, $0xc2ad0000
GLOBL clampLo<>(SB), RODATA|NOPTR, $32

// 88.0: exp(88) = 1.65e38 still fits
DATA clampHi<>+0(SB)/4, $0x42b00000
DATA clampHi<>+4(SB)/4, $0x42b00000
DATA clampHi<>+8(SB)/4, $0x42b00000
DATA clampHi<>+12(SB)/4, $0x42b00000
DATA clampHi<>+16(SB)/4, $0x42b00000
DATA clampHi<>+20(SB)/4, $0x42b00000
DATA clampHi<>+24(SB)/4, $0x42b00000
DATA clampHi<>+28(SB)/4, $0x42b00000
GLOBL clampHi<>(SB), RODATA|NOPTR, $32

// 1/7!
DATA c7<>+0(SB)/4, $0x39500d01
DATA c7<>+4(SB)/4, $0x39500d01
DATA c7<>+8(SB)/4, $0x39500d01
DATA c7<>+12(SB)/4, $0x39500d01
DATA c7<>+16(SB)/4, $0x39500d01
DATA c7<>+20(SB)/4, $0x39500d01
DATA c7<>+24(SB)/4, $0x39500d01
DATA c7<>+28(SB)/4, $0x39500d01
GLOBL c7<>(SB), RODATA|NOPTR, $32

// 1/6!
DATA c6<>+0(SB)/4, $0x3ab60b61
DATA c6<>+4(SB)/4, $0x3ab60b61
DATA c6<>+8(SB)/4, $0x3ab60b61
DATA c6<>+12(SB)/4, $0x3ab60b61
DATA c6<>+16(SB)/4, $0x3ab60b61
DATA c6<>+20(SB)/4, $0x3ab60b61
DATA c6<>+24(SB)/4, $0x3ab60b61
DATA c6<>+28(SB)/4, $0x3ab60b61
GLOBL c6<>(SB), RODATA|NOPTR, $32

// 1/5!
DATA c5<>+0(SB)/4, $0x3c088889
DATA c5<>+4(SB)/4, $0x3c088889
DATA c5<>+8(SB)/4, $0x3c088889
DATA c5<>+12(SB)/4, $0x3c088889
DATA c5<>+16(SB)/4, $0x3c088889
DATA c5<>+20(SB)/4, $0x3c088889
DATA c5<>+24(SB)/4, $0x3c088889
DATA c5<>+28(SB)/4, $0x3c088889
GLOBL c5<>(SB), RODATA|NOPTR, $32

// 1/4!
DATA c4<>+0(SB)/4, $0x3d2aaaab
DATA c4<>+4(SB)/4, $0x3d2aaaab
DATA c4<>+8(SB)/4, $0x3d2aaaab
DATA c4<>+12(SB)/4, $0x3d2aaaab
DATA c4<>+16(SB)/4, $0x3d2aaaab
DATA c4<>+20(SB)/4, $0x3d2aaaab
DATA c4<>+24(SB)/4, $0x3d2aaaab
DATA c4<>+28(SB)/4, $0x3d2aaaab
GLOBL c4<>(SB), RODATA|NOPTR, $32

// 1/3!
DATA c3<>+0(SB)/4, $0x3e2aaaab
DATA c3<>+4(SB)/4, $0x3e2aaaab
DATA c3<>+8(SB)/4, $0x3e2aaaab
DATA c3<>+12(SB)/4, $0x3e2aaaab
DATA c3<>+16(SB)/4, $0x3e2aaaab
DATA c3<>+20(SB)/4, $0x3e2aaaab
DATA c3<>+24(SB)/4, $0x3e2aaaab
DATA c3<>+28(SB)/4, $0x3e2aaaab
GLOBL c3<>(SB), RODATA|NOPTR, $32

// 0.5
DATA half<>+0(SB)/4, $0x3f000000
DATA half<>+4(SB)/4, $0x3f000000
DATA half<>+8(SB)/4, $0x3f000000
DATA half<>+12(SB)/4, $0x3f000000
DATA half<>+16(SB)/4, $0x3f000000
DATA half<>+20(SB)/4, $0x3f000000
DATA half<>+24(SB)/4, $0x3f000000
DATA half<>+28(SB)/4, $0x3f000000
GLOBL half<>(SB), RODATA|NOPTR, $32

// 1.0
DATA one<>+0(SB)/4, $0x3f800000
DATA one<>+4(SB)/4, $0x3f800000
DATA one<>+8(SB)/4, $0x3f800000
DATA one<>+12(SB)/4, $0x3f800000
DATA one<>+16(SB)/4, $0x3f800000
DATA one<>+20(SB)/4, $0x3f800000
DATA one<>+24(SB)/4, $0x3f800000
DATA one<>+28(SB)/4, $0x3f800000
GLOBL one<>(SB), RODATA|NOPTR, $32

// 1/sqrt(2)
DATA rsqrt2<>+0(SB)/4, $0x3f3504f3
DATA rsqrt2<>+4(SB)/4, $0x3f3504f3
DATA rsqrt2<>+8(SB)/4, $0x3f3504f3
DATA rsqrt2<>+12(SB)/4, $0x3f3504f3
DATA rsqrt2<>+16(SB)/4, $0x3f3504f3
DATA rsqrt2<>+20(SB)/4, $0x3f3504f3
DATA rsqrt2<>+24(SB)/4, $0x3f3504f3
DATA rsqrt2<>+28(SB)/4, $0x3f3504f3
GLOBL rsqrt2<>(SB), RODATA|NOPTR, $32

// p of t = 1/(1+p*z)
DATA erfP<>+0(SB)/4, $0x3ea7ba05
DATA erfP<>+4(SB)/4, $0x3ea7ba05
DATA erfP<>+8(SB)/4, $0x3ea7ba05
DATA erfP<>+12(SB)/4, $0x3ea7ba05
DATA erfP<>+16(SB)/4, $0x3ea7ba05
DATA erfP<>+20(SB)/4, $0x3ea7ba05
DATA erfP<>+24(SB)/4, $0x3ea7ba05
DATA erfP<>+28(SB)/4, $0x3ea7ba05
GLOBL erfP<>(SB), RODATA|NOPTR, $32

// clears the sign bit
DATA absMask<>+0(SB)/4, $0x7fffffff
DATA absMask<>+4(SB)/4, $0x7fffffff
DATA absMask<>+8(SB)/4, $0x7fffffff
DATA absMask<>+12(SB)/4, $0x7fffffff
DATA absMask<>+16(SB)/4, $0x7fffffff
DATA absMask<>+20(SB)/4, $0x7fffffff
DATA absMask<>+24(SB)/4, $0x7fffffff
DATA absMask<>+28(SB)/4, $0x7fffffff
GLOBL absMask<>(SB), RODATA|NOPTR, $32

// the sign bit
DATA signMask<>+0(SB)/4, $0x80000000
DATA signMask<>+4(SB)/4, $0x80000000
DATA signMask<>+8(SB)/4, $0x80000000
DATA signMask<>+12(SB)/4, $0x80000000
DATA signMask<>+16(SB)/4, $0x80000000
DATA signMask<>+20(SB)/4, $0x80000000
DATA signMask<>+24(SB)/4, $0x80000000
DATA signMask<>+28(SB)/4, $0x80000000
GLOBL signMask<>(SB), RODATA|NOPTR, $32

// erfc(z)·exp(z²)/t = Σ erfQi·t^i
DATA erfQ0<>+0(SB)/4, $0x3e3d3607
DATA erfQ0<>+4(SB)/4, $0x3e3d3607
DATA erfQ0<>+8(SB)/4, $0x3e3d3607
DATA erfQ0<>+12(SB)/4, $0x3e3d3607
DATA erfQ0<>+16(SB)/4, $0x3e3d3607
DATA erfQ0<>+20(SB)/4, $0x3e3d3607
DATA erfQ0<>+24(SB)/4, $0x3e3d3607
DATA erfQ0<>+28(SB)/4, $0x3e3d3607
GLOBL erfQ0<>(SB), RODATA|NOPTR, $32

DATA erfQ1<>+0(SB)/4, $0x3e3e4e3e
DATA erfQ1<>+4(SB)/4, $0x3e3e4e3e
DATA erfQ1<>+8(SB)/4, $0x3e3e4e3e
DATA erfQ1<>+12(SB)/4, $0x3e3e4e3e
DATA erfQ1<>+16(SB)/4, $0x3e3e4e3e
DATA erfQ1<>+20(SB)/4, $0x3e3e4e3e
DATA erfQ1<>+24(SB)/4, $0x3e3e4e3e
DATA erfQ1<>+28(SB)/4, $0x3e3e4e3e
GLOBL erfQ1<>(SB), RODATA|NOPTR, $32

DATA erfQ2<>+0(SB)/4, $0x3e292d41
DATA erfQ2<>+4(SB)/4, $0x3e292d41
DATA erfQ2<>+8(SB)/4, $0x3e292d41
DATA erfQ2<>+12(SB)/4, $0x3e292d41
DATA erfQ2<>+16(SB)/4, $0x3e292d41
DATA erfQ2<>+20(SB)/4, $0x3e292d41
DATA erfQ2<>+24(SB)/4, $0x3e292d41
DATA erfQ2<>+28(SB)/4, $0x3e292d41
GLOBL erfQ2<>(SB), RODATA|NOPTR, $32

DATA erfQ3<>+0(SB)/4, $0x3e54ef46
DATA erfQ3<>+4(SB)/4, $0x3e54ef46
DATA erfQ3<>+8(SB)/4, $0x3e54ef46
DATA erfQ3<>+12(SB)/4, $0x3e54ef46
DATA erfQ3<>+16(SB)/4, $0x3e54ef46
DATA erfQ3<>+20(SB)/4, $0x3e54ef46
DATA erfQ3<>+24(SB)/4, $0x3e54ef46
DATA erfQ3<>+28(SB)/4, $0x3e54ef46
GLOBL erfQ3<>(SB), RODATA|NOPTR, $32

DATA erfQ4<>+0(SB)/4, $0xbd663818
DATA erfQ4<>+4(SB)/4, $0xbd663818
DATA erfQ4<>+8(SB)/4, $0xbd663818
DATA erfQ4<>+12(SB)/4, $0xbd663818
DATA erfQ4<>+16(SB)/4, $0xbd663818
DATA erfQ4<>+20(SB)/4, $0xbd663818
DATA erfQ4<>+24(SB)/4, $0xbd663818
DATA erfQ4<>+28(SB)/4, $0xbd663818
GLOBL erfQ4<>(SB), RODATA|NOPTR, $32

DATA erfQ5<>+0(SB)/4, $0x3f032a70
DATA erfQ5<>+4(SB)/4, $0x3f032a70
DATA erfQ5<>+8(SB)/4, $0x3f032a70
DATA erfQ5<>+12(SB)/4, $0x3f032a70
DATA erfQ5<>+16(SB)/4, $0x3f032a70
DATA erfQ5<>+20(SB)/4, $0x3f032a70
DATA erfQ5<>+24(SB)/4, $0x3f032a70
DATA erfQ5<>+28(SB)/4, $0x3f032a70
GLOBL erfQ5<>(SB), RODATA|NOPTR, $32

DATA erfQ6<>+0(SB)/4, $0xbf12cf39
DATA erfQ6<>+4(SB)/4, $0xbf12cf39
DATA erfQ6<>+8(SB)/4, $0xbf12cf39
DATA erfQ6<>+12(SB)/4, $0xbf12cf39
DATA erfQ6<>+16(SB)/4, $0xbf12cf39
DATA erfQ6<>+20(SB)/4, $0xbf12cf39
DATA erfQ6<>+24(SB)/4, $0xbf12cf39
DATA erfQ6<>+28(SB)/4, $0xbf12cf39
GLOBL erfQ6<>(SB), RODATA|NOPTR, $32

DATA erfQ7<>+0(SB)/4, $0x3f2338e3
DATA erfQ7<>+4(SB)/4, $0x3f2338e3
DATA erfQ7<>+8(SB)/4, $0x3f2338e3
DATA erfQ7<>+12(SB)/4, $0x3f2338e3
DATA erfQ7<>+16(SB)/4, $0x3f2338e3
DATA erfQ7<>+20(SB)/4, $0x3f2338e3
DATA erfQ7<>+24(SB)/4, $0x3f2338e3
DATA erfQ7<>+28(SB)/4, $0x3f2338e3
GLOBL erfQ7<>(SB), RODATA|NOPTR, $32

DATA erfQ8<>+0(SB)/4, $0xbea4a30d
DATA erfQ8<>+4(SB)/4, $0xbea4a30d
DATA erfQ8<>+8(SB)/4, $0xbea4a30d
DATA erfQ8<>+12(SB)/4, $0xbea4a30d
DATA erfQ8<>+16(SB)/4, $0xbea4a30d
DATA erfQ8<>+20(SB)/4, $0xbea4a30d
DATA erfQ8<>+24(SB)/4, $0xbea4a30d
DATA erfQ8<>+28(SB)/4, $0xbea4a30d
GLOBL erfQ8<>(SB), RODATA|NOPTR, $32

DATA erfQ9<>+0(SB)/4, $0x3d6b8bb6
DATA erfQ9<>+4(SB)/4, $0x3d6b8bb6
DATA erfQ9<>+8(SB)/4, $0x3d6b8bb6
DATA erfQ9<>+12(SB)/4, $0x3d6b8bb6
DATA erfQ9<>+16(SB)/4, $0x3d6b8bb6
DATA erfQ9<>+20(SB)/4, $0x3d6b8bb6
DATA erfQ9<>+24(SB)/4, $0x3d6b8bb6
DATA erfQ9<>+28(SB)/4, $0x3d6b8bb6
GLOBL erfQ9<>(SB), RODATA|NOPTR, $32

// packPanel12AVX2 transposes 12 rows of src (row stride lds floats) into the 12-row GEMM A
// panel layout, 8 columns per iteration: column j of the 12 rows goes to dst+48·j. Rows 0-7
// take the classic 8×8 unpack/shuffle/permute transpose, rows 8-11 a 4×8 one whose halves are
// stored as 16-byte pieces. n8 > 0 is the number of 8-column groups.
//
// func packPanel12AVX2(src *float32, lds int, dst *float32, n8 int)
TEXT ·packPanel12AVX2(SB), NOSPLIT, $0-32
	MOVQ src+0(FP), SI
	MOVQ lds+8(FP), R8
	MOVQ dst+16(FP), DI
	MOVQ n8+24(FP), CX
	SHLQ $2, R8                // row stride in bytes
	LEAQ (R8)(R8*2), R9        // 3 rows
	LEAQ (SI)(R8*4), R10       // row 4
	LEAQ (R10)(R8*4), R11      // row 8

p12loop:
	// rows 0-3 -> U0..U3 (Y8..Y11): column c | column c+4, rows 0-3 each
	VMOVUPS   (SI), Y0
	VMOVUPS   (SI)(R8*1), Y1
	VMOVUPS   (SI)(R8*2), Y2
	VMOVUPS   (SI)(R9*1), Y3
	VUNPCKLPS Y1, Y0, Y4
	VUNPCKHPS Y1, Y0, Y5
	VUNPCKLPS Y3, Y2, Y6
	VUNPCKHPS Y3, Y2, Y7
	VSHUFPS   $0x44, Y6, Y4, Y8
	VSHUFPS   $0xEE, Y6, Y4, Y9
	VSHUFPS   $0x44, Y7, Y5, Y10
	VSHUFPS   $0xEE, Y7, Y5, Y11

	// rows 4-7 -> Y12..Y15
	VMOVUPS   (R10), Y0
	VMOVUPS   (R10)(R8*1), Y1
	VMOVUPS   (R10)(R8*2), Y2
	VMOVUPS   (R10)(R9*1), Y3
	VUNPCKLPS Y1, Y0, Y4
	VUNPCKHPS Y1, Y0, Y5
	VUNPCKLPS Y3, Y2, Y6
	VUNPCKHPS Y3, Y2, Y7
	VSHUFPS   $0x44, Y6, Y4, Y12
	VSHUFPS   $0xEE, Y6, Y4, Y13
	VSHUFPS   $0x44, Y7, Y5, Y14
	VSHUFPS   $0xEE, Y7, Y5, Y15

	// columns 0-7, rows 0-7
	VPERM2F128 $0x20, Y12, Y8, Y0
	VPERM2F128 $0x31, Y12, Y8, Y1
	VMOVUPS    Y0, 0(DI)
	VMOVUPS    Y1, 192(DI)
	VPERM2F128 $0x20, Y13, Y9, Y0
	VPERM2F128 $0x31, Y13, Y9, Y1
	VMOVUPS    Y0, 48(DI)
	VMOVUPS    Y1, 240(DI)
	VPERM2F128 $0x20, Y14, Y10, Y0
	VPERM2F128 $0x31, Y14, Y10, Y1
	VMOVUPS    Y0, 96(DI)
	VMOVUPS    Y1, 288(DI)
	VPERM2F128 $0x20, Y15, Y11, Y0
	VPERM2F128 $0x31, Y15, Y11, Y1
	VMOVUPS    Y0, 144(DI)
	VMOVUPS    Y1, 336(DI)

	// rows 8-11: each result holds column c (low half) and c+4 (high half)
	VMOVUPS   (R11), Y0
	VMOVUPS   (R11)(R8*1), Y1
	VMOVUPS   (R11)(R8*2), Y2
	VMOVUPS   (R11)(R9*1), Y3
	VUNPCKLPS Y1, Y0, Y4
	VUNPCKHPS Y1, Y0, Y5
	VUNPCKLPS Y3, Y2, Y6
	VUNPCKHPS Y3, Y2, Y7
	VSHUFPS   $0x44, Y6, Y4, Y8
	VSHUFPS   $0xEE, Y6, Y4, Y9
	VSHUFPS   $0x44, Y7, Y5, Y10
	VSHUFPS   $0xEE, Y7, Y5, Y11
	VMOVUPS      X8, 32(DI)
	VEXTRACTF128 $1, Y8, 224(DI)
	VMOVUPS      X9, 80(DI)
	VEXTRACTF128 $1, Y9, 272(DI)
	VMOVUPS      X10, 128(DI)
	VEXTRACTF128 $1, Y10, 320(DI)
	VMOVUPS      X11, 176(DI)
	VEXTRACTF128 $1, Y11, 368(DI)

	ADDQ $32, SI
	ADDQ $32, R10
	ADDQ $32, R11
	ADDQ $384, DI
	DECQ CX
	JNZ  p12loop
	VZEROUPPER
	RET

// LayerNorm moments and output in float64, as layerNormRow computes them (the same operations
// in the same order per element, four lanes at a time). n > 0 is a multiple of 8.
//
// func sumF64AVX2(x *float32, n int) float64
TEXT ·sumF64AVX2(SB), NOSPLIT, $0-24
	MOVQ   x+0(FP), SI
	MOVQ   n+8(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1

sumf64loop:
	VCVTPS2PD (SI), Y2
	VCVTPS2PD 16(SI), Y3
	VADDPD    Y2, Y0, Y0
	VADDPD    Y3, Y1, Y1
	ADDQ      $32, SI
	SUBQ      $8, CX
	JNZ       sumf64loop
	VADDPD       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VHADDPD      X0, X0, X0
	VZEROUPPER
	MOVSD        X0, ret+16(FP)
	RET

// func sqDevF64AVX2(x *float32, n int, c float64) float64
TEXT ·sqDevF64AVX2(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSD c+16(FP), Y4
	VXORPD       Y0, Y0, Y0
	VXORPD       Y1, Y1, Y1

sqdevloop:
	VCVTPS2PD (SI), Y2
	VCVTPS2PD 16(SI), Y3
	VSUBPD    Y4, Y2, Y2
	VSUBPD    Y4, Y3, Y3
	VMULPD    Y2, Y2, Y2
	VMULPD    Y3, Y3, Y3
	VADDPD    Y2, Y0, Y0
	VADDPD    Y3, Y1, Y1
	ADDQ      $32, SI
	SUBQ      $8, CX
	JNZ       sqdevloop
	VADDPD       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VHADDPD      X0, X0, X0
	VZEROUPPER
	MOVSD        X0, ret+24(FP)
	RET

// dst = float32(((x − mean)·rstd)·gamma + beta), evaluated in float64.
//
// func layerNormOutAVX2(dst, x, gamma, beta *float32, n int, mean, rstd float64)
TEXT ·layerNormOutAVX2(SB), NOSPLIT, $0-56
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         gamma+16(FP), R8
	MOVQ         beta+24(FP), R9
	MOVQ         n+32(FP), CX
	VBROADCASTSD mean+40(FP), Y14
	VBROADCASTSD rstd+48(FP), Y15

lnoutloop:
	VCVTPS2PD  (SI), Y0
	VCVTPS2PD  16(SI), Y4
	VSUBPD     Y14, Y0, Y0
	VSUBPD     Y14, Y4, Y4
	VMULPD     Y15, Y0, Y0
	VMULPD     Y15, Y4, Y4
	VCVTPS2PD  (R8), Y1
	VCVTPS2PD  16(R8), Y5
	VMULPD     Y1, Y0, Y0
	VMULPD     Y5, Y4, Y4
	VCVTPS2PD  (R9), Y2
	VCVTPS2PD  16(R9), Y6
	VADDPD     Y2, Y0, Y0
	VADDPD     Y6, Y4, Y4
	VCVTPD2PSY Y0, X0
	VCVTPD2PSY Y4, X4
	VMOVUPS    X0, (DI)
	VMOVUPS    X4, 16(DI)
	ADDQ       $32, SI
	ADDQ       $32, R8
	ADDQ       $32, R9
	ADDQ       $32, DI
	SUBQ       $8, CX
	JNZ        lnoutloop
	VZEROUPPER
	RET

// EXP_Z0 replaces Z0 by exp(Z0) as EXP_Y0 does, sixteen lanes at a time, with the polynomial
// evaluated by Estrin's scheme (depth 3 instead of Horner's 7, one more multiply). Needs
// Z29 = 0.5 and Z30 = 1; clobbers Z1-Z7.
#define EXP_Z0 \
	VMULPS.BCST       log2e<>(SB), Z0, Z1; \
	VRNDSCALEPS       $0, Z1, Z1; \
	VFNMADD231PS.BCST ln2hi<>(SB), Z1, Z0; \
	VFNMADD231PS.BCST ln2lo<>(SB), Z1, Z0; \
	VMULPS            Z0, Z0, Z2; \
	VADDPS            Z30, Z0, Z3; \
	VBROADCASTSS      c3<>(SB), Z4; \
	VFMADD213PS       Z29, Z0, Z4; \
	VBROADCASTSS      c5<>(SB), Z5; \
	VFMADD213PS.BCST  c4<>(SB), Z0, Z5; \
	VBROADCASTSS      c7<>(SB), Z6; \
	VFMADD213PS.BCST  c6<>(SB), Z0, Z6; \
	VMULPS            Z2, Z2, Z7; \
	VFMADD231PS       Z4, Z2, Z3; \
	VFMADD231PS       Z6, Z2, Z5; \
	VFMADD231PS       Z5, Z7, Z3; \
	VCVTPS2DQ         Z1, Z1; \
	VPSLLD            $23, Z1, Z1; \
	VPADDD            Z1, Z3, Z0

// geluAVX512 is geluAVX2 on sixteen lanes, with Q(t) and the exponential's polynomial by
// Estrin's scheme: about 1.5x geluAVX2's speed on this project's VM. The results differ from
// geluAVX2's by float32 rounding only. (Two vectors interleaved per iteration measured no
// faster, so the loop is not bound by the latency of one vector's chain.)
//
// func geluAVX512(x *float32, n int)
TEXT ·geluAVX512(SB), NOSPLIT, $0-16
	MOVQ         x+0(FP), DI
	MOVQ         n+8(FP), CX
	VPXORD       Z31, Z31, Z31
	VBROADCASTSS one<>(SB), Z30
	VBROADCASTSS half<>(SB), Z29

gelu512loop:
	VMOVUPS          (DI), Z8
	VPANDD.BCST      absMask<>(SB), Z8, Z9
	VMULPS.BCST      rsqrt2<>(SB), Z9, Z9
	VMOVAPS          Z30, Z10
	VFMADD231PS.BCST erfP<>(SB), Z9, Z10
	VDIVPS           Z10, Z30, Z11 // t (a refined VRCP14PS is faster but gives NaN at x = +Inf)
	VMULPS           Z11, Z11, Z12 // t²
	VMULPS           Z12, Z12, Z13 // t⁴
	VBROADCASTSS     erfQ1<>(SB), Z14
	VFMADD213PS.BCST erfQ0<>(SB), Z11, Z14
	VBROADCASTSS     erfQ3<>(SB), Z15
	VFMADD213PS.BCST erfQ2<>(SB), Z11, Z15
	VBROADCASTSS     erfQ5<>(SB), Z16
	VFMADD213PS.BCST erfQ4<>(SB), Z11, Z16
	VBROADCASTSS     erfQ7<>(SB), Z17
	VFMADD213PS.BCST erfQ6<>(SB), Z11, Z17
	VBROADCASTSS     erfQ9<>(SB), Z18
	VFMADD213PS.BCST erfQ8<>(SB), Z11, Z18
	VFMADD231PS      Z15, Z12, Z14 // q0..q3
	VFMADD231PS      Z17, Z12, Z16 // q4..q7
	VMULPS           Z13, Z13, Z19 // t⁸
	VFMADD231PS      Z16, Z13, Z14 // q0..q7
	VFMADD231PS      Z18, Z19, Z14 // Q(t)
	VMULPS           Z11, Z14, Z12 // t·Q(t)
	VMULPS           Z8, Z8, Z0
	VMULPS           Z29, Z0, Z0
	VPXORD.BCST      signMask<>(SB), Z0, Z0 // −x²/2
	VMAXPS.BCST      clampLo<>(SB), Z0, Z0
	EXP_Z0
	VMULPS           Z12, Z0, Z0
	VMULPS           Z29, Z0, Z0 // E
	VSUBPS           Z0, Z30, Z1 // 1 − E
	VCMPPS           $1, Z31, Z8, K1
	VMOVAPS          Z0, K1, Z1 // x < 0 ? E : 1 − E
	VMULPS           Z8, Z1, Z1
	VMOVUPS          Z1, (DI)
	ADDQ             $64, DI
	SUBQ             $16, CX
	JNZ              gelu512loop
	VZEROUPPER
	RET

// addAVX2 sets dst[i] = a[i] + b[i] for n > 0 elements, n a multiple of 8; dst may alias a or b.
//
// func addAVX2(dst, a, b *float32, n int)
TEXT ·addAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	CMPQ CX, $32
	JB   add8

add32:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VADDPS  (DX), Y0, Y0
	VADDPS  32(DX), Y1, Y1
	VADDPS  64(DX), Y2, Y2
	VADDPS  96(DX), Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, SI
	ADDQ    $128, DX
	ADDQ    $128, DI
	SUBQ    $32, CX
	CMPQ    CX, $32
	JAE     add32
	TESTQ   CX, CX
	JZ      adddone

add8:
	VMOVUPS (SI), Y0
	VADDPS  (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     add8

adddone:
	VZEROUPPER
	RET

// expShiftSumAVX512 is expShiftSumAVX2 on sixteen lanes with EXP_Z0 (Estrin). The exponential
// was a fifth of bert-base attention at 128 tokens.
//
// func expShiftSumAVX512(x *float32, n int, m float32) float32
TEXT ·expShiftSumAVX512(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS m+16(FP), Z9
	VPXORD       Z10, Z10, Z10
	VBROADCASTSS clampLo<>(SB), Z11
	VBROADCASTSS one<>(SB), Z30
	VBROADCASTSS half<>(SB), Z29

exp512loop:
	VMOVUPS (DI), Z0
	VSUBPS  Z9, Z0, Z0
	VCMPPS  $1, Z11, Z0, K1 // K1 = Z0 < clampLo
	VMAXPS  Z0, Z11, Z0     // max(clampLo, Z0): a NaN in Z0 is kept
	EXP_Z0
	VPXORD  Z0, Z0, K1, Z0  // exactly 0 below clampLo
	VMOVUPS Z0, (DI)
	VADDPS  Z0, Z10, Z10
	ADDQ    $64, DI
	SUBQ    $16, CX
	JNZ     exp512loop

	VEXTRACTF64X4 $1, Z10, Y1
	VADDPS        Y1, Y10, Y10
	VEXTRACTF128  $1, Y10, X1
	VADDPS        X1, X10, X10
	VPERMILPS     $0x4e, X10, X1
	VADDPS        X1, X10, X10
	VPERMILPS     $0xb1, X10, X1
	VADDPS        X1, X10, X10
	VZEROUPPER
	MOVSS         X10, ret+24(FP)
	RET
