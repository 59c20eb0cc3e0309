//go:build amd64 && !noasm

package tensorops

import (
	"math"
	"unsafe"
)

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func expShiftSumAVX2(x *float32, n int, m float32) float32

//go:noescape
func scaleAVX2(x *float32, n int, s float32)

//go:noescape
func geluAVX2(x *float32, n int)

//go:noescape
func geluTanhAVX2(x *float32, n int)

//go:noescape
func geluAVX512(x *float32, n int)

//go:noescape
func addAVX2(dst, a, b *float32, n int)

//go:noescape
func expShiftSumAVX512(x *float32, n int, m float32) float32

//go:noescape
func siluAVX2(x *float32, n int)

//go:noescape
func siluMulAVX2(gate, up *float32, n int)

//go:noescape
func attnScoresAVX2(q, k *float32, ldk, n, d int, scale float32, s *float32)

//go:noescape
func sumF64AVX2(x *float32, n int) float64

//go:noescape
func sqDevF64AVX2(x *float32, n int, c float64) float64

//go:noescape
func layerNormOutAVX2(dst, x, gamma, beta *float32, n int, mean, rstd float64)

//go:noescape
func packPanel12AVX2(src *float32, lds int, dst *float32, n8 int)

//go:noescape
func attnAccumAVX2(out, p, v *float32, ldv, n, d int)

func init() {
	if !detectAVX2FMA() {
		return
	}
	kern = opKernels{
		softmaxRow: softmaxRowAVX2,
		gelu:       geluAVX2Slice,
		geluTanh:   geluTanhAVX2Slice,
		silu:       siluAVX2Slice,
		siluMul:    siluMulAVX2Slice,
		attnScores: attnScoresAVX2Slice,
		attnAccum:  attnAccumAVX2Slice,
		rowMax:     rowMaxAVX2,
		pack12:     packPanel12Asm,
		layerNorm:  layerNormRowAVX2,
		add:        addAVX2Slice,
	}
	avx2Kernels = kern
	if detectAVX512() {
		kern.gelu = geluAVX512Slice
		kern.softmaxRow = softmaxRowAVX512
	}
}

// The row wrappers (softmax, max) run the assembly over the largest multiple of the vector
// width and the pure-Go kernel over the rest; a row is always processed whole.

func softmaxRowAVX2(x []float32) { softmaxRowLanes(x, 8, expShiftSumAVX2) }

// softmaxRowAVX512 takes the exponentials of the first multiple of 16 elements on sixteen
// lanes.
func softmaxRowAVX512(x []float32) {
	if len(x) < 16 {
		softmaxRowAVX2(x)
		return
	}
	softmaxRowLanes(x, 16, expShiftSumAVX512)
}

// softmaxRowLanes is the softmax of one row with the assembly over the largest multiple of
// width elements (max, exponentials with their sum, scale) and Go over the rest.
func softmaxRowLanes(x []float32, width int, expShiftSum func(x *float32, n int, m float32) float32) {
	body := len(x) - len(x)%width
	if body == 0 {
		softmaxRowGo(x)
		return
	}
	p := unsafe.SliceData(x)
	m := maxAVX2(p, body)
	for _, v := range x[body:] {
		if v > m {
			m = v
		}
	}
	if math.IsInf(float64(m), -1) {
		u := 1 / float32(len(x))
		for j := range x {
			x[j] = u
		}
		return
	}
	s := expShiftSum(p, body, m)
	for j := body; j < len(x); j++ {
		e := float32(math.Exp(float64(x[j] - m)))
		x[j] = e
		s += e
	}
	inv := 1 / s
	scaleAVX2(p, body, inv)
	for j := body; j < len(x); j++ {
		x[j] *= inv
	}
}

func rowMaxAVX2(x []float32) float32 {
	n8 := len(x) &^ 7
	if n8 == 0 {
		return rowMaxGo(x)
	}
	m := maxAVX2(unsafe.SliceData(x), n8)
	for _, v := range x[n8:] {
		if v > m {
			m = v
		}
	}
	return m
}

