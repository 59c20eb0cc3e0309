package tensorops

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// fillRand fills x with cheap deterministic values in [-1, 1) (benchmarks need volume, not
// statistical quality, and the largest weight has 155M elements).
func fillRand(x []float32, seed uint64) {
	s := seed | 1
	for i := range x {
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		x[i] = float32(int32(s>>32)) / (1 << 31)
	}
}

var benchThreads = []int{1, 2}

// cpuMeter reports a rate per CPU-second alongside the wall-clock one (see processCPU).
type cpuMeter struct{ start time.Duration }

func startCPU(b *testing.B) cpuMeter {
	b.ResetTimer()
	return cpuMeter{processCPU()}
}

func (c cpuMeter) report(b *testing.B, work float64, unit string) {
	b.ReportMetric(work*float64(b.N)/b.Elapsed().Seconds(), unit)
	if d := processCPU() - c.start; d > 0 && c.start > 0 {
		b.ReportMetric(work*float64(b.N)/d.Seconds(), unit+"-per-cpu-s")
	}
}

// withProcs runs f with GOMAXPROCS set to n, so gonum (which sizes its parallelism from
// GOMAXPROCS) runs on the same number of threads as the engine it is compared with.
func withProcs(n int, f func()) {
	old := runtime.GOMAXPROCS(n)
	defer runtime.GOMAXPROCS(old)
	f()
}

// BenchmarkGEMM: C[m×n] = A[m×k]·B[k×n] at encoder shapes. "sgemm" is Engine.Sgemm on plain
// row-major operands (packs both per call), "linear" is Engine.Forward with the weight packed
// once (the model path: B = Wᵀ), "linear-bf16"/"linear-int8" the same with the weight kept as
// BF16 / int8 and widened per block, "gonum" is gonum's pure-Go Sgemm for comparison.
func BenchmarkGEMM(b *testing.B) {
	for _, sh := range [][3]int{{128, 768, 768}, {128, 768, 3072}, {512, 768, 768}, {128, 4096, 1024}} {
		m, k, n := sh[0], sh[1], sh[2]
		a := make([]float32, m*k)
		w := make([]float32, k*n)
		c := make([]float32, m*n)
		fillRand(a, 1)
		fillRand(w, 2)
		flops := 2 * float64(m) * float64(n) * float64(k)
		name := fmt.Sprintf("%dx%dx%d", m, k, n)
		lin := NewLinear(w, n, k, nil) // w read as [n, k]: same work as the [k, n] product
		wh, _ := toBF16(w)
		linBF16 := NewLinearBF16(wh, n, k, nil)
		linInt8 := NewLinearInt8(w, n, k, nil)
		for _, th := range benchThreads {
			e := NewEngine(th)
			b.Run(name+"/sgemm/"+fmt.Sprintf("threads=%d", th), func(b *testing.B) {
				cm := startCPU(b)
				for b.Loop() {
					e.Sgemm(false, false, m, n, k, 1, a, k, w, n, 0, c, n)
				}
				cm.report(b, flops/1e9, "GFLOP/s")
			})
			b.Run(name+"/linear/"+fmt.Sprintf("threads=%d", th), func(b *testing.B) {
				cm := startCPU(b)
				for b.Loop() {
					e.Forward(lin, c, a, m)
				}
				cm.report(b, flops/1e9, "GFLOP/s")
			})
			for _, q := range []struct {
				name string
				l    *Linear
			}{{"linear-bf16", linBF16}, {"linear-int8", linInt8}} {
				b.Run(name+"/"+q.name+"/"+fmt.Sprintf("threads=%d", th), func(b *testing.B) {
					cm := startCPU(b)
					for b.Loop() {
						e.Forward(q.l, c, a, m)
					}
					cm.report(b, flops/1e9, "GFLOP/s")
				})
			}
			b.Run(name+"/gonum/"+fmt.Sprintf("threads=%d", th), func(b *testing.B) {
				withProcs(th, func() {
					impl := gonum.Implementation{}
					cm := startCPU(b)
					for b.Loop() {
						impl.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, w, n, 0, c, n)
					}
					cm.report(b, flops/1e9, "GFLOP/s")
				})
			})
		}
	}
}

