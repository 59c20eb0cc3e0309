package sentencepiece

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"unicode"
	"unicode/utf8"
)

// VocabEntry is one Unigram vocabulary entry: Hugging Face's `[piece, score]` pair.
type VocabEntry struct {
	Piece string
	Score float64
}

// Token is one Unigram output token. Start and End are byte offsets into the string given to
// Encode. Piece is the matched text (for an unknown run it is the raw text, as Hugging Face
// reports it, while ID is the unk id); byte-fallback tokens are `<0xNN>` and all carry the range
// of the unknown run they come from.
type Token struct {
	ID         int
	Piece      string
	Start, End int
}

// ErrNoUnk is returned by Encode when text has no vocabulary match and the model has no unk id.
var ErrNoUnk = errors.New("sentencepiece: unknown text and the model has no unk id")

// unkPenalty is subtracted from the lowest vocabulary score to score unknown runes (tokenizers'
// K_UNK_PENALTY, SentencePiece's kUnkPenalty).
const unkPenalty = 10.0

// maxPooledBest bounds the Viterbi scratch arrays kept for reuse (entries, 24 bytes each).
const maxPooledBest = 1 << 16

// Unigram is a Unigram language-model tokenizer with Hugging Face tokenizers' exact semantics
// (models/unigram/model.rs, the optimized Viterbi): every vocabulary entry is matchable, an
// unknown rune scores min(score) - 10, consecutive unknowns are fused into one token, ties go to
// the path found first, and byte fallback emits `<0xNN>` pieces when all of them exist.
// Immutable after construction; safe for concurrent use.
type Unigram struct {
	vocab        []VocabEntry
	ids          map[string]int
	trie         trie
	unkID        int // -1: none
	byteFallback bool
	fuseUnk      bool
	unkScore     float64
	byteIDs      [256]int // id of <0xNN>, -1 when absent
	pool         sync.Pool

	// SentencePiece-native mode (NewSentencePiece): float32 path scores, user-defined pieces
	// scored len*maxScore-0.1, and only NORMAL and USER_DEFINED pieces in the trie.
	native      bool
	userDefined []bool
	maxScore32  float32
	unkScore32  float32
}

// NewUnigram builds the model from a vocabulary in id order. unkID < 0 means no unk token
// (Encode then fails on unknown text, as tokenizers does).
func NewUnigram(vocab []VocabEntry, unkID int, byteFallback bool) (*Unigram, error) {
	if unkID >= len(vocab) {
		return nil, fmt.Errorf("sentencepiece: unk id %d outside the vocabulary of %d", unkID, len(vocab))
	}
	if len(vocab) == 0 && unkID >= 0 {
		return nil, fmt.Errorf("sentencepiece: empty vocabulary but an unk id is required")
	}
	if unkID < 0 {
		unkID = -1
	}
	u := &Unigram{
		vocab:        append([]VocabEntry(nil), vocab...),
		ids:          make(map[string]int, len(vocab)),
		unkID:        unkID,
		byteFallback: byteFallback,
		fuseUnk:      true,
	}
	minScore := math.Inf(1)
	keys := make([]string, 0, len(vocab))
	for id, e := range vocab {
		if math.IsNaN(e.Score) {
			return nil, fmt.Errorf("sentencepiece: vocabulary entry %d has a NaN score", id)
		}
		if _, dup := u.ids[e.Piece]; !dup {
			keys = append(keys, e.Piece)
		}
		// A repeated piece maps to its last id, as tokenizers' HashMap insert does.
		u.ids[e.Piece] = id
		if e.Score < minScore {
			minScore = e.Score
		}
	}
	u.unkScore = minScore - unkPenalty
	vals := make([]int, len(keys))
	for i, k := range keys {
		vals[i] = u.ids[k]
	}
	u.trie = buildTrie(keys, vals)
	for b := range u.byteIDs {
		u.byteIDs[b] = -1
		if id, ok := u.ids[fmt.Sprintf("<0x%02X>", b)]; ok {
			u.byteIDs[b] = id
		}
	}
	return u, nil
}

