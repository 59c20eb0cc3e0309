package tensorops

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
)

// torch.nn.functional.gelu at a few points, x·Φ(x) written out to float64 precision (values
// independent of math.Erf).
func TestOpsGELUKnownValues(t *testing.T) {
	cases := []struct{ x, want float64 }{
		{-3, -0.0040496940948903}, {-1, -0.15865525393145707}, {-0.5, -0.15426876936299345},
		{0, 0}, {0.5, 0.34573123063700656}, {1, 0.8413447460685429}, {3, 2.99595030590511},
	}
	for _, kn := range []struct {
		name string
		k    *opKernels
	}{{"go", &goKernels}, {"avx2", &avx2Kernels}, {"fast", &kern}} {
		x := make([]float32, len(cases))
		for i, c := range cases {
			x[i] = float32(c.x)
		}
		kn.k.gelu(x)
		for i, c := range cases {
			if d := math.Abs(float64(x[i]) - c.want); d > 1.5e-7*math.Max(1, math.Abs(c.want)) {
				t.Errorf("%s: GELU(%v) = %v, want %v", kn.name, c.x, x[i], c.want)
			}
		}
	}
}

// Every GELU kernel over a dense sweep of [-12, 12] (both tails, where erfc underflows toward
// the clamp) and odd lengths that exercise the 16-, 8- and 1-lane tails, against float64.
func TestOpsGELUSweep(t *testing.T) {
	const n = 24*4096 + 13
	want := make([]float64, n)
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(-12 + 24*float64(i)/n)
		v := float64(src[i])
		want[i] = 0.5 * v * math.Erfc(-v/math.Sqrt2)
	}
	for _, kn := range []struct {
		name string
		k    *opKernels
	}{{"go", &goKernels}, {"avx2", &avx2Kernels}, {"fast", &kern}} {
		for _, m := range []int{n, 16 + 8 + 3, 5} {
			x := append([]float32(nil), src[:m]...)
			kn.k.gelu(x)
			checkClose(t, fmt.Sprintf("%s n=%d", kn.name, m), x, want[:m], tolElem)
		}
	}
}

// Non-finite inputs behave as the float64 formula does in every GELU kernel: +Inf stays +Inf,
// -Inf and NaN give NaN (−Inf·0 in x·Φ(x), as PyTorch gives).
func TestOpsGELUNonFinite(t *testing.T) {
	for _, kn := range []struct {
		name string
		k    *opKernels
	}{{"go", &goKernels}, {"avx2", &avx2Kernels}, {"fast", &kern}} {
		for _, n := range []int{3, 16, 35} { // the tail path and the full-vector path
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(i%3) - 1
			}
			inf, nan := float32(math.Inf(1)), float32(math.NaN())
			x[0], x[1], x[2] = inf, -inf, nan
			kn.k.gelu(x)
			if !math.IsInf(float64(x[0]), 1) || !math.IsNaN(float64(x[1])) || !math.IsNaN(float64(x[2])) {
				t.Errorf("%s n=%d: GELU(+Inf, -Inf, NaN) = %v, %v, %v; want +Inf, NaN, NaN", kn.name, n, x[0], x[1], x[2])
			}
		}
	}
}

// Every softmax kernel on rows of every length class (under 8, 8-15, the 16-lane body with 0-15
// left over), with masked entries (finfo.min added) and large spreads, against float64.
func TestOpsSoftmaxKernels(t *testing.T) {
	r := confRand(31)
	for _, kn := range []struct {
		name string
		k    *opKernels
	}{{"go", &goKernels}, {"avx2", &avx2Kernels}, {"fast", &kern}} {
		for _, n := range []int{1, 5, 8, 13, 16, 17, 31, 32, 40, 128, 129, 300} {
			x := randSlice(r, n, 20)
			for j := 0; j < n; j += 5 {
				x[j] += minFloat32
			}
			want := make([]float64, n)
			mx := math.Inf(-1)
			for _, v := range x {
				mx = math.Max(mx, float64(v))
			}
			sum := 0.0
			for j, v := range x {
				want[j] = math.Exp(float64(v) - mx)
				sum += want[j]
			}
			for j := range want {
				want[j] /= sum
			}
			kn.k.softmaxRow(x)
			checkClose(t, fmt.Sprintf("%s n=%d", kn.name, n), x, want, tolSoftmax)
		}
	}
}

