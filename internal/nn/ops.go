package nn

import (
	"fmt"
	"math"
	"sync"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/clinfer/clinfer/tensorops"
)

// Activation is an elementwise nonlinearity that can follow a Linear.
type Activation int

// Activations of Hugging Face's ACT2FN that the encoders use.
const (
	ActNone     Activation = iota
	ActGELU                // exact erf GELU ("gelu")
	ActGELUTanh            // tanh approximation ("gelu_new", "gelu_pytorch_tanh")
	ActReLU
	ActSiLU // "silu", "swish"
	ActTanh
)

// ParseActivation maps a config.json hidden_act to an Activation.
func ParseActivation(s string) (Activation, error) {
	switch s {
	case "gelu":
		return ActGELU, nil
	case "gelu_new", "gelu_pytorch_tanh":
		return ActGELUTanh, nil
	case "relu":
		return ActReLU, nil
	case "silu", "swish":
		return ActSiLU, nil
	case "tanh":
		return ActTanh, nil
	}
	return ActNone, fmt.Errorf("nn: activation %q unsupported", s)
}

func (a Activation) String() string {
	switch a {
	case ActNone:
		return "none"
	case ActGELU:
		return "gelu"
	case ActGELUTanh:
		return "gelu_tanh"
	case ActReLU:
		return "relu"
	case ActSiLU:
		return "silu"
	case ActTanh:
		return "tanh"
	}
	return fmt.Sprintf("Activation(%d)", int(a))
}

// Apply applies the activation in place.
func (a Activation) Apply(x []float32) {
	switch a {
	case ActGELU:
		tensorops.GELU(x)
	case ActGELUTanh:
		tensorops.GELUTanh(x)
	case ActReLU:
		for i, v := range x {
			if v < 0 {
				x[i] = 0
			}
		}
	case ActSiLU:
		tensorops.SiLU(x)
	case ActTanh:
		tensorops.Tanh(x)
	}
}

// parallel runs fn over [0, n) split into at most e.Threads() chunks of at least minChunk
// items. The row-wise and elementwise ops are a few percent of an encoder's time on one
// thread; splitting them keeps them from growing into the serial fraction when the matrix
// products run on every core.
func parallel(e *tensorops.Engine, n, minChunk int, fn func(lo, hi int)) {
	t := 1
	if e != nil {
		t = min(e.Threads(), n/max(minChunk, 1))
	}
	if t <= 1 {
		fn(0, n)
		return
	}
	chunk := (n + t - 1) / t
	var wg sync.WaitGroup
	for lo := chunk; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo int) {
			defer wg.Done()
			fn(lo, min(lo+chunk, n))
		}(lo)
	}
	fn(0, min(chunk, n))
	wg.Wait()
}

// minElems is the smallest share of an elementwise op worth a goroutine (about 16K floats).
const minElems = 1 << 14

func minRows(cols int) int { return max(1, minElems/max(cols, 1)) }

// applyPar applies an activation to x on the engine's threads.
func (a Activation) applyPar(e *tensorops.Engine, x []float32) {
	if a == ActNone {
		return
	}
	parallel(e, len(x), minElems, func(lo, hi int) { a.Apply(x[lo:hi]) })
}

func shape2(b *Builder, name string, x *gorgonia.Node) (rows, cols int, ok bool) {
	if b.err != nil || x == nil {
		b.fail(fmt.Errorf("nn: %s: nil input", name))
		return 0, 0, false
	}
	s := x.Shape()
	if len(s) != 2 {
		b.fail(fmt.Errorf("nn: %s: input shape %v, want [rows, cols]", name, s))
		return 0, 0, false
	}
	return s[0], s[1], true
}

// linearShape checks x [rows, l.In] for a Linear op and returns its shape.
func linearShape(b *Builder, name string, x *gorgonia.Node, l *tensorops.Linear) (rows, cols int, ok bool) {
	rows, cols, ok = shape2(b, name, x)
	if ok && (l == nil || cols != l.In) {
		b.fail(fmt.Errorf("nn: %s: input has %d columns, Linear wants %d", name, cols, linIn(l)))
		return 0, 0, false
	}
	return rows, cols, ok
}

