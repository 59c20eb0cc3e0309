package tokenize

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/clinfer/clinfer/tokenize/internal/sentencepiece"
)

// Tokenizer is a loaded tokenizer pipeline (normalizer, pre-tokenizer, model, post-processor,
// decoder, added tokens). It is immutable after loading and safe for concurrent use.
type Tokenizer struct {
	norm  normalizer
	pre   preTokenizer
	model model
	post  postProcessor
	dec   decoder
	added *addedVocab

	// Defaults from tokenizer.json ("truncation", "padding"); nil when absent.
	truncation *Truncation
	padding    *Padding

	// roberta marks a RoBERTa-style pipeline (ByteLevel pre-tokenizer with the GPT-2 regex and
	// RobertaProcessing): EncodeWords then adds the prefix space transformers requires.
	roberta bool

	config *Config // tokenizer_config.json, when loaded from a directory
	chat   *chatState

	pool sync.Pool
}

// scratch holds per-call buffers, recycled through a sync.Pool.
type scratch struct {
	syms  []bpeSym
	heap  []bpeMerge
	toks  []bpeTok
	added []addedSplit
	raw   []rawToken
	seq   []seqToken
	// Piece buffers: every pipeline stage reads one and fills the other.
	main, spare []piece
	spToks      []sentencepiece.Token
}

func (t *Tokenizer) getScratch() *scratch {
	if s, ok := t.pool.Get().(*scratch); ok {
		return s
	}
	return &scratch{}
}

// InvalidUTF8Error reports input that is not valid UTF-8. The tokenizer rejects such input
// rather than guessing: Hugging Face's tokenizers only ever see valid Unicode strings, so
// there is no reference behavior to reproduce, and silently replacing bytes would make byte
// offsets disagree with what a caller slices out of its own text.
type InvalidUTF8Error struct {
	Offset int // byte offset of the first invalid byte
	Which  string
}

func (e *InvalidUTF8Error) Error() string {
	return fmt.Sprintf("tokenize: %s is not valid UTF-8 (first invalid byte at offset %d)", e.Which, e.Offset)
}

// ErrInvalidUTF8 matches every *InvalidUTF8Error with errors.Is.
var ErrInvalidUTF8 = errors.New("tokenize: invalid UTF-8")

func (e *InvalidUTF8Error) Is(target error) bool { return target == ErrInvalidUTF8 }

func checkUTF8(s, which string) error {
	if utf8.ValidString(s) {
		return nil
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return &InvalidUTF8Error{Offset: i, Which: which}
		}
		i += size
	}
	return &InvalidUTF8Error{Offset: len(s), Which: which}
}

// Options control one encode call.
type Options struct {
	// NoSpecialTokens disables the post-processor's special tokens ([CLS]/[SEP], <s>/</s>, ...):
	// add_special_tokens=False.
	NoSpecialTokens bool
	// Truncation overrides the tokenizer's default truncation (nil: use the default, which is
	// usually none). Overflowing windows appear in Encoding.Overflowing.
	Truncation *Truncation
	// Padding overrides the tokenizer's default padding (nil: default).
	Padding *Padding
	// NoTruncation / NoPadding switch the defaults off.
	NoTruncation, NoPadding bool
}

// Input is one item to encode: a text, a text pair, or pre-split words (is_split_into_words).
type Input struct {
	Text      string
	Pair      *string
	Words     []string // when non-nil, Text is ignored and the words are encoded one by one
	PairWords []string
}

// Encode encodes one text with special tokens and the tokenizer's default truncation/padding.
func (t *Tokenizer) Encode(text string) (*Encoding, error) {
	return t.EncodeInput(Input{Text: text}, Options{})
}

// EncodePair encodes a text pair.
func (t *Tokenizer) EncodePair(a, b string) (*Encoding, error) {
	return t.EncodeInput(Input{Text: a, Pair: &b}, Options{})
}

// EncodeWords encodes pre-split words (Hugging Face is_split_into_words=True): every word goes
// through the pipeline on its own, WordIDs index words, and offsets are relative to the word.
// Empty words produce no tokens. For RoBERTa-style byte-level tokenizers each word gets the
// prefix space that transformers requires for this mode (add_prefix_space=True).
func (t *Tokenizer) EncodeWords(words []string) (*Encoding, error) {
	if words == nil {
		words = []string{}
	}
	return t.EncodeInput(Input{Words: words}, Options{})
}

