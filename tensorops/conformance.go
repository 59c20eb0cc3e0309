package tensorops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Backend is one implementation of the tensorops operations (it is a GEMMer too). The conformance suite
// (RunConformance) checks any Backend against float64 reference implementations, in the manner
// of gonum's blas/testblas: the CPU engine with assembly, the same engine built with -tags noasm,
// the pure-Go kernels in an assembly build, and any later accelerator backend (which copies the
// slices to the device and back inside each method) all run the same cases.
//
// Methods have the semantics of the package functions and Engine methods of the same name.
type Backend interface {
	Name() string
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	LayerNorm(dst, x []float32, rows, cols int, gamma, beta []float32, eps float32)
	RMSNorm(dst, x []float32, rows, cols int, weight []float32, eps float32)
	Softmax(x []float32, rows, cols int)
	GELU(x []float32)
	GELUTanh(x []float32)
	SiLU(x []float32)
	SiLUMul(gate, up []float32)
	Tanh(x []float32)
	AddBias(x []float32, rows, cols int, bias []float32)
	Add(dst, a, b []float32)
	Scale(x []float32, s float32)
	Gather(dst, table []float32, cols int, ids []int) error
	RoPE(x []float32, seq, heads, headDim, ld int, positions []int, theta float64)
	Attention(out, q, k, v []float32, p AttentionParams)
	Conv2DPatch(out, img []float32, c, h, w int, weight []float32, outC, patch int, bias []float32)
}

// CPUBackend is the package's own implementation: the engine's GEMM and attention and the
// package-level ops, with assembly where the build and CPU allow it.
type CPUBackend struct{ Engine *Engine }

// NewCPUBackend wraps an engine (nil means Default()).
func NewCPUBackend(e *Engine) CPUBackend {
	if e == nil {
		e = Default()
	}
	return CPUBackend{Engine: e}
}

func (b CPUBackend) Name() string { return fmt.Sprintf("cpu-%dthreads", b.Engine.Threads()) }
func (b CPUBackend) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bb []float32, ldb int, beta float32, c []float32, ldc int) {
	b.Engine.Sgemm(transA, transB, m, n, k, alpha, a, lda, bb, ldb, beta, c, ldc)
}
func (CPUBackend) LayerNorm(dst, x []float32, rows, cols int, gamma, beta []float32, eps float32) {
	LayerNorm(dst, x, rows, cols, gamma, beta, eps)
}
func (CPUBackend) RMSNorm(dst, x []float32, rows, cols int, weight []float32, eps float32) {
	RMSNorm(dst, x, rows, cols, weight, eps)
}
func (CPUBackend) Softmax(x []float32, rows, cols int)                 { Softmax(x, rows, cols) }
func (CPUBackend) GELU(x []float32)                                    { GELU(x) }
func (CPUBackend) GELUTanh(x []float32)                                { GELUTanh(x) }
func (CPUBackend) SiLU(x []float32)                                    { SiLU(x) }
func (CPUBackend) SiLUMul(gate, up []float32)                          { SiLUMul(gate, up) }
func (CPUBackend) Tanh(x []float32)                                    { Tanh(x) }
func (CPUBackend) AddBias(x []float32, rows, cols int, bias []float32) { AddBias(x, rows, cols, bias) }
func (CPUBackend) Add(dst, a, b []float32)                             { Add(dst, a, b) }
func (CPUBackend) Scale(x []float32, s float32)                        { Scale(x, s) }
func (CPUBackend) Gather(dst, table []float32, cols int, ids []int) error {
	return Gather(dst, table, cols, ids)
}
func (CPUBackend) RoPE(x []float32, seq, heads, headDim, ld int, positions []int, theta float64) {
	RoPE(x, seq, heads, headDim, ld, positions, theta)
}
func (b CPUBackend) Attention(out, q, k, v []float32, p AttentionParams) {
	b.Engine.Attention(out, q, k, v, p)
}
func (b CPUBackend) Conv2DPatch(out, img []float32, c, h, w int, weight []float32, outC, patch int, bias []float32) {
	b.Engine.Conv2DPatch(out, img, c, h, w, weight, outC, patch, bias)
}

// Tolerances of the suite: a result r passes against the float64 reference w when
// |r - w| <= atol + rtol·|w|. They allow float32 accumulation (a GPU reduction order, a GEMM's
// blocking) with a margin of 10x or more over what the CPU backend shows, and stay far below what
// a wrong formula gives (tanh-approximate GELU differs from the exact one by up to 4.7e-4).
type tolerance struct{ atol, rtol float64 }

