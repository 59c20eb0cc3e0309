package nn

import (
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/clinfer/clinfer/tensorops"
)

func randSlice(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// a small encoder-like chain: x -> Linear(gelu) -> LinearAdd(x) -> LayerNorm -> Linear, with
// the LayerNorm kept as an output.
type chain struct {
	l1, l2, l3  *tensorops.Linear
	gamma, beta []float32
	cols        int
}

func newChain(seed uint64) *chain {
	r := rand.New(rand.NewPCG(seed, 1))
	const c, inner = 8, 12
	return &chain{
		l1:    tensorops.NewLinear(randSlice(r, inner*c), inner, c, randSlice(r, inner)),
		l2:    tensorops.NewLinear(randSlice(r, c*inner), c, inner, randSlice(r, c)),
		l3:    tensorops.NewLinear(randSlice(r, 3*c), 3, c, nil),
		gamma: randSlice(r, c), beta: randSlice(r, c), cols: c,
	}
}

func (ch *chain) build(b *Builder, k Key) error {
	x := b.Input("x", tensor.Float32, k.Batch*k.Length, ch.cols)
	h := b.Linear("l1", x, ch.l1, ActGELU)
	n := b.LayerNorm("ln", b.LinearAdd("l2", h, ch.l2, x), ch.gamma, ch.beta, 1e-5)
	b.Output("norm", n)
	y := b.Linear("l3", b.Activate("act", n, ActTanh), ch.l3, ActNone)
	b.Output("y", y)
	return nil
}

// direct computes the chain with tensorops calls only.
func (ch *chain) direct(x []float32, rows int) (norm, y []float32) {
	e := tensorops.Default()
	h1 := make([]float32, rows*ch.l1.Out)
	e.Forward(ch.l1, h1, x, rows)
	tensorops.GELU(h1)
	h2 := make([]float32, rows*ch.cols)
	e.Forward(ch.l2, h2, h1, rows)
	norm = make([]float32, rows*ch.cols)
	tensorops.Add(norm, h2, x)
	tensorops.LayerNorm(norm, norm, rows, ch.cols, ch.gamma, ch.beta, 1e-5)
	t := append([]float32(nil), norm...)
	tensorops.Tanh(t)
	y = make([]float32, rows*3)
	e.Forward(ch.l3, y, t, rows)
	return norm, y
}

func TestGraphMatchesDirectCalls(t *testing.T) {
	ch := newChain(1)
	c := NewGraphCache(nil, ch.build)
	r := rand.New(rand.NewPCG(2, 2))
	k := Key{Batch: 2, Length: 5}
	g, err := c.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 3; run++ { // later runs reuse every buffer
		x := randSlice(r, 10*ch.cols)
		copy(g.Floats("x"), x)
		if err := g.Run(); err != nil {
			t.Fatal(err)
		}
		wantNorm, wantY := ch.direct(x, 10)
		for name, want := range map[string][]float32{"norm": wantNorm, "y": wantY} {
			got := g.Output(name)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("run %d: %s[%d] = %g, direct %g", run, name, i, got[i], want[i])
				}
			}
		}
	}
	// Outputs are pinned; of the rest, l1's [10,12] and l2's [10,8] outputs are dead by the
	// time act and l3 need buffers, so the plan needs fewer bytes than one buffer per op.
	all := 4 * 10 * (12 + 8 + 8 + 8 + 3)
	if g.BufferBytes() >= all {
		t.Errorf("planned %d bytes, no reuse (one buffer per op: %d)", g.BufferBytes(), all)
	}
	c.Put(g)
}

