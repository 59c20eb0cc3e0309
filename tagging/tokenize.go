package tagging

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/clinfer/clinfer/tokenize"
)

// TokenizerInfo is what the pipeline needs to know about a tokenize.Tokenizer that its
// encodings do not say (Hugging Face reads it from the tokenizer object).
type TokenizerInfo struct {
	// UnkToken is the unknown token ("[UNK]", "<unk>"); "" when the vocabulary has none.
	UnkToken string
	// SubwordPrefix is the model's continuing_subword_prefix ("##" for WordPiece).
	SubwordPrefix string
	// WordPieceDecoder is set when the decoder is WordPiece (with its prefix and cleanup);
	// pieces are then joined here, exactly, even when some are text of unknown tokens.
	WordPieceDecoder *WordPieceDecoder
}

// WordPieceDecoder is Hugging Face's WordPiece decoder configuration.
type WordPieceDecoder struct {
	Prefix  string
	Cleanup bool
}

// LoadTokenizer loads the tokenizer of a model directory with tokenize.Load and reads the
// rest of TokenizerInfo from tokenizer.json (or, for legacy files, from their conventions:
// vocab.txt is WordPiece with "##" and [UNK]), with tokenizer_config.json's unk_token
// taking precedence.
func LoadTokenizer(dir string) (Tokenizer, error) {
	t, err := tokenize.Load(dir)
	if err != nil {
		return nil, err
	}
	info, err := readTokenizerInfo(dir)
	if err != nil {
		return nil, err
	}
	if c := t.Config(); c != nil && c.UnkToken != "" {
		info.UnkToken = c.UnkToken
	}
	return FromTokenize(t, info)
}

func readTokenizerInfo(dir string) (TokenizerInfo, error) {
	p := filepath.Join(dir, "tokenizer.json")
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		switch {
		case fileExists(filepath.Join(dir, "vocab.txt")):
			return TokenizerInfo{UnkToken: "[UNK]", SubwordPrefix: "##", WordPieceDecoder: &WordPieceDecoder{Prefix: "##", Cleanup: true}}, nil
		default:
			return TokenizerInfo{UnkToken: "<unk>"}, nil
		}
	}
	if err != nil {
		return TokenizerInfo{}, fmt.Errorf("tagging: %w", err)
	}
	var tj struct {
		Model struct {
			Type          string  `json:"type"`
			UnkToken      *string `json:"unk_token"`
			SubwordPrefix *string `json:"continuing_subword_prefix"`
			UnkID         *int    `json:"unk_id"`
			Vocab         json.RawMessage
		} `json:"model"`
		Decoder *struct {
			Type    string `json:"type"`
			Prefix  string `json:"prefix"`
			Cleanup *bool  `json:"cleanup"`
		} `json:"decoder"`
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		return TokenizerInfo{}, fmt.Errorf("tagging: %s: %w", p, err)
	}
	var info TokenizerInfo
	if tj.Model.UnkToken != nil {
		info.UnkToken = *tj.Model.UnkToken
	}
	if tj.Model.UnkID != nil && info.UnkToken == "" {
		// Unigram names its unknown token by index into the vocab list of [piece, score].
		var vocab [][2]any
		if json.Unmarshal(tj.Model.Vocab, &vocab) == nil && *tj.Model.UnkID >= 0 && *tj.Model.UnkID < len(vocab) {
			info.UnkToken, _ = vocab[*tj.Model.UnkID][0].(string)
		}
	}
	if tj.Model.SubwordPrefix != nil {
		info.SubwordPrefix = *tj.Model.SubwordPrefix
	}
	if d := tj.Decoder; d != nil && d.Type == "WordPiece" {
		wp := &WordPieceDecoder{Prefix: d.Prefix, Cleanup: true}
		if wp.Prefix == "" {
			wp.Prefix = "##"
		}
		if d.Cleanup != nil {
			wp.Cleanup = *d.Cleanup
		}
		info.WordPieceDecoder = wp
	}
	return info, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// FromTokenize adapts a tokenize.Tokenizer. The special tokens of a window are learned by
// encoding a probe text with and without them.
func FromTokenize(t *tokenize.Tokenizer, info TokenizerInfo) (Tokenizer, error) {
	a := &tokAdapter{t: t, info: info, unk: -1}
	if info.UnkToken != "" {
		if id, ok := t.TokenToID(info.UnkToken); ok {
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
	info             TokenizerInfo
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
func (a *tokAdapter) SubwordPrefix() string { return a.info.SubwordPrefix }

// JoinPieces is Hugging Face's convert_tokens_to_string. The WordPiece decoder is applied
// here; other decoders go through tokenize's Decode, which needs vocabulary ids, so a run of
// pieces containing the text of unknown tokens is decoded around them and joined with spaces
// (an approximation; Hugging Face would feed the raw text to the decoder).
func (a *tokAdapter) JoinPieces(pieces []string) string {
	if d := a.info.WordPieceDecoder; d != nil {
		return JoinWordPiece(pieces, d.Prefix, d.Cleanup)
	}
	var parts []string
	var ids []int
	flush := func() {
		if len(ids) > 0 {
			parts = append(parts, a.t.Decode(ids, false))
			ids = ids[:0]
		}
	}
	for _, p := range pieces {
		if id, ok := a.t.TokenToID(p); ok {
			ids = append(ids, id)
			continue
		}
		flush()
		parts = append(parts, p)
	}
	flush()
	return strings.Join(parts, " ")
}

// JoinWordPiece is Hugging Face's WordPiece decoder: pieces after the first lose their
// prefix or get a space before them, then (with cleanup) each piece's " ." " ," and the like
// lose their space.
func JoinWordPiece(pieces []string, prefix string, cleanup bool) string {
	var b strings.Builder
	for i, p := range pieces {
		if i > 0 {
			if strings.HasPrefix(p, prefix) {
				p = strings.Replace(p, prefix, "", 1)
			} else {
				p = " " + p
			}
		}
		if cleanup {
			for _, r := range wordPieceCleanup {
				p = strings.ReplaceAll(p, r[0], r[1])
			}
		}
		b.WriteString(p)
	}
	return b.String()
}

var wordPieceCleanup = [][2]string{
	{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
	{" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
}