var (
	tolExact   = tolerance{0, 0}       // one float32 add or multiply: must be correctly rounded
	tolElem    = tolerance{1e-6, 4e-6} // activations: within a few float32 ulps
	tolNorm    = tolerance{1e-5, 1e-5} // row reductions over up to ~1k elements in float32
	tolSoftmax = tolerance{1e-7, 1e-5}
	tolRoPE    = tolerance{2e-6, 1e-5}
	tolAttn    = tolerance{2e-5, 1e-4}
	tolConv    = tolerance{1e-5, 1e-5}
)

// Shapes the suite draws from: 1, odd sizes, the 7/37/129 of the issue, and sizes just around
// the vector width (8) and GEMM tiles (6x16) so that every tail path runs.
var confSizes = []int{1, 2, 7, 8, 9, 16, 17, 37, 64, 129}

// RunConformance checks every operation of b against float64 references on random shapes,
// the GEMM through CheckGEMM.
func RunConformance(t *testing.T, b Backend) { runConformance(t, b, true) }

// runConformance lets this package's tests skip the GEMM part, which TestSgemmConformance
// already runs on the same engines.
func runConformance(t *testing.T, b Backend, gemm bool) {
	t.Helper()
	t.Run(b.Name(), func(t *testing.T) {
		if gemm {
			t.Run("Sgemm", func(t *testing.T) { CheckGEMM(t, b) })
		}
		t.Run("LayerNorm", func(t *testing.T) { confLayerNorm(t, b) })
		t.Run("RMSNorm", func(t *testing.T) { confRMSNorm(t, b) })
		t.Run("Softmax", func(t *testing.T) { confSoftmax(t, b) })
		t.Run("Elementwise", func(t *testing.T) { confElementwise(t, b) })
		t.Run("Binary", func(t *testing.T) { confBinary(t, b) })
		t.Run("Gather", func(t *testing.T) { confGather(t, b) })
		t.Run("RoPE", func(t *testing.T) { confRoPE(t, b) })
		t.Run("Attention", func(t *testing.T) { confAttention(t, b) })
		t.Run("Conv2DPatch", func(t *testing.T) { confConv(t, b) })
	})
}

func confRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

func randSlice(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
	}
	return x
}

