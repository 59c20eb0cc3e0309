package tokenize

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// tokenizerJSON is the top level of Hugging Face's tokenizer.json.
type tokenizerJSON struct {
	Version       string          `json:"version"`
	Truncation    json.RawMessage `json:"truncation"`
	Padding       json.RawMessage `json:"padding"`
	AddedTokens   []AddedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	Model         json.RawMessage `json:"model"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
}

func isNull(m json.RawMessage) bool {
	t := bytes.TrimSpace(m)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// LoadFile loads a tokenizer.json file.
func LoadFile(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	t, err := FromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %s: %w", path, err)
	}
	return t, nil
}

// Load loads the tokenizer of a model directory: tokenizer.json when present, otherwise the
// legacy files (vocab.txt; vocab.json + merges.txt; spiece.model / sentencepiece.bpe.model),
// configured from tokenizer_config.json (do_lower_case, add_prefix_space, special tokens,
// chat_template, model_max_length).
func Load(dir string) (*Tokenizer, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	var t *Tokenizer
	switch {
	case exists(filepath.Join(dir, "tokenizer.json")):
		t, err = LoadFile(filepath.Join(dir, "tokenizer.json"))
	case exists(filepath.Join(dir, "vocab.txt")):
		lower := true // transformers' BertTokenizer default (see Bio_ClinicalBERT in the README)
		if cfg != nil && cfg.DoLowerCase != nil {
			lower = *cfg.DoLowerCase
		}
		t, err = LoadWordPieceVocab(filepath.Join(dir, "vocab.txt"), lower)
	case exists(filepath.Join(dir, "vocab.json")) && exists(filepath.Join(dir, "merges.txt")):
		t, err = loadBPEDir(dir, cfg)
	case exists(filepath.Join(dir, "spiece.model")):
		t, err = LoadSentencePiece(filepath.Join(dir, "spiece.model"), SentencePieceXLNet)
	case exists(filepath.Join(dir, "sentencepiece.bpe.model")):
		t, err = LoadSentencePiece(filepath.Join(dir, "sentencepiece.bpe.model"), SentencePieceXLMRoberta)
	default:
		return nil, fmt.Errorf("tokenize: %s: no tokenizer.json, vocab.txt, vocab.json+merges.txt or SentencePiece model", dir)
	}
	if err != nil {
		return nil, err
	}
	t.config = cfg
	t.chat = &chatState{}
	applyPrefixSpaceConfig(t, cfg)
	applyBertConfig(t, cfg)
	return t, nil
}

func exists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// FromJSON builds a tokenizer from the contents of a tokenizer.json file.
func FromJSON(data []byte) (*Tokenizer, error) {
	var tj tokenizerJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if isNull(tj.Model) {
		return nil, errors.New(`field "model" is missing`)
	}
	t := &Tokenizer{}
	var err error
	if !isNull(tj.Normalizer) {
		if t.norm, err = parseNormalizer(tj.Normalizer); err != nil {
			return nil, fmt.Errorf("normalizer: %w", err)
		}
	}
	var byteLevel bool
	if !isNull(tj.PreTokenizer) {
		if t.pre, byteLevel, err = parsePreTokenizer(tj.PreTokenizer); err != nil {
			return nil, fmt.Errorf("pre_tokenizer: %w", err)
		}
	}
	if t.model, err = parseModel(tj.Model, byteLevel); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if !isNull(tj.PostProcessor) {
		if t.post, err = parsePostProcessor(tj.PostProcessor, t.model, tj.AddedTokens); err != nil {
			return nil, fmt.Errorf("post_processor: %w", err)
		}
	}
	if !isNull(tj.Decoder) {
		if t.dec, err = parseDecoder(tj.Decoder); err != nil {
			return nil, fmt.Errorf("decoder: %w", err)
		}
	}
	for i, a := range tj.AddedTokens {
		if a.Content == "" {
			return nil, fmt.Errorf("added_tokens[%d]: empty content", i)
		}
	}
	if t.added, err = newAddedVocab(tj.AddedTokens, t.norm); err != nil {
		return nil, fmt.Errorf("added_tokens: %w", err)
	}
	if !isNull(tj.Truncation) {
		var tr struct {
			MaxLength int    `json:"max_length"`
			Stride    int    `json:"stride"`
			Strategy  string `json:"strategy"`
			Direction string `json:"direction"`
		}
		if err := json.Unmarshal(tj.Truncation, &tr); err != nil {
			return nil, fmt.Errorf("truncation: %w", err)
		}
		t.truncation = &Truncation{MaxLength: tr.MaxLength, Stride: tr.Stride}
		switch tr.Strategy {
		case "OnlyFirst":
			t.truncation.Strategy = OnlyFirst
		case "OnlySecond":
			t.truncation.Strategy = OnlySecond
		}
		if tr.Direction == "Left" {
			t.truncation.Direction = Left
		}
	}
	if !isNull(tj.Padding) {
		var pd struct {
			Strategy        json.RawMessage `json:"strategy"`
			Direction       string          `json:"direction"`
			PadToMultipleOf *int            `json:"pad_to_multiple_of"`
			PadID           int             `json:"pad_id"`
			PadTypeID       int             `json:"pad_type_id"`
			PadToken        string          `json:"pad_token"`
		}
		if err := json.Unmarshal(tj.Padding, &pd); err != nil {
			return nil, fmt.Errorf("padding: %w", err)
		}
		p := &Padding{PadID: pd.PadID, PadTypeID: pd.PadTypeID, PadToken: pd.PadToken}
		if pd.PadToMultipleOf != nil {
			p.MultipleOf = *pd.PadToMultipleOf
		}
		if pd.Direction == "Left" {
			p.Direction = Left
		}
		var fixed struct {
			Fixed int `json:"Fixed"`
		}
		if json.Unmarshal(pd.Strategy, &fixed) == nil {
			p.Length = fixed.Fixed
		}
		t.padding = p
	}
	_, isRoberta := t.post.(*robertaProcessing)
	t.roberta = isRoberta && byteLevel
	return t, nil
}

type typed struct {
	Type string `json:"type"`
}

func typeOf(raw json.RawMessage) (string, error) {
	var t typed
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", err
	}
	return t.Type, nil
}

// pattern is {"String": "..."} or {"Regex": "..."}.
type pattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

func parseNormalizer(raw json.RawMessage) (normalizer, error) {
	typ, err := typeOf(raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "BertNormalizer":
		var c struct {
			CleanText          *bool `json:"clean_text"`
			HandleChineseChars *bool `json:"handle_chinese_chars"`
			StripAccents       *bool `json:"strip_accents"`
			Lowercase          *bool `json:"lowercase"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		b := &bertNormalizer{cleanText: true, chineseChars: true, lowercase: true}
		if c.CleanText != nil {
			b.cleanText = *c.CleanText
		}
		if c.HandleChineseChars != nil {
			b.chineseChars = *c.HandleChineseChars
		}
		if c.Lowercase != nil {
			b.lowercase = *c.Lowercase
		}
		b.stripAccents = b.lowercase
		if c.StripAccents != nil {
			b.stripAccents = *c.StripAccents
		}
		return b, nil
	case "NFC":
		return &unicodeNormalizer{norm.NFC}, nil
	case "NFD":
		return &unicodeNormalizer{norm.NFD}, nil
	case "NFKC":
		return &unicodeNormalizer{norm.NFKC}, nil
	case "NFKD":
		return &unicodeNormalizer{norm.NFKD}, nil
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "StripAccents":
		return stripAccentsNormalizer{}, nil
	case "Strip":
		var c struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		return &stripNormalizer{c.Left, c.Right}, nil
	case "Prepend":
		var c struct {
			Prepend string `json:"prepend"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		return &prependNormalizer{c.Prepend}, nil
	case "Replace":
		var c struct {
			Pattern pattern `json:"pattern"`
			Content string  `json:"content"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		switch {
		case c.Pattern.String != nil:
			return &replaceNormalizer{literal: *c.Pattern.String, content: c.Content}, nil
		case c.Pattern.Regex != nil:
			re, err := compileGoRegex(*c.Pattern.Regex)
			if err != nil {
				return nil, err
			}
			return &replaceNormalizer{re: re, content: c.Content}, nil
		}
		return nil, errors.New("Replace: pattern has neither String nor Regex")
	case "Precompiled":
		var c struct {
			Charsmap string `json:"precompiled_charsmap"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		return newPrecompiledNormalizer(c.Charsmap)
	case "Sequence":
		var c struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		var seq sequenceNormalizer
		for i, r := range c.Normalizers {
			n, err := parseNormalizer(r)
			if err != nil {
				return nil, fmt.Errorf("normalizers[%d]: %w", i, err)
			}
			seq = append(seq, n)
		}
		return seq, nil
	}
	return nil, fmt.Errorf("unsupported normalizer type %q", typ)
}

func parsePreTokenizer(raw json.RawMessage) (preTokenizer, bool, error) {
	typ, err := typeOf(raw)
	if err != nil {
		return nil, false, err
	}
	switch typ {
	case "BertPreTokenizer":
		return bertPreTokenizer{}, false, nil
	case "WhitespaceSplit":
		return whitespaceSplit{}, false, nil
	case "Whitespace":
		return whitespacePre{}, false, nil
	case "ByteLevel":
		c := struct {
			AddPrefixSpace bool  `json:"add_prefix_space"`
			UseRegex       *bool `json:"use_regex"`
		}{}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, false, err
		}
		useRegex := true
		if c.UseRegex != nil {
			useRegex = *c.UseRegex
		}
		return &byteLevelPre{addPrefixSpace: c.AddPrefixSpace, useRegex: useRegex}, true, nil
	case "Split":
		var c struct {
			Pattern  pattern `json:"pattern"`
			Behavior string  `json:"behavior"`
			Invert   bool    `json:"invert"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, false, err
		}
		b, err := parseBehavior(c.Behavior)
		if err != nil {
			return nil, false, err
		}
		var find func(string) [][2]int
		switch {
		case c.Pattern.Regex != nil:
			find, err = compilePattern(*c.Pattern.Regex, "", true)
		case c.Pattern.String != nil:
			find, err = compilePattern("", *c.Pattern.String, false)
		default:
			err = errors.New("Split: pattern has neither String nor Regex")
		}
		if err != nil {
			return nil, false, err
		}
		return &splitPre{find: find, behavior: b, invert: c.Invert}, false, nil
	case "Metaspace":
		var c struct {
			Replacement    string `json:"replacement"`
			AddPrefixSpace *bool  `json:"add_prefix_space"`
			PrependScheme  string `json:"prepend_scheme"`
			Split          *bool  `json:"split"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, false, err
		}
		m := &metaspacePre{replacement: c.Replacement, prepend: "always", split: true}
		if m.replacement == "" {
			m.replacement = "▁"
		}
		if c.PrependScheme != "" {
			m.prepend = c.PrependScheme
		} else if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
			m.prepend = "never"
		}
		if c.Split != nil {
			m.split = *c.Split
		}
		return m, false, nil
	case "Digits":
		var c struct {
			Individual bool `json:"individual_digits"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, false, err
		}
		return &digitsPre{c.Individual}, false, nil
	case "Punctuation":
		var c struct {
			Behavior string `json:"behavior"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, false, err
		}
		b := bIsolated
		if c.Behavior != "" {
			if b, err = parseBehavior(c.Behavior); err != nil {
				return nil, false, err
			}
		}
		return &punctuationPre{b}, false, nil
	case "Sequence":
		var c struct {
			Pre []json.RawMessage `json:"pretokenizers"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, false, err
		}
		var seq sequencePre
		anyBL := false
		for i, r := range c.Pre {
			p, bl, err := parsePreTokenizer(r)
			if err != nil {
				return nil, false, fmt.Errorf("pretokenizers[%d]: %w", i, err)
			}
			anyBL = anyBL || bl
			seq = append(seq, p)
		}
		return seq, anyBL, nil
	}
	return nil, false, fmt.Errorf("unsupported pre-tokenizer type %q", typ)
}

