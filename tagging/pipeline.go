package tagging

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/clinfer/clinfer/tokenize"
)

// ErrInvalidUTF8 is matched (errors.Is) by the error for a text that is not valid UTF-8, as
// is tokenize.ErrInvalidUTF8: the policy is the tokenizer's. The pipeline does not repair
// such text: replacing bytes would shift every offset after them, and de-identification
// promises to keep every non-PHI byte. Callers that want lossy input fixed can run
// strings.ToValidUTF8 first.
var ErrInvalidUTF8 = errors.New("tagging: text is not valid UTF-8")

// InvalidUTF8Error gives the byte offset of the first invalid byte (never the text).
type InvalidUTF8Error struct{ Offset int }

func (e *InvalidUTF8Error) Error() string {
	return fmt.Sprintf("tagging: text is not valid UTF-8 (first invalid byte at offset %d)", e.Offset)
}

// Is matches ErrInvalidUTF8 and tokenize.ErrInvalidUTF8.
func (e *InvalidUTF8Error) Is(target error) bool {
	return target == ErrInvalidUTF8 || target == tokenize.ErrInvalidUTF8
}

// checkUTF8 returns an *InvalidUTF8Error for invalid text.
func checkUTF8(text string) error {
	if utf8.ValidString(text) {
		return nil
	}
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		if r == utf8.RuneError && n == 1 {
			return &InvalidUTF8Error{Offset: i}
		}
		i += n
	}
	return &InvalidUTF8Error{Offset: len(text)}
}

// Windowing is how a text longer than one window is split and merged.
type Windowing int

const (
	// MostContext (the default) runs overlapping windows and takes every token's scores
	// from the window where it has the most context on its shorter side, then aggregates the
	// whole text at once, so words and entities never break at a window edge.
	MostContext Windowing = iota
	// HFOverlap reproduces Hugging Face's pipeline called with stride: each window is
	// aggregated on its own, then entities that overlap across windows are merged (the
	// longer one, or the higher-scoring of equal length, wins). It needs an aggregation
	// other than none, as Hugging Face does.
	HFOverlap
	// Truncate reproduces Hugging Face's pipeline called without stride: only the first
	// window is tagged and the rest of a long text is ignored. For reference comparisons only:
	// PHI past the first window is silently missed.
	Truncate
)

func (w Windowing) String() string {
	switch w {
	case MostContext:
		return "most-context"
	case HFOverlap:
		return "hf-overlap"
	case Truncate:
		return "truncate"
	}
	return fmt.Sprintf("Windowing(%d)", int(w))
}

// Options configure a Pipeline. The zero value is a valid configuration: Hugging Face's
// default aggregation (none), MostContext windows with the default stride, "O" ignored.
type Options struct {
	Aggregation Aggregation
	Windowing   Windowing
	// Stride is the overlap, in tokens, between consecutive windows (Hugging Face's
	// stride). 0 picks DefaultStride of the window; a negative value means no overlap.
	Stride int
	// IgnoreLabels are dropped from the output; nil means {"O"}. An entry matches a label
	// ("B-NAME") or, for any aggregation, an entity type ("NAME").
	IgnoreLabels []string
	// Threshold, when > 0, makes tagging recall-biased: a token whose best label is the
	// outside label "O" gets its best other label instead when P(O) < Threshold.
	Threshold float64
	// Thresholds overrides Threshold per entity type ("NAME": 0.9) or per label ("B-NAME",
	// which wins over its type); keys must be types or labels of the model.
	Thresholds map[string]float64
	// BatchSize is the number of windows per model call; 0 means 8.
	BatchSize int
}

// DefaultStride returns the overlap used when Options.Stride is 0: a quarter of the
// content tokens of a window, so every token sees at least an eighth of a window on
// each side.
func DefaultStride(content int) int { return content / 4 }

// Pipeline tags texts with a TokenClassifier. It is immutable and safe for concurrent use.
type Pipeline struct {
	model   TokenClassifier
	tok     Tokenizer
	labels  *LabelSet
	opts    Options
	agg     aggregator
	content int // content tokens per window
	stride  int
	prefix  int // special tokens before the content in a framed window
}

