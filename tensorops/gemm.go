package tensorops

import (
	"fmt"
	"sync"
	"unsafe"
)

// Blocking follows the BLIS/GotoBLAS scheme. A micro-kernel keeps an MR×NR tile of C in
// registers (6×16 = twelve ymm accumulators on AVX2) while it walks kc steps of a packed
// A micro-panel (MR floats per step) and a packed B micro-panel (NR floats per step).
//   - kc ≤ gemmKC: a B micro-panel (kc·NR·4 = 16 KiB) stays in L1 while the kernel sweeps
//     the A micro-panels of the block;
//   - mc ≤ gemmMC: the A block (mc·kc·4 ≈ 240 KiB) stays in L2 (1 MiB on this Xeon);
//   - nc ≤ gemmNC bounds the per-chunk B buffer when B must be packed or converted per call.
//
// Packed layouts use whole-K panels: an A panel is MR rows over all k (k·MR floats, step p at
// p·MR) and a B strip is NR columns over all k (step p at p·NR), so any kc block of a panel
// is one contiguous run. That is what lets Linear pack its weights once, at construction.
//
// With AVX-512 the kernel is 12×32 (24 zmm accumulators) over two adjacent 16-wide strips, so
// the B layout, and with it every packed Linear, is the same for all kernels; only the A panel
// height (MR) and kc differ, and A is packed per call.
const (
	gemmMR    = 6 // AVX2 and Go kernels
	gemmMR512 = 12
	gemmNR    = 16 // strip width of packed B, all kernels
	gemmKC    = 256
	gemmKC512 = 256 // the two B panels (32 KiB) stream from L2; 2 loads per 24 FMAs leave room (128 measured no better)
	gemmMC    = 240 // a multiple of both MRs
	gemmNC    = 512

	// A prepacked F32 Linear on the AVX-512 kernel reads B in place, so kc is not bounded by
	// a per-call B buffer. Deeper k blocks with shorter row blocks measured 5-11 % faster
	// than 256/240 over sequences of encoder layers (bert-base at M = 128, 512 and 1024,
	// XLM-R-large at 128; variants alternated in one process, 30 rounds each): K = 768 is
	// one block, so C is stored once with its bias and never read back, and the A block
	// (120×768 floats, 360 KiB) still leaves half of L2 to the B tiles streaming through.
	gemmKCLinear512 = 768
	gemmMCLinear512 = 120
)

// blockingOverride replaces the F32 Linear AVX-512 block sizes when kc > 0 (mc and nc too;
// nc 0 keeps gemmNC). Only BenchmarkGEMMBlocking sets it, between products, to compare
// blockings alternately in one process.
var blockingOverride struct{ kc, mc, nc int }

// useAsm is set at init when the assembly kernels can run (AVX2+FMA, not the noasm tag);
// useAVX512 when the AVX-512 GEMM kernel can run too.
var (
	useAsm     bool
	useAVX512  bool
	kernelName = "go"
)

// KernelName says which kernels this process uses: "avx512f (gemm), avx2+fma", "avx2+fma"
// or "go" (no AVX2/FMA, or built with -tags noasm).
func KernelName() string { return kernelName }

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where op(X) is X or Xᵀ.
// op(A) is m×k, op(B) is k×n, C is m×n; lda, ldb, ldc are row strides of the stored matrices.
// Like BLAS, beta == 0 overwrites C without reading it (NaNs in C do not propagate).
// Bad dimensions or short slices panic with a message naming the argument, as BLAS does.
// C must not overlap A or B.
func (e *Engine) Sgemm(transA, transB bool, m, n, k int, alpha float32,
	a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemmArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		e.parallelFor(m, func(i int) { scaleRow(c[i*ldc:i*ldc+n], beta) })
		return
	}
	if m == 1 {
		e.gemmRow(transA, transB, n, k, alpha, a, lda, b, ldb, beta, c)
		return
	}
	g := &gemmCall{m: m, n: n, k: k, c: c, ldc: ldc, beta: beta,
		b: b, ldb: ldb, transB: transB}
	e.run(g, transA, alpha, a, lda)
}

func scaleRow(c []float32, beta float32) {
	switch beta {
	case 0:
		clear(c)
	case 1:
	default:
		for j := range c {
			c[j] *= beta
		}
	}
}

