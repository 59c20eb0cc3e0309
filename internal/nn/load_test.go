package nn

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/clinfer/clinfer/weights"
)

// mapStore serves float tensors from a map; only Float32 is used by LoadTensors.
type mapStore struct {
	weights.Store
	t map[string][]int // name -> shape (data is zeros)
}

func (m mapStore) Float32(name string) ([]float32, []int, error) {
	shape, ok := m.t[name]
	if !ok {
		return nil, nil, fmt.Errorf("%q: %w", name, weights.ErrMissingTensor)
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	return make([]float32, n), shape, nil
}

type loadInner struct {
	W []float32 `ckpt:"weight" shape:"out,in"`
}

type loadOuter struct {
	Emb   []float32 `ckpt:"emb" shape:"vocab,hidden"`
	Dense loadInner `ckpt:"dense." dims:"out=inter,in=hidden"`
	Skip  []float32 // no ckpt tag: left alone
}

func TestLoadTensors(t *testing.T) {
	dims := map[string]int{"vocab": 5, "hidden": 3, "inter": 4}
	s := mapStore{t: map[string][]int{"m.emb": {5, 3}, "m.dense.weight": {4, 3}}}
	var o loadOuter
	if err := LoadTensors(s, "pkg", "m.", &o, dims, nil); err != nil {
		t.Fatal(err)
	}
	if len(o.Emb) != 15 || len(o.Dense.W) != 12 || o.Skip != nil {
		t.Errorf("loaded %d, %d values (skip %v)", len(o.Emb), len(o.Dense.W), o.Skip)
	}

	// Both a mis-shaped and a missing tensor are reported, each by name.
	s = mapStore{t: map[string][]int{"m.emb": {5, 4}}}
	err := LoadTensors(s, "pkg", "m.", &loadOuter{}, dims, nil)
	if !errors.Is(err, weights.ErrShape) || !errors.Is(err, weights.ErrMissingTensor) ||
		!strings.Contains(err.Error(), "m.emb") || !strings.Contains(err.Error(), "m.dense.weight") {
		t.Errorf("bad tensors: %v", err)
	}

	// A custom expect sees every tensor; tag mistakes name the package.
	var seen []string
	expect := func(s weights.Store, name string, shape []int) ([]float32, error) {
		seen = append(seen, name)
		return make([]float32, shape[0]*shape[1]), nil
	}
	if err := LoadTensors(s, "pkg", "x.", &loadOuter{}, dims, expect); err != nil || len(seen) != 2 {
		t.Errorf("custom expect: %v, saw %v", err, seen)
	}
	if err := LoadTensors(s, "pkg", "m.", &loadOuter{}, map[string]int{"vocab": 5, "hidden": 3}, expect); err == nil || !strings.HasPrefix(err.Error(), "pkg: m.dense.: bad dims tag entry") {
		t.Errorf("unknown dims target: %v", err)
	}
	if err := LoadTensors(s, "pkg", "m.", loadOuter{}, dims, nil); err == nil {
		t.Error("non-pointer destination: no error")
	}
}
