// Package xlnet runs XLNet encoders (attn_type "bi", the content stream Hugging Face uses at
// inference) with their token-classification and sequence-classification heads, as
// transformers v4.39 modeling_xlnet.py computes them, on gorgonia graphs of tensorops
// kernels (internal/nn).
//
// XLNet has no absolute positions: attention adds a relative sinusoidal position term and a
// segment term (same / different token_type_ids) to the content score. Its layout puts the
// special tokens at the end (A <sep> <cls>, A <sep> B <sep> <cls>) and pads on the left;
// the sequence classifier summarizes the last position.
package xlnet

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/clinfer/clinfer/internal/nn"
	"github.com/clinfer/clinfer/tagging"
	"github.com/clinfer/clinfer/tensorops"
	"github.com/clinfer/clinfer/weights"
)

// Head is the task head on top of the encoder.
type Head int

// Heads.
const (
	HeadNone     Head = iota // XLNetModel: hidden states
	HeadToken                // XLNetForTokenClassification: classifier on every token, logits [B, T, labels]
	HeadSequence             // XLNetForSequenceClassification: logits_proj(tanh(summary(h[:, -1]))), logits [B, labels]
)

func (h Head) String() string {
	switch h {
	case HeadNone:
		return "none"
	case HeadToken:
		return "token-classification"
	case HeadSequence:
		return "sequence-classification"
	}
	return fmt.Sprintf("Head(%d)", int(h))
}

// DefaultMaxLength is the longest sequence a model accepts unless WithMaxLength says
// otherwise. XLNet's relative positions set no limit; the positional keys of every distance
// up to the maximum are precomputed at load (2·max rows per layer), so it is bounded.
const DefaultMaxLength = 512

// Model is a loaded XLNet with its head. It is immutable after loading and safe for
// concurrent use: each call takes a compiled graph (with its own buffers) from a pool.
type Model struct {
	Word   []float32 `ckpt:"word_embedding.weight" shape:"vocab,model"` // transformer.word_embedding.weight
	Layers []Layer   // transformer.layer.N

	cfg    *weights.Config
	head   Head
	prefix string // "transformer." or "" (a bare XLNetModel checkpoint)

	model, heads, headDim, inner, vocab int
	eps                                 float32
	act                                 nn.Activation
	summaryAct                          nn.Activation
	padID                               int
	maxLen                              int
	labels                              []string

	summary    *tensorops.Linear // sequence_summary.summary [d_model, d_model], nil without summary_use_proj
	classifier *tensorops.Linear // classifier (token) or logits_proj (sequence) [labels, d_model]

	engine *tensorops.Engine
	cache  *nn.GraphCache
}

// Option configures loading.
type Option func(*options)

type options struct {
	engine *tensorops.Engine
	head   *Head
	maxLen int
}

// WithEngine runs the model on e instead of tensorops.Default().
func WithEngine(e *tensorops.Engine) Option { return func(o *options) { o.engine = e } }

// WithHead forces the head instead of deriving it from config.json's architectures.
func WithHead(h Head) Option { return func(o *options) { o.head = &h } }

// WithMaxLength sets the longest accepted sequence (default DefaultMaxLength).
func WithMaxLength(n int) Option { return func(o *options) { o.maxLen = n } }

// Load reads dir/config.json and the checkpoint in dir (model.safetensors, a sharded set, or
// pytorch_model.bin, as weights.OpenDir chooses).
func Load(dir string, opts ...Option) (*Model, error) {
	cfg, err := weights.LoadConfig(dir)
	if err != nil {
		return nil, fmt.Errorf("xlnet: %w", err)
	}
	s, err := weights.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("xlnet: %w", err)
	}
	defer s.Close()
	return LoadFromStore(cfg, s, opts...)
}

// LoadTagger loads the token classifier in dir for the tagging pipeline (the loader
// tagging/taggers dispatches to for model_type "xlnet").
func LoadTagger(dir string) (tagging.TokenClassifier, error) {
	m, err := Load(dir, WithHead(HeadToken))
	if err != nil {
		return nil, err
	}
	return m, nil
}

// LoadFromStore builds a model from a parsed config and an open checkpoint. The tensors are
// copied; the store may be closed afterwards.
func LoadFromStore(cfg *weights.Config, s weights.Store, opts ...Option) (*Model, error) {
	m, err := newModel(cfg, opts)
	if err != nil {
		return nil, err
	}
	switch {
	case has(s, "transformer.word_embedding.weight"):
		m.prefix = "transformer."
	case has(s, "word_embedding.weight"):
		m.prefix = ""
	default:
		return nil, fmt.Errorf("xlnet: no transformer.word_embedding.weight (nor word_embedding.weight) in the checkpoint: %w", weights.ErrMissingTensor)
	}
	if err := m.loadWeights(s); err != nil {
		return nil, err
	}
	return m, nil
}