// Hugging Face masks add finfo(float32).min; a row whose keys are all masked must come out
// uniform (as PyTorch's softmax gives), never NaN.
func TestOpsSoftmaxMaskedRows(t *testing.T) {
	x := []float32{
		1, 2, 3 + minFloat32, -4 + minFloat32,
		0.5 + minFloat32, 7 + minFloat32, -2 + minFloat32, minFloat32,
	}
	Softmax(x, 2, 4)
	e1 := math.Exp(-1)
	want := []float64{e1 / (1 + e1), 1 / (1 + e1), 0, 0, 0.25, 0.25, 0.25, 0.25}
	for i, w := range want {
		if math.Abs(float64(x[i])-w) > 1e-7 {
			t.Errorf("x[%d] = %v, want %v", i, x[i], w)
		}
	}
}

func TestOpsRoPEInvFreq(t *testing.T) {
	inv := ropeInvFreq(8, 10000)
	want := []float32{1, 0.1, 0.01, 0.001}
	for i := range want {
		if math.Abs(float64(inv[i]-want[i])) > float64(want[i])*1.2e-7 {
			t.Errorf("inv_freq[%d] = %v, want %v", i, inv[i], want[i])
		}
	}
	// Position 0 is the identity.
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	y := append([]float32(nil), x...)
	RoPE(y, 1, 1, 8, 8, []int{0}, 10000)
	for i := range x {
		if x[i] != y[i] {
			t.Fatalf("RoPE at position 0 changed x: %v -> %v", x, y)
		}
	}
}

func attnRandom(seed uint64, n int) []float32 { return randSlice(confRand(seed), n, 1) }

// Decoding one token at a time against a KV cache must reproduce the rows of a causal prefill,
// whichever of the direct and GEMM paths each side takes.
func TestOpsAttentionDecodeMatchesPrefill(t *testing.T) {
	const (
		T, heads, kvHeads, hd, capacity = 21, 8, 2, 64, 32
	)
	e := NewEngine(2)
	qw, kvw := heads*hd, kvHeads*hd
	q := attnRandom(1, T*qw)
	k := attnRandom(2, capacity*kvw) // a cache with room for more positions than used
	v := attnRandom(3, capacity*kvw)
	full := make([]float32, T*qw)
	e.Attention(full, q, k, v, AttentionParams{Batch: 1, Heads: heads, KVHeads: kvHeads, QLen: T, KVLen: T, HeadDim: hd, Causal: true})
	for pos := 0; pos < T; pos++ {
		out := make([]float32, qw)
		e.Attention(out, q[pos*qw:(pos+1)*qw], k, v, AttentionParams{
			Batch: 1, Heads: heads, KVHeads: kvHeads, QLen: 1, KVLen: pos + 1, HeadDim: hd,
			Causal: true, BatchStrideKV: capacity * kvw,
		})
		for i, o := range out {
			if w := full[pos*qw+i]; math.Abs(float64(o-w)) > 1e-5+1e-5*math.Abs(float64(w)) {
				t.Fatalf("position %d element %d: decode %v, prefill %v", pos, i, o, w)
			}
		}
	}
}

// Grouped KV heads must equal multi-head attention with each KV head repeated for its
// consecutive group of query heads (Hugging Face's repeat_kv).
func TestOpsAttentionGQAEqualsRepeatedKV(t *testing.T) {
	const B, T, heads, kvHeads, hd = 2, 13, 6, 2, 8
	group := heads / kvHeads
	q := attnRandom(4, B*T*heads*hd)
	k := attnRandom(5, B*T*kvHeads*hd)
	v := attnRandom(6, B*T*kvHeads*hd)
	rep := func(x []float32) []float32 {
		y := make([]float32, 0, B*T*heads*hd)
		for r := 0; r < B*T; r++ {
			for h := 0; h < heads; h++ {
				kvh := h / group
				y = append(y, x[r*kvHeads*hd+kvh*hd:r*kvHeads*hd+(kvh+1)*hd]...)
			}
		}
		return y
	}
	mask := make([]float32, B*T)
	mask[T+0], mask[T+1] = minFloat32, minFloat32 // left padding in the second sequence
	e := NewEngine(1)
	got := make([]float32, B*T*heads*hd)
	want := make([]float32, len(got))
	p := AttentionParams{Batch: B, Heads: heads, KVHeads: kvHeads, QLen: T, KVLen: T, HeadDim: hd, Causal: true, KeyMask: mask}
	e.Attention(got, q, k, v, p)
	p.KVHeads = heads
	e.Attention(want, q, rep(k), rep(v), p)
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("element %d: GQA %v, repeated KV %v", i, got[i], want[i])
		}
	}
}

