package tensorops

import (
	"sync"
	"unsafe"
)

// The prefill path of Engine.Attention. A per-head Sgemm call would pack its A and B operands
// on every call, and those packs (and the per-call set-up) cost as much as the products at
// head-sized shapes. Here each KV head's K and V are packed once per call into the GEMM's
// 16-wide strip layout, shared by every query block and every query head of the group, and
// each (batch, head, query block) runs the micro-kernels directly: S = Q_blk·(scale·K_h)ᵀ,
// bias and masks, row softmax in place, O_blk = P·V_h. Query blocks are sized so the score
// block stays in L2, and causal blocks compute only the key columns some row of theirs sees.

// attnBlockFloats bounds a score block (rows × keys) so it and its packed copy stay in L2.
const attnBlockFloats = 32 << 10

// attnFallbackMax: a row whose largest visible score is at or below it is fully masked; its
// causally hidden keys then matter (Hugging Face's softmax spreads it uniformly over every key)
// and it is recomputed over all keys on the direct path.
const attnFallbackMax = -1e30

// attnPack holds one call's packed K and V.
type attnPack struct {
	kern, mr int
	k, v     []float32 // per (batch, KV head): K strips [ceil(KVLen/16)][HeadDim][16], V strips [ceil(HeadDim/16)][KVLen][16]
	kSize    int
	vSize    int
	asm      bool
	// maskLive[b]: KeyMask has a non-zero entry for batch b (an all-zero mask, what an
	// unpadded batch gets, is skipped).
	maskLive []bool
}

var attnPackPool sync.Pool

func (e *Engine) attentionPacked(out, q, k, v []float32, p *AttentionParams, d *attnDims, kn *opKernels) {
	n, dh := p.KVLen, p.HeadDim
	ap := attnPack{kern: e.gemmKernel(), mr: gemmMR}
	if ap.kern == kernAVX512 {
		ap.mr = gemmMR512
	}
	asm := ap.kern != kernGo
	ap.asm = asm
	if p.KeyMask != nil {
		ap.maskLive = make([]bool, p.Batch)
		for b := range ap.maskLive {
			for _, m := range p.KeyMask[b*n : (b+1)*n] {
				if m != 0 {
					ap.maskLive[b] = true
					break
				}
			}
		}
	}
	ap.kSize = ceilDiv(n, gemmNR) * gemmNR * dh
	ap.vSize = ceilDiv(dh, gemmNR) * gemmNR * n
	kvHeads := p.Batch * p.KVHeads
	total := kvHeads * (ap.kSize + ap.vSize)
	bufp, _ := attnPackPool.Get().(*[]float32)
	if bufp == nil || cap(*bufp) < total {
		s := make([]float32, total)
		bufp = &s
	}
	defer attnPackPool.Put(bufp)
	buf := (*bufp)[:total]
	ap.k, ap.v = buf[:kvHeads*ap.kSize], buf[kvHeads*ap.kSize:]

	// Query blocks: a multiple of the kernel's rows, small enough for L2, and enough of them
	// to keep every thread busy.
	threads := e.Threads()
	heads := p.Batch * p.Heads
	qBlock := max(attnBlockFloats/n/ap.mr, 1) * ap.mr
	if p.Causal {
		// Smaller blocks skip more of the hidden triangle (a block computes the keys its last
		// row sees); about eight per head leaves ~7/16 of the square uncomputed.
		qBlock = min(qBlock, max(2*ap.mr, ceilDiv(ceilDiv(p.QLen, 8), ap.mr)*ap.mr))
	}
	if want := 2 * threads; heads*ceilDiv(p.QLen, qBlock) < want {
		qBlock = max(ceilDiv(ceilDiv(p.QLen, ceilDiv(want, heads)), ap.mr)*ap.mr, ap.mr)
	}
	qBlock = min(qBlock, p.QLen)
	qBlocks := ceilDiv(p.QLen, qBlock)
	flops := 4 * float64(heads) * float64(p.QLen) * float64(n) * float64(dh)
	serial := flops < 1<<18 || threads == 1

	pack := func(t int) {
		bk := t >> 1
		b, kvh := bk/p.KVHeads, bk%p.KVHeads
		off := b*d.bsKV + kvh*dh
		if t&1 == 0 {
			// Strips of 16 keys over the head dimension, the scale folded in here, once
			// per KV head rather than once per query block.
			packPanels(kn, ap.k[bk*ap.kSize:(bk+1)*ap.kSize], gemmNR, k[off:], d.ldkv, n, dh, d.scale)
		} else {
			packB(asm, ap.v[bk*ap.vSize:(bk+1)*ap.vSize], v[off:], d.ldkv, false, 0, n, 0, dh)
		}
	}
	// Causal blocks late in the sequence see the most keys: hand them out first so the
	// dynamic split ends evenly.
	work := func(u int) {
		w := getAttnWorker()
		bh, blk := u/qBlocks, qBlocks-1-u%qBlocks
		i0 := blk * qBlock
		w.block(&ap, kn, out, q, k, v, p, d, bh/p.Heads, bh%p.Heads, i0, min(i0+qBlock, p.QLen))
		attnWorkers.Put(w)
	}
	if serial {
		for t := 0; t < 2*kvHeads; t++ {
			pack(t)
		}
		for u := 0; u < heads*qBlocks; u++ {
			work(u)
		}
		return
	}
	e.parallelFor(2*kvHeads, pack)
	e.parallelFor(heads*qBlocks, work)
}

