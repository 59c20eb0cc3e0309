package tokenize

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"golang.org/x/text/unicode/norm"

	"github.com/clinfer/clinfer/tokenize/internal/sentencepiece"
)

// unigram adapts the SentencePiece Unigram model (internal/sentencepiece) to the pipeline.
type unigram struct {
	u *sentencepiece.Unigram
}

func (m *unigram) tokenize(word string, out []rawToken, sc *scratch) ([]rawToken, error) {
	toks, err := m.u.Encode(word, sc.spToks[:0])
	if err != nil {
		return out, err
	}
	sc.spToks = toks
	for _, t := range toks {
		out = append(out, rawToken{t.ID, t.Piece, t.Start, t.End})
	}
	return out, nil
}

func (m *unigram) tokenToID(t string) (int, bool) { return m.u.TokenToID(t) }
func (m *unigram) idToToken(id int) (string, bool) {
	e, ok := m.u.Vocab(id)
	return e.Piece, ok
}
func (m *unigram) vocabSize() int { return m.u.VocabSize() }

func parseUnigram(raw json.RawMessage) (model, error) {
	var c struct {
		UnkID        *int              `json:"unk_id"`
		ByteFallback bool              `json:"byte_fallback"`
		Vocab        []json.RawMessage `json:"vocab"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	vocab := make([]sentencepiece.VocabEntry, len(c.Vocab))
	for i, r := range c.Vocab {
		var pair []json.RawMessage
		if err := json.Unmarshal(r, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("vocab[%d]: not a [piece, score] pair", i)
		}
		if err := json.Unmarshal(pair[0], &vocab[i].Piece); err != nil {
			return nil, fmt.Errorf("vocab[%d]: piece: %w", i, err)
		}
		if err := json.Unmarshal(pair[1], &vocab[i].Score); err != nil {
			return nil, fmt.Errorf("vocab[%d]: score: %w", i, err)
		}
	}
	unk := -1
	if c.UnkID != nil {
		unk = *c.UnkID
	}
	u, err := sentencepiece.NewUnigram(vocab, unk, c.ByteFallback)
	if err != nil {
		return nil, err
	}
	return &unigram{u}, nil
}

// precompiledNormalizer is Hugging Face's Precompiled normalizer: SentencePiece's compiled
// normalization rules (nmt_nfkc and friends) applied with offset alignment.
type precompiledNormalizer struct {
	cm *sentencepiece.CharsMap
}

func newPrecompiledNormalizer(b64 string) (normalizer, error) {
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("precompiled_charsmap: %w", err)
	}
	if len(blob) == 0 {
		// An empty map is the identity (some converters write one).
		return sequenceNormalizer{}, nil
	}
	cm, err := sentencepiece.ParseCharsMap(blob)
	if err != nil {
		return nil, fmt.Errorf("precompiled_charsmap: %w", err)
	}
	return &precompiledNormalizer{cm}, nil
}

func (p *precompiledNormalizer) normalize(n *normString) error {
	edits, changed := p.cm.Edits(n.norm, nil)
	if !changed {
		return nil
	}
	dest := make([]change, len(edits))
	for i, e := range edits {
		dest[i] = change{e.R, e.Change}
	}
	n.transform(dest, 0)
	return nil
}

func compileGoRegex(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("regex %q is not supported by Go's regexp: %w", expr, err)
	}
	return re, nil
}

// SentencePieceFlavor selects the Hugging Face pipeline built around a SentencePiece model.
type SentencePieceFlavor int

const (
	// SentencePieceXLNet is XLNetTokenizerFast: quotes and NFKD + accent stripping before the
	// charsmap, "digits + comma" pieces penalized, `A <sep> <cls>` with type ids 0 0 2.
	SentencePieceXLNet SentencePieceFlavor = iota
	// SentencePieceXLMRoberta is XLMRobertaTokenizerFast: fairseq ids (<s> <pad> </s> <unk>, then
	// SentencePiece id + 1, <mask> last), `<s> A </s>`.
	SentencePieceXLMRoberta
)

// LoadSentencePiece builds a tokenizer from a SentencePiece .model file the way transformers'
// slow→fast converters do, so that it encodes exactly like the matching tokenizer.json.
func LoadSentencePiece(path string, flavor SentencePieceFlavor) (*Tokenizer, error) {
	mp, err := sentencepiece.LoadModelProto(path)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	t, err := fromModelProto(mp, flavor)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %s: %w", path, err)
	}
	return t, nil
}

func fromModelProto(mp *sentencepiece.ModelProto, flavor SentencePieceFlavor) (*Tokenizer, error) {
	if mp.Trainer.ModelType != sentencepiece.ModelUnigram {
		return nil, fmt.Errorf("model type %v is not supported (Unigram only)", mp.Trainer.ModelType)
	}
	var charsmap normalizer = sequenceNormalizer{}
	if len(mp.Normalizer.PrecompiledCharsmap) > 0 {
		cm, err := sentencepiece.ParseCharsMap(mp.Normalizer.PrecompiledCharsmap)
		if err != nil {
			return nil, err
		}
		charsmap = &precompiledNormalizer{cm}
	}
	meta := &metaspacePre{replacement: "▁", prepend: "always", split: true}
	t := &Tokenizer{
		pre: sequencePre{whitespaceSplit{}, meta},
		dec: &metaspaceDecoder{replacement: '▁', prefix: true},
	}
	vocab := mp.Vocab()
	switch flavor {
	case SentencePieceXLNet:
		t.norm = sequenceNormalizer{
			&replaceNormalizer{literal: "``", content: `"`},
			&replaceNormalizer{literal: "''", content: `"`},
			&unicodeNormalizer{norm.NFKD},
			stripAccentsNormalizer{},
			charsmap,
		}
		vocab = sentencepiece.DigitCommaPenalty(vocab)
		u, err := sentencepiece.NewUnigram(vocab, int(mp.Trainer.UnkID), mp.Trainer.ByteFallback)
		if err != nil {
			return nil, err
		}
		t.model = &unigram{u}
		var added []AddedToken
		for _, s := range []string{"<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>"} {
			id, ok := u.TokenToID(s)
			if !ok {
				return nil, fmt.Errorf("special token %s missing from the model", s)
			}
			added = append(added, AddedToken{ID: id, Content: s, Special: true})
		}
		sep, _ := u.TokenToID("<sep>")
		cls, _ := u.TokenToID("<cls>")
		t.post = &templateProcessing{
			single:   []templatePiece{{}, {special: "<sep>"}, {special: "<cls>", typeID: 2}},
			pair:     []templatePiece{{}, {special: "<sep>"}, {seqB: true, typeID: 1}, {special: "<sep>", typeID: 1}, {special: "<cls>", typeID: 2}},
			specials: map[string]templateSpecial{"<sep>": {[]int{sep}, []string{"<sep>"}}, "<cls>": {[]int{cls}, []string{"<cls>"}}},
		}
		if t.added, err = newAddedVocab(added, t.norm); err != nil {
			return nil, err
		}
	case SentencePieceXLMRoberta:
		re, _ := compileGoRegex(" {2,}")
		t.norm = sequenceNormalizer{charsmap, &replaceNormalizer{re: re, content: " "}}
		if len(vocab) < 3 {
			return nil, errors.New("vocabulary too small for the fairseq id layout")
		}
		fair := []sentencepiece.VocabEntry{{Piece: "<s>"}, {Piece: "<pad>"}, {Piece: "</s>"}, {Piece: "<unk>"}}
		fair = append(fair, vocab[3:]...)
		fair = append(fair, sentencepiece.VocabEntry{Piece: "<mask>"})
		u, err := sentencepiece.NewUnigram(fair, 3, mp.Trainer.ByteFallback)
		if err != nil {
			return nil, err
		}
		t.model = &unigram{u}
		mask := len(fair) - 1
		added := []AddedToken{
			{ID: 0, Content: "<s>", Special: true}, {ID: 1, Content: "<pad>", Special: true},
			{ID: 2, Content: "</s>", Special: true}, {ID: 3, Content: "<unk>", Special: true},
			{ID: mask, Content: "<mask>", Special: true, LStrip: true},
		}
		t.post = &templateProcessing{
			single:   []templatePiece{{special: "<s>"}, {}, {special: "</s>"}},
			pair:     []templatePiece{{special: "<s>"}, {}, {special: "</s>"}, {special: "</s>"}, {seqB: true}, {special: "</s>"}},
			specials: map[string]templateSpecial{"<s>": {[]int{0}, []string{"<s>"}}, "</s>": {[]int{2}, []string{"</s>"}}},
		}
		if t.added, err = newAddedVocab(added, t.norm); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown SentencePiece flavor %d", flavor)
	}
	return t, nil
}