func TestGraphCacheConcurrent(t *testing.T) {
	ch := newChain(3)
	c := NewGraphCache(nil, ch.build)
	var wg sync.WaitGroup
	const workers = 8
	errs := make(chan string, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for it := 0; it < 20; it++ {
				k := Key{Batch: 1 + it%2, Length: 3 + w%3}
				rows := k.Batch * k.Length
				x := randSlice(r, rows*ch.cols)
				_, want := ch.direct(x, rows)
				g, err := c.Get(k)
				if err != nil {
					errs <- err.Error()
					return
				}
				copy(g.Floats("x"), x)
				if err := g.Run(); err != nil {
					errs <- err.Error()
					return
				}
				got := g.Output("y")
				for i := range want {
					if got[i] != want[i] {
						// One report per goroutine: more would fill errs and block.
						errs <- "result differs from the direct computation"
						return
					}
				}
				c.Put(g)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestKernelPanicIsError(t *testing.T) {
	c := NewGraphCache(nil, func(b *Builder, k Key) error {
		x := b.Input("x", tensor.Float32, 2, 2)
		op := NewOp("boom", tensor.Shape{2, 2}, []tensor.Shape{{2, 2}}, nil,
			func(_ *tensorops.Engine, dst []float32, in []gorgonia.Value) error {
				var s []float32
				dst[0] = s[3] // index out of range
				return nil
			})
		b.Output("y", b.Apply(op, x))
		return nil
	})
	g, err := c.Get(Key{Batch: 1, Length: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Run: %v, want an error naming the op", err)
	}
}

func TestBuildErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	l := tensorops.NewLinear(randSlice(r, 6), 2, 3, nil)
	cases := map[string]BuildFunc{
		"columns": func(b *Builder, k Key) error {
			x := b.Input("x", tensor.Float32, 4, 5)
			b.Output("y", b.Linear("proj", x, l, ActNone))
			return nil
		},
		"gamma": func(b *Builder, k Key) error {
			x := b.Input("x", tensor.Float32, 4, 3)
			b.Output("y", b.LayerNorm("norm", x, make([]float32, 2), make([]float32, 3), 1e-5))
			return nil
		},
		"duplicate input": func(b *Builder, k Key) error {
			b.Input("x", tensor.Float32, 4, 3)
			b.Input("x", tensor.Float32, 4, 3)
			return nil
		},
		"residual": func(b *Builder, k Key) error {
			x := b.Input("x", tensor.Float32, 4, 3)
			b.Output("y", b.LinearAdd("proj", x, l, x))
			return nil
		},
	}
	want := map[string]string{"columns": "proj: input has 5 columns, Linear wants 3", "gamma": "gamma[2]", "duplicate input": "declared twice",
		"residual": "proj: residual shape (4, 3), want [4 2]"}
	for name, build := range cases {
		_, err := NewGraphCache(nil, build).Get(Key{Batch: 1, Length: 1})
		if err == nil || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s: %v, want an error containing %q", name, err, want[name])
		}
	}
}

// Linear with an activation and LinearAdd apply their elementwise step per finished GEMM block;
// at a shape the GEMM splits over threads, chunks and k blocks they must give exactly what
// Forward followed by the separate pass gives.
func TestLinearEpiloguesMatchSeparatePasses(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	const rows, in, out = 300, 520, 700
	l := tensorops.NewLinear(randSlice(r, out*in), out, in, randSlice(r, out))
	e := tensorops.NewEngine(2)
	c := NewGraphCache(e, func(b *Builder, k Key) error {
		x := b.Input("x", tensor.Float32, rows, in)
		res := b.Input("res", tensor.Float32, rows, out)
		b.Output("gelu", b.Linear("act", x, l, ActGELU))
		b.Output("sum", b.LinearAdd("add", x, l, res))
		return nil
	})
	g, err := c.Get(Key{Batch: 1, Length: rows})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Put(g)
	x, res := randSlice(r, rows*in), randSlice(r, rows*out)
	copy(g.Floats("x"), x)
	copy(g.Floats("res"), res)
	if err := g.Run(); err != nil {
		t.Fatal(err)
	}
	y := make([]float32, rows*out)
	e.Forward(l, y, x, rows)
	sum := make([]float32, rows*out)
	tensorops.Add(sum, y, res)
	tensorops.GELU(y)
	for name, want := range map[string][]float32{"gelu": y, "sum": sum} {
		got := g.Output(name)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s[%d] = %v, separate passes %v", name, i, got[i], want[i])
			}
		}
	}
}

