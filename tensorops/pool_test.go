package tensorops

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// An idle Engine must give its cores back: helpers spin only for spinWindow after a job.
func TestPoolHelpersStopSpinning(t *testing.T) {
	e := NewEngine(3)
	var sum atomic.Int64
	for r := 0; r < 50; r++ {
		e.parallelFor(64, func(i int) { sum.Add(int64(i)) })
	}
	if got, want := sum.Load(), int64(50*63*64/2); got != want {
		t.Fatalf("parallelFor ran %d, want %d", got, want)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.getPool().spinning.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d helpers still spinning long after the last job", e.getPool().spinning.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// Every index runs exactly once, also when parallel regions follow each other faster than
// helpers wake or stop spinning, and when several goroutines share one Engine.
func TestPoolEveryIndexOnce(t *testing.T) {
	e := NewEngine(2)
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func() {
			ok := true
			for r := 0; r < 200; r++ {
				n := 1 + r%37
				hits := make([]atomic.Int32, n)
				e.parallelFor(n, func(i int) { hits[i].Add(1) })
				for i := range hits {
					if hits[i].Load() != 1 {
						ok = false
					}
				}
				if r%50 == 0 {
					time.Sleep(2 * spinWindow) // let the helper park, then wake it again
				}
			}
			done <- ok
		}()
	}
	for g := 0; g < 4; g++ {
		if !<-done {
			t.Fatal("an index ran zero or several times")
		}
	}
}

// Weights of 2 MiB and more live in mappings released when their Linear is collected; using
// and dropping many of them must neither crash nor change results.
func TestLinearMappedWeightsReleased(t *testing.T) {
	const out, in = 1024, 600 // 2.4 MB of float32: above hugeMin
	w := make([]float32, out*in)
	fillRand(w, 9)
	x := make([]float32, 3*in)
	fillRand(x, 10)
	e := NewEngine(2)
	// GEMV (1 row), multi-row GEMV (2) and GEMM (3) sum in different orders: one reference each.
	var want [4][]float32
	ref := NewLinear(w, out, in, nil)
	for rows := 1; rows <= 3; rows++ {
		want[rows] = make([]float32, rows*out)
		e.Forward(ref, want[rows], x, rows)
	}
	ref = nil
	runtime.GC()
	for r := 0; r < 30; r++ {
		y := make([]float32, 3*out)
		rows := 1 + r%3
		var l *Linear
		switch r % 3 {
		case 0:
			l = NewLinear(w, out, in, nil)
		case 1:
			l = NewLinear(w, out, in, nil)
			e.Forward(l, y, x, 1) // GEMV path first
		default:
			l = NewLinear(w, out, in, nil)
		}
		e.Forward(l, y, x, rows)
		for i := 0; i < rows*out; i++ {
			if y[i] != want[rows][i] {
				t.Fatalf("round %d: y[%d] = %v, want %v", r, i, y[i], want[rows][i])
			}
		}
		l = nil
		runtime.GC()
	}
}
