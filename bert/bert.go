package bert

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/clinfer/clinfer/internal/nn"
	"github.com/clinfer/clinfer/tensorops"
)

// The weights of the encoder, one struct per Hugging Face submodule. `ckpt` tags are
// checkpoint names relative to the enclosing module ("bert." or "roberta." for the encoder,
// nothing for heads); `shape` tags name the dimensions: vocab, types, maxpos (config
// max_position_embeddings), hidden, inter (intermediate_size), labels.

// Embeddings is BertEmbeddings / RobertaEmbeddings (the same tensors; RoBERTa differs only in
// its position ids).
type Embeddings struct {
	Word      []float32 `ckpt:"word_embeddings.weight" shape:"vocab,hidden"`
	Position  []float32 `ckpt:"position_embeddings.weight" shape:"maxpos,hidden"`
	TokenType []float32 `ckpt:"token_type_embeddings.weight" shape:"types,hidden"`
	LNWeight  []float32 `ckpt:"LayerNorm.weight" shape:"hidden"`
	LNBias    []float32 `ckpt:"LayerNorm.bias" shape:"hidden"`
}

// SelfAttention is BertSelfAttention: the query, key and value projections.
type SelfAttention struct {
	QueryW []float32 `ckpt:"query.weight" shape:"hidden,hidden"`
	QueryB []float32 `ckpt:"query.bias" shape:"hidden"`
	KeyW   []float32 `ckpt:"key.weight" shape:"hidden,hidden"`
	KeyB   []float32 `ckpt:"key.bias" shape:"hidden"`
	ValueW []float32 `ckpt:"value.weight" shape:"hidden,hidden"`
	ValueB []float32 `ckpt:"value.bias" shape:"hidden"`
}

// DenseLayerNorm is BertSelfOutput and BertOutput: LayerNorm(dense(x) + residual).
type DenseLayerNorm struct {
	DenseW   []float32 `ckpt:"dense.weight" shape:"hidden,in"`
	DenseB   []float32 `ckpt:"dense.bias" shape:"hidden"`
	LNWeight []float32 `ckpt:"LayerNorm.weight" shape:"hidden"`
	LNBias   []float32 `ckpt:"LayerNorm.bias" shape:"hidden"`
}

// Dense is a Linear with its activation applied by the caller (BertIntermediate, BertPooler,
// classifiers).
type Dense struct {
	Weight []float32 `ckpt:"weight" shape:"out,in"`
	Bias   []float32 `ckpt:"bias" shape:"out"`
}

// Layer is BertLayer (encoder.layer.N).
type Layer struct {
	Attention       SelfAttention  `ckpt:"attention.self."`
	AttentionOutput DenseLayerNorm `ckpt:"attention.output." dims:"in=hidden"`
	Intermediate    Dense          `ckpt:"intermediate.dense." dims:"out=inter,in=hidden"` // act = hidden_act
	Output          DenseLayerNorm `ckpt:"output." dims:"in=inter"`

	// Packed once at load; the raw slices above are released after packing.
	qkv, attnOut, inter, out *tensorops.Linear
}

// pack builds the kernels' weights. Q, K and V are stacked into one [3*hidden, hidden] Linear
// so that a layer starts with a single matrix product.
func (l *Layer) pack(hidden, inter int) {
	a := &l.Attention
	w := make([]float32, 0, 3*hidden*hidden)
	w = append(append(append(w, a.QueryW...), a.KeyW...), a.ValueW...)
	b := make([]float32, 0, 3*hidden)
	b = append(append(append(b, a.QueryB...), a.KeyB...), a.ValueB...)
	l.qkv = tensorops.NewLinear(w, 3*hidden, hidden, b)
	l.attnOut = tensorops.NewLinear(l.AttentionOutput.DenseW, hidden, hidden, l.AttentionOutput.DenseB)
	l.inter = tensorops.NewLinear(l.Intermediate.Weight, inter, hidden, l.Intermediate.Bias)
	l.out = tensorops.NewLinear(l.Output.DenseW, hidden, inter, l.Output.DenseB)
	*a = SelfAttention{}
	l.AttentionOutput.DenseW, l.AttentionOutput.DenseB = nil, nil
	l.Intermediate = Dense{}
	l.Output.DenseW, l.Output.DenseB = nil, nil
}

// graph variants
const (
	variantPlain  = 0
	variantHidden = 1 // keep every layer's hidden states as outputs
)

// graph input and output names
const (
	inIDs       = "input_ids"
	inTypes     = "token_type_ids"
	inPositions = "position_ids"
	inMask      = "attention_mask" // additive, float32 [B, T]
	outLast     = "last_hidden_state"
	outPooled   = "pooler_output"
	outLogits   = "logits"
)

