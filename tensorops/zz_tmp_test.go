package tensorops

import (
	"testing"
	"unsafe"
)

func BenchmarkZZKernel(b *testing.B) {
	const k, ns = 1024, 8
	w := make([]float32, k*16*ns)
	x := make([]float32, k*8)
	y := make([]float32, 8*16*ns)
	fillRand(w, 1)
	fillRand(x, 2)
	wp := unsafe.Pointer(&w[0])
	a := make([]float32, k*12)
	c := make([]float32, 12*32)
	fillRand(a, 3)
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"rows8f32", func() {
			for s := 0; s < ns; s += 2 {
				gemvRows8x32F32(k, &x[0], unsafe.Pointer(&w[s*k*16]), unsafe.Pointer(&w[(s+1)*k*16]), &y[0])
			}
		}},
		{"rows8bf16", func() {
			for s := 0; s < ns; s += 2 {
				gemvRows8x32BF16(k, &x[0], unsafe.Pointer(&w[s*k*8]), unsafe.Pointer(&w[(s+1)*k*8]), &y[0])
			}
		}},
		{"rows8int8", func() {
			for s := 0; s < ns; s += 2 {
				gemvRows8x32Int8(k, &x[0], unsafe.Pointer(&w[s*k*4]), unsafe.Pointer(&w[(s+1)*k*4]), &y[0])
			}
		}},
		{"gemm12x32", func() {
			for s := 0; s < ns; s += 2 {
				sgemmKernel12x32(k, &a[0], &w[s*k*16], &w[(s+1)*k*16], &c[0], 32)
			}
		}},
		{"gemvf32", func() { gemvF32Strips(k, &x[0], wp, &y[0], ns) }},
		{"gemvbf16", func() { gemvBF16Strips(k, &x[0], wp, &y[0], ns) }},
		{"gemvint8", func() { gemvInt8Strips512(k, &x[0], wp, &y[0], ns) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				c.f()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(k*ns), "ns/step")
		})
	}
}
