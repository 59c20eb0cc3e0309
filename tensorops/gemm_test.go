package tensorops

import (
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// engines under test: the build's kernels (assembly unless -tags noasm or no AVX2/FMA) on one
// and several threads, the AVX2 GEMM kernel where AVX-512 would be chosen, and the portable
// kernels, so a default `go test` covers every path this CPU can run.
func testEngines() map[string]*Engine {
	goEng := NewEngine(3)
	goEng.pureGo = true
	avx2 := NewEngine(2)
	avx2.noAVX512 = true
	if raceOn {
		return map[string]*Engine{"threads=3": NewEngine(3)}
	}
	return map[string]*Engine{"threads=1": NewEngine(1), "threads=3": NewEngine(3), "avx2": avx2, "purego": goEng}
}

func TestSgemmConformance(t *testing.T) {
	t.Logf("kernels: %s", KernelName())
	for name, e := range testEngines() {
		t.Run(name, func(t *testing.T) { CheckGEMM(t, e) })
	}
}

func TestSgemmBadArgs(t *testing.T) {
	e := NewEngine(1)
	cases := []struct {
		name, want string
		f          func()
	}{
		{"short a", "len(a)", func() {
			e.Sgemm(false, false, 2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
		}},
		{"short c", "len(c)", func() {
			e.Sgemm(false, false, 2, 2, 2, 1, make([]float32, 4), 2, make([]float32, 4), 2, 0, make([]float32, 3), 2)
		}},
		{"small ldb", "ldb", func() {
			e.Sgemm(false, true, 2, 3, 2, 1, make([]float32, 4), 2, make([]float32, 6), 1, 0, make([]float32, 6), 3)
		}},
		{"negative", "negative", func() { e.Sgemm(false, false, -1, 2, 2, 1, nil, 2, nil, 2, 0, nil, 2) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, c.want) {
					t.Fatalf("panic %v, want a message naming %q", r, c.want)
				}
			}()
			c.f()
		})
	}
}