// layerNormRowAVX2 is layerNormRow with its float64 loops four lanes wide.
func layerNormRowAVX2(dst, x, gamma, beta []float32, eps float32) {
	n := len(x)
	n8 := n &^ 7
	if n8 == 0 || gamma == nil || beta == nil {
		layerNormRow(dst, x, gamma, beta, eps)
		return
	}
	dst, gamma, beta = dst[:n], gamma[:n], beta[:n]
	px := unsafe.SliceData(x)
	mean := (sumF64AVX2(px, n8) + sum64(x[n8:])) / float64(n)
	rstd := 1 / math.Sqrt((sqDevF64AVX2(px, n8, mean)+sqDev64(x[n8:], mean))/float64(n)+float64(eps))
	layerNormOutAVX2(unsafe.SliceData(dst), px, unsafe.SliceData(gamma), unsafe.SliceData(beta), n8, mean, rstd)
	for j := n8; j < n; j++ {
		dst[j] = float32((float64(x[j])-mean)*rstd*float64(gamma[j]) + float64(beta[j]))
	}
}

func packPanel12Asm(d, s []float32, lds, k int) {
	n8 := k / 8
	if n8 > 0 {
		_ = s[11*lds+n8*8-1]
		_ = d[n8*8*12-1]
		packPanel12AVX2(unsafe.SliceData(s), lds, unsafe.SliceData(d), n8)
	}
	if rest := k - n8*8; rest > 0 {
		packPanel12(d[n8*8*12:], s[n8*8:], lds, rest, 1)
	}
}

// The elementwise wrappers run the assembly over the whole slice, the last partial vector
// through a zero-padded copy: a value's result must not depend on where it sits in the slice,
// because Linear's epilogues apply activations per block of the output (the same row, split
// differently, must give the same floats).

// lanes runs f (n > 0, a multiple of width) over x, padding its tail to width lanes.
func lanes(x []float32, width int, f func(p *float32, n int)) {
	body := len(x) - len(x)%width
	if body > 0 {
		f(unsafe.SliceData(x), body)
	}
	if body < len(x) {
		var tail [16]float32
		t := tail[:width]
		copy(t, x[body:])
		f(&t[0], width)
		copy(x[body:], t)
	}
}

func geluAVX2Slice(x []float32)     { lanes(x, 8, geluAVX2) }
func geluAVX512Slice(x []float32)   { lanes(x, 16, geluAVX512) }
func geluTanhAVX2Slice(x []float32) { lanes(x, 8, geluTanhAVX2) }
func siluAVX2Slice(x []float32)     { lanes(x, 8, siluAVX2) }

func addAVX2Slice(dst, a, b []float32) {
	n8 := len(a) &^ 7
	if n8 > 0 {
		addAVX2(unsafe.SliceData(dst), unsafe.SliceData(a), unsafe.SliceData(b), n8)
	}
	addGo(dst[n8:], a[n8:], b[n8:])
}

func siluMulAVX2Slice(gate, up []float32) {
	n8 := len(gate) &^ 7
	if n8 > 0 {
		siluMulAVX2(unsafe.SliceData(gate), unsafe.SliceData(up), n8)
	}
	if n8 < len(gate) {
		var g, u [8]float32
		copy(g[:], gate[n8:])
		copy(u[:], up[n8:len(gate)])
		siluMulAVX2(&g[0], &u[0], 8)
		copy(gate[n8:], g[:])
	}
}

func attnScoresAVX2Slice(s, q, k []float32, ldk int, scale float32) {
	d := len(q)
	if d%8 != 0 || len(s) == 0 {
		attnScoresGo(s, q, k, ldk, scale)
		return
	}
	_ = k[(len(s)-1)*ldk+d-1]
	attnScoresAVX2(unsafe.SliceData(q), unsafe.SliceData(k), ldk, len(s), d, scale, unsafe.SliceData(s))
}

func attnAccumAVX2Slice(out, p, v []float32, ldv int) {
	d := len(out)
	if d%8 != 0 || len(p) == 0 {
		attnAccumGo(out, p, v, ldv)
		return
	}
	_ = v[(len(p)-1)*ldv+d-1]
	attnAccumAVX2(unsafe.SliceData(out), unsafe.SliceData(p), unsafe.SliceData(v), ldv, len(p), d)
}