// newModel validates the config and sets the dimensions; weights are loaded separately.
func newModel(cfg *weights.Config, opts []Option) (*Model, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if cfg == nil || cfg.XLNet == nil {
		return nil, errors.New("xlnet: config has no XLNet section (model_type must be xlnet)")
	}
	c := cfg.XLNet
	bad := func(format string, args ...any) error {
		return fmt.Errorf("xlnet: "+format+": %w", append(args, weights.ErrInvalidConfig)...)
	}
	switch {
	case c.DModel <= 0 || c.DModel%2 != 0:
		return nil, bad("d_model %d must be positive and even (sinusoid halves)", c.DModel)
	case c.NHead <= 0 || c.DHead <= 0 || c.DInner <= 0 || c.NLayer < 0 || c.VocabSize <= 0:
		return nil, bad("n_head %d, d_head %d, d_inner %d, n_layer %d, vocab_size %d", c.NHead, c.DHead, c.DInner, c.NLayer, c.VocabSize)
	case c.AttnType != "bi":
		return nil, bad("attn_type %q unsupported (only \"bi\")", c.AttnType)
	case c.BiData:
		return nil, bad("bi_data true is a pretraining setting, unsupported")
	}
	if c.PadTokenID < 0 || c.PadTokenID >= c.VocabSize {
		return nil, bad("pad_token_id %d outside the vocabulary of %d", c.PadTokenID, c.VocabSize)
	}
	m := &Model{cfg: cfg, model: c.DModel, heads: c.NHead, headDim: c.DHead, inner: c.DInner, vocab: c.VocabSize,
		eps: float32(c.LayerNormEps), padID: c.PadTokenID, maxLen: DefaultMaxLength, engine: o.engine}
	if o.maxLen > 0 {
		m.maxLen = o.maxLen
	}
	if m.engine == nil {
		m.engine = tensorops.Default()
	}
	act, err := nn.ParseActivation(c.FFActivation)
	if err != nil {
		return nil, fmt.Errorf("xlnet: ff_activation: %w", err)
	}
	m.act = act
	m.labels = cfg.Labels()
	arch := cfg.Architecture()
	switch {
	case strings.HasSuffix(arch, "ForTokenClassification"):
		m.head = HeadToken
	case strings.HasSuffix(arch, "ForSequenceClassification"):
		m.head = HeadSequence
	default:
		m.head = HeadNone
	}
	if o.head != nil {
		m.head = *o.head
	}
	if m.head == HeadSequence {
		if c.SummaryType != "last" {
			return nil, bad("summary_type %q unsupported (only \"last\")", c.SummaryType)
		}
		if p, ok := cfg.Raw["summary_proj_to_labels"].(bool); ok && p {
			return nil, bad("summary_proj_to_labels true unsupported")
		}
		switch c.SummaryActivation {
		case "tanh":
			m.summaryAct = nn.ActTanh
		case "":
			m.summaryAct = nn.ActNone
		default:
			return nil, bad("summary_activation %q unsupported", c.SummaryActivation)
		}
	}
	m.cache = nn.NewGraphCache(m.engine, m.build)
	return m, nil
}

func (m *Model) dims() map[string]int {
	c := m.cfg.XLNet
	return map[string]int{"vocab": c.VocabSize, "model": c.DModel, "heads": c.NHead, "head": c.DHead,
		"inner": c.DInner, "two": 2, "labels": len(m.labels)}
}

func (m *Model) loadWeights(s weights.Store) error {
	c := m.cfg.XLNet
	dims := m.dims()
	var errs []error
	if err := loadTensors(s, m.prefix, m, dims); err != nil {
		errs = append(errs, err)
	}
	m.Layers = make([]Layer, c.NLayer)
	for i := range m.Layers {
		if err := loadTensors(s, fmt.Sprintf("%slayer.%d.", m.prefix, i), &m.Layers[i], dims); err != nil {
			errs = append(errs, err)
		}
	}
	dense := func(name string, out int) *tensorops.Linear {
		w, e1 := weights.Expect(s, name+".weight", out, m.model)
		b, e2 := weights.Expect(s, name+".bias", out)
		if err := errors.Join(e1, e2); err != nil {
			errs = append(errs, err)
			return nil
		}
		return tensorops.NewLinear(append([]float32(nil), w...), out, m.model, append([]float32(nil), b...))
	}
	switch m.head {
	case HeadToken:
		m.classifier = dense("classifier", len(m.labels))
	case HeadSequence:
		if c.SummaryUseProj {
			m.summary = dense("sequence_summary.summary", m.model)
		}
		m.classifier = dense("logits_proj", len(m.labels))
	}
	if len(errs) > 0 {
		return fmt.Errorf("xlnet: loading (%s head): %w", m.head, errors.Join(errs...))
	}
	m.pack()
	return nil
}