// Linear applies y = act(x·Wᵀ + b) with a packed tensorops.Linear: x [rows, In] -> [rows, Out].
func (b *Builder) Linear(name string, x *gorgonia.Node, l *tensorops.Linear, act Activation) *gorgonia.Node {
	rows, cols, ok := linearShape(b, name, x, l)
	if !ok {
		return nil
	}
	// The activation is applied per finished block of the product, while it is in cache.
	var then func(seg []float32, row, col int)
	if act != ActNone {
		then = func(seg []float32, _, _ int) { act.Apply(seg) }
	}
	k := func(e *tensorops.Engine, dst []float32, in []gorgonia.Value) error {
		x, err := floats(in[0])
		if err != nil {
			return err
		}
		e.ForwardEach(l, dst, x, rows, then)
		return nil
	}
	label := fmt.Sprintf("%s:Linear[%d->%d]", name, l.In, l.Out)
	if act != ActNone {
		label += "+" + act.String()
	}
	return b.Apply(NewOp(label, tensor.Shape{rows, l.Out}, []tensor.Shape{{rows, cols}}, nil, k), x)
}

// LinearAdd is x·Wᵀ + b + residual, the product and the residual branch of a transformer layer
// summed per finished block of the product (while it is in cache) rather than in a separate
// pass; residual is [rows, l.Out]. The sum rounds exactly as Add's does.
func (b *Builder) LinearAdd(name string, x *gorgonia.Node, l *tensorops.Linear, residual *gorgonia.Node) *gorgonia.Node {
	rows, cols, ok := linearShape(b, name, x, l)
	if !ok {
		return nil
	}
	if residual == nil || !residual.Shape().Eq(tensor.Shape{rows, l.Out}) {
		var got tensor.Shape
		if residual != nil {
			got = residual.Shape()
		}
		return b.fail(fmt.Errorf("nn: %s: residual shape %v, want [%d %d]", name, got, rows, l.Out))
	}
	out := l.Out
	k := func(e *tensorops.Engine, dst []float32, in []gorgonia.Value) error {
		v, err := Floats(in...)
		if err != nil {
			return err
		}
		res := v[1]
		e.ForwardEach(l, dst, v[0], rows, func(seg []float32, row, col int) {
			tensorops.Add(seg, seg, res[row*out+col:][:len(seg)])
		})
		return nil
	}
	label := fmt.Sprintf("%s:Linear[%d->%d]+residual", name, l.In, l.Out)
	s := tensor.Shape{rows, out}
	return b.Apply(NewOp(label, s, []tensor.Shape{{rows, cols}, s}, nil, k), x, residual)
}

func linIn(l *tensorops.Linear) int {
	if l == nil {
		return -1
	}
	return l.In
}

// LayerNorm normalizes each row of x [rows, cols] with gamma, beta [cols] and eps.
func (b *Builder) LayerNorm(name string, x *gorgonia.Node, gamma, beta []float32, eps float32) *gorgonia.Node {
	rows, cols, ok := shape2(b, name, x)
	if !ok {
		return nil
	}
	if len(gamma) != cols || len(beta) != cols {
		return b.fail(fmt.Errorf("nn: %s: LayerNorm of %d columns with gamma[%d], beta[%d]", name, cols, len(gamma), len(beta)))
	}
	k := func(e *tensorops.Engine, dst []float32, in []gorgonia.Value) error {
		x, err := floats(in[0])
		if err != nil {
			return err
		}
		parallel(e, rows, minRows(cols), func(lo, hi int) {
			tensorops.LayerNorm(dst[lo*cols:hi*cols], x[lo*cols:hi*cols], hi-lo, cols, gamma, beta, eps)
		})
		return nil
	}
	return b.Apply(NewOp(name+":LayerNorm", tensor.Shape{rows, cols}, []tensor.Shape{{rows, cols}}, nil, k), x)
}

// Add is the elementwise sum of two [rows, cols] nodes.
func (b *Builder) Add(name string, x, y *gorgonia.Node) *gorgonia.Node {
	rows, cols, ok := shape2(b, name, x)
	if !ok {
		return nil
	}
	k := func(_ *tensorops.Engine, dst []float32, in []gorgonia.Value) error {
		v, err := Floats(in...)
		if err != nil {
			return err
		}
		tensorops.Add(dst, v[0], v[1])
		return nil
	}
	s := tensor.Shape{rows, cols}
	return b.Apply(NewOp(name+":Add", s, []tensor.Shape{s, s}, nil, k), x, y)
}

