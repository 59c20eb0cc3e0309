//go:build !amd64 || noasm

package tensorops

import "unsafe"

// Without assembly (the noasm tag or another architecture) useAsm stays false and these are
// never called; they exist so the dispatch code compiles unchanged.

func sgemmKernel6x16(kc int, a, b, c *float32, ldc int) { panic("tensorops: no asm") }
func sgemmKernel12x32(kc int, a, b0, b1, c *float32, ldc int, pf unsafe.Pointer, bias *float32) {
	panic("tensorops: no asm")
}
func sgemmKernel12x16(kc int, a, b0, b1, c *float32, ldc int) { panic("tensorops: no asm") }
func gemvF32Strips(k int, x *float32, w unsafe.Pointer, y *float32, nstrips int) {
	panic("tensorops: no asm")
}
func gemvBF16Strips(k int, x *float32, w unsafe.Pointer, y *float32, nstrips int) {
	panic("tensorops: no asm")
}
func gemvInt8Strips(k int, x *float32, w unsafe.Pointer, y *float32, nstrips int) {
	panic("tensorops: no asm")
}
func gemvInt8Strips512(k int, x *float32, w unsafe.Pointer, y *float32, nstrips int) {
	panic("tensorops: no asm")
}
func cvtBF16(n int, src unsafe.Pointer, dst *float32) { panic("tensorops: no asm") }
func cvtInt8Strip(kc int, src unsafe.Pointer, scale *float32, dst *float32) {
	panic("tensorops: no asm")
}
func packRowStrips(src, dst *float32, n, stride int) { panic("tensorops: no asm") }
func saxpyAVX2(n int, alpha float32, x, y *float32)  { panic("tensorops: no asm") }
func sdotAVX2(n int, x, y *float32) float32          { panic("tensorops: no asm") }
func gemvRows8x32F32(k int, x *float32, w0, w1 unsafe.Pointer, y *float32) {
	panic("tensorops: no asm")
}
func gemvRows8x32BF16(k int, x *float32, w0, w1 unsafe.Pointer, y *float32) {
	panic("tensorops: no asm")
}
func gemvRows8x32Int8(k int, x *float32, w0, w1 unsafe.Pointer, y *float32) {
	panic("tensorops: no asm")
}
func gemvF32Strips4(k int, x *float32, w unsafe.Pointer, wstride int, y *float32, ystride int, n int) {
	panic("tensorops: no asm")
}
func gemvBF16Strips4(k int, x *float32, w unsafe.Pointer, wstride int, y *float32, ystride int, n int) {
	panic("tensorops: no asm")
}
func gemvInt8Strips4(k int, x *float32, w unsafe.Pointer, wstride int, y *float32, ystride int, n int) {
	panic("tensorops: no asm")
}
