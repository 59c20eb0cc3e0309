package tensorops

import (
	"fmt"
	"math"
	"runtime"
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
// s·16 … s·16+15 over all In inputs, step p at p·16 (channels past Out are zero). The GEMM,
// the GEMV (rows == 1) and the multi-row GEMV (a few rows) all read that one copy: the GEMVs
// stream it front to back, the whole weight exactly once per call. Immutable and safe for
// concurrent use.
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
	l.f32 = newBacking[float32](l, l.strips*in*gemmNR)
	packStrips(l.f32, w, out, in)
	return l
}

// NewLinearBF16 keeps a bfloat16 weight [out, in] as bfloat16 (half the bytes to stream per
// token); products widen it to float32 exactly and accumulate in float32.
func NewLinearBF16(w []uint16, out, in int, bias []float32) *Linear {
	checkLinearArgs("NewLinearBF16", len(w), out, in, bias)
	l := newLinear(kindBF16, out, in, bias)
	l.bf16 = newBacking[uint16](l, l.strips*in*gemmNR)
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
		// Plain comparisons rather than the NaN-aware min/max builtins: this loop runs over
		// every weight at load time (about 3x faster for the 0.5B model), and non-finite
		// values are caught by the single !(a <= MaxFloat32) test instead.
		var mx float32
		finite := true
		for _, v := range row {
			a := math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
			if !(a <= math.MaxFloat32) {
				finite = false
			}
			if a > mx {
				mx = a
			}
		}
		if mx == 0 || !finite {
			// An all-zero row stays zero; a non-finite row cannot be quantized meaningfully
			// and is kept as zero weights with a NaN scale so the output shows it.
			if !finite {
				l.scale[o] = float32(math.NaN())
			}
			continue
		}
		s := mx / 127
		l.scale[o] = s
		qr := q[o*in : (o+1)*in]
		for i, v := range row {
			r := math.RoundToEven(float64(v) / float64(s))
			if r > 127 {
				r = 127
			} else if r < -127 {
				r = -127
			}
			qr[i] = int8(r)
		}
	}
	l.i8 = newBacking[int8](l, l.strips*in*gemmNR)
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

// Forward computes y[rows, Out] = x[rows, In] · Wᵀ + bias. rows == 1 takes the GEMV path,
// rows 2..smallRowsMax the multi-row GEMV (see gemvRows), more the GEMM.
// y must not overlap x. Concurrent calls may share l and e.
// Short slices panic with a message naming them (a caller bug, as in Sgemm).
func (e *Engine) Forward(l *Linear, y, x []float32, rows int) {
	e.ForwardEach(l, y, x, rows, nil)
}