// A loaded model calls Attention from many goroutines on one engine.
func TestOpsAttentionConcurrent(t *testing.T) {
	const B, T, heads, hd = 1, 40, 4, 16
	e := NewEngine(2)
	q := attnRandom(7, B*T*heads*hd)
	k := attnRandom(8, B*T*heads*hd)
	v := attnRandom(9, B*T*heads*hd)
	p := AttentionParams{Batch: B, Heads: heads, KVHeads: heads, QLen: T, KVLen: T, HeadDim: hd}
	want := make([]float32, len(q))
	e.Attention(want, q, k, v, p)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := make([]float32, len(q))
			e.Attention(got, q, k, v, p)
			for i := range got {
				if got[i] != want[i] {
					errs <- "concurrent Attention differs from a serial call"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Fatal(msg)
	}
}

func TestOpsBadArguments(t *testing.T) {
	expectPanic := func(name, want string, f func()) {
		t.Helper()
		defer func() {
			r := recover()
			msg, _ := r.(string)
			if r == nil || !strings.Contains(msg, want) {
				t.Errorf("%s: panic %v, want one mentioning %q", name, r, want)
			}
		}()
		f()
	}
	x := make([]float32, 12)
	expectPanic("LayerNorm short dst", "LayerNorm", func() { LayerNorm(x[:5], x, 3, 4, nil, nil, 1e-5) })
	expectPanic("RMSNorm short weight", "len(weight)", func() { RMSNorm(x, x, 3, 4, x[:3], 1e-6) })
	expectPanic("Softmax short x", "Softmax", func() { Softmax(x, 4, 4) })
	expectPanic("RoPE odd head", "odd", func() { RoPE(x, 1, 3, 3, 9, []int{0}, 1e4) })
	expectPanic("Attention groups", "KVHeads", func() {
		NewEngine(1).Attention(x, x, x, x, AttentionParams{Batch: 1, Heads: 3, KVHeads: 2, QLen: 1, KVLen: 1, HeadDim: 2})
	})
	expectPanic("Attention short k", "len(k)", func() {
		NewEngine(1).Attention(x, x, x[:3], x, AttentionParams{Batch: 1, Heads: 2, KVHeads: 1, QLen: 1, KVLen: 2, HeadDim: 2})
	})
	expectPanic("Conv2DPatch short weight", "len(weight)", func() {
		NewEngine(1).Conv2DPatch(x, x, 1, 2, 2, x[:1], 2, 2, nil)
	})
	err := Gather(x, x, 4, []int{1, 3})
	if err == nil || !strings.Contains(err.Error(), "ids[1]=3") {
		t.Errorf("Gather with an id past the table: err = %v, want one naming ids[1]=3", err)
	}
}

// TestOpsLayerNormKernels: the vector LayerNorm follows the reference row's float64 arithmetic,
// so the two may differ only by the moments' summation order: at most one float32 ulp.
func TestOpsLayerNormKernels(t *testing.T) {
	r := confRand(23)
	for _, cols := range []int{1, 7, 8, 9, 31, 768, 1027} {
		x := randSlice(r, cols, 3)
		for i := range x {
			x[i] += 5 // an offset mean, where a float32 one-pass variance would cancel
		}
		g, b := randSlice(r, cols, 1), randSlice(r, cols, 1)
		want := make([]float32, cols)
		got := make([]float32, cols)
		goKernels.layerNorm(want, x, g, b, 1e-12)
		kern.layerNorm(got, x, g, b, 1e-12)
		for j := range want {
			if d := math.Float32bits(got[j]) - math.Float32bits(want[j]); d+1 > 2 {
				t.Fatalf("cols=%d [%d]: %v, reference %v", cols, j, got[j], want[j])
			}
		}
	}
}