// New checks the model's labels and the options and returns a pipeline.
func New(model TokenClassifier, tok Tokenizer, opts Options) (*Pipeline, error) {
	if model == nil || tok == nil {
		return nil, errors.New("tagging: New needs a model and a tokenizer")
	}
	labels, err := ParseLabels(model.Labels())
	if err != nil {
		return nil, err
	}
	if opts.Aggregation < AggregateNone || opts.Aggregation > AggregateMax {
		return nil, fmt.Errorf("tagging: invalid aggregation %d", int(opts.Aggregation))
	}
	if opts.Windowing < MostContext || opts.Windowing > Truncate {
		return nil, fmt.Errorf("tagging: invalid windowing %d", int(opts.Windowing))
	}
	if opts.Windowing == HFOverlap && opts.Aggregation == AggregateNone {
		return nil, errors.New("tagging: HFOverlap windowing needs an aggregation other than none (as Hugging Face's stride does)")
	}
	if opts.BatchSize < 0 {
		return nil, fmt.Errorf("tagging: negative batch size %d", opts.BatchSize)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = 8
	}
	ids, _, special := tok.Frame(nil)
	if len(special) != len(ids) {
		return nil, fmt.Errorf("tagging: tokenizer Frame returned %d ids and %d special flags", len(ids), len(special))
	}
	p := &Pipeline{model: model, tok: tok, labels: labels, opts: opts}
	p.content = model.MaxLength() - len(ids)
	if p.content < 1 {
		return nil, fmt.Errorf("tagging: model max length %d leaves no room beside %d special tokens", model.MaxLength(), len(ids))
	}
	p.prefix = framePrefix(tok)
	switch {
	case opts.Stride == 0:
		p.stride = DefaultStride(p.content)
	case opts.Stride < 0:
		p.stride = 0
	default:
		p.stride = opts.Stride
	}
	if p.stride >= p.content {
		return nil, fmt.Errorf("tagging: stride %d must be smaller than the %d content tokens of a window", p.stride, p.content)
	}
	dec := &decider{outside: labels.Outside, tags: labels.Tags}
	if opts.Threshold > 0 || len(opts.Thresholds) > 0 {
		if labels.Outside < 0 {
			return nil, errors.New(`tagging: thresholds need an outside label "O", and the model has none`)
		}
		if opts.Threshold < 0 || opts.Threshold > 1 || math.IsNaN(opts.Threshold) {
			return nil, fmt.Errorf("tagging: threshold %v outside [0, 1]", opts.Threshold)
		}
		for key, v := range opts.Thresholds {
			if !labels.HasType(key) && !slices.Contains(labels.Labels, key) || key == Outside {
				return nil, fmt.Errorf("tagging: threshold for %q, which is no entity type or label of the model (types: %v)", key, labels.Types())
			}
			if v < 0 || v > 1 || math.IsNaN(v) {
				return nil, fmt.Errorf("tagging: threshold %v for %q outside [0, 1]", v, key)
			}
		}
		dec.thresholds = make([]float64, len(labels.Labels))
		for i, t := range labels.Tags {
			if i == labels.Outside {
				continue
			}
			dec.thresholds[i] = opts.Threshold
			if v, ok := opts.Thresholds[t.Type]; ok {
				dec.thresholds[i] = v
			}
			if v, ok := opts.Thresholds[labels.Labels[i]]; ok {
				dec.thresholds[i] = v
			}
		}
	}
	ignore := opts.IgnoreLabels
	if ignore == nil {
		ignore = []string{Outside}
	}
	p.agg = aggregator{labels: labels, dec: dec, join: tok.JoinPieces, ignore: map[string]bool{}}
	for _, l := range ignore {
		p.agg.ignore[l] = true
	}
	return p, nil
}

// framePrefix counts the special tokens a framed window has before its first content token.
func framePrefix(tok Tokenizer) int {
	_, _, special := tok.Frame([]int{0})
	for i, s := range special {
		if !s {
			return i
		}
	}
	return 0
}

// Labels returns the model's parsed labels.
func (p *Pipeline) Labels() *LabelSet { return p.labels }

// Options returns the pipeline's options with defaults filled in.
func (p *Pipeline) Options() Options { return p.opts }

// Stride returns the overlap between windows in tokens.
func (p *Pipeline) Stride() int { return p.stride }

// window is a run of content tokens [lo, hi) tagged together.
type window struct{ lo, hi int }

// windows splits n content tokens as Hugging Face's tokenizers truncate with stride:
// windows of p.content tokens starting every p.content-stride tokens, the last one ending
// at the last token. An empty text still has one (empty) window.
func (p *Pipeline) windows(n int) []window {
	if n <= p.content || p.opts.Windowing == Truncate {
		return []window{{0, min(n, p.content)}}
	}
	step := p.content - p.stride
	var ws []window
	for lo := 0; ; lo += step {
		hi := min(lo+p.content, n)
		ws = append(ws, window{lo, hi})
		if hi == n {
			return ws
		}
	}
}

// Tag returns the entities of text, sorted by position.
// Empty and whitespace-only texts have none (the model is not called).
func (p *Pipeline) Tag(ctx context.Context, text string) ([]Entity, error) {
	d, err := p.prepare(text)
	if err != nil {
		return nil, err
	}
	if err := p.run(ctx, []*doc{d}); err != nil {
		return nil, err
	}
	return d.finish(p)
}