func randF32(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func toBF16(w []float32) ([]uint16, []float32) {
	h := make([]uint16, len(w))
	back := make([]float32, len(w))
	for i, v := range w {
		b := math.Float32bits(v)
		b += 0x7fff + (b>>16)&1 // round to nearest even
		h[i] = uint16(b >> 16)
		back[i] = math.Float32frombits(uint32(h[i]) << 16)
	}
	return h, back
}

// dequantInt8 returns the weights an int8 Linear effectively multiplies by.
func dequantInt8(l *Linear) []float32 {
	w := make([]float32, l.Out*l.In)
	for o := 0; o < l.Out; o++ {
		s, rr := o/gemmNR, o%gemmNR
		for p := 0; p < l.In; p++ {
			w[o*l.In+p] = float32(l.i8[s*l.In*gemmNR+p*gemmNR+rr]) * l.scale[o]
		}
	}
	return w
}

// checkForward compares y against x·wᵀ + bias computed in float64.
func checkForward(t *testing.T, name string, y, x, w, bias []float32, rows, out, in int) {
	t.Helper()
	const u = 1.0 / (1 << 24)
	bad := 0
	for r := 0; r < rows; r++ {
		for o := 0; o < out; o++ {
			var s, sa float64
			for p := 0; p < in; p++ {
				v := float64(x[r*in+p]) * float64(w[o*in+p])
				s += v
				sa += math.Abs(v)
			}
			if bias != nil {
				s += float64(bias[o])
				sa += math.Abs(float64(bias[o]))
			}
			got := float64(y[r*out+o])
			if d := math.Abs(got - s); !(d <= 2*float64(in+3)*u*sa+1e-30) {
				if bad < 3 {
					t.Errorf("%s: y[%d][%d] = %v, want %v", name, r, o, got, s)
				}
				bad++
			}
		}
	}
}

func TestLinearForward(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	shapes := [][3]int{ // rows, out, in
		{1, 1, 1}, {1, 7, 37}, {1, 129, 7}, {1, 37, 300}, {1, 2816, 64}, {1, 300, 1024},
		{1, 1000, 301}, {1, 3000, 67}, {1, 4100, 130}, // the four-stream GEMV, with remainders and odd k
		{2, 17, 37}, {7, 129, 37}, {37, 16, 129}, {129, 33, 300}, {250, 1030, 40},
		{36, 1000, 600}, {24, 56, 513}, {130, 1040, 257}, // several k blocks: stored first block, then accumulated
		{40, 100, 1700}, {250, 70, 1537}, // the same for F32 Linear's deeper k blocks, with several row blocks
	}
	// Every row count around the multi-row GEMV (rows 2..16) and its 8-row groups, on a small
	// odd shape (partial last strip, odd k) and on one large enough to be split over threads.
	for rows := 1; rows <= 17; rows++ {
		shapes = append(shapes, [3]int{rows, 37, 67})
	}
	for _, rows := range []int{2, 5, 8, 9, 16, 17} {
		shapes = append(shapes, [3]int{rows, 700, 401})
	}
	for name, e := range testEngines() {
		for _, sh := range shapes {
			rows, out, in := sh[0], sh[1], sh[2]
			w := randF32(r, out*in)
			x := randF32(r, rows*in)
			var bias []float32
			if (rows+out)%2 == 1 {
				bias = randF32(r, out)
			}
			y := make([]float32, rows*out)
			for i := range y {
				y[i] = float32(math.NaN())
			}
			e.Forward(NewLinear(w, out, in, bias), y, x, rows)
			checkForward(t, name+"/f32", y, x, w, bias, rows, out, in)

			h, wb := toBF16(w)
			clear(y)
			e.Forward(NewLinearBF16(h, out, in, bias), y, x, rows)
			checkForward(t, name+"/bf16", y, x, wb, bias, rows, out, in)

			lq := NewLinearInt8(w, out, in, bias)
			wq := dequantInt8(lq)
			for i := range w {
				o := i / in
				if d := math.Abs(float64(wq[i] - w[i])); d > float64(lq.scale[o])*0.5001 {
					t.Fatalf("int8 quantization error %v > scale/2 = %v at w[%d]", d, lq.scale[o]/2, i)
				}
			}
			clear(y)
			e.Forward(lq, y, x, rows)
			checkForward(t, name+"/int8", y, x, wq, bias, rows, out, in)
		}
	}
}

// ForwardEach must hand every element of y to then exactly once, after its final value is
// stored: then(seg) = 2·seg + row + col/1000 over every path (GEMV, multi-row GEMV, GEMM with
// several chunks and k blocks) must equal that map applied to Forward's result.
func TestLinearForwardEach(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for name, e := range testEngines() {
		for _, sh := range [][3]int{{1, 300, 40}, {5, 129, 37}, {37, 70, 129}, {250, 1030, 300}, {1024, 768, 96}} {
			rows, out, in := sh[0], sh[1], sh[2]
			w, x, bias := randF32(r, out*in), randF32(r, rows*in), randF32(r, out)
			l := NewLinear(w, out, in, bias)
			want := make([]float32, rows*out)
			e.Forward(l, want, x, rows)
			for i := range want {
				want[i] = 2*want[i] + float32(i/out) + float32(i%out)/1000
			}
			got := make([]float32, rows*out)
			seen := make([]atomic.Int32, rows*out)
			e.ForwardEach(l, got, x, rows, func(seg []float32, row, col int) {
				if &seg[0] != &got[row*out+col] {
					t.Errorf("%s %v: segment (%d, %d) is not y[row*Out+col:]", name, sh, row, col)
					return
				}
				for j := range seg {
					seen[row*out+col+j].Add(1)
					seg[j] = 2*seg[j] + float32(row) + float32(col+j)/1000
				}
			})
			for i := range got {
				if n := seen[i].Load(); n != 1 {
					t.Fatalf("%s %v: y[%d] handed over %d times", name, sh, i, n)
				}
				if got[i] != want[i] {
					t.Fatalf("%s %v: y[%d] = %v, want %v", name, sh, i, got[i], want[i])
				}
			}
		}
	}
}

func TestZeroEngine(t *testing.T) {
	var e Engine
	if e.Threads() != 1 {
		t.Fatalf("zero Engine Threads() = %d, want 1", e.Threads())
	}
	if !raceOn {
		CheckGEMM(t, &e)
	}
	w := []float32{1, 2, 3, 4, 5, 6}
	y := make([]float32, 2)
	e.Forward(NewLinear(w, 2, 3, []float32{0.5, -1}), y, []float32{1, 0, -1}, 1)
	if y[0] != -1.5 || y[1] != -3 {
		t.Fatalf("zero Engine Forward = %v, want [-1.5 -3]", y)
	}
}

func TestLinearInt8ZeroRow(t *testing.T) {
	w := []float32{0, 0, 0, 1, -2, 3}
	l := NewLinearInt8(w, 2, 3, nil)
	y := make([]float32, 2)
	NewEngine(1).Forward(l, y, []float32{1, 1, 1}, 1)
	// w = [1 -2 3] quantizes with scale 3/127 to within scale/2 per weight.
	if y[0] != 0 || math.Abs(float64(y[1]-2)) > 3*1.5/127 {
		t.Fatalf("y = %v, want [0 ~2]", y)
	}
}

// A non-finite weight row cannot be quantized; its outputs must show it, not be silently wrong.
func TestLinearInt8NonFinite(t *testing.T) {
	w := []float32{1, float32(math.NaN()), 3, 1, -2, 3}
	y := make([]float32, 2)
	NewEngine(1).Forward(NewLinearInt8(w, 2, 3, nil), y, []float32{1, 1, 1}, 1)
	if !math.IsNaN(float64(y[0])) || math.IsNaN(float64(y[1])) {
		t.Fatalf("y = %v, want [NaN ~2]", y)
	}
}

// Concurrent Forward calls on one shared Linear and Engine (run with -race).
func TestLinearConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const out, in = 200, 96
	w := randF32(r, out*in)
	lins := []*Linear{NewLinear(w, out, in, nil), NewLinearBF16(make([]uint16, out*in), out, in, nil), NewLinearInt8(w, out, in, nil)}
	e := NewEngine(2)
	for _, l := range lins {
		for _, rows := range []int{1, 13} {
			x := randF32(r, rows*in)
			want := make([]float32, rows*out)
			e.Forward(l, want, x, rows)
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					y := make([]float32, rows*out)
					for it := 0; it < 5; it++ {
						e.Forward(l, y, x, rows)
						for i := range y {
							if y[i] != want[i] {
								t.Errorf("concurrent Forward differs at %d: %v vs %v", i, y[i], want[i])
								return
							}
						}
					}
				}()
			}
			wg.Wait()
		}
	}
}