func parseModel(raw json.RawMessage, byteLevel bool) (model, error) {
	var probe struct {
		Type  string          `json:"type"`
		Vocab json.RawMessage `json:"vocab"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, err
	}
	typ := probe.Type
	if typ == "" {
		// Older files omit the type; infer it as Hugging Face's untagged deserializer does.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		vt := bytes.TrimSpace(probe.Vocab)
		switch {
		case len(vt) > 0 && vt[0] == '[':
			typ = "Unigram"
		case m["merges"] != nil:
			typ = "BPE"
		case m["max_input_chars_per_word"] != nil || m["continuing_subword_prefix"] != nil:
			typ = "WordPiece"
		case m["unk_token"] != nil:
			typ = "WordLevel"
		default:
			return nil, errors.New(`cannot infer the model type (no "type" key)`)
		}
	}
	switch typ {
	case "WordPiece":
		var c struct {
			Unk      string         `json:"unk_token"`
			Prefix   *string        `json:"continuing_subword_prefix"`
			MaxChars *int           `json:"max_input_chars_per_word"`
			Vocab    map[string]int `json:"vocab"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		prefix, maxChars := "##", 100
		if c.Prefix != nil {
			prefix = *c.Prefix
		}
		if c.MaxChars != nil {
			maxChars = *c.MaxChars
		}
		if c.Unk == "" {
			c.Unk = "[UNK]"
		}
		return newWordPiece(c.Vocab, c.Unk, prefix, maxChars)
	case "BPE":
		var c struct {
			Unk          *string           `json:"unk_token"`
			Prefix       *string           `json:"continuing_subword_prefix"`
			Suffix       *string           `json:"end_of_word_suffix"`
			FuseUnk      bool              `json:"fuse_unk"`
			ByteFallback bool              `json:"byte_fallback"`
			IgnoreMerges bool              `json:"ignore_merges"`
			Dropout      *float64          `json:"dropout"`
			Vocab        map[string]int    `json:"vocab"`
			Merges       []json.RawMessage `json:"merges"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		if c.Dropout != nil && *c.Dropout > 0 {
			return nil, errors.New("BPE dropout is not supported (inference tokenizers have none)")
		}
		merges := make([][2]string, len(c.Merges))
		for i, m := range c.Merges {
			var s string
			if json.Unmarshal(m, &s) == nil {
				a, b, ok := splitMerge(s)
				if !ok {
					return nil, fmt.Errorf("merges[%d]: %q is not two tokens separated by a space", i, s)
				}
				merges[i] = [2]string{a, b}
				continue
			}
			var pair []string
			if err := json.Unmarshal(m, &pair); err != nil || len(pair) != 2 {
				return nil, fmt.Errorf("merges[%d]: neither \"a b\" nor [a, b]", i)
			}
			merges[i] = [2]string{pair[0], pair[1]}
		}
		b, err := newBPE(c.Vocab, merges, byteLevel)
		if err != nil {
			return nil, err
		}
		if c.Unk != nil {
			b.unk = *c.Unk
			if id, ok := c.Vocab[b.unk]; ok {
				b.unkID = id
			}
		}
		if c.Prefix != nil {
			b.contPrefix = *c.Prefix
		}
		if c.Suffix != nil {
			b.endOfWordSufix = *c.Suffix
		}
		b.fuseUnk, b.byteFallback, b.ignoreMerges = c.FuseUnk, c.ByteFallback, c.IgnoreMerges
		return b, nil
	case "Unigram":
		return parseUnigram(raw)
	}
	return nil, fmt.Errorf("unsupported model type %q", typ)
}

// splitMerge splits a "left right" merge line. Tokens never contain a plain space in
// byte-level vocabularies, so the first space separates them.
func splitMerge(s string) (string, string, bool) {
	i := strings.IndexByte(s, ' ')
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

func parsePostProcessor(raw json.RawMessage, m model, added []AddedToken) (postProcessor, error) {
	typ, err := typeOf(raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "TemplateProcessing":
		var c struct {
			Single        []json.RawMessage `json:"single"`
			Pair          []json.RawMessage `json:"pair"`
			SpecialTokens map[string]struct {
				ID     string   `json:"id"`
				IDs    []int    `json:"ids"`
				Tokens []string `json:"tokens"`
			} `json:"special_tokens"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		tp := &templateProcessing{specials: map[string]templateSpecial{}}
		for k, v := range c.SpecialTokens {
			if len(v.IDs) != len(v.Tokens) {
				return nil, fmt.Errorf("special_tokens[%q]: %d ids but %d tokens", k, len(v.IDs), len(v.Tokens))
			}
			tp.specials[k] = templateSpecial{v.IDs, v.Tokens}
		}
		parse := func(list []json.RawMessage, name string) ([]templatePiece, error) {
			var out []templatePiece
			for i, r := range list {
				var p struct {
					Sequence *struct {
						ID     string `json:"id"`
						TypeID int    `json:"type_id"`
					} `json:"Sequence"`
					SpecialToken *struct {
						ID     string `json:"id"`
						TypeID int    `json:"type_id"`
					} `json:"SpecialToken"`
				}
				if err := json.Unmarshal(r, &p); err != nil {
					return nil, fmt.Errorf("%s[%d]: %w", name, i, err)
				}
				switch {
				case p.Sequence != nil:
					out = append(out, templatePiece{seqB: p.Sequence.ID == "B", typeID: p.Sequence.TypeID})
				case p.SpecialToken != nil:
					if _, ok := tp.specials[p.SpecialToken.ID]; !ok {
						return nil, fmt.Errorf("%s[%d]: special token %q not in special_tokens", name, i, p.SpecialToken.ID)
					}
					out = append(out, templatePiece{special: p.SpecialToken.ID, typeID: p.SpecialToken.TypeID})
				default:
					return nil, fmt.Errorf("%s[%d]: neither Sequence nor SpecialToken", name, i)
				}
			}
			return out, nil
		}
		if tp.single, err = parse(c.Single, "single"); err != nil {
			return nil, err
		}
		if tp.pair, err = parse(c.Pair, "pair"); err != nil {
			return nil, err
		}
		return tp, nil
	case "BertProcessing", "RobertaProcessing":
		var c struct {
			Sep            [2]json.RawMessage `json:"sep"`
			Cls            [2]json.RawMessage `json:"cls"`
			TrimOffsets    *bool              `json:"trim_offsets"`
			AddPrefixSpace *bool              `json:"add_prefix_space"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		var sep, cls string
		var sepID, clsID int
		if err := json.Unmarshal(c.Sep[0], &sep); err != nil {
			return nil, fmt.Errorf("sep: %w", err)
		}
		if err := json.Unmarshal(c.Sep[1], &sepID); err != nil {
			return nil, fmt.Errorf("sep: %w", err)
		}
		if err := json.Unmarshal(c.Cls[0], &cls); err != nil {
			return nil, fmt.Errorf("cls: %w", err)
		}
		if err := json.Unmarshal(c.Cls[1], &clsID); err != nil {
			return nil, fmt.Errorf("cls: %w", err)
		}
		if typ == "BertProcessing" {
			return &bertProcessing{cls: cls, sep: sep, clsID: clsID, sepID: sepID}, nil
		}
		rp := &robertaProcessing{cls: cls, sep: sep, clsID: clsID, sepID: sepID, trimOffsets: true, addPrefixSpace: true}
		if c.TrimOffsets != nil {
			rp.trimOffsets = *c.TrimOffsets
		}
		if c.AddPrefixSpace != nil {
			rp.addPrefixSpace = *c.AddPrefixSpace
		}
		return rp, nil
	case "ByteLevel":
		var c struct {
			TrimOffsets    *bool `json:"trim_offsets"`
			AddPrefixSpace bool  `json:"add_prefix_space"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		bl := &byteLevelPost{trimOffsets: true, addPrefixSpace: c.AddPrefixSpace}
		if c.TrimOffsets != nil {
			bl.trimOffsets = *c.TrimOffsets
		}
		return bl, nil
	case "Sequence":
		var c struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		var seq sequencePost
		for i, r := range c.Processors {
			p, err := parsePostProcessor(r, m, added)
			if err != nil {
				return nil, fmt.Errorf("processors[%d]: %w", i, err)
			}
			seq = append(seq, p)
		}
		if len(seq) == 0 {
			return nil, errors.New("empty processor sequence")
		}
		return seq, nil
	}
	return nil, fmt.Errorf("unsupported post-processor type %q", typ)
}

func parseDecoder(raw json.RawMessage) (decoder, error) {
	typ, err := typeOf(raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "WordPiece":
		var c struct {
			Prefix  *string `json:"prefix"`
			Cleanup *bool   `json:"cleanup"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		d := &wordPieceDecoder{prefix: "##", cleanup: true}
		if c.Prefix != nil {
			d.prefix = *c.Prefix
		}
		if c.Cleanup != nil {
			d.cleanup = *c.Cleanup
		}
		return d, nil
	case "ByteLevel":
		return byteLevelDecoder{}, nil
	case "Metaspace":
		var c struct {
			Replacement    string `json:"replacement"`
			AddPrefixSpace *bool  `json:"add_prefix_space"`
			PrependScheme  string `json:"prepend_scheme"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		d := &metaspaceDecoder{replacement: '▁', prefix: true}
		if c.Replacement != "" {
			d.replacement = []rune(c.Replacement)[0]
		}
		if c.PrependScheme == "never" || (c.PrependScheme == "" && c.AddPrefixSpace != nil && !*c.AddPrefixSpace) {
			d.prefix = false
		}
		return d, nil
	case "Replace":
		var c struct {
			Pattern pattern `json:"pattern"`
			Content string  `json:"content"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		if c.Pattern.String == nil {
			return nil, errors.New("Replace decoder: only String patterns are supported")
		}
		return &replaceDecoder{*c.Pattern.String, c.Content}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		var c struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		r := ' '
		if c.Content != "" {
			r = []rune(c.Content)[0]
		}
		return &stripDecoder{r, c.Start, c.Stop}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "BPEDecoder":
		var c struct {
			Suffix *string `json:"suffix"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		d := &bpeDecoder{"</w>"}
		if c.Suffix != nil {
			d.suffix = *c.Suffix
		}
		return d, nil
	case "Sequence":
		var c struct {
			Decoders []json.RawMessage `json:"decoders"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		var seq sequenceDecoder
		for i, r := range c.Decoders {
			d, err := parseDecoder(r)
			if err != nil {
				return nil, fmt.Errorf("decoders[%d]: %w", i, err)
			}
			seq = append(seq, d)
		}
		return seq, nil
	}
	return nil, fmt.Errorf("unsupported decoder type %q", typ)
}

// ---- legacy files ----

// LoadWordPieceVocab builds a BERT tokenizer from vocab.txt as transformers' BertTokenizerFast
// does: BertNormalizer (lowercase and accent stripping when lowercase is true), BertPreTokenizer,
// WordPiece, [CLS] … [SEP] template, WordPiece decoder.
func LoadWordPieceVocab(path string, lowercase bool) (*Tokenizer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	defer f.Close()
	vocab := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		tok := strings.TrimRight(sc.Text(), "\r")
		if _, dup := vocab[tok]; !dup {
			vocab[tok] = n
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenize: %s: %w", path, err)
	}
	wp, err := newWordPiece(vocab, "[UNK]", "##", 100)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %s: %w", path, err)
	}
	t := &Tokenizer{
		norm:  &bertNormalizer{cleanText: true, chineseChars: true, stripAccents: lowercase, lowercase: lowercase},
		pre:   bertPreTokenizer{},
		model: wp,
		dec:   &wordPieceDecoder{prefix: "##", cleanup: true},
	}
	var added []AddedToken
	for _, s := range []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} {
		id, ok := vocab[s]
		if !ok {
			return nil, fmt.Errorf("tokenize: %s: special token %s missing", path, s)
		}
		added = append(added, AddedToken{ID: id, Content: s, Special: true})
	}
	cls, sep := vocab["[CLS]"], vocab["[SEP]"]
	t.post = &templateProcessing{
		single:   []templatePiece{{special: "[CLS]"}, {}, {special: "[SEP]"}},
		pair:     []templatePiece{{special: "[CLS]"}, {}, {special: "[SEP]"}, {seqB: true, typeID: 1}, {special: "[SEP]", typeID: 1}},
		specials: map[string]templateSpecial{"[CLS]": {[]int{cls}, []string{"[CLS]"}}, "[SEP]": {[]int{sep}, []string{"[SEP]"}}},
	}
	if t.added, err = newAddedVocab(added, t.norm); err != nil {
		return nil, err
	}
	return t, nil
}

// BPEFlavor selects the pipeline built around vocab.json + merges.txt.
type BPEFlavor int

const (
	// BPERoberta: ByteLevel pre-tokenizer with the GPT-2 regex, <s> … </s> (RoBERTa,
	// LayoutLMv3; also GPT-2 without the special tokens).
	BPERoberta BPEFlavor = iota
	// BPEQwen2: NFC, Qwen2's split regex, no special tokens around the text.
	BPEQwen2
)

// LoadBPEFiles builds a byte-level BPE tokenizer from vocab.json and merges.txt.
// addPrefixSpace is RoBERTa's add_prefix_space.
func LoadBPEFiles(vocabPath, mergesPath string, flavor BPEFlavor, addPrefixSpace bool, special []AddedToken) (*Tokenizer, error) {
	data, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	vocab := map[string]int{}
	if err := json.Unmarshal(data, &vocab); err != nil {
		return nil, fmt.Errorf("tokenize: %s: %w", vocabPath, err)
	}
	mdata, err := os.ReadFile(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	var merges [][2]string
	for ln, line := range strings.Split(string(mdata), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || (ln == 0 && strings.HasPrefix(line, "#version")) {
			continue
		}
		a, b, ok := splitMerge(line)
		if !ok {
			return nil, fmt.Errorf("tokenize: %s line %d: %q is not two tokens separated by a space", mergesPath, ln+1, line)
		}
		merges = append(merges, [2]string{a, b})
	}
	m, err := newBPE(vocab, merges, true)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %s: %w", vocabPath, err)
	}
	t := &Tokenizer{model: m, dec: byteLevelDecoder{}}
	for i := range special {
		if special[i].ID < 0 {
			id, ok := vocab[special[i].Content]
			if !ok {
				return nil, fmt.Errorf("tokenize: special token %q has no id", special[i].Content)
			}
			special[i].ID = id
		}
	}
	switch flavor {
	case BPERoberta:
		t.pre = &byteLevelPre{addPrefixSpace: addPrefixSpace, useRegex: true}
		cls, sep := "<s>", "</s>"
		clsID, ok1 := vocab[cls]
		sepID, ok2 := vocab[sep]
		if ok1 && ok2 {
			t.post = &robertaProcessing{cls: cls, sep: sep, clsID: clsID, sepID: sepID, trimOffsets: true, addPrefixSpace: addPrefixSpace}
			t.roberta = true
		} else {
			t.post = &byteLevelPost{trimOffsets: true, addPrefixSpace: addPrefixSpace}
		}
	case BPEQwen2:
		t.norm = &unicodeNormalizer{norm.NFC}
		find, _ := compilePattern(qwenPattern, "", true)
		t.pre = sequencePre{&splitPre{find: find, behavior: bIsolated}, &byteLevelPre{addPrefixSpace: false, useRegex: false}}
		t.post = &byteLevelPost{trimOffsets: false}
	}
	if t.added, err = newAddedVocab(special, t.norm); err != nil {
		return nil, err
	}
	return t, nil
}

func loadBPEDir(dir string, cfg *Config) (*Tokenizer, error) {
	flavor := BPERoberta
	aps := false
	var special []AddedToken
	if cfg != nil {
		if strings.HasPrefix(cfg.TokenizerClass, "Qwen2") {
			flavor = BPEQwen2
		}
		if cfg.AddPrefixSpace != nil {
			aps = *cfg.AddPrefixSpace
		}
		special = cfg.specialAddedTokens()
	}
	if flavor == BPERoberta && len(special) == 0 {
		for _, s := range []string{"<s>", "<pad>", "</s>", "<unk>"} {
			special = append(special, AddedToken{ID: -1, Content: s, Special: true, Normalized: true})
		}
		special = append(special, AddedToken{ID: -1, Content: "<mask>", Special: true, Normalized: true, LStrip: true})
	}
	return LoadBPEFiles(filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt"), flavor, aps, special)
}

// applyPrefixSpaceConfig mirrors RobertaTokenizerFast (and LayoutLMv3's copy of it): the
// add_prefix_space argument (tokenizer_config.json, default false) overrides the value stored in
// the ByteLevel pre-tokenizer and RobertaProcessing, so that a directory encodes as
// AutoTokenizer.from_pretrained(dir) does.
func applyPrefixSpaceConfig(t *Tokenizer, cfg *Config) {
	rp, ok := t.post.(*robertaProcessing)
	if !ok {
		return
	}
	bl, ok := t.pre.(*byteLevelPre)
	if !ok {
		return
	}
	aps := false
	if cfg != nil && cfg.AddPrefixSpace != nil {
		aps = *cfg.AddPrefixSpace
	}
	nbl, nrp := *bl, *rp
	nbl.addPrefixSpace, nrp.addPrefixSpace = aps, aps
	t.pre, t.post = &nbl, &nrp
}

// applyBertConfig mirrors BertTokenizerFast: do_lower_case (default true), strip_accents
// (default: follow lowercasing) and tokenize_chinese_chars (default true) from
// tokenizer_config.json override the BertNormalizer stored in tokenizer.json. This is why
// Bio_ClinicalBERT, which ships no tokenizer_config.json, is lowercased (see the tokenizers README).
func applyBertConfig(t *Tokenizer, cfg *Config) {
	bn, ok := t.norm.(*bertNormalizer)
	if !ok {
		return
	}
	if _, ok := t.model.(*wordPiece); !ok {
		return
	}
	n := *bn
	n.lowercase, n.chineseChars = true, true
	if cfg != nil && cfg.DoLowerCase != nil {
		n.lowercase = *cfg.DoLowerCase
	}
	if cfg != nil && cfg.TokenizeChinese != nil {
		n.chineseChars = *cfg.TokenizeChinese
	}
	n.stripAccents = n.lowercase
	if cfg != nil && cfg.StripAccents != nil {
		n.stripAccents = *cfg.StripAccents
	}
	if n == *bn {
		return
	}
	t.norm = &n
	// Normalized added tokens are matched in their normalized form: rebuild the matcher.
	if av, err := newAddedVocab(t.added.tokens, t.norm); err == nil {
		t.added = av
	}
}
