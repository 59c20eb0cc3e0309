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
		for _, no := range []bool{true, false} {
			e := NewEngine(1)
			e.noAVX512 = no
			d1 := bestOf(20, func() { e.Sgemm(false, false, m, n, k, 1, a, k, w, n, 0, c, n) })
			d2 := bestOf(20, func() { e.Forward(lin, c, a, m) })
			fmt.Printf("%v th=1 noavx512=%v sgemm %.1f linear %.1f GFLOP/s (cpu time)\n", sh, no, fl/d1.Seconds()/1e9, fl/d2.Seconds()/1e9)
		}
	}
}