func TestAttentionAndEmbed(t *testing.T) {
	const B, T, heads, dh, vocab = 2, 3, 2, 4, 10
	H := heads * dh
	r := rand.New(rand.NewPCG(5, 5))
	table := randSlice(r, vocab*H)
	pos := randSlice(r, T*H)
	c := NewGraphCache(nil, func(b *Builder, k Key) error {
		ids := b.Input("ids", tensor.Int, B, T)
		p := b.Input("pos", tensor.Int, B, T)
		mask := b.Input("mask", tensor.Float32, B, T)
		e := b.Embed("emb", H, []EmbeddingTable{{"word", table, vocab}, {"pos", pos, T}}, ids, p)
		b.Output("emb", e)
		qkv := b.Concat("qkv", e, e, e)
		b.Output("ctx", b.Attention("attn", qkv, mask, nil, AttentionSpec{Batch: B, Length: T, Heads: heads, HeadDim: dh}))
		b.Output("first", b.SelectRow("cls", e, B, T, 0))
		return nil
	})
	g, err := c.Get(Key{Batch: B, Length: T})
	if err != nil {
		t.Fatal(err)
	}
	ids := []int{1, 2, 3, 4, 5, 9}
	copy(g.Ints("ids"), ids)
	copy(g.Ints("pos"), []int{0, 1, 2, 0, 1, 2})
	copy(g.Floats("mask"), []float32{0, 0, 0, 0, -math.MaxFloat32, 0})
	if err := g.Run(); err != nil {
		t.Fatal(err)
	}
	emb := g.Output("emb")
	for i, id := range ids {
		for j := 0; j < H; j++ {
			if want := table[id*H+j] + pos[(i%T)*H+j]; emb[i*H+j] != want {
				t.Fatalf("emb[%d][%d] = %g, want %g", i, j, emb[i*H+j], want)
			}
		}
	}
	first := g.Output("first")
	for j := 0; j < H; j++ {
		if first[H+j] != emb[T*H+j] {
			t.Fatalf("SelectRow: first[1][%d] = %g, want %g", j, first[H+j], emb[T*H+j])
		}
	}
	// Reference attention in float64: batch 1 masks its key 1.
	ctx := g.Output("ctx")
	for b := 0; b < B; b++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < T; i++ {
				q := emb[(b*T+i)*H+h*dh : (b*T+i)*H+h*dh+dh]
				var w [T]float64
				var sum float64
				for j := 0; j < T; j++ {
					if b == 1 && j == 1 {
						continue
					}
					var s float64
					for d := 0; d < dh; d++ {
						s += float64(q[d]) * float64(emb[(b*T+j)*H+h*dh+d])
					}
					w[j] = math.Exp(s / math.Sqrt(dh))
					sum += w[j]
				}
				for d := 0; d < dh; d++ {
					var want float64
					for j := 0; j < T; j++ {
						want += w[j] / sum * float64(emb[(b*T+j)*H+h*dh+d])
					}
					if got := ctx[(b*T+i)*H+h*dh+d]; math.Abs(float64(got)-want) > 1e-5 {
						t.Fatalf("attention b%d h%d i%d d%d = %g, want %g", b, h, i, d, got, want)
					}
				}
			}
		}
	}
	copy(g.Ints("ids"), []int{1, 2, 10, 4, 5, 9})
	if err := g.Run(); err == nil || !strings.Contains(err.Error(), "word: id 10 at position 2 outside [0, 10)") {
		t.Errorf("out-of-range id: %v", err)
	}
}

func TestBucket(t *testing.T) {
	for _, c := range []struct{ n, max, want int }{
		{1, 512, 8}, {8, 512, 8}, {9, 512, 16}, {15, 512, 16}, {17, 512, 32}, {128, 512, 128},
		{129, 512, 144}, {257, 512, 288}, {500, 512, 512}, {513, 0, 576}, {120, 126, 126}, {130, 130, 130},
	} {
		if got := Bucket(c.n, c.max); got != c.want {
			t.Errorf("Bucket(%d, %d) = %d, want %d", c.n, c.max, got, c.want)
		}
	}
}

func TestParseActivation(t *testing.T) {
	for s, want := range map[string]Activation{"gelu": ActGELU, "gelu_new": ActGELUTanh, "relu": ActReLU, "swish": ActSiLU, "tanh": ActTanh} {
		if a, err := ParseActivation(s); err != nil || a != want {
			t.Errorf("%s: %v, %v", s, a, err)
		}
	}
	if _, err := ParseActivation("mish"); err == nil {
		t.Error("mish: no error")
	}
	x := []float32{-1, 2}
	ActReLU.Apply(x)
	if x[0] != 0 || x[1] != 2 {
		t.Errorf("relu: %v", x)
	}
}

// BenchmarkGraphOverhead runs a graph of 300 tiny ops (a 4x4 Add chain): what the TapeMachine
// and the ops' bookkeeping cost per op, next to kernels that take milliseconds in an encoder.
func BenchmarkGraphOverhead(b *testing.B) {
	const ops = 300
	c := NewGraphCache(nil, func(bd *Builder, k Key) error {
		x := bd.Input("x", tensor.Float32, 4, 4)
		h := x
		for i := 0; i < ops; i++ {
			h = bd.Add("add", h, x)
		}
		bd.Output("y", h)
		return nil
	})
	g, err := c.Get(Key{Batch: 1, Length: 4})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := g.Run(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/ops, "ns/graph-op")
}
