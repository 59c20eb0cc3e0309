package tensorops

import (
	"fmt"
	"testing"
)

func TestZZBandwidth(t *testing.T) {
	x := make([]float32, 150<<20)
	fillRand(x, 1)
	for i := 0; i < 3; i++ {
		d := bestOf(3, func() { _ = sdotAVX2(len(x), &x[0], &x[0]) })
		fmt.Printf("sdot stream: %.1f GB/s\n", float64(4*len(x))/d.Seconds()/1e9)
	}
}
