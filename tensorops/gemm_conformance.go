package tensorops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// GEMMer is anything with Sgemm semantics (row-major BLAS sgemm): this package's Engine, a
// backend, or a wrapper around another library for comparison.
type GEMMer interface {
	Sgemm(transA, transB bool, m, n, k int, alpha float32,
		a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
}

// CheckGEMM tests impl against a float64 reference in the style of gonum's blas/testblas:
// every combination of transposes, sizes 1, 2, 7, 16, 17, 37, 129 (around and off the 6×16
// tile) with k up to past one cache block, padded strides (ld > cols), several alpha/beta
// pairs, C pre-filled with NaN when beta == 0 (BLAS overwrites, never reads, C then), and
// sentinels in the stride padding of C that must survive. One product large enough to cross
// every blocking boundary runs too.
func CheckGEMM(t testing.TB, impl GEMMer) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 11))
	sizes := []int{1, 2, 7, 16, 17, 37, 129}
	ks := []int{1, 7, 37, 129, 300}
	ab := [][2]float32{{1, 0}, {1, 1}, {-0.5, 0.75}, {2, 0}}
	n := 0
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			for _, m := range sizes {
				for _, nn := range sizes {
					for _, k := range ks {
						n++
						pad := (n % 3) * 2 // 0, 2 or 4 columns of stride padding
						checkGEMMCase(t, impl, r, tA, tB, m, nn, k, ab[n%len(ab)][0], ab[n%len(ab)][1], pad)
					}
				}
			}
			if tA == tB {
				checkGEMMCase(t, impl, r, tA, tB, 250, 1030, 300, 1, 0.5, 1)
			}
		}
	}
	// alpha == 0 and k == 0 only scale C.
	checkGEMMCase(t, impl, r, false, false, 7, 9, 5, 0, 0.5, 1)
	checkGEMMCase(t, impl, r, false, true, 7, 9, 0, 1, 2, 0)
}

func checkGEMMCase(t testing.TB, impl GEMMer, r *rand.Rand, tA, tB bool, m, n, k int, alpha, beta float32, pad int) {
	t.Helper()
	ar, ac := m, k
	if tA {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB {
		br, bc = n, k
	}
	lda, ldb, ldc := max(1, ac+pad), bc+pad+1, n+pad
	fill := func(rows, cols, ld int) []float32 {
		x := make([]float32, max(0, (rows-1)*ld+cols))
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return x
	}
	a, b := fill(ar, ac, lda), fill(br, bc, ldb)
	c := fill(m, n, ldc)
	const sentinel = -12345.5
	for i := 0; i < m; i++ {
		for j := n; j < ldc && i*ldc+j < len(c); j++ {
			c[i*ldc+j] = sentinel
		}
	}
	if beta == 0 {
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				c[i*ldc+j] = float32(math.NaN())
			}
		}
	}
	// op(A) by rows and op(B) by columns, in float64, so the reference loop is contiguous.
	opA := make([]float64, m*k)
	opBT := make([]float64, n*k)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			if tA {
				opA[i*k+p] = float64(a[p*lda+i])
			} else {
				opA[i*k+p] = float64(a[i*lda+p])
			}
		}
	}
	for j := 0; j < n; j++ {
		for p := 0; p < k; p++ {
			if tB {
				opBT[j*k+p] = float64(b[j*ldb+p])
			} else {
				opBT[j*k+p] = float64(b[p*ldb+j])
			}
		}
	}
	want := make([]float64, m*n)
	bound := make([]float64, m*n)
	for i := 0; i < m; i++ {
		ar := opA[i*k : (i+1)*k]
		for j := 0; j < n; j++ {
			br := opBT[j*k : (j+1)*k]
			var s, sa float64
			for p, av := range ar {
				v := av * br[p]
				s += v
				sa += math.Abs(v)
			}
			w := float64(alpha) * s
			bd := math.Abs(float64(alpha)) * sa
			if beta != 0 {
				cv := float64(c[i*ldc+j])
				w += float64(beta) * cv
				bd += math.Abs(float64(beta) * cv)
			}
			want[i*n+j], bound[i*n+j] = w, bd
		}
	}
	impl.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	name := fmt.Sprintf("Sgemm(tA=%v tB=%v m=%d n=%d k=%d alpha=%v beta=%v ld pad %d)", tA, tB, m, n, k, alpha, beta, pad)
	// Float32 accumulation in any order: |error| <= (k+2)·u·Σ|terms| with u = 2⁻²⁴; twice
	// that leaves room for the alpha scaling done while packing.
	const u = 1.0 / (1 << 24)
	bad := 0
	for i := 0; i < m; i++ {
		for j := 0; j < ldc && i*ldc+j < len(c); j++ {
			got := c[i*ldc+j]
			if j >= n {
				if got != sentinel && bad < 3 {
					t.Errorf("%s: wrote into stride padding C[%d][%d] = %v", name, i, j, got)
					bad++
				}
				continue
			}
			w := want[i*n+j]
			tol := 2*float64(k+2)*u*bound[i*n+j] + 1e-30
			if d := math.Abs(float64(got) - w); !(d <= tol) {
				if bad < 3 {
					t.Errorf("%s: C[%d][%d] = %v, want %v (|diff| %.3g > %.3g)", name, i, j, got, w, d, tol)
				}
				bad++
			}
		}
	}
}
