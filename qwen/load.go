package qwen

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/clinfer/clinfer/tensorops"
	"github.com/clinfer/clinfer/weights"
)

// Load reads dir/config.json, dir/generation_config.json (optional), the weights in dir
// (model.safetensors, a sharded index, or pytorch_model.bin) and, unless opt.Tokenizer is set,
// the tokenizer when dir has tokenizer.json or vocab.json.
func Load(dir string, opt Options) (*Model, error) {
	wc, err := weights.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	gen, err := readGenerationConfig(filepath.Join(dir, "generation_config.json"))
	if err != nil {
		return nil, err
	}
	if opt.Tokenizer == nil {
		if opt.Tokenizer, err = loadTokenizer(dir); err != nil {
			return nil, err
		}
	}
	st, err := weights.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	// Every weight is copied into the kernels' layouts, so the store is not needed afterwards.
	defer st.Close()
	return New(wc, gen, st, opt)
}

// GenerationConfig is the part of generation_config.json the decoder uses.
type GenerationConfig struct {
	EOSTokenIDs []int
	PadTokenID  *int
	BOSTokenID  *int
}

func readGenerationConfig(path string) (*GenerationConfig, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("qwen: %w", err)
	}
	var raw struct {
		EOS json.RawMessage `json:"eos_token_id"`
		Pad *int            `json:"pad_token_id"`
		BOS *int            `json:"bos_token_id"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("qwen: %s: %w", path, err)
	}
	g := &GenerationConfig{PadTokenID: raw.Pad, BOSTokenID: raw.BOS}
	if g.EOSTokenIDs, err = intOrList(raw.EOS); err != nil {
		return nil, fmt.Errorf("qwen: %s: eos_token_id: %w", path, err)
	}
	return g, nil
}

// intOrList decodes a JSON int, list of ints or null.
func intOrList(r json.RawMessage) ([]int, error) {
	if len(r) == 0 || string(r) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(r, &one); err == nil {
		return []int{one}, nil
	}
	var list []int
	if err := json.Unmarshal(r, &list); err != nil {
		return nil, fmt.Errorf("want an int or a list of ints, got %s", r)
	}
	return list, nil
}

// buildConfig derives the runtime configuration from config.json and generation_config.json.
func buildConfig(wc *weights.Config, gen *GenerationConfig) (Config, error) {
	if wc == nil || wc.Qwen2 == nil {
		return Config{}, fmt.Errorf("qwen: config is not a qwen2 config: %w", weights.ErrUnknownArchitecture)
	}
	c := Config{Qwen2Config: *wc.Qwen2, BOSTokenID: -1, PadTokenID: -1}
	if c.HiddenSize%c.NumAttentionHeads != 0 || (c.HiddenSize/c.NumAttentionHeads)%2 != 0 {
		return Config{}, fmt.Errorf("qwen: hidden_size %d / num_attention_heads %d must be an even head_dim: %w",
			c.HiddenSize, c.NumAttentionHeads, weights.ErrInvalidConfig)
	}
	c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	c.Window = c.SlidingWindow
	if v, ok := wc.Raw["sliding_window"]; !ok {
		c.Window = hfDefaultSlidingWindow
	} else if v == nil {
		c.Window = 0
	}
	if wc.EOSTokenID != nil {
		c.EOSTokenIDs = []int{*wc.EOSTokenID}
	}
	if wc.BOSTokenID != nil {
		c.BOSTokenID = *wc.BOSTokenID
	}
	if wc.PadTokenID != nil {
		c.PadTokenID = *wc.PadTokenID
	}
	if gen != nil {
		if gen.EOSTokenIDs != nil {
			c.EOSTokenIDs = gen.EOSTokenIDs
		}
		if gen.PadTokenID != nil {
			c.PadTokenID = *gen.PadTokenID
		}
		if gen.BOSTokenID != nil {
			c.BOSTokenID = *gen.BOSTokenID
		}
	}
	if c.PadTokenID < 0 && len(c.EOSTokenIDs) > 0 {
		c.PadTokenID = c.EOSTokenIDs[0]
	}
	if c.PadTokenID < 0 {
		c.PadTokenID = 0
	}
	return c, nil
}

// New builds a model from a parsed config, optional generation config and a weight store.
// The store may be closed afterwards.
func New(wc *weights.Config, gen *GenerationConfig, st weights.Store, opt Options) (*Model, error) {
	cfg, err := buildConfig(wc, gen)
	if err != nil {
		return nil, err
	}
	if opt.DType != F32 && opt.DType != BF16 && opt.DType != Int8 {
		return nil, fmt.Errorf("qwen: unsupported dtype %v", opt.DType)
	}
	m := newModel(cfg, opt)
	ld := loader{st: st, dtype: opt.DType}
	c := &m.Config
	h, inter, v := c.HiddenSize, c.IntermediateSize, c.VocabSize
	qDim, kvDim := c.NumAttentionHeads*c.HeadDim, c.NumKeyValueHeads*c.HeadDim

	if m.W.Embed, err = ld.embedding("model.embed_tokens.weight", v, h); err != nil {
		return nil, err
	}
	m.W.Layers = make([]Layer, c.NumHiddenLayers)
	for i := range m.W.Layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		ly := &m.W.Layers[i]
		if ly.InputNorm, err = ld.f32(p+"input_layernorm.weight", h); err != nil {
			return nil, err
		}
		if ly.PostNorm, err = ld.f32(p+"post_attention_layernorm.weight", h); err != nil {
			return nil, err
		}
		a := p + "self_attn."
		if ly.Attn.QKV, err = ld.linear(h, []part{
			{a + "q_proj.weight", a + "q_proj.bias", qDim},
			{a + "k_proj.weight", a + "k_proj.bias", kvDim},
			{a + "v_proj.weight", a + "v_proj.bias", kvDim},
		}); err != nil {
			return nil, err
		}
		if ly.Attn.O, err = ld.linear(qDim, []part{{a + "o_proj.weight", "", h}}); err != nil {
			return nil, err
		}
		f := p + "mlp."
		if ly.MLP.GateUp, err = ld.linear(h, []part{{f + "gate_proj.weight", "", inter}, {f + "up_proj.weight", "", inter}}); err != nil {
			return nil, err
		}
		if ly.MLP.Down, err = ld.linear(inter, []part{{f + "down_proj.weight", "", h}}); err != nil {
			return nil, err
		}
	}
	if m.W.Norm, err = ld.f32("model.norm.weight", h); err != nil {
		return nil, err
	}
	head := "lm_head.weight"
	if c.TieWordEmbeddings {
		head = "model.embed_tokens.weight"
	}
	if m.W.LMHead, err = ld.linear(h, []part{{head, "", v}}); err != nil {
		return nil, err
	}
	return m, nil
}

type loader struct {
	st    weights.Store
	dtype DType
}

// part is one checkpoint Linear (weight [out, in], optional bias [out]) of a fused product.
type part struct {
	weight, bias string
	out          int
}

func (ld *loader) info(name string, shape ...int) (weights.TensorInfo, error) {
	info, ok := ld.st.Info(name)
	if !ok {
		return info, fmt.Errorf("qwen: tensor %q: %w", name, weights.ErrMissingTensor)
	}
	if len(info.Shape) != len(shape) {
		return info, fmt.Errorf("qwen: tensor %q has shape %v, want %v: %w", name, info.Shape, shape, weights.ErrShape)
	}
	for i := range shape {
		if info.Shape[i] != shape[i] {
			return info, fmt.Errorf("qwen: tensor %q has shape %v, want %v: %w", name, info.Shape, shape, weights.ErrShape)
		}
	}
	return info, nil
}

func (ld *loader) f32(name string, shape ...int) ([]float32, error) {
	if _, err := ld.info(name, shape...); err != nil {
		return nil, err
	}
	data, _, err := ld.st.Float32(name)
	if err != nil {
		return nil, fmt.Errorf("qwen: tensor %q: %w", name, err)
	}
	// The store's slice may be a read-only map that dies with the store: keep a copy.
	return append([]float32(nil), data...), nil
}

// bf16 returns the tensor as bfloat16 bits: the stored bytes when the file holds BF16,
// otherwise float32 rounded to nearest even.
func (ld *loader) bf16(name string, shape ...int) ([]uint16, error) {
	info, err := ld.info(name, shape...)
	if err != nil {
		return nil, err
	}
	if info.DType == weights.BF16 {
		raw, _, err := ld.st.Raw(name)
		if err != nil {
			return nil, fmt.Errorf("qwen: tensor %q: %w", name, err)
		}
		out := make([]uint16, len(raw)/2)
		for i := range out {
			out[i] = binary.LittleEndian.Uint16(raw[2*i:])
		}
		return out, nil
	}
	data, _, err := ld.st.Float32(name)
	if err != nil {
		return nil, fmt.Errorf("qwen: tensor %q: %w", name, err)
	}
	out := make([]uint16, len(data))
	for i, f := range data {
		out[i] = weights.F32ToBF16(f)
	}
	return out, nil
}

func (ld *loader) embedding(name string, rows, cols int) (embedding, error) {
	e := embedding{rows: rows, cols: cols}
	var err error
	if ld.dtype == BF16 {
		e.bf16, err = ld.bf16(name, rows, cols)
	} else {
		e.f32, err = ld.f32(name, rows, cols)
	}
	return e, err
}

// linear stacks the parts' weights (and biases, when any part has one) into one Linear of
// the loader's dtype.
func (ld *loader) linear(in int, parts []part) (*tensorops.Linear, error) {
	out := 0
	hasBias := false
	for _, p := range parts {
		out += p.out
		hasBias = hasBias || p.bias != ""
	}
	var bias []float32
	if hasBias {
		bias = make([]float32, 0, out)
		for _, p := range parts {
			if p.bias == "" {
				bias = append(bias, make([]float32, p.out)...)
				continue
			}
			b, err := ld.f32(p.bias, p.out)
			if err != nil {
				return nil, err
			}
			bias = append(bias, b...)
		}
	}
	if ld.dtype == BF16 {
		w := make([]uint16, 0, out*in)
		for _, p := range parts {
			b, err := ld.bf16(p.weight, p.out, in)
			if err != nil {
				return nil, err
			}
			w = append(w, b...)
		}
		return tensorops.NewLinearBF16(w, out, in, bias), nil
	}
	var w []float32
	if len(parts) == 1 {
		if _, err := ld.info(parts[0].weight, parts[0].out, in); err != nil {
			return nil, err
		}
		data, _, err := ld.st.Float32(parts[0].weight)
		if err != nil {
			return nil, fmt.Errorf("qwen: tensor %q: %w", parts[0].weight, err)
		}
		w = data // NewLinear* copy or quantize it
	} else {
		w = make([]float32, 0, out*in)
		for _, p := range parts {
			if _, err := ld.info(p.weight, p.out, in); err != nil {
				return nil, err
			}
			data, _, err := ld.st.Float32(p.weight)
			if err != nil {
				return nil, fmt.Errorf("qwen: tensor %q: %w", p.weight, err)
			}
			w = append(w, data...)
		}
	}
	if ld.dtype == Int8 {
		return tensorops.NewLinearInt8(w, out, in, bias), nil
	}
	return tensorops.NewLinear(w, out, in, bias), nil
}