func hiddenName(i int) string { return fmt.Sprintf("hidden_states.%d", i) }

// build describes the forward pass for one (batch, padded length):
//
//	h0 = LayerNorm((word[ids] + type[types]) + position[positions])
//	per layer: a = LayerNorm(attnOut(attention(qkv(h))) + h); h = LayerNorm(out(act(inter(a))) + a)
//	then the head.
func (m *Model) build(b *nn.Builder, k nn.Key) error {
	B, T, H := k.Batch, k.Length, m.hidden
	ids := b.Input(inIDs, tensor.Int, B, T)
	types := b.Input(inTypes, tensor.Int, B, T)
	pos := b.Input(inPositions, tensor.Int, B, T)
	mask := b.Input(inMask, tensor.Float32, B, T)

	e := &m.Embeddings
	h := b.Embed("embeddings", H, []nn.EmbeddingTable{
		{Name: m.prefix + "embeddings.word_embeddings.weight", Data: e.Word, Rows: len(e.Word) / H},
		{Name: m.prefix + "embeddings.token_type_embeddings.weight", Data: e.TokenType, Rows: len(e.TokenType) / H},
		{Name: m.prefix + "embeddings.position_embeddings.weight", Data: e.Position, Rows: len(e.Position) / H},
	}, ids, types, pos)
	h = b.LayerNorm("embeddings", h, e.LNWeight, e.LNBias, m.eps)
	keep := k.Variant == variantHidden
	if keep {
		b.Output(hiddenName(0), h)
	}

	spec := nn.AttentionSpec{Batch: B, Length: T, Heads: m.heads, HeadDim: H / m.heads}
	for i := range m.Layers {
		l := &m.Layers[i]
		name := fmt.Sprintf("layer.%d", i)
		qkv := b.Linear(name+".qkv", h, l.qkv, nn.ActNone)
		ctx := b.Attention(name+".attention", qkv, mask, nil, spec)
		a := b.LayerNorm(name+".attention.output", b.LinearAdd(name+".attention.output", ctx, l.attnOut, h),
			l.AttentionOutput.LNWeight, l.AttentionOutput.LNBias, m.eps)
		f := b.Linear(name+".intermediate", a, l.inter, m.act)
		h = b.LayerNorm(name+".output", b.LinearAdd(name+".output", f, l.out, a),
			l.Output.LNWeight, l.Output.LNBias, m.eps)
		if keep {
			b.Output(hiddenName(i+1), h)
		}
	}
	if !keep && m.head == HeadNone {
		b.Output(outLast, h)
	}
	m.buildHead(b, h, B, T)
	return b.Err()
}

func (m *Model) buildHead(b *nn.Builder, h *gorgonia.Node, B, T int) {
	var first *gorgonia.Node
	if m.pooler != nil || m.head == HeadSequence || m.head == HeadMulti {
		first = b.SelectRow("cls", h, B, T, 0)
	}
	var pooled *gorgonia.Node
	if m.pooler != nil {
		pooled = b.Linear("pooler", first, m.pooler, nn.ActTanh)
		b.Output(outPooled, pooled)
	}
	switch m.head {
	case HeadToken:
		b.Output(outLogits, b.Linear("classifier", h, m.classifier, nn.ActNone))
	case HeadSequence:
		if m.classifierDense != nil {
			// RobertaClassificationHead: out_proj(tanh(dense(h[:, 0])))
			x := b.Linear("classifier.dense", first, m.classifierDense, nn.ActTanh)
			b.Output(outLogits, b.Linear("classifier.out_proj", x, m.classifier, nn.ActNone))
		} else {
			b.Output(outLogits, b.Linear("classifier", pooled, m.classifier, nn.ActNone))
		}
	case HeadMulti:
		// All heads read the same first-token vector, so they run as one stacked Linear.
		b.Output(outLogits, b.Linear("linear_heads", first, m.classifier, nn.ActNone))
	}
}

// positions fills the position ids of one padded batch: 0..T-1 for BERT; for RoBERTa and
// XLM-R padding_idx + the running count of non-padding tokens, and padding_idx on padding
// (create_position_ids_from_input_ids, which looks at the ids, not the attention mask).
func (m *Model) positions(dst, ids []int, B, T int) {
	for bi := 0; bi < B; bi++ {
		row := ids[bi*T : (bi+1)*T]
		out := dst[bi*T : (bi+1)*T]
		if m.kind == KindBERT {
			for t := range out {
				out[t] = t
			}
			continue
		}
		n := 0
		for t, id := range row {
			if id == m.padID {
				out[t] = m.padID
				continue
			}
			n++
			out[t] = m.padID + n
		}
	}
}
