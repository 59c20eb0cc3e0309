package tensorops

import (
	"fmt"
	"math"
	"unsafe"
)

type weightKind uint8

const (
	kindF32 weightKind = iota
	kindBF16
	kindInt8
)

// Linear is an nn.Linear weight W [Out, In] plus an optional bias [Out], packed once at
// construction into the B-strip layout of the GEMM kernel: strip s holds output channels
// s·16 … s·16+15 over all In inputs, step p at p·16 (channels past Out are zero). Both the
// GEMM (rows > 1) and the GEMV (rows == 1) read that one copy: GEMV streams it front to back,
// the whole weight exactly once per token. Immutable and safe for concurrent use.
type Linear struct {
	Out, In int

	kind   weightKind
	strips int       // ceil(Out/16)
	f32    []float32 // kindF32: strips·In·16
	bf16   []uint16  // kindBF16: strips·In·16
	i8     []int8    // kindInt8: strips·In·16
	scale  []float32 // kindInt8: per output channel, padded to strips·16
	bias   []float32 // nil or [Out]
}

func checkLinearArgs(fn string, nw, out, in int, bias []float32) {
	if out <= 0 || in <= 0 {
		panic(fmt.Sprintf("tensorops: %s: bad shape [%d, %d]", fn, out, in))
	}
	if nw != out*in {
		panic(fmt.Sprintf("tensorops: %s: len(w)=%d, want %d*%d", fn, nw, out, in))
	}
	if bias != nil && len(bias) != out {
		panic(fmt.Sprintf("tensorops: %s: len(bias)=%d, want %d", fn, len(bias), out))
	}
}

func newLinear(kind weightKind, out, in int, bias []float32) *Linear {
	l := &Linear{Out: out, In: in, kind: kind, strips: ceilDiv(out, gemmNR)}
	if bias != nil {
		l.bias = append([]float32(nil), bias...)
	}
	return l
}

// packStrips copies W [out, in] into strip layout (dst pre-zeroed, strips·in·16 long).
func packStrips[T any](dst, w []T, out, in int) {
	for o := 0; o < out; o++ {
		s, r := o/gemmNR, o%gemmNR
		d := dst[s*in*gemmNR:]
		for p, v := range w[o*in : (o+1)*in] {
			d[p*gemmNR+r] = v
		}
	}
}

// NewLinear packs a float32 weight [out, in] (row-major, as checkpoints store it).
func NewLinear(w []float32, out, in int, bias []float32) *Linear {
	checkLinearArgs("NewLinear", len(w), out, in, bias)
	l := newLinear(kindF32, out, in, bias)
	l.f32 = make([]float32, l.strips*in*gemmNR)
	packStrips(l.f32, w, out, in)
	return l
}

// NewLinearBF16 keeps a bfloat16 weight [out, in] as bfloat16 (half the bytes to stream per
// token); products widen it to float32 exactly and accumulate in float32.
func NewLinearBF16(w []uint16, out, in int, bias []float32) *Linear {
	checkLinearArgs("NewLinearBF16", len(w), out, in, bias)
	l := newLinear(kindBF16, out, in, bias)
	l.bf16 = make([]uint16, l.strips*in*gemmNR)
	packStrips(l.bf16, w, out, in)
	return l
}

// NewLinearInt8 quantizes a float32 weight [out, in] symmetrically per output channel:
// scale = max|w_row|/127, q = round(w/scale) in [-127, 127]. Products accumulate x·q in float32
// and apply the channel's scale once at the end (GEMV) or while widening a block (GEMM).
func NewLinearInt8(w []float32, out, in int, bias []float32) *Linear {
	checkLinearArgs("NewLinearInt8", len(w), out, in, bias)
	l := newLinear(kindInt8, out, in, bias)
	q := make([]int8, out*in)
	l.scale = make([]float32, l.strips*gemmNR)
	for o := 0; o < out; o++ {
		row := w[o*in : (o+1)*in]
		var mx float32
		for _, v := range row {
			mx = max(mx, float32(math.Abs(float64(v))))
		}
		if mx == 0 || math.IsInf(float64(mx), 0) || mx != mx {
			// An all-zero row stays zero; a non-finite row cannot be quantized meaningfully
			// and is kept as zero weights with a NaN scale so the output shows it.
			if mx != 0 {
				l.scale[o] = float32(math.NaN())
			}
			continue
		}
		s := mx / 127
		l.scale[o] = s
		qr := q[o*in : (o+1)*in]
		for i, v := range row {
			r := math.RoundToEven(float64(v) / float64(s))
			qr[i] = int8(max(-127, min(127, r)))
		}
	}
	l.i8 = make([]int8, l.strips*in*gemmNR)
	packStrips(l.i8, q, out, in)
	return l
}

// Bytes is the size of the packed weight in memory (what one GEMV streams).
func (l *Linear) Bytes() int {
	switch l.kind {
	case kindBF16:
		return 2 * len(l.bf16)
	case kindInt8:
		return len(l.i8) + 4*len(l.scale)
	}
	return 4 * len(l.f32)
}

