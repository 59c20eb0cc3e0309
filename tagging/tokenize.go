package tagging

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/clinfer/clinfer/tokenize"
)

// LoadTokenizer loads the tokenizer of a model directory with tokenize.Load and adapts it
// with FromTokenize. Legacy files without tokenizer.json whose model names no unknown token
// (vocab.json + merges.txt) get "<unk>", the default of transformers' tokenizer classes.
func LoadTokenizer(dir string) (Tokenizer, error) {
	t, err := tokenize.Load(dir)
	if err != nil {
		return nil, err
	}
	unk := unkToken(t)
	if unk == "" && !fileExists(filepath.Join(dir, "tokenizer.json")) {
		unk = "<unk>"
	}
	return fromTokenize(t, unk)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// unkToken is tokenizer_config.json's unk_token when set (Hugging Face's unk_token_id comes
// from it), otherwise the model's unknown token; "" when neither names one.
func unkToken(t *tokenize.Tokenizer) string {
	if c := t.Config(); c != nil && c.UnkToken != "" {
		return c.UnkToken
	}
	unk, _ := t.UnkToken()
	return unk
}

// FromTokenize adapts a tokenize.Tokenizer: the unknown token is tokenizer_config.json's
// unk_token or the model's, the subword prefix the model's continuing_subword_prefix, and
// pieces are joined by the tokenizer's decoder. The special tokens of a window are learned
// by encoding a probe text with and without them.
func FromTokenize(t *tokenize.Tokenizer) (Tokenizer, error) {
	return fromTokenize(t, unkToken(t))
}

func fromTokenize(t *tokenize.Tokenizer, unk string) (Tokenizer, error) {
	a := &tokAdapter{t: t, prefix: t.ContinuingSubwordPrefix(), unk: -1}
	if unk != "" {
		if id, ok := t.TokenToID(unk); ok {
			a.unk = id
		}
	}
	a.pad = 0
	if p := t.Padding(); p != nil {
		a.pad = p.PadID
	} else if c := t.Config(); c != nil && c.PadToken != "" {
		if id, ok := t.TokenToID(c.PadToken); ok {
			a.pad = id
		}
	} else {
		for _, tok := range []string{"[PAD]", "<pad>"} {
			if id, ok := t.TokenToID(tok); ok {
				a.pad = id
				break
			}
		}
	}
	var probe *tokenize.Encoding
	for _, text := range []string{"a", "the", "0", "hello"} {
		enc, err := t.EncodeInput(tokenize.Input{Text: text}, tokenize.Options{NoTruncation: true, NoPadding: true})
		if err != nil {
			return nil, fmt.Errorf("tagging: probing the tokenizer's special tokens: %w", err)
		}
		for _, s := range enc.SpecialTokensMask {
			if s == 0 {
				probe = enc
				break
			}
		}
		if probe != nil {
			break
		}
	}
	if probe == nil {
		return nil, errors.New("tagging: probing the tokenizer's special tokens: no probe text gave a content token")
	}
	first, last := -1, -1
	for i, s := range probe.SpecialTokensMask {
		if s == 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	for i := first; i <= last; i++ {
		if probe.SpecialTokensMask[i] != 0 {
			return nil, errors.New("tagging: the tokenizer's post-processor puts special tokens inside a single sequence")
		}
	}
	a.preIDs, a.preTypes = probe.IDs[:first], probe.TypeIDs[:first]
	a.sufIDs, a.sufTypes = probe.IDs[last+1:], probe.TypeIDs[last+1:]
	a.contentType = probe.TypeIDs[first]
	return a, nil
}

type tokAdapter struct {
	t                *tokenize.Tokenizer
	prefix           string
	unk, pad         int
	preIDs, preTypes []int
	sufIDs, sufTypes []int
	contentType      int
}

func (a *tokAdapter) Tokenize(text string) ([]Token, error) {
	enc, err := a.t.EncodeInput(tokenize.Input{Text: text}, tokenize.Options{NoSpecialTokens: true, NoTruncation: true, NoPadding: true})
	if err != nil {
		return nil, err
	}
	out := make([]Token, len(enc.IDs))
	for i, id := range enc.IDs {
		out[i] = Token{ID: id, Piece: enc.Tokens[i], Start: enc.Offsets[i].Start, End: enc.Offsets[i].End}
	}
	return out, nil
}

func (a *tokAdapter) Frame(content []int) ([]int, []int, []bool) {
	n := len(a.preIDs) + len(content) + len(a.sufIDs)
	ids := make([]int, 0, n)
	types := make([]int, 0, n)
	special := make([]bool, n)
	ids = append(append(append(ids, a.preIDs...), content...), a.sufIDs...)
	types = append(types, a.preTypes...)
	for range content {
		types = append(types, a.contentType)
	}
	types = append(types, a.sufTypes...)
	for i := range a.preIDs {
		special[i] = true
	}
	for i := range a.sufIDs {
		special[n-1-i] = true
	}
	return ids, types, special
}

// TokenizerMaxLength returns tokenizer_config.json's model_max_length for a tokenizer made
// by LoadTokenizer or FromTokenize; 0 when unknown or unset (transformers' 1e30 sentinel).
func TokenizerMaxLength(t Tokenizer) int {
	a, ok := t.(*tokAdapter)
	if !ok {
		return 0
	}
	c := a.t.Config()
	if c == nil || c.ModelMaxLength <= 0 || c.ModelMaxLength > 1e9 {
		return 0
	}
	return int(c.ModelMaxLength)
}

func (a *tokAdapter) PadID() int            { return a.pad }
func (a *tokAdapter) UnkID() int            { return a.unk }
func (a *tokAdapter) SubwordPrefix() string { return a.prefix }

// JoinPieces is Hugging Face's convert_tokens_to_string: the decoder run over the pieces.
func (a *tokAdapter) JoinPieces(pieces []string) string { return a.t.DecodeTokens(pieces) }
