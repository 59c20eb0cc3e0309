package tensorops

import (
	"fmt"
	"testing"
)

// Benchmarks of the non-GEMM ops at the shapes the models run: BERT-base (hidden 768,
// intermediate 3072, 12 heads of 64), Qwen2-0.5B (hidden 896, intermediate 4864, 14 heads / 2 KV
// heads of 64) and Qwen1.5-0.5B decoding (16 heads of 64). Elementwise and row ops report GB/s
// of memory traffic (bytes read + written), attention GFLOP/s and the GB/s of q, k, v and out,
// the patch convolution GFLOP/s.

func reportGBs(b *testing.B, bytes int) {
	b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}

func reportGFLOPs(b *testing.B, flops float64) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkOpsLayerNorm(b *testing.B) {
	for _, s := range [][2]int{{128, 768}, {512, 768}} {
		b.Run(fmt.Sprintf("%dx%d", s[0], s[1]), func(b *testing.B) {
			n := s[0] * s[1]
			x := attnRandom(1, n)
			g, be := attnRandom(2, s[1]), attnRandom(3, s[1])
			dst := make([]float32, n)
			for b.Loop() {
				LayerNorm(dst, x, s[0], s[1], g, be, 1e-12)
			}
			reportGBs(b, 8*n)
		})
	}
}

func BenchmarkOpsRMSNorm(b *testing.B) {
	for _, s := range [][2]int{{1, 896}, {128, 896}} {
		b.Run(fmt.Sprintf("%dx%d", s[0], s[1]), func(b *testing.B) {
			n := s[0] * s[1]
			x := attnRandom(1, n)
			w := attnRandom(2, s[1])
			dst := make([]float32, n)
			for b.Loop() {
				RMSNorm(dst, x, s[0], s[1], w, 1e-6)
			}
			reportGBs(b, 8*n)
		})
	}
}

func BenchmarkOpsSoftmax(b *testing.B) {
	for _, s := range [][2]int{{12 * 128, 128}, {12 * 512, 512}} {
		b.Run(fmt.Sprintf("%dx%d", s[0], s[1]), func(b *testing.B) {
			n := s[0] * s[1]
			src := attnRandom(1, n)
			x := make([]float32, n)
			for b.Loop() {
				copy(x, src)
				Softmax(x, s[0], s[1])
			}
			reportGBs(b, 8*n)
		})
	}
}

func BenchmarkOpsElementwise(b *testing.B) {
	const n = 128 * 3072
	ops := []struct {
		name string
		f    func([]float32)
	}{{"GELU", GELU}, {"GELUTanh", GELUTanh}, {"SiLU", SiLU}, {"Tanh", Tanh}, {"Scale", func(x []float32) { Scale(x, 0.5) }}}
	src := attnRandom(1, n)
	for _, op := range ops {
		b.Run(fmt.Sprintf("%s/%d", op.name, n), func(b *testing.B) {
			x := make([]float32, n)
			for b.Loop() {
				copy(x, src)
				op.f(x)
			}
			reportGBs(b, 8*n)
		})
	}
	b.Run("SiLUMul/128x4864", func(b *testing.B) {
		const n = 128 * 4864
		gsrc, up := attnRandom(1, n), attnRandom(2, n)
		g := make([]float32, n)
		for b.Loop() {
			copy(g, gsrc)
			SiLUMul(g, up)
		}
		reportGBs(b, 12*n)
	})
	b.Run("AddBias/128x3072", func(b *testing.B) {
		x, bias := attnRandom(1, n), attnRandom(2, 3072)
		for b.Loop() {
			AddBias(x, 128, 3072, bias)
		}
		reportGBs(b, 8*n)
	})
	b.Run("Add/128x768", func(b *testing.B) {
		const n = 128 * 768
		x, y := attnRandom(1, n), attnRandom(2, n)
		for b.Loop() {
			Add(x, x, y)
		}
		reportGBs(b, 12*n)
	})
}

func BenchmarkOpsRoPE(b *testing.B) {
	const seq, heads, hd = 128, 14, 64
	x := attnRandom(1, seq*heads*hd)
	pos := make([]int, seq)
	for i := range pos {
		pos[i] = i
	}
	for b.Loop() {
		RoPE(x, seq, heads, hd, heads*hd, pos, 1e6)
	}
	reportGBs(b, 8*seq*heads*hd)
}

func BenchmarkOpsAttention(b *testing.B) {
	cases := []struct {
		name string
		p    AttentionParams
	}{
		{"BERT-base/T128", AttentionParams{Batch: 1, Heads: 12, KVHeads: 12, QLen: 128, KVLen: 128, HeadDim: 64}},
		{"BERT-base/T512", AttentionParams{Batch: 1, Heads: 12, KVHeads: 12, QLen: 512, KVLen: 512, HeadDim: 64}},
		{"Qwen1.5-decode/16h/1x256", AttentionParams{Batch: 1, Heads: 16, KVHeads: 16, QLen: 1, KVLen: 256, HeadDim: 64, Causal: true}},
		{"Qwen2.5-decode/14h-2kv/1x256", AttentionParams{Batch: 1, Heads: 14, KVHeads: 2, QLen: 1, KVLen: 256, HeadDim: 64, Causal: true}},
		{"Qwen2.5-prefill/14h-2kv/T128", AttentionParams{Batch: 1, Heads: 14, KVHeads: 2, QLen: 128, KVLen: 128, HeadDim: 64, Causal: true}},
	}
	for _, threads := range []int{1, 0} {
		e := NewEngine(threads)
		for _, c := range cases {
			p := c.p
			b.Run(fmt.Sprintf("%s/threads=%d", c.name, e.Threads()), func(b *testing.B) {
				q := attnRandom(1, p.Batch*p.QLen*p.Heads*p.HeadDim)
				k := attnRandom(2, p.Batch*p.KVLen*p.KVHeads*p.HeadDim)
				v := attnRandom(3, len(k))
				p.KeyMask = make([]float32, p.Batch*p.KVLen)
				out := make([]float32, len(q))
				e.Attention(out, q, k, v, p) // warm the pools outside the measurement
				cpu := startCPU(b)
				for b.Loop() {
					e.Attention(out, q, k, v, p)
				}
				// Causal cases count the full square too, so the figure shows the masked half skipped.
				cpu.report(b, 4*float64(p.Batch*p.Heads*p.QLen*p.KVLen*p.HeadDim)/1e9, "GFLOP/s")
				// Decoding is bound by reading the KV cache: report that traffic too.
				reportGBs(b, 4*(len(q)+len(k)+len(v)+len(out)))
			})
		}
	}
}

func BenchmarkOpsConv2DPatch(b *testing.B) {
	// LayoutLMv3-base visual embedding: 3x224x224 image, 16x16 patches, 768 channels.
	const c, h, w, outC, patch = 3, 224, 224, 768, 16
	img := attnRandom(1, c*h*w)
	weight := attnRandom(2, outC*c*patch*patch)
	bias := attnRandom(3, outC)
	np := (h / patch) * (w / patch)
	out := make([]float32, np*outC)
	e := Default()
	for b.Loop() {
		e.Conv2DPatch(out, img, c, h, w, weight, outC, patch, bias)
	}
	reportGFLOPs(b, 2*float64(np*outC*c*patch*patch))
}
