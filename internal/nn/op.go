// Package nn holds the gorgonia custom ops that clinfer's encoders are built from, and the
// compiled-graph cache that runs them.
//
// Every op is a *Op: a gorgonia.Op whose Do calls one tensorops kernel (Linear, LayerNorm,
// attention, ...) and writes into an output buffer the graph planned for it. Weights live in
// the ops (packed once by the model), not in graph nodes, so a graph is cheap to build and its
// only inputs are the per-call tensors (ids, masks).
//
// Gorgonia binds the values a machine computes to the graph's nodes, so a graph and its
// TapeMachine serve one call at a time; GraphCache keeps a pool of them per shape.
package nn

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"strings"
	"sync/atomic"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/clinfer/clinfer/tensorops"
)

// Kernel computes an op's output into dst (the op's planned buffer, len = output size, with
// stale contents from earlier runs) from the input values in graph order.
type Kernel func(e *tensorops.Engine, dst []float32, in []gorgonia.Value) error

var opSeq atomic.Uint64

// Op is a gorgonia.Op with fixed input shapes and a float32 output of fixed shape, computed by
// a Kernel. Graphs are built per (batch, length) so every shape is known when the op is made.
// An Op belongs to one graph: its output buffer is that graph's memory.
type Op struct {
	name     string
	uid      uint64 // tells ops with equal names apart in hashes (two Linears on one input)
	inShapes []tensor.Shape
	inTypes  []tensor.Dtype
	outShape tensor.Shape
	kernel   Kernel

	// set by the graph
	graph  *Graph
	order  int // position in the execution order the plan was made for
	out    *tensor.Dense
	inputs []*gorgonia.Node
}

// NewOp makes an op from a kernel: in gives the expected input shapes (float32 unless
// inTypes says otherwise; nil means all float32), out the output shape. Models with an
// operation this package lacks (XLNet's relative attention terms, LayoutLMv3's biases) make
// their own ops this way and apply them with Builder.Apply.
func NewOp(name string, out tensor.Shape, in []tensor.Shape, inTypes []tensor.Dtype, k Kernel) *Op {
	if inTypes == nil {
		inTypes = make([]tensor.Dtype, len(in))
		for i := range inTypes {
			inTypes[i] = tensor.Float32
		}
	}
	return &Op{name: name, uid: opSeq.Add(1), inShapes: in, inTypes: inTypes, outShape: out.Clone(), kernel: k}
}

// Arity is the number of inputs.
func (o *Op) Arity() int { return len(o.inShapes) }

// Type is the function type inputs -> float32 tensor of the output's rank.
func (o *Op) Type() hm.Type {
	ts := make([]hm.Type, 0, len(o.inShapes)+1)
	for i, s := range o.inShapes {
		ts = append(ts, tensorType(len(s), o.inTypes[i]))
	}
	ts = append(ts, tensorType(len(o.outShape), tensor.Float32))
	return hm.NewFnType(ts...)
}

func tensorType(dims int, dt tensor.Dtype) hm.Type {
	if dims == 0 {
		return dt
	}
	return gorgonia.TensorType{Dims: dims, Of: dt}
}

// InferShape checks the inputs against the shapes the op was made for and returns the output shape.
func (o *Op) InferShape(in ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(in) != len(o.inShapes) {
		return nil, fmt.Errorf("nn: %s: %d inputs, want %d", o.name, len(in), len(o.inShapes))
	}
	for i, d := range in {
		s, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("nn: %s: input %d has no shape", o.name, i)
		}
		if !s.Eq(o.inShapes[i]) {
			return nil, fmt.Errorf("nn: %s: input %d has shape %v, want %v", o.name, i, s, o.inShapes[i])
		}
	}
	return o.outShape.Clone(), nil
}

// Do runs the kernel into the op's planned buffer. Gorgonia runs the program on a goroutine of
// its own, where a panic could not be recovered by the caller, so kernel panics become errors.
func (o *Op) Do(vals ...gorgonia.Value) (v gorgonia.Value, err error) {
	if o.out == nil || o.graph == nil {
		return nil, fmt.Errorf("nn: %s: op run outside a planned graph", o.name)
	}
	if len(vals) != len(o.inShapes) {
		return nil, fmt.Errorf("nn: %s: %d inputs, want %d", o.name, len(vals), len(o.inShapes))
	}
	// The buffer plan reuses memory by the execution order it was computed for; refuse to
	// run if gorgonia ever schedules differently rather than read a clobbered buffer.
	if o.graph.step != o.order {
		return nil, fmt.Errorf("nn: %s: executed at step %d, planned for step %d", o.name, o.graph.step, o.order)
	}
	o.graph.step++
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("nn: %s: %v", o.name, r)
		}
	}()
	if err := o.kernel(o.graph.engine, o.out.Data().([]float32), vals); err != nil {
		return nil, fmt.Errorf("nn: %s: %w", o.name, err)
	}
	return o.out, nil
}

// ReturnsPtr is false: the output is the op's own buffer, never one of its inputs.
func (o *Op) ReturnsPtr() bool { return false }

// CallsExtern is false so that gorgonia neither preallocates nor batches: the graph plans
// every op's output buffer itself.
func (o *Op) CallsExtern() bool { return false }

// OverwritesInput is -1: kernels never write their inputs.
func (o *Op) OverwritesInput() int { return -1 }

// WriteHash writes the op's name and identity.
func (o *Op) WriteHash(h hash.Hash) { fmt.Fprintf(h, "nn.%s#%d", o.name, o.uid) }

// Hashcode hashes the op's name and identity.
func (o *Op) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

func (o *Op) String() string { return o.name }

// Name is the op's name (e.g. "layer.3.attention").
func (o *Op) Name() string { return o.name }

// floats returns the float32 data of a value.
func floats(v gorgonia.Value) ([]float32, error) {
	t, ok := v.(tensor.Tensor)
	if !ok {
		return nil, fmt.Errorf("value %T is not a tensor", v)
	}
	d, ok := t.Data().([]float32)
	if !ok {
		return nil, fmt.Errorf("tensor of %v, want float32", t.Dtype())
	}
	return d, nil
}

// ints returns the int data of a value.
func ints(v gorgonia.Value) ([]int, error) {
	t, ok := v.(tensor.Tensor)
	if !ok {
		return nil, fmt.Errorf("value %T is not a tensor", v)
	}
	d, ok := t.Data().([]int)
	if !ok {
		return nil, fmt.Errorf("tensor of %v, want int", t.Dtype())
	}
	return d, nil
}

// Floats returns the float32 data of each value, for kernels written outside this package.
func Floats(vals ...gorgonia.Value) ([][]float32, error) {
	out := make([][]float32, len(vals))
	var errs []string
	for i, v := range vals {
		d, err := floats(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("input %d: %v", i, err))
		}
		out[i] = d
	}
	if errs != nil {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return out, nil
}

// Ints returns the int data of a value, for kernels written outside this package.
func Ints(v gorgonia.Value) ([]int, error) { return ints(v) }