// countingEngine records that MatMul reached the package's kernel.
type countingEngine struct {
	*Engine
	mu    sync.Mutex
	calls int
}

func (c *countingEngine) MatMul(a, b, prealloc tensor.Tensor) error {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.Engine.MatMul(a, b, prealloc)
}

func refMatMul(a, b []float32, m, n, k int) []float64 {
	c := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			for p := 0; p < k; p++ {
				c[i*n+j] += float64(a[i*k+p]) * float64(b[p*n+j])
			}
		}
	}
	return c
}

func closeTo(t *testing.T, what string, got []float32, want []float64, k int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-5*float64(k) {
			t.Fatalf("%s: [%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestEngineTensorMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	const m, n, k = 37, 23, 29
	a, b := randF32(r, m*k), randF32(r, k*n)
	want := refMatMul(a, b, m, n, k)
	e := NewEngine(2)

	ta := tensor.New(tensor.WithShape(m, k), tensor.WithBacking(append([]float32(nil), a...)), tensor.WithEngine(e))
	tb := tensor.New(tensor.WithShape(k, n), tensor.WithBacking(append([]float32(nil), b...)), tensor.WithEngine(e))
	c, err := tensor.MatMul(ta, tb)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "MatMul", c.Data().([]float32), want, k)

	// Transposed views: (bᵀ)ᵀ stored as [n, k] and aᵀ stored as [k, m].
	bt := make([]float32, n*k)
	for p := 0; p < k; p++ {
		for j := 0; j < n; j++ {
			bt[j*k+p] = b[p*n+j]
		}
	}
	at := make([]float32, k*m)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			at[p*m+i] = a[i*k+p]
		}
	}
	tat := tensor.New(tensor.WithShape(k, m), tensor.WithBacking(at), tensor.WithEngine(e))
	tbt := tensor.New(tensor.WithShape(n, k), tensor.WithBacking(bt), tensor.WithEngine(e))
	if err := tat.T(); err != nil {
		t.Fatal(err)
	}
	if err := tbt.T(); err != nil {
		t.Fatal(err)
	}
	if v, ok := asMatView(tat); !ok || !v.trans {
		t.Fatalf("transposed view not recognised: %+v %v", v, ok)
	}
	fast0 := fastMatMuls.Load()
	c2, err := tensor.MatMul(tat, tbt)
	if err != nil {
		t.Fatal(err)
	}
	if fastMatMuls.Load() == fast0 {
		t.Fatal("MatMul of transposed views fell back to StdEng")
	}
	closeTo(t, "MatMul(transposed views)", c2.Data().([]float32), want, k)

	// MatVecMul on a plain and a transposed matrix.
	x := randF32(r, k)
	wantV := refMatMul(a, x, m, 1, k)
	tx := tensor.New(tensor.WithShape(k), tensor.WithBacking(x), tensor.WithEngine(e))
	v, err := tensor.MatVecMul(ta, tx)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "MatVecMul", v.Data().([]float32), wantV, k)
	v2, err := tensor.MatVecMul(tat, tx)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "MatVecMul(transposed)", v2.Data().([]float32), wantV, k)

	// A sliced view (rows 3..9, columns 2..k of a) keeps the parent's row stride.
	sv, err := ta.Slice(tensor.S(3, 10), tensor.S(2, k))
	if err != nil {
		t.Fatal(err)
	}
	tb2 := tensor.New(tensor.WithShape(k-2, n), tensor.WithBacking(append([]float32(nil), b[2*n:]...)), tensor.WithEngine(e))
	c3, err := tensor.MatMul(sv, tb2)
	if err != nil {
		t.Fatal(err)
	}
	wantS := make([]float64, 7*n)
	for i := 0; i < 7; i++ {
		for j := 0; j < n; j++ {
			for p := 2; p < k; p++ {
				wantS[i*n+j] += float64(a[(i+3)*k+p]) * float64(b[p*n+j])
			}
		}
	}
	closeTo(t, "MatMul(sliced view)", c3.Data().([]float32), wantS, k)

	// float64 falls back to StdEng.
	a64 := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{1, 2, 3, 4}), tensor.WithEngine(e))
	b64 := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{5, 6, 7, 8}), tensor.WithEngine(e))
	c64, err := tensor.MatMul(a64, b64)
	if err != nil {
		t.Fatal(err)
	}
	if got := c64.Data().([]float64); got[0] != 19 || got[3] != 50 {
		t.Fatalf("float64 MatMul = %v", got)
	}
}

