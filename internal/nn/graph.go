package nn

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/clinfer/clinfer/tensorops"
)

// Key selects a compiled graph: the batch size, the padded sequence length, and a
// model-defined variant (e.g. whether every layer's hidden states are kept).
type Key struct {
	Batch, Length int
	Variant       int
}

// BuildFunc describes the computation for one key on a fresh Builder.
type BuildFunc func(b *Builder, k Key) error

// GraphCache compiles one expression graph per Key on first use and keeps a pool of compiled
// graphs (each with its own TapeMachine and buffers) per key. Safe for concurrent use: every
// Get hands out a graph no other caller holds until it is Put back.
type GraphCache struct {
	engine *tensorops.Engine
	build  BuildFunc
	pools  sync.Map // Key -> *sync.Pool of *Graph
}

// NewGraphCache returns a cache that builds graphs with build and runs them on e.
func NewGraphCache(e *tensorops.Engine, build BuildFunc) *GraphCache {
	if e == nil {
		e = tensorops.Default()
	}
	return &GraphCache{engine: e, build: build}
}

// Engine is the engine graphs run on.
func (c *GraphCache) Engine() *tensorops.Engine { return c.engine }

// Get returns a compiled graph for k, building one when the pool has none idle.
func (c *GraphCache) Get(k Key) (*Graph, error) {
	if k.Batch <= 0 || k.Length <= 0 {
		return nil, fmt.Errorf("nn: graph for batch %d, length %d", k.Batch, k.Length)
	}
	p, _ := c.pools.LoadOrStore(k, &sync.Pool{})
	if g, ok := p.(*sync.Pool).Get().(*Graph); ok {
		return g, nil
	}
	return c.compile(k)
}

// Put returns a graph obtained from Get. The caller must not use it (or slices it returned)
// afterwards.
func (c *GraphCache) Put(g *Graph) {
	if g == nil || g.cache != c {
		return
	}
	p, _ := c.pools.LoadOrStore(g.key, &sync.Pool{})
	p.(*sync.Pool).Put(g)
}

func (c *GraphCache) compile(k Key) (*Graph, error) {
	eg := gorgonia.NewGraph()
	gr := &Graph{key: k, cache: c, engine: c.engine, g: eg,
		inputs: map[string]*tensor.Dense{}, inputNodes: map[*gorgonia.Node]bool{}, outputs: map[string]*Op{}}
	b := &Builder{graph: gr}
	if err := c.build(b, k); err != nil {
		return nil, err
	}
	if b.err != nil {
		return nil, b.err
	}
	if err := gr.plan(); err != nil {
		return nil, err
	}
	prog, locMap, err := gorgonia.Compile(eg)
	if err != nil {
		return nil, fmt.Errorf("nn: compile: %w", err)
	}
	gr.vm = gorgonia.NewTapeMachine(eg, gorgonia.WithPrecompiled(prog, locMap), gorgonia.WithEngine(c.engine))
	return gr, nil
}

// Graph is one compiled graph with its machine, input tensors and planned buffers. A Graph is
// used by one goroutine at a time.
type Graph struct {
	key        Key
	cache      *GraphCache
	engine     *tensorops.Engine
	g          *gorgonia.ExprGraph
	vm         gorgonia.VM
	ops        []*Op // in execution order after plan
	inputs     map[string]*tensor.Dense
	inputNodes map[*gorgonia.Node]bool
	outputs    map[string]*Op
	step       int
	bytes      int
}

// Key is the key the graph was built for.
func (gr *Graph) Key() Key { return gr.key }

// Ints returns the backing slice of an int input, to be filled before Run.
func (gr *Graph) Ints(name string) []int {
	t, ok := gr.inputs[name]
	if !ok {
		return nil
	}
	d, _ := t.Data().([]int)
	return d
}

// Floats returns the backing slice of a float32 input, to be filled before Run.
func (gr *Graph) Floats(name string) []float32 {
	t, ok := gr.inputs[name]
	if !ok {
		return nil
	}
	d, _ := t.Data().([]float32)
	return d
}

// Output returns the data of an output after Run; valid until the graph runs again or is
// returned to the cache.
func (gr *Graph) Output(name string) []float32 {
	o, ok := gr.outputs[name]
	if !ok {
		return nil
	}
	return o.out.Data().([]float32)
}

// BufferBytes is the size of the planned intermediate memory.
func (gr *Graph) BufferBytes() int { return gr.bytes }

// Run executes the graph on its current inputs.
func (gr *Graph) Run() error {
	gr.step = 0
	gr.vm.Reset()
	if err := gr.vm.RunAll(); err != nil {
		return err
	}
	if gr.step != len(gr.ops) {
		return fmt.Errorf("nn: graph ran %d of %d ops", gr.step, len(gr.ops))
	}
	return nil
}

