// Package qwen runs Qwen1.5 / Qwen2 / Qwen2.5 decoders (Hugging Face Qwen2ForCausalLM) as
// transformers v4.39.1 computes them with eager attention: RMSNorm, rotate-half RoPE, grouped
// query attention with q/k/v biases, SwiGLU MLP, tied or untied lm_head.
//
// The forward pass is a sequence of direct calls on flat float32 slices: a prompt runs through
// the GEMM kernels (tensorops.Engine.Forward with rows > 1), each generated token through the
// GEMV path (rows == 1) against a preallocated KV cache. A loaded Model is immutable and safe for
// concurrent use; per-call buffers come from a sync.Pool.
//
//	m, err := qwen.Load(dir, qwen.Options{DType: qwen.BF16}) // tokenizer loaded from dir when present
//	res, err := m.GenerateChat(ctx, [][]tokenize.Message{{{Role: "user", Content: report}}},
//		qwen.GenerateOptions{MaxNewTokens: 64})
//	fmt.Println(res[0].Text, res[0].Reason)
package qwen

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/clinfer/clinfer/tensorops"
	"github.com/clinfer/clinfer/weights"
)

// DType selects how the Linear weights are held in memory.
type DType int

const (
	// F32 keeps every weight in float32.
	F32 DType = iota
	// BF16 keeps the Linear weights (and the embedding table) as bfloat16; products accumulate
	// in float32. Norm weights and biases stay float32.
	BF16
	// Int8 quantizes the Linear weights symmetrically per output channel at load time; the
	// embedding table, norm weights and biases stay float32.
	Int8
)