// Activate applies an activation to a [rows, cols] node.
func (b *Builder) Activate(name string, x *gorgonia.Node, act Activation) *gorgonia.Node {
	rows, cols, ok := shape2(b, name, x)
	if !ok {
		return nil
	}
	k := func(e *tensorops.Engine, dst []float32, in []gorgonia.Value) error {
		x, err := floats(in[0])
		if err != nil {
			return err
		}
		copy(dst, x)
		act.applyPar(e, dst)
		return nil
	}
	s := tensor.Shape{rows, cols}
	return b.Apply(NewOp(name+":"+act.String(), s, []tensor.Shape{s}, nil, k), x)
}

// AttentionSpec describes a self-attention over a packed QKV projection.
type AttentionSpec struct {
	Batch, Length, Heads, HeadDim int
	// Scale multiplies q·k; 0 means 1/sqrt(HeadDim).
	Scale float32
	// BiasShared: the bias input is [1, Heads, T, T] for the whole batch instead of [B, Heads, T, T].
	BiasShared bool
}

// Attention is multi-head scaled-dot-product self-attention. qkv [B*T, 3*Heads*HeadDim] holds
// the query, key and value projections side by side (one packed Linear); mask [B, T] is
// additive on the keys (0 for tokens, a large negative number for padding); bias, when not
// nil, is an additive per-head score bias [B or 1, Heads, T, T] (relative position models).
// The output is the heads' context vectors concatenated, [B*T, Heads*HeadDim].
func (b *Builder) Attention(name string, qkv, mask, bias *gorgonia.Node, sp AttentionSpec) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	h := sp.Heads * sp.HeadDim
	bt := sp.Batch * sp.Length
	if h <= 0 || bt <= 0 {
		return b.fail(fmt.Errorf("nn: %s: attention spec %+v", name, sp))
	}
	scale := sp.Scale
	if scale == 0 {
		scale = float32(1 / math.Sqrt(float64(sp.HeadDim)))
	}
	in := []tensor.Shape{{bt, 3 * h}, {sp.Batch, sp.Length}}
	nodes := []*gorgonia.Node{qkv, mask}
	biasB := sp.Batch
	if sp.BiasShared {
		biasB = 1
	}
	if bias != nil {
		in = append(in, tensor.Shape{biasB, sp.Heads, sp.Length, sp.Length})
		nodes = append(nodes, bias)
	}
	k := func(e *tensorops.Engine, dst []float32, vals []gorgonia.Value) error {
		v, err := Floats(vals...)
		if err != nil {
			return err
		}
		p := tensorops.AttentionParams{
			Batch: sp.Batch, Heads: sp.Heads, KVHeads: sp.Heads, QLen: sp.Length, KVLen: sp.Length, HeadDim: sp.HeadDim,
			LDQ: 3 * h, LDKV: 3 * h, LDO: h, Scale: scale, KeyMask: v[1],
		}
		if len(v) == 3 {
			p.Bias = v[2]
			if !sp.BiasShared {
				p.BiasBatchStride = sp.Heads * sp.Length * sp.Length
			}
		}
		qkv := v[0]
		e.Attention(dst, qkv, qkv[h:], qkv[2*h:], p)
		return nil
	}
	label := fmt.Sprintf("%s:Attention[%dx%d]", name, sp.Heads, sp.HeadDim)
	return b.Apply(NewOp(label, tensor.Shape{bt, h}, in, nil, k), nodes...)
}

// EmbeddingTable is one lookup table [Rows, Cols] of an embedding sum.
type EmbeddingTable struct {
	Name string // checkpoint name, for errors
	Data []float32
	Rows int
}

