package sentencepiece

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// NewSentencePieceUnigram builds a Unigram model that segments as SentencePiece's own
// EncodeOptimized does (not as Hugging Face tokenizers does): only NORMAL and USER_DEFINED
// pieces are matchable, user-defined pieces always win (score len*max-0.1), unknown runes score
// min(NORMAL score) - 10, and path scores are float32. Use it with Normalizer to reproduce
// `spm.EncodeAsPieces`; use NewUnigram for Hugging Face-exact encodings.
func NewSentencePieceUnigram(m *ModelProto) (*Unigram, error) {
	if m.Trainer.ModelType != ModelUnigram {
		return nil, fmt.Errorf("sentencepiece: model type %v is not UNIGRAM", m.Trainer.ModelType)
	}
	unk := int(m.Trainer.UnkID)
	if unk < 0 || unk >= len(m.Pieces) || m.Pieces[unk].Type != Unknown {
		return nil, fmt.Errorf("%w: unk_id %d is not an UNKNOWN piece", ErrMalformed, unk)
	}
	u, err := NewUnigram(m.Vocab(), unk, m.Trainer.ByteFallback)
	if err != nil {
		return nil, err
	}
	u.native = true
	u.userDefined = make([]bool, len(m.Pieces))
	minScore, maxScore := float32(math.MaxFloat32), float32(math.SmallestNonzeroFloat32)
	var keys []string
	var vals []int
	seen := map[string]bool{}
	for id, p := range m.Pieces {
		switch p.Type {
		case Normal:
			minScore = min(minScore, p.Score)
			maxScore = max(maxScore, p.Score)
		case UserDefined:
			u.userDefined[id] = true
		default:
			continue
		}
		if p.Piece == "" || seen[p.Piece] {
			continue
		}
		seen[p.Piece] = true
		keys = append(keys, p.Piece)
		vals = append(vals, id)
	}
	u.trie = buildTrie(keys, vals)
	u.maxScore32 = maxScore
	u.unkScore32 = minScore - unkPenalty
	u.unkScore = float64(u.unkScore32)
	return u, nil
}

// Normalizer is SentencePiece's own text normalizer (normalizer.cc) for a NormalizerSpec:
// user-defined symbols kept verbatim, longest-match charsmap rules, runs of spaces collapsed and
// trimmed (remove_extra_whitespaces), a leading space added (add_dummy_prefix) and spaces written
// as U+2581 (escape_whitespaces). Hugging Face does not use it (its XLNet and XLM-R pipelines are
// Precompiled + WhitespaceSplit + Metaspace); it serves `.model` files read natively.
type Normalizer struct {
	spec        NormalizerSpec
	charsmap    *CharsMap // nil: identity
	userDefined []string  // matched verbatim before any rule, longest first
}

// NewNormalizer prepares m's normalizer_spec. A spec naming a rule set but carrying no
// precompiled map (identity) normalizes only whitespace.
func NewNormalizer(m *ModelProto) (*Normalizer, error) {
	if m.Trainer.TreatWhitespaceAsSuffix {
		return nil, fmt.Errorf("sentencepiece: treat_whitespace_as_suffix models are not supported")
	}
	n := &Normalizer{spec: m.Normalizer}
	if len(m.Normalizer.PrecompiledCharsmap) > 0 {
		cm, err := ParseCharsMap(m.Normalizer.PrecompiledCharsmap)
		if err != nil {
			return nil, err
		}
		n.charsmap = cm
	}
	for _, p := range m.Pieces {
		if p.Type == UserDefined && p.Piece != "" {
			n.userDefined = append(n.userDefined, p.Piece)
		}
	}
	return n, nil
}

// prefix returns the normalized form of the longest rule (or user-defined symbol) at the start of
// s and how many bytes of s it consumes. Invalid UTF-8 becomes U+FFFD, consuming one byte.
func (n *Normalizer) prefix(s string) (string, int) {
	best := 0
	for _, u := range n.userDefined {
		if len(u) > best && strings.HasPrefix(s, u) {
			best = len(u)
		}
	}
	if best > 0 {
		return s[:best], best
	}
	if n.charsmap != nil {
		if repl, k := n.charsmap.Prefix(s); k > 0 {
			return repl, k
		}
	}
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size <= 1 {
		return "\uFFFD", 1
	}
	return s[:size], size
}

// Normalize returns the normalized text and, for each of its bytes, the byte offset in s of the
// input it came from (plus one final entry for the end), as SentencePiece's norm_to_orig.
func (n *Normalizer) Normalize(s string) (string, []int) {
	var out strings.Builder
	var toOrig []int
	consumed := 0
	if n.spec.RemoveExtraWhitespaces {
		for consumed < len(s) {
			p, k := n.prefix(s[consumed:])
			if p != " " {
				break
			}
			consumed += k
		}
	}
	if consumed == len(s) {
		return "", []int{consumed}
	}
	space := " "
	if n.spec.EscapeWhitespaces {
		space = "\u2581"
	}
	if n.spec.AddDummyPrefix {
		out.WriteString(space)
		for range len(space) {
			toOrig = append(toOrig, consumed)
		}
	}
	prevSpace := n.spec.RemoveExtraWhitespaces
	for consumed < len(s) {
		p, k := n.prefix(s[consumed:])
		if prevSpace {
			p = strings.TrimLeft(p, " ")
		}
		if p != "" {
			for i := 0; i < len(p); i++ {
				if n.spec.EscapeWhitespaces && p[i] == ' ' {
					out.WriteString(space)
					for range len(space) {
						toOrig = append(toOrig, consumed)
					}
				} else {
					out.WriteByte(p[i])
					toOrig = append(toOrig, consumed)
				}
			}
			prevSpace = strings.HasSuffix(p, " ")
		}
		consumed += k
		if !n.spec.RemoveExtraWhitespaces {
			prevSpace = false
		}
	}
	res := out.String()
	if n.spec.RemoveExtraWhitespaces {
		for strings.HasSuffix(res, space) {
			l := len(res) - len(space)
			consumed = toOrig[l]
			res = res[:l]
			toOrig = toOrig[:l]
		}
	}
	return res, append(toOrig, consumed)
}