// BenchmarkGEMV: decoding, y[rows×out] = x[rows×in]·Wᵀ at rows 1 (GEMV) and 8 (batch-8 decoding,
// the multi-row GEMV), reporting GB/s of weight bytes
// streamed (the bound is memory bandwidth).
func BenchmarkGEMV(b *testing.B) {
	const maxRows = 8
	for _, sh := range [][2]int{{1024, 2816}, {2816, 1024}, {1024, 151936}} {
		in, out := sh[0], sh[1]
		x := make([]float32, maxRows*in)
		y := make([]float32, maxRows*out)
		fillRand(x, 3)
		for _, kind := range []string{"f32", "bf16", "int8"} {
			var lin *Linear
			build := func() {
				if kind == "bf16" {
					h := make([]uint16, out*in)
					s := uint32(12345)
					for i := range h {
						s = s*1664525 + 1013904223
						h[i] = uint16(0x3c00 + (s>>16)&0x7ff) // |w| around 0.01..0.1, random signs below
						h[i] |= uint16(s>>31) << 15
					}
					lin = NewLinearBF16(h, out, in, nil)
					return
				}
				w := make([]float32, out*in)
				fillRand(w, 4)
				if kind == "f32" {
					lin = NewLinear(w, out, in, nil)
				} else {
					lin = NewLinearInt8(w, out, in, nil)
				}
			}
			// rows 8 is batched decoding: the multi-row kernel should stream the weight once,
			// so its GB/s (weight bytes per call) should stay close to the rows-1 figure.
			for _, rows := range []int{1, maxRows} {
				for _, th := range benchThreads {
					e := NewEngine(th)
					b.Run(fmt.Sprintf("%dx%dx%d/%s/threads=%d", rows, in, out, kind, th), func(b *testing.B) {
						if lin == nil {
							build()
							runtime.GC()
						}
						cm := startCPU(b)
						for b.Loop() {
							e.Forward(lin, y, x, rows)
						}
						cm.report(b, float64(lin.Bytes())/1e9, "GB/s")
					})
				}
			}
			lin = nil
			runtime.GC()
		}
	}
}

// BenchmarkGEMMBlocking compares F32 Linear blockings on the AVX-512 kernel alternately, in one
// process: each iteration runs the products of six encoder layers once per blocking, in ABBA
// order, and the figures are per-blocking means. On the shared development VM whole runs a
// minute apart differ by 20-40 %, which hides the 2-10 % effects of blocking; alternating in
// one process cancels most of that. Variants are "kc:mc:nc" (nc 0: gemmNC), from
// CLINFER_BLOCKINGS (default "768:120:0,256:240:0", the current and the previous blocking);
// CLINFER_BLOCKING_SHAPES picks "bert1024", "bert128" or "xlmr128" (default bert1024).
// Run with -benchtime 30x or more; CI runs it once.
func BenchmarkGEMMBlocking(b *testing.B) {
	if !useAVX512 {
		b.Skip("the blocking override applies to the AVX-512 kernel only")
	}
	spec := os.Getenv("CLINFER_BLOCKINGS")
	if spec == "" {
		spec = "768:120:0,256:240:0"
	}
	type blocking struct{ kc, mc, nc int }
	var variants []blocking
	for _, v := range strings.Split(spec, ",") {
		var x blocking
		if _, err := fmt.Sscanf(v, "%d:%d:%d", &x.kc, &x.mc, &x.nc); err != nil || x.kc < 1 || x.mc < 1 || x.nc < 0 {
			b.Fatalf("CLINFER_BLOCKINGS: %q is not kc:mc:nc", v)
		}
		variants = append(variants, x)
	}
	m, shapes := 1024, [][2]int{{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}}
	switch os.Getenv("CLINFER_BLOCKING_SHAPES") {
	case "", "bert1024":
	case "bert128":
		m = 128
	case "xlmr128":
		m, shapes = 128, [][2]int{{1024, 3072}, {1024, 1024}, {1024, 4096}, {4096, 1024}}
	default:
		b.Fatalf("CLINFER_BLOCKING_SHAPES: want bert1024, bert128 or xlmr128")
	}
	var lins []*Linear
	flops := 0.0
	for l := 0; l < 6; l++ {
		for _, s := range shapes {
			w := make([]float32, s[0]*s[1])
			fillRand(w, uint64(7*l+s[1]))
			lins = append(lins, NewLinear(w, s[1], s[0], w[:s[1]]))
			flops += 2 * float64(m*s[0]*s[1])
		}
	}
	a := make([]float32, m*4096)
	c := make([]float32, m*4096)
	fillRand(a, 1)
	e := NewEngine(2)
	defer func() { blockingOverride.kc, blockingOverride.mc, blockingOverride.nc = 0, 0, 0 }()
	spent := make([]time.Duration, len(variants))
	for i := 0; i < b.N; i++ {
		for j := range variants {
			if i%2 == 1 {
				j = len(variants) - 1 - j
			}
			v := variants[j]
			blockingOverride.kc, blockingOverride.mc, blockingOverride.nc = v.kc, v.mc, v.nc
			t0 := time.Now()
			for _, l := range lins {
				e.Forward(l, c, a, m)
			}
			spent[j] += time.Since(t0)
		}
	}
	for j, v := range variants {
		b.ReportMetric(flops*float64(b.N)/spent[j].Seconds()/1e9, fmt.Sprintf("GFLOP/s-%d:%d:%d", v.kc, v.mc, v.nc))
	}
}