// checkClose reports the first few elements outside tol and the worst error.
func checkClose(t *testing.T, what string, got []float32, want []float64, tol tolerance) {
	t.Helper()
	if len(got) < len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	worst, worstAt := 0.0, -1
	for i, w := range want {
		g := float64(got[i])
		ok := g == w || math.Abs(g-w) <= tol.atol+tol.rtol*math.Abs(w)
		if math.IsNaN(w) || math.IsNaN(g) {
			ok = math.IsNaN(w) && math.IsNaN(g)
		}
		if !ok {
			if bad < 3 {
				t.Errorf("%s: [%d] = %v, want %v (|diff| %.3g > %.3g + %.3g·|want|)", what, i, g, w, math.Abs(g-w), tol.atol, tol.rtol)
			}
			bad++
		}
		if d := math.Abs(g - w); d > worst && !math.IsInf(w, 0) {
			worst, worstAt = d, i
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values out of tolerance; worst |diff| %.3g at %d", what, bad, len(want), worst, worstAt)
	}
}

func f64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// ---- norms and softmax ----

func refLayerNorm(x []float32, rows, cols int, gamma, beta []float32, eps float32) []float64 {
	y := make([]float64, rows*cols)
	for r := 0; r < rows; r++ {
		row := x[r*cols : (r+1)*cols]
		var s, ss float64
		for _, v := range row {
			s += float64(v)
		}
		mean := s / float64(cols)
		for _, v := range row {
			ss += (float64(v) - mean) * (float64(v) - mean)
		}
		rstd := 1 / math.Sqrt(ss/float64(cols)+float64(eps))
		for j, v := range row {
			o := (float64(v) - mean) * rstd
			if gamma != nil {
				o *= float64(gamma[j])
			}
			if beta != nil {
				o += float64(beta[j])
			}
			y[r*cols+j] = o
		}
	}
	return y
}

func confLayerNorm(t *testing.T, b Backend) {
	r := confRand(2)
	for _, cols := range append(confSizes, 768) {
		for _, rows := range []int{1, 3, 7} {
			for variant := 0; variant < 3; variant++ {
				// An offset mean tests that the variance does not cancel catastrophically.
				x := randSlice(r, rows*cols, 2)
				for i := range x {
					x[i] += 10
				}
				gamma := randSlice(r, cols, 0.2)
				beta := randSlice(r, cols, 0.5)
				for i := range gamma {
					gamma[i]++
				}
				switch variant {
				case 1:
					beta = nil
				case 2:
					gamma, beta = nil, nil
				}
				eps := float32(1e-12)
				if variant == 1 {
					eps = 1e-5
				}
				want := refLayerNorm(x, rows, cols, gamma, beta, eps)
				dst := make([]float32, rows*cols)
				b.LayerNorm(dst, x, rows, cols, gamma, beta, eps)
				checkClose(t, fmt.Sprintf("%dx%d variant %d", rows, cols, variant), dst, want, tolNorm)
				// In place.
				b.LayerNorm(x, x, rows, cols, gamma, beta, eps)
				checkClose(t, fmt.Sprintf("%dx%d variant %d in place", rows, cols, variant), x, want, tolNorm)
			}
		}
	}
}

func confRMSNorm(t *testing.T, b Backend) {
	r := confRand(3)
	for _, cols := range append(confSizes, 896) {
		for _, rows := range []int{1, 3, 7} {
			x := randSlice(r, rows*cols, 3)
			weight := randSlice(r, cols, 0.3)
			for i := range weight {
				weight[i]++
			}
			eps := float32(1e-6)
			want := make([]float64, rows*cols)
			for rr := 0; rr < rows; rr++ {
				var ss float64
				for _, v := range x[rr*cols : (rr+1)*cols] {
					ss += float64(v) * float64(v)
				}
				inv := 1 / math.Sqrt(ss/float64(cols)+float64(eps))
				for j, v := range x[rr*cols : (rr+1)*cols] {
					want[rr*cols+j] = float64(weight[j]) * float64(v) * inv
				}
			}
			dst := make([]float32, rows*cols)
			b.RMSNorm(dst, x, rows, cols, weight, eps)
			checkClose(t, fmt.Sprintf("%dx%d", rows, cols), dst, want, tolNorm)
		}
	}
}

func refSoftmax(x []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	y := make([]float64, len(x))
	if math.IsInf(m, -1) {
		for i := range y {
			y[i] = 1 / float64(len(x))
		}
		return y
	}
	var s float64
	for i, v := range x {
		y[i] = math.Exp(v - m)
		s += y[i]
	}
	for i := range y {
		y[i] /= s
	}
	return y
}

func confSoftmax(t *testing.T, b Backend) {
	r := confRand(4)
	for _, cols := range append(confSizes, 512, 1000) {
		for _, rows := range []int{1, 4} {
			for variant := 0; variant < 4; variant++ {
				x := randSlice(r, rows*cols, 4)
				switch variant {
				case 1: // Hugging Face additive masks: finfo.min on some keys, added in float32
					for i := range x {
						if r.IntN(3) == 0 {
							x[i] += minFloat32
						}
					}
				case 2: // a row masked entirely must come out uniform, not NaN
					for i := range x[:cols] {
						x[i] += minFloat32
					}
					for i := range x[:cols] {
						if i%2 == 0 {
							x[i] = float32(math.Inf(-1))
						}
					}
					if cols > 1 {
						x[1] = minFloat32 // keep one finite entry: -Inf entries then get 0
					}
				case 3: // large logits where exp overflows without max subtraction
					for i := range x {
						x[i] *= 40
					}
				}
				want := make([]float64, 0, rows*cols)
				for rr := 0; rr < rows; rr++ {
					want = append(want, refSoftmax(f64(x[rr*cols:(rr+1)*cols]))...)
				}
				b.Softmax(x, rows, cols)
				checkClose(t, fmt.Sprintf("%dx%d variant %d", rows, cols, variant), x, want, tolSoftmax)
			}
		}
	}
	// A row that is all -Inf.
	x := []float32{float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1))}
	b.Softmax(x, 1, 3)
	checkClose(t, "all -Inf", x, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, tolSoftmax)
}

// ---- elementwise ----