// Embed sums rows of several tables, one id tensor [B, T] (tensor.Int) per table, into
// [B*T, cols]. The sum runs in table order (((t0 + t1) + t2), matching how the reference
// adds word, token-type and position embeddings. An id outside a table is an error naming
// the table and the position.
func (b *Builder) Embed(name string, cols int, tables []EmbeddingTable, ids ...*gorgonia.Node) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	if len(tables) == 0 || len(tables) != len(ids) {
		return b.fail(fmt.Errorf("nn: %s: %d tables for %d id inputs", name, len(tables), len(ids)))
	}
	for _, t := range tables {
		if t.Rows <= 0 || len(t.Data) != t.Rows*cols {
			return b.fail(fmt.Errorf("nn: %s: table %s has %d values, want %d x %d", name, t.Name, len(t.Data), t.Rows, cols))
		}
	}
	if ids[0] == nil {
		return b.fail(fmt.Errorf("nn: %s: nil ids", name))
	}
	s := ids[0].Shape()
	if len(s) != 2 {
		return b.fail(fmt.Errorf("nn: %s: ids shape %v, want [B, T]", name, s))
	}
	n := s[0] * s[1]
	in := make([]tensor.Shape, len(ids))
	types := make([]tensor.Dtype, len(ids))
	for i := range ids {
		in[i], types[i] = s, tensor.Int
	}
	k := func(_ *tensorops.Engine, dst []float32, vals []gorgonia.Value) error {
		for ti, t := range tables {
			id, err := ints(vals[ti])
			if err != nil {
				return err
			}
			for r := 0; r < n; r++ {
				j := id[r]
				if j < 0 || j >= t.Rows {
					return fmt.Errorf("%s: id %d at position %d outside [0, %d)", t.Name, j, r, t.Rows)
				}
				row := t.Data[j*cols : (j+1)*cols]
				out := dst[r*cols : (r+1)*cols]
				if ti == 0 {
					copy(out, row)
				} else {
					tensorops.Add(out, out, row)
				}
			}
		}
		return nil
	}
	return b.Apply(NewOp(name+":Embed", tensor.Shape{n, cols}, in, types, k), ids...)
}

// SelectRow takes row pos of every sequence of x [B*T, cols]: [B, cols] (the first-token
// summary of BERT's pooler and of classification heads).
func (b *Builder) SelectRow(name string, x *gorgonia.Node, batch, length, pos int) *gorgonia.Node {
	rows, cols, ok := shape2(b, name, x)
	if !ok {
		return nil
	}
	if rows != batch*length || pos < 0 || pos >= length {
		return b.fail(fmt.Errorf("nn: %s: row %d of %d sequences of %d in %d rows", name, pos, batch, length, rows))
	}
	k := func(_ *tensorops.Engine, dst []float32, in []gorgonia.Value) error {
		x, err := floats(in[0])
		if err != nil {
			return err
		}
		for i := 0; i < batch; i++ {
			r := i*length + pos
			copy(dst[i*cols:(i+1)*cols], x[r*cols:(r+1)*cols])
		}
		return nil
	}
	return b.Apply(NewOp(fmt.Sprintf("%s:Row[%d]", name, pos), tensor.Shape{batch, cols}, []tensor.Shape{{rows, cols}}, nil, k), x)
}

// Concat joins [rows, c_i] nodes along the columns: [rows, sum c_i] (multi-head classifiers).
func (b *Builder) Concat(name string, xs ...*gorgonia.Node) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	if len(xs) == 0 {
		return b.fail(fmt.Errorf("nn: %s: nothing to concatenate", name))
	}
	var rows, total int
	in := make([]tensor.Shape, len(xs))
	widths := make([]int, len(xs))
	for i, x := range xs {
		r, c, ok := shape2(b, name, x)
		if !ok {
			return nil
		}
		if i == 0 {
			rows = r
		} else if r != rows {
			return b.fail(fmt.Errorf("nn: %s: input %d has %d rows, want %d", name, i, r, rows))
		}
		in[i], widths[i] = tensor.Shape{r, c}, c
		total += c
	}
	k := func(_ *tensorops.Engine, dst []float32, vals []gorgonia.Value) error {
		v, err := Floats(vals...)
		if err != nil {
			return err
		}
		for r := 0; r < rows; r++ {
			off := r * total
			for i, w := range widths {
				copy(dst[off:off+w], v[i][r*w:(r+1)*w])
				off += w
			}
		}
		return nil
	}
	return b.Apply(NewOp(name+":Concat", tensor.Shape{rows, total}, in, nil, k), xs...)
}