// grow returns buf resized to n, reallocated when too small.
func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// block computes query rows [i0, i1) of query head h in batch b on the packed K and V.
func (w *attnWorker) block(ap *attnPack, kn *opKernels, out, q, k, v []float32, p *AttentionParams, d *attnDims, b, h, i0, i1 int) {
	n, dh, mr := p.KVLen, p.HeadDim, ap.mr
	rows := i1 - i0
	// Keys beyond the last row's causal horizon are hidden from every row of the block.
	kvis := n
	if p.Causal {
		kvis = max(min(n-p.QLen+i1, n), 0)
	}
	if kvis == 0 {
		w.head(kn, out, q, k, v, p, d, b, h, i0, i1)
		return
	}
	panels := ceilDiv(rows, mr)
	w.qp = grow(w.qp, panels*mr*dh)
	w.scores = grow(w.scores, rows*kvis)
	w.pp = grow(w.pp, panels*mr*kvis)
	s := w.scores

	qOff := (b*p.QLen+i0)*d.ldq + h*dh
	oOff := (b*p.QLen+i0)*d.ldo + h*dh
	bk := b*p.KVHeads + h/d.group
	kp := ap.k[bk*ap.kSize : (bk+1)*ap.kSize]
	vp := ap.v[bk*ap.vSize : (bk+1)*ap.vSize]

	packPanels(kn, w.qp, mr, q[qOff:], d.ldq, rows, dh, 1)
	packedMul(ap.kern, mr, rows, kvis, dh, w.qp, kp, dh*gemmNR, s, kvis)

	var bias []float32
	if p.Bias != nil {
		bias = p.Bias[b*p.BiasBatchStride+h*p.QLen*n:]
	}
	var mask []float32
	if p.KeyMask != nil && ap.maskLive[b] {
		mask = p.KeyMask[b*n : (b+1)*n]
	}
	fallback := w.fallback[:0]
	for r := 0; r < rows; r++ {
		i := i0 + r
		sr := s[r*kvis : (r+1)*kvis]
		visible := kvis
		if p.Causal {
			visible = max(min(n-p.QLen+i+1, n), 0)
		}
		vr := sr[:visible]
		if bias != nil {
			addTo(ap.asm, vr, bias[i*n:i*n+visible])
		}
		if mask != nil {
			addTo(ap.asm, vr, mask[:visible])
		}
		if visible < n && (visible == 0 || ((mask != nil || bias != nil) && kn.rowMax(vr) <= attnFallbackMax)) {
			fallback = append(fallback, i)
			clear(sr)
			continue
		}
		// Hidden keys get finfo.min added, so once a visible score is finite their
		// probabilities are exactly zero: the softmax runs over the visible prefix.
		kn.softmaxRow(vr)
		clear(sr[visible:])
	}
	w.fallback = fallback

	packPanels(kn, w.pp, mr, s, kvis, rows, kvis, 1)
	packedMul(ap.kern, mr, rows, dh, kvis, w.pp, vp, n*gemmNR, out[oOff:], d.ldo)

	for _, i := range fallback {
		w.head(kn, out, q, k, v, p, d, b, h, i, i+1)
	}
}

