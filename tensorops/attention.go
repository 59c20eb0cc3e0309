package tensorops

import (
	"fmt"
	"math"
	"sync"
)

// AttentionParams describes one scaled-dot-product attention call; see Engine.Attention.
type AttentionParams struct {
	Batch, Heads, KVHeads, QLen, KVLen, HeadDim int
	// Row strides of q, k/v and out; 0 means dense (Heads*HeadDim, KVHeads*HeadDim, Heads*HeadDim).
	LDQ, LDKV, LDO int
	// Elements between batches in k and v; 0 means KVLen*LDKV. A larger value lets a KV cache
	// allocated for more positions than KVLen be used in place.
	BatchStrideKV int
	// Multiplies q·k before the bias and masks are added; 0 means 1/sqrt(HeadDim).
	Scale float32
	// Optional additive key mask [Batch, KVLen]: 0 for visible keys, a large negative value
	// (Hugging Face uses finfo(float32).min) for masked ones.
	KeyMask []float32
	// Causal: query i sits at absolute position KVLen-QLen+i and sees keys at positions <= it.
	// Hidden keys get finfo(float32).min added, like Hugging Face's combined 4-D mask (a key
	// hidden by both the causal and the key mask gets it once, not twice).
	Causal bool
	// Optional additive bias [Batch or 1, Heads, QLen, KVLen] (relative-position models).
	Bias []float32
	// Elements between batches in Bias; 0 when Bias is shared across the batch.
	BiasBatchStride int
}

// minFloat32 is torch.finfo(torch.float32).min, the value Hugging Face adds for masked keys.
const minFloat32 = -math.MaxFloat32

// attnGemmMinRows is the query count from which Attention packs K and V and runs the GEMM
// micro-kernels (attention_fused.go); below it (decoding) direct loops over the unpacked
// cache cost less than the packing.
const attnGemmMinRows = 8

type attnDims struct {
	ldq, ldkv, ldo, bsKV int
	group                int
	scale                float32
}

func (p *AttentionParams) check(out, q, k, v []float32) attnDims {
	const op = "Attention"
	if p.Batch < 0 || p.Heads < 0 || p.KVHeads < 0 || p.QLen < 0 || p.KVLen < 0 || p.HeadDim < 0 {
		opPanic(op, "negative dimension in %+v", dimsOnly(p))
	}
	if p.Heads > 0 && (p.KVHeads <= 0 || p.Heads%p.KVHeads != 0) {
		opPanic(op, "Heads=%d is not a multiple of KVHeads=%d", p.Heads, p.KVHeads)
	}
	d := attnDims{ldq: p.LDQ, ldkv: p.LDKV, ldo: p.LDO, bsKV: p.BatchStrideKV, scale: p.Scale}
	qw, kvw := p.Heads*p.HeadDim, p.KVHeads*p.HeadDim
	if d.ldq == 0 {
		d.ldq = qw
	}
	if d.ldkv == 0 {
		d.ldkv = kvw
	}
	if d.ldo == 0 {
		d.ldo = qw
	}
	if d.bsKV == 0 {
		d.bsKV = p.KVLen * d.ldkv
	}
	if d.ldq < qw || d.ldo < qw || d.ldkv < kvw {
		opPanic(op, "strides LDQ=%d LDKV=%d LDO=%d smaller than the rows (%d, %d, %d)", d.ldq, d.ldkv, d.ldo, qw, kvw, qw)
	}
	if d.scale == 0 && p.HeadDim > 0 {
		d.scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
	}
	if p.KVHeads > 0 {
		d.group = p.Heads / p.KVHeads
	}
	if p.Batch == 0 || p.Heads == 0 || p.QLen == 0 {
		return d
	}
	if d.bsKV < p.KVLen*d.ldkv {
		opPanic(op, "BatchStrideKV=%d < KVLen*LDKV=%d", d.bsKV, p.KVLen*d.ldkv)
	}
	rows := p.Batch * p.QLen
	if need := (rows-1)*d.ldq + qw; len(q) < need {
		opPanic(op, "len(q)=%d < %d", len(q), need)
	}
	if need := (rows-1)*d.ldo + qw; len(out) < need {
		opPanic(op, "len(out)=%d < %d", len(out), need)
	}
	if p.KVLen > 0 {
		need := (p.Batch-1)*d.bsKV + (p.KVLen-1)*d.ldkv + kvw
		if len(k) < need {
			opPanic(op, "len(k)=%d < %d", len(k), need)
		}
		if len(v) < need {
			opPanic(op, "len(v)=%d < %d", len(v), need)
		}
	}
	if p.KeyMask != nil && len(p.KeyMask) < p.Batch*p.KVLen {
		opPanic(op, "len(KeyMask)=%d < Batch*KVLen=%d", len(p.KeyMask), p.Batch*p.KVLen)
	}
	if p.Bias != nil {
		need := p.Heads * p.QLen * p.KVLen
		if p.BiasBatchStride != 0 {
			if p.BiasBatchStride < need {
				opPanic(op, "BiasBatchStride=%d < Heads*QLen*KVLen=%d", p.BiasBatchStride, need)
			}
			need += (p.Batch - 1) * p.BiasBatchStride
		}
		if len(p.Bias) < need {
			opPanic(op, "len(Bias)=%d < %d", len(p.Bias), need)
		}
	}
	return d
}