func (d DType) String() string {
	switch d {
	case F32:
		return "F32"
	case BF16:
		return "BF16"
	case Int8:
		return "Int8"
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// ErrTooLong is wrapped by errors for inputs longer than max_position_embeddings.
var ErrTooLong = errors.New("qwen: sequence longer than max_position_embeddings")

// hfDefaultSlidingWindow is Qwen2Config's default sliding_window in transformers v4.39.1, used
// when config.json has no sliding_window key at all.
const hfDefaultSlidingWindow = 4096

// Weights are the tensors of Qwen2ForCausalLM, packed once for the kernels.
// Shapes use H = hidden_size, I = intermediate_size, V = vocab_size, D = head_dim,
// NH = num_attention_heads, NKV = num_key_value_heads.
type Weights struct {
	Embed  embedding         `ckpt:"model.embed_tokens.weight"` // [V, H]
	Layers []Layer           // model.layers.{i}
	Norm   []float32         `ckpt:"model.norm.weight"` // [H]
	LMHead *tensorops.Linear `ckpt:"lm_head.weight"`    // [V, H]; model.embed_tokens.weight when tie_word_embeddings
}

// Layer is one Qwen2DecoderLayer (pre-norm attention and MLP blocks with residuals).
type Layer struct {
	InputNorm []float32 `ckpt:"input_layernorm.weight"` // [H]
	Attn      Attention `ckpt:"self_attn"`
	PostNorm  []float32 `ckpt:"post_attention_layernorm.weight"` // [H]
	MLP       MLP       `ckpt:"mlp"`
}

// Attention is Qwen2Attention. q, k and v are fused into one product (one pass over the
// input, one kernel call); every output element is still its own dot product, so the result is
// the same as three separate projections.
type Attention struct {
	// q_proj.weight [NH*D, H], k_proj.weight [NKV*D, H], v_proj.weight [NKV*D, H], stacked
	// in that order, with q_proj.bias, k_proj.bias, v_proj.bias likewise.
	QKV *tensorops.Linear `ckpt:"q_proj,k_proj,v_proj"`
	O   *tensorops.Linear `ckpt:"o_proj.weight"` // [H, NH*D], no bias
}

// MLP is Qwen2MLP: down(silu(gate(x)) * up(x)), gate and up fused into one product.
type MLP struct {
	GateUp *tensorops.Linear `ckpt:"gate_proj.weight,up_proj.weight"` // [2*I, H]: gate rows then up rows
	Down   *tensorops.Linear `ckpt:"down_proj.weight"`                // [H, I]
}

// embedding is the token embedding table, float32 or bfloat16.
type embedding struct {
	f32  []float32 // [V, H]
	bf16 []uint16  // [V, H]
	rows int
	cols int
}

// lookup copies the embedding rows of ids into dst [len(ids), cols].
func (e *embedding) lookup(dst []float32, ids []int) error {
	for i, id := range ids {
		if id < 0 || id >= e.rows {
			return fmt.Errorf("qwen: token id %d outside the vocabulary [0, %d)", id, e.rows)
		}
		out := dst[i*e.cols : (i+1)*e.cols]
		if e.f32 != nil {
			copy(out, e.f32[id*e.cols:(id+1)*e.cols])
			continue
		}
		for j, h := range e.bf16[id*e.cols : (id+1)*e.cols] {
			out[j] = weights.BF16ToF32(h)
		}
	}
	return nil
}

// Config is the part of config.json and generation_config.json the decoder runs on.
type Config struct {
	weights.Qwen2Config
	HeadDim int
	// Window is the eager-attention sliding window (0: none). transformers v4.39.1 builds the
	// eager causal mask with sliding_window for every layer, whatever use_sliding_window and
	// max_window_layers say (those two only steer its flash-attention path); this package
	// follows the eager computation, which is what the reference fixtures record.
	Window int
	// EOSTokenIDs stop generation by default (generation_config.json eos_token_id, else
	// config.json's).
	EOSTokenIDs []int
	// PadTokenID fills left padding in batched prompts (pad_token_id, falling back to the first
	// eos id as transformers does); it only matters for the repetition penalty.
	PadTokenID int
	BOSTokenID int // -1 when unset
}

// Model is a loaded Qwen2ForCausalLM. Immutable and safe for concurrent use.
type Model struct {
	Config Config
	DType  DType
	W      Weights

	eng     *tensorops.Engine
	invFreq []float32 // [D/2] RoPE inverse frequencies, as transformers computes them in float32
	tok     Tokenizer // optional, for text prompts, stop strings and streaming text
	pool    sync.Pool // *state
}

// Options control loading.
type Options struct {
	DType  DType
	Engine *tensorops.Engine // nil: tensorops.Default()
	// Tokenizer enables text and chat prompts, stop strings and decoded text in results.
	Tokenizer Tokenizer
}

func newModel(cfg Config, opt Options) *Model {
	m := &Model{Config: cfg, DType: opt.DType, eng: opt.Engine, tok: opt.Tokenizer}
	if m.eng == nil {
		m.eng = tensorops.Default()
	}
	// torch: 1 / (base ** (arange(0, D, 2).float() / D)), every step in float32.
	d := cfg.HeadDim
	m.invFreq = make([]float32, d/2)
	base := float32(cfg.RopeTheta)
	for j := range m.invFreq {
		e := float32(2*j) / float32(d)
		p := float32(math.Pow(float64(base), float64(e)))
		m.invFreq[j] = 1 / p
	}
	return m
}

// Tokenizer is what the model needs from a tokenizer (package tokenize satisfies it).
type Tokenizer interface {
	Encode(text string) ([]int, error)
	Decode(ids []int) (string, error)
}

// state holds one call's buffers: activations for up to n rows and the KV cache.
type state struct {
	n                                  int
	x, xn, qkv, att, gu, tmp, cos, sin []float32
	scores, mask                       []float32
	k, v                               [][]float32 // per layer [batch, cap, NKV*D]
	kvBatch, kvCap                     int
	lastRows, logits                   []float32
	positions                          []int
}

func (m *Model) getState(rows, batch, capacity int) *state {
	s, _ := m.pool.Get().(*state)
	if s == nil {
		s = &state{}
	}
	c := &m.Config
	h, qkvDim := c.HiddenSize, c.HiddenSize+2*c.NumKeyValueHeads*c.HeadDim
	if rows > s.n {
		s.n = rows
		s.x = make([]float32, rows*h)
		s.xn = make([]float32, rows*h)
		s.qkv = make([]float32, rows*qkvDim)
		s.att = make([]float32, rows*c.NumAttentionHeads*c.HeadDim)
		s.gu = make([]float32, rows*2*c.IntermediateSize)
		s.tmp = make([]float32, rows*h)
		s.cos = make([]float32, rows*c.HeadDim/2)
		s.sin = make([]float32, rows*c.HeadDim/2)
		s.positions = make([]int, rows)
	}
	kvDim := c.NumKeyValueHeads * c.HeadDim
	if s.k == nil || len(s.k[0]) < batch*capacity*kvDim {
		s.k = make([][]float32, c.NumHiddenLayers)
		s.v = make([][]float32, c.NumHiddenLayers)
		for l := range s.k {
			s.k[l] = make([]float32, batch*capacity*kvDim)
			s.v[l] = make([]float32, batch*capacity*kvDim)
		}
	}
	// The cache keeps its allocation; only its [batch, capacity] view changes per call.
	s.kvBatch, s.kvCap = batch, capacity
	if len(s.lastRows) < batch*h {
		s.lastRows = make([]float32, batch*h)
	}
	if len(s.logits) < batch*c.VocabSize {
		s.logits = make([]float32, batch*c.VocabSize)
	}
	return s
}

// step is the batch view of one decoder call: B sequences of T new tokens each, written to
// the cache at [past, past+T). keyMask [B, kvCap] is additive (0 or -MaxFloat32).
type step struct {
	b, t, past int
	keyMask    []float32
}

// decode runs every decoder layer over s.x [B*T, H] (already embedded) and leaves the final
// RMSNorm output in s.xn. hidden, when non-nil, receives the input of each layer and the
// final normed output (transformers' output_hidden_states).
func (m *Model) decode(s *state, st step, hidden func(i int, h []float32)) {
	c := &m.Config
	n := st.b * st.t
	h := c.HiddenSize
	m.ropeTables(s, n)
	for l := range m.W.Layers {
		if hidden != nil {
			hidden(l, s.x[:n*h])
		}
		m.W.Layers[l].forward(m, s, l, st)
	}
	tensorops.RMSNorm(s.xn[:n*h], s.x[:n*h], n, h, m.W.Norm, float32(c.RMSNormEps))
	if hidden != nil {
		hidden(len(m.W.Layers), s.xn[:n*h])
	}
}

func (ly *Layer) forward(m *Model, s *state, l int, st step) {
	c := &m.Config
	n, h := st.b*st.t, c.HiddenSize
	x, xn := s.x[:n*h], s.xn[:n*h]
	tensorops.RMSNorm(xn, x, n, h, ly.InputNorm, float32(c.RMSNormEps))
	ly.Attn.forward(m, s, l, st)
	addInPlace(x, s.tmp[:n*h])
	tensorops.RMSNorm(xn, x, n, h, ly.PostNorm, float32(c.RMSNormEps))
	ly.MLP.forward(m, s, n)
	addInPlace(x, s.tmp[:n*h])
}

// forward reads s.xn, writes the attention block's output (before the residual) to s.tmp.
func (a *Attention) forward(m *Model, s *state, l int, st step) {
	c := &m.Config
	n := st.b * st.t
	nh, nkv, d := c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim
	qDim, kvDim := nh*d, nkv*d
	qkvDim := qDim + 2*kvDim
	qkv := s.qkv[:n*qkvDim]
	m.eng.Forward(a.QKV, qkv, s.xn[:n*c.HiddenSize], n)
	applyRoPE(qkv, n, qkvDim, 0, nh, d, s.cos, s.sin)
	applyRoPE(qkv, n, qkvDim, qDim, nkv, d, s.cos, s.sin)
	kc, vc := s.k[l], s.v[l]
	for b := 0; b < st.b; b++ {
		for t := 0; t < st.t; t++ {
			row := qkv[(b*st.t+t)*qkvDim:]
			dst := (b*s.kvCap + st.past + t) * kvDim
			copy(kc[dst:dst+kvDim], row[qDim:qDim+kvDim])
			copy(vc[dst:dst+kvDim], row[qDim+kvDim:qDim+2*kvDim])
		}
	}
	m.attention(s, qkv, qkvDim, kc, vc, st)
	m.eng.Forward(a.O, s.tmp[:n*c.HiddenSize], s.att[:n*qDim], n)
}

// forward reads s.xn [n, H] and writes the MLP output to s.tmp.
func (p *MLP) forward(m *Model, s *state, n int) {
	c := &m.Config
	inter := c.IntermediateSize
	gu := s.gu[:n*2*inter]
	m.eng.Forward(p.GateUp, gu, s.xn[:n*c.HiddenSize], n)
	// Each row holds [gate | up]; the product goes into the gate half, then is compacted so
	// down_proj reads a dense [n, I] matrix.
	for r := 0; r < n; r++ {
		row := gu[r*2*inter : (r+1)*2*inter]
		tensorops.SiLUMul(row[:inter], row[inter:])
		if r > 0 {
			copy(gu[r*inter:(r+1)*inter], row[:inter])
		}
	}
	m.eng.Forward(p.Down, s.tmp[:n*c.HiddenSize], gu[:n*inter], n)
}

// ropeTables fills s.cos, s.sin [n, D/2] for s.positions[:n] the way transformers'
// Qwen2RotaryEmbedding does: angle = float32(pos) * inv_freq in float32, then cos/sin.
func (m *Model) ropeTables(s *state, n int) {
	half := m.Config.HeadDim / 2
	for r := 0; r < n; r++ {
		p := float32(s.positions[r])
		for j, f := range m.invFreq {
			ang := float64(p * f)
			s.cos[r*half+j] = float32(math.Cos(ang))
			s.sin[r*half+j] = float32(math.Sin(ang))
		}
	}
}

// applyRoPE rotates heads [off, off+heads*D) of every row of x (row stride ld) in place with the
// rotate-half convention: pairs (j, j+D/2) inside each head.
func applyRoPE(x []float32, n, ld, off, heads, d int, cos, sin []float32) {
	half := d / 2
	for r := 0; r < n; r++ {
		cs, sn := cos[r*half:(r+1)*half], sin[r*half:(r+1)*half]
		for hd := 0; hd < heads; hd++ {
			v := x[r*ld+off+hd*d : r*ld+off+(hd+1)*d]
			lo, hi := v[:half], v[half:d]
			for j := range half {
				a, b := lo[j], hi[j]
				// Explicit roundings keep the products unfused, as PyTorch rounds q·cos and
				// rotate_half(q)·sin before adding them.
				lo[j] = float32(a*cs[j]) - float32(b*sn[j])
				hi[j] = float32(b*cs[j]) + float32(a*sn[j])
			}
		}
	}
}

// attention computes softmax(q·kᵀ/√D + mask)·v for every query head, reading q from the fused
// qkv rows and k, v from the cache, and writes s.att [B*T, NH*D]. Query head h reads KV head
// h / (NH/NKV). Query t of a sequence sits at cache index past+t and sees keys at indices
// <= past+t and, with a sliding window, > past+t-window (transformers v4.39 eager mask).
func (m *Model) attention(s *state, qkv []float32, ldq int, kc, vc []float32, st step) {
	c := &m.Config
	kvLen := st.past + st.t
	kvDim := c.NumKeyValueHeads * c.HeadDim
	windowed := c.Window > 0 && kvLen > c.Window
	if windowed && st.t > 1 {
		m.attentionWindowed(s, qkv, ldq, kc, vc, st)
		return
	}
	// tensorops reads the key mask densely as [B, kvLen].
	if need := st.b * kvLen; len(s.mask) < need {
		s.mask = make([]float32, need)
	}
	mask := s.mask[:st.b*kvLen]
	for b := 0; b < st.b; b++ {
		row := mask[b*kvLen : (b+1)*kvLen]
		copy(row, st.keyMask[b*s.kvCap:b*s.kvCap+kvLen])
		if windowed { // single query at index kvLen-1
			for j := range kvLen - c.Window {
				row[j] = -math.MaxFloat32
			}
		}
	}
	m.eng.Attention(s.att[:st.b*st.t*c.NumAttentionHeads*c.HeadDim], qkv, kc, vc, tensorops.AttentionParams{
		Batch: st.b, Heads: c.NumAttentionHeads, KVHeads: c.NumKeyValueHeads,
		QLen: st.t, KVLen: kvLen, HeadDim: c.HeadDim,
		LDQ: ldq, LDKV: kvDim, BatchStrideKV: s.kvCap * kvDim,
		Scale:   float32(1 / math.Sqrt(float64(c.HeadDim))),
		KeyMask: mask, Causal: true,
	})
}

// attentionWindowed is attention for several queries when the sliding window hides some
// keys from some of them, a per-query mask tensorops.Attention does not take: one head at a
// time through Sgemm.
func (m *Model) attentionWindowed(s *state, qkv []float32, ldq int, kc, vc []float32, st step) {
	c := &m.Config
	nh, nkv, d := c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim
	kvDim, group := nkv*d, nh/nkv
	kvLen := st.past + st.t
	scale := float32(1 / math.Sqrt(float64(d)))
	if need := st.t * kvLen; len(s.scores) < need {
		s.scores = make([]float32, need)
	}
	sc := s.scores[:st.t*kvLen]
	qDim := nh * d
	for b := 0; b < st.b; b++ {
		mask := st.keyMask[b*s.kvCap : b*s.kvCap+kvLen]
		kb := kc[b*s.kvCap*kvDim:]
		vb := vc[b*s.kvCap*kvDim:]
		for hd := 0; hd < nh; hd++ {
			g := hd / group
			q := qkv[b*st.t*ldq+hd*d:]
			m.eng.Sgemm(false, true, st.t, kvLen, d, scale, q, ldq, kb[g*d:], kvDim, 0, sc, kvLen)
			for t := 0; t < st.t; t++ {
				row := sc[t*kvLen : (t+1)*kvLen]
				qi := st.past + t
				lo := max(0, qi-c.Window+1)
				for j := range row {
					if j < lo || j > qi {
						row[j] = -math.MaxFloat32
					} else {
						row[j] += mask[j]
					}
				}
				softmaxRow(row)
			}
			m.eng.Sgemm(false, false, st.t, d, kvLen, 1, sc, kvLen, vb[g*d:], kvDim, 0, s.att[b*st.t*qDim+hd*d:], qDim)
		}
	}
}

// softmaxRow is torch.softmax in float32 with max subtraction. A row whose every score is
// masked becomes uniform, as in transformers (such rows are left-padding queries whose output
// nobody reads).
func softmaxRow(x []float32) {
	mx := float32(math.Inf(-1))
	for _, v := range x {
		mx = max(mx, v)
	}
	var sum float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - mx)))
		x[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range x {
		x[i] *= inv
	}
}

func addInPlace(dst, a []float32) {
	a = a[:len(dst)]
	for i := range dst {
		dst[i] += a[i]
	}
}
