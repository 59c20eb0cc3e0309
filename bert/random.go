package bert

import (
	"fmt"

	"github.com/clinfer/clinfer/internal/nn"
	"github.com/clinfer/clinfer/tensorops"
	"github.com/clinfer/clinfer/weights"
)

// RandomVocabRows caps the word-embedding table of NewRandom: a real XLM-R table (250002 x
// 1024) would take 1 GB and does not change the speed of a forward pass, which reads one row
// per token. Ids at or above the cap are rejected like out-of-vocabulary ids.
const RandomVocabRows = 8192

// NewRandom builds a model of cfg's shapes with seeded random weights (no files), for
// benchmarks and tests. The head follows cfg.Architectures (or WithHead); a multi-head model
// gets CheXbert's 14 heads. The word-embedding table has min(vocab_size, RandomVocabRows) rows.
func NewRandom(cfg *weights.Config, seed uint64, opts ...Option) (*Model, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	m, err := newModel(cfg, o)
	if err != nil {
		return nil, err
	}
	m.prefix = m.kind.prefix()
	c := cfg.Bert
	H, I := c.HiddenSize, c.IntermediateSize
	normal := nn.RandomNormal(seed)
	w := func(n int) []float32 { return normal(n, 0, 0.02) }
	gamma := func() []float32 { return normal(H, 1, 0.1) }

	m.Embeddings = Embeddings{
		Word:      w(min(c.VocabSize, RandomVocabRows) * H),
		Position:  w(c.MaxPositionEmbeddings * H),
		TokenType: w(c.TypeVocabSize * H),
		LNWeight:  gamma(),
		LNBias:    w(H),
	}
	if m.padID >= len(m.Embeddings.Word)/H {
		return nil, fmt.Errorf("bert: pad_token_id %d beyond the %d random vocabulary rows", m.padID, RandomVocabRows)
	}
	m.Layers = make([]Layer, c.NumHiddenLayers)
	for i := range m.Layers {
		l := &m.Layers[i]
		l.Attention = SelfAttention{QueryW: w(H * H), QueryB: w(H), KeyW: w(H * H), KeyB: w(H), ValueW: w(H * H), ValueB: w(H)}
		l.AttentionOutput = DenseLayerNorm{DenseW: w(H * H), DenseB: w(H), LNWeight: gamma(), LNBias: w(H)}
		l.Intermediate = Dense{Weight: w(I * H), Bias: w(I)}
		l.Output = DenseLayerNorm{DenseW: w(H * I), DenseB: w(H), LNWeight: gamma(), LNBias: w(H)}
		l.pack(H, I)
	}
	linear := func(out int) *tensorops.Linear { return tensorops.NewLinear(w(out*H), out, H, w(out)) }
	labels := len(m.labels)
	switch m.head {
	case HeadToken:
		m.classifier = linear(labels)
	case HeadSequence:
		if m.kind == KindBERT {
			m.pooler = linear(H)
		} else {
			m.classifierDense = linear(H)
		}
		m.classifier = linear(labels)
	case HeadMulti:
		m.headSizes = make([]int, len(CheXbertConditions))
		total := 0
		for i := range m.headSizes {
			m.headSizes[i] = 4
			if i == len(m.headSizes)-1 {
				m.headSizes[i] = 2
			}
			total += m.headSizes[i]
		}
		m.classifier = linear(total)
		m.labels = append([]string(nil), CheXbertConditions...)
	}
	return m, nil
}