// plan orders the ops as gorgonia's compiler will run them and gives each op an output buffer,
// reusing the buffers of values no later op reads. Outputs keep their own buffers.
func (gr *Graph) plan() error {
	sorted, err := gorgonia.Sort(gr.g)
	if err != nil {
		return fmt.Errorf("nn: sort: %w", err)
	}
	// gorgonia.Compile runs the reverse of Sort's order.
	var order []*gorgonia.Node
	for i := len(sorted) - 1; i >= 0; i-- {
		n := sorted[i]
		if _, ok := n.Op().(*Op); ok {
			order = append(order, n)
			continue
		}
		if !gr.inputNodes[n] {
			return fmt.Errorf("nn: node %v: op %v is not an nn op", n.Name(), n.Op())
		}
	}
	last := map[*Op]int{}
	for i, n := range order {
		o := n.Op().(*Op)
		o.order = i
		for _, c := range o.inputs {
			if co, ok := c.Op().(*Op); ok {
				last[co] = i
			}
		}
	}
	pinned := map[*Op]bool{}
	for _, o := range gr.outputs {
		pinned[o] = true
	}
	var free [][]float32
	take := func(n int) []float32 {
		best := -1
		for i, f := range free {
			if cap(f) >= n && (best < 0 || cap(f) < cap(free[best])) {
				best = i
			}
		}
		if best < 0 {
			gr.bytes += 4 * n
			return make([]float32, n)
		}
		f := free[best]
		free = append(free[:best], free[best+1:]...)
		return f[:n]
	}
	gr.ops = gr.ops[:0]
	for i, n := range order {
		o := n.Op().(*Op)
		size := o.outShape.TotalSize()
		o.out = tensor.New(tensor.WithShape(o.outShape...), tensor.WithBacking(take(size)))
		gr.ops = append(gr.ops, o)
		for _, c := range o.inputs {
			co, ok := c.Op().(*Op)
			if !ok || pinned[co] || last[co] != i {
				continue
			}
			free = append(free, co.out.Data().([]float32))
			pinned[co] = true // released once even when an op reads it twice
		}
	}
	return nil
}

// Builder adds inputs, ops and outputs to a graph being built. The first error sticks: later
// calls return nil nodes and Err reports it, so model code can describe a graph without
// checking every step.
type Builder struct {
	graph *Graph
	err   error
}

// Err is the first error met while building.
func (b *Builder) Err() error { return b.err }

func (b *Builder) fail(err error) *gorgonia.Node {
	if b.err == nil {
		b.err = err
	}
	return nil
}

// Input declares a per-call input tensor of dtype tensor.Int or tensor.Float32.
func (b *Builder) Input(name string, dt tensor.Dtype, shape ...int) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	if _, dup := b.graph.inputs[name]; dup {
		return b.fail(fmt.Errorf("nn: input %q declared twice", name))
	}
	if dt != tensor.Int && dt != tensor.Float32 {
		return b.fail(fmt.Errorf("nn: input %q: dtype %v unsupported", name, dt))
	}
	t := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
	n := gorgonia.NewTensor(b.graph.g, dt, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name), gorgonia.WithValue(t))
	b.graph.inputs[name] = t
	b.graph.inputNodes[n] = true
	return n
}

// Output marks a node as a result readable with Graph.Output after Run.
func (b *Builder) Output(name string, n *gorgonia.Node) {
	if b.err != nil {
		return
	}
	if n == nil {
		b.fail(fmt.Errorf("nn: output %q is nil", name))
		return
	}
	o, ok := n.Op().(*Op)
	if !ok {
		b.fail(fmt.Errorf("nn: output %q is not computed by an nn op", name))
		return
	}
	if _, dup := b.graph.outputs[name]; dup {
		b.fail(fmt.Errorf("nn: output %q declared twice", name))
		return
	}
	b.graph.outputs[name] = o
}

// Apply adds op applied to inputs. An op can be applied once.
func (b *Builder) Apply(op *Op, inputs ...*gorgonia.Node) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	if op.graph != nil {
		return b.fail(fmt.Errorf("nn: %s applied twice", op.name))
	}
	for i, in := range inputs {
		if in == nil {
			return b.fail(fmt.Errorf("nn: %s: input %d is nil", op.name, i))
		}
	}
	n, err := gorgonia.ApplyOp(op, inputs...)
	if err != nil {
		return b.fail(fmt.Errorf("nn: %s: %w", op.name, err))
	}
	op.graph = b.graph
	op.inputs = inputs
	return n
}

// Outputs lists the output names, sorted.
func (gr *Graph) Outputs() []string {
	names := make([]string, 0, len(gr.outputs))
	for n := range gr.outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrTooLong is returned by Bucket callers for lengths beyond a model's maximum.
var ErrTooLong = errors.New("sequence longer than the model's maximum")

// Bucket rounds a sequence length up to the padded length graphs are built for, so that a few
// graphs serve every length: multiples of 16 up to 256, of 32 up to 512, of 64 beyond, never
// above max (max <= 0: no cap).
func Bucket(n, max int) int {
	var step int
	switch {
	case n <= 8:
		step = 8
	case n <= 256:
		step = 16
	case n <= 512:
		step = 32
	default:
		step = 64
	}
	b := (n + step - 1) / step * step
	if max > 0 && b > max {
		b = max
	}
	if b < n {
		b = n
	}
	return b
}