// pack packs every layer's weights and precomputes its positional keys.
func (m *Model) pack() {
	pos := positionalEmbedding(m.model, m.maxLen, m.cfg.XLNet.ClampLen)
	for i := range m.Layers {
		m.Layers[i].pack(m.engine, m.model, m.heads*m.headDim, m.inner, pos, m.maxLen)
	}
}

// Head is the task head.
func (m *Model) Head() Head { return m.head }

// Config is the model's configuration (do not modify).
func (m *Model) Config() *weights.Config { return m.cfg }

// Labels returns id2label in id order (nil for a bare encoder).
func (m *Model) Labels() []string {
	if m.head == HeadNone {
		return nil
	}
	return append([]string(nil), m.labels...)
}

// MaxLength is the longest sequence the model accepts, special tokens included.
func (m *Model) MaxLength() int { return m.maxLen }

// HiddenSize is d_model.
func (m *Model) HiddenSize() int { return m.model }

// NumLayers is the number of layers.
func (m *Model) NumLayers() int { return len(m.Layers) }

// PadID is the pad_token_id used for padding.
func (m *Model) PadID() int { return m.padID }

// Batch is a batch of tokenized sequences of one length, flattened row-major [Batch, Length].
// XLNet pads on the left, but any padding side gives the same outputs at real tokens.
type Batch struct {
	Batch, Length int
	IDs           []int
	Mask          []int // 1 = token, 0 = padding; nil means all ones
	TypeIDs       []int // nil: no segment term (Hugging Face without token_type_ids)
}

// NewBatch flattens per-sequence slices. mask and typeIDs may be nil; otherwise every row of
// every argument must have the same length.
func NewBatch(ids, mask, typeIDs [][]int) (Batch, error) {
	b, err := nn.FlattenRows(ids, mask, typeIDs)
	if err != nil {
		return Batch(b), fmt.Errorf("xlnet: %w", err)
	}
	return Batch(b), nil
}

// validate checks a batch against the model: shapes, id ranges, mask values, length.
func (m *Model) validate(in Batch) error {
	if err := nn.Tokens(in).CheckShape(); err != nil {
		return fmt.Errorf("xlnet: %w", err)
	}
	if T := in.Length; T > m.maxLen {
		return fmt.Errorf("xlnet: sequence of %d tokens exceeds the model's maximum of %d; split long inputs into windows: %w",
			T, m.maxLen, nn.ErrTooLong)
	}
	// Type ids are only compared with each other (same segment or not): any value is valid.
	if err := nn.Tokens(in).CheckValues(len(m.Word)/m.model, -1); err != nil {
		return fmt.Errorf("xlnet: %w", err)
	}
	return nil
}

// ForwardOption selects extra outputs.
type ForwardOption func(*forwardOptions)

type forwardOptions struct{ hidden bool }

// WithHiddenStates also returns the word embeddings and every layer's output.
func WithHiddenStates() ForwardOption { return func(o *forwardOptions) { o.hidden = true } }

// Result holds a forward pass's outputs, row-major, for the caller's Batch x Length.
type Result struct {
	Batch, Length, HiddenSize int
	// HiddenStates[0] is the word embeddings and HiddenStates[i] the output of layer i-1,
	// each [Batch, Length, HiddenSize] (batch first, as Hugging Face returns them after
	// permuting its [T, B, H] tensors); only with WithHiddenStates.
	HiddenStates [][]float32
	// LastHiddenState [Batch, Length, HiddenSize]: for bare encoders and with WithHiddenStates.
	LastHiddenState []float32
	// SequenceSummary [Batch, HiddenSize]: tanh(summary(h[:, -1])) of a sequence classifier.
	SequenceSummary []float32
	// Logits: token head [Batch, Length, NumLabels]; sequence head [Batch, NumLabels].
	Logits    []float32
	NumLabels int
}

