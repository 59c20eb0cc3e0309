package tensorops

import (
	"fmt"
	"runtime"
	"testing"
)

func TestZZGemvBig(t *testing.T) {
	const in, out = 1024, 151936
	x := make([]float32, in)
	y := make([]float32, out)
	fillRand(x, 3)
	for _, kind := range []string{"f32", "int8", "bf16"} {
		var l *Linear
		if kind == "bf16" {
			w := make([]float32, out*in)
			fillRand(w, 4)
			h, _ := toBF16(w)
			w = nil
			l = NewLinearBF16(h, out, in, nil)
		} else {
			w := make([]float32, out*in)
			fillRand(w, 4)
			if kind == "f32" {
				l = NewLinear(w, out, in, nil)
			} else {
				l = NewLinearInt8(w, out, in, nil)
			}
		}
		runtime.GC()
		for _, th := range []int{1, 2, 1, 2} {
			e := NewEngine(th)
			var d float64
			if th == 1 {
				d = bestOf(5, func() { e.Forward(l, y, x, 1) }).Seconds()
			} else {
				d = bestOfWall(5, func() { e.Forward(l, y, x, 1) }).Seconds()
			}
			fmt.Printf("big gemv %s th=%d %.1f GB/s\n", kind, th, float64(l.Bytes())/d/1e9)
		}
		l = nil
		runtime.GC()
	}
}
