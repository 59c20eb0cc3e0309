package qwen

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"github.com/clinfer/clinfer/weights"
)

// NewRandom builds a model of the given shape with seeded random weights (Linear weights
// uniform with standard deviation 0.02, norm weights near 1, small biases), for benchmarks and
// tests that need a real-sized model without a checkpoint. cfg.SlidingWindow 0 means no window.
func NewRandom(cfg *weights.Qwen2Config, dtype DType, seed uint64) (*Model, error) {
	if cfg == nil {
		return nil, fmt.Errorf("qwen: NewRandom: nil config")
	}
	c := *cfg
	if c.NumKeyValueHeads == 0 {
		c.NumKeyValueHeads = c.NumAttentionHeads
	}
	if c.HiddenAct == "" {
		c.HiddenAct = "silu"
	}
	if c.RMSNormEps == 0 {
		c.RMSNormEps = 1e-6
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 1e6
	}
	if c.NumAttentionHeads <= 0 || c.HiddenSize <= 0 || c.NumHiddenLayers <= 0 || c.VocabSize <= 0 ||
		c.IntermediateSize <= 0 || c.MaxPositionEmbeddings <= 0 || c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return nil, fmt.Errorf("qwen: NewRandom: incomplete or inconsistent config %+v", c)
	}
	raw := map[string]any{"sliding_window": nil}
	if c.SlidingWindow > 0 {
		raw["sliding_window"] = float64(c.SlidingWindow)
	}
	wc := &weights.Config{ModelType: "qwen2", Qwen2: &c, Raw: raw}
	return New(wc, nil, newRandomStore(&c, seed), Options{DType: dtype})
}

// randomStore is a weights.Store whose tensors are drawn on demand, each from a generator
// seeded by (seed, hash of its name), so a tensor read twice is the same tensor.
type randomStore struct {
	seed  uint64
	infos map[string]weights.TensorInfo
	names []string
}

func newRandomStore(c *weights.Qwen2Config, seed uint64) *randomStore {
	s := &randomStore{seed: seed, infos: map[string]weights.TensorInfo{}}
	d := c.HiddenSize / c.NumAttentionHeads
	h, q, kv, in := c.HiddenSize, c.NumAttentionHeads*d, c.NumKeyValueHeads*d, c.IntermediateSize
	add := func(name string, shape ...int) {
		s.infos[name] = weights.TensorInfo{Name: name, DType: weights.F32, Shape: shape}
		s.names = append(s.names, name)
	}
	add("model.embed_tokens.weight", c.VocabSize, h)
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		add(p+"input_layernorm.weight", h)
		add(p+"post_attention_layernorm.weight", h)
		add(p+"self_attn.q_proj.weight", q, h)
		add(p+"self_attn.q_proj.bias", q)
		add(p+"self_attn.k_proj.weight", kv, h)
		add(p+"self_attn.k_proj.bias", kv)
		add(p+"self_attn.v_proj.weight", kv, h)
		add(p+"self_attn.v_proj.bias", kv)
		add(p+"self_attn.o_proj.weight", h, q)
		add(p+"mlp.gate_proj.weight", in, h)
		add(p+"mlp.up_proj.weight", in, h)
		add(p+"mlp.down_proj.weight", h, in)
	}
	add("model.norm.weight", h)
	if !c.TieWordEmbeddings {
		add("lm_head.weight", c.VocabSize, h)
	}
	sort.Strings(s.names)
	return s
}

func (s *randomStore) Names() []string { return append([]string(nil), s.names...) }

func (s *randomStore) Info(name string) (weights.TensorInfo, bool) {
	i, ok := s.infos[name]
	return i, ok
}

func (s *randomStore) Float32(name string) ([]float32, []int, error) {
	info, ok := s.infos[name]
	if !ok {
		return nil, nil, fmt.Errorf("qwen: random store: tensor %q: %w", name, weights.ErrMissingTensor)
	}
	n := 1
	for _, d := range info.Shape {
		n *= d
	}
	hs := fnv.New64a()
	hs.Write([]byte(name))
	// splitmix64: plenty for weights that only need to be deterministic and spread out, and
	// far cheaper than math/rand for the model's half a billion values.
	state := s.seed ^ hs.Sum64()
	uniform := func() float32 { // in [-1, 1)
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		return float32(int32(z>>32)) / (1 << 31)
	}
	out := make([]float32, n)
	// Uniform on [-a, a] has standard deviation a/√3; a = 0.0346 gives 0.02.
	const a = 0.0346
	switch {
	case len(info.Shape) == 1 && strings.HasSuffix(name, ".weight"): // norms
		for i := range out {
			out[i] = 1 + uniform()*0.1
		}
	case len(info.Shape) == 1: // biases
		for i := range out {
			out[i] = uniform() * 0.05
		}
	default:
		for i := range out {
			out[i] = uniform() * a
		}
	}
	return out, append([]int(nil), info.Shape...), nil
}

func (s *randomStore) Int64(name string) ([]int64, []int, error) {
	return nil, nil, fmt.Errorf("qwen: random store: tensor %q is float32", name)
}

func (s *randomStore) Raw(name string) ([]byte, weights.TensorInfo, error) {
	return nil, weights.TensorInfo{}, fmt.Errorf("qwen: random store: tensor %q has no stored bytes", name)
}

func (s *randomStore) Close() error { return nil }