// Forward runs the encoder and head on a batch.
func (m *Model) Forward(ctx context.Context, in Batch, opts ...ForwardOption) (*Result, error) {
	var fo forwardOptions
	for _, f := range opts {
		f(&fo)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.validate(in); err != nil {
		return nil, err
	}
	B, T, H := in.Batch, in.Length, m.model
	key := nn.Key{Batch: B, Length: nn.Bucket(T, m.maxLen)}
	if fo.hidden {
		key.Variant |= variantHidden
	}
	if in.TypeIDs == nil {
		key.Variant |= variantNoSeg
	}
	g, err := m.cache.Get(key)
	if err != nil {
		return nil, fmt.Errorf("xlnet: %w", err)
	}
	defer m.cache.Put(g)
	Tp := key.Length
	m.fill(g, in, Tp)
	if err := g.Run(); err != nil {
		return nil, fmt.Errorf("xlnet: forward: %w", err)
	}

	res := &Result{Batch: B, Length: T, HiddenSize: H}
	// The bucket's extra padding is on the left: a sequence is the last T of Tp rows.
	unpad := func(src []float32, width int) []float32 {
		out := make([]float32, B*T*width)
		for b := 0; b < B; b++ {
			copy(out[b*T*width:(b+1)*T*width], src[(b*Tp+Tp-T)*width:(b+1)*Tp*width])
		}
		return out
	}
	if fo.hidden {
		res.HiddenStates = make([][]float32, len(m.Layers)+1)
		for i := range res.HiddenStates {
			res.HiddenStates[i] = unpad(g.Output(hiddenName(i)), H)
		}
		res.LastHiddenState = res.HiddenStates[len(m.Layers)]
	} else if m.head == HeadNone {
		res.LastHiddenState = unpad(g.Output(outLast), H)
	}
	switch m.head {
	case HeadToken:
		res.NumLabels = m.classifier.Out
		res.Logits = unpad(g.Output(outLogits), res.NumLabels)
	case HeadSequence:
		res.NumLabels = m.classifier.Out
		res.Logits = append([]float32(nil), g.Output(outLogits)...)
		res.SequenceSummary = append([]float32(nil), g.Output(outSum)...)
	}
	return res, nil
}

// fill writes a batch, padded on the left from Length to Tp tokens, into the graph's inputs.
// Bucket padding is masked like input padding, so it changes nothing at real tokens: keys
// at padding get -1e30 for every other query, and relative positions ignore where a
// sequence starts.
func (m *Model) fill(g *nn.Graph, in Batch, Tp int) {
	B, T := in.Batch, in.Length
	ids, types, pad := g.Ints(inIDs), g.Ints(inTypes), g.Floats(inPad)
	off := Tp - T
	for b := 0; b < B; b++ {
		for t := 0; t < Tp; t++ {
			i := b*Tp + t
			if t < off {
				ids[i], types[i], pad[i] = m.padID, -1, 1
				continue
			}
			j := b*T + t - off
			ids[i], types[i], pad[i] = in.IDs[j], 0, 0
			if in.TypeIDs != nil {
				types[i] = in.TypeIDs[j]
			}
			if in.Mask != nil && in.Mask[j] == 0 {
				pad[i] = 1
			}
		}
	}
}

var _ tagging.TokenClassifier = (*Model)(nil)

// Logits implements tagging.TokenClassifier for token-classification models: out[b][t] holds
// the len(Labels()) logits of token t of window b (padding positions included).
func (m *Model) Logits(ctx context.Context, in tagging.EncodedBatch) ([][][]float32, error) {
	if m.head != HeadToken {
		return nil, fmt.Errorf("xlnet: Logits needs a token-classification model, this one has a %s head", m.head)
	}
	b, err := NewBatch(in.IDs, in.Mask, in.TypeIDs)
	if err != nil {
		return nil, err
	}
	res, err := m.Forward(ctx, b)
	if err != nil {
		return nil, err
	}
	return nn.SplitTokens(res.Logits, b.Batch, b.Length, res.NumLabels), nil
}

// Classify runs a sequence classifier and returns its logits per sequence, [B][labels].
func (m *Model) Classify(ctx context.Context, in Batch) ([][]float32, error) {
	if m.head != HeadSequence {
		return nil, fmt.Errorf("xlnet: Classify needs a sequence-classification model, this one has a %s head", m.head)
	}
	res, err := m.Forward(ctx, in)
	if err != nil {
		return nil, err
	}
	return nn.SplitRows(res.Logits, in.Batch, res.NumLabels), nil
}
