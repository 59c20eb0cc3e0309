// Package bert runs BERT, RoBERTa and XLM-RoBERTa encoders with their token-classification,
// sequence-classification and CheXbert-style multi-head classifiers, as Hugging Face
// transformers computes them, on gorgonia graphs of tensorops kernels (internal/nn).
package bert

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/clinfer/clinfer/internal/nn"
	"github.com/clinfer/clinfer/tensorops"
	"github.com/clinfer/clinfer/weights"
)

// Kind is the encoder family; it decides the position ids and the checkpoint prefix.
type Kind int

// Encoder families.
const (
	KindBERT       Kind = iota // position ids 0..T-1, prefix "bert."
	KindRoBERTa                // position ids from padding_idx + 1, prefix "roberta."
	KindXLMRoBERTa             // as RoBERTa
)

func (k Kind) String() string {
	switch k {
	case KindBERT:
		return "bert"
	case KindRoBERTa:
		return "roberta"
	case KindXLMRoBERTa:
		return "xlm-roberta"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Head is the task head on top of the encoder.
type Head int

// Heads.
const (
	HeadNone     Head = iota // BertModel / RobertaModel / XLMRobertaModel: hidden states (and pooler output when the checkpoint has a pooler)
	HeadToken                // *ForTokenClassification: classifier on every token, logits [B, T, labels]
	HeadSequence             // *ForSequenceClassification: BERT pooler + classifier, or RoBERTa's dense+tanh+out_proj, on the first token; logits [B, labels]
	HeadMulti                // CheXbert-style: linear_heads.N on the first token; logits [B, sum of head sizes]
)

func (h Head) String() string {
	switch h {
	case HeadNone:
		return "none"
	case HeadToken:
		return "token-classification"
	case HeadSequence:
		return "sequence-classification"
	case HeadMulti:
		return "multi-head"
	}
	return fmt.Sprintf("Head(%d)", int(h))
}

// Model is a loaded encoder with its head. It is immutable after loading and safe for
// concurrent use: each call takes a compiled graph (with its own buffers) from a pool.
type Model struct {
	// Embeddings and Layers hold the checkpoint tensors; linear weights are packed for the
	// kernels at load and their raw slices released.
	Embeddings Embeddings
	Layers     []Layer

	cfg    *weights.Config
	kind   Kind
	head   Head
	prefix string // "bert.", "roberta." or "" (base-model checkpoints)

	hidden, heads, vocab int
	eps                  float32
	act                  nn.Activation
	padID                int
	maxLen               int // longest accepted sequence, specials included
	labels               []string
	headSizes            []int // HeadMulti: classes per head

	pooler          *tensorops.Linear // BertPooler dense (tanh), when present
	classifierDense *tensorops.Linear // RobertaClassificationHead.dense
	classifier      *tensorops.Linear // classifier / out_proj / stacked linear_heads

	cache *nn.GraphCache
}

// Option configures loading.
type Option func(*options)

type options struct {
	engine *tensorops.Engine
	head   *Head
}

// WithEngine runs the model on e instead of tensorops.Default().
func WithEngine(e *tensorops.Engine) Option { return func(o *options) { o.engine = e } }

// WithHead forces the head instead of deriving it from config.json's architectures (and
// from the checkpoint: linear_heads.0.weight means a CheXbert-style multi-head labeler).
func WithHead(h Head) Option { return func(o *options) { o.head = &h } }

// Load reads dir/config.json and the checkpoint in dir (model.safetensors, a sharded set, or
// pytorch_model.bin, as weights.OpenDir chooses).
func Load(dir string, opts ...Option) (*Model, error) {
	cfg, err := weights.LoadConfig(dir)
	if err != nil {
		return nil, fmt.Errorf("bert: %w", err)
	}
	s, err := weights.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("bert: %w", err)
	}
	defer s.Close()
	return LoadFromStore(cfg, s, opts...)
}

// LoadFromStore builds a model from a parsed config and an open checkpoint. The tensors are
// copied; the store may be closed afterwards.
func LoadFromStore(cfg *weights.Config, s weights.Store, opts ...Option) (*Model, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	m, err := newModel(cfg, o)
	if err != nil {
		return nil, err
	}
	switch {
	case has(s, m.kind.prefix()+"embeddings.word_embeddings.weight"):
		m.prefix = m.kind.prefix()
	case has(s, "embeddings.word_embeddings.weight"):
		m.prefix = ""
	default:
		return nil, fmt.Errorf("bert: no %sembeddings.word_embeddings.weight (nor embeddings.word_embeddings.weight) in the checkpoint: %w", m.kind.prefix(), weights.ErrMissingTensor)
	}
	if o.head == nil {
		if has(s, "linear_heads.0.weight") {
			m.head = HeadMulti
		}
	}
	if err := m.loadWeights(s); err != nil {
		return nil, err
	}
	return m, nil
}

func (k Kind) prefix() string {
	if k == KindBERT {
		return "bert."
	}
	return "roberta."
}

// newModel validates the config and sets the dimensions; weights are loaded separately.
func newModel(cfg *weights.Config, o options) (*Model, error) {
	if cfg == nil || cfg.Bert == nil {
		return nil, errors.New("bert: config has no BERT-family section (model_type must be bert, roberta or xlm-roberta)")
	}
	c := cfg.Bert
	m := &Model{cfg: cfg, hidden: c.HiddenSize, heads: c.NumAttentionHeads, vocab: c.VocabSize,
		eps: float32(c.LayerNormEps), padID: c.PadTokenID}
	switch cfg.ModelType {
	case "bert":
		m.kind = KindBERT
		m.maxLen = c.MaxPositionEmbeddings
	case "roberta", "xlm-roberta":
		m.kind = KindRoBERTa
		if cfg.ModelType == "xlm-roberta" {
			m.kind = KindXLMRoBERTa
		}
		// Positions start at padding_idx + 1, so padding_idx + 1 rows are unusable.
		m.maxLen = c.MaxPositionEmbeddings - c.PadTokenID - 1
		if m.maxLen <= 0 {
			return nil, fmt.Errorf("bert: %s: max_position_embeddings %d leaves no positions after pad_token_id %d: %w",
				cfg.ModelType, c.MaxPositionEmbeddings, c.PadTokenID, weights.ErrInvalidConfig)
		}
	default:
		return nil, fmt.Errorf("bert: model_type %q: %w", cfg.ModelType, weights.ErrUnknownArchitecture)
	}
	if c.PadTokenID < 0 || c.PadTokenID >= c.VocabSize {
		return nil, fmt.Errorf("bert: pad_token_id %d outside the vocabulary of %d: %w", c.PadTokenID, c.VocabSize, weights.ErrInvalidConfig)
	}
	act, err := nn.ParseActivation(c.HiddenAct)
	if err != nil {
		return nil, fmt.Errorf("bert: hidden_act: %w", err)
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
	m.cache = nn.NewGraphCache(o.engine, m.build)
	return m, nil
}

func (m *Model) dims() map[string]int {
	c := m.cfg.Bert
	return map[string]int{
		"vocab": c.VocabSize, "types": c.TypeVocabSize, "maxpos": c.MaxPositionEmbeddings,
		"hidden": c.HiddenSize, "inter": c.IntermediateSize, "labels": len(m.labels),
	}
}

func (m *Model) loadWeights(s weights.Store) error {
	c := m.cfg.Bert
	dims := m.dims()
	var errs []error
	if err := loadTensors(s, m.prefix+"embeddings.", &m.Embeddings, dims); err != nil {
		errs = append(errs, err)
	}
	m.Layers = make([]Layer, c.NumHiddenLayers)
	for i := range m.Layers {
		if err := loadTensors(s, fmt.Sprintf("%sencoder.layer.%d.", m.prefix, i), &m.Layers[i], dims); err != nil {
			errs = append(errs, err)
			continue
		}
		// Packing layer by layer keeps the peak at the packed model plus one raw layer.
		m.Layers[i].pack(c.HiddenSize, c.IntermediateSize)
	}
	if err := m.loadHead(s, dims); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("bert: loading %s (%s head): %w", m.kind, m.head, errors.Join(errs...))
	}
	return nil
}

// loadHead loads the pooler and the classifier the head needs.
func (m *Model) loadHead(s weights.Store, dims map[string]int) error {
	H := m.hidden
	dense := func(prefix string, out int) (*tensorops.Linear, error) {
		var d Dense
		sub := map[string]int{"out": out, "in": H}
		if err := loadTensors(s, prefix, &d, sub); err != nil {
			return nil, err
		}
		return tensorops.NewLinear(d.Weight, out, H, d.Bias), nil
	}
	var err error
	poolerName := m.prefix + "pooler.dense."
	switch m.head {
	case HeadNone:
		if has(s, poolerName+"weight") {
			m.pooler, err = dense(poolerName, H)
		}
		return err
	case HeadToken:
		m.classifier, err = dense("classifier.", dims["labels"])
		return err
	case HeadSequence:
		if m.kind != KindBERT && !has(s, "classifier.weight") {
			var e1, e2 error
			m.classifierDense, e1 = dense("classifier.dense.", H)
			m.classifier, e2 = dense("classifier.out_proj.", dims["labels"])
			return errors.Join(e1, e2)
		}
		var e1, e2 error
		m.pooler, e1 = dense(poolerName, H)
		m.classifier, e2 = dense("classifier.", dims["labels"])
		return errors.Join(e1, e2)
	case HeadMulti:
		return m.loadMultiHead(s)
	}
	return fmt.Errorf("bert: unknown head %v", m.head)
}

// loadMultiHead reads CheXbert's linear_heads.0..N-1 (the checkpoint's module. prefix and
// model_state_dict wrapper are removed by weights) and stacks them into one Linear.
func (m *Model) loadMultiHead(s weights.Store) error {
	H := m.hidden
	var w, b []float32
	m.headSizes = nil
	for i := 0; ; i++ {
		name := fmt.Sprintf("linear_heads.%d.", i)
		info, ok := s.Info(name + "weight")
		if !ok {
			break
		}
		if len(info.Shape) != 2 || info.Shape[0] <= 0 {
			return fmt.Errorf("bert: tensor %q has shape %v, want [classes, %d]: %w", name+"weight", info.Shape, H, weights.ErrShape)
		}
		n := info.Shape[0]
		var d Dense
		if err := loadTensors(s, name, &d, map[string]int{"out": n, "in": H}); err != nil {
			return err
		}
		w = append(w, d.Weight...)
		b = append(b, d.Bias...)
		m.headSizes = append(m.headSizes, n)
	}
	if len(m.headSizes) == 0 {
		return fmt.Errorf("bert: multi-head labeler without linear_heads.0.weight: %w", weights.ErrMissingTensor)
	}
	total := len(b)
	m.classifier = tensorops.NewLinear(w, total, H, b)
	if len(m.headSizes) == len(CheXbertConditions) {
		m.labels = append([]string(nil), CheXbertConditions...)
	} else {
		m.labels = make([]string, len(m.headSizes))
		for i := range m.labels {
			m.labels[i] = fmt.Sprintf("head_%d", i)
		}
	}
	return nil
}

// CheXbertConditions are the 14 observations of CheXbert's linear_heads, in head order. Heads
// 0-12 have 4 classes (blank, positive, negative, uncertain); No Finding has 2 (blank, positive).
var CheXbertConditions = []string{
	"Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
	"Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
	"Pleural Other", "Fracture", "Support Devices", "No Finding",
}

// CheXbertClasses names the classes of a 4-class CheXbert head (the 2-class head uses the
// first two).
var CheXbertClasses = []string{"blank", "positive", "negative", "uncertain"}

// Kind is the encoder family.
func (m *Model) Kind() Kind { return m.kind }

// Head is the task head.
func (m *Model) Head() Head { return m.head }

// Config is the model's configuration (do not modify).
func (m *Model) Config() *weights.Config { return m.cfg }

// Labels returns id2label in id order for token and sequence classifiers, the condition
// names (one per head) for a multi-head labeler, nil for a bare encoder.
func (m *Model) Labels() []string {
	if m.head == HeadNone {
		return nil
	}
	return append([]string(nil), m.labels...)
}

// HeadSizes returns the classes of each head of a multi-head labeler (nil otherwise).
func (m *Model) HeadSizes() []int { return append([]int(nil), m.headSizes...) }

// MaxLength is the longest sequence the model accepts (special tokens included):
// max_position_embeddings for BERT, max_position_embeddings - pad_token_id - 1 for RoBERTa
// and XLM-R, whose positions start after padding_idx.
func (m *Model) MaxLength() int { return m.maxLen }

// HiddenSize is the width of the hidden states.
func (m *Model) HiddenSize() int { return m.hidden }

// NumLayers is the number of encoder layers.
func (m *Model) NumLayers() int { return len(m.Layers) }

// PadID is the pad_token_id used for padding.
func (m *Model) PadID() int { return m.padID }

// Batch is a batch of tokenized sequences of one length, flattened row-major [Batch, Length].
type Batch struct {
	Batch, Length int
	IDs           []int
	Mask          []int // 1 = token, 0 = padding; nil means all ones
	TypeIDs       []int // nil means all zeros
}

// NewBatch flattens per-sequence slices. mask and typeIDs may be nil; otherwise every row of
// every argument must have the same length.
func NewBatch(ids, mask, typeIDs [][]int) (Batch, error) {
	b, err := nn.FlattenRows(ids, mask, typeIDs)
	if err != nil {
		return Batch(b), fmt.Errorf("bert: %w", err)
	}
	return Batch(b), nil
}

// validate checks a batch against the model: shapes, id ranges, mask values, length.
func (m *Model) validate(in Batch) error {
	if err := nn.Tokens(in).CheckShape(); err != nil {
		return fmt.Errorf("bert: %w", err)
	}
	if T := in.Length; T > m.maxLen {
		return fmt.Errorf("bert: sequence of %d tokens exceeds the model's maximum of %d (max_position_embeddings %d); split long inputs into windows: %w",
			T, m.maxLen, m.cfg.Bert.MaxPositionEmbeddings, nn.ErrTooLong)
	}
	vocab := len(m.Embeddings.Word) / m.hidden
	types := len(m.Embeddings.TokenType) / m.hidden
	if err := nn.Tokens(in).CheckValues(vocab, types); err != nil {
		return fmt.Errorf("bert: %w", err)
	}
	return nil
}

// ForwardOption selects extra outputs.
type ForwardOption func(*forwardOptions)

type forwardOptions struct{ hidden bool }

// WithHiddenStates also returns the embedding output and every layer's output.
func WithHiddenStates() ForwardOption { return func(o *forwardOptions) { o.hidden = true } }

// Result holds a forward pass's outputs, row-major, for the caller's Batch x Length.
type Result struct {
	Batch, Length, HiddenSize int
	// HiddenStates[0] is the embedding output and HiddenStates[i] the output of layer i-1,
	// each [Batch, Length, HiddenSize]; only with WithHiddenStates.
	HiddenStates [][]float32
	// LastHiddenState [Batch, Length, HiddenSize]: for bare encoders and with WithHiddenStates.
	LastHiddenState []float32
	// Pooled [Batch, HiddenSize]: tanh(dense(h[:, 0])) when the model has a pooler.
	Pooled []float32
	// Logits: token head [Batch, Length, NumLabels]; sequence head [Batch, NumLabels];
	// multi-head [Batch, sum of HeadSizes] (head after head). Nil for bare encoders.
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
	B, T, H := in.Batch, in.Length, m.hidden
	key := nn.Key{Batch: B, Length: nn.Bucket(T, m.maxLen)}
	if fo.hidden {
		key.Variant = variantHidden
	}
	g, err := m.cache.Get(key)
	if err != nil {
		return nil, fmt.Errorf("bert: %w", err)
	}
	defer m.cache.Put(g)
	m.fill(g, in, key.Length)
	if err := g.Run(); err != nil {
		return nil, fmt.Errorf("bert: forward: %w", err)
	}

	res := &Result{Batch: B, Length: T, HiddenSize: H}
	Tp := key.Length
	// unpad copies the first T of Tp rows of each sequence.
	unpad := func(src []float32, width int) []float32 {
		out := make([]float32, B*T*width)
		for b := 0; b < B; b++ {
			copy(out[b*T*width:(b+1)*T*width], src[b*Tp*width:(b*Tp+T)*width])
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
	if p := g.Output(outPooled); p != nil {
		res.Pooled = append([]float32(nil), p...)
	}
	switch m.head {
	case HeadToken:
		res.NumLabels = m.classifier.Out
		res.Logits = unpad(g.Output(outLogits), res.NumLabels)
	case HeadSequence, HeadMulti:
		res.NumLabels = m.classifier.Out
		res.Logits = append([]float32(nil), g.Output(outLogits)...)
	}
	return res, nil
}

// fill writes a batch, padded from Length to Tp tokens, into the graph's inputs.
func (m *Model) fill(g *nn.Graph, in Batch, Tp int) {
	B, T := in.Batch, in.Length
	ids, types, pos, mask := g.Ints(inIDs), g.Ints(inTypes), g.Ints(inPositions), g.Floats(inMask)
	// Hugging Face's extended attention mask: (1 - mask) * finfo(float32).min.
	const masked = -math.MaxFloat32
	for b := 0; b < B; b++ {
		for t := 0; t < Tp; t++ {
			i, j := b*Tp+t, b*T+t
			if t >= T {
				ids[i], types[i], mask[i] = m.padID, 0, masked
				continue
			}
			ids[i] = in.IDs[j]
			types[i] = 0
			if in.TypeIDs != nil {
				types[i] = in.TypeIDs[j]
			}
			mask[i] = 0
			if in.Mask != nil && in.Mask[j] == 0 {
				mask[i] = masked
			}
		}
	}
	m.positions(pos, ids, B, Tp)
}
