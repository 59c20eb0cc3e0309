package tensorops

import (
	"fmt"
	"math"
)

// Row-wise and elementwise operations. Each public function checks its arguments (a size
// mismatch is a caller bug and panics with a message naming the op and the argument, as the
// GEMM entry points do; Gather's ids are data and get an error) and then runs the kernel.
// The kernels here are the pure-Go reference paths; on amd64 without the noasm tag some hot
// loops are replaced by assembly (see ops_amd64.go), and the conformance suite checks both.

// opKernels are the inner loops that have an assembly fast path. goKernels is the pure-Go
// reference set; kern is what the public functions (and engines not limited to pure Go) use,
// replaced at init by ops_amd64.go when the CPU has AVX2 and FMA and the noasm tag is off.
// Keeping both reachable lets one test binary run the conformance suite against each.
type opKernels struct {
	softmaxRow func(x []float32)
	gelu       func(x []float32)
	geluTanh   func(x []float32)
	silu       func(x []float32)
	siluMul    func(gate, up []float32) // len(up) >= len(gate)
	// Single-query attention: s[j] = scale·q·k_j with k_j = k[j*ldk:][:len(q)], and
	// out = Σ_j p[j]·v_j with v_j = v[j*ldv:][:len(out)].
	attnScores func(s, q, k []float32, ldk int, scale float32)
	attnAccum  func(out, p, v []float32, ldv int)
	rowMax     func(x []float32) float32 // len(x) > 0; NaNs may or may not win
	// pack12 is packPanel12 with alpha 1: rows 0-11 of s (stride lds, k columns) into d as
	// one 12-row GEMM A panel.
	pack12    func(d, s []float32, lds, k int)
	layerNorm func(dst, x, gamma, beta []float32, eps float32) // one row
	add       func(dst, a, b []float32)                        // len(b), len(dst) >= len(a)
}

var (
	goKernels = opKernels{
		softmaxRow: softmaxRowGo, gelu: geluGo, geluTanh: geluTanhGo, silu: siluGo, siluMul: siluMulGo,
		attnScores: attnScoresGo, attnAccum: attnAccumGo, rowMax: rowMaxGo,
		pack12:    func(d, s []float32, lds, k int) { packPanel12(d, s, lds, k, 1) },
		layerNorm: layerNormRow,
		add:       addGo,
	}
	kern = goKernels
	// avx2Kernels is kern without its AVX-512 replacements, so tests reach both.
	avx2Kernels = goKernels
)

func opPanic(op, format string, args ...any) {
	panic(fmt.Sprintf("tensorops: %s: %s", op, fmt.Sprintf(format, args...)))
}

func checkRows(op, name string, x []float32, rows, cols int) {
	if rows < 0 || cols < 0 {
		opPanic(op, "negative shape %dx%d", rows, cols)
	}
	if len(x) < rows*cols {
		opPanic(op, "len(%s)=%d < rows*cols=%d*%d", name, len(x), rows, cols)
	}
}

func checkVec(op, name string, v []float32, n int, optional bool) {
	if v == nil && optional {
		return
	}
	if len(v) < n {
		opPanic(op, "len(%s)=%d < %d", name, len(v), n)
	}
}

// LayerNorm normalizes each row of x [rows, cols] to zero mean and unit (biased) variance, then
// applies gamma and beta (nil means 1 and 0), as torch.nn.LayerNorm. dst may alias x.
func LayerNorm(dst, x []float32, rows, cols int, gamma, beta []float32, eps float32) {
	checkRows("LayerNorm", "x", x, rows, cols)
	checkRows("LayerNorm", "dst", dst, rows, cols)
	checkVec("LayerNorm", "gamma", gamma, cols, true)
	checkVec("LayerNorm", "beta", beta, cols, true)
	for r := 0; r < rows; r++ {
		kern.layerNorm(dst[r*cols:(r+1)*cols], x[r*cols:(r+1)*cols], gamma, beta, eps)
	}
}