// VocabSize is the number of entries.
func (u *Unigram) VocabSize() int { return len(u.vocab) }

// Vocab returns entry id (piece and score); ok is false outside the vocabulary.
func (u *Unigram) Vocab(id int) (VocabEntry, bool) {
	if id < 0 || id >= len(u.vocab) {
		return VocabEntry{}, false
	}
	return u.vocab[id], true
}

// TokenToID looks a piece up.
func (u *Unigram) TokenToID(piece string) (int, bool) {
	id, ok := u.ids[piece]
	return id, ok
}

// UnkID is the unk token id, -1 when there is none.
func (u *Unigram) UnkID() int { return u.unkID }

// ByteFallback reports whether unknown runs are spelled as `<0xNN>` pieces.
func (u *Unigram) ByteFallback() bool { return u.byteFallback }

type bestNode struct {
	score float64
	start int // -1: unreached
	id    int
}

// Encode segments s (already normalized and pre-tokenized) and appends its tokens to dst.
func (u *Unigram) Encode(s string, dst []Token) ([]Token, error) {
	if s == "" {
		return dst, nil
	}
	var best []bestNode
	if p, ok := u.pool.Get().(*[]bestNode); ok && cap(*p) >= len(s)+1 {
		best = (*p)[:len(s)+1]
	} else {
		best = make([]bestNode, len(s)+1)
	}
	defer func() {
		if cap(best) <= maxPooledBest { // a huge one-off input should not stay pinned
			u.pool.Put(&best)
		}
	}()
	for i := range best {
		best[i] = bestNode{start: -1}
	}
	best[0].start = 0

	// Forward pass: relax every vocabulary match starting at each rune boundary, in order of
	// start then length, replacing a node only on a strictly better score.
	if u.native {
		if err := u.forwardNative(s, best); err != nil {
			return dst, err
		}
	} else if err := u.forward(s, best); err != nil {
		return dst, err
	}
	return u.backward(s, best, dst)
}

// forward is tokenizers' encode_optimized: relax every vocabulary match starting at each rune
// boundary, in order of start then length, replacing a node only on a strictly better score.
func (u *Unigram) forward(s string, best []bestNode) error {
	t := &u.trie
	for start := 0; start < len(s); {
		_, mblen := utf8.DecodeRuneInString(s[start:])
		base := best[start].score
		single := false
		// The trie walk is inlined here: this loop is the tokenizer's hot path.
		for i, node := start, 0; i < len(s); i++ {
			if node = t.next(node, s[i]); node == 0 {
				break
			}
			id := t.val[node]
			if id < 0 {
				continue
			}
			end := i + 1
			sc := u.vocab[id].Score + base
			if b := &best[end]; b.start < 0 || sc > b.score {
				b.score, b.start, b.id = sc, start, int(id)
			}
			if end-start == mblen {
				single = true
			}
		}
		if !single {
			if u.unkID < 0 {
				return ErrNoUnk
			}
			sc := u.unkScore + base
			if b := &best[start+mblen]; b.start < 0 || sc > b.score {
				b.score, b.start, b.id = sc, start, u.unkID
			}
		}
		start += mblen
	}
	return nil
}