func dimsOnly(p *AttentionParams) string {
	return fmt.Sprintf("Batch=%d Heads=%d KVHeads=%d QLen=%d KVLen=%d HeadDim=%d",
		p.Batch, p.Heads, p.KVHeads, p.QLen, p.KVLen, p.HeadDim)
}

// Attention computes out = softmax(Scale·q·kᵀ + Bias + masks)·v for every batch and query head,
// with the softmax in float32 after max subtraction (Hugging Face "eager" attention). Query head
// h reads KV head h/(Heads/KVHeads). A query that sees no key (every key masked) attends
// uniformly, as PyTorch does with finite masks; with KVLen == 0 its output is zero.
//
// With at least attnGemmMinRows queries (prefill) K and V are packed once per call and every
// (batch, head, query block) runs the GEMM micro-kernels on them (attention_fused.go); with
// fewer (decoding) each (batch, head) runs direct loops over the unpacked cache. Either way
// the pieces are spread over the engine's threads.
func (e *Engine) Attention(out, q, k, v []float32, p AttentionParams) {
	kn := &goKernels
	if e.asm() {
		kn = &kern
	}
	e.attention(out, q, k, v, p, kn)
}

func (e *Engine) attention(out, q, k, v []float32, p AttentionParams, kn *opKernels) {
	d := p.check(out, q, k, v)
	if p.Batch == 0 || p.Heads == 0 || p.QLen == 0 || p.HeadDim == 0 {
		return
	}
	if p.KVLen == 0 {
		for r := 0; r < p.Batch*p.QLen; r++ {
			clear(out[r*d.ldo : r*d.ldo+p.Heads*p.HeadDim])
		}
		return
	}
	if p.QLen >= attnGemmMinRows {
		e.attentionPacked(out, q, k, v, &p, &d, kn)
		return
	}
	heads := p.Batch * p.Heads
	work := func(u int) {
		w := getAttnWorker()
		w.head(kn, out, q, k, v, &p, &d, u/p.Heads, u%p.Heads, 0, p.QLen)
		attnWorkers.Put(w)
	}
	flops := 4 * float64(heads) * float64(p.QLen) * float64(p.KVLen) * float64(p.HeadDim)
	if heads == 1 || flops < 1<<16 {
		for u := 0; u < heads; u++ {
			work(u)
		}
		return
	}
	e.parallelFor(heads, work)
}

// attnWorker holds one goroutine's scratch between calls: scores, and for the packed path
// the packed query block, the packed probabilities and the rows to redo on the direct path.
type attnWorker struct {
	scores, qp, pp []float32
	fallback       []int
}

var attnWorkers sync.Pool

func getAttnWorker() *attnWorker {
	if w, ok := attnWorkers.Get().(*attnWorker); ok {
		return w
	}
	return &attnWorker{}
}

// head computes query rows [i0, i1) of query head h in batch b with direct loops over the
// unpacked k and v (decoding, and the packed path's fully masked rows).
func (w *attnWorker) head(kn *opKernels, out, q, k, v []float32, p *AttentionParams, d *attnDims, b, h, i0, i1 int) {
	n, dh := p.KVLen, p.HeadDim
	rows := i1 - i0
	if cap(w.scores) < rows*n {
		w.scores = make([]float32, rows*n)
	}
	s := w.scores[:rows*n]
	kvh := h / d.group
	qOff := (b*p.QLen+i0)*d.ldq + h*dh
	oOff := (b*p.QLen+i0)*d.ldo + h*dh
	kvOff := b*d.bsKV + kvh*dh
	kh, vh := k[kvOff:], v[kvOff:]

	for r := 0; r < rows; r++ {
		kn.attnScores(s[r*n:(r+1)*n], q[qOff+r*d.ldq:qOff+r*d.ldq+dh], kh, d.ldkv, d.scale)
	}

	var bias []float32
	if p.Bias != nil {
		bias = p.Bias[b*p.BiasBatchStride+h*p.QLen*n:]
	}
	var mask []float32
	if p.KeyMask != nil {
		mask = p.KeyMask[b*n : (b+1)*n]
	}
	for r := 0; r < rows; r++ {
		i := i0 + r
		sr := s[r*n : (r+1)*n]
		if bias != nil {
			for j, bv := range bias[i*n : (i+1)*n] {
				sr[j] += bv
			}
		}
		visible := n
		if p.Causal {
			visible = max(min(n-p.QLen+i+1, n), 0)
		}
		if mask != nil {
			for j, mv := range mask[:visible] {
				sr[j] += mv
			}
		}
		for j := visible; j < n; j++ {
			sr[j] += minFloat32
		}
		kn.softmaxRow(sr)
	}

	for r := 0; r < rows; r++ {
		kn.attnAccum(out[oOff+r*d.ldo:oOff+r*d.ldo+dh], s[r*n:(r+1)*n], vh, d.ldkv)
	}
}

func attnScoresGo(s, q, k []float32, ldk int, scale float32) {
	d := len(q)
	for j := range s {
		s[j] = scale * dot(false, q, k[j*ldk:j*ldk+d])
	}
}

func attnAccumGo(out, p, v []float32, ldv int) {
	clear(out)
	d := len(out)
	for j, pj := range p {
		axpy32(out, v[j*ldv:j*ldv+d], pj)
	}
}

// axpy32 sets y += alpha·x.
func axpy32(y, x []float32, alpha float32) {
	x = x[:len(y)]
	for j := range y {
		y[j] += alpha * x[j]
	}
}
