//go:build amd64 && !noasm

package tensorops

import "unsafe"

//go:noescape
func sgemmKernel6x16(kc int, a, b, c *float32, ldc int)

//go:noescape
func sgemmKernel12x32(kc int, a, b0, b1, c *float32, ldc int, pf unsafe.Pointer, bias *float32)

//go:noescape
func sgemmKernel12x16(kc int, a, b0, b1, c *float32, ldc int)

//go:noescape
func gemvF32Strips(k int, x *float32, w unsafe.Pointer, y *float32, nstrips int)

//go:noescape
func gemvBF16Strips(k int, x *float32, w unsafe.Pointer, y *float32, nstrips int)

//go:noescape
func gemvInt8Strips(k int, x *float32, w unsafe.Pointer, y *float32, nstrips int)

//go:noescape
func gemvInt8Strips512(k int, x *float32, w unsafe.Pointer, y *float32, nstrips int)

//go:noescape
func cvtBF16(n int, src unsafe.Pointer, dst *float32)

//go:noescape
func cvtInt8Strip(kc int, src unsafe.Pointer, scale *float32, dst *float32)

//go:noescape
func packRowStrips(src, dst *float32, n, stride int)

//go:noescape
func saxpyAVX2(n int, alpha float32, x, y *float32)

//go:noescape
func sdotAVX2(n int, x, y *float32) float32

func init() {
	if !detectAVX2FMA() {
		return
	}
	useAsm = true
	kernelName = "avx2+fma"
	if detectAVX512() {
		useAVX512 = true
		kernelName = "avx512f (gemm), avx2+fma"
	}
}

//go:noescape
func gemvRows8x32F32(k int, x *float32, w0, w1 unsafe.Pointer, y *float32)

//go:noescape
func gemvRows8x32BF16(k int, x *float32, w0, w1 unsafe.Pointer, y *float32)

//go:noescape
func gemvRows8x32Int8(k int, x *float32, w0, w1 unsafe.Pointer, y *float32)

//go:noescape
func gemvF32Strips4(k int, x *float32, w unsafe.Pointer, wstride int, y *float32, ystride int, n int)

//go:noescape
func gemvBF16Strips4(k int, x *float32, w unsafe.Pointer, wstride int, y *float32, ystride int, n int)

//go:noescape
func gemvInt8Strips4(k int, x *float32, w unsafe.Pointer, wstride int, y *float32, ystride int, n int)