func TestEngineGorgoniaGraph(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	const m, n, k = 9, 33, 17
	a, b := randF32(r, m*k), randF32(r, k*n)
	want := refMatMul(a, b, m, n, k)
	ce := &countingEngine{Engine: NewEngine(2)}

	g := gorgonia.NewGraph()
	x := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(m, k), gorgonia.WithName("x"))
	w := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(k, n), gorgonia.WithName("w"))
	y, err := gorgonia.Mul(x, w)
	if err != nil {
		t.Fatal(err)
	}
	// A transposed operand inside the graph too: yᵀ·(x) is [n, k] from y [m, n] and x [m, k].
	z, err := gorgonia.Mul(gorgonia.Must(gorgonia.Transpose(y)), x)
	if err != nil {
		t.Fatal(err)
	}
	// Elementwise ops are StdEng's, promoted through the embedding.
	sum, err := gorgonia.Add(y, y)
	if err != nil {
		t.Fatal(err)
	}
	xt := tensor.New(tensor.WithShape(m, k), tensor.WithBacking(a), tensor.WithEngine(ce))
	wt := tensor.New(tensor.WithShape(k, n), tensor.WithBacking(b), tensor.WithEngine(ce))
	if err := gorgonia.Let(x, xt); err != nil {
		t.Fatal(err)
	}
	if err := gorgonia.Let(w, wt); err != nil {
		t.Fatal(err)
	}
	fast0 := fastMatMuls.Load()
	vm := gorgonia.NewTapeMachine(g, gorgonia.WithEngine(ce))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	// The tape machine may reuse y's buffer for the Add once y's readers ran, so y is checked
	// through its consumers.
	want2 := make([]float64, len(want))
	for i, v := range want {
		want2[i] = 2 * v
	}
	closeTo(t, "graph Mul+Add", sum.Value().Data().([]float32), want2, 2*k)
	wantZ := make([]float64, n*k)
	for j := 0; j < n; j++ {
		for p := 0; p < k; p++ {
			for i := 0; i < m; i++ {
				wantZ[j*k+p] += want[i*n+j] * float64(a[i*k+p])
			}
		}
	}
	closeTo(t, "graph Transpose·Mul", z.Value().Data().([]float32), wantZ, m*k)
	if ce.calls < 2 {
		t.Fatalf("engine MatMul called %d times, want >= 2 (graph did not run on the engine)", ce.calls)
	}
	if got := fastMatMuls.Load() - fast0; got < 2 {
		t.Fatalf("%d graph MatMuls reached the package's GEMM, want 2 (fell back to StdEng)", got)
	}
}