// TagMany tags several texts, filling each model call with windows of consecutive texts,
// which is faster than one Tag per text when texts are shorter than a window. Result i
// belongs to texts[i]; errors name the text by index.
func (p *Pipeline) TagMany(ctx context.Context, texts []string) ([][]Entity, error) {
	docs := make([]*doc, len(texts))
	for i, text := range texts {
		d, err := p.prepare(text)
		if err != nil {
			return nil, fmt.Errorf("text %d: %w", i, err)
		}
		docs[i] = d
	}
	if err := p.run(ctx, docs); err != nil {
		return nil, err
	}
	out := make([][]Entity, len(docs))
	for i, d := range docs {
		var err error
		if out[i], err = d.finish(p); err != nil {
			return nil, fmt.Errorf("text %d: %w", i, err)
		}
	}
	return out, nil
}

// doc is one text on its way through the pipeline.
type doc struct {
	text string
	toks []Token
	pre  []preToken
	ws   []window
	best []int    // MostContext: context of the window each token's scores came from
	all  []Entity // HFOverlap: entities of the windows so far
	err  error
}

func (p *Pipeline) prepare(text string) (*doc, error) {
	if err := checkUTF8(text); err != nil {
		return nil, err
	}
	toks, err := p.tok.Tokenize(text)
	if err != nil {
		return nil, fmt.Errorf("tagging: tokenize: %w", err)
	}
	pre, err := p.preTokens(text, toks)
	if err != nil {
		return nil, err
	}
	d := &doc{text: text, toks: toks, pre: pre}
	if len(pre) > 0 {
		d.ws = p.windows(len(pre))
		d.pre = pre[:d.ws[len(d.ws)-1].hi] // Truncate drops the rest
	}
	if len(d.ws) > 1 && p.opts.Windowing == MostContext {
		d.best = make([]int, len(pre))
		for i := range d.best {
			d.best[i] = -1
		}
	}
	return d, nil
}

// accept takes the probabilities of window w: pos[i] is the position of its i-th content
// token among the framed ids.
func (d *doc) accept(p *Pipeline, w int, pos []int, probs [][]float32) {
	lo, hi := d.ws[w].lo, d.ws[w].hi
	switch {
	case len(d.ws) == 1:
		for i := range d.pre {
			d.pre[i].index = pos[i]
			d.pre[i].scores = probs[i]
		}
	case p.opts.Windowing == HFOverlap:
		// Every window is aggregated alone, from a fresh copy: a window starts a new word
		// even when its first token is a subword.
		win := make([]preToken, hi-lo)
		copy(win, d.pre[lo:hi])
		for i := range win {
			win[i].index = pos[i]
			win[i].scores = probs[i]
		}
		ents, err := p.agg.aggregate(win, p.opts.Aggregation, d.text)
		if err != nil && d.err == nil {
			d.err = err
		}
		d.all = append(d.all, ents...)
	default:
		n := len(d.pre)
		for i := lo; i < hi; i++ {
			left, right := i-lo, hi-1-i
			if lo == 0 {
				left = n // the text starts here: no context is missing on the left
			}
			if hi == n {
				right = n
			}
			if c := min(left, right); c > d.best[i] { // ties keep the earlier window
				d.best[i] = c
				d.pre[i].scores = probs[i-lo]
			}
		}
	}
}

// finish aggregates a scored text.
func (d *doc) finish(p *Pipeline) ([]Entity, error) {
	switch {
	case d.err != nil:
		return nil, d.err
	case len(d.pre) == 0:
		return nil, nil
	case len(d.ws) == 1:
		return p.agg.aggregate(d.pre, p.opts.Aggregation, d.text)
	case p.opts.Windowing == HFOverlap:
		return mergeOverlapping(d.all), nil
	}
	for i := range d.pre {
		d.pre[i].index = p.prefix + i
	}
	return p.agg.aggregate(d.pre, p.opts.Aggregation, d.text)
}