// layerNormRow accumulates the moments in float64 (two passes, so no cancellation) and rounds
// each output once; PyTorch accumulates in float32, so the two agree to a few ulps.
func layerNormRow(dst, x, gamma, beta []float32, eps float32) {
	n := len(x)
	if n == 0 {
		return
	}
	mean := sum64(x) / float64(n)
	rstd := 1 / math.Sqrt(sqDev64(x, mean)/float64(n)+float64(eps))
	dst = dst[:n]
	switch {
	case gamma != nil && beta != nil:
		gamma, beta = gamma[:n], beta[:n]
		for j, v := range x {
			dst[j] = float32((float64(v)-mean)*rstd*float64(gamma[j]) + float64(beta[j]))
		}
	case gamma != nil:
		gamma = gamma[:n]
		for j, v := range x {
			dst[j] = float32((float64(v) - mean) * rstd * float64(gamma[j]))
		}
	default:
		for j, v := range x {
			y := (float64(v) - mean) * rstd
			if beta != nil {
				y += float64(beta[j])
			}
			dst[j] = float32(y)
		}
	}
}

// sum64 and sqDev64 (Σ(x−c)²) accumulate in float64 over four independent chains, so the
// loop is not bound by the latency of one dependent add per element.
func sum64(x []float32) float64 {
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(x); j += 4 {
		s0 += float64(x[j])
		s1 += float64(x[j+1])
		s2 += float64(x[j+2])
		s3 += float64(x[j+3])
	}
	for ; j < len(x); j++ {
		s0 += float64(x[j])
	}
	return (s0 + s1) + (s2 + s3)
}

