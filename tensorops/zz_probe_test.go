package tensorops

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func threadCPU() time.Duration {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

func bestOf(n int, f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	best := time.Hour
	for i := 0; i < n; i++ {
		t0 := threadCPU()
		f()
		if d := threadCPU() - t0; d < best {
			best = d
		}
	}
	return best
}

func TestZZProbe(t *testing.T) {
	for _, sh := range [][3]int{{128, 768, 768}, {128, 768, 3072}, {512, 768, 768}} {
		m, k, n := sh[0], sh[1], sh[2]
		a := make([]float32, m*k)
		w := make([]float32, k*n)
		c := make([]float32, m*n)
		fillRand(a, 1)
		fillRand(w, 2)
		lin := NewLinear(w, n, k, nil)
		fl := 2 * float64(m*n*k)
		for _, no := range []bool{true, false, true, false} {
			e := NewEngine(1)
			e.noAVX512 = no
			d1 := bestOf(20, func() { e.Sgemm(false, false, m, n, k, 1, a, k, w, n, 0, c, n) })
			d2 := bestOf(20, func() { e.Forward(lin, c, a, m) })
			fmt.Printf("%v th=1 noavx512=%v sgemm %.1f linear %.1f GFLOP/s (cpu time)\n", sh, no, fl/d1.Seconds()/1e9, fl/d2.Seconds()/1e9)
		}
	}
	x := make([]float32, 1024)
	y := make([]float32, 2816)
	w := make([]float32, 1024*2816)
	fillRand(w, 3)
	h, _ := toBF16(w)
	for _, l := range []*Linear{NewLinear(w, 2816, 1024, nil), NewLinearBF16(h, 2816, 1024, nil), NewLinearInt8(w, 2816, 1024, nil)} {
		e := NewEngine(1)
		d := bestOf(50, func() { e.Forward(l, y, x, 1) })
		fmt.Printf("gemv kind=%d th=1 %.1f GB/s (cpu time)\n", l.kind, float64(l.Bytes())/d.Seconds()/1e9)
	}
}

func TestZZKernel(t *testing.T) {
	a := make([]float32, 256*6)
	b := make([]float32, 256*16)
	c := make([]float32, 6*16)
	fillRand(a, 1)
	fillRand(b, 2)
	d := bestOf(20, func() {
		for i := 0; i < 10000; i++ {
			sgemmKernel6x16(256, &a[0], &b[0], &c[0], 16)
		}
	})
	fmt.Printf("kernel L1: %.1f GFLOP/s\n", 2*6*16*256*10000/d.Seconds()/1e9)
	a2 := make([]float32, 128*12)
	b2 := make([]float32, 128*32)
	c2 := make([]float32, 12*32)
	d = bestOf(20, func() {
		for i := 0; i < 10000; i++ {
			sgemmKernel12x32(128, &a2[0], &b2[0], &b2[128*16], &c2[0], 32)
		}
	})
	fmt.Printf("kernel512 L1: %.1f GFLOP/s\n", 2*12*32*128*10000/d.Seconds()/1e9)
}

func bestOfWall(n int, f func()) time.Duration {
	best := time.Hour
	for i := 0; i < n; i++ {
		t0 := time.Now()
		f()
		if d := time.Since(t0); d < best {
			best = d
		}
	}
	return best
}
