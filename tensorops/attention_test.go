package tensorops

import (
	"fmt"
	"math"
	"testing"
)

// TestOpsAttentionKernels runs the attention conformance cases on every micro-kernel the packed
// prefill path can pick, whatever this CPU defaults to: AVX-512 (where present), AVX2 and Go.
func TestOpsAttentionKernels(t *testing.T) {
	type variant struct {
		name    string
		pureGo  bool
		noAVX51 bool
	}
	vs := []variant{{"go", true, false}}
	if useAsm {
		vs = append(vs, variant{"avx2", false, true})
	}
	if useAVX512 {
		vs = append(vs, variant{"avx512", false, false})
	}
	for _, v := range vs {
		threads := []int{1, 3}
		if raceEnabled { // the race detector only needs the concurrent runs
			threads = threads[1:]
		}
		for _, threads := range threads {
			t.Run(fmt.Sprintf("%s/threads=%d", v.name, threads), func(t *testing.T) {
				e := NewEngine(threads)
				e.pureGo, e.noAVX512 = v.pureGo, v.noAVX51
				confAttention(t, NewCPUBackend(e))
			})
		}
	}
}

// TestOpsAttentionCausalMaskedRows: with the causal path computing only the key columns a
// query block can see, a query whose visible keys are all masked must still spread over every
// key (hidden ones included), as Hugging Face's combined mask does, and its neighbours must be
// unaffected.
func TestOpsAttentionCausalMaskedRows(t *testing.T) {
	const heads, n, dh = 2, 40, 16
	p := AttentionParams{Batch: 1, Heads: heads, KVHeads: heads, QLen: n, KVLen: n, HeadDim: dh, Causal: true}
	r := confRand(21)
	q := randSlice(r, n*heads*dh, 1)
	k := randSlice(r, n*heads*dh, 1)
	v := randSlice(r, n*heads*dh, 1)
	p.KeyMask = make([]float32, n)
	for j := 0; j < 5; j++ { // queries 0..4 see only masked keys
		p.KeyMask[j] = minFloat32
	}
	for _, e := range []*Engine{NewEngine(1), NewEngine(2)} {
		out := make([]float32, len(q))
		e.Attention(out, q, k, v, p)
		checkClose(t, "causal+mask", out, refAttention(q, k, v, p), tolAttn)
		// Query 0 attends uniformly over all n keys: its output is the mean of v.
		for c := 0; c < dh; c++ {
			var mean float64
			for j := 0; j < n; j++ {
				mean += float64(v[j*heads*dh+c])
			}
			mean /= n
			if d := float64(out[c]) - mean; d > 1e-5 || d < -1e-5 {
				t.Fatalf("query 0 dim %d = %v, want mean of v %v", c, out[c], mean)
			}
		}
	}
}

// TestOpsPackPanels checks the panel packing (the assembly 12-row transpose included) against
// the layout written out element by element, on every row count, width and stride class the
// attention path uses.
func TestOpsPackPanels(t *testing.T) {
	r := confRand(22)
	for _, kn := range []*opKernels{&goKernels, &avx2Kernels, &kern} {
		for _, mr := range []int{6, 12, 16} {
			for _, m := range []int{1, 5, 12, 13, 31} {
				for _, k := range []int{1, 7, 8, 9, 40, 64, 129} {
					lds := k + m%3
					src := randSlice(r, m*lds, 1)
					panels := ceilDiv(m, mr)
					want := make([]float32, panels*mr*k)
					ref := func(alpha float32) {
						clear(want)
						for i := 0; i < m; i++ {
							for j := 0; j < k; j++ {
								want[(i/mr)*mr*k+j*mr+i%mr] = alpha * src[i*lds+j]
							}
						}
					}
					ref(0.5)
					got := make([]float32, len(want)+1)
					for i := range got {
						got[i] = float32(math.NaN())
					}
					packPanels(kn, got, mr, src, lds, m, k, 0.5)
					for i, w := range want {
						if got[i] != w {
							t.Fatalf("mr=%d m=%d k=%d alpha=0.5: [%d]=%v want %v", mr, m, k, i, got[i], w)
						}
					}
					ref(1)
					packPanels(kn, got, mr, src, lds, m, k, 1)
					for i, w := range want {
						if got[i] != w {
							t.Fatalf("mr=%d m=%d k=%d: [%d]=%v want %v", mr, m, k, i, got[i], w)
						}
					}
					if !math.IsNaN(float64(got[len(want)])) {
						t.Fatalf("mr=%d m=%d k=%d: wrote past the panels", mr, m, k)
					}
				}
			}
		}
	}
}