func sqDev64(x []float32, c float64) float64 {
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(x); j += 4 {
		d0, d1 := float64(x[j])-c, float64(x[j+1])-c
		d2, d3 := float64(x[j+2])-c, float64(x[j+3])-c
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; j < len(x); j++ {
		d := float64(x[j]) - c
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

// RMSNorm is Hugging Face's Qwen2RMSNorm / LlamaRMSNorm: variance = mean(x²) in float32,
// y = weight * (x * rsqrt(variance + eps)), with the same float32 rounding steps (weight nil
// means 1). dst may alias x.
func RMSNorm(dst, x []float32, rows, cols int, weight []float32, eps float32) {
	checkRows("RMSNorm", "x", x, rows, cols)
	checkRows("RMSNorm", "dst", dst, rows, cols)
	checkVec("RMSNorm", "weight", weight, cols, true)
	for r := 0; r < rows; r++ {
		rmsNormRow(dst[r*cols:(r+1)*cols], x[r*cols:(r+1)*cols], weight, eps)
	}
}

func rmsNormRow(dst, x, weight []float32, eps float32) {
	n := len(x)
	if n == 0 {
		return
	}
	variance := float32(sqDev64(x, 0) / float64(n))
	r := float32(1 / math.Sqrt(float64(variance+eps)))
	dst = dst[:n]
	if weight == nil {
		for j, v := range x {
			dst[j] = v * r
		}
		return
	}
	weight = weight[:n]
	for j, v := range x {
		dst[j] = weight[j] * float32(v*r)
	}
}

// Softmax replaces each row of x [rows, cols] by its softmax, computed in float32 after
// subtracting the row maximum. A row whose entries are all -Inf (fully masked with infinite
// masks) becomes uniform rather than NaN; rows masked with Hugging Face's finite
// finfo(float32).min already become uniform through the max subtraction, as in PyTorch.
func Softmax(x []float32, rows, cols int) {
	checkRows("Softmax", "x", x, rows, cols)
	softmaxRows(x, rows, cols, kern.softmaxRow)
}

func softmaxRows(x []float32, rows, cols int, f func([]float32)) {
	for r := 0; r < rows; r++ {
		f(x[r*cols : (r+1)*cols])
	}
}

func rowMaxGo(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	return m
}

func softmaxRowGo(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x[1:] {
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
	mf := float64(m)
	var sum float64
	for j, v := range x {
		// The difference is taken in float32 as PyTorch does, so finfo.min-masked entries
		// cancel exactly against a masked maximum.
		e := math.Exp(float64(v - float32(mf)))
		x[j] = float32(e)
		sum += e
	}
	inv := 1 / sum
	for j, v := range x {
		x[j] = float32(float64(v) * inv)
	}
}

// GELU applies the exact GELU of torch.nn.functional.gelu (approximate='none'),
// 0.5·x·(1+erf(x/√2)), in place.
func GELU(x []float32) { kern.gelu(x) }

func geluGo(x []float32) {
	for j, v := range x {
		f := float64(v)
		// 1+erf(x/√2) written as erfc(−x/√2): the same value without cancellation in the
		// negative tail.
		x[j] = float32(0.5 * f * math.Erfc(-f*math.Sqrt2/2))
	}
}

// GELUTanh applies the tanh approximation of GELU (Hugging Face "gelu_new" /
// "gelu_pytorch_tanh"): 0.5·x·(1+tanh(√(2/π)·(x+0.044715·x³))), in place.
func GELUTanh(x []float32) { kern.geluTanh(x) }

// geluTanhGo uses 0.5·x·(1+tanh(u)) = x/(1+e^(−2u)), one exp instead of a tanh.
func geluTanhGo(x []float32) {
	const c = 0.7978845608028654 // √(2/π)
	for j, v := range x {
		f := float64(v)
		x[j] = float32(f / (1 + math.Exp(-2*c*(f+0.044715*f*f*f))))
	}
}

// SiLU applies x·sigmoid(x) in place.
func SiLU(x []float32) { kern.silu(x) }

func siluGo(x []float32) {
	for j, v := range x {
		f := float64(v)
		x[j] = float32(f / (1 + math.Exp(-f)))
	}
}

// SiLUMul computes gate = silu(gate) * up elementwise (the SwiGLU of Llama/Qwen2 MLPs),
// rounding silu to float32 before the product as Hugging Face's act_fn(gate) * up does.
func SiLUMul(gate, up []float32) {
	if len(up) < len(gate) {
		opPanic("SiLUMul", "len(up)=%d < len(gate)=%d", len(up), len(gate))
	}
	kern.siluMul(gate, up[:len(gate)])
}

func siluMulGo(gate, up []float32) {
	up = up[:len(gate)]
	for j, v := range gate {
		f := float64(v)
		gate[j] = float32(f/(1+math.Exp(-f))) * up[j]
	}
}

// Tanh applies tanh in place.
func Tanh(x []float32) {
	for j, v := range x {
		x[j] = float32(math.Tanh(float64(v)))
	}
}

// AddBias adds bias [cols] to every row of x [rows, cols].
func AddBias(x []float32, rows, cols int, bias []float32) {
	checkRows("AddBias", "x", x, rows, cols)
	checkVec("AddBias", "bias", bias, cols, false)
	bias = bias[:cols]
	for r := 0; r < rows; r++ {
		row := x[r*cols : (r+1)*cols]
		for j, b := range bias {
			row[j] += b
		}
	}
}

// Add sets dst = a + b elementwise over len(a) elements; dst may alias a or b.
func Add(dst, a, b []float32) {
	n := len(a)
	if len(b) < n || len(dst) < n {
		opPanic("Add", "len(a)=%d, len(b)=%d, len(dst)=%d", len(a), len(b), len(dst))
	}
	kern.add(dst[:n], a, b[:n])
}

func addGo(dst, a, b []float32) {
	b, dst = b[:len(a)], dst[:len(a)]
	for j, v := range a {
		dst[j] = v + b[j]
	}
}

// Scale multiplies x by s in place.
func Scale(x []float32, s float32) {
	for j := range x {
		x[j] *= s
	}
}

// Gather copies rows ids[i] of table [n, cols] (n = len(table)/cols) into dst[i*cols:]. An id
// outside [0, n) is an error naming its position; dst is then left partly written.
func Gather(dst, table []float32, cols int, ids []int) error {
	if cols <= 0 {
		return fmt.Errorf("tensorops: Gather: cols=%d, want > 0", cols)
	}
	if len(dst) < len(ids)*cols {
		return fmt.Errorf("tensorops: Gather: len(dst)=%d < len(ids)*cols=%d*%d", len(dst), len(ids), cols)
	}
	n := len(table) / cols
	for i, id := range ids {
		if id < 0 || id >= n {
			return fmt.Errorf("tensorops: Gather: ids[%d]=%d outside the table's %d rows", i, id, n)
		}
		copy(dst[i*cols:(i+1)*cols], table[id*cols:(id+1)*cols])
	}
	return nil
}

// RoPE applies rotary position embeddings in the rotate-half convention (GPT-NeoX, Llama,
// Qwen2) in place to x [seq, heads, headDim] whose rows are ld elements apart: for each head,
// out[i] = x[i]·cos − x[i+d/2]·sin and out[i+d/2] = x[i+d/2]·cos + x[i]·sin.
//
// The angles are computed as Hugging Face's Qwen2RotaryEmbedding (v4.39) does, each step
// rounded to float32: inv_freq[i] = 1 / theta^(float32(2i)/headDim), freq = float32(pos) ·
// inv_freq[i], then cos and sin of that float32 angle. Matching those roundings matters: at
// positions in the thousands an angle rounded differently moves cos/sin by far more than 1 ulp.
func RoPE(x []float32, seq, heads, headDim, ld int, positions []int, theta float64) {
	const op = "RoPE"
	if seq < 0 || heads < 0 || headDim < 0 {
		opPanic(op, "negative shape seq=%d heads=%d headDim=%d", seq, heads, headDim)
	}
	if headDim%2 != 0 {
		opPanic(op, "headDim=%d is odd", headDim)
	}
	if ld < heads*headDim {
		opPanic(op, "ld=%d < heads*headDim=%d", ld, heads*headDim)
	}
	if len(positions) < seq {
		opPanic(op, "len(positions)=%d < seq=%d", len(positions), seq)
	}
	if seq == 0 || heads == 0 || headDim == 0 {
		return
	}
	if len(x) < (seq-1)*ld+heads*headDim {
		opPanic(op, "len(x)=%d too short for %d rows of stride %d", len(x), seq, ld)
	}
	half := headDim / 2
	inv := ropeInvFreq(headDim, theta)
	cs := make([]float32, headDim) // cos in [0, half), sin in [half, headDim)
	for s := 0; s < seq; s++ {
		ropeAngles(cs, inv, positions[s])
		row := x[s*ld:]
		for h := 0; h < heads; h++ {
			ropeHead(row[h*headDim:(h+1)*headDim], cs[:half], cs[half:])
		}
	}
}

// ropeInvFreq returns Hugging Face's float32 inv_freq buffer for a head dimension.
func ropeInvFreq(headDim int, theta float64) []float32 {
	half := headDim / 2
	inv := make([]float32, half)
	base := float64(float32(theta))
	for i := range inv {
		e := float32(2*i) / float32(headDim)
		inv[i] = 1 / float32(math.Pow(base, float64(e)))
	}
	return inv
}

func ropeAngles(cs, inv []float32, pos int) {
	half := len(inv)
	p := float32(pos)
	for i, f := range inv {
		a := float64(p * f)
		cs[i] = float32(math.Cos(a))
		cs[half+i] = float32(math.Sin(a))
	}
}

func ropeHead(x, cos, sin []float32) {
	half := len(cos)
	x1, x2 := x[:half], x[half:2*half]
	sin = sin[:half]
	for i, c := range cos {
		a, b := x1[i], x2[i]
		// Explicit conversions keep the compiler from fusing into FMAs: PyTorch rounds q·cos
		// and rotate_half(q)·sin separately before adding.
		x1[i] = float32(a*c) + float32(-b*sin[i])
		x2[i] = float32(b*c) + float32(a*sin[i])
	}
}