// addTo sets x += y.
func addTo(asm bool, x, y []float32) {
	y = y[:len(x)]
	if asm && len(x) > 0 {
		// fma(1, y, x) rounds exactly as x + y does.
		saxpyAVX2(len(x), 1, unsafe.SliceData(y), unsafe.SliceData(x))
		return
	}
	for j, v := range y {
		x[j] += v
	}
}

// packedMul sets C (m×n, row stride ldc) = A·B over k steps, where ap holds A as mr-row
// panels over all k steps (panel stride k·mr, rows past m zero or ignored) and bp holds B as
// 16-wide strips (strip stride bs, step p at p·16, columns past n ignored). Only the m×n
// block of C is written.
func packedMul(kernel, mr, m, n, k int, ap, bp []float32, bs int, c []float32, ldc int) {
	if kernel == kernAVX512 {
		// The first k block stores its tiles (the kernel's bias path, with zeros), so C is
		// neither cleared beforehand nor read back.
		for pc := 0; pc < k; pc += gemmKC {
			packedMacro512(min(gemmKC, k-pc), pc, m, n, k, ap, bp, bs, c, ldc, pc == 0)
		}
		return
	}
	for i := 0; i < m; i++ {
		clear(c[i*ldc : i*ldc+n])
	}
	for pc := 0; pc < k; pc += gemmKC {
		kc := min(gemmKC, k-pc)
		asm := kernel != kernGo
		var tmp [gemmMR * gemmNR]float32
		for jr := 0; jr < n; jr += gemmNR {
			nr := min(gemmNR, n-jr)
			b := bp[(jr/gemmNR)*bs+pc*gemmNR:]
			b = b[:kc*gemmNR]
			for ir := 0; ir < m; ir += gemmMR {
				a := ap[(ir/gemmMR)*k*gemmMR+pc*gemmMR:]
				a = a[:kc*gemmMR]
				rr := min(gemmMR, m-ir)
				c0 := ir*ldc + jr
				if rr == gemmMR && nr == gemmNR {
					microKernel(asm, kc, a, b, c[c0:c0+(gemmMR-1)*ldc+gemmNR], ldc)
					continue
				}
				clear(tmp[:])
				microKernel(asm, kc, a, b, tmp[:], gemmNR)
				addTile(c[c0:], ldc, tmp[:], gemmNR, rr, nr)
			}
		}
	}
}

// packedMacro512 is packedMul's kc slice on the AVX-512 12×32 kernel (two strips per tile).
// With first set it stores the products into C instead of adding them.
func packedMacro512(kc, pc, m, n, k int, ap, bp []float32, bs int, c []float32, ldc int, first bool) {
	var bias *float32
	if first {
		bias = &zeroCols[0]
	}
	const mrT, nrT = gemmMR512, 2 * gemmNR
	var tmp [mrT * nrT]float32
	for jr := 0; jr < n; jr += nrT {
		nr := min(nrT, n-jr)
		two := nr > gemmNR
		s := jr / gemmNR
		b0 := bp[s*bs+pc*gemmNR:]
		b0 = b0[:kc*gemmNR]
		b1 := b0
		if two {
			b1 = bp[(s+1)*bs+pc*gemmNR:]
			b1 = b1[:kc*gemmNR]
		}
		pb0, pb1 := unsafe.SliceData(b0), unsafe.SliceData(b1)
		for ir := 0; ir < m; ir += mrT {
			a := ap[(ir/mrT)*k*mrT+pc*mrT:]
			a = a[:kc*mrT]
			pa := unsafe.SliceData(a)
			rr := min(mrT, m-ir)
			c0 := ir*ldc + jr
			if rr == mrT && nr == nrT {
				cc := c[c0 : c0+(mrT-1)*ldc+nr]
				sgemmKernel12x32(kc, pa, pb0, pb1, unsafe.SliceData(cc), ldc, unsafe.Pointer(pb0), bias)
				continue
			}
			if rr == mrT && nr == gemmNR && !first {
				cc := c[c0 : c0+(mrT-1)*ldc+nr]
				sgemmKernel12x16(kc, pa, pb0, pb1, unsafe.SliceData(cc), ldc)
				continue
			}
			clear(tmp[:])
			if two {
				sgemmKernel12x32(kc, pa, pb0, pb1, &tmp[0], nrT, unsafe.Pointer(pb0), nil)
			} else {
				sgemmKernel12x16(kc, pa, pb0, pb1, &tmp[0], nrT)
			}
			if first {
				storeTile(c[c0:], ldc, tmp[:], nrT, rr, nr, zeroCols[:nr])
				continue
			}
			addTile(c[c0:], ldc, tmp[:], nrT, rr, nr)
		}
	}
}