// elemInputs covers the regions each activation's approximation could get wrong: near zero,
// the knee around |x| ~ 1..5, the saturated tails, and values whose float32 exp would overflow.
func elemInputs(r *rand.Rand, n int) []float32 {
	x := randSlice(r, n, 3)
	special := []float32{0, -0.0, 1, -1, 0.5, -0.5, 3, -3, 5.5, -5.5, 9, -9, 15, -15, 30, -30, 89, -89, 100, -100, 1e-4, -1e-4, 1e-30}
	for i, s := range special {
		if i < n {
			x[(i*7919)%n] = s
		}
	}
	return x
}

func confElementwise(t *testing.T, b Backend) {
	sqrt2pi := math.Sqrt(2 / math.Pi)
	ops := []struct {
		name string
		run  func(x []float32)
		ref  func(v float64) float64
	}{
		{"GELU", b.GELU, func(v float64) float64 { return 0.5 * v * math.Erfc(-v/math.Sqrt2) }},
		{"GELUTanh", b.GELUTanh, func(v float64) float64 {
			return 0.5 * v * (1 + math.Tanh(sqrt2pi*(v+0.044715*v*v*v)))
		}},
		{"SiLU", b.SiLU, func(v float64) float64 { return v / (1 + math.Exp(-v)) }},
		{"Tanh", b.Tanh, math.Tanh},
	}
	r := confRand(5)
	for _, op := range ops {
		for _, n := range append(confSizes, 1000, 4099) {
			x := elemInputs(r, n)
			want := make([]float64, n)
			for i, v := range x {
				want[i] = op.ref(float64(v))
			}
			op.run(x)
			checkClose(t, fmt.Sprintf("%s n=%d", op.name, n), x, want, tolElem)
		}
	}
	for _, n := range append(confSizes, 4099) {
		gate := elemInputs(r, n)
		up := randSlice(r, n, 2)
		want := make([]float64, n)
		for i, g := range gate {
			// Hugging Face rounds silu(gate) to float32 before the product.
			s := float32(float64(g) / (1 + math.Exp(-float64(g))))
			want[i] = float64(s) * float64(up[i])
		}
		b.SiLUMul(gate, up)
		checkClose(t, fmt.Sprintf("SiLUMul n=%d", n), gate, want, tolElem)
	}
}

func confBinary(t *testing.T, b Backend) {
	r := confRand(6)
	for _, cols := range confSizes {
		for _, rows := range []int{1, 5} {
			x := randSlice(r, rows*cols, 1)
			bias := randSlice(r, cols, 1)
			want := make([]float64, rows*cols)
			for i := range want {
				want[i] = float64(x[i] + bias[i%cols])
			}
			b.AddBias(x, rows, cols, bias)
			checkClose(t, fmt.Sprintf("AddBias %dx%d", rows, cols), x, want, tolExact)
		}
		n := cols * 3
		a, c := randSlice(r, n, 1), randSlice(r, n, 1)
		want := make([]float64, n)
		for i := range want {
			want[i] = float64(a[i] + c[i])
		}
		dst := make([]float32, n)
		b.Add(dst, a, c)
		checkClose(t, fmt.Sprintf("Add n=%d", n), dst, want, tolExact)
		b.Add(a, a, c)
		checkClose(t, fmt.Sprintf("Add in place n=%d", n), a, want, tolExact)
		for i := range want {
			want[i] = float64(c[i] * 0.125)
		}
		b.Scale(c, 0.125)
		checkClose(t, fmt.Sprintf("Scale n=%d", n), c, want, tolExact)
	}
}

func confGather(t *testing.T, b Backend) {
	r := confRand(7)
	for _, cols := range confSizes {
		rows := 11
		table := randSlice(r, rows*cols, 1)
		ids := []int{0, 10, 3, 3, 7}
		dst := make([]float32, len(ids)*cols)
		if err := b.Gather(dst, table, cols, ids); err != nil {
			t.Fatalf("Gather cols=%d: %v", cols, err)
		}
		want := make([]float64, 0, len(dst))
		for _, id := range ids {
			want = append(want, f64(table[id*cols:(id+1)*cols])...)
		}
		checkClose(t, fmt.Sprintf("Gather cols=%d", cols), dst, want, tolExact)
		for _, bad := range [][]int{{0, 11}, {-1}, {rows * cols}} {
			if err := b.Gather(dst, table, cols, bad); err == nil {
				t.Errorf("Gather cols=%d ids=%v: no error for an id outside [0, %d)", cols, bad, rows)
			}
		}
	}
}

// ---- RoPE ----