// forwardNative is SentencePiece's EncodeOptimized (unigram_model.cc) with its C++ arithmetic:
// best scores are stored as float32, while a candidate is computed and compared in double (the
// piece score is a double there because of the user-defined branch). That asymmetry decides
// some ties differently from tokenizers' all-float64 path (record t004: "555" -> "55","5").
func (u *Unigram) forwardNative(s string, best []bestNode) error {
	for start := 0; start < len(s); {
		_, mblen := utf8.DecodeRuneInString(s[start:])
		base := best[start].score // always a float32 value
		single := false
		u.trie.prefixes(s, start, func(end, id int) {
			var sc float64
			if u.userDefined[id] {
				sc = float64(float32(end-start)*u.maxScore32) - 0.1
			} else {
				sc = u.vocab[id].Score
			}
			cand := sc + base
			if t := &best[end]; t.start < 0 || cand > t.score {
				t.score, t.start, t.id = float64(float32(cand)), start, id
			}
			if end-start == mblen {
				single = true
			}
		})
		if !single {
			if u.unkID < 0 {
				return ErrNoUnk
			}
			cand := u.unkScore32 + float32(base)
			if t := &best[start+mblen]; t.start < 0 || cand > float32(t.score) {
				t.score, t.start, t.id = float64(cand), start, u.unkID
			}
		}
		start += mblen
	}
	return nil
}

// backward walks the best path from the end, fusing runs of unk nodes, and resolves ids.
func (u *Unigram) backward(s string, best []bestNode, dst []Token) ([]Token, error) {
	first := len(dst)
	for end := len(s); end > 0; {
		n := best[end]
		st := n.start
		if u.fuseUnk && n.id == u.unkID {
			for st > 0 && best[st].id == u.unkID {
				st = best[st].start
			}
		}
		dst = append(dst, Token{ID: n.id, Piece: s[st:end], Start: st, End: end})
		end = st
	}
	for i, j := first, len(dst)-1; i < j; i, j = i+1, j-1 {
		dst[i], dst[j] = dst[j], dst[i]
	}

	// Tokens take the id of their text; text absent from the vocabulary (unknown runs) becomes
	// unk, or byte pieces under byte fallback.
	for i := first; i < len(dst); i++ {
		if u.native {
			// SentencePiece keeps the lattice ids; only unknown runs may fall back to bytes.
			if dst[i].ID != u.unkID || !u.byteFallback || !u.hasAllBytes(dst[i].Piece) {
				continue
			}
		} else if id, ok := u.ids[dst[i].Piece]; ok {
			dst[i].ID = id
			continue
		}
		if u.byteFallback && u.hasAllBytes(dst[i].Piece) {
			t := dst[i]
			bytes := make([]Token, 0, len(t.Piece))
			for k := 0; k < len(t.Piece); k++ {
				b := t.Piece[k]
				bytes = append(bytes, Token{ID: u.byteIDs[b], Piece: fmt.Sprintf("<0x%02X>", b), Start: t.Start, End: t.End})
			}
			tail := append(bytes, dst[i+1:]...)
			dst = append(dst[:i], tail...)
			i += len(bytes) - 1
			continue
		}
		if u.unkID < 0 {
			return dst[:first], ErrNoUnk
		}
		dst[i].ID = u.unkID
	}
	return dst, nil
}

func (u *Unigram) hasAllBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if u.byteIDs[s[i]] < 0 {
			return false
		}
	}
	return true
}

// trie is a byte trie with each node's children stored contiguously and sorted, plus a direct
// table for the root. Built once; read-only afterwards.
type trie struct {
	root   [256]int32 // child of the root per byte, 0 when absent (node 0 is the root)
	val    []int32    // per node: vocabulary id, -1 when no key ends here
	first  []int32    // per node: index of its first child edge
	count  []uint16   // per node: number of child edges (at most 256)
	labels []byte     // per edge
	child  []int32    // per edge
}

