package tensorops

import "testing"

func TestZZProf(t *testing.T) {
	m, k, n := 128, 768, 3072
	a := make([]float32, m*k)
	w := make([]float32, k*n)
	c := make([]float32, m*n)
	fillRand(a, 1)
	fillRand(w, 2)
	e := NewEngine(1)
	for i := 0; i < 100; i++ {
		e.Sgemm(false, false, m, n, k, 1, a, k, w, n, 0, c, n)
	}
}