// ForwardEach is Forward followed by then(seg, row, col) on segments that cover y[:rows*Out]
// exactly once: seg is y[row*Out+col:][:len(seg)], handed over as soon as its final values
// are stored. An elementwise step after the product (an activation, a residual add) then
// runs on data the GEMM has just written, still in L2, instead of in a second pass over y
// from memory. then is called from the engine's threads, concurrently on disjoint segments;
// nil means none.
func (e *Engine) ForwardEach(l *Linear, y, x []float32, rows int, then func(seg []float32, row, col int)) {
	if rows < 0 || len(x) < rows*l.In || len(y) < rows*l.Out {
		panic(fmt.Sprintf("tensorops: Forward: rows=%d len(x)=%d len(y)=%d for Linear [%d, %d]", rows, len(x), len(y), l.Out, l.In))
	}
	switch {
	case rows == 0:
	case rows == 1:
		e.gemv(l, y[:l.Out], x[:l.In])
	case rows <= smallRowsMax && e.gemmKernel() != kernAVX2:
		e.gemvRows(l, y[:rows*l.Out], x[:rows*l.In], rows)
	default:
		g := &gemmCall{m: rows, n: l.Out, k: l.In, c: y, ldc: l.Out, lin: l, bias: l.bias, then: then}
		e.run(g, false, 1, x, l.In)
		then = nil
	}
	// The GEMV paths are memory-bound on the weight and their rows are few: whole rows here.
	if then != nil {
		for r := 0; r < rows; r++ {
			then(y[r*l.Out:(r+1)*l.Out], r, 0)
		}
	}
	// The packed weight may live outside the Go heap and be unmapped once l is unreachable.
	runtime.KeepAlive(l)
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
	if asm && wide && n >= 4*gemv4MinStrips {
		// Four streams over the four quarters of the run, the remainder one stream.
		q := n / 4
		esz := l.elemSize()
		w := l.raw(off, size)
		xs, ys := unsafe.SliceData(x), unsafe.SliceData(y)
		switch l.kind {
		case kindF32:
			gemvF32Strips4(k, xs, w, q*k*gemmNR*esz, ys, q*gemmNR, q)
		case kindBF16:
			gemvBF16Strips4(k, xs, w, q*k*gemmNR*esz, ys, q*gemmNR, q)
		case kindInt8:
			gemvInt8Strips4(k, xs, w, q*k*gemmNR*esz, ys, q*gemmNR, q)
		}
		if r := n - 4*q; r > 0 {
			l.gemvStrips(asm, wide, x, y[4*q*gemmNR:], s0+4*q, r)
		}
		return
	}
	if asm {
		w, xs, ys := l.raw(off, size), unsafe.SliceData(x), unsafe.SliceData(y)
		switch {
		case l.kind == kindF32:
			gemvF32Strips(k, xs, w, ys, n)
		case l.kind == kindBF16:
			gemvBF16Strips(k, xs, w, ys, n)
		case wide:
			gemvInt8Strips512(k, xs, w, ys, n)
		default:
			gemvInt8Strips(k, xs, w, ys, n)
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

// gemv4MinStrips is the fewest strips per stream for the four-stream GEMV: below it a run is
// short enough (256 KiB of F32 at k = 1024) that the set-up outweighs the extra streams.
const gemv4MinStrips = 2

func (l *Linear) elemSize() int {
	switch l.kind {
	case kindBF16:
		return 2
	case kindInt8:
		return 1
	}
	return 4
}

// raw points at element off of the packed weight, after checking that n elements from there
// are in range (the kernels read them through the pointer).
func (l *Linear) raw(off, n int) unsafe.Pointer {
	switch l.kind {
	case kindBF16:
		return unsafe.Pointer(unsafe.SliceData(l.bf16[off : off+n]))
	case kindInt8:
		return unsafe.Pointer(unsafe.SliceData(l.i8[off : off+n]))
	}
	return unsafe.Pointer(unsafe.SliceData(l.f32[off : off+n]))
}

// smallRowsMax is the largest row count sent to the multi-row GEMV (batched decoding). Up to
// there the product is bound by streaming the weights, which the multi-row kernel does once per
// call; the GEMM would widen BF16/int8 blocks into a float32 buffer and pad rows to its 12-row
// tile. Past it the GEMM's larger register tile wins.
//
// The AVX2-only kernel level keeps the GEMM for these shapes: the multi-row kernel needs the
// 32 zmm registers (16 accumulators, one widened weight step, all 8 rows' broadcasts).
const smallRowsMax = 16

// gemvRowsR is the row group of the multi-row kernel.
const gemvRowsR = 8

// gemvRows computes y[rows, Out] = x·Wᵀ + bias for a few rows: x is interleaved by step into
// 8-row groups (zero rows pad the last group), then every pair of weight strips is read once
// and multiplied by all groups while it is in cache, in parallel over runs of strip pairs.
func (e *Engine) gemvRows(l *Linear, y, x []float32, rows int) {
	asm := e.asm()
	k := l.In
	groups := ceilDiv(rows, gemvRowsR)
	xiBuf := getAP(groups * k * gemvRowsR)
	defer apPool.Put(xiBuf)
	xi := *xiBuf
	for g := 0; g < groups; g++ {
		d := xi[g*k*gemvRowsR : (g+1)*k*gemvRowsR]
		for r := 0; r < gemvRowsR; r++ {
			row := g*gemvRowsR + r
			if row >= rows {
				for p := 0; p < k; p++ {
					d[p*gemvRowsR+r] = 0
				}
				continue
			}
			for p, v := range x[row*k : (row+1)*k] {
				d[p*gemvRowsR+r] = v
			}
		}
	}
	pairs := ceilDiv(l.strips, 2)
	per := min(128, max(2, ceilDiv(pairs, 4*e.Threads())))
	if l.Bytes() < 1<<18 {
		per = pairs
	}
	const w = 2 * gemmNR
	e.parallelFor(ceilDiv(pairs, per), func(t int) {
		var tile [gemvRowsR * w]float32
		for sp := t * per; sp < min(pairs, (t+1)*per); sp++ {
			o0 := sp * w
			n := min(w, l.Out-o0)
			for g := 0; g < groups; g++ {
				l.gemvRowsPair(asm, xi[g*k*gemvRowsR:(g+1)*k*gemvRowsR], 2*sp, &tile)
				for r := 0; r < min(gemvRowsR, rows-g*gemvRowsR); r++ {
					dst := y[(g*gemvRowsR+r)*l.Out+o0:][:n]
					src := tile[r*w:][:n]
					switch {
					case l.kind == kindInt8 && l.bias != nil:
						sc, b := l.scale[o0:o0+n], l.bias[o0:o0+n]
						for i, v := range src {
							dst[i] = v*sc[i] + b[i]
						}
					case l.kind == kindInt8:
						sc := l.scale[o0 : o0+n]
						for i, v := range src {
							dst[i] = v * sc[i]
						}
					case l.bias != nil:
						b := l.bias[o0 : o0+n]
						for i, v := range src {
							dst[i] = v + b[i]
						}
					default:
						copy(dst, src)
					}
				}
			}
		}
	})
}

// gemvRowsPair stores into tile[r][0..31] the products of strips s and s+1 with the 8
// interleaved rows of xi (int8 scale not applied). Past the last strip the second half is
// computed from strip s again and ignored by the caller.
func (l *Linear) gemvRowsPair(asm bool, xi []float32, s int, tile *[gemvRowsR * 2 * gemmNR]float32) {
	k := l.In
	off0 := s * k * gemmNR
	off1 := off0
	if s+1 < l.strips {
		off1 += k * gemmNR
	}
	xi = xi[:k*gemvRowsR]
	if asm {
		switch l.kind {
		case kindF32:
			w0, w1 := l.f32[off0:off0+k*gemmNR], l.f32[off1:off1+k*gemmNR]
			gemvRows8x32F32(k, unsafe.SliceData(xi), unsafe.Pointer(unsafe.SliceData(w0)), unsafe.Pointer(unsafe.SliceData(w1)), &tile[0])
		case kindBF16:
			w0, w1 := l.bf16[off0:off0+k*gemmNR], l.bf16[off1:off1+k*gemmNR]
			gemvRows8x32BF16(k, unsafe.SliceData(xi), unsafe.Pointer(unsafe.SliceData(w0)), unsafe.Pointer(unsafe.SliceData(w1)), &tile[0])
		case kindInt8:
			w0, w1 := l.i8[off0:off0+k*gemmNR], l.i8[off1:off1+k*gemmNR]
			gemvRows8x32Int8(k, unsafe.SliceData(xi), unsafe.Pointer(unsafe.SliceData(w0)), unsafe.Pointer(unsafe.SliceData(w1)), &tile[0])
		}
		return
	}
	for half, off := range [2]int{off0, off1} {
		var acc [gemvRowsR][gemmNR]float32
		var wv [gemmNR]float32
		for p := 0; p < k; p++ {
			switch l.kind {
			case kindF32:
				wv = *(*[gemmNR]float32)(l.f32[off+p*gemmNR:])
			case kindBF16:
				for j, h := range (*[gemmNR]uint16)(l.bf16[off+p*gemmNR:]) {
					wv[j] = bf16ToF32(h)
				}
			case kindInt8:
				for j, q := range (*[gemmNR]int8)(l.i8[off+p*gemmNR:]) {
					wv[j] = float32(q)
				}
			}
			xs := (*[gemvRowsR]float32)(xi[p*gemvRowsR:])
			for r, xv := range xs {
				a := &acc[r]
				for j, wj := range wv {
					a[j] += xv * wj
				}
			}
		}
		for r := range acc {
			copy(tile[r*2*gemmNR+half*gemmNR:], acc[r][:])
		}
	}
}