// preTokens checks the tokenizer's offsets and computes code-point offsets and subword flags.
func (p *Pipeline) preTokens(text string, toks []Token) ([]preToken, error) {
	pre := make([]preToken, len(toks))
	unk, prefix := p.tok.UnkID(), p.tok.SubwordPrefix()
	// Code-point offsets in one pass while offsets move forward; a token that steps back
	// (never seen with real tokenizers) restarts the count.
	bpos, cpos := 0, 0
	runeAt := func(b int) int {
		if b < bpos {
			bpos, cpos = 0, 0
		}
		cpos += utf8.RuneCountInString(text[bpos:b])
		bpos = b
		return cpos
	}
	for i, t := range toks {
		if t.Start < 0 || t.End < t.Start || t.End > len(text) {
			return nil, fmt.Errorf("tagging: tokenizer gave token %d the span [%d, %d) in a text of %d bytes", i, t.Start, t.End, len(text))
		}
		if !utf8.ValidString(text[t.Start:t.End]) {
			return nil, fmt.Errorf("tagging: tokenizer gave token %d the span [%d, %d), which splits a character", i, t.Start, t.End)
		}
		pt := preToken{index: -1, piece: t.Piece, start: t.Start, end: t.End}
		pt.cstart = runeAt(t.Start)
		pt.cend = runeAt(t.End)
		if t.ID == unk {
			pt.piece = text[t.Start:t.End]
		} else {
			pt.subword = isSubword(t.Piece, text, t.Start, t.End, prefix)
		}
		pre[i] = pt
	}
	return pre, nil
}

// job is window w of document d.
type job struct{ d, w int }

// run runs the model over the windows of docs in batches and hands each window's softmax
// probabilities to its document, in window order.
func (p *Pipeline) run(ctx context.Context, docs []*doc) error {
	var jobs []job
	for i, d := range docs {
		for w := range d.ws {
			jobs = append(jobs, job{i, w})
		}
	}
	nl := len(p.labels.Labels)
	for b0 := 0; b0 < len(jobs); b0 += p.opts.BatchSize {
		if err := ctx.Err(); err != nil {
			return err
		}
		b1 := min(b0+p.opts.BatchSize, len(jobs))
		batch := EncodedBatch{}
		var positions [][]int
		maxLen := 0
		for _, j := range jobs[b0:b1] {
			w, toks := docs[j.d].ws[j.w], docs[j.d].toks
			content := make([]int, w.hi-w.lo)
			for i := range content {
				content[i] = toks[w.lo+i].ID
			}
			ids, types, special := p.tok.Frame(content)
			if len(types) != len(ids) || len(special) != len(ids) {
				return fmt.Errorf("tagging: tokenizer Frame returned %d ids, %d type ids and %d special flags", len(ids), len(types), len(special))
			}
			pos := make([]int, 0, len(content))
			for i, s := range special {
				if !s {
					pos = append(pos, i)
				}
			}
			if len(pos) != len(content) {
				return fmt.Errorf("tagging: tokenizer Frame kept %d of %d content tokens", len(pos), len(content))
			}
			mask := make([]int, len(ids))
			for i := range mask {
				mask[i] = 1
			}
			batch.IDs = append(batch.IDs, ids)
			batch.TypeIDs = append(batch.TypeIDs, types)
			batch.Mask = append(batch.Mask, mask)
			positions = append(positions, pos)
			maxLen = max(maxLen, len(ids))
		}
		if maxLen > p.model.MaxLength() {
			return fmt.Errorf("tagging: framed window of %d tokens exceeds the model's %d", maxLen, p.model.MaxLength())
		}
		pad := p.tok.PadID()
		for b := range batch.IDs {
			for len(batch.IDs[b]) < maxLen {
				batch.IDs[b] = append(batch.IDs[b], pad)
				batch.TypeIDs[b] = append(batch.TypeIDs[b], 0)
				batch.Mask[b] = append(batch.Mask[b], 0)
			}
		}
		logits, err := p.model.Logits(ctx, batch)
		if err != nil {
			return fmt.Errorf("tagging: model: %w", err)
		}
		if len(logits) != len(batch.IDs) {
			return fmt.Errorf("tagging: model returned logits for %d windows, want %d", len(logits), len(batch.IDs))
		}
		for b, pos := range positions {
			if len(logits[b]) < maxLen {
				return fmt.Errorf("tagging: model returned %d token rows for a window of length %d", len(logits[b]), maxLen)
			}
			probs := make([][]float32, len(pos))
			for i, t := range pos {
				row := logits[b][t]
				if len(row) != nl {
					return fmt.Errorf("tagging: model returned %d logits for a token, want %d labels", len(row), nl)
				}
				probs[i] = softmax(row)
			}
			j := jobs[b0+b]
			docs[j.d].accept(p, j.w, pos, probs)
		}
	}
	return nil
}

// softmax is max-subtracted, accumulated in float64 and rounded to float32.
func softmax(logits []float32) []float32 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, float64(v))
	}
	out := make([]float32, len(logits))
	e := make([]float64, len(logits))
	var sum float64
	for i, v := range logits {
		e[i] = math.Exp(float64(v) - m)
		sum += e[i]
	}
	for i := range out {
		out[i] = float32(e[i] / sum)
	}
	return out
}