// gemmCall is one product, split into chunks of C that run independently.
type gemmCall struct {
	m, n, k int
	ap      []float32 // op(A)·alpha packed in whole-K MR panels, shared by all chunks

	// B is either prepacked float32 strips (Linear F32), a Linear converted per block, or a
	// plain row-major matrix packed per block.
	b      []float32
	ldb    int
	transB bool
	lin    *Linear

	c    []float32
	ldc  int
	beta float32
	bias []float32                         // when set, C is initialised with bias instead of scaled by beta
	then func(seg []float32, row, col int) // ForwardEach's step, on each row of a finished chunk

	kern       int // kernGo, kernAVX2 or kernAVX512
	asm        bool
	mr         int
	mc, nc, kc int // block sizes of this call
	nmb, nnb   int // chunk grid
}

var bufPool = sync.Pool{New: func() any { s := make([]float32, gemmKC*gemmNC); return &s }}

var apPool sync.Pool

func getAP(n int) *[]float32 {
	if p, ok := apPool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// run packs A, chooses the chunk grid and computes every chunk of C on the engine's threads.
func (e *Engine) run(g *gemmCall, transA bool, alpha float32, a []float32, lda int) {
	m, n, k := g.m, g.n, g.k
	g.kern = e.gemmKernel()
	g.asm = g.kern != kernGo
	g.mr, g.kc = gemmMR, gemmKC
	if g.kern == kernAVX512 {
		g.mr, g.kc = gemmMR512, gemmKC512
	}
	panels := ceilDiv(m, g.mr)
	apBuf := getAP(panels * g.mr * k)
	defer apPool.Put(apBuf)
	g.ap = *apBuf

	mcMax, ncMax := gemmMC, gemmNC
	if g.kern == kernAVX512 && g.lin != nil && g.lin.kind == kindF32 {
		g.kc, mcMax = gemmKCLinear512, gemmMCLinear512
		if o := blockingOverride; o.kc > 0 {
			g.kc, mcMax = o.kc, o.mc
			if o.nc > 0 {
				ncMax = o.nc
			}
		}
	}
	g.kc = ceilDiv(k, ceilDiv(k, g.kc))
	nmb := ceilDiv(m, mcMax)
	g.mc = ceilDiv(ceilDiv(m, nmb), g.mr) * g.mr
	g.nmb = ceilDiv(m, g.mc)

	threads := e.Threads()
	if float64(m)*float64(n)*float64(k) < 1<<17 {
		threads = 1 // a hand-off costs more than such a product
	}
	nnb := ceilDiv(n, ncMax)
	unit := gemmNR
	if g.kern == kernAVX512 {
		unit = 2 * gemmNR // chunk edges on tile edges keep every tile 32 wide
	}
	g.nc = ceilDiv(ceilDiv(n, nnb), unit) * unit
	if want := 3 * threads; threads > 1 && g.nmb*nnb < want {
		minNC := 64 // packing B per chunk must stay amortised over enough columns
		if g.lin != nil && g.lin.kind == kindF32 {
			minNC = 2 * gemmNR
		}
		g.nc = balancedNC(m, n, g.mc, unit, threads, max(nnb, min(ceilDiv(want, g.nmb), ceilDiv(n, minNC))), ceilDiv(n, max(minNC, unit)))
	}
	g.nnb = ceilDiv(n, g.nc)

	// Up to 8 panels per task, fewer when that would leave a thread without its share: at 128
	// rows (11 panels) tasks of 8 and 3 put almost all the packing on one thread.
	panelsPerTask := min(8, max(1, ceilDiv(panels, 2*threads)))
	if threads == 1 {
		packA(g.ap, g.mr, a, lda, transA, 0, panels, m, k, alpha)
		for i := 0; i < g.nmb*g.nnb; i++ {
			g.chunk(i)
		}
		return
	}
	e.parallelFor(ceilDiv(panels, panelsPerTask), func(t int) {
		p0 := t * panelsPerTask
		packA(g.ap, g.mr, a, lda, transA, p0, min(panels, p0+panelsPerTask), m, k, alpha)
	})
	e.parallelFor(g.nmb*g.nnb, g.chunk)
}

// balancedNC picks the chunk width, a multiple of unit, for at least lo and at most hi column
// blocks that gives the shortest finish time when the m×n product's chunks are claimed in
// order by threads workers. Equal widths alone do not suffice: 1024 columns in six 192-wide
// chunks leave one of two threads with a 64-column chunk, an eighth of the product idle.
func balancedNC(m, n, mc, unit, threads, lo, hi int) int {
	best, bestCost := 0, 0
	loads := make([]int, threads)
	for nb := lo; nb <= max(lo, min(hi, 2*lo)); nb++ {
		nc := ceilDiv(ceilDiv(n, nb), unit) * unit
		clear(loads)
		for jc := 0; jc < n; jc += nc {
			for ic := 0; ic < m; ic += mc {
				t := 0
				for i := range loads {
					if loads[i] < loads[t] {
						t = i
					}
				}
				// Each chunk also pays a fixed cost (C init, loop set-up) worth a few columns.
				loads[t] += min(mc, m-ic) * (min(nc, n-jc) + unit/2)
			}
		}
		cost := 0
		for _, l := range loads {
			cost = max(cost, l)
		}
		if best == 0 || cost < bestCost {
			best, bestCost = nc, cost
		}
	}
	return best
}

// packA writes panels [p0, p1) of alpha·op(A) (m×k) into ap as mr-row panels, zero-padding
// the last panel.
func packA(ap []float32, mr int, a []float32, lda int, transA bool, p0, p1, m, k int, alpha float32) {
	for pn := p0; pn < p1; pn++ {
		dst := ap[pn*k*mr : (pn+1)*k*mr]
		i0 := pn * mr
		rows := min(mr, m-i0)
		if !transA {
			if rows < mr {
				clear(dst)
			}
			// Step-major so the writes are one sequential stream; the reads are rows
			// sequential streams, which the prefetchers follow.
			var src [gemmMR512][]float32
			for ii := 0; ii < rows; ii++ {
				src[ii] = a[(i0+ii)*lda : (i0+ii)*lda+k]
			}
			if rows == mr && mr == gemmMR512 {
				// Only the AVX-512 kernels use 12-row panels, so kern holds the assembly
				// transposition here (about 3x the Go loop's speed).
				if alpha == 1 {
					kern.pack12(dst, a[i0*lda:], lda, k)
				} else {
					packA12(dst, &src, k, alpha)
				}
				continue
			}
			for p := 0; p < k; p++ {
				d := dst[p*mr : p*mr+rows]
				for ii := range d {
					d[ii] = alpha * src[ii][p]
				}
			}
			continue
		}
		for p := 0; p < k; p++ {
			src := a[p*lda+i0 : p*lda+i0+rows]
			d := dst[p*mr : p*mr+mr]
			for ii, v := range src {
				d[ii] = alpha * v
			}
			for ii := rows; ii < mr; ii++ {
				d[ii] = 0
			}
		}
	}
}

// packA12 interleaves twelve rows of k values into dst, step-major. The rows are named
// separately and resliced to one length so the compiler drops the bounds checks an indexed
// src[ii][p] pays per element; this transposition is a few percent of a large-M product.
func packA12(dst []float32, src *[gemmMR512][]float32, k int, alpha float32) {
	s0 := src[0][:k]
	s1, s2, s3 := src[1][:len(s0)], src[2][:len(s0)], src[3][:len(s0)]
	s4, s5, s6 := src[4][:len(s0)], src[5][:len(s0)], src[6][:len(s0)]
	s7, s8, s9 := src[7][:len(s0)], src[8][:len(s0)], src[9][:len(s0)]
	s10, s11 := src[10][:len(s0)], src[11][:len(s0)]
	dst = dst[:len(s0)*gemmMR512]
	for p := range s0 {
		d := (*[gemmMR512]float32)(dst[p*gemmMR512:])
		d[0], d[1], d[2], d[3] = alpha*s0[p], alpha*s1[p], alpha*s2[p], alpha*s3[p]
		d[4], d[5], d[6], d[7] = alpha*s4[p], alpha*s5[p], alpha*s6[p], alpha*s7[p]
		d[8], d[9], d[10], d[11] = alpha*s8[p], alpha*s9[p], alpha*s10[p], alpha*s11[p]
	}
}

// packB writes the kc×nc block of op(B) at (pc, jc) as NR-wide strips of kc steps.
func packB(asm bool, dst, b []float32, ldb int, transB bool, pc, kc, jc, nc int) {
	strips := ceilDiv(nc, gemmNR)
	if !transB {
		// Row by row: reads are sequential along rows of B, and the kc·nc destination (well
		// under L2) absorbs the scattered 64-byte writes. Walking strip by strip instead reads
		// one cache line per row of B, a miss each once B exceeds L2.
		full := nc / gemmNR
		for p := 0; p < kc; p++ {
			row := b[(pc+p)*ldb+jc : (pc+p)*ldb+jc+nc]
			if asm && full > 0 {
				_ = dst[(full-1)*kc*gemmNR+p*gemmNR+gemmNR-1]
				packRowStrips(unsafe.SliceData(row), &dst[p*gemmNR], full, kc*gemmNR)
			} else {
				for s := 0; s < full; s++ {
					*(*[gemmNR]float32)(dst[s*kc*gemmNR+p*gemmNR:]) = *(*[gemmNR]float32)(row[s*gemmNR:])
				}
			}
			if full < strips {
				d := dst[full*kc*gemmNR+p*gemmNR : full*kc*gemmNR+p*gemmNR+gemmNR]
				clear(d[copy(d, row[full*gemmNR:]):])
			}
		}
		return
	}
	for s := 0; s < strips; s++ {
		d := dst[s*kc*gemmNR : (s+1)*kc*gemmNR]
		cols := min(gemmNR, nc-s*gemmNR)
		for r := 0; r < cols; r++ {
			j := jc + s*gemmNR + r
			col := b[j*ldb+pc : j*ldb+pc+kc]
			for p, v := range col {
				d[p*gemmNR+r] = v
			}
		}
		for r := cols; r < gemmNR; r++ {
			for p := 0; p < kc; p++ {
				d[p*gemmNR+r] = 0
			}
		}
	}
}

// chunk computes one mc×nc block of C over all of k.
func (g *gemmCall) chunk(idx int) {
	ic := (idx % g.nmb) * g.mc
	jc := (idx / g.nmb) * g.nc
	mc := min(g.mc, g.m-ic)
	nc := min(g.nc, g.n-jc)
	// The AVX-512 path stores the first k block's result with the bias (or zero) added, so C
	// is neither initialised in a separate pass nor read back; other paths initialise C here.
	var first []float32
	if g.kern == kernAVX512 && (g.bias != nil || g.beta == 0) && nc <= len(zeroCols) {
		first = zeroCols[:nc]
		if g.bias != nil {
			first = g.bias[jc : jc+nc]
		}
	} else {
		for i := ic; i < ic+mc; i++ {
			row := g.c[i*g.ldc+jc : i*g.ldc+jc+nc]
			if g.bias != nil {
				copy(row, g.bias[jc:jc+nc])
			} else {
				scaleRow(row, g.beta)
			}
		}
	}
	var bbuf *[]float32
	if g.lin == nil || g.lin.kind != kindF32 {
		bbuf = bufPool.Get().(*[]float32)
		defer bufPool.Put(bbuf)
	}
	for pc := 0; pc < g.k; pc += g.kc {
		kc := min(g.kc, g.k-pc)
		var bp []float32
		var bstride int
		switch {
		case g.lin == nil:
			bp, bstride = *bbuf, kc*gemmNR
			packB(g.asm, bp, g.b, g.ldb, g.transB, pc, kc, jc, nc)
		case g.lin.kind == kindF32:
			bstride = g.k * gemmNR
			bp = g.lin.f32[(jc/gemmNR)*bstride+pc*gemmNR:]
		default:
			bp, bstride = *bbuf, kc*gemmNR
			g.lin.convertBlock(g.asm, bp, pc, kc, jc, nc)
		}
		if g.kern == kernAVX512 {
			g.macro512(ic, mc, jc, nc, pc, kc, bp, bstride, first)
			first = nil
			continue
		}
		g.macro(ic, mc, jc, nc, pc, kc, bp, bstride)
	}
	if g.then != nil {
		for i := ic; i < ic+mc; i++ {
			g.then(g.c[i*g.ldc+jc:i*g.ldc+jc+nc], i, jc)
		}
	}
}

// zeroCols is the "bias" of a product without one when the first k block stores C.
var zeroCols [2 * gemmNC]float32

// macro runs the micro-kernel over an mc×nc block for one kc slice. Edge tiles are computed
// into a scratch tile and added to C, so the kernels only ever see full tiles.
func (g *gemmCall) macro(ic, mc, jc, nc, pc, kc int, bp []float32, bstride int) {
	var tmp [gemmMR * gemmNR]float32
	for jr := 0; jr < nc; jr += gemmNR {
		nr := min(gemmNR, nc-jr)
		b := bp[(jr/gemmNR)*bstride : (jr/gemmNR)*bstride+kc*gemmNR]
		for ir := 0; ir < mc; ir += gemmMR {
			mr := min(gemmMR, mc-ir)
			a := g.ap[((ic+ir)/gemmMR)*g.k*gemmMR+pc*gemmMR:]
			a = a[:kc*gemmMR]
			c0 := (ic+ir)*g.ldc + jc + jr
			if mr == gemmMR && nr == gemmNR {
				c := g.c[c0 : c0+(gemmMR-1)*g.ldc+gemmNR]
				microKernel(g.asm, kc, a, b, c, g.ldc)
				continue
			}
			clear(tmp[:])
			microKernel(g.asm, kc, a, b, tmp[:], gemmNR)
			addTile(g.c[c0:], g.ldc, tmp[:], gemmNR, mr, nr)
		}
	}
}

// storeTile sets C = tmp + bias (per column) over an mr×nr edge tile.
func storeTile(c []float32, ldc int, tmp []float32, ldt, mr, nr int, bias []float32) {
	bias = bias[:nr]
	for i := 0; i < mr; i++ {
		crow := c[i*ldc : i*ldc+nr]
		for j := range crow {
			crow[j] = tmp[i*ldt+j] + bias[j]
		}
	}
}

func addTile(c []float32, ldc int, tmp []float32, ldt, mr, nr int) {
	for i := 0; i < mr; i++ {
		crow := c[i*ldc : i*ldc+nr]
		for j := range crow {
			crow[j] += tmp[i*ldt+j]
		}
	}
}

// macro512 is macro for the AVX-512 kernels: 12-row A panels, two B strips per tile. With
// first non-nil (the block's column bias, or zeros) C is stored as the product plus first
// instead of accumulated.
func (g *gemmCall) macro512(ic, mc, jc, nc, pc, kc int, bp []float32, bstride int, first []float32) {
	const mrT, nrT = gemmMR512, 2 * gemmNR
	var tmp [mrT * nrT]float32
	for jr := 0; jr < nc; jr += nrT {
		nr := min(nrT, nc-jr)
		two := nr > gemmNR
		s := jr / gemmNR
		b0 := bp[s*bstride : s*bstride+kc*gemmNR]
		b1 := b0
		if two {
			b1 = bp[(s+1)*bstride : (s+1)*bstride+kc*gemmNR]
		}
		next := g.nextTile(jr, nc, pc, kc, bp, bstride)
		for ir := 0; ir < mc; ir += mrT {
			mr := min(mrT, mc-ir)
			a := g.ap[((ic+ir)/mrT)*g.k*mrT+pc*mrT:]
			a = a[:kc*mrT]
			c0 := (ic+ir)*g.ldc + jc + jr
			pa, pb0, pb1 := unsafe.SliceData(a), unsafe.SliceData(b0), unsafe.SliceData(b1)
			if mr == mrT && nr == nrT {
				c := g.c[c0 : c0+(mrT-1)*g.ldc+nr]
				// The first four panels each prefetch a quarter of the next tile's B; the
				// others re-touch their own B, which is cached.
				pf := unsafe.Pointer(pb0)
				if q := ir / mrT; q < 4 && next[q/2] != nil {
					pf = unsafe.Pointer(&next[q/2][(q%2)*kc*gemmNR/2])
				}
				var bias *float32
				if first != nil {
					bias = &first[jr]
				}
				sgemmKernel12x32(kc, pa, pb0, pb1, unsafe.SliceData(c), g.ldc, pf, bias)
				continue
			}
			if mr == mrT && first == nil && nr == gemmNR {
				c := g.c[c0 : c0+(mrT-1)*g.ldc+nr]
				sgemmKernel12x16(kc, pa, pb0, pb1, unsafe.SliceData(c), g.ldc)
				continue
			}
			clear(tmp[:])
			if two {
				sgemmKernel12x32(kc, pa, pb0, pb1, &tmp[0], nrT, unsafe.Pointer(pb0), nil)
			} else {
				sgemmKernel12x16(kc, pa, pb0, pb1, &tmp[0], nrT)
			}
			if first != nil {
				storeTile(g.c[c0:], g.ldc, tmp[:], nrT, mr, nr, first[jr:jr+nr])
				continue
			}
			addTile(g.c[c0:], g.ldc, tmp[:], nrT, mr, nr)
		}
	}
}

// nextTile returns the two B strips (kc steps each) the macro-kernel reads after the tile at
// jr, for prefetching: the next tile of this block, or for a prepacked F32 weight the first
// tile of the next k block. nil where there is none (or it is not worth fetching early).
func (g *gemmCall) nextTile(jr, nc, pc, kc int, bp []float32, bstride int) (next [2][]float32) {
	s := jr/gemmNR + 2
	off := 0
	if jr+2*gemmNR >= nc {
		if g.lin == nil || g.lin.kind != kindF32 || pc+kc >= g.k {
			return next
		}
		s, off = 0, kc*gemmNR
		kc = min(kc, g.k-pc-kc)
	}
	strips := ceilDiv(nc, gemmNR)
	for i := range next {
		if lo := (s+i)*bstride + off; s+i < strips && lo+kc*gemmNR <= len(bp) {
			next[i] = bp[lo : lo+kc*gemmNR]
		}
	}
	return next
}

// microKernel accumulates C[MR][NR] (row stride ldc) += A panel · B panel over kc steps.
func microKernel(asm bool, kc int, a, b, c []float32, ldc int) {
	if asm {
		sgemmKernel6x16(kc, unsafe.SliceData(a), unsafe.SliceData(b), unsafe.SliceData(c), ldc)
		return
	}
	microKernelGo(kc, a, b, c, ldc)
}

// microKernelGo is the portable kernel: the same 6×16 tile, accumulated in a local array the
// compiler can keep in registers row by row.
func microKernelGo(kc int, a, b, c []float32, ldc int) {
	var acc [gemmMR][gemmNR]float32
	a = a[:kc*gemmMR]
	b = b[:kc*gemmNR]
	for p := 0; p < kc; p++ {
		bv := (*[gemmNR]float32)(b[p*gemmNR:])
		av := (*[gemmMR]float32)(a[p*gemmMR:])
		for i := 0; i < gemmMR; i++ {
			x := av[i]
			r := &acc[i]
			for j := 0; j < gemmNR; j++ {
				r[j] += x * bv[j]
			}
		}
	}
	for i := 0; i < gemmMR; i++ {
		crow := c[i*ldc : i*ldc+gemmNR]
		for j := range crow {
			crow[j] += acc[i][j]
		}
	}
}

// gemmRow handles m == 1 (a row vector times a matrix) without packing: with transB it is n
// dot products over contiguous rows of B, otherwise an axpy over the rows of B.
func (e *Engine) gemmRow(transA, transB bool, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32) {
	asm := e.asm()
	x := a[:k]
	if transA {
		xs := make([]float32, k)
		for p := range xs {
			xs[p] = a[p*lda]
		}
		x = xs
	}
	const colsPerTask = 256
	tasks := ceilDiv(n, colsPerTask)
	if n*k < 1<<16 {
		tasks = 1
	}
	e.parallelFor(tasks, func(t int) {
		j0 := t * ceilDiv(n, tasks)
		j1 := min(n, j0+ceilDiv(n, tasks))
		if j0 >= j1 {
			return
		}
		cr := c[j0:j1]
		if transB {
			for j := j0; j < j1; j++ {
				s := alpha * dot(asm, x, b[j*ldb:j*ldb+k])
				if beta == 0 {
					cr[j-j0] = s
				} else {
					cr[j-j0] = s + beta*cr[j-j0]
				}
			}
			return
		}
		scaleRow(cr, beta)
		for p, xv := range x {
			s := alpha * xv
			if s == 0 {
				continue
			}
			row := b[p*ldb+j0 : p*ldb+j1]
			if asm {
				saxpyAVX2(len(row), s, unsafe.SliceData(row), unsafe.SliceData(cr))
				continue
			}
			for j, v := range row {
				cr[j] += s * v
			}
		}
	})
}

func dot(asm bool, x, y []float32) float32 {
	y = y[:len(x)]
	if asm && len(x) > 0 {
		return sdotAVX2(len(x), unsafe.SliceData(x), unsafe.SliceData(y))
	}
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// checkGemmArgs panics with a message naming the bad argument, as BLAS implementations do:
// a wrong dimension is a programming error in the caller, not a data error.
func checkGemmArgs(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("tensorops: Sgemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	checkMat := func(name string, x []float32, rows, cols, ld int) {
		if ld < max(1, cols) {
			panic(fmt.Sprintf("tensorops: Sgemm: ld%s=%d < %d", name, ld, cols))
		}
		if rows > 0 && cols > 0 && len(x) < (rows-1)*ld+cols {
			panic(fmt.Sprintf("tensorops: Sgemm: len(%s)=%d too short for %dx%d with stride %d", name, len(x), rows, cols, ld))
		}
	}
	if transA {
		checkMat("a", a, k, m, lda)
	} else {
		checkMat("a", a, m, k, lda)
	}
	if transB {
		checkMat("b", b, n, k, ldb)
	} else {
		checkMat("b", b, k, n, ldb)
	}
	checkMat("c", c, m, n, ldc)
}