func buildTrie(keys []string, vals []int) trie {
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return keys[order[a]] < keys[order[b]] })
	t := trie{val: []int32{-1}, first: []int32{0}, count: []uint16{0}}
	// Breadth-first over (node, depth, key range) so that every node's children are
	// contiguous in the edge arrays.
	type item struct {
		node, depth, lo, hi int
	}
	queue := []item{{0, 0, 0, len(order)}}
	for qi := 0; qi < len(queue); qi++ {
		it := queue[qi]
		lo := it.lo
		// Keys equal to the node's prefix come first in sorted order.
		for lo < it.hi && len(keys[order[lo]]) == it.depth {
			t.val[it.node] = int32(vals[order[lo]])
			lo++
		}
		t.first[it.node] = int32(len(t.labels))
		for lo < it.hi {
			b := keys[order[lo]][it.depth]
			hi := lo
			for hi < it.hi && keys[order[hi]][it.depth] == b {
				hi++
			}
			id := len(t.val)
			t.val = append(t.val, -1)
			t.first = append(t.first, 0)
			t.count = append(t.count, 0)
			t.labels = append(t.labels, b)
			t.child = append(t.child, int32(id))
			t.count[it.node]++
			if it.node == 0 {
				t.root[b] = int32(id)
			}
			queue = append(queue, item{id, it.depth + 1, lo, hi})
			lo = hi
		}
	}
	return t
}

func (t *trie) next(node int, b byte) int {
	if node == 0 {
		return int(t.root[b])
	}
	lo, hi := int(t.first[node]), int(t.first[node])+int(t.count[node])
	if hi-lo <= 8 {
		for k := lo; k < hi; k++ {
			if t.labels[k] == b {
				return int(t.child[k])
			}
		}
		return 0
	}
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch l := t.labels[m]; {
		case l == b:
			return int(t.child[m])
		case l < b:
			lo = m + 1
		default:
			hi = m
		}
	}
	return 0
}

// prefixes calls fn(end, id) for every key that is a prefix of s[start:], shortest first.
func (t *trie) prefixes(s string, start int, fn func(end, id int)) {
	node := 0
	for i := start; i < len(s); i++ {
		node = t.next(node, s[i])
		if node == 0 {
			return
		}
		if v := t.val[node]; v >= 0 {
			fn(i+1, int(v))
		}
	}
}

// DigitCommaPenalty returns vocab with 100 subtracted from the score of every piece of at least
// two runes that ends in a comma preceded by a digit (`▁1,`, `3,`, `▁2010,`). Hugging Face's
// XLNet converter does this (convert_slow_tokenizer.py, check_number_comma) to mimic the slow
// tokenizer's re-splitting of such pieces, so a loader of XLNet's spiece.model must apply it to
// match tokenizer.json. "Digit" is Python's str.isdigit: decimal digits plus other digit
// characters (superscripts, circled digits).
func DigitCommaPenalty(vocab []VocabEntry) []VocabEntry {
	out := append([]VocabEntry(nil), vocab...)
	for i, e := range out {
		p := e.Piece
		if len(p) < 2 || p[len(p)-1] != ',' {
			continue
		}
		r, _ := utf8.DecodeLastRuneInString(p[:len(p)-1])
		if utf8.RuneCountInString(p) >= 2 && isPythonDigit(r) {
			out[i].Score = e.Score - 100
		}
	}
	return out
}

// isPythonDigit approximates Python's str.isdigit (Numeric_Type Digit or Decimal): Nd plus the
// No characters that are digits (superscripts, subscripts, circled and parenthesized digits).
func isPythonDigit(r rune) bool {
	if unicode.IsDigit(r) {
		return true
	}
	switch {
	case r == 0xB2 || r == 0xB3 || r == 0xB9:
		return true
	case r >= 0x2070 && r <= 0x2079 && r != 0x2071 && r != 0x2072 && r != 0x2073:
		return true
	case r >= 0x2080 && r <= 0x2089:
		return true
	case r >= 0x2460 && r <= 0x2468, r >= 0x2474 && r <= 0x247C, r >= 0x2488 && r <= 0x2490:
		return true
	case r == 0x24EA, r >= 0x24F5 && r <= 0x24FD, r == 0x24FF:
		return true
	case r >= 0x2776 && r <= 0x277E, r >= 0x2780 && r <= 0x2788, r >= 0x278A && r <= 0x2792:
		return true
	case r >= 0x1369 && r <= 0x1371, r == 0x19DA:
		return true
	case r >= 0x10A40 && r <= 0x10A43, r >= 0x1F100 && r <= 0x1F10A:
		return true
	}
	return false
}