func (t *Tokenizer) effective(o Options) (*Truncation, *Padding) {
	tr, pd := t.truncation, t.padding
	if o.Truncation != nil {
		tr = o.Truncation
	}
	if o.Padding != nil {
		pd = o.Padding
	}
	if o.NoTruncation {
		tr = nil
	}
	if o.NoPadding {
		pd = nil
	}
	if pd != nil && pd.PadToken == "" {
		// A caller that gives only the pad id still gets the pad token's text in Tokens.
		c := *pd
		c.PadToken, _ = t.IDToToken(c.PadID)
		pd = &c
	}
	return tr, pd
}

// EncodeInput encodes one input with explicit options.
func (t *Tokenizer) EncodeInput(in Input, o Options) (*Encoding, error) {
	enc, err := t.encodeNoPad(in, o)
	if err != nil {
		return nil, err
	}
	if _, pd := t.effective(o); pd != nil {
		padBatch([]*Encoding{enc}, *pd)
	}
	return enc, nil
}

func (t *Tokenizer) encodeNoPad(in Input, o Options) (*Encoding, error) {
	sc := t.getScratch()
	defer t.pool.Put(sc)
	a, err := t.encodeSide(in.Text, in.Words, in.Words != nil, 0, sc, "text")
	if err != nil {
		return nil, err
	}
	var b *Encoding
	if in.Pair != nil || in.PairWords != nil {
		pt := ""
		if in.Pair != nil {
			pt = *in.Pair
		}
		b, err = t.encodeSide(pt, in.PairWords, in.PairWords != nil, 1, sc, "pair text")
		if err != nil {
			return nil, err
		}
	}
	addSpecial := !o.NoSpecialTokens
	if tr, _ := t.effective(o); tr != nil {
		trr := *tr
		if addSpecial && t.post != nil {
			if n := t.post.addedTokens(b != nil); n > 0 {
				if trr.MaxLength < n {
					return nil, fmt.Errorf("tokenize: truncation max length %d is smaller than the %d special tokens", trr.MaxLength, n)
				}
				trr.MaxLength -= n
			}
		}
		if err := truncatePair(a, b, trr); err != nil {
			return nil, err
		}
	}
	if t.post != nil {
		return t.post.process(a, b, addSpecial, in.Words != nil)
	}
	return defaultProcess(a, b), nil
}

func (t *Tokenizer) encodeSide(text string, words []string, isWords bool, seq int, sc *scratch, which string) (*Encoding, error) {
	if !isWords {
		if err := checkUTF8(text, which); err != nil {
			return nil, err
		}
		return t.encodeSequence(text, -1, seq, sc, false)
	}
	enc := newEncoding(len(words) * 2)
	for i, w := range words {
		if err := checkUTF8(w, fmt.Sprintf("%s word %d", which, i)); err != nil {
			return nil, err
		}
		e, err := t.encodeSequence(w, i, seq, sc, t.roberta)
		if err != nil {
			return nil, err
		}
		enc.appendEnc(e)
	}
	return enc, nil
}