func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// convertBlock widens the kc×nc block at (pc, jc) of a BF16 or int8 weight (Wᵀ, k×n) into
// float32 strips of kc steps in dst, int8 scales applied.
func (l *Linear) convertBlock(asm bool, dst []float32, pc, kc, jc, nc int) {
	for s := 0; s < ceilDiv(nc, gemmNR); s++ {
		src := (jc/gemmNR+s)*l.In*gemmNR + pc*gemmNR
		d := dst[s*kc*gemmNR : (s+1)*kc*gemmNR]
		switch l.kind {
		case kindBF16:
			w := l.bf16[src : src+kc*gemmNR]
			if asm {
				cvtBF16(len(w), unsafe.Pointer(unsafe.SliceData(w)), unsafe.SliceData(d))
				continue
			}
			for i, h := range w {
				d[i] = bf16ToF32(h)
			}
		case kindInt8:
			w := l.i8[src : src+kc*gemmNR]
			sc := l.scale[(jc/gemmNR+s)*gemmNR:][:gemmNR]
			if asm {
				cvtInt8Strip(kc, unsafe.Pointer(unsafe.SliceData(w)), unsafe.SliceData(sc), unsafe.SliceData(d))
				continue
			}
			for p := 0; p < kc; p++ {
				for r := 0; r < gemmNR; r++ {
					d[p*gemmNR+r] = float32(w[p*gemmNR+r]) * sc[r]
				}
			}
		}
	}
}

// Forward computes y[rows, Out] = x[rows, In] · Wᵀ + bias. rows == 1 takes the GEMV path.
// y must not overlap x. Concurrent calls may share l and e.
// Short slices panic with a message naming them (a caller bug, as in Sgemm).
func (e *Engine) Forward(l *Linear, y, x []float32, rows int) {
	if rows < 0 || len(x) < rows*l.In || len(y) < rows*l.Out {
		panic(fmt.Sprintf("tensorops: Forward: rows=%d len(x)=%d len(y)=%d for Linear [%d, %d]", rows, len(x), len(y), l.Out, l.In))
	}
	switch {
	case rows == 0:
	case rows == 1:
		e.gemv(l, y[:l.Out], x[:l.In])
	default:
		g := &gemmCall{m: rows, n: l.Out, k: l.In, c: y, ldc: l.Out, lin: l, bias: l.bias}
		e.run(g, false, 1, x, l.In)
	}
}

// gemv computes y = W·x + bias over strips, in parallel over groups of strips.
func (e *Engine) gemv(l *Linear, y, x []float32) {
	asm := e.asm()
	wide := e.gemmKernel() == kernAVX512
	per := min(256, max(4, ceilDiv(l.strips, 4*e.Threads())))
	if l.Bytes() < 1<<18 {
		per = l.strips // too small to be worth a hand-off
	}
	e.parallelFor(ceilDiv(l.strips, per), func(t int) {
		s0 := t * per
		s1 := min(l.strips, s0+per)
		o0, o1 := s0*gemmNR, min(l.Out, s1*gemmNR)
		full := s1 - s0
		if o1-o0 < full*gemmNR {
			full-- // the last strip is partial: it goes through a scratch tile
		}
		yr := y[o0:o1]
		if l.bias != nil && l.kind != kindInt8 {
			copy(yr, l.bias[o0:o1])
		} else {
			clear(yr)
		}
		l.gemvStrips(asm, wide, x, yr[:full*gemmNR], s0, full)
		if full < s1-s0 {
			var tmp [gemmNR]float32
			if l.bias != nil && l.kind != kindInt8 {
				copy(tmp[:], l.bias[o0+full*gemmNR:o1])
			}
			l.gemvStrips(asm, wide, x, tmp[:], s0+full, 1)
			copy(yr[full*gemmNR:], tmp[:])
		}
		if l.kind == kindInt8 {
			sc := l.scale[o0:o1]
			for i := range yr {
				yr[i] *= sc[i]
			}
			if l.bias != nil {
				for i, b := range l.bias[o0:o1] {
					yr[i] += b
				}
			}
		}
	})
}

// gemvStrips adds W[strips s0..s0+n)·x to y (n·16 outputs).
func (l *Linear) gemvStrips(asm, wide bool, x, y []float32, s0, n int) {
	if n == 0 {
		return
	}
	k := l.In
	off := s0 * k * gemmNR
	size := n * k * gemmNR
	y = y[:n*gemmNR]
	if asm {
		var w unsafe.Pointer
		switch l.kind {
		case kindF32:
			w = unsafe.Pointer(unsafe.SliceData(l.f32[off : off+size]))
			gemvF32Strips(k, unsafe.SliceData(x), w, unsafe.SliceData(y), n)
		case kindBF16:
			w = unsafe.Pointer(unsafe.SliceData(l.bf16[off : off+size]))
			gemvBF16Strips(k, unsafe.SliceData(x), w, unsafe.SliceData(y), n)
		case kindInt8:
			w = unsafe.Pointer(unsafe.SliceData(l.i8[off : off+size]))
			if wide {
				gemvInt8Strips512(k, unsafe.SliceData(x), w, unsafe.SliceData(y), n)
			} else {
				gemvInt8Strips(k, unsafe.SliceData(x), w, unsafe.SliceData(y), n)
			}
		}
		return
	}
	x = x[:k]
	for s := 0; s < n; s++ {
		var acc [gemmNR]float32
		base := off + s*k*gemmNR
		switch l.kind {
		case kindF32:
			w := l.f32[base : base+k*gemmNR]
			for p, xv := range x {
				wp := (*[gemmNR]float32)(w[p*gemmNR:])
				for r := range acc {
					acc[r] += xv * wp[r]
				}
			}
		case kindBF16:
			w := l.bf16[base : base+k*gemmNR]
			for p, xv := range x {
				wp := (*[gemmNR]uint16)(w[p*gemmNR:])
				for r := range acc {
					acc[r] += xv * bf16ToF32(wp[r])
				}
			}
		case kindInt8:
			w := l.i8[base : base+k*gemmNR]
			for p, xv := range x {
				wp := (*[gemmNR]int8)(w[p*gemmNR:])
				for r := range acc {
					acc[r] += xv * float32(wp[r])
				}
			}
		}
		ys := y[s*gemmNR : (s+1)*gemmNR]
		for r := range ys {
			ys[r] += acc[r]
		}
	}
}