// refRoPE rotates with the float32 angles Hugging Face computes (see RoPE) but does the
// trigonometry and rotation in float64.
func refRoPE(x []float32, seq, heads, headDim, ld int, positions []int, theta float64) []float64 {
	y := f64(x)
	half := headDim / 2
	for s := 0; s < seq; s++ {
		for i := 0; i < half; i++ {
			e := float32(2*i) / float32(headDim)
			inv := 1 / float32(math.Pow(float64(float32(theta)), float64(e)))
			a := float64(float32(positions[s]) * inv)
			c, sn := math.Cos(a), math.Sin(a)
			for h := 0; h < heads; h++ {
				o := s*ld + h*headDim
				x1, x2 := float64(x[o+i]), float64(x[o+i+half])
				y[o+i] = x1*c - x2*sn
				y[o+i+half] = x2*c + x1*sn
			}
		}
	}
	return y
}

func confRoPE(t *testing.T, b Backend) {
	r := confRand(8)
	for _, headDim := range []int{2, 8, 14, 64, 128} {
		for _, heads := range []int{1, 3, 4} {
			for _, seq := range []int{1, 7, 37} {
				ld := heads*headDim + (seq % 3) // padded rows leave the gap untouched
				x := randSlice(r, seq*ld, 1)
				pos := make([]int, seq)
				for i := range pos {
					pos[i] = r.IntN(4096)
				}
				pos[0] = 0
				for _, theta := range []float64{10000, 1000000} {
					xc := append([]float32(nil), x...)
					want := refRoPE(xc, seq, heads, headDim, ld, pos, theta)
					b.RoPE(xc, seq, heads, headDim, ld, pos, theta)
					checkClose(t, fmt.Sprintf("seq=%d heads=%d headDim=%d theta=%g", seq, heads, headDim, theta), xc, want, tolRoPE)
				}
			}
		}
	}
}

// ---- attention ----

func refAttention(q, k, v []float32, p AttentionParams) []float64 {
	ldq, ldkv, ldo := p.LDQ, p.LDKV, p.LDO
	if ldq == 0 {
		ldq = p.Heads * p.HeadDim
	}
	if ldkv == 0 {
		ldkv = p.KVHeads * p.HeadDim
	}
	if ldo == 0 {
		ldo = p.Heads * p.HeadDim
	}
	bs := p.BatchStrideKV
	if bs == 0 {
		bs = p.KVLen * ldkv
	}
	scale := float64(p.Scale)
	if p.Scale == 0 {
		scale = 1 / math.Sqrt(float64(p.HeadDim))
	}
	out := make([]float64, p.Batch*p.QLen*ldo)
	group := p.Heads / p.KVHeads
	for b := 0; b < p.Batch; b++ {
		for h := 0; h < p.Heads; h++ {
			kvh := h / group
			for i := 0; i < p.QLen; i++ {
				s := make([]float64, p.KVLen)
				for j := range s {
					var d float64
					for c := 0; c < p.HeadDim; c++ {
						d += float64(q[(b*p.QLen+i)*ldq+h*p.HeadDim+c]) * float64(k[b*bs+j*ldkv+kvh*p.HeadDim+c])
					}
					d *= scale
					if p.Bias != nil {
						d += float64(p.Bias[b*p.BiasBatchStride+(h*p.QLen+i)*p.KVLen+j])
					}
					if p.Causal && j > p.KVLen-p.QLen+i {
						d += minFloat32
					} else if p.KeyMask != nil {
						d += float64(p.KeyMask[b*p.KVLen+j])
					}
					s[j] = d
				}
				pr := refSoftmax(s)
				for c := 0; c < p.HeadDim; c++ {
					var o float64
					for j, pj := range pr {
						o += pj * float64(v[b*bs+j*ldkv+kvh*p.HeadDim+c])
					}
					out[(b*p.QLen+i)*ldo+h*p.HeadDim+c] = o
				}
			}
		}
	}
	return out
}