// encodeSequence runs added-token extraction, normalization, pre-tokenization and the model
// over one text. wordIdx >= 0 forces every token's word id (pre-split input).
func (t *Tokenizer) encodeSequence(text string, wordIdx, seq int, sc *scratch, prefixSpace bool) (*Encoding, error) {
	pcs := append(sc.main[:0], piece{ns: newNormString(text, 0)})
	pcs = t.added.splitAdded(pcs, &t.added.raw, sc)
	if t.norm != nil {
		for i := range pcs {
			if !pcs[i].done {
				if err := t.norm.normalize(&pcs[i].ns); err != nil {
					return nil, err
				}
			}
		}
	}
	pcs = t.added.splitAdded(pcs, &t.added.normd, sc)
	kept := pcs[:0]
	for _, p := range pcs {
		if len(p.ns.norm) > 0 {
			kept = append(kept, p)
		}
	}
	pcs = kept
	if prefixSpace {
		pcs = prefixSpacePieces(pcs)
	}
	if t.pre != nil {
		var err error
		if pcs, err = t.pre.preTokenize(pcs, sc); err != nil {
			return nil, err
		}
	}
	sc.seq = sc.seq[:0]
	for idx := range pcs {
		p := &pcs[idx]
		if p.done {
			for _, tk := range p.tokens {
				sc.seq = append(sc.seq, seqToken{tk, int32(idx)})
			}
			continue
		}
		var err error
		sc.raw, err = t.model.tokenize(p.ns.norm, sc.raw[:0], sc)
		if err != nil {
			return nil, err
		}
		for _, tk := range sc.raw {
			sc.seq = append(sc.seq, seqToken{tk, int32(idx)})
		}
	}
	enc := newEncoding(len(sc.seq))
	var conv *charConverter
	if !isASCII(text) {
		conv = newCharConverter(text)
	}
	for _, st := range sc.seq {
		tk := st.rawToken
		p := &pcs[st.piece]
		wid := int(st.piece)
		if wordIdx >= 0 {
			wid = wordIdx
		}
		s, e := p.ns.toOriginal(tk.start, tk.end)
		enc.IDs = append(enc.IDs, tk.id)
		enc.Tokens = append(enc.Tokens, tk.value)
		enc.TypeIDs = append(enc.TypeIDs, seq)
		enc.SpecialTokensMask = append(enc.SpecialTokensMask, 0)
		enc.AttentionMask = append(enc.AttentionMask, 1)
		enc.Offsets = append(enc.Offsets, Offset{s, e})
		enc.CharOffsets = append(enc.CharOffsets, conv.convert(s, e))
		enc.WordIDs = append(enc.WordIDs, wid)
		enc.SequenceIDs = append(enc.SequenceIDs, seq)
	}
	// Drop the references to the caller's text before the buffers go back to the pool.
	clear(pcs)
	sc.main = pcs[:0]
	return enc, nil
}

type seqToken struct {
	rawToken
	piece int32
}

// prefixSpacePieces turns on the ByteLevel add_prefix_space behavior for one call (used for
// pre-split words with RoBERTa): a space is prepended to every not-yet-tokenized piece that
// does not start with one.
func prefixSpacePieces(pcs []piece) []piece {
	for i := range pcs {
		if !pcs[i].done && len(pcs[i].ns.norm) > 0 && pcs[i].ns.norm[0] != ' ' {
			pcs[i].ns.prepend(" ")
		}
	}
	return pcs
}

// charConverter maps byte offsets of a text to code-point offsets, as Hugging Face's
// BytesToCharOffsetConverter does.
type charConverter struct {
	idx []int32 // code-point index of the character containing each byte, plus one at len
}

func newCharConverter(s string) *charConverter {
	c := &charConverter{idx: make([]int32, len(s)+1)}
	n := int32(0)
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		for k := 0; k < size; k++ {
			c.idx[i+k] = n
		}
		n++
		i += size
	}
	c.idx[len(s)] = n
	return c
}

func (c *charConverter) convert(s, e int) Offset {
	if c == nil {
		return Offset{s, e}
	}
	if s < 0 || s >= len(c.idx) || e < 0 || e >= len(c.idx) {
		return Offset{s, e}
	}
	if e == len(c.idx)-1 && e > s {
		return Offset{int(c.idx[s]), int(c.idx[e-1]) + 1}
	}
	return Offset{int(c.idx[s]), int(c.idx[e])}
}

// defaultProcess is the behavior without a post-processor: sequences are concatenated.
func defaultProcess(a, b *Encoding) *Encoding {
	if b == nil {
		return a
	}
	a.mergeWith(b)
	return a
}

// EncodeBatch encodes inputs concurrently (up to GOMAXPROCS goroutines) and pads the batch
// together when padding is configured. Results are in input order.
func (t *Tokenizer) EncodeBatch(ctx context.Context, inputs []Input, o Options) ([]*Encoding, error) {
	out := make([]*Encoding, len(inputs))
	errs := make([]error, len(inputs))
	workers := min(runtime.GOMAXPROCS(0), len(inputs))
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(inputs) || ctx.Err() != nil {
					return
				}
				out[i], errs[i] = t.encodeNoPad(inputs[i], o)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("tokenize: batch item %d: %w", i, err)
		}
	}
	if _, pd := t.effective(o); pd != nil {
		padBatch(out, *pd)
	}
	return out, nil
}

