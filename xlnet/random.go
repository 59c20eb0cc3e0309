package xlnet

import (
	"github.com/clinfer/clinfer/internal/nn"
	"github.com/clinfer/clinfer/tensorops"
	"github.com/clinfer/clinfer/weights"
)

// NewRandom builds a model of cfg's shapes with seeded random weights (no files), for
// benchmarks and tests. The head follows cfg.Architectures (or WithHead).
func NewRandom(cfg *weights.Config, seed uint64, opts ...Option) (*Model, error) {
	m, err := newModel(cfg, opts)
	if err != nil {
		return nil, err
	}
	m.prefix = "transformer."
	c := cfg.XLNet
	M, ND, I := c.DModel, c.NHead*c.DHead, c.DInner
	normal := nn.RandomNormal(seed)
	w := func(n int) []float32 { return normal(n, 0, 0.02) }
	gamma := func() []float32 { return normal(M, 1, 0.1) }
	m.Word = w(c.VocabSize * M)
	m.Layers = make([]Layer, c.NLayer)
	for i := range m.Layers {
		m.Layers[i] = Layer{
			Attn: RelAttention{Q: w(M * ND), K: w(M * ND), V: w(M * ND), O: w(M * ND), R: w(M * ND),
				RWBias: w(ND), RRBias: w(ND), RSBias: w(ND), SegEmbed: w(2 * ND), LNWeight: gamma(), LNBias: w(M)},
			FF: FeedForward{Layer1W: w(I * M), Layer1B: w(I), Layer2W: w(M * I), Layer2B: w(M), LNWeight: gamma(), LNBias: w(M)},
		}
	}
	linear := func(out int) *tensorops.Linear { return tensorops.NewLinear(w(out*M), out, M, w(out)) }
	switch m.head {
	case HeadToken:
		m.classifier = linear(len(m.labels))
	case HeadSequence:
		if c.SummaryUseProj {
			m.summary = linear(M)
		}
		m.classifier = linear(len(m.labels))
	}
	m.pack()
	return m, nil
}