func confAttention(t *testing.T, b Backend) {
	r := confRand(9)
	type hc struct{ heads, kv int }
	for _, batch := range []int{1, 2} {
		for _, hk := range []hc{{1, 1}, {3, 3}, {4, 2}, {8, 2}} {
			for _, qkv := range [][2]int{{1, 1}, {1, 37}, {7, 7}, {9, 37}, {37, 129}, {2, 129}, {17, 9}, {13, 300}} { // 300 keys: P·V over two k blocks
				for _, headDim := range []int{7, 40, 48, 64} { // 48: a last tile of one 16-wide strip
					qlen, kvlen := qkv[0], qkv[1]
					variant := (batch + hk.heads + qlen + kvlen + headDim) % 4
					p := AttentionParams{Batch: batch, Heads: hk.heads, KVHeads: hk.kv, QLen: qlen, KVLen: kvlen, HeadDim: headDim}
					if variant&1 == 1 { // padded strides and a KV cache longer than KVLen
						p.LDQ = hk.heads*headDim + 3
						p.LDKV = hk.kv*headDim + 5
						p.LDO = hk.heads*headDim + 1
						p.BatchStrideKV = (kvlen + 4) * p.LDKV
					}
					ldq, ldo, bs := p.LDQ, p.LDO, p.BatchStrideKV
					if ldq == 0 {
						ldq, ldo, bs = hk.heads*headDim, hk.heads*headDim, kvlen*hk.kv*headDim
					}
					q := randSlice(r, batch*qlen*ldq, 1)
					k := randSlice(r, batch*bs, 1)
					v := randSlice(r, batch*bs, 1)
					if qlen <= kvlen && variant >= 2 {
						p.Causal = true
					}
					if variant != 0 {
						p.KeyMask = make([]float32, batch*kvlen)
						for i := range p.KeyMask {
							if r.IntN(4) == 0 {
								p.KeyMask[i] = minFloat32
							}
						}
						if batch == 2 { // the second sequence is padding only
							for i := kvlen; i < 2*kvlen; i++ {
								p.KeyMask[i] = minFloat32
							}
						}
					}
					if variant == 3 || (variant == 1 && hk.heads == 3) {
						n := hk.heads * qlen * kvlen
						if batch > 1 && variant == 3 {
							p.BiasBatchStride = n + 2
							p.Bias = randSlice(r, p.BiasBatchStride*batch, 1)
						} else {
							p.Bias = randSlice(r, n, 1)
						}
					}
					if variant == 2 {
						p.Scale = 0.3
					}
					want := refAttention(q, k, v, p)
					out := make([]float32, batch*qlen*ldo)
					for i := range out {
						out[i] = float32(math.NaN()) // the gaps of padded rows must stay as they were
					}
					for i := range want {
						if (i % ldo) >= hk.heads*headDim {
							want[i] = math.NaN()
						}
					}
					b.Attention(out, q, k, v, p)
					checkClose(t, fmt.Sprintf("B=%d H=%d/%d q=%d kv=%d d=%d causal=%v mask=%v bias=%v strided=%v",
						batch, hk.heads, hk.kv, qlen, kvlen, headDim, p.Causal, p.KeyMask != nil, p.Bias != nil, variant&1 == 1),
						out, want, tolAttn)
				}
			}
		}
	}
}

// ---- patch convolution ----

func confConv(t *testing.T, b Backend) {
	r := confRand(10)
	for _, cs := range []struct{ c, h, w, outC, patch int }{
		{3, 16, 16, 8, 16}, {3, 32, 48, 37, 16}, {1, 7, 7, 1, 1}, {2, 9, 13, 5, 4}, {3, 48, 48, 17, 16}, {3, 35, 33, 9, 8},
	} {
		img := randSlice(r, cs.c*cs.h*cs.w, 1)
		kd := cs.c * cs.patch * cs.patch
		weight := randSlice(r, cs.outC*kd, 0.1)
		bias := randSlice(r, cs.outC, 1)
		ph, pw := cs.h/cs.patch, cs.w/cs.patch
		want := make([]float64, ph*pw*cs.outC)
		for py := 0; py < ph; py++ {
			for px := 0; px < pw; px++ {
				for o := 0; o < cs.outC; o++ {
					s := float64(bias[o])
					for ch := 0; ch < cs.c; ch++ {
						for ky := 0; ky < cs.patch; ky++ {
							for kx := 0; kx < cs.patch; kx++ {
								s += float64(img[ch*cs.h*cs.w+(py*cs.patch+ky)*cs.w+px*cs.patch+kx]) *
									float64(weight[o*kd+(ch*cs.patch+ky)*cs.patch+kx])
							}
						}
					}
					want[(py*pw+px)*cs.outC+o] = s
				}
			}
		}
		out := make([]float32, len(want))
		b.Conv2DPatch(out, img, cs.c, cs.h, cs.w, weight, cs.outC, cs.patch, bias)
		checkClose(t, fmt.Sprintf("%+v", cs), out, want, tolConv)
	}
}