// EncodeTexts is EncodeBatch over plain texts.
func (t *Tokenizer) EncodeTexts(ctx context.Context, texts []string, o Options) ([]*Encoding, error) {
	in := make([]Input, len(texts))
	for i, s := range texts {
		in[i].Text = s
	}
	return t.EncodeBatch(ctx, in, o)
}

// TokenToID returns the id of a token (added tokens first, then the model vocabulary).
func (t *Tokenizer) TokenToID(tok string) (int, bool) {
	if id, ok := t.added.byText[tok]; ok {
		return id, true
	}
	return t.model.tokenToID(tok)
}

// IDToToken returns the token string of an id.
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if a, ok := t.added.byID[id]; ok {
		return a.Content, true
	}
	return t.model.idToToken(id)
}

// VocabSize is the model vocabulary size plus added tokens that are not in it.
func (t *Tokenizer) VocabSize() int {
	n := t.model.vocabSize()
	for _, a := range t.added.tokens {
		if _, ok := t.model.idToToken(a.ID); !ok || a.ID >= n {
			n++
		}
	}
	return n
}

// IsSpecial reports whether id is a special added token.
func (t *Tokenizer) IsSpecial(id int) bool {
	a, ok := t.added.byID[id]
	return ok && a.Special
}

// AddedTokens returns the added tokens in file order.
func (t *Tokenizer) AddedTokens() []AddedToken { return append([]AddedToken(nil), t.added.tokens...) }

// Truncation returns the default truncation from the tokenizer file (nil when none).
func (t *Tokenizer) Truncation() *Truncation { return t.truncation }

// Padding returns the default padding from the tokenizer file (nil when none).
func (t *Tokenizer) Padding() *Padding { return t.padding }

// WithTruncation returns a copy of t whose default truncation is tr (nil disables it).
func (t *Tokenizer) WithTruncation(tr *Truncation) *Tokenizer {
	c := t.shallow()
	c.truncation = tr
	return c
}

// WithPadding returns a copy of t whose default padding is p (nil disables it).
func (t *Tokenizer) WithPadding(p *Padding) *Tokenizer {
	c := t.shallow()
	c.padding = p
	return c
}

func (t *Tokenizer) shallow() *Tokenizer {
	return &Tokenizer{norm: t.norm, pre: t.pre, model: t.model, post: t.post, dec: t.dec, added: t.added,
		truncation: t.truncation, padding: t.padding, roberta: t.roberta, config: t.config, chat: t.chat}
}

// ModelType is "WordPiece", "BPE" or "Unigram".
func (t *Tokenizer) ModelType() string {
	switch t.model.(type) {
	case *wordPiece:
		return "WordPiece"
	case *bpe:
		return "BPE"
	case *unigram:
		return "Unigram"
	}
	return ""
}

// UnkToken returns the model's unknown token, if it has one (BPE models of the byte-level
// families have none: every byte is in the vocabulary).
func (t *Tokenizer) UnkToken() (string, bool) {
	switch m := t.model.(type) {
	case *wordPiece:
		return m.unk, true
	case *bpe:
		return m.unk, m.unkID >= 0
	case *unigram:
		if id := m.u.UnkID(); id >= 0 {
			return m.idToToken(id)
		}
	}
	return "", false
}

// ContinuingSubwordPrefix is WordPiece's "##" (or the BPE model's prefix, usually "").
func (t *Tokenizer) ContinuingSubwordPrefix() string {
	switch m := t.model.(type) {
	case *wordPiece:
		return m.prefix
	case *bpe:
		return m.contPrefix
	}
	return ""
}

// DecodeTokens runs the decoder over token strings (as found in Encoding.Tokens), joining
// them the way Decode would; without a decoder tokens are joined with spaces.
func (t *Tokenizer) DecodeTokens(tokens []string) string {
	if t.dec == nil {
		return strings.Join(tokens, " ")
	}
	return strings.Join(t.dec.decodeChain(append([]string(nil), tokens...)), "")
}
