// Package tensorops holds the numeric kernels clinfer runs on: a gorgonia/tensor engine whose
// float32 matrix products go to packed, multi-threaded GEMM/GEMV kernels (Go assembly with a
// pure-Go fallback), packed nn.Linear weights in F32, BF16 and int8, and the row-wise ops the
// models need.
package tensorops

import (
	"runtime"
	"sync"
	"sync/atomic"

	"gorgonia.org/tensor"
)

// Engine embeds tensor.StdEng so every operation it does not override keeps gorgonia's
// semantics; float32 matrix products are redirected to this package's kernels.
// An Engine is safe for concurrent use; the zero Engine works and is single-threaded.
type Engine struct {
	tensor.StdEng
	threads  int
	pureGo   bool // use the portable kernels even where assembly is available (tests)
	noAVX512 bool // use the AVX2 GEMM kernel even where AVX-512 is available (tests, benchmarks)

	poolOnce sync.Once
	pool     *workerPool
}

// NewEngine returns an engine that splits large products over the given number of goroutines
// (threads <= 0 means runtime.GOMAXPROCS(0)).
func NewEngine(threads int) *Engine {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	return &Engine{threads: threads}
}

var (
	defaultOnce   sync.Once
	defaultEngine *Engine
)

// Default returns a process-wide engine using runtime.GOMAXPROCS(0) threads at first use.
func Default() *Engine {
	defaultOnce.Do(func() { defaultEngine = NewEngine(0) })
	return defaultEngine
}

func (e *Engine) asm() bool { return useAsm && !e.pureGo }

// gemm kernel levels
const (
	kernGo = iota
	kernAVX2
	kernAVX512
)

func (e *Engine) gemmKernel() int {
	switch {
	case !e.asm():
		return kernGo
	case useAVX512 && !e.noAVX512:
		return kernAVX512
	}
	return kernAVX2
}

// Threads reports how many goroutines a product may be split over.
func (e *Engine) Threads() int { return max(1, e.threads) }

// matView describes a float32 2-D dense operand as BLAS sees it: the stored matrix, its row
// stride, and whether the tensor is a transposed view of it.
type matView struct {
	data       []float32
	rows, cols int // logical shape of the tensor
	ld         int
	trans      bool
}

// asMatView accepts float32 row-major *tensor.Dense matrices whose strides are those of a
// plain matrix (possibly with padded rows) or of a transposed view of one; anything else
// (other dtypes, column-major, odd strides) is left to StdEng.
func asMatView(t tensor.Tensor) (matView, bool) {
	d, ok := t.(*tensor.Dense)
	if !ok || d.Dtype() != tensor.Float32 || !d.DataOrder().IsRowMajor() {
		return matView{}, false
	}
	sh, st := d.Shape(), d.Strides()
	if len(sh) != 2 || len(st) != 2 {
		return matView{}, false
	}
	v := matView{data: d.Float32s(), rows: sh[0], cols: sh[1]}
	switch {
	case st[1] == 1 && (st[0] >= v.cols || v.rows == 1):
		v.ld = max(st[0], v.cols)
	case st[0] == 1 && (st[1] >= v.rows || v.cols == 1):
		v.trans, v.ld = true, max(st[1], v.rows)
	default:
		return matView{}, false
	}
	stored, storedCols := v.rows, v.cols
	if v.trans {
		stored, storedCols = v.cols, v.rows
	}
	if stored > 0 && storedCols > 0 && len(v.data) < (stored-1)*v.ld+storedCols {
		return matView{}, false
	}
	return v, true
}

// fastMatMuls counts MatMul calls served by this package's kernels (tests check that gorgonia
// graphs reach them rather than StdEng's fallback).
var fastMatMuls atomic.Int64

// MatMul computes prealloc = a·b. Float32 row-major matrices (and transposed views of them)
// run on this package's GEMM; every other case goes to tensor.StdEng.
func (e *Engine) MatMul(a, b, prealloc tensor.Tensor) error {
	av, ok1 := asMatView(a)
	bv, ok2 := asMatView(b)
	cv, ok3 := asMatView(prealloc)
	if !ok1 || !ok2 || !ok3 || cv.trans || av.cols != bv.rows || cv.rows != av.rows || cv.cols != bv.cols {
		return e.StdEng.MatMul(a, b, prealloc)
	}
	m, n, k := av.rows, bv.cols, av.cols
	fastMatMuls.Add(1)
	e.Sgemm(av.trans, bv.trans, m, n, k, 1, av.data, av.ld, bv.data, bv.ld, 0, cv.data, cv.ld)
	return nil
}

// vecData returns the elements of a contiguous float32 vector of length n.
func vecData(t tensor.Tensor, n int) ([]float32, bool) {
	d, ok := t.(*tensor.Dense)
	if !ok || d.Dtype() != tensor.Float32 || d.Shape().TotalSize() != n {
		return nil, false
	}
	if st := d.Strides(); n > 1 && (len(st) < 1 || st[len(st)-1] != 1) {
		return nil, false
	}
	v := d.Float32s()
	if len(v) < n {
		return nil, false
	}
	return v[:n], true
}

// MatVecMul computes prealloc = a·b for a float32 matrix a and vector b on this package's
// kernels; other cases go to tensor.StdEng.
func (e *Engine) MatVecMul(a, b, prealloc tensor.Tensor) error {
	av, ok := asMatView(a)
	if ok {
		x, ok1 := vecData(b, av.cols)
		y, ok2 := vecData(prealloc, av.rows)
		if ok1 && ok2 {
			// y (1×m) = xᵀ (1×k) · aᵀ: a plain a is read by rows (dot products), a transposed
			// view by columns (axpy over its stored rows).
			e.Sgemm(false, !av.trans, 1, av.rows, av.cols, 1, x, av.cols, av.data, av.ld, 0, y, av.rows)
			return nil
		}
	}
	return e.StdEng.MatVecMul(a, b, prealloc)
}