// packPanels writes alpha times rows [0, m) of the row-major src (row stride lds, k columns)
// as mr-row panels over k steps (packA's layout), zero-padding the last panel. With mr = 16
// that is also the B strip layout of a transposed operand (packB with transB). The full panels
// go through unrolled loops whose bounds checks the compiler removes: the general packing
// loops cost more than the micro-kernel that consumes the panel at attention's shapes.
func packPanels(kn *opKernels, dst []float32, mr int, src []float32, lds, m, k int, alpha float32) {
	full := m / mr
	for pn := 0; pn < full; pn++ {
		d := dst[pn*mr*k : (pn+1)*mr*k]
		s := src[pn*mr*lds:]
		switch mr {
		case 16:
			packPanel16(d, s, lds, k, alpha)
		case 12:
			if alpha == 1 {
				kn.pack12(d, s, lds, k)
			} else {
				packPanel12(d, s, lds, k, alpha)
			}
		case 6:
			packPanel6(d, s, lds, k, alpha)
		default:
			packA(d, mr, s, lds, false, 0, 1, mr, k, alpha)
		}
	}
	if rest := m - full*mr; rest > 0 {
		d := dst[full*mr*k : (full+1)*mr*k]
		s := src[full*mr*lds:]
		clear(d)
		for r := 0; r < rest; r++ {
			row := s[r*lds : r*lds+k]
			for j, v := range row {
				d[j*mr+r] = alpha * v
			}
		}
	}
}

func packPanel16(d, s []float32, lds, k int, a float32) {
	r0 := s[:k]
	r1, r2, r3 := s[lds:][:k], s[2*lds:][:k], s[3*lds:][:k]
	r4, r5, r6 := s[4*lds:][:k], s[5*lds:][:k], s[6*lds:][:k]
	r7, r8, r9 := s[7*lds:][:k], s[8*lds:][:k], s[9*lds:][:k]
	r10, r11, r12 := s[10*lds:][:k], s[11*lds:][:k], s[12*lds:][:k]
	r13, r14, r15 := s[13*lds:][:k], s[14*lds:][:k], s[15*lds:][:k]
	d = d[:16*k]
	for j := range r0 {
		o := (*[16]float32)(d[j*16:])
		o[0], o[1], o[2], o[3] = a*r0[j], a*r1[j], a*r2[j], a*r3[j]
		o[4], o[5], o[6], o[7] = a*r4[j], a*r5[j], a*r6[j], a*r7[j]
		o[8], o[9], o[10], o[11] = a*r8[j], a*r9[j], a*r10[j], a*r11[j]
		o[12], o[13], o[14], o[15] = a*r12[j], a*r13[j], a*r14[j], a*r15[j]
	}
}

func packPanel12(d, s []float32, lds, k int, a float32) {
	r0 := s[:k]
	r1, r2, r3 := s[lds:][:k], s[2*lds:][:k], s[3*lds:][:k]
	r4, r5, r6 := s[4*lds:][:k], s[5*lds:][:k], s[6*lds:][:k]
	r7, r8, r9 := s[7*lds:][:k], s[8*lds:][:k], s[9*lds:][:k]
	r10, r11 := s[10*lds:][:k], s[11*lds:][:k]
	d = d[:12*k]
	for j := range r0 {
		o := (*[12]float32)(d[j*12:])
		o[0], o[1], o[2], o[3] = a*r0[j], a*r1[j], a*r2[j], a*r3[j]
		o[4], o[5], o[6], o[7] = a*r4[j], a*r5[j], a*r6[j], a*r7[j]
		o[8], o[9], o[10], o[11] = a*r8[j], a*r9[j], a*r10[j], a*r11[j]
	}
}

func packPanel6(d, s []float32, lds, k int, a float32) {
	r0 := s[:k]
	r1, r2, r3 := s[lds:][:k], s[2*lds:][:k], s[3*lds:][:k]
	r4, r5 := s[4*lds:][:k], s[5*lds:][:k]
	d = d[:6*k]
	for j := range r0 {
		o := (*[6]float32)(d[j*6:])
		o[0], o[1], o[2], o[3], o[4], o[5] = a*r0[j], a*r1[j], a*r2[j], a*r3[j], a*r4[j], a*r5[j]
	}
}
